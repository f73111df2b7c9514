"""Monthly cost of a function's data capture, per platform, for the offline plan.

"Monitoring must not cost more than it saves": the plan shows, per function, what its capture path
costs a month and what share of the function's inference cost that is, and warns above a share.

Each platform's path is the one the components build (issue 13):

* ``aws``: the handler's stdout lines in CloudWatch Logs (Standard class ingestion), a subscription
  filter to a Firehose stream (Direct PUT ingestion, each record rounded up to 5 KB; dynamic
  partitioning by model version: GB processed, S3 objects delivered, JQ hours), S3 Standard storage
  over ``retentionDays`` and the stream's PUTs. CloudWatch Logs batches several events into one
  Firehose record; one record per event is assumed, an upper bound of the 5 KB rounding.
* ``azure``: the diagnostic setting the component declares (``docs/components-azure.md``):
  ``FunctionAppLogs`` exported to a storage account (platform-log export per GB), Hot blob storage and
  the append writes to the hour's ``PT1H.json``.
* ``gcp``: the sink to GCS (routing is not charged by Logging), GCS Standard storage and one Class A
  write per hourly batch file. The component excludes the capture entries from the ``_Default`` sink
  (``docs/components-gcp.md``), so Logging stores no copy; with ``capture.keepInLogs`` the
  ``_Default`` bucket stores them too (Logging storage per GiB, its default 30-day retention
  included).
* ``kubernetes``: the pod's batched writer (``functions/capture.py``): one object PUT per flush
  (1,000 records or 60 s per pod, the defaults) and storage in the destination cloud.

Sizes are measured, not guessed: :func:`record_bytes` runs the real handler
(:class:`functions.core.Predictor`) on a row of the model's declared features and measures the JSON
line it emits, and each platform's envelope (CloudWatch event overhead, ``FunctionAppLogs`` record,
Cloud Logging ``LogEntry``) is measured around that line. Storage is priced at the uncompressed size
(Firehose and the writer gzip, so this is an upper bound). Per-function estimates assume no free tier,
like the inference estimate they are compared with. Prices: the ``capture`` section of the policy
pack's ``prices.json`` (dated and sourced per product).
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from components.spec import FunctionSpec
from inferops.harness import PROJECT_DIR

#: Warn when capture costs more than this share of the function's inference cost (``--max-capture-share``).
DEFAULT_MAX_SHARE_PERCENT = 20.0
#: The model whose declared features size the record when the function's artifact is not a local file.
EXAMPLE_MODEL = PROJECT_DIR / "functions" / "models" / "example-linear.json"
#: A representative numeric feature value and latency (8 significant digits, a few ms) for the measured row.
NUMERIC_VALUE = 1234.5678
LATENCY_MS = 12.345
#: Writer defaults (functions/capture.py DEFAULT_FLUSH_RECORDS / DEFAULT_FLUSH_SECONDS).
WRITER_FLUSH_RECORDS = 1000
WRITER_FLUSH_SECONDS = 60.0
#: A fixed request id of the platforms' UUID form (Lambda request id, Azure invocation id).
REQUEST_ID = str(uuid.UUID(int=0))


@dataclass
class Line:
    """One billed quantity of the capture path."""

    item: str
    quantity: float
    unit: str
    unit_usd: float
    monthly_usd: float


@dataclass
class CaptureEstimate:
    """A function's capture: the path, the measured record, the monthly lines and their total."""

    path: str
    record_bytes: int
    record_basis: str
    records_per_month: float
    lines: list[Line] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def monthly_usd(self) -> float:
        """The sum of the lines."""
        return math.fsum(line.monthly_usd for line in self.lines)


# --- the record ------------------------------------------------------------------------------------


def model_for(fn: FunctionSpec, model_file: Path | None = None) -> tuple[Any, str]:
    """The model whose declared features make the record, and what the size is based on.

    The stack config declares no feature list and the plan is offline, so the model at
    ``artifactUri`` (always a remote URI: components/spec.py) is not fetched: ``model_file`` (a local
    copy of it) is read when given, else the bundled example model stands in, which the basis says.
    """
    from functions import core

    if model_file is not None:
        return core.load_model(str(model_file)), f"features of {model_file.name}"
    return core.load_model(str(EXAMPLE_MODEL)), (
        f"assumed: features of functions/models/{EXAMPLE_MODEL.name} ({fn.model.artifact_for(fn.model.version)} "
        "is not fetched offline)"
    )


