"""``drift check --capture``: each platform's real export layout on its real protocol server, windows,
envelopes, variants, delayed labels, the stack's reference, and the errors.

Records come from the real handler (functions/core.py with a capture sink), are wrapped the way each
platform delivers them, and are uploaded to moto's S3 server, Azurite or fake-gcs-server
(tests/emulators.py). The layouts, and the sources they are taken from:

* Firehose to S3: key ``<prefix>YYYY/MM/dd/HH/<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>``
  (https://docs.aws.amazon.com/firehose/latest/dev/s3-object-name.html); with CloudWatch Logs
  decompression and message extraction the object holds the messages, one per line; without them,
  gzip'd ``DATA_MESSAGE`` envelopes (https://docs.aws.amazon.com/firehose/latest/dev/Message_extraction.html).
* Firehose with dynamic partitioning (what components/aws.py declares): key
  ``<prefix>model_version=<v>/year=YYYY/month=MM/day=dd/hour=HH/<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>.jsonl.gz``
  (``!{partitionKeyFromQuery:model_version}`` then ``!{timestamp:...}``:
  https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning.html, s3-prefixes.html); each
  object holds one version's extracted messages, newline delimited. Stacks deployed before it keep
  their ``year=/month=/day=/hour=`` objects under the same ``captureUri``.
* Azure diagnostic setting to a storage account: ``insights-logs-<category>/resourceId=/SUBSCRIPTIONS/
  .../y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json``, JSON Lines since 2018-11-01
  (https://learn.microsoft.com/azure/azure-monitor/essentials/resource-logs-blob-format).
* Cloud Logging sink to GCS: ``<LOG_ID>/YYYY/MM/DD/HH:00:00_HH:59:59_S0.json``, LogEntry per line
  (https://cloud.google.com/logging/docs/export/storage).
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from drift import capture as cap
from drift.cli import main
from functions import capture as fcap
from functions import core

ROOT = Path(__file__).resolve().parent.parent
MODEL = core.load_model(str(ROOT / "functions" / "models" / "example-linear.json"))
DAY = datetime(2026, 1, 12, tzinfo=UTC)
N = 500  # records per window


def _rows(rng: np.random.Generator, n: int, amount_mean: float) -> list[dict[str, Any]]:
    amount = rng.normal(amount_mean, 8.0, n).round(2)
    age = rng.integers(18, 80, n)
    country = rng.choice(["US", "IN", "DE"], n, p=[0.5, 0.3, 0.2])
    device = rng.choice(["ios", "android", "web"], n, p=[0.4, 0.4, 0.2])
    return [
        {"amount": float(a), "age": int(g), "country": str(c), "device": str(d)}
        for a, g, c, d in zip(amount, age, country, device, strict=True)
    ]


def handler_records(
    hour: int,
    amount_mean: float,
    seed: int,
    *,
    variant: str = "stable",
    version: str = "2.2.0",
    n: int = N,
    rows: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Records the real handler emits for ``n`` rows sent in batches of 50 during ``hour`` of DAY."""
    rows = rows if rows is not None else _rows(np.random.default_rng(seed), n, amount_mean)
    n = len(rows)
    out: list[dict[str, Any]] = []
    sink = fcap.Capture(fcap.CaptureConfig(variant=variant), sink=out.append)
    for start in range(0, n, 50):
        t = DAY + timedelta(hours=hour, seconds=start * 3600 // n)
        stamp = t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        predictor = core.Predictor(MODEL, "fraud-scorer", version, capture=sink, clock=lambda s=stamp: s)
        predictor.predict_body(
            json.dumps({"instances": rows[start : start + 50]}), request_id=f"h{hour}-{seed}-{variant}-{start}"
        )
    return out


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"))


def _write_reference(tmp_path: Path, labels: bool = False) -> Path:
    records = handler_records(3, 20.0, seed=1)
    if labels:
        for r in records:
            r["label"] = r["prediction"]
    path = tmp_path / "reference.jsonl"
    path.write_text("".join(_line(r) + "\n" for r in records))
    return path


def _hour_of(record: dict[str, Any]) -> int:
    return int(record["timestamp"][11:13])


# --- each platform's layout -----------------------------------------------------------------------------


def firehose_extracted(records: list[dict[str, Any]], hour: int) -> tuple[str, bytes]:
    """Firehose with decompression + message extraction, delimiter appended, output GZIP-compressed."""
    rid = uuid.uuid4()
    lines = [f"START RequestId: {rid} Version: $LATEST"]  # Lambda's platform lines share the log group
    lines += [_line(r) for r in records]
    lines += [f"END RequestId: {rid}", f"REPORT RequestId: {rid}\tDuration: 1.52 ms\tBilled Duration: 2 ms"]
    key = f"fraud-scorer/2026/01/12/{hour:02d}/inferops-capture-1-2026-01-12-{hour:02d}-14-07-{uuid.uuid4()}.gz"
    return key, gzip.compress(("\n".join(lines) + "\n").encode())


STREAM = "inferops-dev-fraud-scorer-capture"


def _firehose_object(prefix: str, records: list[dict[str, Any]], hour: int) -> tuple[str, bytes]:
    """One Firehose object under ``prefix``: the extracted messages, a newline after each, GZIP output."""
    name = f"{STREAM}-1-2026-01-12-{hour:02d}-14-07-{uuid.uuid4()}.jsonl.gz"
    return f"{prefix}{name}", gzip.compress("".join(_line(r) + "\n" for r in records).encode())


def firehose_partitioned(records: list[dict[str, Any]], hour: int) -> list[tuple[str, bytes]]:
    """Firehose with dynamic partitioning on model_version: one object per version and arrival hour."""
    versions = sorted({r["model_version"] for r in records})
    return [
        _firehose_object(
            f"fraud-scorer/model_version={v}/year=2026/month=01/day=12/hour={hour:02d}/",
            [r for r in records if r["model_version"] == v],
            hour,
        )
        for v in versions
    ]


def firehose_hourly(records: list[dict[str, Any]], hour: int) -> tuple[str, bytes]:
    """What a stack deployed before partitioning wrote: arrival-hour partitions only, versions mixed."""
    return _firehose_object(f"fraud-scorer/year=2026/month=01/day=12/hour={hour:02d}/", records, hour)


def firehose_envelopes(records: list[dict[str, Any]], hour: int) -> tuple[str, bytes]:
    """Firehose without decompression: each record a gzip'd CloudWatch Logs subscription payload."""
    members = []
    for start in range(0, len(records), 40):
        chunk = records[start : start + 40]
        envelope = {
            "messageType": "DATA_MESSAGE",
            "owner": "111111111111",
            "logGroup": "/aws/lambda/inferops-dev-fraud-scorer",
            "logStream": "2026/01/12/[$LATEST]0123456789abcdef",
            "subscriptionFilters": ["inferops-capture"],
            "logEvents": [
                {"id": str(i), "timestamp": int(DAY.timestamp() * 1000) + i, "message": _line(r) + "\n"}
                for i, r in enumerate(chunk)
            ],
        }
        members.append(gzip.compress(json.dumps(envelope).encode()))
    control = {"messageType": "CONTROL_MESSAGE", "logEvents": [{"id": "", "timestamp": 0, "message": "CWL CONTROL"}]}
    members.append(gzip.compress(json.dumps(control).encode()))
    key = f"fraud-scorer/2026/01/12/{hour:02d}/inferops-capture-1-2026-01-12-{hour:02d}-30-00-{uuid.uuid4()}"
    return key, b"".join(members)


AZURE_RESOURCE = (
    "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/INFEROPS-DEV/PROVIDERS/"
    "MICROSOFT.WEB/SITES/INFEROPS-DEV-FRAUD-SCORER"
)


def azure_diagnostics(records: list[dict[str, Any]], hour: int) -> tuple[str, bytes]:
    """FunctionAppLogs records archived by a diagnostic setting: one JSON record per line (PT1H.json)."""

    def entry(message: str, time: str) -> str:
        return json.dumps(
            {
                "time": time,
                "resourceId": AZURE_RESOURCE,
                "category": "FunctionAppLogs",
                "operationName": "Microsoft.Web/sites/functions/log",
                "level": "Informational",
                "location": "East US",
                "properties": {
                    "appName": "inferops-dev-fraud-scorer",
                    "roleInstance": "54108609-638134167396406133",
                    "message": message,
                    "category": "Function.predict.User",
                    "hostVersion": "4.1045.200.3",
                    "functionInvocationId": str(uuid.uuid4()),
                    "functionName": "Functions.predict",
                    "hostInstanceId": str(uuid.uuid4()),
                    "level": "Information",
                    "levelId": 2,
                    "processId": 1234,
                },
            }
        )

    lines = [entry("Executing 'Functions.predict' (Reason='This function was programmatically called')", "x")]
    lines += [entry(_line(r), r["timestamp"]) for r in records]
    key = f"insights-logs-functionapplogs/resourceId={AZURE_RESOURCE}/y=2026/m=01/d=12/h={hour:02d}/m=00/PT1H.json"
    return key, ("\n".join(lines) + "\n").encode()


def cloud_logging(records: list[dict[str, Any]], hour: int) -> tuple[str, bytes]:
    """LogEntry lines of a Cloud Logging sink; half the payloads lost ``timestamp`` to the entry's field."""
    lines = []
    for i, r in enumerate(records):
        payload = dict(r)
        if i % 2:
            payload.pop("timestamp")  # taken by Cloud Logging as the entry time: the reader falls back to it
        lines.append(
            json.dumps(
                {
                    "insertId": uuid.uuid4().hex[:16],
                    "jsonPayload": payload,
                    "logName": "projects/inferops-dev/logs/run.googleapis.com%2Fstdout",
                    "receiveTimestamp": r["timestamp"],
                    "resource": {
                        "type": "cloud_run_revision",
                        "labels": {"service_name": "inferops-dev-fraud-scorer", "location": "us-central1"},
                    },
                    "timestamp": r["timestamp"],
                }
            )
        )
    key = f"run.googleapis.com/stdout/2026/01/12/{hour:02d}:00:00_{hour:02d}:59:59_S0.json"
    return key, ("\n".join(lines) + "\n").encode()


def cloud_logging_stderr(hour: int) -> tuple[str, bytes]:
    entry = {"textPayload": "Traceback (most recent call last): ...", "logName": "x", "timestamp": "2026-01-12T05:00Z"}
    return f"run.googleapis.com/stderr/2026/01/12/{hour:02d}:00:00_{hour:02d}:59:59_S0.json", json.dumps(entry).encode()


Layout = Callable[[list[dict[str, Any]], int], tuple[str, bytes]]


def _upload_s3(bucket: str, objects: dict[str, bytes]) -> str:
    import boto3

    client = boto3.client("s3")
    for key, data in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/fraud-scorer"


def _upload_azure(container: str, objects: dict[str, bytes]) -> str:
    import os

    from azure.storage.blob import BlobServiceClient

    from tests.emulators import AZURITE_ACCOUNT

    client = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])
    for key, data in objects.items():
        client.get_container_client(container).upload_blob(key, data)
    return f"az://{AZURITE_ACCOUNT}/{container}/insights-logs-functionapplogs"  # az://<account>/<container>/...


