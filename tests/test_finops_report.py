"""`python -m finops report` on generated FOCUS exports of the three clouds, with known truths."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finops.cli import main
from finops.focus import parse_tags, read_focus
from tests import finops_data as data


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("finops")
    providers, truth = data.generate()
    exports = data.write_exports(root / "exports", providers)
    capture = data.write_capture(root / "capture")
    repo = data.stack_repo(root / "repo")
    plan = root / "plan.json"
    plan.write_text(json.dumps({"schema": "inferops.plan/v1", "functions": [
        {"name": n, "cost": {"monthly_usd": v}} for n, v in
        (("fraud-scorer", 14.7), ("churn-predictor", 5.0), ("doc-classifier", 5.5), ("sentiment", 13.08))]}))  # fmt: skip
    return {"root": root, "truth": truth, "exports": exports, "capture": capture, "repo": repo, "plan": plan}


def _args(s: dict[str, Any], *extra: str, plan: bool = True) -> list[str]:
    e = s["exports"]
    args = ["report", "--stack", "dev", "--repo", str(s["repo"]), "--focus", str(e["aws"]), str(e["azure"]), str(e["google"]),
            "--capture", str(s["capture"]["fraud-scorer"]), f"sentiment={s['capture']['sentiment']}"]  # fmt: skip
    if plan:
        args += ["--plan", str(s["plan"])]
    return args + list(extra)


@pytest.fixture(scope="module")
def report(scenario: dict[str, Any]) -> Iterator[dict[str, Any]]:
    out = scenario["root"] / "report.json"
    # the real path once: the plan estimate comes from running the program offline for the stack
    code = main(_args(scenario, "--out", str(out), plan=False))
    assert code == 1  # an anomaly and a forecast over budget are mandatory findings
    yield json.loads(out.read_text())


def _fn(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in report["functions"] if f["name"] == name)


def test_month_to_date_per_function_to_the_cent(report: dict[str, Any], scenario: dict[str, Any]) -> None:
    truth = scenario["truth"]
    assert report["schema"] == "finops.report/v1"
    assert (report["month"], report["as_of"], report["days_elapsed"]) == ("2026-11", "2026-11-20", 20)
    for name in ("fraud-scorer", "churn-predictor", "doc-classifier"):
        assert _fn(report, name)["month_to_date_usd"] == round(truth.usage_mtd[name], 2), name
        assert _fn(report, name)["cost_sources"] == ["focus"]


def test_credits_taxes_and_corrections_are_kept_apart(report: dict[str, Any], scenario: dict[str, Any]) -> None:
    f = _fn(report, "fraud-scorer")
    assert f["by_category"]["credit"] == -5.0 and f["by_category"]["tax"] == 0.75
    assert f["corrections_usd"] == 2.5
    assert f["by_category"]["usage"] == f["month_to_date_usd"]  # neither credit, tax nor correction in usage


def test_nothing_is_dropped(report: dict[str, Any], scenario: dict[str, Any]) -> None:
    t, truth = report["totals"], scenario["truth"]
    assert report["unattributed"]["reasons"] == [
        {"reason": "function-name 'inferops-dev-old-function' is not a function of stack dev", "usd": 12.34}
    ]
    assert t["outside_usd"] == round(truth.outside, 2)
    assert t["all_usd"] == round(truth.total + _fn(report, "sentiment")["month_to_date_usd"], 2)
    assert abs(t["attributed_usd"] + t["unattributed_usd"] + t["outside_usd"] - t["all_usd"]) <= 0.02


def test_the_anomalous_day_and_only_it(report: dict[str, Any]) -> None:
    f = _fn(report, "fraud-scorer")
    assert [a["date"] for a in f["anomalies"]] == ["2026-11-19"]
    assert f["anomalies"][0]["recent"] is True
    for other in ("churn-predictor", "doc-classifier", "sentiment"):
        assert _fn(report, other)["anomalies"] == [], other
    kinds = sorted((x["function"], x["kind"]) for x in report["findings"])
    assert kinds == [("churn-predictor", "forecast-over-budget"), ("fraud-scorer", "anomaly")]


def test_forecast_over_budget(report: dict[str, Any]) -> None:
    churn = _fn(report, "churn-predictor")
    assert churn["budget_usd"] == 150.0 and churn["forecast_usd"] > 150.0
    # about $7 a weekday and $4.20 a weekend day for the 10 remaining days (6 weekdays, 4 weekend days)
    remaining = churn["forecast_usd"] - churn["month_to_date_usd"]
    assert pytest.approx(remaining, rel=0.06) == 6 * 7.0 + 4 * 4.2
    for other in ("fraud-scorer", "doc-classifier", "sentiment"):
        assert _fn(report, other)["forecast_usd"] < _fn(report, other)["budget_usd"]


def test_plan_estimate_and_gap_from_the_offline_program(report: dict[str, Any]) -> None:
    assert report["inputs"]["plan"] == "program"
    doc = _fn(report, "doc-classifier")
    assert doc["plan_estimate_usd"] == 5.5  # the pack's estimate for 500k requests at 350 ms, 1 vCPU, 1 GiB
    assert doc["gap_usd"] == round(doc["forecast_usd"] - 5.5, 2)
    fraud = _fn(report, "fraud-scorer")
    assert fraud["plan_estimate_usd"] is not None and fraud["gap_usd"] > 0


def test_over_provisioned_memory_is_rightsized(report: dict[str, Any]) -> None:
    f = _fn(report, "fraud-scorer")
    rs = f["rightsizing"]
    # 3008 MB on Lambda, 40 ms, peak 180 MB used: above 1,769 MB memory buys no speed for a
    # single-threaded handler, so 1,769 MB keeps the latency and costs less
    assert rs["current"]["memoryMb"] == 3008 and rs["recommended"]["memoryMb"] == 1769
    assert rs["recommended"]["p95_ms"] <= 250 and rs["monthly_savings_usd"] > 0
    assert any("1,769 MB" in a for a in rs["assumptions"])
    (prop,) = [p for p in f["proposals"] if p["action"] == "rightsize"]
    assert {"path": "runtime.memoryMb", "from": 3008, "to": 1769} in prop["edits"]


def test_estimate_drift_proposes_observed_usage(report: dict[str, Any]) -> None:
    fraud = _fn(report, "fraud-scorer")
    (prop,) = [p for p in fraud["proposals"] if p["action"] == "update-estimates"]
    edits = {e["path"]: e for e in prop["edits"]}
    assert edits["finops.expectedMonthlyRequests"]["from"] == 3000000
    assert 5.5e7 < edits["finops.expectedMonthlyRequests"]["to"] < 7e7  # about 2M a weekday, 1.2M a weekend day
    assert edits["finops.avgDurationMs"]["to"] == 40
    # doc-classifier is within 25% of its estimate (500k requests, 350 ms; billed 400 ms): nothing to propose
    assert not [p for p in _fn(report, "doc-classifier")["proposals"] if p["action"] == "update-estimates"]


def test_canary_split_and_cost_per_1k(report: dict[str, Any]) -> None:
    f = _fn(report, "fraud-scorer")
    c = f["canary"]
    assert (c["method"], c["canary_version"], c["stable_version"]) == ("capture", "2.2.0", "2.1.0")
    assert c["canary_usd"] + c["stable_usd"] == pytest.approx(f["month_to_date_usd"], abs=0.01)
    assert c["canary_usd"] / f["month_to_date_usd"] == pytest.approx(0.1, abs=0.02)  # 1 in 10 captured requests
    assert f["requests"]["source"] == "focus"
    assert f["requests"]["per_1k_usd"] == pytest.approx(
        f["month_to_date_usd"] / f["requests"]["month_to_date"] * 1000, rel=1e-3
    )


def test_kubernetes_cost_from_node_price_and_capture(report: dict[str, Any]) -> None:
    s = _fn(report, "sentiment")
    assert s["cost_sources"] == ["node-price"]
    # 0.5 vCPU x $0.0316 + 0.5 GiB x $0.0042 per pod-hour; one min-scale pod all day, plus busy time
    pod_hour = 0.5 * 0.0316 + 0.5 * 0.0042
    always_on = 20 * 24 * pod_hour
    assert always_on < s["month_to_date_usd"] < always_on * 1.2
    assert s["requests"] == {
        "month_to_date": 120000,
        "source": "capture",
        "per_1k_usd": pytest.approx(s["month_to_date_usd"] / 120, rel=1e-3),
    }


def test_markdown_and_exit_zero_without_findings(
    scenario: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # before the anomaly and with the budget raised there is nothing mandatory: exit 0
    repo = data.stack_repo(tmp_path / "repo")
    text = (repo / "Pulumi.dev.yaml").read_text().replace("monthlyBudgetUsd: 150", "monthlyBudgetUsd: 400")
    (repo / "Pulumi.dev.yaml").write_text(text)
    s = {**scenario, "repo": repo}
    assert main(_args(s, "--as-of", "2026-11-17", "--format", "markdown")) == 0
    out = capsys.readouterr().out
    assert out.startswith("## FinOps report: stack `dev`, 2026-11 (data to 2026-11-17")
    assert "| `churn-predictor` |" in out and "0 mandatory finding(s)" in out
    # proposals are findings when asked (the workflow opens PRs only on exit 1)
    assert main(_args(s, "--as-of", "2026-11-17", "--proposals-are-findings", "--out", str(tmp_path / "r.json"))) == 1


# --- bad input: exit 2, one line naming the file and the column ---------------------------------------


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.strip()


def test_missing_mandatory_column(scenario: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = pq.read_table(next((scenario["exports"]["google"]).glob("*.parquet")))
    bad = tmp_path / "bad.parquet"
    pq.write_table(t.drop_columns(["ChargeCategory"]), bad)
    args = [
        "report",
        "--stack",
        "dev",
        "--repo",
        str(scenario["repo"]),
        "--focus",
        str(bad),
        "--plan",
        str(scenario["plan"]),
    ]
    assert main(args) == 2
    assert _one_line_error(capsys) == f"finops: error: {bad}: missing mandatory FOCUS column 'ChargeCategory'"


def test_bad_values_and_missing_files(
    scenario: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = gzip.decompress(Path(scenario["exports"]["azure"]).read_bytes()).decode()
    header, first, *rest = src.splitlines()
    cols = header.split(",")
    cells = first.split(",")
    i = cols.index('"ChargeCategory"') if '"ChargeCategory"' in cols else cols.index("ChargeCategory")
    cells[i] = '"Refund"'
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([header, ",".join(cells), *rest[:3]]) + "\n")
    base = ["report", "--stack", "dev", "--repo", str(scenario["repo"]), "--plan", str(scenario["plan"]), "--focus"]
    assert main([*base, str(bad)]) == 2
    assert _one_line_error(capsys) == (
        f"finops: error: {bad}: column 'ChargeCategory': unknown value 'refund' (FOCUS allows usage, purchase, tax, credit, adjustment)"
    )
    assert main([*base, str(tmp_path / "absent.parquet")]) == 2
    assert _one_line_error(capsys) == f"finops: error: {tmp_path / 'absent.parquet'}: no such file"
    assert main(["report", "--stack", "nope", "--repo", str(scenario["repo"]), "--focus", str(bad)]) == 2
    assert "Pulumi.nope.yaml" in _one_line_error(capsys)


# --- Tags in each provider's representation -----------------------------------------------------------


def test_tags_of_each_provider() -> None:
    want = {"function-name": "inferops-dev-x", "stack": "dev"}
    # AWS FOCUS with AWS columns: user-defined tags prefixed user: (Parquet map -> list of pairs, CSV JSON)
    assert parse_tags([("user:function-name", "inferops-dev-x"), ("user:stack", "dev")]) == want
    assert parse_tags('{"user:function-name": "inferops-dev-x", "user:stack": "dev", "aws:createdBy": "x"}') == {
        **want, "aws:createdby": "x"}  # fmt: skip
    # Azure FocusCost: a JSON object; older exports without the braces; names case-insensitive
    assert parse_tags('{"Function-Name": "inferops-dev-x", "stack": "dev"}') == want
    assert parse_tags('"function-name": "inferops-dev-x","stack": "dev"') == want
    # Google FOCUS export: array of key/value records (Parquet list<struct>, CSV JSON array)
    assert parse_tags([{"key": "function-name", "value": "inferops-dev-x"}, {"key": "stack", "value": "dev"}]) == want
    assert parse_tags('[{"key": "function-name", "value": "inferops-dev-x"}, {"key": "stack", "value": "dev"}]') == want
    # Kubernetes keys carry the inferops.dev/ prefix
    assert parse_tags({"inferops.dev/function-name": "inferops-dev-x", "inferops.dev/stack": "dev"}) == want
    assert parse_tags(None) == {} and parse_tags("") == {}
    with pytest.raises(ValueError, match="not a JSON object or array"):
        parse_tags("function-name=x")


def test_each_layout_reads_the_same_rows_as_generated(scenario: dict[str, Any]) -> None:
    for provider in ("aws", "azure", "google"):
        charges = read_focus([str(scenario["exports"][provider])])
        assert charges.n_rows == len(data.generate()[0][provider].rows), provider
    # a glob and a directory name the same files; the AWS manifest JSON is skipped
    aws = scenario["exports"]["aws"]
    by_glob = read_focus([str(aws / "data" / "*" / "*")])
    assert by_glob.files == read_focus([str(aws)]).files and len(by_glob.files) == 2


# --- object store: moto's S3 server on loopback --------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    pytest.importorskip("moto.server")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_s3_exports_read_like_local(
    scenario: dict[str, Any], s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_ENDPOINT_URL_S3": s3_endpoint}.items():  # fmt: skip
        monkeypatch.setenv(k, v)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="billing")
    aws = scenario["exports"]["aws"]
    for p in aws.rglob("*"):
        if p.is_file():
            client.upload_file(str(p), "billing", f"focus-export/{p.relative_to(aws)}")
    remote = read_focus(["s3://billing/focus-export/"])
    local = read_focus([str(aws)])
    assert [u.rsplit("/", 1)[1] for u in remote.files] == [u.rsplit("/", 1)[1] for u in local.files]
    assert all(u.startswith("s3://billing/focus-export/data/") for u in remote.files)
    np.testing.assert_array_equal(remote.cost, local.cost)
    assert remote.tag_sets == local.tag_sets
    from drift.readers import DataError

    with pytest.raises(DataError, match=r"^s3://billing/absent\.parquet: no such file$"):
        read_focus(["s3://billing/absent.parquet"])


def test_arrow_tag_types_are_parsed(tmp_path: Path) -> None:
    # a single-row Google-style Parquet with list<struct<key, value>> tags
    row = {c: [None] for c in data._COMMON}
    row.update(BilledCost=[1.0], EffectiveCost=[1.0], BillingCurrency=["USD"], ChargeCategory=["Usage"],
               ChargePeriodStart=["2026-11-01T00:00:00Z"], ChargePeriodEnd=["2026-11-02T00:00:00Z"], ServiceName=["Cloud Run"])  # fmt: skip
    cols = {
        k: pa.array(v, type=pa.string() if k not in ("BilledCost", "EffectiveCost") else pa.float64())
        for k, v in row.items()
        if k != "Tags"
    }
    cols["Tags"] = pa.array(
        [[{"key": "function-name", "value": "k"}]],
        type=pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())])),
    )
    p = tmp_path / "g.parquet"
    pq.write_table(pa.table(cols), p)
    assert read_focus([str(p)]).tag_sets == [{"function-name": "k"}]


def test_an_internal_error_exits_3_never_1(
    scenario: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import finops.report

    def boom(*a: Any, **k: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(finops.report, "build_report", boom)
    assert main(_args(scenario)) == 3
    assert capsys.readouterr().err.strip() == "finops: internal error: RuntimeError: bug (exit 3)"


def test_opencost_allocations_price_kubernetes(scenario: dict[str, Any], tmp_path: Path) -> None:
    # OpenCost /allocation?window=...&step=1d: one map of allocations per day; label keys sanitised for Prometheus
    steps = []
    for i in range(20):
        day = f"2026-11-{i + 1:02d}T00:00:00Z"
        steps.append({
            "sentiment-abc": {"window": {"start": day, "end": day}, "totalCost": 0.5 + i / 100,
                              "properties": {"labels": {"inferops_dev_function_name": data.key("sentiment"),
                                                        "inferops_dev_stack": "dev"}}},
            "web-xyz": {"window": {"start": day, "end": day}, "totalCost": 2.0, "properties": {"labels": {"app": "web"}}},
        })  # fmt: skip
    oc = tmp_path / "opencost.json"
    oc.write_text(json.dumps({"code": 200, "data": steps}))
    out = tmp_path / "r.json"
    e = scenario["exports"]
    code = main(["report", "--stack", "dev", "--repo", str(scenario["repo"]), "--focus", str(e["google"]),
                 "--opencost", str(oc), "--plan", str(scenario["plan"]), "--out", str(out)])  # fmt: skip
    assert code in (0, 1)
    s = _fn(json.loads(out.read_text()), "sentiment")
    assert s["cost_sources"] == ["opencost"]
    assert s["month_to_date_usd"] == round(sum(0.5 + i / 100 for i in range(20)), 2)
    assert json.loads(out.read_text())["outside"]["reasons"][0]["usd"] >= 40.0  # the untagged workload, not dropped


@pytest.mark.parametrize(
    "text",
    ["2026-11-05T00:00:00Z", "2026-11-05T00:00Z", "2026-11-05 00:00:00.000", "2026-11-05T13:00:00.000Z", "2026-11-05"],
)
def test_focus_timestamp_forms(text: str) -> None:
    # Azure FocusCost 1.0 wrote minutes without seconds (1.0r2 added them); AWS CSVs use a space and milliseconds
    from finops.sources import utc_times

    days = utc_times(pa.chunked_array([[text]]), "f.csv", "ChargePeriodStart").astype("datetime64[D]")
    assert str(days[0]) == "2026-11-05"


def test_empty_cost_is_bad_input_not_zero(scenario: dict[str, Any], tmp_path: Path) -> None:
    from drift.readers import DataError

    t = pq.read_table(next((scenario["exports"]["google"]).glob("*.parquet")))
    costs = t.column("EffectiveCost").to_pylist()
    costs[4] = None
    bad = tmp_path / "bad.parquet"
    pq.write_table(
        t.set_column(t.column_names.index("EffectiveCost"), "EffectiveCost", pa.array(costs, pa.float64())), bad
    )
    with pytest.raises(DataError, match=r"column 'EffectiveCost': empty value in row 5 \(FOCUS requires a number\)$"):
        read_focus([str(bad)])


def test_cost_per_model_version_and_day_and_canary_by_tags() -> None:
    # Cloud Run serves canary and stable as two revisions; when billing rows carry both versions the split is exact
    from components.spec import parse_stack_config
    from finops.focus import Charges
    from finops.report import build_report
    from inferops.harness import load_stack_file

    stack = parse_stack_config(load_stack_file(data.ROOT / "Pulumi.dev.yaml"))
    fraud = [
        {"function-name": data.key("fraud-scorer"), "stack": "dev", "model-version": v} for v in ("2.2.0", "2.1.0")
    ]
    days = np.array(["2026-11-01", "2026-11-01", "2026-11-02", "2026-11-02"], dtype="datetime64[D]")
    n = len(days)
    charges = Charges(
        day=days, cost=np.array([1.0, 9.0, 2.0, 8.0]), billed=np.array([1.0, 9.0, 2.0, 8.0]),
        category=np.full(n, "usage", dtype=object), correction=np.zeros(n, bool), service=np.full(n, "AWS Lambda", dtype=object),
        quantity=np.full(n, np.nan), unit=np.full(n, "", dtype=object), tag_index=np.array([0, 1, 0, 1]), tag_sets=fraud,
        provider=np.full(n, "AWS", dtype=object), currency="USD",
    )  # fmt: skip
    report = build_report("dev", stack, charges)
    f = _fn(report, "fraud-scorer")
    assert f["by_model_version"] == {"2.1.0": 17.0, "2.2.0": 3.0}
    assert f["daily_by_model_version"] == [
        {"date": "2026-11-01", "model_version": "2.1.0", "usd": 9.0}, {"date": "2026-11-01", "model_version": "2.2.0", "usd": 1.0},
        {"date": "2026-11-02", "model_version": "2.1.0", "usd": 8.0}, {"date": "2026-11-02", "model_version": "2.2.0", "usd": 2.0},
    ]  # fmt: skip
    assert f["canary"] == {
        "method": "tags",
        "canary_version": "2.2.0",
        "stable_version": "2.1.0",
        "canary_usd": 3.0,
        "stable_usd": 17.0,
    }


def test_module_entry_point_and_usage_errors(tmp_path: Path) -> None:
    import subprocess
    import sys

    def run(*a: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "finops", *a], cwd=data.ROOT, capture_output=True, text=True, timeout=120
        )

    ok = run("report", "--help")
    assert ok.returncode == 0 and "--focus" in ok.stdout
    assert "remediate" in run("--help").stdout
    bad = run("report", "--stack", "dev")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("finops: error: the following arguments are required: --focus")
