"""Round-trip edits of one function's entry in a ``Pulumi.<stack>.yaml`` file.

The edit is made with ruamel.yaml's round-trip loader and dumper, which keeps comments, key order,
quoting and flow style of the nodes it re-emits. ruamel still normalises a few things on the way out
(``~`` becomes an empty null, runs of spaces after a colon collapse, indentation is re-derived), so the
new bytes are not the dumper's whole output: they are the original bytes with only the line spans of
the edited keys replaced by the dumper's rendering of those keys. Everything outside the edited keys
(comments, blank lines, other functions, every ``secure:`` value) is therefore byte-identical by
construction. A key added to a flow mapping (``{...}``) is inserted as text inside its braces, at a
position ruamel's scanner finds, so the mapping stays a flow mapping on its line(s). Before anything
is returned, the spliced text is parsed again and must equal the edited document, and the whole
``config:`` mapping must pass :func:`components.spec.parse_stack_config`; if either fails,
:class:`ConfigEditError` is raised and nothing is written.
"""

from __future__ import annotations

import copy
import io
import itertools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, ScalarString, SingleQuotedScalarString
from ruamel.yaml.tokens import (
    FlowEntryToken,
    FlowMappingEndToken,
    FlowMappingStartToken,
    FlowSequenceEndToken,
    FlowSequenceStartToken,
    KeyToken,
    ValueToken,
)

from inferops.atomic import write_atomic as _write_atomic

FUNCTIONS_KEY = "inferops:functions"
#: What every function inherits (``components.spec``: finops fields merged under each ``finops`` block).
DEFAULTS_KEY = "inferops:defaults"

#: Called with the plain ``config:`` mapping of the edited file; raises ``ValueError`` to refuse it.
Validator = Callable[[Mapping[str, Any]], object]


class ConfigEditError(ValueError):
    """The stack file cannot be edited safely; the message is one line naming the file and field."""


@dataclass(frozen=True)
class Edit:
    """Set ``path`` (keys below the function's mapping) to ``value``.

    ``value`` is a scalar or a flat mapping of scalars. Setting an existing key keeps its quoting style;
    a missing last key is appended to its parent mapping, which must exist (inside the braces when the
    parent is a flow mapping, which stays one).
    """

    path: tuple[str, ...]
    value: Any

    def describe(self) -> str:
        """``model.version`` style dotted path."""
        return ".".join(self.path)


def default_validator(config: Mapping[str, Any]) -> object:
    """Validate with the program's own spec so that the edited stack still deploys."""
    from components.spec import parse_stack_config  # imported late: pulls pydantic models

    return parse_stack_config(config)


#: Bound on the plain nodes one document expands to: aliases share nodes, so a few lines of YAML
#: ("billion laughs") can stand for billions of values; past this the file is refused, not expanded.
MAX_NODES = 1_000_000
#: Bound on the size of a stack file (characters).
MAX_TEXT = 8 << 20
#: Bound on nesting depth (Python's recursion would fail first on a 5,000-deep document).
MAX_DEPTH = 200


