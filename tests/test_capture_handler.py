"""The handler's data capture: the design.md record, request ids, sampling, sinks and the batch writer.

The writer is exercised against a local volume and against each real protocol server on loopback
(moto S3, Azurite, fake-gcs-server: tests/emulators.py); what it wrote is read back by the drift
job's capture reader, so the layout both sides rely on is tested end to end.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import re
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from drift import capture as reader
from functions import capture, core

ROOT = Path(__file__).resolve().parent.parent
MODEL_PATH = ROOT / "functions" / "models" / "example-linear.json"
ROW = {"amount": 20, "age": 30, "country": "US", "device": "ios"}
P_ROW = 0.549833997312478


@pytest.fixture(autouse=True)
def model_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MODEL_URI", str(MODEL_PATH))
    monkeypatch.setenv("MODEL_ID", "fraud-scorer")
    monkeypatch.setenv("MODEL_VERSION", "2.2.0")
    for key in (capture.ENV_URI, capture.ENV_VARIANT, capture.ENV_SAMPLE_PERCENT, capture.ENV_ENABLED):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("FUNCTIONS_WORKER_RUNTIME", raising=False)
    monkeypatch.delenv("WEBSITE_SITE_NAME", raising=False)
    core.clear_cache()
    yield
    core.clear_cache()


def _records(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


# --- request ids ------------------------------------------------------------------------------------


def test_request_id_prefers_the_client_header_then_the_platform_id() -> None:
    assert capture.request_id_from({"X-Request-Id": "abc-123"}, "lambda-req") == "abc-123"
    assert capture.request_id_from({"x-request-id": ["first", "second"]}) == "first"
    assert capture.request_id_from({}, "lambda-req") == "lambda-req"
    # Cloud Run: the trace id of X-Cloud-Trace-Context (TRACE_ID/SPAN_ID;o=1) names the request.
    trace = {"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/1;o=1"}
    assert capture.request_id_from(trace) == "105445aa7843bc8bf206b12000100000"
    # A header outside the safe charset is not copied into logs: the platform id (or a new id) is used.
    assert capture.request_id_from({"X-Request-Id": 'x"\n{"model_version":1}'}, "p-1") == "p-1"
    generated = capture.request_id_from({"X-Request-Id": "a" * 129})
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert capture.request_id_from() != capture.request_id_from()


def test_sampling_is_stable_per_request_and_hits_the_share() -> None:
    rng = random.Random(13)
    ids = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(20_000)]
    for percent in (1.0, 10.0, 50.0):
        share = sum(capture.sampled(i, percent) for i in ids) / len(ids)
        # binomial standard error at 20k draws is at most 0.35 points: 4 of them is a generous bound
        assert abs(share - percent / 100) < 0.014, (percent, share)
    assert all(capture.sampled(i, 100.0) for i in ids[:100])
    assert not any(capture.sampled(i, 0.0) for i in ids[:100])
    assert [capture.sampled(i, 10.0) for i in ids[:500]] == [capture.sampled(i, 10.0) for i in ids[:500]]


# --- the record -------------------------------------------------------------------------------------


def test_the_record_is_the_design_capture_record(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(capture.ENV_VARIANT, "canary")
    status, body = core.handle(json.dumps({**ROW, "label": 1}), request_id="req-1")
    assert status == 200 and body["request_id"] == "req-1"
    (record,) = _records(capsys.readouterr().out)
    assert list(record) == [
        "request_id",
        "timestamp",
        "model_id",
        "model_version",
        "variant",
        *ROW,
        "prediction",
        "probability",
        "latency_ms",
        "label",
    ]
    assert record["request_id"] == "req-1" and record["variant"] == "canary"
    assert record["probability"] == pytest.approx(P_ROW) and record["prediction"] == 1
    assert isinstance(record["latency_ms"], float) and 0 <= record["latency_ms"] < 10_000
    assert datetime.fromisoformat(record["timestamp"]).utcoffset().total_seconds() == 0


def test_batch_rows_get_their_own_request_ids(capsys: pytest.CaptureFixture[str]) -> None:
    status, body = core.handle(json.dumps({"instances": [ROW, {**ROW, "amount": 0}]}), request_id="b-7")
    assert status == 200 and body["request_id"] == "b-7"
    records = _records(capsys.readouterr().out)
    assert [r["request_id"] for r in records] == ["b-7/0", "b-7/1"]
    assert {r["variant"] for r in records} == {"stable"}  # the default when the component sets none


def test_regression_records_have_no_probability(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = {"format": core.MODEL_FORMAT, "task": "regression", "features": ["x"], "weights": [2.0], "bias": 1.0}
    (tmp_path / "m.json").write_text(json.dumps(doc))
    predictor = core.Predictor(core.load_model(str(tmp_path / "m.json")), "r", "1")
    assert core.handle(json.dumps({"x": 3}), predictor, request_id="r1")[0] == 200
    (record,) = _records(capsys.readouterr().out)
    assert record["prediction"] == 7.0 and "probability" not in record


def test_sample_percent_in_the_handler(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(capture.ENV_SAMPLE_PERCENT, "25")
    ids = [f"req-{i}" for i in range(400)]
    for rid in ids:
        assert core.handle(json.dumps(ROW), request_id=rid)[0] == 200
    logged = {r["request_id"] for r in _records(capsys.readouterr().out)}
    assert logged == {rid for rid in ids if capture.sampled(rid, 25.0)}
    assert 60 <= len(logged) <= 140  # 25 % of 400, within five standard errors


def test_capture_disabled_logs_nothing_and_predicts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(capture.ENV_ENABLED, "false")
    status, body = core.handle(json.dumps(ROW))
    assert status == 200 and body["prediction"] == 1
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (capture.ENV_SAMPLE_PERCENT, "150"),
        (capture.ENV_SAMPLE_PERCENT, "ten"),
        (capture.ENV_VARIANT, "blue"),
        (capture.ENV_ENABLED, "maybe"),
        (capture.ENV_URI, "ftp://bucket/x"),
    ],
)
def test_bad_capture_settings_fail_readiness_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], key: str, value: str
) -> None:
    monkeypatch.setenv(key, value)
    assert core.handle(json.dumps(ROW)) == (500, {"error": "model unavailable"})
    assert core.health()[0] == 503
    assert key in capsys.readouterr().err


def test_a_failing_sink_never_fails_the_prediction() -> None:
    def broken(record: Any) -> None:
        raise OSError("disk full")

    cap = capture.Capture(capture.CaptureConfig(), sink=broken)
    predictor = core.Predictor(core.load_model(str(MODEL_PATH)), "fraud-scorer", "2.2.0", capture=cap)
    assert core.handle(json.dumps(ROW), predictor)[0] == 200
    assert cap.failed == 1


def test_azure_functions_records_go_through_logging(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # The Python worker forwards logging records to the host (FunctionAppLogs, properties.message).
    monkeypatch.setenv("FUNCTIONS_WORKER_RUNTIME", "python")
    with caplog.at_level(logging.INFO, logger="inferops.capture"):
        assert core.handle(json.dumps(ROW), request_id="az-1")[0] == 200
    (message,) = [r.getMessage() for r in caplog.records if r.name == "inferops.capture"]
    assert json.loads(message)["request_id"] == "az-1"
    assert capsys.readouterr().out == ""


def test_flex_consumption_records_go_through_logging_without_the_worker_setting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # Flex rejects FUNCTIONS_WORKER_RUNTIME as an app setting (tests/test_component_azure.py), so the
    # handler also knows App Service by WEBSITE_SITE_NAME, which the platform sets on every site
    # (learn.microsoft.com/azure/app-service/reference-app-settings, "App environment").
    monkeypatch.delenv("FUNCTIONS_WORKER_RUNTIME", raising=False)
    monkeypatch.setenv("WEBSITE_SITE_NAME", "inferops-dev-churn-predictor")
    with caplog.at_level(logging.INFO, logger="inferops.capture"):
        assert core.handle(json.dumps(ROW), request_id="flex-1")[0] == 200
    (message,) = [r.getMessage() for r in caplog.records if r.name == "inferops.capture"]
    assert json.loads(message)["request_id"] == "flex-1"
    assert capsys.readouterr().out == ""


# --- adapters pass the request id ---------------------------------------------------------------------


def test_lambda_adapter_uses_the_header_or_the_platform_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    from functions import aws_lambda

    event: dict[str, Any] = {
        "rawPath": "/",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": "/"}, "requestId": "JKJaXmPLvHcESHA="},
        "body": json.dumps(ROW),
    }
    assert json.loads(aws_lambda.handler(event, None)["body"])["request_id"] == "JKJaXmPLvHcESHA="
    event["headers"]["x-request-id"] = "client-9"
    assert json.loads(aws_lambda.handler(event, None)["body"])["request_id"] == "client-9"
    assert [r["request_id"] for r in _records(capsys.readouterr().out)] == ["JKJaXmPLvHcESHA=", "client-9"]


def test_http_server_takes_x_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    import http.client

    from functions import http_server

    server = http_server.make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        conn = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
        conn.request("POST", "/predict", json.dumps(ROW), {"Content-Type": "application/json", "X-Request-Id": "k-1"})
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["request_id"] == "k-1"
    finally:
        server.shutdown()
        server.server_close()
    (record,) = _records(capsys.readouterr().out)
    assert record["request_id"] == "k-1"


# --- the batch writer -----------------------------------------------------------------------------------


def _record(i: int, stamp: str = "2026-01-12T05:10:00.000Z", version: str = "2.2.0") -> dict[str, Any]:
    return {
        "request_id": f"r-{i}",
        "timestamp": stamp,
        "model_id": "fraud-scorer",
        "model_version": version,
        "variant": "stable",
        **ROW,
        "prediction": 1,
        "probability": P_ROW,
        "latency_ms": 1.5,
    }


def _read_objects(root: Path) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for path in sorted(root.rglob("*.jsonl.gz")):
        out[str(path.relative_to(root))] = _records(gzip.decompress(path.read_bytes()).decode())
    return out


def test_writer_layout_partitions_by_version_date_and_hour(tmp_path: Path) -> None:
    writer = capture.BatchWriter.for_uri(str(tmp_path / "cap"), host="pod-a")
    writer.offer(_record(1, "2026-01-12T05:10:00.000Z"))
    writer.offer(_record(2, "2026-01-12T06:00:00.000Z"))
    writer.offer(_record(3, "2026-01-12T05:59:59.999Z", version="2.3.0"))
    writer.close()
    objects = _read_objects(tmp_path / "cap")
    names = sorted(objects)
    pattern = r"model_version=(2\.[23]\.0)/date=2026-01-12/hour=(0[56])/pod-a-\d{8}T\d{12}Z-\d{6}\.jsonl\.gz"
    assert all(re.fullmatch(pattern, n) for n in names), names
    placed = {re.fullmatch(pattern, n).groups(): [r["request_id"] for r in objects[n]] for n in names}
    assert placed == {("2.2.0", "05"): ["r-1"], ("2.2.0", "06"): ["r-2"], ("2.3.0", "05"): ["r-3"]}
    assert writer.stats() == {"accepted": 3, "written": 3, "dropped": 0, "write_errors": 0, "pending": 0}
    assert not list((tmp_path / "cap").rglob(".*.tmp"))  # written atomically: no temporary file left


def test_writer_flushes_on_size_in_the_background(tmp_path: Path) -> None:
    writer = capture.BatchWriter.for_uri(
        str(tmp_path), capture.CaptureConfig(flush_records=3, flush_seconds=3600), host="p"
    )
    writer.start()
    try:
        for i in range(3):
            writer.offer(_record(i))
        assert writer.flushed.wait(30), "the size trigger did not flush"
        assert writer.stats()["written"] == 3
    finally:
        writer.close()


def test_writer_flushes_on_time_in_the_background(tmp_path: Path) -> None:
    writer = capture.BatchWriter.for_uri(
        str(tmp_path), capture.CaptureConfig(flush_records=1000, flush_seconds=0.05), host="p"
    )
    writer.start()
    try:
        writer.offer(_record(1))
        assert writer.flushed.wait(30), "the timer did not flush"
        assert sum(len(v) for v in _read_objects(tmp_path).values()) == 1
    finally:
        writer.close()


class _SlowStore:
    """A destination whose writes wait until released (a slow or hung object store)."""

    def __init__(self, fail: bool = False) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.fail = fail
        self.uri = "mem://slow"
        self.prefix = ""
        self.puts: list[str] = []

    def put(self, key: str, data: bytes) -> str:
        self.entered.set()
        self.release.wait(30)
        if self.fail:
            raise ConnectionError("endpoint unreachable")
        self.puts.append(key)
        return key


def test_offer_never_waits_for_a_slow_store_and_counts_drops() -> None:
    store = _SlowStore()
    writer = capture.BatchWriter(store, buffer_records=5, host="p")  # type: ignore[arg-type]
    writer.offer(_record(0))
    flusher = threading.Thread(target=writer.flush)
    flusher.start()
    assert store.entered.wait(30)  # the flush is now stuck in the store
    accepted = [writer.offer(_record(i)) for i in range(1, 9)]  # returns at once though the store hangs
    assert accepted == [True] * 5 + [False] * 3
    assert writer.stats()["dropped"] == 3 and writer.stats()["pending"] == 5
    store.release.set()
    flusher.join(30)
    writer.close()
    assert writer.stats() == {"accepted": 6, "written": 6, "dropped": 3, "write_errors": 0, "pending": 0}


def test_a_failed_write_is_retried_then_counted_at_shutdown(capsys: pytest.CaptureFixture[str]) -> None:
    store = _SlowStore(fail=True)
    store.release.set()
    writer = capture.BatchWriter(store, buffer_records=10, host="p")  # type: ignore[arg-type]
    for i in range(4):
        writer.offer(_record(i))
    assert writer.flush() == 0
    assert writer.stats()["pending"] == 4 and writer.stats()["write_errors"] == 1  # kept for the next flush
    assert "capture write failed" in capsys.readouterr().err
    writer.close()  # the last attempt fails too: the records are lost, and counted
    assert writer.stats()["dropped"] == 4 and writer.stats()["pending"] == 0
    assert not writer.offer(_record(9))  # after shutdown nothing is accepted silently


def test_sigterm_flushes_before_the_pod_exits(tmp_path: Path) -> None:
    script = f"""