def _upload_gcs(bucket: str, objects: dict[str, bytes]) -> str:
    from google.cloud import storage

    b = storage.Client().bucket(bucket)
    for key, data in objects.items():
        b.blob(key).upload_from_string(data)
    return f"gs://{bucket}"


def _windows(layout: Layout, corrupt_key: str) -> dict[str, bytes]:
    """Hour 05: amount shifted by one standard deviation; hour 06: as the reference; hour 10 unreadable.

    The last batch of hour 05 arrives in hour 06's object, as Firehose's arrival-time prefixes do.
    """
    shifted = handler_records(5, 28.0, seed=2)
    steady = handler_records(6, 20.0, seed=3)
    objects = dict([layout(shifted[:-50], 5), layout(shifted[-50:] + steady, 6)])
    objects[corrupt_key] = b"\x1f\x8b not gzip: reading this object would fail the check"
    return objects


def _check(tmp_path: Path, *argv: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / f"report-{uuid.uuid4().hex[:6]}.json"
    code = main(["check", *argv, "--out", str(out)])
    return code, json.loads(out.read_text()) if out.exists() else {}


def _assert_verdicts(tmp_path: Path, uri: str, layout_name: str) -> None:
    ref = str(_write_reference(tmp_path))
    code, report = _check(
        tmp_path,
        "--capture",
        uri,
        "--since",
        "2026-01-12T05:00:00Z",
        "--until",
        "2026-01-12T06:00Z",
        "--reference",
        ref,
    )
    assert code == 1, report
    by = {f["feature"]: f for f in report["features"]}
    assert set(by) == {"amount", "age", "country", "device"}
    assert by["amount"]["drifted"] and not any(by[k]["drifted"] for k in ("age", "country", "device"))
    c = report["capture"]
    assert report["n_current"] == N and c["records"] == N  # the late batch in hour 06's object is counted
    assert set(c["layouts"]) == {layout_name}
    assert c["duplicates"] == 0
    code, report = _check(
        tmp_path,
        "--capture",
        uri,
        "--since",
        "2026-01-12T06:00:00Z",
        "--until",
        "2026-01-12T07:00:00Z",
        "--reference",
        ref,
    )
    assert code == 0, [f for f in report["features"] if f["drifted"]]
    assert report["n_current"] == N and report["severity"] == "none"


def test_firehose_extracted_messages_on_s3(tmp_path: Path, s3_env: str) -> None:
    objects = _windows(firehose_extracted, "fraud-scorer/2026/01/12/10/inferops-capture-1-broken")
    uri = _upload_s3(s3_env, objects)
    _assert_verdicts(tmp_path, uri, "records")
    _, report = _check(
        tmp_path,
        "--capture",
        uri,
        "--since",
        "2026-01-12T05:00Z",
        "--until",
        "2026-01-12T06:00Z",
        "--reference",
        str(tmp_path / "reference.jsonl"),
    )
    assert report["capture"]["skipped_lines"] == 3 * 2  # START/END/REPORT lines of the window's two objects


def test_firehose_partitioned_by_model_version_on_s3(tmp_path: Path, s3_env: str) -> None:
    def partitioned(records: list[dict[str, Any]], hour: int) -> tuple[str, bytes]:
        [obj] = firehose_partitioned(records, hour)  # one version in this window
        return obj

    broken = "fraud-scorer/model_version=2.2.0/year=2026/month=01/day=12/hour=10/x.jsonl.gz"
    objects = _windows(partitioned, broken)
    # Records Firehose could not process or partition go under the error prefix (components/aws.py
    # CAPTURE_ERROR_PREFIX): not records, never read, but counted in the report so a loss is visible.
    objects["fraud-scorer/error/processing-failed/year=2026/month=01/day=12/x"] = b"not records: never read"
    objects["fraud-scorer/error/processing-failed/year=2026/month=01/day=11/y"] = b"another day: not even listed"
    uri = _upload_s3(s3_env, objects)
    _assert_verdicts(tmp_path, uri, "records")
    _, report = _check(
        tmp_path,
        "--capture",
        uri,
        "--since",
        "2026-01-12T05:00Z",
        "--until",
        "2026-01-12T06:00Z",
        "--reference",
        str(tmp_path / "reference.jsonl"),
        "--format",
        "json",
    )
    assert report["capture"]["error_objects"] == 1 and report["capture"]["files"] == 2


def _version_window(s3_env: str) -> str:
    """Hour 05 of a stack that changed layout: the old hourly object (before `pulumi up` replaced the
    stream), then the partitioned objects of the stable 2.1.0 and canary 2.2.0 builds."""
    before = handler_records(5, 20.0, seed=21, n=100, version="2.1.0")
    stable = handler_records(5, 20.0, seed=22, n=300, version="2.1.0")
    canary = handler_records(5, 28.0, seed=23, n=200, version="2.2.0", variant="canary")
    objects = dict([firehose_hourly(before + canary[:40], 5), *firehose_partitioned(stable + canary[40:], 5)])
    # An unreadable object in 2.1.0's partition: reading it fails the check, so a run that asks only
    # for 2.2.0 and succeeds has not listed that partition.
    objects["fraud-scorer/model_version=2.1.0/year=2026/month=01/day=12/hour=05/broken.jsonl.gz"] = b"\x1f\x8b no"
    return _upload_s3(s3_env, objects)


def test_both_firehose_layouts_under_one_capture_uri(tmp_path: Path, s3_env: str) -> None:
    uri = _version_window(s3_env)
    window = cap.Window(DAY + timedelta(hours=5), DAY + timedelta(hours=6))
    _, listing = cap.list_window(uri, window)
    assert (
        sum("/model_version=" in f for f in listing.files) == 3 and sum("/year=2026/" in f for f in listing.files) == 4
    )
    with pytest.raises(cap.DataError, match=r"broken\.jsonl\.gz: not gzip or truncated"):
        list(cap.iter_records(uri, window))


def test_a_known_model_version_prunes_the_other_versions_partitions(tmp_path: Path, s3_env: str) -> None:
    uri = _version_window(s3_env)
    window = cap.Window(DAY + timedelta(hours=5), DAY + timedelta(hours=6))
    _, listing = cap.list_window(uri, window, versions={"2.2.0"})
    assert not any("model_version=2.1.0" in f for f in listing.files)  # neither the records nor the broken one
    assert listing.pruned == 1
    stats = cap.ReadStats()
    records = list(cap.iter_records(uri, window, stats, versions={"2.2.0"}))
    # The canary's 200: 160 from its partition, 40 from the old hourly object whose 100 stable records
    # are dropped by their own model_version.
    assert len(records) == 200 and {r["model_version"] for r in records} == {"2.2.0"}
    assert stats.other_versions == 100 and stats.partitions_pruned == 1
    # Through the CLI: the canary's shifted amount is drift against the reference; the report says
    # which versions it read and what it left out.
    code, report = _check(
        tmp_path,
        "--capture",
        uri,
        "--since",
        "2026-01-12T05:00Z",
        "--until",
        "2026-01-12T06:00Z",
        "--reference",
        str(_write_reference(tmp_path)),
        "--model-version",
        "2.2.0",
    )
    assert code == 1 and report["n_current"] == 200
    c = report["capture"]
    assert c["model_versions"] == ["2.2.0"] and c["records_of_other_versions"] == 100 and c["partitions_pruned"] == 1


def test_a_model_version_without_records_exit_2(
    tmp_path: Path, s3_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = _version_window(s3_env)
    argv = ["check", "--capture", uri, "--since", "2026-01-12T05:00Z", "--until", "2026-01-12T06:00Z"]
    code = main([*argv, "--reference", str(_write_reference(tmp_path)), "--model-version", "9.9.9"])
    err = capsys.readouterr().err
    assert code == 2 and "no capture records of model version(s) 9.9.9" in err and err.count("\n") == 1, err


def test_firehose_cloudwatch_envelopes_on_s3(tmp_path: Path, s3_env: str) -> None:
    objects = _windows(firehose_envelopes, "fraud-scorer/2026/01/12/10/inferops-capture-1-broken")
    _assert_verdicts(tmp_path, _upload_s3(s3_env, objects), "firehose-cwl")


def test_azure_diagnostic_logs_on_azurite(tmp_path: Path, azure_env: str) -> None:
    broken = f"insights-logs-functionapplogs/resourceId={AZURE_RESOURCE}/y=2026/m=01/d=12/h=10/m=00/PT1H.json"
    objects = _windows(azure_diagnostics, broken.replace("PT1H.json", "PT1H.json.gz"))
    _assert_verdicts(tmp_path, _upload_azure(azure_env, objects), "azure-diagnostics")


def test_cloud_logging_sink_on_fake_gcs(tmp_path: Path, gcs_env: str) -> None:
    objects = _windows(cloud_logging, "run.googleapis.com/stdout/2026/01/12/10:00:00_10:59:59_S0.json")
    objects.update([cloud_logging_stderr(5)])
    _assert_verdicts(tmp_path, _upload_gcs(gcs_env, objects), "cloud-logging")


# --- partitions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("2026/01/12/05/stream-1-2026-01-12-05-14-07-x", {"y": 2026, "m": 1, "d": 12, "h": 5}),  # Firehose
        ("resourceId=/SUBSCRIPTIONS/S/y=2026/m=01/d=12/h=05/m=00/PT1H.json", {"y": 2026, "m": 1, "d": 12, "h": 5}),
        ("run.googleapis.com/stdout/2026/01/12/05:00:00_05:59:59_S1.json", {"y": 2026, "m": 1, "d": 12, "h": 5}),
        ("model_version=2.2.0/date=2026-01-12/hour=05/pod-1.jsonl.gz", {"y": 2026, "m": 1, "d": 12, "h": 5}),
        ("year=2026/month=1/day=12/hour=5/part.gz", {"y": 2026, "m": 1, "d": 12, "h": 5}),
        ("model_version=2.2.0/date=2026-01-12", {"y": 2026, "m": 1, "d": 12}),
        ("resourceId=/SUBSCRIPTIONS/S/y=2026", {"y": 2026}),
        ("resourceId=/SUBSCRIPTIONS/S", {}),
    ],
)
def test_segment_parts_of_every_layout(path: str, parts: dict[str, int]) -> None:
    assert cap.segment_parts(path.split("/")) == parts


