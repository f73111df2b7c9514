"""Bounded, plain-value loading of the files every CLI reads: stack files, configs, plans, reports.

Every command line of the project reads its JSON and YAML inputs through this module, so a hostile
file is one line and exit 2 everywhere, never a traceback, a hang or a verdict:

* **Bounded reads**: at most ``limit`` bytes are read (``/dev/zero``, a FIFO or a 10 GB file as a
  config fails fast with "larger than ..."), directories and unreadable files are one line.
* **Text**: UTF-8 only (a UTF-8 BOM is accepted); UTF-16/32 and other encodings are named as such,
  with the file name.
* **YAML**: the event stream is checked before anything is constructed: nesting depth, the number of
  aliases, the size a document would have with every alias expanded (billion laughs) and recursive
  aliases are bounded, so neither the composer's recursion nor a later traversal can blow up.
* **Plain values only**: the result contains only what JSON can say (``dict`` with ``str`` keys,
  ``list``, ``str``, finite ``float``, ``int`` of at most :data:`MAX_INT_DIGITS` digits, ``bool``,
  ``None``). YAML dates, ``!!binary``, ``!!set``, ``.inf``/``.nan``, non-string keys and strings that
  are not valid Unicode (lone surrogates such as ``"\\ud800"``) are refused naming the field.

Errors are :class:`LoadError` (a ``ValueError``) whose message is one line that starts with the file
name and, for a bad value, names the field (``config.aws:region``).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

#: Default bound of a config-like file (stack file, overrides, policy pack config, plan, report).
MAX_FILE_BYTES = 4 * 1024 * 1024
#: Deepest nesting of mappings and lists accepted (real configs and reports use well under 20).
MAX_DEPTH = 64
#: Most alias references in one YAML document.
MAX_ALIASES = 1000
#: Most nodes a YAML document may have with every alias expanded (bounds billion-laughs documents).
MAX_NODES = 200_000
#: Most decimal digits of an integer (64-bit values have at most 19 or 20).
MAX_INT_DIGITS = 20
_DIGITS = re.compile(r"[-+]?[0-9][0-9_]*")


class LoadError(ValueError):
    """A file that cannot be loaded as plain data; the message is one line naming the file (and field)."""


def _one_line(text: object, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return escape(flat if len(flat) <= limit else flat[: limit - 3] + "...")


def escape(text: str) -> str:
    """``text`` with control characters and lone surrogates escaped, safe to echo into a log line."""
    out = []
    for ch in text:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code < 0xA0 or 0xD800 <= code < 0xE000 or ch in "\u2028\u2029":
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def read_bounded(path: str | os.PathLike[str], *, what: str = "file", limit: int = MAX_FILE_BYTES) -> bytes:
    """At most ``limit`` bytes of ``path``; :class:`LoadError` when it holds more or cannot be read.

    Only ``limit + 1`` bytes are ever read, so a device (``/dev/zero``) or a growing file cannot hold
    the process; a FIFO is opened non-blocking so a missing writer cannot hang the open.
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise LoadError(f"{escape(str(p))}: cannot read {what} ({exc.strerror or exc})") from None
    try:
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            try:
                chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            except IsADirectoryError:
                raise LoadError(f"{escape(str(p))}: cannot read {what} (is a directory)") from None
            except OSError as exc:
                raise LoadError(f"{escape(str(p))}: cannot read {what} ({exc.strerror or exc})") from None
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise LoadError(f"{escape(str(p))}: {what} is larger than {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def decode_utf8(data: bytes, path: str | os.PathLike[str], *, what: str = "file") -> str:
    """``data`` as UTF-8 text (a UTF-8 BOM is dropped); :class:`LoadError` naming the file otherwise."""
    name = escape(str(path))
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(data) >= 2 and (data[0] == 0) != (data[1] == 0)):
        raise LoadError(f"{name}: {what} is UTF-16 or UTF-32 text; save it as UTF-8")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        byte = data[exc.start]
        raise LoadError(f"{name}: {what} is not UTF-8 (invalid byte 0x{byte:02x} at offset {exc.start})") from None


def read_text(path: str | os.PathLike[str], *, what: str = "file", limit: int = MAX_FILE_BYTES) -> str:
    """:func:`read_bounded` then :func:`decode_utf8`."""
    return decode_utf8(read_bounded(path, what=what, limit=limit), path, what=what)


def _field(parts: list[str]) -> str:
    out = ""
    for part in parts:
        out += part if part.startswith("[") else ("." if out else "") + part
    return escape(out) or "(top level)"


