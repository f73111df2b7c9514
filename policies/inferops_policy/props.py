"""Unknown-safe access to resource properties.

During ``pulumi preview`` the engine sends values it cannot know yet as sentinel strings, and
``pulumi_policy`` wraps properties in a proxy that raises ``UnknownValueError`` when one is read.
Validators convert the properties once with :func:`plain` and then see :data:`UNKNOWN` instead, so
a single unknown field skips only the checks that need it ("cannot judge yet") instead of stopping
the whole policy.
"""

from __future__ import annotations

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


def plain(value: Any) -> Any:
    """Deep-copy ``value`` into plain dicts/lists, with every unknown replaced by :data:`UNKNOWN`."""
    if isinstance(value, str):
        return UNKNOWN if value in UNKNOWN_SENTINELS else value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in list(value):
            try:
                item = value[key]
            except UnknownValueError:
                out[key] = UNKNOWN
                continue
            out[key] = plain(item)
        return out
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        items: list[Any] = []
        for index in range(len(value)):
            try:
                item = value[index]
            except UnknownValueError:
                items.append(UNKNOWN)
                continue
            items.append(plain(item))
        return items
    return value


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
    """Parse a number from a number or numeric string; :data:`UNKNOWN`/:data:`MISSING` pass through.

    Returns ``None`` when the value is present but not a number.
    """
    if is_absent(value):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def contains_unknown(value: Any) -> bool:
    """True when ``value`` (plain) holds :data:`UNKNOWN` anywhere."""
    if value is UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_unknown(v) for v in value)
    return False
