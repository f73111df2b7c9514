"""Issue 11, items 4 and 5: anchors, aliases and merge keys never leak an edit into another function;
each edited line keeps its own ending and spacing; valid files are edited, unsupported ones refused
with a message that says what is unsupported."""

from __future__ import annotations

import copy
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from gitops.configedit import ConfigEditError, Edit, apply_edits

FNS = "inferops:functions"


def plain(text: str):
    return YAML(typ="safe", pure=True).load(text)


def functions(text: str) -> dict[str, dict]:
    return {f["name"]: f for f in plain(text)["config"][FNS]}


SHARED = """\
config:
  inferops:functions:
    - name: fraud
      traffic: &tr {canaryPercent: 10}   # shared with churn
      model: {version: &v "2.2.0", stableVersion: "2.1.0"}
    - name: churn
      traffic: *tr
      model: {version: *v, stableVersion: "1.0.0"}
"""


# --- item 4 ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "edit", "needle"),
    [
        ("fraud", Edit(("traffic", "canaryPercent"), 0), "shared through a YAML anchor/alias"),
        ("churn", Edit(("traffic", "canaryPercent"), 0), "shared through a YAML anchor/alias"),
        ("fraud", Edit(("model", "version"), "2.1.0"), "carries anchor &v that other nodes alias"),
    ],
)
def test_an_edit_through_an_anchor_never_changes_another_function(function: str, edit: Edit, needle: str) -> None:
    with pytest.raises(ConfigEditError, match=needle) as exc:
        apply_edits(SHARED, function, [edit], validate=None)
    assert "\n" not in str(exc.value) and str(exc.value).startswith("stack file: ")


def test_an_aliased_scalar_is_unaliased_in_the_edited_function_only() -> None:
    new = apply_edits(SHARED, "churn", [Edit(("model", "version"), "1.0.0")], validate=None)
    assert functions(new)["fraud"] == functions(SHARED)["fraud"]
    assert functions(new)["churn"]["model"] == {"version": "1.0.0", "stableVersion": "1.0.0"}
    assert new == SHARED.replace("{version: *v,", "{version: 1.0.0,")


def test_a_merge_key_is_refused_with_a_reason_not_a_crash() -> None:
    text = (
        "config:\n  base: &b {memoryMb: 512, timeoutSeconds: 30}\n  inferops:functions:\n"
        "    - name: fraud\n      runtime:\n        <<: *b\n        architecture: arm64\n"
    )
    with pytest.raises(ConfigEditError, match="merged in with '<<:'"):
        apply_edits(text, "fraud", [Edit(("runtime", "memoryMb"), 1024)], validate=None)
    # an own key next to the merge is edited in place
    new = apply_edits(text, "fraud", [Edit(("runtime", "architecture"), "x86_64")], validate=None)
    assert new == text.replace("architecture: arm64", "architecture: x86_64")


# --- item 5 ---------------------------------------------------------------------------------------------


def test_the_spacing_before_an_end_of_line_comment_is_kept() -> None:
    text = "config:\n  inferops:functions:\n    - name: f\n      traffic:\n        canaryPercent: 10      # ten\n"
    new = apply_edits(text, "f", [Edit(("traffic", "canaryPercent"), 0)], validate=None)
    assert new == text.replace("canaryPercent: 10      #", "canaryPercent: 0      #")


def test_cr_only_and_mixed_line_endings_are_kept_per_line() -> None:
    cr = "config:\r  inferops:functions:\r    - name: f\r      traffic:\r        canaryPercent: 10  # x\r      a: 1\r"
    new = apply_edits(cr, "f", [Edit(("traffic", "canaryPercent"), 0), Edit(("b",), 2)], validate=None)
    assert "\n" not in new and new == cr.replace("10", "0") + "      b: 2\r"
    mixed = (
        "config:\r\n  inferops:functions:\n    - name: f\r\n      traffic:\n        canaryPercent: 10\n      a: 1\r\n"
    )
    new = apply_edits(mixed, "f", [Edit(("traffic", "canaryPercent"), 0), Edit(("b",), 2)], validate=None)
    assert new == mixed.replace("canaryPercent: 10\n", "canaryPercent: 0\n") + "      b: 2\r\n"


@pytest.mark.parametrize(
    ("text", "edit", "expected"),
    [
        (  # an anchored value nobody aliases
            'config:\n  inferops:functions:\n    - name: f\n      model: {version: &v "2.2.0"}\n',
            Edit(("model", "version"), "2.1.0"),
            'config:\n  inferops:functions:\n    - name: f\n      model: {version: &v "2.1.0"}\n',
        ),
        (  # a flow mapping over several lines, with a comment inside
            "config:\n  inferops:functions:\n    - name: f\n      traffic: {\n        canaryPercent: 10,  # c\n"
            "        x: 1\n      }\n",
            Edit(("traffic", "canaryPercent"), 0),
            "config:\n  inferops:functions:\n    - name: f\n      traffic: {\n        canaryPercent: 0,  # c\n"
            "        x: 1\n      }\n",
        ),
        (  # U+2028 inside another value (a line break to ruamel, not to str.splitlines in the same way)
            'config:\n  note: "a\u2028b"\n  inferops:functions:\n    - name: f\n      traffic: {canaryPercent: 10}\n'
            "      a: 1\n",
            Edit(("traffic", "canaryPercent"), 0),
            'config:\n  note: "a\u2028b"\n  inferops:functions:\n    - name: f\n      traffic: {canaryPercent: 0}\n'
            "      a: 1\n",
        ),
    ],
)
def test_valid_layouts_once_refused_are_edited(text: str, edit: Edit, expected: str) -> None:
    assert apply_edits(text, "f", [edit], validate=None) == expected


