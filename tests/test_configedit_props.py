"""Property tests: over generated stack files, edits change only the edited keys' lines.

The generator varies what a human writes by hand: indentation (2 or 4) and dash offset, quoting
styles, end-of-line comments with odd spacing, comment lines and blank lines between functions,
flow and block mappings, ``secure:`` values, ``~`` nulls and an existing retraining record (block or
flow). Flow mappings come as hand-written stack files have them: on one line with or without inner
spaces and a trailing comma, empty, one entry per line with the brace on its own line, and spread
over continuation lines; the edits add keys into them (``scaling.maxInstances``,
``finops.avgDurationMs``), edit keys inside them and replace a flow retraining record.
"""

from __future__ import annotations

import copy
import difflib
import string
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from gitops.configedit import Edit, apply_edits

VERSIONS = st.from_regex(r"[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}", fullmatch=True)
COMMENT = st.text(alphabet=string.ascii_letters + string.digits + " -:#'\"{}", min_size=0, max_size=20)
SECURE = st.text(alphabet=string.ascii_letters + string.digits + "+/=", min_size=20, max_size=300)


def quoted(value: str, style: int) -> str:
    return [f'"{value}"', f"'{value}'", value if not value.replace(".", "").isdigit() or value.count(".") != 1
            else f'"{value}"'][style]  # fmt: skip


@dataclass
class Doc:
    lines: list[str] = field(default_factory=list)
    editable: dict[str, set[int]] = field(default_factory=dict)  # function -> old line indices it may change
    insert_at: dict[str, int] = field(default_factory=dict)  # function -> where a new key may be inserted

    def add(self, line: str, fn: str | None = None) -> None:
        if fn is not None:
            self.editable.setdefault(fn, set()).add(len(self.lines))
        self.lines.append(line + "\n")


@st.composite
def stack_files(draw: st.DrawFn) -> tuple[str, Doc, list[str]]:
    ind = draw(st.sampled_from([2, 4]))
    off = draw(st.sampled_from([0, ind]))
    sp = " " * ind
    d = Doc()
    for _ in range(draw(st.integers(0, 2))):
        d.add("# " + draw(COMMENT))
    d.add("config:")
    secrets = draw(st.lists(SECURE, min_size=1, max_size=3))
    for i, s in enumerate(secrets):
        d.add(f"{sp}vendor:token{i}:")
        d.add(f"{sp}{sp}secure: {s}")
    d.add(f"{sp}aws:region: us-east-1" + (f"   # {draw(COMMENT)}" if draw(st.booleans()) else ""))
    d.add(f"{sp}inferops:functions:")
    names = draw(st.lists(st.sampled_from(["a", "fraud", "churn", "doc-x", "s3"]), min_size=1, max_size=3,
                          unique=True))  # fmt: skip
    seq = " " * (ind + off)
    item = seq + "- "
    body = " " * (ind + off + 2)
    inner = body + sp
    for name in names:
        if draw(st.booleans()):
            d.add(f"{seq}# about {name}: {draw(COMMENT)}")
        d.add(f"{item}name: {name}" + (f"  # {draw(COMMENT)}" if draw(st.booleans()) else ""))
        d.add(f"{body}platform: aws")
        d.add(f"{body}model:")
        version, stable = draw(VERSIONS), draw(st.one_of(st.none(), VERSIONS))
        d.add(f"{inner}id: {name}")
        eol = " " * draw(st.integers(1, 12)) + f"# {draw(COMMENT)}" if draw(st.booleans()) else ""
        d.add(f"{inner}version: {quoted(version, draw(st.integers(0, 2)))}{eol}", name)
        if stable is not None:
            d.add(f"{inner}stableVersion: {quoted(stable, draw(st.integers(0, 2)))}")
        d.add(f"{inner}fairnessScore: {draw(st.sampled_from(['0.9', '0.910', '1', '1.0e-1']))}")
        traffic = draw(st.sampled_from(["none", "flow", "block"]))
        pct = draw(st.integers(0, 100))
        if traffic == "flow":
            d.add(f"{body}traffic: {{canaryPercent: {pct}}}" + (f" # {draw(COMMENT)}" if draw(st.booleans()) else ""),
                  name)  # fmt: skip
        elif traffic == "block":
            d.add(f"{body}traffic:", name)
            d.add(f"{inner}canaryPercent: {pct}", name)
        d.add(f"{body}runtime: {{memoryMb: 1024, timeoutSeconds: 30}}")
        # scaling: the edits add maxInstances to it (a new key in a flow or block mapping)
        scaling = draw(st.sampled_from(["none", "flow", "flow-empty", "flow-lines", "flow-spread", "block"]))
        eol_c = f"{' ' * draw(st.integers(0, 4))}  # {draw(COMMENT)}" if draw(st.booleans()) else ""
        if scaling == "flow":
            sep = draw(st.sampled_from(["", " "]))
            trail = draw(st.sampled_from(["", ","]))
            d.add(f"{body}scaling: {{{sep}minInstances: 0{trail}{sep}}}{eol_c}", name)
        elif scaling == "flow-empty":
            d.add(f"{body}scaling: {{}}{eol_c}", name)
        elif scaling == "flow-lines":  # one entry per line, closing brace on its own line
            d.add(f"{body}scaling: {{")
            d.add(f"{inner}minInstances: 0{draw(st.sampled_from(['', ',']))}{eol_c}", name)
            d.add(f"{body}}}")
        elif scaling == "flow-spread":  # continuation line, closing brace after the last value
            d.add(f"{body}scaling: {{minInstances: 0,{eol_c}", name)
            d.add(f"{inner}  note: 'a, {{b}}'}}", name)
        elif scaling == "block":
            d.add(f"{body}scaling:")
            d.add(f"{inner}minInstances: 0{eol_c}", name)
        record = draw(st.sampled_from(["none", "block", "flow"]))
        if record == "flow":
            d.add(f"{body}retraining: {{reason: 'old reason: x', reportDigest: sha256:{'0' * 64}, "
                  f'requestedAt: "2026-01-02"}}{eol_c}', name)  # fmt: skip
        elif record == "block":
            d.add(f"{body}retraining:", name)
            d.add(f"{inner}reason: 'old reason: x'", name)
            d.add(f"{inner}reportDigest: sha256:{'0' * 64}", name)
            d.add(f'{inner}requestedAt: "2026-01-02"', name)
        budget = draw(st.sampled_from(["400", "400.5", "1_000"]))
        if draw(st.booleans()):
            d.add(f"{body}finops:")
            d.add(f"{inner}monthlyBudgetUsd: {budget}", name)
            d.add(f"{inner}note: ~", name)  # a new finops key goes after it
        else:
            d.add(f"{body}finops: {{monthlyBudgetUsd: {budget}, note: ~}}" + (f"  # {draw(COMMENT)}" if draw(st.booleans()) else ""), name)  # fmt: skip
        d.insert_at[name] = len(d.lines)
        for _ in range(draw(st.integers(0, 2))):
            d.add("")
        if draw(st.booleans()):
            d.add(f"{sp}# {draw(COMMENT)}")
    d.add(f"{sp}gcp:zone: ~")
    return "".join(d.lines), d, names


