"""Edits into flow mappings (``{...}``), which hand-written Pulumi stack files use a lot.

Adding a key to ``scaling: {minInstances: 0}`` was refused ("not supported; edit the file by hand"),
so ``finops remediate`` exited 2 for such a function. The key now goes inside the braces, the mapping
stays a flow mapping on its line(s), and every other byte stays as it was. What is still unsafe stays
refused: a flow mapping shared through an anchor, or one with a ``<<:`` merge key.
"""

from __future__ import annotations

import random

import pytest
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from gitops.configedit import ConfigEditError, Edit, apply_edits, read_function

SECURE = "AAABAGZha2Utc2VjdXJlLXZhbHVlLWZvci10ZXN0cy1vbmx5"
HEAD = f"config:\n  vendor:apiKey:\n    secure: {SECURE}\n  inferops:functions:\n    - name: f\n"
OTHER = "    - name: g             # untouched\n      scaling: {minInstances: 1}\n"
MAX = Edit(("scaling", "maxInstances"), 5)


def _edit(body: str, *edits: Edit) -> str:
    return apply_edits(HEAD + body + OTHER, "f", list(edits), validate=None)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (  # one line, end-of-line comment and its spacing kept
            "      scaling: {minInstances: 0}    # by hand\n",
            "      scaling: {minInstances: 0, maxInstances: 5}    # by hand\n",
        ),
        ("      scaling: {}\n", "      scaling: {maxInstances: 5}\n"),  # empty: was "cannot set"
        ("      scaling: { minInstances: 0 }\n", "      scaling: { minInstances: 0, maxInstances: 5 }\n"),
        ("      scaling: {minInstances: 0, }\n", "      scaling: {minInstances: 0, maxInstances: 5, }\n"),
        (  # braces and commas inside quoted values and in the comment are not the mapping's
            "      scaling: {a: '}, b: {', c: \"x,}\"}  # },\n",
            "      scaling: {a: '}, b: {', c: \"x,}\", maxInstances: 5}  # },\n",
        ),
        (  # nested flow collections before the new key
            "      scaling: {l: [1, {z: 2}], m: {n: 3}}\n",
            "      scaling: {l: [1, {z: 2}], m: {n: 3}, maxInstances: 5}\n",
        ),
        (  # an anchor nobody aliases and a tag stay where they are
            "      scaling: &s !!map {minInstances: 0}\n",
            "      scaling: &s !!map {minInstances: 0, maxInstances: 5}\n",
        ),
        (  # one entry per line: a line of its own, same indentation, after the last entry's comment
            "      scaling: {\n        minInstances: 0,   # zero\n        x: 1  # one\n      }\n",
            "      scaling: {\n        minInstances: 0,   # zero\n        x: 1,  # one\n        maxInstances: 5\n      }\n",
        ),
        (  # ... and with a trailing comma, kept on the new last entry
            "      scaling: {\n        minInstances: 0,\n      }\n",
            "      scaling: {\n        minInstances: 0,\n        maxInstances: 5,\n      }\n",
        ),
        (  # continuation lines that are not one entry per line: appended after the last value
            "      scaling: {minInstances: 0,\n                x: 1}\n",
            "      scaling: {minInstances: 0,\n                x: 1, maxInstances: 5}\n",
        ),
    ],
)
def test_a_new_key_goes_inside_the_flow_mapping(body: str, expected: str) -> None:
    assert _edit(body, MAX) == HEAD + expected + OTHER


def test_line_endings_of_a_multi_line_flow_mapping_are_kept() -> None:
    text = (HEAD + "      scaling: {\n        minInstances: 0\n      }\n" + OTHER).replace("\n", "\r\n")
    new = apply_edits(text, "f", [MAX], validate=None)
    assert new == text.replace("minInstances: 0\r\n", "minInstances: 0,\r\n        maxInstances: 5\r\n")


