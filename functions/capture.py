"""Data capture: the design.md capture record, sampling, request ids, and where the records go.

Every sampled prediction becomes one capture record (``../shared/design.md``)::

    {"request_id": "...", "timestamp": "2026-01-12T05:00:00.000Z", "model_id": "...",
     "model_version": "...", "variant": "stable", <features>, "prediction": 1,
     "probability": 0.55, "latency_ms": 1.7, "label": ...}

(``probability`` for classification only, ``label`` only when the request carried one). Where a
record goes depends on the platform, and is configured by the environment the component sets:

* ``INFEROPS_CAPTURE_URI`` set (Kubernetes, or any platform that prefers it): the batched
  :class:`BatchWriter` writes gzip JSON Lines objects to ``s3://``, ``gs://``, ``az://`` or a mounted
  volume path, in the layout documented at :func:`object_path`.
* otherwise one JSON line per record on stdout (AWS Lambda, Cloud Run: the platform's log pipeline
  ships it: a subscription filter to Firehose, a Cloud Logging sink), or on Azure Functions (detected
  by ``FUNCTIONS_WORKER_RUNTIME`` or ``WEBSITE_SITE_NAME``) through :mod:`logging`, which the Python
  worker forwards to the host as ``FunctionAppLogs`` records that a diagnostic setting archives.

Sampling is decided per request from a hash of its request id, so a retried request (same id) gets the
same decision and a sampled request keeps all its rows (labels join on every one of them).
"""

from __future__ import annotations

import atexit
import gzip
import hashlib
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

ENV_ENABLED = "INFEROPS_CAPTURE_ENABLED"
ENV_SAMPLE_PERCENT = "INFEROPS_CAPTURE_SAMPLE_PERCENT"
ENV_URI = "INFEROPS_CAPTURE_URI"
ENV_VARIANT = "INFEROPS_VARIANT"
ENV_FLUSH_RECORDS = "INFEROPS_CAPTURE_FLUSH_RECORDS"
ENV_FLUSH_SECONDS = "INFEROPS_CAPTURE_FLUSH_SECONDS"
ENV_BUFFER_RECORDS = "INFEROPS_CAPTURE_BUFFER_RECORDS"

VARIANTS = ("stable", "canary")
DEFAULT_FLUSH_RECORDS = 1000
DEFAULT_FLUSH_SECONDS = 60.0
DEFAULT_BUFFER_RECORDS = 20_000

#: Request-id headers, most specific first. ``X-Request-Id`` is what clients and Envoy/Istio (Knative)
#: send; ``X-Cloud-Trace-Context`` is set by Google's front end on every Cloud Run request
#: (``TRACE_ID/SPAN_ID;o=1``): its trace id is unique per incoming request.
REQUEST_ID_HEADERS = ("x-request-id", "x-correlation-id", "x-amzn-trace-id", "x-cloud-trace-context")
#: A request id is copied into log lines and object names: only a safe, bounded charset is accepted
#: from a client; anything else is replaced by a generated id.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:=+\-]{1,128}$")


class CaptureConfigError(ValueError):
    """A capture setting in the environment is invalid; the message names the variable."""


@dataclass(frozen=True)
class CaptureConfig:
    """What the component configured: on/off, sample share, variant, and the writer's destination."""

    enabled: bool = True
    sample_percent: float = 100.0
    variant: str = "stable"
    uri: str | None = None
    flush_records: int = DEFAULT_FLUSH_RECORDS
    flush_seconds: float = DEFAULT_FLUSH_SECONDS
    buffer_records: int = DEFAULT_BUFFER_RECORDS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CaptureConfig:
        """Read the ``INFEROPS_*`` variables; raises :class:`CaptureConfigError` naming the bad one."""
        env = os.environ if env is None else env
        enabled_raw = env.get(ENV_ENABLED, "true").strip().lower()
        if enabled_raw not in ("true", "false", "1", "0", "yes", "no"):
            raise CaptureConfigError(f"{ENV_ENABLED}: expected true or false (got {enabled_raw!r})")
        variant = env.get(ENV_VARIANT, "stable").strip().lower() or "stable"
        if variant not in VARIANTS:
            raise CaptureConfigError(f"{ENV_VARIANT}: expected stable or canary (got {variant!r})")
        return cls(
            enabled=enabled_raw in ("true", "1", "yes"),
            sample_percent=_number(env, ENV_SAMPLE_PERCENT, 100.0, 0.0, 100.0),
            variant=variant,
            uri=env.get(ENV_URI, "").strip() or None,
            flush_records=int(_number(env, ENV_FLUSH_RECORDS, DEFAULT_FLUSH_RECORDS, 1, 1_000_000, integer=True)),
            flush_seconds=_number(env, ENV_FLUSH_SECONDS, DEFAULT_FLUSH_SECONDS, 0.01, 3600.0),
            buffer_records=int(_number(env, ENV_BUFFER_RECORDS, DEFAULT_BUFFER_RECORDS, 1, 10_000_000, integer=True)),
        )