def test_only_the_windows_partitions_are_listed_and_read(tmp_path: Path) -> None:
    root = tmp_path / "cap"
    for day in range(1, 29):  # four weeks of hourly partitions
        for hour in (0, 5, 12):
            p = root / f"model_version=2.2.0/date=2026-01-{day:02d}/hour={hour:02d}/pod.jsonl.gz"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"\x1f\x8b corrupt: must not be read")
    good = root / "model_version=2.2.0/date=2026-01-12/hour=05/pod.jsonl.gz"
    good.write_bytes(gzip.compress("".join(_line(r) + "\n" for r in handler_records(5, 20.0, 4, n=50)).encode()))
    window = cap.Window(DAY + timedelta(hours=5), DAY + timedelta(hours=6))
    _, listing = cap.list_window(str(root), window)
    assert listing.files == [str(good)]
    assert listing.pruned == 27 + 2  # the other days' directories and the day's other hours, never listed
    stats = cap.ReadStats()
    assert len(list(cap.iter_records(str(root), window, stats))) == 50 and stats.files == 1


def test_window_options() -> None:
    w = cap.Window.resolve(None, None, "24h", now=datetime(2026, 1, 12, 5, 42, tzinfo=UTC))
    assert (w.since, w.until) == (datetime(2026, 1, 11, 5, tzinfo=UTC), datetime(2026, 1, 12, 5, tzinfo=UTC))
    w = cap.Window.resolve("2026-01-12T07:00:00+02:00", "2026-01-13", None)  # offsets and dates, in UTC
    assert (w.since, w.until) == (datetime(2026, 1, 12, 5, tzinfo=UTC), datetime(2026, 1, 13, tzinfo=UTC))
    with pytest.raises(cap.DataError, match=r"^--window: expected a positive duration"):
        cap.Window.resolve(None, None, "yesterday")
    with pytest.raises(cap.DataError, match=r"^--until: must be after --since"):
        cap.Window.resolve("2026-01-12T06:00Z", "2026-01-12T05:00Z", None)


