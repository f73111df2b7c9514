"""Unknown-safe access to resource properties.

During ``pulumi preview`` the engine sends values it cannot know yet as sentinel strings, and
``pulumi_policy`` wraps properties in a proxy that raises ``UnknownValueError`` when one is read.
Validators convert the properties once with :func:`plain` and then see :data:`UNKNOWN` instead, so
a single unknown field skips only the checks that need it ("cannot judge yet") instead of stopping
the whole policy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

try:  # the pack always has pulumi_policy; keep the module importable without it for tooling
    from pulumi_policy.proxy import UnknownValueError
except ImportError:  # pragma: no cover

    class UnknownValueError(Exception):  # type: ignore[no-redef]
        """Placeholder when pulumi_policy is absent."""


# The engine's sentinels for unknown values (pulumi sdk/go/common/resource/plugin/rpc.go).
UNKNOWN_SENTINELS = frozenset(
    {
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
        "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
        "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string (the one the engine sends for any kind)
        "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
        "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
        "e48ece36-62e2-4504-bad9-02848725956a",  # archive
        "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
    }
)


class _Marker:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __bool__(self) -> bool:
        return False


UNKNOWN: Any = _Marker("UNKNOWN")
"""A value the engine does not know yet (preview)."""

MISSING: Any = _Marker("MISSING")
"""A property that is absent or null."""


def is_unknown(value: Any) -> bool:
    """True when ``value`` is :data:`UNKNOWN`."""
    return value is UNKNOWN


def is_absent(value: Any) -> bool:
    """True when ``value`` is :data:`MISSING` or :data:`UNKNOWN`: nothing to judge."""
    return value is MISSING or value is UNKNOWN


#: Deeper than this, a value is not read: no cloud property nests this far, and recursion on
#: hostile input must not raise inside a policy.
MAX_DEPTH = 64

TOO_DEEP: Any = _Marker("TOO_DEEP")
"""A value nested deeper than :data:`MAX_DEPTH` levels: present, but not judged."""


def _read(container: Any, key: Any) -> Any:
    try:
        return container[key]
    except UnknownValueError:
        return UNKNOWN


def plain(value: Any) -> Any:
    """Deep-copy ``value`` into plain dicts/lists, with every unknown replaced by :data:`UNKNOWN`.

    Iterative (no recursion limit to hit); anything nested deeper than :data:`MAX_DEPTH` becomes
    :data:`TOO_DEEP`. Mapping keys that are not strings are turned into their string form.
    """

    def convert(item: Any, depth: int, pending: list[tuple[Any, Any, int]]) -> Any:
        if isinstance(item, str):
            return UNKNOWN if item in UNKNOWN_SENTINELS else item
        if isinstance(item, Mapping | Sequence) and not isinstance(item, bytes | bytearray):
            if depth >= MAX_DEPTH:
                return TOO_DEEP
            out: Any = {} if isinstance(item, Mapping) else []
            pending.append((item, out, depth + 1))
            return out
        return item

    pending: list[tuple[Any, Any, int]] = []
    root = convert(value, 0, pending)
    while pending:
        source, target, depth = pending.pop()
        if isinstance(target, dict):
            for key in list(source):
                target[key if isinstance(key, str) else str(key)] = convert(_read(source, key), depth, pending)
        else:
            for index in range(len(source)):
                target.append(convert(_read(source, index), depth, pending))
    return root


def get(data: Any, path: str, default: Any = MISSING) -> Any:
    """Read a dotted ``path`` from plain ``data``; :data:`UNKNOWN` propagates, absence gives ``default``.

    Integer path parts index lists (``"containers.0.resources"``).
    """
    current = data
    for part in path.split("."):
        if current is UNKNOWN:
            return UNKNOWN
        if isinstance(current, dict):
            if part not in current or current[part] is None:
                return default
            current = current[part]
        elif isinstance(current, list) and part.isdigit():
            index = int(part)
            if index >= len(current) or current[index] is None:
                return default
            current = current[index]
        else:
            return default
    return current


def as_number(value: Any) -> Any:
    """Parse a finite number from a number or numeric string; :data:`UNKNOWN`/:data:`MISSING` pass through.

    Returns ``None`` when the value is present but not a finite number (``nan``, ``inf`` and
    numbers beyond the float range are malformed, not huge).
    """
    if is_absent(value):
        return value
    if isinstance(value, bool):
        return None
    number: float
    try:
        if isinstance(value, int | float):
            number = float(value)
        elif isinstance(value, str):
            number = float(value.strip())
        else:
            return None
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def contains_unknown(value: Any) -> bool:
    """True when ``value`` (plain) holds :data:`UNKNOWN` anywhere (iterative)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if item is UNKNOWN:
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def is_str(value: Any) -> bool:
    """True for a non-empty string (what names, ARNs and tag values must be to be compared)."""
    return isinstance(value, str) and bool(value)


def contains_too_deep(value: Any) -> bool:
    """True when ``value`` (plain) was cut at :data:`MAX_DEPTH` somewhere."""
    stack = [value]
    while stack:
        item = stack.pop()
        if item is TOO_DEEP:
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