def plain(value: Any, where: str, *, root: str = "") -> Any:
    """``value`` checked to hold only JSON-expressible values; :class:`LoadError` naming the field.

    Iterative (no recursion), and depth-bounded, so it is safe on anything a parser returned.
    """
    import datetime

    stack: list[tuple[Any, list[str], int]] = [(value, [root] if root else [], 0)]
    while stack:
        node, parts, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise LoadError(f"{where}: {_field(parts)}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            for key, item in node.items():
                if not isinstance(key, str):
                    shown = _one_line(repr(key), 60)
                    raise LoadError(f"{where}: {_field(parts)}: key {shown} is not a string; quote it")
                _check_str(key, where, parts)
                stack.append((item, [*parts, key], depth + 1))
        elif isinstance(node, list):
            for i, item in enumerate(node):
                stack.append((item, [*parts, f"[{i}]"], depth + 1))
        elif isinstance(node, str):
            _check_str(node, where, parts)
        elif isinstance(node, bool) or node is None:
            pass
        elif isinstance(node, int):
            # Digits by bit length: str() of a huge int is itself limited (and slow).
            if node.bit_length() > MAX_INT_DIGITS * 3.33:
                raise LoadError(f"{where}: {_field(parts)}: integer has more than {MAX_INT_DIGITS} digits")
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise LoadError(f"{where}: {_field(parts)}: {node!r} is not a finite number")
        elif isinstance(node, datetime.date | datetime.datetime):
            raise LoadError(f"{where}: {_field(parts)}: a YAML date is not a plain value; quote it")
        elif isinstance(node, bytes | bytearray):
            raise LoadError(f"{where}: {_field(parts)}: binary data (!!binary) is not a plain value")
        elif isinstance(node, set | frozenset):
            raise LoadError(f"{where}: {_field(parts)}: a set (!!set) is not a plain value; use a list")
        else:
            raise LoadError(f"{where}: {_field(parts)}: {type(node).__name__} is not a plain value")
    return value


def _check_str(text: str, where: str, parts: list[str]) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise LoadError(f"{where}: {_field(parts)}: text is not valid Unicode (a lone surrogate)") from None


def _int_digits(text: str) -> int:
    if len(text) > MAX_INT_DIGITS + 1:
        raise ValueError(f"integer has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_json(text: str, where: str) -> Any:
    """Parse JSON text into plain values; :class:`LoadError` naming ``where`` on any problem."""
    try:
        data = json.loads(text, parse_int=_int_digits, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise LoadError(f"{where}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise LoadError(f"{where}: JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise LoadError(f"{where}: not valid JSON ({_one_line(exc)})") from None
    return plain(data, where)


def load_json(path: str | os.PathLike[str], *, what: str = "file", limit: int = MAX_FILE_BYTES) -> Any:
    """A bounded JSON file as plain values."""
    return loads_json(read_text(path, what=what, limit=limit), escape(str(path)))


def _check_yaml_events(text: str, where: str) -> None:
    """Bound depth, aliases and expanded size of a YAML stream without constructing anything."""
    from ruamel.yaml import YAML
    from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, ScalarEvent

    sizes: dict[str, int] = {}
    open_anchors: set[str] = set()
    stack: list[tuple[str | None, int]] = [(None, 0)]  # (anchor of the open collection, nodes so far)
    aliases = 0
    total = 0
    for event in YAML(typ="safe", pure=True).parse(text):
        line = event.start_mark.line + 1 if event.start_mark is not None else 0
        if isinstance(event, CollectionStartEvent):
            if len(stack) > MAX_DEPTH:
                raise LoadError(f"{where}: line {line}: YAML nested deeper than {MAX_DEPTH} levels")
            if event.anchor is not None:
                open_anchors.add(event.anchor)
            stack.append((event.anchor, 0))
            continue
        if isinstance(event, CollectionEndEvent):
            anchor, count = stack.pop()
            count += 1
            if anchor is not None:
                sizes[anchor] = count
                open_anchors.discard(anchor)
            added = count
        elif isinstance(event, ScalarEvent):
            # Python refuses to parse integers of over 4,300 digits; stop them here with their line.
            if event.style is None and len(event.value) > 1000 and _DIGITS.fullmatch(event.value):
                raise LoadError(f"{where}: line {line}: integer has more than {MAX_INT_DIGITS} digits")
            if event.anchor is not None:
                sizes[event.anchor] = 1
            added = 1
            total += 1
        elif isinstance(event, AliasEvent):
            aliases += 1
            if event.anchor in open_anchors:
                raise LoadError(f"{where}: line {line}: recursive YAML alias *{escape(str(event.anchor))}")
            if aliases > MAX_ALIASES:
                raise LoadError(f"{where}: line {line}: more than {MAX_ALIASES} YAML aliases")
            added = sizes.get(str(event.anchor), 1)
            total += added
        else:
            continue
        if total > MAX_NODES:
            raise LoadError(f"{where}: line {line}: YAML expands to more than {MAX_NODES} nodes (aliases)")
        anchor, count = stack[-1]
        stack[-1] = (anchor, count + added)


def loads_yaml(text: str, where: str) -> Any:
    """Parse one YAML document into plain values, bounded (see the module docstring)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        _check_yaml_events(text, where)
        data = YAML(typ="safe", pure=True).load(text)
    except LoadError:
        raise
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"line {mark.line + 1}: " if mark is not None else ""
        raise LoadError(f"{where}: invalid YAML ({at}{_one_line(exc.problem or exc.context or exc)})") from None
    except YAMLError as exc:
        raise LoadError(f"{where}: invalid YAML ({_one_line(exc)})") from None
    except RecursionError:
        raise LoadError(f"{where}: YAML nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # e.g. an integer scalar beyond Python's digit limit
        raise LoadError(f"{where}: invalid YAML value ({_one_line(exc)})") from None
    return plain(data, where)


def load_yaml(path: str | os.PathLike[str], *, what: str = "file", limit: int = MAX_FILE_BYTES) -> Any:
    """A bounded YAML file (JSON is YAML too) as plain values."""
    return loads_yaml(read_text(path, what=what, limit=limit), escape(str(path)))
