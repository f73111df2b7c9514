"""The README's drift-loop section: every command it shows is one the CLIs accept today.

The section's ``sh`` blocks are parsed (continuations joined, comments dropped) and each command goes
through the real argument parser of its CLI (``drift``, ``inferops``) with no cloud: ``parse_args``
plus the capture window's own parsing (``--window`` / ``--since`` / ``--until``). The ``yaml`` block
is merged into the dev stack and must pass the spec validation, the ``jq`` path must name the
``captureUri`` the program exports, and the workflow must run the same commands.
"""

from __future__ import annotations

import copy
import re
import shlex
from typing import Any

import pytest
from ruamel.yaml import YAML

from components.spec import parse_stack_config
from drift import capture
from drift.cli import build_parser as drift_parser
from inferops.__main__ import build_parser as inferops_parser
from inferops.harness import ProgramRun
from tests.conftest import ROOT, function_config

README = ROOT / "README.md"
WORKFLOW = ROOT / ".github" / "workflows" / "drift.yml"
SECTION = "## The drift loop, end to end"


def section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return text[start:end]


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", section(), flags=re.S)


def commands() -> list[str]:
    """Each shell command of the section, continuations joined, comments and output lines dropped."""
    out: list[str] = []
    for block in blocks("sh"):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            out.append(re.sub(r"\s+#.*$", "", line))
    return out


def argv_of(command: str, prog: str) -> list[str]:
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", prog], command
    return [w.replace("$URI", "s3://capture-bucket/prefix/") for w in words[3:]]


def test_the_section_walks_config_deploy_output_check_remediate() -> None:
    text = section()
    order = ["capture:", "pulumi up", "captureUri", "drift check --capture", "exit 1", "drift remediate", "drift.yml"]
    positions = [text.index(step) for step in order]
    assert positions == sorted(positions), "the walk-through must go config -> up -> output -> check -> PR"
    assert "referenceUri" in text


def test_every_drift_command_parses() -> None:
    drift = [c for c in commands() if c.startswith("python -m drift")]
    assert {shlex.split(c)[3] for c in drift} == {"check", "remediate"}
    for command in drift:
        args = drift_parser().parse_args(argv_of(command, "drift"))  # SystemExit(2) on an unknown option
        if args.command == "check":
            assert args.capture, command
            # the window the command names is one drift check accepts (exactly one form of it)
            assert (args.window is None) != (args.since is None and args.until is None), command
            if args.window:
                capture.parse_duration(args.window)
            else:
                assert capture.parse_time(args.since, "--since") < capture.parse_time(args.until, "--until")
            if not args.compare_variants:
                assert (args.stack, args.function) == ("dev", "fraud-scorer"), "the reference comes from the stack"
        else:
            assert (args.stack, args.function, args.report, args.push, args.open_pr) == (
                "dev",
                "fraud-scorer",
                "report.json",
                "origin",
                True,
            )


def test_the_checked_report_is_the_one_remediated() -> None:
    outs = [drift_parser().parse_args(argv_of(c, "drift")) for c in commands() if c.startswith("python -m drift")]
    checked = {a.out for a in outs if a.command == "check" and a.stack and a.out}
    assert {a.report for a in outs if a.command == "remediate"} <= checked
    check = next(a for a in outs if a.command == "check" and a.out in checked)
    assert check.format == "json"  # remediate reads the JSON report


def test_the_plan_command_parses() -> None:
    plans = re.findall(r"`(python -m inferops plan[^`]*)`", section())
    assert plans
    for command in plans:
        inferops_parser().parse_args(argv_of(command, "inferops"))
    assert "--max-capture-share" in section()
    inferops_parser().parse_args(["plan", "--max-capture-share", "20"])


def test_the_config_snippet_is_valid_stack_config(dev_config: dict[str, Any]) -> None:
    (block,) = blocks("yaml")
    (snippet,) = YAML(typ="safe").load(block)
    config = copy.deepcopy(dev_config)
    fn = function_config(config, snippet.pop("name"))
    fn["model"].update(snippet.pop("model"))
    fn.update(snippet)
    (spec,) = [f for f in parse_stack_config(config).functions if f.name == "fraud-scorer"]
    assert spec.capture.enabled and spec.capture.sample_percent == 25 and spec.capture.retention_days == 30
    assert spec.model.reference_uri == "s3://example-models/fraud-scorer/2.1.0/reference.parquet"


def test_the_jq_path_names_the_exported_capture_uri(dev_run: ProgramRun) -> None:
    (line,) = [c for c in commands() if "pulumi stack output" in c]
    assert "pulumi stack output --json --stack dev" in line
    name, key = re.search(r"jq -r '\.\"([^\"]+)\"\.(\w+)'", line).groups()  # type: ignore[union-attr]
    exported = dev_run.exports[name][key]
    assert isinstance(exported, str) and exported.startswith("s3://")


def test_the_workflow_runs_the_same_commands() -> None:
    workflow = WORKFLOW.read_text(encoding="utf-8")
    assert "pulumi stack output --json" in workflow
    # The README's `--window 24h` is what the workflow sizes; the check then reads exactly the window the
    # size step fixed (--since/--until), from the capture or its staged copy for Spark.
    assert re.search(r'python -m drift window-size --capture "\$CAPTURE" --window "\$WINDOW"', workflow)
    assert re.search(
        r'python -m drift check --capture "\$window_uri" --since "\$SINCE" --until "\$UNTIL" --stack "\$STACK" '
        r"--function",
        workflow,
    )
    assert "--compare-variants" in workflow
    assert re.search(r"python -m drift remediate --stack \"\$STACK\" --function \"\$FUNCTION\"", workflow)
    assert "--push origin --open-pr" in workflow
    assert re.search(r"^\s+- cron: ", workflow, flags=re.M)


@pytest.mark.parametrize("bad", ["--windw 24h", "--format yaml"])
def test_the_parser_check_can_fail(bad: str) -> None:
    """The parse above is a real check: a misspelt option or value is refused the same way."""
    with pytest.raises(SystemExit) as exc:
        drift_parser().parse_args(["check", "--capture", "s3://b/p/", *bad.split()])
    assert exc.value.code == 2