def test_duplicates_are_dropped_once(tmp_path: Path) -> None:
    records = handler_records(5, 20.0, 5, n=100)
    for name in ("a", "b"):  # the same records delivered twice (at-least-once delivery)
        (tmp_path / "2026/01/12/05").mkdir(parents=True, exist_ok=True)
        (tmp_path / f"2026/01/12/05/{name}").write_text("".join(_line(r) + "\n" for r in records))
    stats = cap.ReadStats()
    window = cap.Window(DAY, DAY + timedelta(days=1))
    assert len(list(cap.iter_records(str(tmp_path), window, stats))) == 100
    assert stats.duplicates == 100


# --- variants, labels, the stack's reference --------------------------------------------------------


def _writer_capture(tmp_path: Path, records: list[dict[str, Any]]) -> str:
    writer = fcap.BatchWriter.for_uri(str(tmp_path / "k8s"), host="pod-a")
    for r in records:
        assert writer.offer(r)
    writer.close()
    return str(tmp_path / "k8s")


@pytest.mark.parametrize(("canary_mean", "expected"), [(28.0, 1), (20.0, 0)])
def test_compare_variants_on_the_kubernetes_writer_files(tmp_path: Path, canary_mean: float, expected: int) -> None:
    # One stream of traffic, split 75/25 between the variants as the platform's router does. The check's
    # family-wise false-alarm rate is alpha (0.05, Bonferroni; measured in test_drift_detect.py): this
    # no-shift case is one seeded draw, which the detector must not flag.
    rng = np.random.default_rng(7)
    stable = handler_records(5, 20.0, 0, rows=_rows(rng, 900, 20.0))
    canary_rows = _rows(rng, 300, 20.0)
    for row in canary_rows:
        row["amount"] = round(row["amount"] + canary_mean - 20.0, 2)  # the candidate's traffic, shifted or not
    canary = handler_records(5, canary_mean, 0, rows=canary_rows, variant="canary", version="2.3.0")
    uri = _writer_capture(tmp_path, stable + canary)
    code, report = _check(
        tmp_path, "--capture", uri, "--since", "2026-01-12T05:00Z", "--until", "2026-01-12T06:00Z", "--compare-variants"
    )
    assert code == expected, [f for f in report.get("features", []) if f["drifted"]]
    assert report["capture"]["variants"] == {"stable": 900, "canary": 300}
    assert (report["n_reference"], report["n_current"]) == (900, 300)
    assert {f["feature"]: f["drifted"] for f in report["features"]}["amount"] is (expected == 1)


