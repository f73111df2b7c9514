"""Round-trip edits of Pulumi.<stack>.yaml: bytes outside the edited keys never change."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from gitops.configedit import (
    ConfigEditError,
    Edit,
    apply_edits,
    edit_stack_file,
    read_function,
    stack_file_name,
    write_atomic,
)

SECURE = "AAABAHk1cm5lcS1zZWNyZXQtdmFsdWUtdGhhdC1pcy12ZXJ5LWxvbmctYW5kLW11c3Qtbm90LWJlLWZvbGRlZC0xMjM0NTY3ODkw"

STACK = f"""\
# Dev stack. Comments, blank lines and quoting must survive remediation edits.
config:
  aws:region: us-east-1
  datadog:apiKey:
    secure: {SECURE}
  inferops:gcpBillingAccount: 012345-6789AB-CDEF01
  inferops:defaults:                 # merged under every function's finops block
    costCenter: ml-platform
    owner: 'ml-platform@example.com'
    environment: dev

  inferops:functions:
    # the canary under watch
    - name: fraud-scorer             # DNS-safe, unique in the stack
      platform: aws                  # aws | azure | gcp | kubernetes
      region: us-east-1
      model:
        id: fraud-scorer
        version: "2.2.0"             # the canary candidate
        stableVersion: '2.1.0'       # rollback target
        artifactUri: s3://example-models/fraud-scorer/2.2.0/model.json
        cardUrl: https://models.example.com/fraud-scorer/card
        lineageUrl: https://lineage.example.com/fraud-scorer
        fairnessScore: 0.910
        riskTier: high
        approvalRef: https://github.com/example/models/pull/42
      runtime: {{memoryMb: 1024, timeoutSeconds: 30, architecture: arm64}}
      traffic: {{canaryPercent: 10}}   # share on `version`
      finops:
        monthlyBudgetUsd: 400
        expectedMonthlyRequests: 3_000_000
        avgDurationMs: 120

    # second function, untouched
    - name: churn-predictor
      platform: azure
      region: eastus
      model:
        id: churn-predictor
        version: "1.4.0"
        stableVersion: "1.4.0"
        artifactUri: https://examplemodels.blob.core.windows.net/models/churn/1.4.0/model.json
        cardUrl: https://models.example.com/churn-predictor/card
        lineageUrl: https://lineage.example.com/churn-predictor
        fairnessScore: 0.88
        riskTier: limited
      runtime: {{memoryMb: 512, timeoutSeconds: 60}}
      finops:
        monthlyBudgetUsd: 150
        expectedMonthlyRequests: 1000000
        avgDurationMs: 200
  gcp:zone: ~                        # trailing key after the functions