def _plain(text: str):
    return YAML(typ="safe", pure=True).load(text)


def _expected(text: str, name: str, edits: list[Edit]):
    data = copy.deepcopy(_plain(text))
    fn = next(f for f in data["config"]["inferops:functions"] if f["name"] == name)
    for e in edits:
        node = fn
        for k in e.path[:-1]:
            node = node[k]
        node[e.path[-1]] = {k: str(v) for k, v in e.value.items()} if isinstance(e.value, dict) else e.value
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=stack_files(), data=st.data())
def test_edits_touch_only_edited_keys(doc: tuple[str, Doc, list[str]], data: st.DataObject) -> None:
    text, meta, names = doc
    name = data.draw(st.sampled_from(names))
    fn = next(f for f in _plain(text)["config"]["inferops:functions"] if f["name"] == name)
    edits: list[Edit] = []
    if data.draw(st.booleans()):
        edits.append(Edit(("model", "version"), data.draw(VERSIONS)))
    if "traffic" in fn and data.draw(st.booleans()):
        edits.append(Edit(("traffic", "canaryPercent"), data.draw(st.integers(0, 100))))
    if "scaling" in fn and data.draw(st.booleans()):
        edits.append(Edit(("scaling", "maxInstances"), data.draw(st.integers(1, 1000))))
    if data.draw(st.booleans()):
        edits.append(Edit(("finops", "avgDurationMs"), data.draw(st.integers(1, 900))))
    if data.draw(st.booleans()):
        edits.append(Edit(("finops", "monthlyBudgetUsd"), data.draw(st.sampled_from([10, 99.5, 400]))))
    if data.draw(st.booleans()):
        reason = data.draw(st.text(alphabet=string.ascii_letters + " :,()#'\"-", min_size=1, max_size=60))
        edits.append(Edit(("retraining",), {"reason": reason, "reportDigest": "sha256:" + "f" * 64,
                                            "requestedAt": DoubleQuotedScalarString("2026-11-25")}))  # fmt: skip

    new = apply_edits(text, name, edits, validate=None)

    assert _plain(new) == _expected(text, name, edits)
    old_lines, new_lines = text.splitlines(keepends=True), new.splitlines(keepends=True)
    allowed = meta.editable.get(name, set())
    for tag, i1, i2, _j1, _j2 in difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if i1 == i2:  # pure insertion: only the new retraining block, at the function's end
            assert i1 == meta.insert_at[name] or i1 - 1 in allowed, (tag, i1, new)
        else:
            assert set(range(i1, i2)) <= allowed, (tag, i1, i2, old_lines[i1:i2], new_lines[_j1:_j2])
    for line in old_lines:
        if "secure:" in line:
            assert line in new_lines
    # applying the same edits again is a no-op (re-runs and re-applies are idempotent)
    assert apply_edits(new, name, edits, validate=None) == new