def test_values_that_a_flow_context_would_misread_are_quoted() -> None:
    # Inside {...} ` #` starts a comment and `a: b` is a key and a value; a plain token is kept only
    # when it reads back as itself there (`x:y` does).
    body = "      scaling: {minInstances: 0}\n"
    edits = (
        Edit(("scaling", "note"), "a:b #c"),
        Edit(("scaling", "minInstances"), "x:y"),
        Edit(("scaling", "k"), "a: b"),
    )
    new = _edit(body, *edits)
    assert new == HEAD + '      scaling: {minInstances: x:y, note: "a:b #c", k: "a: b"}\n' + OTHER


def test_an_existing_key_inside_a_flow_mapping_is_edited_in_place() -> None:
    body = "      scaling: {minInstances: 0, maxInstances: 20}   # c\n"
    assert _edit(body, MAX) == HEAD + body.replace("20}", "5}") + OTHER


def test_a_function_written_as_a_flow_mapping_gets_new_keys_and_blocks() -> None:
    text = 'config:\n  inferops:functions:\n    - {name: f, scaling: {minInstances: 0}, model: {version: "1"}}\n'
    new = apply_edits(text, "f", [MAX, Edit(("finops",), {"avgDurationMs": 40, "note": "x, y"})], validate=None)
    assert new == (
        "config:\n  inferops:functions:\n    - {name: f, scaling: {minInstances: 0, maxInstances: 5}, "
        'model: {version: "1"}, finops: {avgDurationMs: 40, note: "x, y"}}\n'
    )


RECORD = {"reason": "drift: a, b", "reportDigest": "sha256:" + "f" * 64,
          "requestedAt": DoubleQuotedScalarString("2026-11-25")}  # fmt: skip


def test_a_flow_retraining_record_is_replaced_key_by_key_keeping_its_layout() -> None:
    # ruamel's own re-rendering of the mapping changed the spacing before the comment (issue 11, item 5).
    body = "      retraining: {reason: 'old: x', reportDigest: sha256:00, requestedAt: \"2026-01-02\"}   # last\n"
    new = _edit(body, Edit(("retraining",), RECORD))
    assert (
        new
        == HEAD
        + (
            f"      retraining: {{reason: 'drift: a, b', reportDigest: sha256:{'f' * 64}, requestedAt: \"2026-11-25\"}}"
            "   # last\n"
        )
        + OTHER
    )
    assert read_function(new, "f", "x")["retraining"] == {**RECORD, "requestedAt": "2026-11-25"}
    multi = "      retraining: {reason: x,   # why\n        reportDigest: y}\n"
    new = _edit(multi, Edit(("retraining",), RECORD))
    assert (
        new
        == HEAD
        + (
            '      retraining: {reason: "drift: a, b",   # why\n'
            f'        reportDigest: sha256:{"f" * 64}, requestedAt: "2026-11-25"}}\n'
        )
        + OTHER
    )


def test_flow_sequences_in_the_function_survive_byte_for_byte() -> None:
    # No edit path sets or extends a sequence (values are scalars or flat mappings); a flow sequence
    # next to an edited key must come through unchanged.
    body = "      tags: [a, 'b, c', {d: e}]   # list\n      scaling: {minInstances: 0}\n"
    assert _edit(body, MAX) == HEAD + body.replace("0}", "0, maxInstances: 5}") + OTHER


def test_re_applying_is_a_no_op_and_other_functions_are_untouched() -> None:
    body = "      scaling: {\n        minInstances: 0  # zero\n      }\n"
    new = _edit(body, MAX)
    assert apply_edits(new, "f", [MAX], validate=None) == new
    assert read_function(new, "g", "x") == {"name": "g", "scaling": {"minInstances": 1}}
    assert SECURE in new and YAML(typ="safe").load(new)["config"]["vendor:apiKey"] == {"secure": SECURE}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (  # the flow mapping is shared with another function through an anchor
            "config:\n  inferops:functions:\n    - name: f\n      scaling: &s {minInstances: 0}\n"
            "    - name: g\n      scaling: *s\n",
            "scaling &s of 'f' is shared through a YAML anchor/alias",
        ),
        (  # a merge key: the new key would override a merged value
            "config:\n  base: &b {maxInstances: 3}\n  inferops:functions:\n    - name: f\n"
            "      scaling: {<<: *b, minInstances: 0}\n",
            "would override a value merged in with '<<:'",
        ),
    ],
)
def test_what_stays_unsafe_is_still_refused(text: str, reason: str) -> None:
    with pytest.raises(ConfigEditError, match=reason):
        apply_edits(text, "f", [MAX], validate=None)


