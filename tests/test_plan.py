"""The offline plan: golden JSON for the dev stack, exit codes, --compare, formats and secrecy."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from inferops.__main__ import main
from tests.conftest import ROOT, function_config

GOLDEN = ROOT / "tests" / "data" / "plan_dev.json"
NONCOMPLIANT = ROOT / "tests" / "stacks" / "Pulumi.noncompliant.yaml"
PACK_CONFIG = ROOT / "tests" / "stacks" / "policy-pack-config.json"
CIPHERTEXT = "v1:Zm9vYmFyc2VjcmV0Y2lwaGVydGV4dA=="


def plan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["plan", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_stack(tmp_path: Path, config: dict[str, Any], name: str = "Pulumi.edited.yaml") -> Path:
    path = tmp_path / name
    with path.open("w") as handle:
        YAML().dump({"config": config}, handle)
    return path


@pytest.fixture(scope="module")
def dev_plan_json() -> dict[str, Any]:
    """The dev stack's plan as JSON, produced once through the CLI entry point."""
    from inferops.plan import build_plan

    return json.loads(json.dumps(build_plan(ROOT / "Pulumi.dev.yaml", stack_name="dev")))


def test_dev_plan_matches_golden(dev_plan_json: dict[str, Any]) -> None:
    if os.environ.get("PLAN_GOLDEN_UPDATE"):
        GOLDEN.write_text(json.dumps(dev_plan_json, indent=2) + "\n")
    assert dev_plan_json == json.loads(GOLDEN.read_text())


def test_dev_plan_content(dev_plan_json: dict[str, Any]) -> None:
    """What the golden file holds, stated so a wrong golden file cannot pass unnoticed."""
    fns = {f["name"]: f for f in dev_plan_json["functions"]}
    assert [f["platform"] for f in dev_plan_json["functions"]] == ["aws", "azure", "gcp", "kubernetes"]
    assert dev_plan_json["summary"] == {"mandatory": 0, "remediate": 0, "advisory": 0}
    fraud = fns["fraud-scorer"]
    assert fraud["canary_percent"] == 10 and fraud["model_version"] == "2.2.0" and fraud["stable_version"] == "2.1.0"
    cost = fraud["cost"]
    assert cost["stable_usd"] + cost["canary_usd"] == pytest.approx(cost["monthly_usd"], abs=0.011)
    assert cost["canary_usd"] == pytest.approx(cost["monthly_usd"] * 0.10, abs=0.011)
    # 3M requests x 120 ms x 1 GiB on arm64 at $0.0000133334/GB-s + $0.20 per 1M requests, no free tier
    assert cost["monthly_usd"] == pytest.approx(3_000_000 * 0.12 * 1.0 * 0.0000133334 + 0.6, abs=0.01)
    assert cost["budget_usd"] == 400.0
    assert cost["budget_used_percent"] == pytest.approx(100 * cost["monthly_usd"] / 400, abs=0.05)
    assert {"aws:lambda/function:Function", "aws:budgets/budget:Budget"} <= {r["type"] for r in fraud["resources"]}
    # Azure Consumption priced at the declared 512 MB (the component's memory-mb tag), not the 1,536 MB
    # fallback: 1M x 200 ms x 0.5 GB at $0.000016/GB-s + 1M x $0.20/M, no free tier.
    assert fns["churn-predictor"]["cost"]["monthly_usd"] == pytest.approx(1e6 * 0.2 * 0.5 * 0.000016 + 0.2, abs=0.005)
    total = dev_plan_json["total"]
    assert total["monthly_usd"] == pytest.approx(sum(f["cost"]["monthly_usd"] for f in fns.values()), abs=0.02)
    assert total["monthly_usd_with_free_tiers"] < total["monthly_usd"]


def test_table_output_and_exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = plan(capsys, "--stack", "dev")
    assert code == 0
    assert "inferops plan: stack dev" in out
    assert "fraud-scorer" in out and "$400.00" in out and "(10%)" in out
    assert "No policy violations." in out