def _number(env: Mapping[str, str], key: str, default: float, lo: float, hi: float, integer: bool = False) -> float:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise CaptureConfigError(f"{key}: expected {kind} between {lo:g} and {hi:g} (got {raw!r})") from None
    if not lo <= value <= hi:
        raise CaptureConfigError(f"{key}: expected a value between {lo:g} and {hi:g} (got {raw!r})")
    return value


# --- request ids and sampling ----------------------------------------------------------------------


def request_id_from(headers: Mapping[str, Any] | None = None, platform_id: str | None = None) -> str:
    """The request's id: a client/proxy header, else the platform's id, else a generated UUID.

    A header comes first because it is the id the client knows, so it can send the delayed label with
    it; the platform's id (Lambda's ``requestContext.requestId``, the Azure invocation id) is next.
    Values outside a safe charset are ignored rather than written into logs.
    """
    if headers:
        lowered = {str(k).lower(): v for k, v in headers.items()}
        for name in REQUEST_ID_HEADERS:
            value = lowered.get(name)
            if isinstance(value, list | tuple):
                value = value[0] if value else None
            if not isinstance(value, str):
                continue
            if name == "x-cloud-trace-context":
                value = value.split("/", 1)[0]
            value = value.strip()
            if _REQUEST_ID_RE.match(value):
                return value
    if platform_id and _REQUEST_ID_RE.match(str(platform_id)):
        return str(platform_id)
    return uuid.uuid4().hex


def sampled(request_id: str, percent: float) -> bool:
    """Whether a request is captured: ``percent`` of ids, decided by a hash (stable across retries)."""
    if percent >= 100.0:
        return True
    if percent <= 0.0:
        return False
    bucket = int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big") % 1_000_000
    return bucket < round(percent * 10_000)


def row_request_id(request_id: str, index: int, batch: bool) -> str:
    """The record's id: the request id, or ``<request id>/<row index>`` for the rows of a batch."""
    return f"{request_id}/{index}" if batch else request_id


# --- sinks -------------------------------------------------------------------------------------------


def _stdout_line(record: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
    sys.stdout.flush()


_capture_logger = logging.getLogger("inferops.capture")


def _logging_line(record: Mapping[str, Any]) -> None:
    # Azure Functions' Python worker forwards log records to the host, which writes them as
    # FunctionAppLogs with the text in properties.message; print() output is not reliably forwarded.
    if _capture_logger.level == logging.NOTSET:
        _capture_logger.setLevel(logging.INFO)
    _capture_logger.info(json.dumps(record, separators=(",", ":"), allow_nan=False))


class Capture:
    """The handler's capture: decides sampling and hands each record to its sink (never raises)."""

    def __init__(
        self,
        config: CaptureConfig,
        sink: Callable[[Mapping[str, Any]], Any] | None = None,
        writer: BatchWriter | None = None,
    ) -> None:
        self.config = config
        self.writer = writer
        if sink is not None:
            self._sink = sink
        elif writer is not None:
            self._sink = writer.offer
        else:
            self._sink = _stdout_line
        self.failed = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Capture:
        """The capture the environment configures (see the module docstring and functions/README.md)."""
        env = os.environ if env is None else env
        config = CaptureConfig.from_env(env)
        if config.enabled and config.uri:
            writer = BatchWriter.for_uri(config.uri, config)
            writer.start()
            return cls(config, writer=writer)
        # Flex Consumption rejects FUNCTIONS_WORKER_RUNTIME as an app setting, so it may be absent there;
        # App Service sets the read-only WEBSITE_SITE_NAME on every site, Flex included
        # (learn.microsoft.com/azure/app-service/reference-app-settings, "App environment").
        if env.get("FUNCTIONS_WORKER_RUNTIME") or env.get("WEBSITE_SITE_NAME"):
            return cls(config, sink=_logging_line)
        return cls(config)

    def wants(self, request_id: str) -> bool:
        """Whether the request with this id is captured."""
        return self.config.enabled and sampled(request_id, self.config.sample_percent)

    def emit(self, record: Mapping[str, Any]) -> None:
        """Hand one record to the sink; a failing sink is counted, never fails the prediction."""
        try:
            self._sink(record)
        except Exception:  # a capture problem must not turn a good prediction into a 500
            self.failed += 1

    def close(self, timeout: float = 20.0) -> None:
        """Flush and stop the writer, if any."""
        if self.writer is not None:
            self.writer.close(timeout)


# --- the batched writer (Kubernetes) -----------------------------------------------------------------


def _utc(stamp: str) -> datetime:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, AttributeError):
        return datetime.now(UTC)