def to_plain(node: Any, *, where: str = "stack file") -> Any:
    """ruamel round-trip node -> plain Python (dict, list, str, int, float, bool, None).

    Raises :class:`ConfigEditError` for a recursive alias, nesting deeper than :data:`MAX_DEPTH` or an
    expansion beyond :data:`MAX_NODES` values.
    """
    budget = [MAX_NODES]
    active: set[int] = set()

    def conv(n: Any, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise ConfigEditError(f"{where}: expands to more than {MAX_NODES:,} values (aliases); refused")
        if depth > MAX_DEPTH:
            raise ConfigEditError(f"{where}: nested deeper than {MAX_DEPTH} levels; refused")
        if isinstance(n, Mapping | list | tuple):
            if id(n) in active:
                raise ConfigEditError(f"{where}: a recursive alias (a node contains itself); refused")
            active.add(id(n))
            try:
                if isinstance(n, Mapping):
                    return {str(k).translate(_SHOW): conv(v, depth + 1) for k, v in n.items()}
                return [conv(v, depth + 1) for v in n]
            finally:
                active.discard(id(n))
        if isinstance(n, bool) or n is None:
            return n
        if isinstance(n, str):
            return str(n).translate(_SHOW)
        if isinstance(n, int):
            return int(n)
        if isinstance(n, float):
            return float(n)
        if isinstance(n, datetime | date):
            # Pulumi hands config to the program as strings; an unquoted date is a string there too.
            return n.isoformat()
        if isinstance(n, bytes | set):
            raise ConfigEditError(f"{where}: holds a {type(n).__name__} value (!!binary/!!set), not a config value")
        return n

    return conv(node, 0)


def _yaml(mapping_indent: int = 2, seq_indent: int = 4, seq_offset: int = 2) -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 1 << 16  # never fold long lines (secure values, URLs)
    y.indent(mapping=mapping_indent, sequence=seq_indent, offset=seq_offset)
    return y


def _guess_indent(text: str) -> tuple[int, int, int]:
    """(mapping indent, sequence indent, dash offset) as the file writes them; defaults 2, 4, 2."""
    lines = text.splitlines()
    mapping = None
    seq = None
    for i, line in enumerate(lines[:-1]):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or not stripped.endswith(":"):
            continue
        col = len(line) - len(line.lstrip(" "))
        nxt = next((n for n in lines[i + 1 :] if n.strip() and not n.strip().startswith("#")), None)
        if nxt is None:
            break
        ncol = len(nxt) - len(nxt.lstrip(" "))
        body = nxt.strip()
        if body.startswith("- ") and seq is None and ncol >= col:
            offset = ncol - col
            inner = len(body) - len(body[1:].lstrip(" "))  # dash plus following spaces
            seq = (offset + inner, offset)
        elif not body.startswith("-") and mapping is None and ncol > col:
            mapping = ncol - col
        if mapping is not None and seq is not None:
            break
    m = mapping or 2
    s_indent, s_offset = seq or (m + 2, m)
    return m, max(s_indent, s_offset + 2), s_offset


def _load(y: YAML, text: str, where: str) -> Any:
    if len(text) > MAX_TEXT:
        raise ConfigEditError(f"{where}: larger than {MAX_TEXT // (1 << 20)} MiB; refused")
    try:
        return y.load(text.translate(_HIDE))
    except RecursionError:
        raise ConfigEditError(f"{where}: nested too deeply to parse; refused") from None
    except YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigEditError(f"{where}: not valid YAML ({first})") from None


def find_function(data: Any, function: str, where: str) -> tuple[int, CommentedMap]:
    """Index and mapping of the function named ``function`` in ``config: inferops:functions``."""
    if not isinstance(data, Mapping) or not isinstance(data.get("config"), Mapping):
        raise ConfigEditError(f"{where}: no 'config:' mapping")
    functions = data["config"].get(FUNCTIONS_KEY)
    if not isinstance(functions, list):
        raise ConfigEditError(f"{where}: config.{FUNCTIONS_KEY} is not a list")
    for i, fn in enumerate(functions):
        if isinstance(fn, Mapping) and fn.get("name") == function:
            if not isinstance(fn, CommentedMap):
                raise ConfigEditError(f"{where}: function {function!r} is not a block mapping")
            return i, fn
    raise ConfigEditError(f"{where}: function {function!r} not found in config.{FUNCTIONS_KEY}")


def read_function(text: str, function: str, where: str) -> dict[str, Any]:
    """The plain config of one function (for deciding what to do)."""
    data = _load(_yaml(), text, where)
    return to_plain(find_function(data, function, where)[1], where=where)


def read_function_and_defaults(text: str, function: str, where: str) -> dict[str, Any]:
    """``{"function": ..., "defaults": ...}``: one function's own config and ``inferops:defaults``.

    For a loop that must know what the function inherits, to say so when an edit writes a key the
    function did not carry. ``defaults`` is ``{}`` when the file has none (or not a mapping, which
    validation refuses anyway). A :data:`gitops.writeback.Reader`.
    """
    data = _load(_yaml(), text, where)
    fn = to_plain(find_function(data, function, where)[1], where=where)
    defaults = data["config"].get(DEFAULTS_KEY)
    return {"function": fn, "defaults": to_plain(defaults, where=where) if isinstance(defaults, Mapping) else {}}


# --- locating the lines of a key ---------------------------------------------------------------------


def _container_at(root: Any, path: Sequence[Any]) -> Any:
    node = root
    for p in path:
        node = node[p]
    return node


def _key_pos(container: Any, key: Any) -> tuple[int, int]:
    if isinstance(container, CommentedMap):
        return tuple(container.lc.key(key))
    return tuple(container.lc.item(key))


def _next_line_after(root: Any, full_path: Sequence[Any], n_lines: int) -> int:
    """First line after the subtree at ``full_path``: the next sibling at the nearest level that has one."""
    for depth in range(len(full_path), 0, -1):
        parent = _container_at(root, full_path[: depth - 1])
        key = full_path[depth - 1]
        keys = list(parent.keys()) if isinstance(parent, CommentedMap) else list(range(len(parent)))
        idx = keys.index(key)
        if idx + 1 < len(keys):
            return _key_pos(parent, keys[idx + 1])[0]
    return n_lines


def _is_filler(line: str) -> bool:
    s = line.strip()
    return not s or s.startswith("#")


def _span(root: Any, full_path: Sequence[Any], lines: Sequence[str]) -> tuple[int, int, int]:
    """(first line, end line exclusive, key column) of a key, trailing comments and blank lines excluded."""
    parent = _container_at(root, full_path[:-1])
    line, col = _key_pos(parent, full_path[-1])
    end = _next_line_after(root, full_path, len(lines))
    while end > line + 1 and _is_filler(lines[end - 1]):
        end -= 1
    # A sibling on the same line (flow mappings) means the key shares its line with others.
    return line, max(end, line + 1), col


def _shift(block: list[str], delta: int) -> list[str]:
    if delta == 0:
        return block
    out = []
    for line in block:
        if delta > 0:
            out.append(" " * delta + line if line.strip() else line)
        else:
            lead = len(line) - len(line.lstrip(" "))
            out.append(line[min(lead, -delta) :])
    return out


# --- applying edits --------------------------------------------------------------------------------------


def _styled(old: Any, new: Any) -> Any:
    """``new`` in the quoting style of ``old`` when both are strings."""
    if isinstance(new, str) and isinstance(old, ScalarString) and not isinstance(new, ScalarString):
        return type(old)(new)
    return new


def _set(fn: CommentedMap, edit: Edit, where: str) -> bool:
    """Apply one edit to the function mapping; True when the key is new."""
    parent: Any = fn
    for key in edit.path[:-1]:
        if not isinstance(parent, CommentedMap) or key not in parent:
            raise ConfigEditError(f"{where}: cannot set {edit.describe()}: {key!r} does not exist")
        parent = parent[key]
    if not isinstance(parent, CommentedMap):
        raise ConfigEditError(f"{where}: cannot set {edit.describe()}: parent is not a mapping")
    last = edit.path[-1]
    is_new = last not in parent
    if isinstance(edit.value, Mapping):
        current = parent.get(last)
        if isinstance(current, CommentedMap):
            for k in [k for k in current if k not in edit.value]:
                del current[k]
            for k, v in edit.value.items():
                current[k] = _styled(current.get(k), v)
        else:
            parent[last] = CommentedMap(edit.value)
    else:
        parent[last] = _styled(parent.get(last), edit.value)
    return is_new


def _splice_edits(text: str, function: str, edits: Sequence[Edit], where: str) -> str:
    """``text`` with the line spans of the edited keys replaced by ruamel's rendering of them.

    Used for what a token cannot express (a new key, a mapping value); the caller checks the result.
    """
    m_ind, s_ind, s_off = _guess_indent(text)
    y = _yaml(m_ind, s_ind, s_off)
    data = _load(y, text, where)
    index, fn = find_function(data, function, where)
    fn_path: list[Any] = ["config", FUNCTIONS_KEY, index]
    old_lines = _lines(text)
    fn_first, fn_end = _line_range(data, fn_path, old_lines)

    # Spans in the old text, taken before the edit: (start, end, col, path, is_new).
    before: list[tuple[int, int, int, tuple[Any, ...], bool]] = []
    snapshot = to_plain(fn)
    for edit in edits:
        full = (*fn_path, *edit.path)
        parent = _container_at(data, full[:-1]) if _exists(data, full[:-1]) else None
        if parent is not None and isinstance(parent, CommentedMap) and edit.path[-1] in parent:
            s, e, c = _span(data, full, old_lines)
            before.append((s, e, c, full, False))
        elif parent is not None and isinstance(parent, CommentedMap) and len(parent):
            if parent.fa.flow_style():
                raise ConfigEditError(
                    f"{where}: adding {edit.describe()} to a flow mapping ({{...}}) of {function!r} is not "
                    "supported; edit the file by hand"
                )
            # A new key goes after the parent's last key, before any comments and blank lines that follow.
            last_key = list(parent.keys())[-1]
            _, e, _ = _span(data, (*full[:-1], last_key), old_lines)
            col = _key_pos(parent, next(iter(parent.keys())))[1]
            before.append((e, e, col, full, True))
        else:
            raise ConfigEditError(f"{where}: cannot set {edit.describe()} in function {function!r}")
    for edit in edits:
        _set(fn, edit, where)
    if to_plain(fn) == snapshot:
        return text

    out = io.StringIO()
    y.dump(data, out)
    dumped = out.getvalue()
    new_data = _load(_yaml(m_ind, s_ind, s_off), dumped, where)
    new_lines = _lines(dumped)

    pieces: list[tuple[int, int, list[str]]] = []
    for start, end, col, full, _is_new in before:
        if not (fn_first <= start and end <= fn_end):
            raise ConfigEditError(
                f"{where}: {'.'.join(map(str, full[3:]))} of {function!r} is written outside the function "
                "(an alias or a merge key); edit the file by hand"
            )
        ns, ne, ncol = _span(new_data, full, new_lines)
        block = _shift(new_lines[ns:ne], col - ncol)
        # Each new line takes the ending of the old line it replaces (or of the line before an insertion).
        endings = [_ending(ln) for ln in old_lines[start:end]] or [_ending(old_lines[start - 1]) if start else "\n"]
        block = [
            ln[: len(ln) - len(_ending(ln))] + (endings[min(i, len(endings) - 1)] or "\n") if _ending(ln) else ln
            for i, ln in enumerate(block)
        ]
        pieces.append((start, end, block))
    pieces.sort(key=lambda p: (p[0], p[1]))
    for (s1, e1, _), (s2, _, _) in itertools.pairwise(pieces):
        if s2 < e1 or (s2 == e1 == s1):
            raise ConfigEditError(f"{where}: edited keys of {function!r} share lines; edit the file by hand")

    result: list[str] = []
    cursor = 0
    for start, end, block in pieces:
        result.extend(old_lines[cursor:start])
        if start == end and result and not _ending(result[-1]):
            result[-1] += _first_ending(text)  # appending after a last line without a newline
        result.extend(block)
        cursor = end
    result.extend(old_lines[cursor:])
    new_text = "".join(result)
    if not _ending(text) and _ending(new_text) and cursor >= len(old_lines):
        new_text = new_text[: len(new_text) - len(_ending(new_text))]
    return new_text


# --- lines as ruamel counts them ---------------------------------------------------------------------

# ruamel (a YAML 1.1 reader) takes NEL, LS and PS for line breaks in some places and not in others, and
# refuses them in comments, where YAML 1.2 allows them. They are swapped for reserved noncharacters of
# the same length before parsing and swapped back at the end, so offsets, line numbers and bytes agree.
_HIDE = str.maketrans({"\x85": "\ufdd0", "\u2028": "\ufdd1", "\u2029": "\ufdd2"})
_SHOW = str.maketrans({"\ufdd0": "\x85", "\ufdd1": "\u2028", "\ufdd2": "\u2029"})
_BREAK_RE = re.compile("\r\n|[\r\n]")


def _lines(text: str) -> list[str]:
    """``text`` split after every line break ruamel counts, endings kept (so ``"".join`` gives it back)."""
    out, pos = [], 0
    for m in _BREAK_RE.finditer(text):
        out.append(text[pos : m.end()])
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:])
    return out