import os, signal, sys
sys.path.insert(0, {str(ROOT)!r})
from functions import capture
w = capture.BatchWriter.for_uri({str(tmp_path)!r}, capture.CaptureConfig(flush_seconds=3600), host="pod")
w.start()
w.offer({json.dumps(_record(1))})
os.kill(os.getpid(), signal.SIGTERM)
signal.pause()
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 128 + 15, proc.stderr
    assert [r["request_id"] for v in _read_objects(tmp_path).values() for r in v] == ["r-1"]


def test_the_handler_uses_the_writer_when_a_capture_uri_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(capture.ENV_URI, str(tmp_path / "captures"))
    monkeypatch.setenv(capture.ENV_VARIANT, "canary")
    assert core.handle(json.dumps({"instances": [ROW, ROW]}), request_id="w-1")[0] == 200
    core.clear_cache()  # closes (flushes) the writer, as the process exit would
    assert capsys.readouterr().out == ""  # nothing on stdout: the writer has the records
    (records,) = _read_objects(tmp_path / "captures").values()
    assert [(r["request_id"], r["variant"]) for r in records] == [("w-1/0", "canary"), ("w-1/1", "canary")]


# --- the writer against each real object store, read back by the drift job ---------------------------


def _write_and_read(uri: str, read_uri: str | None = None) -> list[dict[str, Any]]:
    """Write five records to ``uri`` (the handler's form) and read them back from ``read_uri`` (the
    drift job's form, the same unless given)."""
    writer = capture.BatchWriter.for_uri(uri, host="pod-x")
    now = datetime.now(UTC).replace(microsecond=0)
    stamp = now.isoformat().replace("+00:00", "Z")
    for i in range(5):
        assert writer.offer(_record(i, stamp))
    writer.close()
    assert writer.stats()["written"] == 5 and writer.stats()["write_errors"] == 0, writer.stats()
    assert all(o.startswith(uri.split("://")[0]) for o in writer.objects)
    window = reader.Window(now.replace(minute=0, second=0), now.replace(minute=0, second=0) + reader.ARRIVAL_SLACK)
    stats = reader.ReadStats()
    records = list(reader.iter_records(read_uri or uri, window, stats))
    assert stats.files == 1
    return records