def object_path(prefix: str, model_version: str, hour: datetime, name: str) -> str:
    """Where a batch goes: ``<prefix>/model_version=<v>/date=YYYY-MM-DD/hour=HH/<name>``.

    Hive-style partitions (Athena, BigQuery external tables and Spark read them as columns); the
    partition is the UTC hour of the records' ``timestamp``, so a window's partitions are known
    without listing the whole prefix. ``<name>`` is ``<host>-<UTC time>-<sequence>.jsonl.gz``: unique
    per pod (the pod name is the host name), never overwritten.
    """
    version = quote(model_version, safe="._-+") or "unknown"
    parts = (prefix.rstrip("/"), f"model_version={version}", f"date={hour:%Y-%m-%d}", f"hour={hour:%H}", name)
    return "/".join(p for p in parts if p)


def _connection_string_account(conn: str) -> str | None:
    """``AccountName`` of a storage connection string, else the account of its ``BlobEndpoint`` host."""
    fields = {}
    for part in conn.split(";"):
        key, eq, value = part.partition("=")
        if eq:
            fields[key.strip().lower()] = value.strip()
    if fields.get("accountname"):
        return fields["accountname"]
    host = urlparse(fields.get("blobendpoint", "")).hostname or ""
    return host.split(".", 1)[0] if host.endswith(".blob.core.windows.net") else None


class _Store:
    """Writes whole objects to one destination with the SDK default credentials of the pod."""

    def __init__(self, uri: str) -> None:
        parsed = urlparse(uri)
        self.uri = uri
        self.scheme = parsed.scheme.lower()
        if self.scheme in ("", "file"):
            self.scheme = "file"
            self.bucket = ""
            self.prefix = parsed.path if parsed.scheme else uri
        elif self.scheme in ("s3", "gs", "az"):
            if not parsed.netloc:
                raise CaptureConfigError(f"{ENV_URI}: {uri} names no bucket or container")
            self.bucket, self.prefix = parsed.netloc, parsed.path.strip("/")
        else:
            raise CaptureConfigError(f"{ENV_URI}: unsupported scheme in {uri} (use s3, gs, az or a path)")
        self._client: Any = None

    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        if self.scheme == "s3":
            import boto3  # IRSA / EKS Pod Identity / instance role via the default chain

            self._client = boto3.client("s3")
        elif self.scheme == "gs":
            from google.cloud import storage  # Workload Identity via ADC; STORAGE_EMULATOR_HOST honoured

            self._client = storage.Client().bucket(self.bucket)
        elif self.scheme == "az":
            from azure.storage.blob import BlobServiceClient

            conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
            account = os.environ.get("AZURE_STORAGE_ACCOUNT_NAME")
            if conn:
                # The stack names the account (capture.destination, so the exported captureUri): a
                # connection string for another one would put the records where the drift job never looks.
                conn_account = _connection_string_account(conn)
                if account and conn_account != account:
                    raise CaptureConfigError(
                        f"AZURE_STORAGE_CONNECTION_STRING is for account {conn_account!r}, "
                        f"not AZURE_STORAGE_ACCOUNT_NAME {account!r}"
                    )
                service = BlobServiceClient.from_connection_string(conn)
            else:
                from azure.identity import DefaultAzureCredential  # AKS workload identity

                if not account:
                    raise CaptureConfigError(f"{ENV_URI}: set AZURE_STORAGE_ACCOUNT_NAME to write az:// URIs")
                service = BlobServiceClient(f"https://{account}.blob.core.windows.net", DefaultAzureCredential())
            self._client = service.get_container_client(self.bucket)
        return self._client

    def put(self, key: str, data: bytes) -> str:
        """Write ``data`` at ``key`` (relative to the destination); returns the object's URI."""
        if self.scheme == "file":
            path = Path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)  # readers never see half a file
            return str(path)
        client = self._connect()
        if self.scheme == "s3":
            client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/x-ndjson")
        elif self.scheme == "gs":
            client.blob(key).upload_from_string(data, content_type="application/x-ndjson")
        else:
            client.upload_blob(key, data, overwrite=False)
        return f"{self.scheme}://{self.bucket}/{key}"