def _ending(line: str) -> str:
    m = re.search("(\r\n|[\r\n])\\Z", line)
    return m.group(1) if m else ""


def _first_ending(text: str) -> str:
    m = re.search("\r\n|[\r\n]", text)
    return m.group(0) if m else "\n"


def _line_range(data: Any, fn_path: Sequence[Any], lines: Sequence[str]) -> tuple[int, int]:
    """(first line, end line exclusive) of the function's entry in the sequence."""
    seq = _container_at(data, fn_path[:-1])
    index = fn_path[-1]
    first = seq.lc.item(index)[0]
    end = seq.lc.item(index + 1)[0] if index + 1 < len(seq) else _next_line_after(data, fn_path[:-1], len(lines))
    return first, end


# --- node-level checks and single-token edits ------------------------------------------------------------

_PLAIN_RE = re.compile(r"[A-Za-z0-9_./@+-](?:[A-Za-z0-9_./@+-]|:(?! ))*")
_PREFIX_RE = re.compile(r"(?:(?:&[^\s,\[\]{}]+|![^\s,\[\]{}]*)\s+)*")


def _compose(text: str, where: str) -> Node:
    try:
        return YAML(typ="rt").compose(text.translate(_HIDE))
    except RecursionError:
        raise ConfigEditError(f"{where}: nested too deeply to parse; refused") from None
    except YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigEditError(f"{where}: not valid YAML ({first})") from None