def test_labels_join_by_request_id_with_late_and_unmatched_counted(tmp_path: Path) -> None:
    ref = _write_reference(tmp_path, labels=True)  # the model was right on every reference row
    records = handler_records(5, 20.0, seed=9)  # a no-shift draw of the inputs (see the variants test)
    uri = _writer_capture(tmp_path, records)
    rng = np.random.default_rng(9)
    labels = []
    for i, r in enumerate(records[:400]):
        at = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")) + timedelta(days=10 if i >= 350 else 1)
        wrong = rng.random() < 0.4  # the outcome now disagrees with 40 % of predictions
        labels.append(
            {
                "request_id": r["request_id"],
                "label": 1 - r["prediction"] if wrong else r["prediction"],
                "timestamp": at.isoformat(),
            }
        )
    labels += [{"request_id": f"gone-{i}", "label": 1, "timestamp": "2026-01-13T00:00:00Z"} for i in range(20)]
    # Delivered as two files under one prefix (e.g. one per day of outcomes).
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "day1.jsonl").write_text("".join(json.dumps(x) + "\n" for x in labels[:200]))
    (tmp_path / "labels" / "day2.jsonl").write_text("".join(json.dumps(x) + "\n" for x in labels[200:]))
    code, report = _check(
        tmp_path,
        "--capture",
        uri,
        "--since",
        "2026-01-12T05:00Z",
        "--until",
        "2026-01-12T06:00Z",
        "--reference",
        str(ref),
        "--labels",
        str(tmp_path / "labels"),
    )
    assert report["capture"]["labels"] == {
        "total": 420,
        "matched": 350,
        "late": 50,
        "unmatched": 20,
        "grace_hours": 168.0,
    }
    perf = report["performance"]
    assert report["n_current"] == 350  # the check runs on the labelled records
    assert perf["n_current"] == 350 and perf["drifted"] and code == 1
    assert not [f for f in report["features"] if f["drifted"]]  # inputs unchanged: it is concept drift