def capture_record(fn: FunctionSpec, model: Any, variant: str = "stable") -> dict[str, Any]:
    """The capture record the deployed handler emits for one row of ``model``'s declared features."""
    from functions import capture as fcap
    from functions import core

    row: dict[str, Any] = {name: NUMERIC_VALUE for name in model.features}
    for name, table in model.categorical.items():
        row[name] = max(table, key=lambda k: (len(k), k)) if table else ""
    records: list[dict[str, Any]] = []
    predictor = core.Predictor(
        model=model,
        model_id=fn.model.id,
        model_version=fn.model.version,
        capture=fcap.Capture(fcap.CaptureConfig(variant=variant), sink=lambda r: records.append(dict(r))),
        clock=lambda: "2026-01-12T00:00:00.000Z",
    )
    predictor.predict_body(json.dumps(row), request_id=REQUEST_ID)
    (record,) = records
    record["latency_ms"] = LATENCY_MS  # measured per call: fixed so the estimate is reproducible
    return record


def line_bytes(record: dict[str, Any]) -> int:
    """Bytes of the JSON line the handler writes for ``record`` (compact JSON and its newline)."""
    return len((json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode())


def record_bytes(fn: FunctionSpec, model_file: Path | None = None) -> tuple[int, str, str]:
    """(bytes of one capture line, its basis, the line itself) for ``fn``'s model's declared features."""
    model, basis = model_for(fn, model_file)
    record = capture_record(fn, model)
    text = json.dumps(record, separators=(",", ":"), allow_nan=False)
    return line_bytes(record), basis, text


def azure_envelope_bytes(message: str) -> int:
    """Bytes of one ``FunctionAppLogs`` record (a line of ``PT1H.json``) carrying ``message``.

    The fields are those of the resource-log blob format
    (https://learn.microsoft.com/azure/azure-monitor/essentials/resource-logs-blob-format) with
    ``FunctionAppLogs`` properties, as tests/test_drift_capture.py writes them.
    """
    entry = {
        "time": "2026-01-12T00:00:00.0000000Z",
        "resourceId": "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/INFEROPS-DEV-FN-RG/"
        "PROVIDERS/MICROSOFT.WEB/SITES/INFEROPS-DEV-FUNCTION-APP",
        "category": "FunctionAppLogs",
        "operationName": "Microsoft.Web/sites/functions/log",
        "level": "Informational",
        "location": "East US",
        "properties": {
            "appName": "inferops-dev-function-app",
            "roleInstance": "54108609-638134167396406133",
            "message": message,
            "category": "Function.predict.User",
            "hostVersion": "4.1045.200.3",
            "functionInvocationId": REQUEST_ID,
            "functionName": "Functions.predict",
            "hostInstanceId": REQUEST_ID,
            "level": "Information",
            "levelId": 2,
            "processId": 1234,
        },
    }
    return len((json.dumps(entry) + "\n").encode())


def gcp_entry_bytes(record: dict[str, Any]) -> int:
    """Bytes of the Cloud Logging ``LogEntry`` of one stdout capture line (structured: ``jsonPayload``).

    Fields of a Cloud Run stdout entry (https://cloud.google.com/logging/docs/reference/v2/rest/v2/LogEntry),
    as the sink's GCS export writes one per line.
    """
    entry = {
        "insertId": "0123456789abcdef",
        "jsonPayload": record,
        "labels": {"instanceId": "0" * 96},
        "logName": "projects/example-inferops-dev/logs/run.googleapis.com%2Fstdout",
        "receiveTimestamp": "2026-01-12T00:00:00.123456789Z",
        "resource": {
            "type": "cloud_run_revision",
            "labels": {
                "configuration_name": "inferops-dev-function",
                "location": "us-central1",
                "project_id": "example-inferops-dev",
                "revision_name": "inferops-dev-function-00001-abc",
                "service_name": "inferops-dev-function",
            },
        },
        "timestamp": "2026-01-12T00:00:00.000000Z",
    }
    return len((json.dumps(entry) + "\n").encode())


# --- prices ------------------------------------------------------------------------------------------


def capture_prices(table: dict[str, Any], product: str, region: str | None) -> tuple[dict[str, Any], list[str]]:
    """A product's unit prices in ``region``; an unlisted region gets the highest listed price, unit by unit."""
    entry = table["capture"][product]
    sets = entry["price_sets"]
    if region is not None and region in entry["regions"]:
        return dict(sets[entry["regions"][region]]), []
    highest: dict[str, float] = {}
    for prices in sets.values():
        for key, value in prices.items():
            highest[key] = max(float(value), highest.get(key, float(value)))
    shown = "the destination's region (not in the stack config)" if region is None else f"region '{region}'"
    return highest, [
        f"capture: {shown} is not in the {product} price table (as of {table['capture']['as_of']}); "
        "priced at the highest listed prices"
    ]


def _line(item: str, quantity: float, unit: str, unit_usd: float, per: float = 1.0) -> Line:
    return Line(item, quantity, unit, unit_usd, quantity * unit_usd / per)


def _month_seconds(table: dict[str, Any]) -> float:
    return float(table["hours_per_month"]) * 3600.0


def _stored_months(fn: FunctionSpec, table: dict[str, Any]) -> float:
    """Steady-state months of data kept: ``retentionDays`` over the table's month (730 h = 30.42 days)."""
    return fn.capture.retention_days / (float(table["hours_per_month"]) / 24.0)


def _partitions(fn: FunctionSpec) -> int:
    """Model versions writing at once: the canary's and the stable's during a canary."""
    return 2 if fn.canary_percent and fn.stable_version != fn.model.version else 1


def _object_storage(
    fn: FunctionSpec, table: dict[str, Any], scheme: str, region: str | None, data_bytes: float, objects: float
) -> tuple[list[Line], list[str]]:
    """Storage over the retention and the object writes in the bucket of ``scheme``."""
    months = _stored_months(fn, table)
    if scheme == "s3":
        prices, warnings = capture_prices(table, "s3", region)
        gb = data_bytes / table["capture"]["s3"]["bytes_per_gb"]
        lines = [
            _line("s3 storage", gb * months, "GB-month", prices["storage_gb_month"]),
            _line("s3 PUT requests", objects, "requests", prices["put_per_1000"], 1000),
        ]
    elif scheme == "gs":
        prices, warnings = capture_prices(table, "gcs", region)
        gb = data_bytes / table["capture"]["gcs"]["bytes_per_gb"]
        lines = [
            _line("gcs storage", gb * months, "GiB-month", prices["storage_gb_month"]),
            _line("gcs Class A operations", objects, "operations", prices["class_a_per_1000"], 1000),
        ]
    else:
        prices, warnings = capture_prices(table, "azure-blob", region)
        gb = data_bytes / table["capture"]["azure-blob"]["bytes_per_gb"]
        lines = [
            _line("blob storage (hot)", gb * months, "GB-month", prices["storage_gb_month"]),
            _line("blob write operations", objects, "operations", prices["write_per_10000"], 10000),
        ]
    return lines, warnings


# --- per platform --------------------------------------------------------------------------------


def _aws(fn: FunctionSpec, table: dict[str, Any], records: float, size: int) -> tuple[list[Line], list[str]]:
    c = table["capture"]
    logs, w1 = capture_prices(table, "cloudwatch-logs", fn.region)
    hose, w2 = capture_prices(table, "firehose", fn.region)
    message = size - 1  # Lambda sends the line without its newline as the event message
    event_gb = records * (message + c["cloudwatch-logs"]["event_overhead_bytes"]) / c["cloudwatch-logs"]["bytes_per_gb"]
    fh = c["firehose"]
    rounding = fh["record_rounding_bytes"]
    billed_record = math.ceil(message / rounding) * rounding
    ingest_gb = records * billed_record / fh["bytes_per_gb"]
    data_bytes = records * size  # extracted messages, newline-delimited (AppendDelimiterToRecord)
    processed_gb = data_bytes / fh["bytes_per_gb"]
    intervals = _month_seconds(table) / fh["buffer_interval_seconds"]
    objects = (
        max(math.ceil(data_bytes / fh["buffer_size_bytes"]), min(records, _partitions(fn) * intervals))
        if records
        else 0.0
    )
    lines = [
        _line("cloudwatch logs ingestion", event_gb, "GB", logs["ingestion_gb"]),
        _line("firehose ingestion (5 KB records)", ingest_gb, "GB", hose["ingestion_gb"]),
        _line("firehose dynamic partitioning", processed_gb, "GB", hose["partitioning_gb"]),
        _line("firehose partitioned objects", objects, "objects", hose["partitioning_objects_per_1000"], 1000),
        _line("firehose JQ processing", processed_gb * fh["jq_hours_per_gb"], "hours", hose["jq_hour"]),
    ]
    storage, w3 = _object_storage(fn, table, "s3", fn.region, data_bytes, objects)
    return lines + storage, w1 + w2 + w3


def _azure(fn: FunctionSpec, table: dict[str, Any], records: float, text: str) -> tuple[list[Line], list[str]]:
    c = table["capture"]
    monitor, w1 = capture_prices(table, "azure-monitor", fn.region)
    data_bytes = records * azure_envelope_bytes(text)
    hours = float(table["hours_per_month"])
    writes = min(records, hours * c["azure-blob"]["appends_per_hour"]) + (min(records, hours) if records else 0)
    lines = [
        _line(
            "platform log export (FunctionAppLogs)",
            data_bytes / c["azure-monitor"]["bytes_per_gb"],
            "GB",
            monitor["platform_logs_export_gb"],
        )
    ]
    storage, w2 = _object_storage(fn, table, "az", fn.region, data_bytes, writes)
    return lines + storage, w1 + w2


def _gcp(
    fn: FunctionSpec, table: dict[str, Any], records: float, record: dict[str, Any]
) -> tuple[list[Line], list[str]]:
    c = table["capture"]
    data_bytes = records * gcp_entry_bytes(record)
    files = min(records, float(table["hours_per_month"]))  # one batch file per hour with entries
    lines: list[Line] = []
    w1: list[str] = []
    if fn.capture.keep_in_logs:  # otherwise the component's exclusion keeps them out of _Default
        logging_prices, w1 = capture_prices(table, "cloud-logging", fn.region)
        lines.append(
            _line(
                "cloud logging storage (_Default bucket, keepInLogs)",
                data_bytes / c["cloud-logging"]["bytes_per_gb"],
                "GiB",
                logging_prices["ingestion_gb"],
            )
        )
    storage, w2 = _object_storage(fn, table, "gs", fn.region, data_bytes, files)
    return lines + storage, w1 + w2


def _kubernetes(fn: FunctionSpec, table: dict[str, Any], records: float, size: int) -> tuple[list[Line], list[str]]:
    destination = fn.capture.destination or ""
    scheme = urlparse(destination).scheme or "file"
    if scheme not in ("s3", "gs", "az"):
        return [], [f"capture: {destination or 'a volume'} is not an object store; its cost is not estimated"]
    pods = max(1, fn.scaling.min_instances)
    flushes = pods * _month_seconds(table) / WRITER_FLUSH_SECONDS
    objects = max(math.ceil(records / WRITER_FLUSH_RECORDS), min(records, flushes)) if records else 0.0
    # The destination's region is not in the stack config: the table's fallback prices it.
    return _object_storage(fn, table, scheme, None, records * size, objects)


def estimate_capture(
    fn: FunctionSpec, table: dict[str, Any], *, measured: tuple[int, str, str] | None = None
) -> CaptureEstimate:
    """The monthly capture cost of ``fn`` at ``expectedMonthlyRequests`` x ``samplePercent``/100 records.

    ``measured`` is :func:`record_bytes` of ``fn`` (computed when not given).
    """
    if not fn.capture.enabled:
        return CaptureEstimate("disabled", 0, "capture.enabled is false", 0.0)
    size, basis, text = measured if measured is not None else record_bytes(fn)
    records = fn.finops.expected_monthly_requests * fn.capture.sample_percent / 100.0
    if fn.platform == "aws":
        path = "cloudwatch-logs -> firehose -> s3"
        lines, warnings = _aws(fn, table, records, size)
    elif fn.platform == "azure":
        path = "diagnostic setting -> blob"
        lines, warnings = _azure(fn, table, records, text)
    elif fn.platform == "gcp":
        path = "cloud logging -> sink -> gcs" + (" + _Default bucket" if fn.capture.keep_in_logs else "")
        lines, warnings = _gcp(fn, table, records, json.loads(text))
    else:
        path = f"writer -> {urlparse(fn.capture.destination or '').scheme or 'volume'}"
        lines, warnings = _kubernetes(fn, table, records, size)
    if fn.capture.keep_in_logs and fn.platform != "gcp":
        warnings = [
            *warnings,
            f"capture: keepInLogs has no effect on {fn.platform} (only GCP excludes capture entries)",
        ]
    return CaptureEstimate(path, size, basis, records, lines, warnings)
