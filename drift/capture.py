"""Reading captured predictions: every platform's export layout, a time window, envelopes, labels.

A function's ``captureUri`` (design.md) is a prefix where its platform delivers capture records (the
record of ``functions/capture.py``) in the platform's own layout. This module finds the partitions of
a window under that prefix without listing the rest, opens each object, unwraps the envelope of each
line, and yields plain capture records; :func:`export_window` writes them as JSON Lines for the
ordinary readers (:mod:`drift.readers`). Layouts (each cited where it is parsed):

* AWS: CloudWatch Logs subscription filter -> Amazon Data Firehose -> S3, with CloudWatch Logs
  decompression and message extraction (each object holds the extracted messages, newline
  delimited), or without them (gzip'd CloudWatch Logs ``DATA_MESSAGE`` envelopes with ``logEvents``).
  Key prefix: what ``components/aws.py`` declares today, dynamic partitioning on the record's model
  version then the arrival hour (``model_version=<v>/year=/month=/day=/hour=/``); what it declared
  before (``year=/month=/day=/hour=/``, stacks deployed before partitioning, still under the same
  ``captureUri``); Firehose's default ``YYYY/MM/dd/HH/`` or another custom one with ``!{timestamp:...}``
  parts (``dt=YYYY-MM-DD/hour=HH``).
* Azure: diagnostic setting (``FunctionAppLogs``) -> storage account:
  ``insights-logs-functionapplogs/resourceId=/SUBSCRIPTIONS/.../y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json``,
  one JSON record per line, the handler's line in ``properties.message``.
* GCP: Cloud Logging sink -> GCS: ``<LOG_ID>/YYYY/MM/DD/HH:00:00_HH:59:59_S0.json``, one ``LogEntry``
  per line, the record in ``jsonPayload``.
* Kubernetes: the handler's writer, ``model_version=<v>/date=YYYY-MM-DD/hour=HH/<pod>-<time>-<seq>.jsonl.gz``
  (``functions/capture.py: object_path``), plain records.

Partitions are pruned by the window and, when the model versions to read are given, by a
``model_version=<v>`` directory (the Firehose and Kubernetes layouts); records of other versions in
layouts without one are dropped by their own ``model_version``. Line formats are recognised per line,
not per layout, so a prefix is read the same whichever platform wrote it. What is not a capture
record (Lambda's START/END/REPORT lines, other log lines) is skipped and counted. Records are
de-duplicated by ``request_id``: Cloud Logging does not guarantee de-duplication of sink output and
Firehose delivers at least once.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from drift.readers import DataError, Source, child_uri, infer_format, iter_batches, one_line, resolve

#: Partitions named by arrival time (Firehose's ``!{timestamp}`` is "the approximate arrival timestamp
#: of the oldest record" in the object, after up to 900 s of buffering; Azure and Cloud Logging batch
#: hourly) may hold records up to this long before their partition's hour: read that much past
#: ``until``. Records are then filtered by their own ``timestamp``.
ARRIVAL_SLACK = timedelta(hours=1)
#: Firehose writes failed records under these prefixes (error output, not messages).
_ERROR_DIRS = frozenset({"processing-failed", "decompression-failed", "format-conversion-failed", "error"})
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


# --- time ---------------------------------------------------------------------------------------------


def parse_time(text: str, what: str = "--since") -> datetime:
    """An ISO 8601 time (``Z`` or an offset; without one, UTC) or a date, as an aware UTC datetime."""
    raw = text.strip()
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise DataError(what, f"expected an ISO 8601 time like 2026-01-12T00:00:00Z (got {text!r})") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_duration(text: str, what: str = "--window") -> timedelta:
    """``90s``, ``30m``, ``24h``, ``7d`` or ``2w`` as a positive timedelta."""
    m = _DURATION_RE.match(text)
    if not m or float(m.group(1)) <= 0:
        raise DataError(what, f"expected a positive duration like 24h, 30m or 7d (got {text!r})")
    return timedelta(**{_DURATION_UNITS[m.group(2)]: float(m.group(1))})


@dataclass(frozen=True)
class Window:
    """A half-open time window ``[since, until)`` in UTC."""

    since: datetime
    until: datetime

    @classmethod
    def resolve(cls, since: str | None, until: str | None, window: str | None, now: datetime | None = None) -> Window:
        """From ``--since``/``--until`` or ``--window`` (which ends at the start of the current hour)."""
        if window:
            if since or until:
                raise DataError("--window", "give either --window or --since/--until, not both")
            end = (now or datetime.now(UTC)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            return cls(end - parse_duration(window), end)
        if not since or not until:
            raise DataError("--since", "a capture window needs --since and --until (or --window)")
        start, end = parse_time(since, "--since"), parse_time(until, "--until")
        if end <= start:
            raise DataError("--until", f"must be after --since ({until} <= {since})")
        return cls(start, end)

    def contains(self, t: datetime) -> bool:
        """Whether ``t`` falls in the window."""
        return self.since <= t < self.until


# --- partitions -----------------------------------------------------------------------------------------

_SEGMENT_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?:y|year)=(\d{4})$"), "y"),  # Azure y=, Hive year=
    (re.compile(r"^(?:m|month)=(\d{1,2})$"), "m"),  # Azure's trailing m=00 is the minute: see below
    (re.compile(r"^(?:d|day)=(\d{1,2})$"), "d"),
    (re.compile(r"^(?:h|hh|hour)=(\d{1,2})$"), "h"),
]
_DATE_SEGMENT = re.compile(r"^(?:dt|date)=(\d{4})-(\d{2})-(\d{2})$")
# Cloud Logging's sink files: "08:00:00_08:59:59_S0.json" holds the entries of the hour beginning
# 08:00:00 UTC (https://cloud.google.com/logging/docs/export/storage, "Logs organization"; shards Sn/An).
_GCS_HOUR_FILE = re.compile(r"^(\d{2}):00:00_\d{2}:59:59_[SA]\d+\.json$")


def segment_parts(segments: list[str]) -> dict[str, int]:
    """The date parts (``y``, ``m``, ``d``, ``h``) a relative path's segments name, in any known layout.

    Firehose's default prefix ``YYYY/MM/dd/HH`` (https://docs.aws.amazon.com/firehose/latest/dev/s3-object-name.html)
    and Cloud Logging's ``YYYY/MM/DD`` are bare numbers after a four-digit year; Azure's
    ``y=/m=/d=/h=/m=00`` and Hive-style ``year=/month=/day=/hour=`` or ``dt=``/``date=`` are keyed.
    """
    parts: dict[str, int] = {}
    for seg in segments:
        m = _DATE_SEGMENT.match(seg)
        if m:
            parts.update(y=int(m.group(1)), m=int(m.group(2)), d=int(m.group(3)))
            continue
        m = _GCS_HOUR_FILE.match(seg)
        if m and "d" in parts:
            parts["h"] = int(m.group(1))
            continue
        matched = False
        for rule, key in _SEGMENT_RULES:
            m = rule.match(seg)
            if m:
                matched = True
                if key not in parts:  # a second m= (Azure's minute) changes nothing
                    parts[key] = int(m.group(1))
                break
        if matched:
            continue
        if re.fullmatch(r"\d{4}", seg) and "y" not in parts:
            parts["y"] = int(seg)
        elif re.fullmatch(r"\d{2}", seg) and "y" in parts:
            for key in ("m", "d", "h"):
                if key not in parts:
                    parts[key] = int(seg)
                    break
    return parts


def parts_span(parts: Mapping[str, int]) -> tuple[datetime, datetime] | None:
    """The time range a partial date covers (a year, month, day or hour), or None without a year."""
    if "y" not in parts:
        return None
    try:
        start = datetime(parts["y"], parts.get("m", 1), parts.get("d", 1), parts.get("h", 0), tzinfo=UTC)
    except ValueError:
        return None
    if "h" in parts:
        return start, start + timedelta(hours=1)
    if "d" in parts:
        return start, start + timedelta(days=1)
    if "m" in parts:
        nxt = datetime(start.year + (start.month == 12), start.month % 12 + 1, 1, tzinfo=UTC)
        return start, nxt
    return start, datetime(start.year + 1, 1, 1, tzinfo=UTC)


def _overlaps(parts: Mapping[str, int], window: Window | None) -> bool:
    if window is None:
        return True
    span = parts_span(parts)
    if span is None:
        return True  # no date yet (e.g. resourceId=/..., model_version=...): keep descending
    start, end = span
    return start < window.until + ARRIVAL_SLACK and end > window.since


_VERSION_SEGMENT = re.compile(r"^model_version=(.*)$")


def segment_version(segment: str) -> str | None:
    """The model version a Hive-style ``model_version=<v>`` directory names, or None for any other segment.

    Firehose writes the partition key's value as the record has it; the Kubernetes writer percent-quotes
    it (``functions/capture.py: object_path``), which is the identity for versions of the spec's charset.
    """
    m = _VERSION_SEGMENT.match(segment)
    return unquote(m.group(1)) if m else None


def _version_pruned(segment: str, versions: Collection[str] | None) -> bool:
    if versions is None:
        return False
    version = segment_version(segment)
    return version is not None and version not in versions


class StoreError(RuntimeError):
    """The object store failed (credentials, network): an environment failure, exit 3, naming the URI."""


@dataclass
class Listing:
    """Objects of a window under a capture prefix, and how much was pruned."""

    files: list[str]
    pruned: int = 0  # directories (partitions) skipped without listing them
    #: Objects of the window under Firehose's error prefixes: records it could not process (with
    #: dynamic partitioning, also those whose partition key it could not extract). Not read, counted.
    error_files: list[str] = field(default_factory=list)
    bytes: int = 0  # stored size of the files (not the error objects), from the listing (no object is read)


def _filesystem(uri: str) -> tuple[Any, str]:
    fs, path = resolve(uri)
    if fs is None:
        import fsspec

        fs = fsspec.filesystem("file")
        path = str(Path(path).resolve())
    return fs, path.rstrip("/")


def list_window(uri: str, window: Window | None, *, versions: Collection[str] | None = None) -> tuple[Any, Listing]:
    """The filesystem and the objects under ``uri`` whose partitions overlap ``window`` (None: all).

    Walks one directory level at a time and descends only into partitions that can hold records of the
    window, so a year of hourly partitions costs a few listings, not a full listing of the prefix. With
    ``versions``, a ``model_version=<v>`` directory of another version is not listed either (objects of
    layouts without one are listed; :func:`iter_records` drops their other versions' records).
    """
    fs, root = _filesystem(uri)
    try:
        if not fs.exists(root):
            raise DataError(uri, "no such capture location")
        if fs.isfile(root):
            return fs, Listing([root], bytes=int(fs.size(root) or 0))
    except DataError:
        raise
    except (OSError, ValueError) as exc:
        raise DataError(uri, f"cannot list: {one_line(exc)}") from None
    except Exception as exc:  # SDK errors outside OSError (botocore's NoCredentialsError, auth errors)
        raise StoreError(f"{uri}: {type(exc).__name__}: {one_line(exc)}") from None
    listing = Listing([])
    stack = [(root, False)]
    while stack:
        current, in_error = stack.pop()
        try:
            entries = fs.ls(current, detail=True)
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            raise DataError(uri, f"cannot list {current}: {one_line(exc)}") from None
        for entry in sorted(entries, key=lambda e: str(e["name"])):
            name = str(entry["name"]).rstrip("/")
            if name in (current, root):
                continue
            base = name.rsplit("/", 1)[-1]
            if base.startswith((".", "_")):
                continue
            error = in_error or (base in _ERROR_DIRS and entry.get("type") == "directory")
            rel = name[len(root) :].strip("/").split("/")
            if (not error and _version_pruned(base, versions)) or not _overlaps(segment_parts(rel), window):
                listing.pruned += 1
                continue
            if entry.get("type") == "directory":
                stack.append((name, error))
            elif int(entry.get("size") or 0) > 0:
                if error:
                    listing.error_files.append(name)
                else:
                    listing.files.append(name)
                    listing.bytes += int(entry["size"])
    listing.files.sort()
    listing.error_files.sort()
    return fs, listing


# --- envelopes -------------------------------------------------------------------------------------------


@dataclass
class ReadStats:
    """What reading a capture found: files, lines, records kept, skipped and duplicated."""

    files: int = 0
    records_read: int = 0
    in_window: int = 0
    out_of_window: int = 0
    skipped_lines: int = 0
    duplicates: int = 0
    other_versions: int = 0  # records of a model version not asked for (layouts without a version directory)
    partitions_pruned: int = 0  # directories not listed: outside the window or of another model version
    error_objects: int = 0  # objects of the window under Firehose's error prefixes (not read)
    layouts: dict[str, int] = field(default_factory=dict)


def _decode(data: bytes) -> str:
    if data[:2] == b"\x1f\x8b":
        # Firehose output compression, the writer's .jsonl.gz, and raw CloudWatch Logs subscription
        # payloads (gzip members, concatenated) all start with the gzip magic; gzip reads every member.
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def iter_json_values(text: str, stats: ReadStats) -> Iterator[Any]:
    """JSON values in ``text``: newline-delimited or concatenated; non-JSON lines are skipped and counted.

    Firehose joins records without a delimiter unless the delivery stream appends one
    (``AppendDelimiterToRecord``: https://docs.aws.amazon.com/firehose/latest/APIReference/API_Processor.html),
    so values are decoded one after another rather than split on newlines.
    """
    decoder = json.JSONDecoder()
    pos, end = 0, len(text)
    while pos < end:
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
        if pos >= end:
            break
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            stats.skipped_lines += 1
            nl = text.find("\n", pos)
            pos = end if nl < 0 else nl + 1
            continue
        yield value


def _is_record(value: Any) -> bool:
    return isinstance(value, dict) and "model_version" in value and "prediction" in value


def _ms_to_iso(ms: Any) -> str | None:
    if isinstance(ms, int | float) and not isinstance(ms, bool):
        return datetime.fromtimestamp(ms / 1000.0, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return None


def unwrap(value: Any, stats: ReadStats) -> Iterator[dict[str, Any]]:
    """The capture records inside one decoded JSON value, whatever envelope carries them."""
    if not isinstance(value, dict):
        stats.skipped_lines += 1
        return
    if _is_record(value):
        # A plain record: Firehose with message extraction, the Kubernetes writer, an exported window.
        _count(stats, "records")
        yield value
        return
    if isinstance(value.get("logEvents"), list):
        # A CloudWatch Logs subscription DATA_MESSAGE (Firehose without message extraction):
        # {"messageType", "owner", "logGroup", "logStream", "subscriptionFilters",
        #  "logEvents": [{"id", "timestamp" (ms), "message"}]}
        # (https://docs.aws.amazon.com/firehose/latest/dev/Message_extraction.html). CONTROL_MESSAGE
        # envelopes carry no log events of the function.
        if value.get("messageType") not in (None, "DATA_MESSAGE"):
            return
        for event in value["logEvents"]:
            message = event.get("message") if isinstance(event, dict) else None
            yield from _from_message(message, _ms_to_iso(event.get("timestamp")), "firehose-cwl", stats)
        return
    if "jsonPayload" in value or "textPayload" in value or "logName" in value:
        # A Cloud Logging LogEntry (https://cloud.google.com/logging/docs/reference/v2/rest/v2/LogEntry):
        # stdout JSON lines of Cloud Run become jsonPayload; the entry's own timestamp stands in when the
        # payload's was taken as a special field.
        payload = value.get("jsonPayload")
        if isinstance(payload, dict) and _is_record(payload):
            record = dict(payload)
            record.setdefault("timestamp", value.get("timestamp"))
            _count(stats, "cloud-logging")
            yield record
        elif isinstance(value.get("textPayload"), str):
            yield from _from_message(value["textPayload"], value.get("timestamp"), "cloud-logging", stats)
        else:
            stats.skipped_lines += 1
        return
    props = value.get("properties")
    if isinstance(props, dict) and ("category" in value or "resourceId" in value):
        # An Azure Monitor resource log record of category FunctionAppLogs: the function's log line is
        # properties.message ("time", "resourceId", "category", "operationName", "properties": {...}).
        yield from _from_message(props.get("message"), value.get("time"), "azure-diagnostics", stats)
        return
    stats.skipped_lines += 1


def _count(stats: ReadStats, layout: str) -> None:
    stats.layouts[layout] = stats.layouts.get(layout, 0) + 1


def _from_message(message: Any, stamp: str | None, layout: str, stats: ReadStats) -> Iterator[dict[str, Any]]:
    if not isinstance(message, str):
        stats.skipped_lines += 1
        return
    text = message.strip()
    start = text.find("{")
    if start < 0:
        stats.skipped_lines += 1  # Lambda's START/END/REPORT lines, plain text logs
        return
    try:
        value = json.loads(text[start:])
    except json.JSONDecodeError:
        stats.skipped_lines += 1
        return
    if not _is_record(value):
        stats.skipped_lines += 1
        return
    if stamp and not value.get("timestamp"):
        value["timestamp"] = stamp
    _count(stats, layout)
    yield value


def _record_time(record: Mapping[str, Any]) -> datetime | None:
    stamp = record.get("timestamp")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        return datetime.fromtimestamp(float(stamp), UTC)
    if not isinstance(stamp, str):
        return None
    try:
        return parse_time(stamp, "timestamp")
    except DataError:
        return None


def iter_records(
    uri: str,
    window: Window | None,
    stats: ReadStats | None = None,
    *,
    versions: Collection[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Capture records under ``uri`` whose ``timestamp`` falls in ``window`` (None: all), de-duplicated;
    with ``versions``, only records whose ``model_version`` is one of them."""
    stats = stats if stats is not None else ReadStats()
    fs, listing = list_window(uri, window, versions=versions)
    stats.partitions_pruned += listing.pruned
    stats.error_objects += len(listing.error_files)
    seen: set[str] = set()
    for path in listing.files:
        try:
            data = fs.cat_file(path)
        except (OSError, ValueError) as exc:
            raise DataError(f"{uri}", f"cannot read {path}: {one_line(exc)}") from None
        try:
            text = _decode(bytes(data))
        except (OSError, EOFError) as exc:
            raise DataError(uri, f"{path}: not gzip or truncated ({one_line(exc)})") from None
        stats.files += 1
        for value in iter_json_values(text, stats):
            for record in unwrap(value, stats):
                stats.records_read += 1
                if versions is not None and str(record.get("model_version")) not in versions:
                    stats.other_versions += 1
                    continue
                t = _record_time(record)
                if window is not None and (t is None or not window.contains(t)):
                    stats.out_of_window += 1
                    continue
                rid = record.get("request_id")
                if isinstance(rid, str):
                    if rid in seen:
                        stats.duplicates += 1
                        continue
                    seen.add(rid)
                stats.in_window += 1
                yield record


# --- labels ---------------------------------------------------------------------------------------------


@dataclass
class Labels:
    """Delayed ground truth by ``request_id``, and what the join found."""

    by_id: dict[str, tuple[Any, datetime | None]]
    total: int = 0
    matched: int = 0
    late: int = 0
    matched_ids: set[str] = field(default_factory=set)

    @property
    def unmatched(self) -> int:
        """Labels whose request id is not among the window's records."""
        return len(self.by_id) - len(self.matched_ids)

    def join(self, record: dict[str, Any], grace: timedelta) -> None:
        """Put the record's label in ``record['label']`` unless it is missing or late."""
        rid = record.get("request_id")
        if not isinstance(rid, str) or rid not in self.by_id:
            return
        label, labeled_at = self.by_id[rid]
        self.matched_ids.add(rid)
        predicted_at = _record_time(record)
        if labeled_at is not None and predicted_at is not None and labeled_at - predicted_at > grace:
            self.late += 1  # arrived after the grace period: counted, not used, so reports are stable
            return
        self.matched += 1
        record["label"] = label

    def summary(self, grace: timedelta) -> dict[str, Any]:
        """Counts for the report."""
        return {
            "total": self.total,
            "matched": self.matched,
            "late": self.late,
            "unmatched": self.unmatched,
            "grace_hours": grace.total_seconds() / 3600.0,
        }


def _label_uris(uri: str) -> list[str]:
    """``uri`` itself when it names a data file, else every data file under the prefix."""
    try:
        infer_format(uri)
        return [uri]
    except DataError:
        pass
    _, listing = list_window(uri, None)
    _, root = _filesystem(uri)
    found = []
    for path in listing.files:
        try:
            infer_format(path)
        except DataError:
            continue
        found.append(child_uri(uri, root, path))  # in uri's own form: an Azure URI keeps its account
    if not found:
        raise DataError(uri, "no label files (.jsonl, .csv or .parquet) under this prefix")
    return found


def read_labels(uri: str) -> Labels:
    """Labels from JSON Lines/CSV/Parquet files (one, or all under a prefix) with ``request_id``,
    ``label`` and optional ``timestamp`` (when the outcome was recorded). A request id listed twice
    keeps its last label."""
    by_id: dict[str, tuple[Any, datetime | None]] = {}
    total = 0
    found = False
    for file_uri in _label_uris(uri):
        total, found = _read_label_file(file_uri, by_id, total, found)
    if not found or not by_id:
        raise DataError(uri, "no labels (expected rows with request_id and label)")
    return Labels(by_id=by_id, total=total)


def _read_label_file(
    uri: str, by_id: dict[str, tuple[Any, datetime | None]], total: int, found: bool
) -> tuple[int, bool]:
    src = Source.open(uri)
    for batch in iter_batches(src):
        names = batch.schema.names
        missing = [c for c in ("request_id", "label") if c not in names]
        if missing:
            raise DataError(uri, f"missing column(s) {', '.join(map(repr, missing))} (labels need request_id, label)")
        found = True
        ids = batch.column("request_id").to_pylist()
        labels = batch.column("label").to_pylist()
        stamps = batch.column("timestamp").to_pylist() if "timestamp" in names else [None] * len(ids)
        for rid, label, stamp in zip(ids, labels, stamps, strict=True):
            if rid is None or label is None:
                continue
            total += 1
            at = _record_time({"timestamp": stamp}) if stamp is not None else None
            if isinstance(stamp, datetime):
                at = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
            by_id[str(rid)] = (label, at)
    return total, found


# --- export for the readers ----------------------------------------------------------------------------

#: Columns of the capture record that the check does not need (ids, variant, latency) are kept: the
#: readers treat them as non-features (drift.readers.NON_FEATURE_COLUMNS).


@dataclass
class Exported:
    """JSON Lines files written from a capture window, one per side, with their row counts."""

    paths: dict[str, Path]
    rows: dict[str, int]
    stats: ReadStats


def export_window(
    uri: str,
    window: Window | None,
    out_dir: Path,
    *,
    split_variants: bool = False,
    labels: Labels | None = None,
    label_grace: timedelta = timedelta(days=7),
    versions: Collection[str] | None = None,
) -> Exported:
    """Write the window's records to ``out_dir`` as JSON Lines: ``current.jsonl``, or with
    ``split_variants`` ``stable.jsonl`` and ``canary.jsonl``; labels are joined on the way; with
    ``versions``, only those model versions' records (and partitions) are read."""
    stats = ReadStats()
    names = ("stable", "canary") if split_variants else ("current",)
    # With labels, only the labelled records go to the check: the performance test pairs prediction
    # with label row by row, and the readers drop nulls per column.
    paths = {n: out_dir / f"{n}.jsonl" for n in names}
    rows = dict.fromkeys(names, 0)
    handles = {n: p.open("w", encoding="utf-8") for n, p in paths.items()}
    try:
        for record in iter_records(uri, window, stats, versions=versions):
            if labels is not None:
                record.pop("label", None)  # the labels file is the ground truth for this check
                labels.join(record, label_grace)
                if "label" not in record:
                    continue
            side = "current"
            if split_variants:
                side = "canary" if record.get("variant") == "canary" else "stable"
            handles[side].write(json.dumps(record, separators=(",", ":"), default=str) + "\n")
            rows[side] += 1
    finally:
        for fh in handles.values():
            fh.close()
    return Exported(paths=paths, rows=rows, stats=stats)
