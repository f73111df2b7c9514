"""`python -m finops remediate` with real Git: a temporary repository and a local bare remote (no network)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from finops.cli import main
from finops.decide import ReportError, parse_report, plan_change

SECURE = "AAABAGZha2Utc2VjdXJlLXZhbHVlLWZvci10ZXN0cy1vbmx5LWl0LWlzLW5vdC1hLXJlYWwtc2VjcmV0LTAxMjM0NTY3ODk="
STACK = f"""\
# test stack: comments and the secure value must survive
config:
  aws:region: us-east-1
  vendor:apiKey:
    secure: {SECURE}
  inferops:defaults:
    costCenter: ml-platform
    owner: ml-platform@example.com
    environment: dev
  inferops:functions:
    - name: fraud-scorer             # over-provisioned
      platform: aws
      region: us-east-1
      model:
        id: fraud-scorer
        version: "2.1.0"
        artifactUri: s3://example-models/fraud-scorer/2.1.0/model.json
        cardUrl: https://models.example.com/fraud-scorer/card
        lineageUrl: https://lineage.example.com/fraud-scorer
        fairnessScore: 0.93
        riskTier: limited
      runtime: {{memoryMb: 3008, timeoutSeconds: 30, architecture: arm64}}
      scaling: {{minInstances: 0, maxInstances: 20}}
      finops:
        monthlyBudgetUsd: 400
        expectedMonthlyRequests: 3000000   # the plan's assumption
        avgDurationMs: 120
        latencySloMs: 250
    - name: churn
      platform: aws
      region: us-east-1
      model:
        id: churn
        version: "1.4.0"
        artifactUri: s3://example-models/churn/1.4.0/model.json
        cardUrl: https://models.example.com/churn/card
        lineageUrl: https://lineage.example.com/churn
        fairnessScore: 0.9
        riskTier: minimal
      runtime: {{memoryMb: 3008, timeoutSeconds: 30}}
      finops:
        monthlyBudgetUsd: 100
        expectedMonthlyRequests: 1000
        avgDurationMs: 50