def test_reference_from_the_stack_config(tmp_path: Path) -> None:
    ref = _write_reference(tmp_path)
    uri = _writer_capture(tmp_path, handler_records(5, 28.0, seed=10))
    stack = tmp_path / "repo" / "Pulumi.dev.yaml"
    stack.parent.mkdir()
    stack.write_text(
        "config:\n  inferops:functions:\n    - name: fraud-scorer\n      model:\n"
        f"        id: fraud-scorer\n        referenceUri: {ref}\n    - name: other\n      model: {{id: x}}\n"
    )
    window = ["--capture", uri, "--since", "2026-01-12T05:00Z", "--until", "2026-01-12T06:00Z"]
    code, report = _check(
        tmp_path, *window, "--stack", "dev", "--function", "fraud-scorer", "--repo", str(stack.parent)
    )
    assert code == 1 and report["n_reference"] == N
    assert _check(tmp_path, *window, "--stack", "dev", "--function", "other", "--repo", str(stack.parent))[0] == 2


def test_a_captured_window_prefix_as_the_reference(tmp_path: Path) -> None:
    ref_uri = _writer_capture(tmp_path / "ref", handler_records(3, 20.0, seed=11))
    uri = _writer_capture(tmp_path, handler_records(5, 20.0, seed=12))
    code, report = _check(
        tmp_path,
        "--capture",
        uri,
        "--since",
        "2026-01-12T05:00Z",
        "--until",
        "2026-01-12T06:00Z",
        "--reference",
        ref_uri,
    )
    assert code == 0 and report["n_reference"] == N