def test_writer_to_s3_moto(s3_env: str) -> None:
    records = _write_and_read(f"s3://{s3_env}/captures/fraud-scorer")
    assert [r["request_id"] for r in records] == [f"r-{i}" for i in range(5)]


def test_writer_to_azure_blob_azurite(azure_env: str) -> None:
    from tests.emulators import AZURITE_ACCOUNT

    # The handler's az:// is <container>/<prefix> with the account in AZURE_STORAGE_ACCOUNT_NAME
    # (functions/README.md); the drift job's is the project's az://<account>/<container>/<prefix>.
    records = _write_and_read(
        f"az://{azure_env}/captures/fraud-scorer", f"az://{AZURITE_ACCOUNT}/{azure_env}/captures/fraud-scorer"
    )
    assert [r["request_id"] for r in records] == [f"r-{i}" for i in range(5)]


def test_writer_to_gcs_fake_gcs_server(gcs_env: str) -> None:
    records = _write_and_read(f"gs://{gcs_env}/captures/fraud-scorer")
    assert [r["request_id"] for r in records] == [f"r-{i}" for i in range(5)]


def test_writer_needs_an_account_for_az_without_a_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.delenv("AZURE_STORAGE_ACCOUNT_NAME", raising=False)
    writer = capture.BatchWriter.for_uri("az://c/p", host="p")
    writer.offer(_record(1))
    assert writer.flush() == 0 and writer.write_errors == 1


def test_writer_refuses_a_connection_string_for_another_account(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The component names the account (AZURE_STORAGE_ACCOUNT_NAME, from capture.destination); a connection
    string for another account would put the records outside the exported captureUri."""
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "lakeacct")
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        "DefaultEndpointsProtocol=http;AccountName=otheracct;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:9/otheracct;",
    )
    writer = capture.BatchWriter.for_uri("az://captures/p", host="p")
    writer.offer(_record(1))
    assert writer.flush() == 0 and writer.write_errors == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert json.loads(line)["detail"] == (
        "AZURE_STORAGE_CONNECTION_STRING is for account 'otheracct', not AZURE_STORAGE_ACCOUNT_NAME 'lakeacct'"
    )