def test_noncompliant_stack_exits_1_with_verdicts(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = plan(
        capsys, "--stack-file", str(NONCOMPLIANT), "--policy-pack-config", str(PACK_CONFIG), "--format", "json"
    )
    assert code == 1
    verdicts = {(v["policy"], v["resource"], v["enforcement"]) for v in json.loads(out)["verdicts"]}
    assert ("responsible-ai-fairness-floor", "biased-ranker-service", "mandatory") in verdicts
    assert ("security-no-public-endpoint", "pricey-scorer-url", "mandatory") in verdicts
    assert ("finops-cost-per-1k-inferences", "pricey-scorer-function", "advisory") in verdicts
    assert json.loads(out)["summary"]["mandatory"] == sum(1 for v in verdicts if v[2] == "mandatory")


def test_markdown_fits_a_pull_request_comment(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = plan(capsys, "--stack-file", str(NONCOMPLIANT), "--format", "markdown")
    assert code == 1
    assert out.startswith("## inferops plan: stack noncompliant")
    assert "| function | platform | stable | canary | monthly | budget | used |" in out
    assert "**mandatory (" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("config: [unclosed", "invalid YAML"),
        ("- a list\n", "a stack file must be a mapping with a 'config' key"),
    ],
)
def test_unreadable_stack_file_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(text)
    code, out, err = plan(capsys, "--stack-file", str(path))
    assert code == 2 and out == ""
    assert err.startswith(f"inferops plan: error: {path}") and message in err
    assert err.count("\n") == 1


def test_invalid_field_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, dev_config: dict[str, Any]
) -> None:
    config = copy.deepcopy(dev_config)
    function_config(config, "doc-classifier")["runtime"]["timeoutSeconds"] = 4000
    path = write_stack(tmp_path, config)
    code, out, err = plan(capsys, "--stack-file", str(path))
    assert code == 2 and out == ""
    assert err == (
        f"inferops plan: error: {path}: inferops:functions[doc-classifier].runtime.timeoutSeconds: "
        "must be at most 3600 on Cloud Run (got 4000)\n"
    )


def test_missing_stack_and_bad_pack_config_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = plan(capsys, "--stack", "nosuchstack")
    assert code == 2 and "Pulumi.nosuchstack.yaml: cannot read stack file" in err
    bad = tmp_path / "pack.json"
    bad.write_text("{not json")
    code, _, err = plan(capsys, "--stack", "dev", "--policy-pack-config", str(bad))
    assert code == 2 and str(bad) in err and err.count("\n") == 1


def test_compare_shows_cost_and_verdict_changes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, dev_config: dict[str, Any], dev_plan_json: dict[str, Any]
) -> None:
    previous = tmp_path / "previous.json"
    previous.write_text(json.dumps(dev_plan_json))
    config = copy.deepcopy(dev_config)
    fraud = function_config(config, "fraud-scorer")
    fraud["runtime"]["memoryMb"] = 2048
    fraud["endpoint"] = {"public": True}
    code, out, _ = plan(
        capsys, "--stack-file", str(write_stack(tmp_path, config)), "--compare", str(previous), "--format", "json"
    )
    assert code == 1  # the public endpoint is a mandatory violation
    diff = json.loads(out)["diff"]
    row = next(r for r in diff["functions"] if r["name"] == "fraud-scorer")
    before = next(f for f in dev_plan_json["functions"] if f["name"] == "fraud-scorer")["cost"]["monthly_usd"]
    assert row["change"] == "changed" and row["before_usd"] == before
    # doubling memory doubles the GB-seconds; requests cost stays
    assert row["delta_usd"] == pytest.approx(3_000_000 * 0.12 * 1.0 * 0.0000133334, abs=0.02)
    assert {r["change"] for r in diff["functions"] if r["name"] != "fraud-scorer"} == {"unchanged"}
    assert any(v["policy"] == "security-no-public-endpoint" for v in diff["new_verdicts"])
    assert diff["resolved_verdicts"] == []

    code, out, _ = plan(capsys, "--stack-file", str(write_stack(tmp_path, config)), "--compare", str(previous))
    assert "Difference from the previous plan" in out and "+$" in out


def test_compare_rejects_a_file_that_is_not_a_plan(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    other = tmp_path / "report.json"
    other.write_text(json.dumps({"drifted": True}))
    code, _, err = plan(capsys, "--stack", "dev", "--compare", str(other))
    assert (
        code == 2 and err == f"inferops plan: error: {other}: not an inferops plan (schema must be inferops.plan/v1)\n"
    )


def test_no_secure_value_in_any_output(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, dev_config: dict[str, Any]
) -> None:
    config = copy.deepcopy(dev_config)
    config["aws:secretKey"] = {"secure": CIPHERTEXT}
    config["azure-native:clientSecret"] = {"secure": CIPHERTEXT}
    path = write_stack(tmp_path, config, "Pulumi.secret.yaml")
    for fmt in ("table", "json", "markdown"):
        out_file = tmp_path / f"plan.{fmt}"
        code, out, err = plan(capsys, "--stack-file", str(path), "--format", fmt, "--out", str(out_file))
        assert code == 0, err
        written = out_file.read_text()
        for text in (out, err, written):
            assert CIPHERTEXT not in text and "Zm9vYmFyc2VjcmV0" not in text
        assert written.strip()