# --- errors: exit 2 with one line naming the input ----------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--since", "2026-02-01T00:00Z", "--until", "2026-02-02T00:00Z"],
            "no capture records in [2026-02-01T00:00:00Z",
        ),
        (["--window", "24h", "--since", "2026-01-12T05:00Z"], "--window: give either --window or --since/--until"),
        (["--since", "2026-01-12T05:00Z"], "--since: a capture window needs --since and --until"),
        (
            ["--since", "2026-01-12T05:00Z", "--until", "2026-01-12T06:00Z", "--current", "x.jsonl"],
            "--current: give either",
        ),
        (["--since", "2026-01-12T05:00Z", "--until", "2026-01-12T06:00Z", "--label-grace", "soon"], "--label-grace:"),
        (
            ["--since", "2026-01-12T05:00Z", "--until", "2026-01-12T06:00Z", "--model-version", " "],
            "--model-version: must not be empty",
        ),
        (
            ["--window", "1h", "--engine", "spark", "--model-version", "2.2.0"],
            "--model-version: not supported with --engine spark",
        ),
    ],
)
def test_bad_capture_options_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    ref = _write_reference(tmp_path)
    uri = _writer_capture(tmp_path, handler_records(5, 20.0, seed=13, n=50))
    code = main(["check", "--capture", uri, "--reference", str(ref), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_labels_without_request_id_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "labels.csv").write_text("id,label\na,1\n")
    uri = _writer_capture(tmp_path, handler_records(5, 20.0, seed=14, n=50))
    code = main(
        [
            "check",
            "--capture",
            uri,
            "--window",
            "1h",
            "--reference",
            str(_write_reference(tmp_path)),
            "--labels",
            str(tmp_path / "labels.csv"),
        ]
    )
    assert code == 2 and "labels.csv: missing column(s) 'request_id'" in capsys.readouterr().err


def test_missing_capture_location_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "check",
            "--capture",
            str(tmp_path / "nowhere"),
            "--window",
            "24h",
            "--reference",
            str(_write_reference(tmp_path)),
        ]
    )
    assert code == 2 and "nowhere: no such capture location" in capsys.readouterr().err


