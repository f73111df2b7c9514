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


# --- keys the function inherits: set on it, and said so --------------------------------------------

# fraud-scorer does not carry avgDurationMs (inferops:defaults gives it 120) nor scaling.maxInstances
# (the program's default, components.spec.ScalingSpec, is 10); churn carries its own avgDurationMs.
INHERITING = (
    STACK.replace("    environment: dev\n", "    environment: dev\n    avgDurationMs: 120   # shared estimate\n", 1)
    .replace("      scaling: {minInstances: 0, maxInstances: 20}\n", "", 1)
    .replace("        expectedMonthlyRequests: 3000000   # the plan's assumption\n        avgDurationMs: 120\n",
             "        expectedMonthlyRequests: 3000000   # the plan's assumption\n", 1)
)  # fmt: skip
INHERITED_PROPOSALS = [
    {"action": "rightsize", "edits": [{"path": "scaling.maxInstances", "from": 10, "to": 37}], "reasons": ["peak"]},
    {"action": "update-estimates", "edits": [
        {"path": "finops.expectedMonthlyRequests", "from": 3000000, "to": 63000000},
        {"path": "finops.avgDurationMs", "from": 120, "to": 40}], "reasons": ["observed usage"]},
]  # fmt: skip


def _pure_report(proposals: list[dict[str, Any]]) -> Any:
    doc = {"schema": "finops.report/v1", "stack": "dev", "functions": [{"name": "f", "proposals": proposals}]}
    return parse_report(json.dumps(doc).encode())


def test_an_inherited_key_is_set_on_the_function_and_said_so() -> None:
    report = _pure_report(INHERITED_PROPOSALS)
    fn = {"scaling": {"minInstances": 0}, "finops": {"expectedMonthlyRequests": 3000000}}
    change = plan_change(report, "dev", "f", fn, {"avgDurationMs": 120, "owner": "x@example.com"})
    assert change is not None
    assert [(e.path, e.value) for e in change.edits] == [
        (("scaling", "maxInstances"), 37), (("finops", "expectedMonthlyRequests"), 63000000),
        (("finops", "avgDurationMs"), 40)]  # fmt: skip
    assert change.changes == [
        "scaling.maxInstances: 10 -> 37 (sets it on f; was inherited from the program's default: 10)",
        "finops.expectedMonthlyRequests: 3000000 -> 63000000",  # its own key: said as before
        "finops.avgDurationMs: 120 -> 40 (sets it on f; was inherited from inferops:defaults: 120)",
    ]
    for text in (change.body, change.pr_body):
        assert "Now set on the function" in text and "no longer change them for it" in text
    assert "- finops.avgDurationMs (was 120, from inferops:defaults)" in change.body.splitlines()
    assert "- scaling.maxInstances (was 10, from the program's default)" in change.body.splitlines()
    assert "- `finops.avgDurationMs` (was 120, from inferops:defaults)" in change.pr_body.splitlines()
    assert "expectedMonthlyRequests (was" not in change.body and "expectedMonthlyRequests` (was" not in change.pr_body


def test_own_keys_only_say_nothing_about_inheritance() -> None:
    fn = {"scaling": {"maxInstances": 10}, "finops": {"expectedMonthlyRequests": 3000000, "avgDurationMs": 120}}
    change = plan_change(_pure_report(INHERITED_PROPOSALS), "dev", "f", fn, {"avgDurationMs": 999})
    assert change is not None and change.changes == [
        "scaling.maxInstances: 10 -> 37",
        "finops.expectedMonthlyRequests: 3000000 -> 63000000",
        "finops.avgDurationMs: 120 -> 40",  # its own 120, whatever the defaults say
    ]
    assert "Now set on the function" not in change.body and "Now set on the function" not in change.pr_body


def test_an_inherited_value_already_at_the_target_is_not_written() -> None:
    report = _pure_report(
        [{"action": "update-estimates", "edits": [{"path": "finops.avgDurationMs", "from": 120, "to": 40}]}]
    )
    # the defaults say 40 now (someone applied it there): the function needs no key of its own
    assert plan_change(report, "dev", "f", {"finops": {"expectedMonthlyRequests": 1}}, {"avgDurationMs": 40}) is None
    assert plan_change(_pure_report([{"action": "rightsize", "edits": [
        {"path": "scaling.maxInstances", "from": 20, "to": 10}]}]), "dev", "f", {"scaling": {}}) is None  # fmt: skip