def _occurrences(root: Node) -> dict[int, int]:
    """How many places of the document each node object appears in (an alias is one more)."""
    seen: dict[int, int] = {}

    def walk(node: Node) -> None:
        seen[id(node)] = seen.get(id(node), 0) + 1
        if seen[id(node)] > 1:
            return
        if isinstance(node, MappingNode):
            for k, v in node.value:
                walk(k)
                walk(v)
        elif isinstance(node, SequenceNode):
            for v in node.value:
                walk(v)

    walk(root)
    return seen


def _own(node: MappingNode, key: str) -> tuple[Node, Node] | None:
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.tag != "tag:yaml.org,2002:merge" and k.value == key:
            return k, v
    return None


def _has_merge(node: MappingNode) -> bool:
    return any(isinstance(k, ScalarNode) and k.tag == "tag:yaml.org,2002:merge" for k, _ in node.value)


def _render_scalar(value: Any, style: str | None) -> str | None:
    """``value`` as one YAML token in the quoting style ``style`` of the value it replaces; None: cannot."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    text = str(value)
    double = json.dumps(text, ensure_ascii=False)
    # JSON leaves these raw; YAML readers treat some as line breaks or refuse them.
    double = re.sub("[\x7f-\x9f\u2028\u2029\ufeff]", lambda m: f"\\u{ord(m.group()):04x}", double)
    if isinstance(value, DoubleQuotedScalarString) or style == '"':
        return double
    printable = text.isprintable() and "\n" not in text
    if isinstance(value, SingleQuotedScalarString) or style == "'":
        return "'" + text.replace("'", "''") + "'" if printable else double
    if style is None and _PLAIN_RE.fullmatch(text):
        loaded = YAML(typ="safe").load(f"k: {text}\n")
        if isinstance(loaded, dict) and loaded.get("k") == text and isinstance(loaded.get("k"), str):
            return text
    return double


def _token_edit(text: str, function: str, index: int, edit: Edit, where: str) -> str | None:
    """``text`` with the edited scalar's token replaced in place; None when the edit needs the splice.

    Only the value's own characters change: the key, the spacing before an end-of-line comment, the
    comment and the line ending stay as they are. Raises :class:`ConfigEditError` when the edit would
    reach another function's config through an anchor, an alias or a merge key.
    """
    root = _compose(text, where)
    config = _own(root, "config") if isinstance(root, MappingNode) else None
    fns = _own(config[1], FUNCTIONS_KEY) if config and isinstance(config[1], MappingNode) else None
    if fns is None or not isinstance(fns[1], SequenceNode) or index >= len(fns[1].value):
        return None
    fn_node = fns[1].value[index]
    if not isinstance(fn_node, MappingNode):
        return None
    lo, hi = fn_node.start_mark.index, fn_node.end_mark.index
    counts = _occurrences(root)
    dotted = edit.describe()

    def outside(node: Node) -> bool:
        return not (lo <= node.start_mark.index and node.end_mark.index <= hi)

    def shared(node: Node) -> bool:
        return counts.get(id(node), 0) > 1

    if shared(fn_node):
        raise ConfigEditError(f"{where}: function {function!r} is an anchored node other entries alias; edit by hand")
    node: Node = fn_node
    in_flow = False
    for depth, key in enumerate(edit.path):
        if not isinstance(node, MappingNode):
            return None
        pair = _own(node, key)
        here = ".".join(edit.path[: depth + 1])
        if pair is None:
            if _has_merge(node):
                raise ConfigEditError(
                    f"{where}: {here} of {function!r} would override a value merged in with '<<:'; "
                    "merge keys are not edited automatically: set it by hand"
                )
            if depth == len(edit.path) - 1 and node.flow_style:
                return _flow_insert(text, node, key, edit.value)
            return None  # a new key in a block mapping: the splice inserts it
        key_node, value = pair
        last = depth == len(edit.path) - 1
        if outside(value) or shared(value):
            anchor = f" &{value.anchor}" if getattr(value, "anchor", None) else ""
            if not (last and isinstance(value, ScalarNode)):
                raise ConfigEditError(
                    f"{where}: {here}{anchor} of {function!r} is shared through a YAML anchor/alias with other "
                    f"nodes; editing {dotted} would change them too: edit by hand"
                )
            if not outside(value):
                raise ConfigEditError(
                    f"{where}: {here} of {function!r} carries anchor{anchor} that other nodes alias; "
                    "changing it would change them too: edit by hand"
                )
            # `key: *alias` in this function: replace the alias token only (breaking the alias here).
            m = re.compile(r"\s*:[ \t]*(\*[^\s,\[\]{}]+)").match(text, key_node.end_mark.index)
            if not m:
                return None
            token = _flow_token(edit.value) if node.flow_style else _render_scalar(edit.value, None)
            if token is None or isinstance(edit.value, Mapping):
                return None
            return text[: m.start(1)] + token + text[m.end(1) :]
        in_flow = bool(node.flow_style)
        node = value
    if not isinstance(node, ScalarNode) or isinstance(edit.value, Mapping) or node.style in ("|", ">"):
        return None
    token = _render_scalar(edit.value, node.style)
    if in_flow and node.style is None and token is not None and token == edit.value and not _flow_plain_ok(token):
        token = _render_scalar(edit.value, '"')  # `a:b` inside {...} could read as a key and a value
    if token is None:
        return None
    start, end = node.start_mark.index, node.end_mark.index
    prefix = _PREFIX_RE.match(text, start)
    start = prefix.end() if prefix and prefix.end() <= end else start
    return text[:start] + token + text[end:]


def _flow_token(value: Any) -> str | None:
    """``value`` (a scalar or a flat mapping) as one token inside a flow mapping; None: cannot.

    A plain scalar with ``:`` or ``#`` in it is quoted: inside ``{...}`` a reader may take ``a:b`` for
    a key and value, and ``#`` after a space for a comment.
    """
    if isinstance(value, Mapping):
        parts = []
        for k, v in value.items():
            kt, vt = (_flow_token(k) if isinstance(k, str) else None), _flow_token(v)
            if kt is None or vt is None:
                return None
            parts.append(f"{kt}: {vt}")
        return "{" + ", ".join(parts) + "}"
    token = _render_scalar(value, None)
    if token is not None and isinstance(value, str) and token == str(value) and not _flow_plain_ok(token):
        token = _render_scalar(str(value), '"')
    return token


def _flow_plain_ok(token: str) -> bool:
    """Whether the plain scalar ``token`` reads back as itself inside a flow mapping."""
    if ":" not in token and "#" not in token:
        return True
    try:
        loaded = YAML(typ="safe").load("{k: " + token + "}")
    except YAMLError:
        return False
    return isinstance(loaded, dict) and loaded == {"k": token}


def _flow_insert(text: str, node: MappingNode, key: str, value: Any) -> str | None:
    """``text`` with ``key: value`` added as the last entry of the flow mapping ``node``; None: cannot.

    The mapping stays a flow mapping and everything else stays byte for byte: on one line the entry
    goes after the last value (``{a: 1}`` -> ``{a: 1, b: 2}``, a trailing comma kept after it); in a
    mapping written one entry per line with the ``}`` on a later line, it goes on a line of its own at
    the last entry's indentation, after that entry's end-of-line comment, with that line's ending.
    The tokens come from ruamel's own scanner, so commas and braces inside quoted values, comments
    and aliases are never mistaken for the mapping's.
    """
    kt, vt = _flow_token(key), _flow_token(value)
    if kt is None or vt is None:
        return None
    entry = f"{kt}: {vt}"
    lo, hi = node.start_mark.index, node.end_mark.index
    if not (0 < hi <= len(text)) or text[hi - 1] != "}":
        return None
    tokens: list[Any] = []
    for tok in YAML(typ="rt").scan(text):
        if tok.start_mark.index >= hi:
            break
        if tok.start_mark.index >= lo:
            tokens.append(tok)
    opens = [i for i, t in enumerate(tokens) if isinstance(t, FlowMappingStartToken)]
    if not opens or not isinstance(tokens[-1], FlowMappingEndToken) or tokens[-1].start_mark.index != hi - 1:
        return None
    inner = tokens[opens[0] : -1]
    close, prev = tokens[-1], inner[-1]
    if isinstance(prev, FlowMappingStartToken):  # {} or { }: the first entry
        at = prev.end_mark.index
        return text[:at] + entry + text[at:]
    trailing = isinstance(prev, FlowEntryToken)
    depth, last_key = 0, None
    for tok in inner:
        if isinstance(tok, FlowMappingStartToken | FlowSequenceStartToken):
            depth += 1
        elif isinstance(tok, FlowMappingEndToken | FlowSequenceEndToken):
            depth -= 1
        elif isinstance(tok, KeyToken) and depth == 1:
            last_key = tok
    at = prev.end_mark.index
    # After an empty value (`k:` then `}`) a comma right after the colon would read as part of the key.
    comma = " ," if isinstance(prev, ValueToken) else ","
    line_start = -1  # where the last entry's line starts, when that entry begins its line
    if last_key is not None and close.start_mark.line > prev.end_mark.line:
        k = last_key.start_mark.index
        while k > 0 and text[k - 1] in " \t":
            k -= 1
        if k == 0 or text[k - 1] in "\r\n":
            line_start = k
    if last_key is not None and line_start >= 0:
        brk = _BREAK_RE.search(text, at)
        if brk is None or brk.start() >= close.start_mark.index:
            return None
        indent = text[line_start : last_key.start_mark.index]
        line = indent + entry + ("," if trailing else "") + brk.group()
        text = text[: brk.end()] + line + text[brk.end() :]
        return text if trailing else text[:at] + comma + text[at:]
    if trailing:
        return text[:at] + " " + entry + "," + text[at:]
    return text[:at] + comma + " " + entry + text[at:]


def _flow_parts(text: str, function: str, edit: Edit, where: str) -> list[Edit]:
    """A mapping edit of an existing flow mapping as one edit per key; any other edit as itself.

    Setting ``retraining: {reason: ..., ...}`` key by key edits each value's token in place and adds
    the new keys inside the braces, so the mapping keeps its layout, its comments and the spacing
    before an end-of-line comment. When the new value drops a key the old one had, the whole edit is
    left to the splice (ruamel re-renders that mapping, on one line).
    """
    if not isinstance(edit.value, Mapping) or not edit.value:
        return [edit]
    node: Any = find_function(_load(_yaml(), text, where), function, where)[1]
    for key in edit.path:
        if not isinstance(node, CommentedMap) or key not in node:
            return [edit]
        node = node[key]
    if not (isinstance(node, CommentedMap) and node.fa.flow_style() and all(k in edit.value for k in node)):
        return [edit]
    return [Edit((*edit.path, str(k)), v) for k, v in edit.value.items()]


def _apply_plain(fn: dict[str, Any], edit: Edit) -> None:
    parent: Any = fn
    for key in edit.path[:-1]:
        parent = parent[key]
    parent[edit.path[-1]] = to_plain(dict(edit.value)) if isinstance(edit.value, Mapping) else to_plain(edit.value)


def apply_edits(
    text: str,
    function: str,
    edits: Sequence[Edit],
    *,
    where: str = "stack file",
    validate: Validator | None = default_validator,
) -> str:
    """Return ``text`` with ``edits`` applied to the named function; unchanged text when they change nothing.

    An existing scalar is edited in place, token for token; a new key in a flow mapping is inserted
    inside its braces; a new key in a block mapping or a mapping value is spliced in as the lines
    ruamel renders for it (a mapping value over an existing flow mapping is set key by key).
    Raises :class:`ConfigEditError` when the file, the function or an edited key cannot be handled
    (saying what is unsupported), when the result would not parse back to the intended document
    (every other function's effective config unchanged included), or when
    ``validate`` rejects it.
    """
    if not edits:
        return text
    if any(ch in text for ch in "\ufdd0\ufdd1\ufdd2"):
        raise ConfigEditError(f"{where}: contains U+FDD0-U+FDD2, which the editor reserves; edit the file by hand")
    shown, text = text, text.translate(_HIDE)
    data = _load(_yaml(), text, where)
    index, _ = find_function(data, function, where)
    original = to_plain(data, where=where)
    intended = copy.deepcopy(original)
    target = intended["config"][FUNCTIONS_KEY][index]
    for edit in edits:
        try:
            _apply_plain(target, edit)
        except (KeyError, TypeError):
            parent = ".".join(edit.path[:-1])
            raise ConfigEditError(f"{where}: cannot set {edit.describe()}: {parent!r} does not exist") from None
    if intended == original:
        return shown
    new_text = text
    for edit in [part for whole in edits for part in _flow_parts(new_text, function, whole, where)]:
        before = to_plain(find_function(_load(_yaml(), new_text, where), function, where)[1], where=where)
        step = copy.deepcopy(before)
        _apply_plain(step, edit)
        if step == before:
            continue
        token = _token_edit(new_text, function, index, edit, where)
        new_text = token if token is not None else _splice_edits(new_text, function, [edit], where)

    try:
        reparsed = to_plain(_load(_yaml(), new_text, where), where=where)
    except ConfigEditError:
        raise ConfigEditError(
            f"{where}: editing {', '.join(e.describe() for e in edits)} of {function!r} in this layout would not "
            "give valid YAML (unsupported layout); edit the file by hand"
        ) from None
    if reparsed != intended:
        others = [
            str(f.get("name")) for i, (f, g) in enumerate(
                zip(original["config"][FUNCTIONS_KEY], reparsed["config"].get(FUNCTIONS_KEY) or [], strict=False)
            ) if i != index and f != g
        ]  # fmt: skip
        reason = f"would also change function(s) {', '.join(others)}" if others else "would change other keys"
        raise ConfigEditError(
            f"{where}: editing {', '.join(e.describe() for e in edits)} of {function!r} {reason} "
            "(anchors, aliases or an unusual layout); edit the file by hand"
        )
    if validate is not None:
        try:
            validate(intended.get("config") or {})
        except ValueError as exc:
            raise ConfigEditError(f"{where}: edited config is invalid: {str(exc).splitlines()[0]}") from None
    return new_text.translate(_SHOW)


def _exists(root: Any, path: Sequence[Any]) -> bool:
    node = root
    for p in path:
        if (isinstance(node, Mapping) and p in node) or (
            isinstance(node, list) and isinstance(p, int) and 0 <= p < len(node)
        ):
            node = node[p]
        else:
            return False
    return True


# --- files --------------------------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (temp file in the same directory, fsync, rename)."""
    _write_atomic(path, data)


def edit_stack_file(
    path: Path, function: str, edits: Sequence[Edit], *, validate: Validator | None = default_validator
) -> bool:
    """Apply ``edits`` to the file in place (atomically); returns False, writing nothing, when bytes are equal."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigEditError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigEditError(f"{path}: not UTF-8") from None
    new = apply_edits(text, function, edits, where=path.name, validate=validate).encode("utf-8")
    if new == raw:
        return False
    write_atomic(path, new)
    return True


_STACK_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


def stack_file_name(stack: str) -> str:
    """``Pulumi.<stack>.yaml``; the stack name is checked so it cannot escape the directory."""
    if not _STACK_RE.match(stack) or stack in (".", ".."):
        raise ConfigEditError(f"--stack: invalid stack name {stack!r}")
    return f"Pulumi.{stack}.yaml"