"""


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _report(path: Path, proposals: list[dict[str, Any]], stack: str = "dev") -> Path:
    path.write_text(json.dumps({
        "schema": "finops.report/v1", "stack": stack, "month": "2026-11", "as_of": "2026-11-20",
        "functions": [
            {"name": "fraud-scorer", "forecast_usd": 103.5, "budget_usd": 400.0, "proposals": proposals,
             "rightsizing": {"assumptions": ["Lambda CPU scales with memory (1 vCPU at 1,769 MB)"]}},
            {"name": "churn", "proposals": []},
        ]}, indent=2))  # fmt: skip
    return path


PROPOSALS = [
    {"action": "rightsize", "edits": [{"path": "runtime.memoryMb", "from": 3008, "to": 1769}],
     "reasons": ["memoryMb 3008 -> 1769 (lower): estimated p95 47 ms"]},
    {"action": "update-estimates", "edits": [
        {"path": "finops.expectedMonthlyRequests", "from": 3000000, "to": 63000000},
        {"path": "finops.avgDurationMs", "from": 120, "to": 40}], "reasons": ["observed usage"]},
]  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, Path]:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    git(work, "config", "user.email", "t@example.com")
    git(work, "config", "user.name", "t")
    (work / "Pulumi.dev.yaml").write_text(STACK)
    git(work, "add", ".")
    git(work, "commit", "-qm", "stack")
    git(work, "remote", "add", "origin", str(remote))
    git(work, "push", "-q", "origin", "main")
    return work, remote


def test_remediate_commits_pushes_and_keeps_every_other_byte(
    repo: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work, remote = repo
    report = _report(tmp_path / "report.json", PROPOSALS)
    args = ["remediate", "--stack", "dev", "--function", "fraud-scorer", "--report", str(report), "--repo", str(work)]
    assert main([*args, "--push", "origin"]) == 0
    branch = capsys.readouterr().out.strip()
    assert branch.startswith("finops/dev/fraud-scorer-")
    assert git(remote, "rev-parse", branch)  # pushed
    new = git(work, "show", f"{branch}:Pulumi.dev.yaml")
    expected = (
        STACK.replace("memoryMb: 3008, timeoutSeconds: 30, architecture: arm64", "memoryMb: 1769, timeoutSeconds: 30, architecture: arm64")
        .replace("expectedMonthlyRequests: 3000000   # the plan's assumption", "expectedMonthlyRequests: 63000000   # the plan's assumption")
        .replace("avgDurationMs: 120\n", "avgDurationMs: 40\n", 1)
    )  # fmt: skip
    assert new + "\n" == expected  # secure value, comments and the other function untouched
    msg = git(work, "log", "-1", "--format=%B", branch)
    assert msg.startswith("chore(finops): rightsize+update-estimates fraud-scorer on dev")
    assert "runtime.memoryMb: 3008 -> 1769" in msg and "Inferops-Report: sha256:" in msg
    # the checkout is never touched
    assert (work / "Pulumi.dev.yaml").read_text() == STACK and git(work, "status", "--porcelain") == ""
    # re-running on the same report: no second commit, same branch
    assert main([*args, "--push", "origin"]) == 0
    assert git(work, "rev-list", "--count", branch) == "2"


def test_commit_hooks_run_unless_no_verify(
    repo: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same write-back options as drift remediate (gitops.cli): a pre-commit hook that refuses the
    # commit is a refusal (exit 2, nothing committed); --no-verify skips it as `git commit` would.
    work, _ = repo
    hook = work / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'policy: no bots' >&2\nexit 1\n")
    hook.chmod(0o755)
    report = _report(tmp_path / "report.json", PROPOSALS)
    args = ["remediate", "--stack", "dev", "--function", "fraud-scorer", "--report", str(report), "--repo", str(work)]
    assert main([*args, "--git-timeout", "60"]) == 2
    err = capsys.readouterr().err
    assert err.count("finops: error:") == 1 and "pre-commit" in err
    assert not git(work, "branch", "--list", "finops/*")
    assert main([*args, "--no-verify"]) == 0
    assert capsys.readouterr().out.strip().startswith("finops/dev/fraud-scorer-")


def test_no_change_no_commit_and_bad_input(
    repo: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work, _remote = repo
    empty = _report(tmp_path / "empty.json", [])
    assert (
        main(["remediate", "--stack", "dev", "--function", "churn", "--report", str(empty), "--repo", str(work)]) == 0
    )
    assert capsys.readouterr().out == ""
    assert git(work, "branch", "--list", "finops/*") == ""
    other = _report(tmp_path / "other.json", PROPOSALS, stack="prod")
    assert (
        main(["remediate", "--stack", "dev", "--function", "fraud-scorer", "--report", str(other), "--repo", str(work)])
        == 2
    )
    assert capsys.readouterr().err.strip() == f"finops: error: {other}: stack: the report is for 'prod', not 'dev'"
    # an edit outside what FinOps may change is refused before Git is touched
    bad = _report(tmp_path / "bad.json", [{"action": "x", "edits": [{"path": "model.version", "to": 1}]}])
    assert (
        main(["remediate", "--stack", "dev", "--function", "fraud-scorer", "--report", str(bad), "--repo", str(work)])
        == 2
    )
    assert "edits[0].path: must be one of" in capsys.readouterr().err


def test_decisions_are_pure_and_respect_later_changes() -> None:
    report = parse_report(json.dumps({"schema": "finops.report/v1", "stack": "dev", "functions": [
        {"name": "f", "proposals": PROPOSALS}]}).encode())  # fmt: skip
    fn = {"runtime": {"memoryMb": 3008}, "finops": {"expectedMonthlyRequests": 3000000, "avgDurationMs": 120}}
    change = plan_change(report, "dev", "f", fn)
    assert change is not None and change.loop == "finops" and change.action == "rightsize+update-estimates"
    assert [(e.path, e.value) for e in change.edits] == [
        (("runtime", "memoryMb"), 1769), (("finops", "expectedMonthlyRequests"), 63000000), (("finops", "avgDurationMs"), 40)]  # fmt: skip
    # already applied: nothing to do
    done = {"runtime": {"memoryMb": 1769}, "finops": {"expectedMonthlyRequests": 63000000, "avgDurationMs": 40}}
    assert plan_change(report, "dev", "f", done) is None
    # someone changed memory since the report: their value stays
    moved = {"runtime": {"memoryMb": 2048}, "finops": {"expectedMonthlyRequests": 63000000, "avgDurationMs": 40}}
    assert plan_change(report, "dev", "f", moved) is None
    # a missing scaling block is created rather than failing
    r2 = parse_report(json.dumps({"schema": "finops.report/v1", "stack": "dev", "functions": [{"name": "f", "proposals": [
        {"action": "rightsize", "edits": [{"path": "scaling.maxInstances", "from": 10, "to": 37}]}]}]}).encode())  # fmt: skip
    c2 = plan_change(r2, "dev", "f", {"runtime": {"memoryMb": 128}})
    assert c2 is not None and [(e.path, e.value) for e in c2.edits] == [(("scaling",), {"maxInstances": 37})]
    with pytest.raises(ReportError, match="schema"):
        parse_report(b'{"schema": "inferops.plan/v1"}', "r.json")