def test_defaults_changed_since_the_report_are_left_alone() -> None:
    report = _pure_report(
        [{"action": "update-estimates", "edits": [{"path": "finops.avgDurationMs", "from": 120, "to": 40}]}]
    )
    fn = {"finops": {"expectedMonthlyRequests": 1}}
    assert plan_change(report, "dev", "f", fn, {"avgDurationMs": 150}) is None
    both = _pure_report([{"action": "update-estimates", "edits": [
        {"path": "finops.avgDurationMs", "from": 120, "to": 40},
        {"path": "finops.expectedMonthlyRequests", "from": 1, "to": 5}]}])  # fmt: skip
    change = plan_change(both, "dev", "f", fn, {"avgDurationMs": 150})
    assert change is not None and [(e.path, e.value) for e in change.edits] == [
        (("finops", "expectedMonthlyRequests"), 5)
    ]
    assert (
        "finops.avgDurationMs is 150 now (inherited from inferops:defaults), the report saw 120: left alone"
        in change.body
    )


def test_remediate_sets_inherited_keys_on_the_function_only_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from components.spec import parse_stack_config
    from gitops.configedit import read_function
    from inferops.safeload import loads_yaml

    parse_stack_config(loads_yaml(INHERITING, "Pulumi.dev.yaml")["config"])  # a valid stack to start from
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    git(work, "config", "user.email", "t@example.com")
    git(work, "config", "user.name", "t")
    (work / "Pulumi.dev.yaml").write_text(INHERITING)
    git(work, "add", ".")
    git(work, "commit", "-qm", "stack")
    report = _report(tmp_path / "report.json", INHERITED_PROPOSALS)
    args = ["remediate", "--stack", "dev", "--function", "fraud-scorer", "--report", str(report), "--repo", str(work)]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changes"] == [
        "scaling.maxInstances: 10 -> 37 (sets it on fraud-scorer; was inherited from the program's default: 10)",
        "finops.expectedMonthlyRequests: 3000000 -> 63000000",
        "finops.avgDurationMs: 120 -> 40 (sets it on fraud-scorer; was inherited from inferops:defaults: 120)",
    ]
    new = git(work, "show", f"{out['branch']}:Pulumi.dev.yaml") + "\n"
    expected = INHERITING.replace(
        "        expectedMonthlyRequests: 3000000   # the plan's assumption\n        latencySloMs: 250\n",
        "        expectedMonthlyRequests: 63000000   # the plan's assumption\n        latencySloMs: 250\n"
        "        avgDurationMs: 40\n      scaling:\n        maxInstances: 37\n",
    )
    assert new == expected  # the defaults, the secure value, comments and churn are byte for byte the same
    assert read_function(new, "churn", "x") == read_function(INHERITING, "churn", "x")
    assert loads_yaml(new, "x")["config"]["inferops:defaults"] == {
        "costCenter": "ml-platform", "owner": "ml-platform@example.com", "environment": "dev", "avgDurationMs": 120}  # fmt: skip
    msg = git(work, "log", "-1", "--format=%B", out["branch"])
    assert "finops.avgDurationMs: 120 -> 40 (sets it on fraud-scorer; was inherited from inferops:defaults: 120)" in msg
    assert "Now set on the function:" in msg


def test_read_function_and_defaults() -> None:
    from gitops.configedit import read_function, read_function_and_defaults

    view = read_function_and_defaults(INHERITING, "fraud-scorer", "Pulumi.dev.yaml")
    assert view["function"] == read_function(INHERITING, "fraud-scorer", "Pulumi.dev.yaml")
    assert view["defaults"] == {
        "costCenter": "ml-platform", "owner": "ml-platform@example.com", "environment": "dev", "avgDurationMs": 120}  # fmt: skip
    no_defaults = STACK.replace("  inferops:defaults:\n", "  other:defaults:\n", 1)
    assert read_function_and_defaults(no_defaults, "churn", "x")["defaults"] == {}


def test_remediate_adds_a_key_into_a_flow_mapping(
    repo: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `scaling: {minInstances: 0}` as people write it by hand: setting scaling.maxInstances was refused
    # ("adding ... to a flow mapping is not supported"), exit 2. The key goes inside the braces now.
    work, _ = repo
    flow = STACK.replace(
        "      scaling: {minInstances: 0, maxInstances: 20}\n", "      scaling: {minInstances: 0}    # by hand\n"
    )
    assert flow != STACK
    (work / "Pulumi.dev.yaml").write_text(flow)
    git(work, "commit", "-qam", "flow scaling")
    report = _report(tmp_path / "report.json", INHERITED_PROPOSALS[:1])
    args = ["remediate", "--stack", "dev", "--function", "fraud-scorer", "--report", str(report), "--repo", str(work)]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changes"] == [
        "scaling.maxInstances: 10 -> 37 (sets it on fraud-scorer; was inherited from the program's default: 10)"
    ]
    new = git(work, "show", f"{out['branch']}:Pulumi.dev.yaml") + "\n"
    assert new == flow.replace(
        "scaling: {minInstances: 0}    # by hand", "scaling: {minInstances: 0, maxInstances: 37}    # by hand"
    )