"""

DIGEST = "sha256:" + "ab" * 32
RETRAIN = {"reason": "major data drift: 2 of 9 features (amount, country)", "reportDigest": DIGEST,
           "requestedAt": DoubleQuotedScalarString("2026-11-25")}  # fmt: skip
ROLLBACK = [Edit(("model", "version"), "2.1.0"), Edit(("traffic", "canaryPercent"), 0)]


def changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in difflib.ndiff(old.splitlines(keepends=True), new.splitlines(keepends=True)):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


def test_rollback_changes_exactly_the_two_lines() -> None:
    new = apply_edits(STACK, "fraud-scorer", ROLLBACK)
    removed, added = changed_lines(STACK, new)
    assert removed == [
        '        version: "2.2.0"             # the canary candidate\n',
        "      traffic: {canaryPercent: 10}   # share on `version`\n",
    ]
    assert added == [
        '        version: "2.1.0"             # the canary candidate\n',  # quoting of the edited key kept
        "      traffic: {canaryPercent: 0}   # share on `version`\n",  # only the token changes: spacing kept
    ]


def test_retraining_block_is_inserted_before_the_blank_line_and_comment() -> None:
    new = apply_edits(STACK, "fraud-scorer", [Edit(("retraining",), RETRAIN)])
    removed, added = changed_lines(STACK, new)
    assert removed == []
    assert added == [
        "      retraining:\n",
        "        reason: 'major data drift: 2 of 9 features (amount, country)'\n",
        f"        reportDigest: {DIGEST}\n",
        '        requestedAt: "2026-11-25"\n',
    ]
    assert new.index("avgDurationMs: 120\n      retraining:") > 0
    assert 'requestedAt: "2026-11-25"\n\n    # second function, untouched\n' in new
    assert read_function(new, "fraud-scorer", "x")["retraining"]["requestedAt"] == "2026-11-25"


def test_replacing_an_existing_retraining_record_touches_only_its_lines() -> None:
    first = apply_edits(STACK, "fraud-scorer", [Edit(("retraining",), RETRAIN)])
    second = apply_edits(first, "fraud-scorer", [Edit(("retraining",), {**RETRAIN, "reason": "minor data drift"})])
    removed, added = changed_lines(first, second)
    assert removed == ["        reason: 'major data drift: 2 of 9 features (amount, country)'\n"]
    assert added == ["        reason: 'minor data drift'\n"]  # the record's quoting style is kept


def test_secure_values_comments_and_other_functions_are_byte_identical() -> None:
    new = apply_edits(STACK, "fraud-scorer", [*ROLLBACK, Edit(("retraining",), RETRAIN)])
    assert f"    secure: {SECURE}\n" in new
    assert STACK.split("    # second function")[1] == new.split("    # second function")[1]
    assert new.startswith(STACK.split('        version: "2.2.0"')[0])
    assert "  gcp:zone: ~                        # trailing key after the functions\n" in new


def test_no_edit_returns_identical_text() -> None:
    assert apply_edits(STACK, "fraud-scorer", []) == STACK
    same = [Edit(("model", "version"), "2.2.0"), Edit(("traffic", "canaryPercent"), 10)]
    assert apply_edits(STACK, "fraud-scorer", same) == STACK


def test_invalid_result_is_refused_by_the_spec() -> None:
    pytest.importorskip("components.spec")
    bad = [Edit(("traffic", "canaryPercent"), 250)]
    with pytest.raises(ConfigEditError, match=r"canaryPercent"):
        apply_edits(STACK, "fraud-scorer", bad, where="Pulumi.dev.yaml")


def test_missing_function_and_keys_are_named() -> None:
    with pytest.raises(ConfigEditError, match="'ghost' not found"):
        apply_edits(STACK, "ghost", ROLLBACK, validate=None)
    with pytest.raises(ConfigEditError, match="scaling"):
        apply_edits(STACK, "fraud-scorer", [Edit(("scaling", "maxInstances"), 3)], validate=None)
    with pytest.raises(ConfigEditError, match="not valid YAML"):
        apply_edits("config: [\n", "x", ROLLBACK, validate=None)


def test_crlf_and_missing_final_newline() -> None:
    crlf = STACK.replace("\n", "\r\n")
    new = apply_edits(crlf, "fraud-scorer", [*ROLLBACK, Edit(("retraining",), RETRAIN)])
    assert "\n" not in new.replace("\r\n", "")
    assert new.count("\r\n") == crlf.count("\r\n") + 4
    trimmed = STACK.rstrip("\n")
    assert apply_edits(trimmed, "fraud-scorer", ROLLBACK).endswith("# trailing key after the functions")


def test_edit_stack_file_validates_before_writing(tmp_path: Path) -> None:
    pytest.importorskip("components.spec")
    dev = tmp_path / "Pulumi.dev.yaml"
    prod = tmp_path / "Pulumi.prod.yaml"
    dev.write_text(STACK)
    prod.write_text(STACK)
    before = dev.stat().st_ino
    with pytest.raises(ConfigEditError):
        edit_stack_file(dev, "fraud-scorer", [Edit(("model", "version"), "not a version!")])
    assert dev.read_text() == STACK and dev.stat().st_ino == before  # nothing written
    assert edit_stack_file(dev, "fraud-scorer", ROLLBACK) is True
    assert dev.stat().st_ino != before  # replaced by rename, not rewritten in place
    assert prod.read_text() == STACK  # other stacks untouched
    assert edit_stack_file(dev, "fraud-scorer", ROLLBACK) is False  # idempotent: no write
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Pulumi.dev.yaml", "Pulumi.prod.yaml"]


def test_write_atomic_keeps_mode_and_leaves_no_temp_on_failure(tmp_path: Path) -> None:
    p = tmp_path / "f.yaml"
    p.write_text("a: 1\n")
    os.chmod(p, 0o640)
    write_atomic(p, b"a: 2\n")
    assert p.read_bytes() == b"a: 2\n" and (p.stat().st_mode & 0o777) == 0o640
    with pytest.raises(OSError):
        write_atomic(tmp_path / "missing-dir" / "f.yaml", b"x")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["f.yaml"]


@pytest.mark.parametrize("stack", ["../etc", "a/b", "", ".."])
def test_stack_names_cannot_escape(stack: str) -> None:
    with pytest.raises(ConfigEditError, match="--stack"):
        stack_file_name(stack)
    assert stack_file_name("prod-eu.1") == "Pulumi.prod-eu.1.yaml"