def test_the_edited_config_is_still_validated() -> None:
    # components.spec.ScalingSpec: minInstances must not exceed maxInstances.
    text = (
        "config:\n  inferops:functions:\n    - name: f\n      platform: aws\n      region: us-east-1\n"
        "      model: {id: f, version: '1', artifactUri: 's3://b/m.json', cardUrl: 'https://models.example.com/f/card',"
        " lineageUrl: 'https://lineage.example.com/f', fairnessScore: 0.9, riskTier: minimal}\n"
        "      runtime: {memoryMb: 512, timeoutSeconds: 30}\n      scaling: {minInstances: 8}\n"
        "      finops: {monthlyBudgetUsd: 10, expectedMonthlyRequests: 1000, avgDurationMs: 50, costCenter: ml,"
        " owner: ml@example.com, environment: dev}\n"
    )
    with pytest.raises(ConfigEditError, match="edited config is invalid"):
        apply_edits(text, "f", [Edit(("scaling", "maxInstances"), 3)])
    new = apply_edits(text, "f", [Edit(("scaling", "maxInstances"), 9)])
    assert "scaling: {minInstances: 8, maxInstances: 9}\n" in new


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("      scaling: {minInstances: 0, note: }\n", "      scaling: {minInstances: 0, note: , maxInstances: 5 }\n"),
        (
            "      scaling: {\n        minInstances: 0,\n        note:   # none\n      }\n",
            "      scaling: {\n        minInstances: 0,\n        note: ,   # none\n        maxInstances: 5\n      }\n",
        ),
    ],
)
def test_after_an_empty_value_the_comma_is_not_read_as_part_of_the_key(body: str, expected: str) -> None:
    # `{note:, x: 1}` reads as a key "note:"; `{note: , x: 1}` as note: null.
    assert _edit(body, MAX) == HEAD + expected + OTHER


def test_generated_flow_layouts_take_a_new_key_and_leave_the_rest() -> None:
    # Seeded layouts: entries of every kind (quoted braces and commas, nested collections, nulls,
    # empty values, aliases), separators and closings on one line or several, comments inside.
    rng = random.Random(11)
    atoms = ["1", "'a, }'", '"x{y"', "[1, {z: 2}]", "{q: 1}", "~", "", "a:b", "*q"]
    tail = "    - name: g\n      scaling: {m: *q}   # g\n"
    head = "config:\n  q: &q 3\n" + HEAD.removeprefix("config:\n")
    done = 0
    for _ in range(400):
        n = rng.randint(0, 3)
        entries = [f"k{j}: {rng.choice(atoms)}" for j in range(n)]
        sep = rng.choice([", ", ",", ",\n        ", ",  # c\n        "])
        start = rng.choice(["{", "{ ", "{\n        "])
        end = rng.choice(["}", " }", "\n      }", ",\n      }", ", }", "  # x\n      }"]) if n else "}"
        text = f"{head}      scaling: {start}{sep.join(entries)}{end}   # e\n{tail}"
        try:
            YAML(typ="safe").load(text)
        except Exception:  # a generated layout that is not YAML (e.g. an empty value before a comma)
            continue
        value = rng.choice([5, "a: b", "x,y", "p#q", "ok"])
        new = apply_edits(text, "f", [Edit(("scaling", "new"), value)], validate=None)
        parsed = YAML(typ="safe").load(new)
        assert parsed["config"]["inferops:functions"][0]["scaling"]["new"] == value, new
        before = YAML(typ="safe").load(text)["config"]["inferops:functions"][0]["scaling"] or {}
        assert parsed["config"]["inferops:functions"][0]["scaling"] == {**before, "new": value}
        assert new.endswith("   # e\n" + tail) and new.startswith(text.split("      scaling:")[0])
        done += 1
    assert done > 300