def test_markdown_report_ends_with_the_captured_window(tmp_path: Path) -> None:
    ref = _write_reference(tmp_path)
    uri = _writer_capture(tmp_path, handler_records(5, 28.0, seed=15))
    out = tmp_path / "report.md"
    window = ["--since", "2026-01-12T05:00Z", "--until", "2026-01-12T06:00Z"]
    code = main(
        ["check", "--capture", uri, *window, "--reference", str(ref), "--format", "markdown", "--out", str(out)]
    )
    text = out.read_text()
    assert code == 1 and text.startswith("## Drift check: ")
    assert f"current `{uri} [2026-01-12T05:00:00Z, 2026-01-12T06:00:00Z)`" in text  # not the temporary file
    assert text.rstrip().endswith(
        f"`{uri}` from 2026-01-12T05:00:00Z to 2026-01-12T06:00:00Z: {N} record(s) in 1 file(s); "
        "0 non-record line(s) skipped, 0 duplicate(s) dropped."
    )


def test_an_unreadable_store_is_an_internal_error_not_a_finding(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    # No credentials reach boto3 and the endpoint is a closed loopback port: an environment failure.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_MAX_ATTEMPTS="1", PYTHONPATH=str(ROOT))
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"))
    argv = [
        "check",
        "--capture",
        "s3://bucket/prefix",
        "--window",
        "1h",
        "--reference",
        str(_write_reference(tmp_path)),
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "drift", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 3, proc.stderr  # never 1: the workflow acts on 1
    assert proc.stderr.startswith("drift: internal error: StoreError: s3://bucket/prefix: NoCredentialsError")
    assert proc.stderr.count("\n") <= 1


def test_compare_variants_false_alarm_rate_on_same_traffic(tmp_path: Path) -> None:
    """Twenty seeded no-shift splits of one traffic stream: the capture path adds no false alarms.

    The detector's family-wise rate is alpha = 0.05, so about one alarm in twenty is expected; a
    capture column treated as a feature (request_id, latency_ms) would alarm on every run.
    """
    alarms = 0
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        stable = handler_records(5, 20.0, seed, rows=_rows(rng, 300, 20.0))
        canary = handler_records(5, 20.0, seed, rows=_rows(rng, 100, 20.0), variant="canary", version="2.3.0")
        uri = _writer_capture(tmp_path / str(seed), stable + canary)
        window = ["--since", "2026-01-12T05:00Z", "--until", "2026-01-12T06:00Z"]
        code, report = _check(tmp_path, "--capture", uri, *window, "--compare-variants")
        assert code in (0, 1), report
        assert [f["feature"] for f in report["features"]] == ["amount", "age", "country", "device"]
        alarms += code
    assert alarms <= 3, f"{alarms} false alarms in 20 no-shift runs"


def test_markdown_section_names_the_versions_read_and_the_error_objects() -> None:
    from drift.capture_cli import markdown_section

    c = {"uri": "s3://b/", "since": "a", "until": "b", "records": 5, "files": 1, "skipped_lines": 0, "duplicates": 0}
    assert "Model version" not in markdown_section({"capture": c}) and "error prefix" not in markdown_section(
        {"capture": c}
    )
    c.update(error_objects=2, model_versions=["2.2.0"], records_of_other_versions=7, partitions_pruned=3)
    text = markdown_section({"capture": c})
    assert "2 object(s) of the window under the delivery stream's error prefix" in text
    assert "Model version(s) 2.2.0 only: 7 record(s) of other versions dropped, 3 partition(s) not listed." in text