def test_u2028_file_gets_a_new_key_in_the_right_place() -> None:
    text = 'config:\n  note: "a\u2028b"\n  inferops:functions:\n    - name: f\n      a: 1\n    - name: g\n      a: 2\n'
    new = apply_edits(text, "f", [Edit(("b",), 3)], validate=None)
    assert new == text.replace("      a: 1\n", "      a: 1\n      b: 3\n")


# --- property: every other function's effective config is unchanged after every edit ------------------

EOLS = st.sampled_from(["\n", "\r\n", "\r"])
WORD = st.text(alphabet=string.ascii_letters + string.digits + " -:#'", max_size=12)


@st.composite
def shared_stacks(draw: st.DrawFn) -> tuple[str, list[str]]:
    """Stack files whose functions share nodes through anchors, aliases and merge keys, with mixed endings."""
    eol_mode = draw(st.sampled_from(["lf", "crlf", "cr", "mixed"]))

    def eol() -> str:
        return {"lf": "\n", "crlf": "\r\n", "cr": "\r"}.get(eol_mode) or draw(EOLS)

    out: list[str] = []

    def add(line: str) -> None:
        out.append(line + eol())

    add("config:")
    add("  base: &base {memoryMb: 512, timeoutSeconds: 30}")
    if draw(st.booleans()):
        add('  note: "x\u2028y"')
    add("  inferops:functions:")
    names = ["a", "b", "c"][: draw(st.integers(2, 3))]
    anchors: list[str] = []
    has_ver = False
    for i, name in enumerate(names):
        add(f"    - name: {name}")
        style = draw(st.sampled_from(["own", "anchor", "alias"] if anchors else ["own", "anchor"]))
        pct = draw(st.integers(0, 100))
        sp = " " * draw(st.integers(1, 6))
        comment = f"{sp}# {draw(WORD)}" if draw(st.booleans()) else ""
        if style == "alias":
            add(f"      traffic: *{draw(st.sampled_from(anchors))}{comment}")
        elif style == "anchor":
            anchors.append(f"t{i}")
            add(f"      traffic: &t{i} {{canaryPercent: {pct}}}{comment}")
        elif draw(st.booleans()):
            add("      traffic: {")
            add(f"        canaryPercent: {pct},{comment}")
            add("        note: 1")
            add("      }")
        else:
            add("      traffic:")
            add(f"        canaryPercent: {pct}{comment}")
        version = draw(
            st.sampled_from(
                ['"2.2.0"', "'1.0.0'", "3.0.1", *(["*ver"] if has_ver else [])] if i else ['&ver "2.2.0"', "'1.0.0'"]
            )
        )
        has_ver = has_ver or version.startswith("&ver")
        add("      model:")
        add(f"        version: {version}{comment}")
        if draw(st.booleans()):
            add("      runtime:")
            add("        <<: *base")
            add("        architecture: arm64")
        else:
            add("      runtime: {memoryMb: 1024, timeoutSeconds: 30}")
    return "".join(out), names


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=shared_stacks(), data=st.data())
def test_no_edit_ever_changes_another_function(doc: tuple[str, list[str]], data: st.DataObject) -> None:
    text, names = doc
    name = data.draw(st.sampled_from(names))
    choices = [
        Edit(("traffic", "canaryPercent"), data.draw(st.integers(0, 100))),
        Edit(("model", "version"), data.draw(st.sampled_from(["2.1.0", "9.9.9", "1.0"]))),
        Edit(("runtime", "memoryMb"), data.draw(st.sampled_from([256, 2048]))),
        Edit(("runtime", "architecture"), "x86_64"),
        Edit(
            ("retraining",),
            {
                "reason": "r: x",
                "reportDigest": "sha256:" + "f" * 64,
                "requestedAt": DoubleQuotedScalarString("2026-11-25"),
            },
        ),
    ]
    edits = data.draw(st.lists(st.sampled_from(choices), min_size=1, max_size=3, unique_by=lambda e: e.path))
    before = functions(text)
    try:
        new = apply_edits(text, name, edits, validate=None)
    except ConfigEditError as exc:
        msg = str(exc)
        assert "\n" not in msg and msg.startswith("stack file: ")
        assert any(w in msg for w in ("anchor", "alias", "'<<:'", "by hand")), msg
        return
    after = functions(new)
    for other in names:
        if other != name:
            assert after[other] == before[other], (other, new)
    want = copy.deepcopy(before[name])
    for e in edits:
        node = want
        for k in e.path[:-1]:
            node = node[k]
        node[e.path[-1]] = {k: str(v) for k, v in e.value.items()} if isinstance(e.value, dict) else e.value
    assert after[name] == want
    # every line ending that was in the file is still there, in the same order, for untouched lines
    if "\r" not in text:
        assert "\r" not in new
    if "\n" not in text:
        assert "\n" not in new
    assert apply_edits(new, name, edits, validate=None) == new  # idempotent
