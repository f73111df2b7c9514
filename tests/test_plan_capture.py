"""Capture cost in the offline plan: the measured record, each platform's path worked by hand, the
share warning and the CLI.

Expected amounts are computed here from the published unit prices, written out as literals with their
sources (US East list prices read 2026-11-20), not by calling the estimator's arithmetic:

* CloudWatch Logs Standard ingestion $0.50/GB (https://aws.amazon.com/cloudwatch/pricing/); a log
  event counts as its message plus 26 bytes
  (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html).
* Firehose Direct PUT ingestion $0.029/GB, "calculated per GB ingested in 5 KB increments (a 3 KB record
  is billed as 5 KB, a 12 KB record as 15 KB)"; dynamic partitioning $0.020/GB processed, $0.005 per
  1,000 S3 objects delivered, $0.07 per JQ processing hour (https://aws.amazon.com/firehose/pricing/);
  each partition's buffer is delivered as its own object at the size or interval hint
  (https://docs.aws.amazon.com/firehose/latest/dev/buffering.html).
* S3 Standard $0.023/GB-month, PUT $0.005 per 1,000 (https://aws.amazon.com/s3/pricing/).
* Cloud Logging storage $0.50/GiB streamed into log buckets, up to 30 days included; "Log Router: No
  additional charge" ("Log routing is defined as forwarding received logs to a supported destination.
  Destination charges might apply"); units are binary (https://cloud.google.com/stackdriver/pricing).
  The component excludes capture entries from the _Default sink (tests/test_capture_gcp.py), so only
  ``capture.keepInLogs`` pays for a _Default copy. GCS Standard us-central1 $0.020/GB-month, Class A
  $0.005 per 1,000 (https://cloud.google.com/storage/pricing).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from components.spec import FunctionSpec, parse_stack_config
from inferops import capturecost, costs
from inferops.__main__ import main
from inferops.harness import load_stack_file
from tests.conftest import DEV_STACK, ROOT, function_config

GB = 1e9
GIB = 1024**3
MONTH_S = 730 * 3600
STORED_MONTHS_30_DAYS = 30 / (730 / 24)


def spec(edit: Any = None, name: str = "fraud-scorer") -> FunctionSpec:
    config = copy.deepcopy(load_stack_file(DEV_STACK))
    if edit is not None:
        edit(function_config(config, name))
    (fn,) = [f for f in parse_stack_config(config).functions if f.name == name]
    return fn


def lines(est: capturecost.CaptureEstimate) -> dict[str, float]:
    return {line.item: line.monthly_usd for line in est.lines}


@pytest.fixture(scope="module")
def table() -> dict[str, Any]:
    return costs.price_table()


# --- the record ----------------------------------------------------------------------------------


def test_record_is_the_handlers_line_for_the_declared_features(tmp_path: Path) -> None:
    model = {
        "format": "inferops-linear/v1",
        "task": "classification",
        "features": ["amount", "age", "tenure_days"],
        "weights": [0.001, -0.002, 0.0],
        "categorical": {"country": {"US": 0.3, "DE": 0.1}, "plan": {"basic": 0.0, "enterprise": 0.2}},
        "bias": -0.5,
    }
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model))

    def edit(fn: dict[str, Any]) -> None:
        fn["model"].update(version="1.0.0", stableVersion="1.0.0")
        fn["traffic"] = {"canaryPercent": 0}

    fn = spec(edit)
    size, basis, text = capturecost.record_bytes(fn, path)
    # What the handler emits for this row, written out: numeric features at 1234.5678, the longest
    # category of each categorical feature, a fixed latency.
    score = -0.5 + 0.001 * 1234.5678 - 0.002 * 1234.5678 + 0.0 * 1234.5678 + 0.3 + 0.2
    probability = 1 / (1 + math.exp(-score))
    expected = {
        "request_id": "00000000-0000-0000-0000-000000000000",
        "timestamp": "2026-01-12T00:00:00.000Z",
        "model_id": "fraud-scorer",
        "model_version": "1.0.0",
        "variant": "stable",
        "amount": 1234.5678,
        "age": 1234.5678,
        "tenure_days": 1234.5678,
        "country": "US",
        "plan": "enterprise",
        "prediction": int(probability >= 0.5),
        "probability": pytest.approx(probability, rel=1e-12),
        "latency_ms": 12.345,
    }
    assert json.loads(text) == expected
    assert list(json.loads(text)) == list(expected)  # the handler's field order
    assert size == len(text.encode()) + 1  # the line and its newline
    assert basis == "features of model.json"


def test_a_remote_artifact_is_not_fetched_and_the_example_features_stand_in() -> None:
    size, basis, text = capturecost.record_bytes(spec())
    assert basis == (
        "assumed: features of functions/models/example-linear.json "
        "(s3://example-models/fraud-scorer/2.2.0/model.json is not fetched offline)"
    )
    assert {"amount", "age", "country", "device"} <= set(json.loads(text))
    assert size == len(text) + 1


def test_more_features_make_a_longer_record(tmp_path: Path) -> None:
    sizes = []
    for n in (1, 10):
        path = tmp_path / f"m{n}.json"
        doc = {"format": "inferops-linear/v1", "task": "regression", "features": [f"f{i}" for i in range(n)]}
        path.write_text(json.dumps({**doc, "weights": [0.0] * n, "bias": 0.0}))
        sizes.append(capturecost.record_bytes(spec(), path)[0])
    # each extra feature adds `,"fN":1234.5678` (15 bytes for one-digit N)
    assert sizes[1] - sizes[0] == 9 * len(',"f1":1234.5678')


# --- each platform by hand -------------------------------------------------------------------------


def aws_fn() -> FunctionSpec:
    def edit(fn: dict[str, Any]) -> None:
        fn["region"] = "us-east-1"
        fn["traffic"] = {"canaryPercent": 0}
        fn["model"]["version"] = fn["model"]["stableVersion"]
        fn["finops"]["expectedMonthlyRequests"] = 1_000_000
        fn["capture"] = {"samplePercent": 50, "retentionDays": 30}

    return spec(edit)


def test_aws_worked_example(table: dict[str, Any]) -> None:
    """1M requests, 50% sampled, 400-byte lines (399 + newline), 30 days kept, one model version.

    500,000 records:
    * CloudWatch Logs: 500,000 x (399 + 26) B = 0.2125 GB x $0.50 = $0.10625
    * Firehose ingestion: each record billed as 5 KB (5,120 B): 2.56 GB x $0.029 = $0.07424
    * dynamic partitioning: 500,000 x 400 B = 0.2 GB x $0.020 = $0.004
    * objects: one partition flushed every 300 s (0.2 GB never fills a 64 MiB buffer):
      730 h x 3,600 / 300 = 8,760 objects x $0.005/1,000 = $0.0438; the same 8,760 S3 PUTs = $0.0438
    * JQ: 0.2 GB x 0.05 h/GB (the table's assumption) x $0.07 = $0.0007
    * S3: 0.2 GB kept 30 days of a 30.42-day month: 0.19726 GB-month x $0.023 = $0.004537
    """
    est = capturecost.estimate_capture(aws_fn(), table, measured=(400, "test", "{}"))
    assert est.records_per_month == 500_000
    got = lines(est)
    assert got["cloudwatch logs ingestion"] == pytest.approx(500_000 * 425 / GB * 0.50)
    assert got["cloudwatch logs ingestion"] == pytest.approx(0.10625)
    assert got["firehose ingestion (5 KB records)"] == pytest.approx(500_000 * 5120 / GB * 0.029)
    assert got["firehose dynamic partitioning"] == pytest.approx(0.2 * 0.020)
    assert got["firehose partitioned objects"] == pytest.approx(8760 * 0.005 / 1000)
    assert got["firehose JQ processing"] == pytest.approx(0.2 * 0.05 * 0.07)
    assert got["s3 storage"] == pytest.approx(0.2 * STORED_MONTHS_30_DAYS * 0.023)
    assert got["s3 PUT requests"] == pytest.approx(8760 * 0.005 / 1000)
    total = 0.10625 + 0.07424 + 0.004 + 0.0438 + 0.0007 + 0.2 * STORED_MONTHS_30_DAYS * 0.023 + 0.0438
    assert est.monthly_usd == pytest.approx(total)


def test_aws_records_above_5_kb_round_up_to_the_next_5_kb(table: dict[str, Any]) -> None:
    # a 6,000-byte message (6,001 with the newline) is billed as 10 KB: 2 x 5,120 bytes
    est = capturecost.estimate_capture(aws_fn(), table, measured=(6001, "test", "{}"))
    assert lines(est)["firehose ingestion (5 KB records)"] == pytest.approx(500_000 * 10_240 / GB * 0.029)


def test_aws_canary_doubles_the_partitioned_objects(table: dict[str, Any]) -> None:
    fn = spec()  # the dev stack's fraud-scorer: a 10% canary of 2.2.0 over 2.1.0
    assert fn.canary_percent == 10 and fn.model.version != fn.stable_version
    est = capturecost.estimate_capture(fn, table, measured=(400, "test", "{}"))
    # two model versions partition the stream: each flushes every 300 s
    assert lines(est)["firehose partitioned objects"] == pytest.approx(2 * 8760 * 0.005 / 1000)


def test_gcp_worked_example(table: dict[str, Any]) -> None:
    """500,000 requests, all sampled, each a Cloud Logging LogEntry of the measured size, 30 days kept.

    The entries are excluded from the _Default bucket, so Logging bills nothing (the Log Router is
    free); the sink's GCS copy costs storage and one Class A write per hourly batch file (730 a month).
    """
    fn = spec(name="doc-classifier")
    size, _basis, text = capturecost.record_bytes(fn)
    entry = capturecost.gcp_entry_bytes(json.loads(text))
    assert entry > size + 300  # the LogEntry envelope around jsonPayload is most of an entry
    est = capturecost.estimate_capture(fn, table)
    assert est.path == "cloud logging -> sink -> gcs"
    got = lines(est)
    assert set(got) == {"gcs storage", "gcs Class A operations"}
    assert got["gcs storage"] == pytest.approx(500_000 * entry / GIB * STORED_MONTHS_30_DAYS * 0.020)
    assert got["gcs Class A operations"] == pytest.approx(730 * 0.005 / 1000)
    assert est.monthly_usd == pytest.approx(got["gcs storage"] + 730 * 0.005 / 1000)


def test_gcp_keep_in_logs_prices_the_default_bucket_copy(table: dict[str, Any]) -> None:
    """capture.keepInLogs: the same entries are also stored in _Default at $0.50/GiB (its default
    30-day retention is included, so no retention line); the GCS lines do not change."""
    excluded = capturecost.estimate_capture(spec(name="doc-classifier"), table)
    fn = spec(lambda f: f.setdefault("capture", {}).update(keepInLogs=True), name="doc-classifier")
    _size, _basis, text = capturecost.record_bytes(fn)
    entry = capturecost.gcp_entry_bytes(json.loads(text))
    kept = capturecost.estimate_capture(fn, table)
    assert kept.path == "cloud logging -> sink -> gcs + _Default bucket"
    got = lines(kept)
    assert got.pop("cloud logging storage (_Default bucket, keepInLogs)") == pytest.approx(500_000 * entry / GIB * 0.50)
    assert got == lines(excluded)
    # The _Default copy costs more than the whole exported path: what the exclusion saves.
    assert kept.monthly_usd > 2 * excluded.monthly_usd


def test_keep_in_logs_elsewhere_changes_nothing_and_says_so(table: dict[str, Any]) -> None:
    plain = capturecost.estimate_capture(aws_fn(), table, measured=(400, "t", "{}"))
    fn = aws_fn().model_copy(update={"capture": aws_fn().capture.model_copy(update={"keep_in_logs": True})})
    kept = capturecost.estimate_capture(fn, table, measured=(400, "t", "{}"))
    assert lines(kept) == lines(plain)
    assert kept.warnings == [
        *plain.warnings,
        "capture: keepInLogs has no effect on aws (only GCP excludes capture entries)",
    ]


def test_kubernetes_writer_puts_one_object_per_flush(table: dict[str, Any]) -> None:
    """The writer flushes at 1,000 records or every 60 s per pod (functions/capture.py defaults).

    200,000 records over one pod (minInstances 1): 43,800 one-minute flushes a month, each a PUT; the
    destination's region is not in the stack config, so S3's highest listed prices apply (us-west-1:
    $0.0055 per 1,000 PUTs, $0.026/GB-month) with a warning.
    """
    fn = spec(name="sentiment")
    est = capturecost.estimate_capture(fn, table, measured=(300, "test", "{}"))
    got = lines(est)
    assert got["s3 PUT requests"] == pytest.approx(MONTH_S / 60 * 0.0055 / 1000)
    assert got["s3 storage"] == pytest.approx(200_000 * 300 / GB * STORED_MONTHS_30_DAYS * 0.026)
    assert any("not in the stack config" in w for w in est.warnings)
    # at 10M records the 1,000-record batches outnumber the minutes
    busy = spec(lambda f: f["finops"].update(expectedMonthlyRequests=100_000_000), name="sentiment")
    assert lines(capturecost.estimate_capture(busy, table, measured=(300, "t", "{}")))["s3 PUT requests"] == (
        pytest.approx(100_000 * 0.0055 / 1000)
    )


def test_azure_prices_the_decided_diagnostic_setting(table: dict[str, Any]) -> None:
    fn = spec(name="churn-predictor")
    size, _basis, text = capturecost.record_bytes(fn)
    envelope = capturecost.azure_envelope_bytes(text)
    assert envelope > size + 400  # the FunctionAppLogs record around properties.message
    est = capturecost.estimate_capture(fn, table)
    assert est.path == "diagnostic setting -> blob"
    got = lines(est)
    # platform-log export $0.05/GB (verify-marked in prices.json), hot LRS $0.018/GB-month
    assert got["platform log export (FunctionAppLogs)"] == pytest.approx(1_000_000 * envelope / GB * 0.05)
    assert got["blob storage (hot)"] == pytest.approx(1_000_000 * envelope / GB * STORED_MONTHS_30_DAYS * 0.018)


def test_disabled_capture_costs_nothing(table: dict[str, Any]) -> None:
    fn = spec(lambda f: f.update(capture={"enabled": False}))
    est = capturecost.estimate_capture(fn, table)
    assert (est.path, est.monthly_usd, est.lines) == ("disabled", 0.0, [])


def test_sampling_and_retention_scale_the_estimate(table: dict[str, Any]) -> None:
    full = capturecost.estimate_capture(aws_fn(), table, measured=(400, "t", "{}"))
    kept = spec(lambda f: f.update(capture={"samplePercent": 50, "retentionDays": 90}))
    longer = capturecost.estimate_capture(kept, table, measured=(400, "t", "{}"))
    assert lines(longer)["s3 storage"] == pytest.approx(3 * lines(full)["s3 storage"] * 3_000_000 / 1_000_000)


def test_capture_prices_are_dated_and_sourced(table: dict[str, Any]) -> None:
    section = table["capture"]
    assert section["as_of"].startswith("2026-")
    for product in ("cloudwatch-logs", "firehose", "s3", "azure-monitor", "azure-blob", "cloud-logging", "gcs"):
        entry = section[product]
        assert entry["source"].startswith("https://"), product
        assert set(entry["regions"].values()) <= set(entry["price_sets"]), product
        for prices in entry["price_sets"].values():
            assert all(isinstance(v, float | int) and v > 0 for v in prices.values()), product


# --- the plan -------------------------------------------------------------------------------------


def test_the_dev_plan_shows_capture_per_function() -> None:
    from inferops.plan import build_plan

    plan = build_plan(ROOT / "Pulumi.dev.yaml", stack_name="dev")
    fns = {f["name"]: f for f in plan["functions"]}
    fraud = fns["fraud-scorer"]["capture"]
    assert fraud["path"] == "cloudwatch-logs -> firehose -> s3"
    assert {"fraud-scorer-capture-stream", "fraud-scorer-capture-filter", "fraud-scorer-capture"} <= set(
        fraud["resources"]
    )
    assert "fraud-scorer-function" not in fraud["resources"]
    assert fraud["records_per_month"] == 3_000_000
    assert fraud["share_of_inference_percent"] == pytest.approx(
        100 * fraud["monthly_usd"] / fns["fraud-scorer"]["cost"]["monthly_usd"], abs=0.2
    )
    assert fraud["monthly_usd"] == pytest.approx(sum(x["monthly_usd"] for x in fraud["lines"]), abs=0.01)
    assert {"doc-classifier-capture-sink", "doc-classifier-capture-write"} <= set(
        fns["doc-classifier"]["capture"]["resources"]
    )
    assert plan["total"]["capture_monthly_usd"] == pytest.approx(
        sum(f["capture"]["monthly_usd"] for f in plan["functions"]), abs=0.02
    )


def test_share_above_the_limit_warns_and_never_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", "dev", "--max-capture-share", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "== Estimated monthly capture cost ==" in out
    for name in ("fraud-scorer", "churn-predictor", "doc-classifier", "sentiment"):
        assert f"warning: {name}: capture costs " in out
    assert main(["plan", "--stack", "dev", "--max-capture-share", "1000", "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert all(not any("of the inference cost" in w for w in f["capture"]["warnings"]) for f in plan["functions"])
    assert {f["capture"]["max_share_percent"] for f in plan["functions"]} == {1000.0}


@pytest.mark.parametrize("value", ["-1", "nan", "lots"])
def test_a_bad_share_is_exit_2(capsys: pytest.CaptureFixture[str], value: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["plan", "--stack", "dev", "--max-capture-share", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--max-capture-share" in err and "percentage" in err