class BatchWriter:
    """A bounded, batched, non-blocking writer of capture records to object storage or a volume.

    :meth:`offer` only appends to an in-memory buffer under a lock (no I/O on the request path); when
    the buffer is full the record is dropped and counted in ``dropped``. A background thread flushes
    when ``flush_records`` records are waiting or ``flush_seconds`` have passed, and :meth:`close`
    (also run at interpreter exit and on SIGTERM, which Kubernetes sends before killing a pod) flushes
    the rest. A failed write puts the batch back while there is room (retried on the next flush) and
    counts what does not fit in ``dropped``.
    """

    def __init__(
        self,
        store: _Store,
        *,
        flush_records: int = DEFAULT_FLUSH_RECORDS,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
        buffer_records: int = DEFAULT_BUFFER_RECORDS,
        host: str | None = None,
    ) -> None:
        self.store = store
        self.flush_records = flush_records
        self.flush_seconds = flush_seconds
        self.buffer_records = max(buffer_records, 1)
        self.host = re.sub(r"[^A-Za-z0-9._-]", "-", host or os.environ.get("HOSTNAME") or socket.gethostname())
        self._buffer: list[Mapping[str, Any]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq = 0
        self.accepted = 0
        self.written = 0
        self.dropped = 0
        self.write_errors = 0
        self.objects: list[str] = []
        #: set after every flush (lets a caller wait for the background flusher without polling)
        self.flushed = threading.Event()

    @classmethod
    def for_uri(cls, uri: str, config: CaptureConfig | None = None, **kw: Any) -> BatchWriter:
        """A writer for ``uri`` with the config's flush and buffer settings."""
        config = config or CaptureConfig()
        return cls(
            _Store(uri),
            flush_records=config.flush_records,
            flush_seconds=config.flush_seconds,
            buffer_records=config.buffer_records,
            **kw,
        )

    def offer(self, record: Mapping[str, Any]) -> bool:
        """Queue one record without blocking on I/O; False (and counted) when the buffer is full."""
        with self._lock:
            if len(self._buffer) >= self.buffer_records or self._stop.is_set():
                self.dropped += 1
                return False
            self._buffer.append(record)
            self.accepted += 1
            full = len(self._buffer) >= self.flush_records
        if full:
            self._wake.set()
        return True

    def stats(self) -> dict[str, int]:
        """Counters: accepted, written, dropped, write_errors, pending."""
        with self._lock:
            pending = len(self._buffer)
        return {
            "accepted": self.accepted,
            "written": self.written,
            "dropped": self.dropped,
            "write_errors": self.write_errors,
            "pending": pending,
        }

    def start(self) -> None:
        """Start the background flusher; flush at exit and on SIGTERM."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="inferops-capture", daemon=True)
        self._thread.start()
        atexit.register(self.close)
        _install_sigterm(self)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if self._stop.is_set():
                break
            self.flush()

    def flush(self) -> int:
        """Write everything buffered now; returns the number of records written."""
        with self._flush_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            if not batch:
                return 0
            groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
            for record in batch:
                stamp = _utc(str(record.get("timestamp", "")))
                key = (str(record.get("model_version", "")), stamp.strftime("%Y-%m-%dT%H"))
                groups.setdefault(key, []).append(record)
            written = 0
            for (version, hour_text), records in groups.items():
                hour = datetime.strptime(hour_text, "%Y-%m-%dT%H").replace(tzinfo=UTC)
                self._seq += 1
                now = datetime.now(UTC)
                name = f"{self.host}-{now:%Y%m%dT%H%M%S%fZ}-{self._seq:06d}.jsonl.gz"
                path = object_path(self.store.prefix, version, hour, name)
                lines = "".join(json.dumps(r, separators=(",", ":"), allow_nan=False) + "\n" for r in records)
                try:
                    self.objects.append(self.store.put(path, gzip.compress(lines.encode(), mtime=0)))
                except Exception as exc:  # any SDK error: keep serving, retry later, count what is lost
                    self.write_errors += 1
                    self._requeue(records)
                    _log_error("capture write failed", destination=self.store.uri, detail=str(exc)[:300])
                    continue
                written += len(records)
            self.written += written
            self.flushed.set()
            return written

    def _requeue(self, records: list[Mapping[str, Any]]) -> None:
        with self._lock:
            room = max(self.buffer_records - len(self._buffer), 0)
            kept = records[:room]
            self.dropped += len(records) - len(kept)
            self._buffer[:0] = kept

    def close(self, timeout: float = 20.0) -> None:
        """Stop the flusher and write what is buffered (one attempt)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self.flush()
        with self._lock:
            # a write failed at shutdown: nothing will retry it, so what is left is lost (and counted)
            self.dropped += len(self._buffer)
            self._buffer = []


def _log_error(message: str, **fields: Any) -> None:
    record = {"timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"), "level": "error"}
    sys.stderr.write(json.dumps({**record, "message": message, **fields}, default=str) + "\n")


def _install_sigterm(writer: BatchWriter) -> None:
    """Flush on SIGTERM (Kubernetes' stop signal), then exit as the default handler would."""
    if threading.current_thread() is not threading.main_thread():
        return  # signals can only be set from the main thread; atexit still flushes a clean exit
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: Any) -> None:
        writer.close()
        if callable(previous):
            previous(signum, frame)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
