"""``drift check --capture URI --engine spark``: a captured window read through Spark.

The window's partitions are listed by :func:`drift.capture.list_window` (the local reader's pruning:
only partitions that can hold records of the window are listed), and only those objects are read:

* by Spark as text lines (``.gz`` objects decompressed by Hadoop's codec, by suffix), each line
  unwrapped with Spark functions and decoded with the reference's schema (``from_json``), as
  :func:`drift.capture.unwrap` does per line in Python: a plain capture record (Firehose with message
  extraction, the Kubernetes writer's ``.jsonl.gz``); a Cloud Logging ``LogEntry`` (the record in
  ``jsonPayload``, the entry's ``timestamp`` when the payload lost its own, or a JSON line in
  ``textPayload``); an Azure ``FunctionAppLogs`` record (the handler's line in ``properties.message``,
  after any prefix before the first ``{``; ``time`` stands in for a missing ``timestamp``);
* in the executors, for names Hadoop cannot open (Cloud Logging's ``HH:00:00_HH:59:59_S0.json``,
  :func:`hadoop_opens`): :func:`read_objects` runs the local engine's own unwrapping
  (:func:`drift.capture.unwrap`) on each object's lines, in ``mapInArrow``; records come back as JSON
  text, decoded with the same schema.

Records are kept when their own ``timestamp`` falls in the window and de-duplicated by ``request_id``
(records without one are all kept), then summarised like any other window (:func:`drift.spark.check_frames`).
``--compare-variants`` splits them by ``variant`` (the schema inferred from the window's records);
``--labels`` joins delayed labels by ``request_id`` (:mod:`drift.spark_join`).

Not on Spark (a usage error, exit 2): a captured prefix as the reference. Not read by Spark's text
path: Firehose without message extraction (gzip'd CloudWatch Logs envelopes in objects without a
``.gz`` suffix) and records concatenated without a delimiter: their lines are counted as skipped; use
the local engine for them.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from drift import capture, readers
from drift.readers import DataError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: Fields of the capture record read besides the reference's features (decoded as text).
_RECORD_FIELDS = ("request_id", "timestamp", "model_version", "variant", "prediction")
#: Layout names, as the local reader counts them in the report's ``capture.layouts``.
_PLAIN, _CLOUD_LOGGING, _AZURE = "records", "cloud-logging", "azure-diagnostics"


def validate(args: argparse.Namespace) -> None:
    """The options the Spark engine refuses with ``--capture``: one line, exit 2 (as the local engine)."""
    if args.current:
        raise DataError("--current", "give either --current or --capture, not both")
    if args.compare_variants and (args.reference or args.stack):
        raise DataError("--compare-variants", "the reference is the window's stable records: drop --reference")


def prepare(args: argparse.Namespace) -> None:
    """Resolve the window and the reference; leave the reading to :func:`check` inside the session."""
    from drift.capture_cli import _is_prefix, stack_reference

    validate(args)
    args.capture_window = capture.Window.resolve(args.since, args.until, args.window)
    args.capture_grace = capture.parse_duration(args.label_grace, "--label-grace")
    if args.compare_variants:
        # The window's stable records, read by check(); the name stands in where a reference is named.
        args.reference = args.display_reference = f"{args.capture} (stable)"
    else:
        if not args.reference:
            if not (args.stack and args.function):
                raise DataError("--reference", "give --reference, or --stack and --function to use model.referenceUri")
            args.reference = stack_reference(args.repo, args.stack, args.function)
        if _is_prefix(args.reference):
            raise DataError(args.reference, "a captured prefix as the reference is not supported with --engine spark")
        args.display_reference = args.reference
    span = f"[{args.capture_window.since:%Y-%m-%dT%H:%M:%SZ}, {args.capture_window.until:%Y-%m-%dT%H:%M:%SZ})"
    args.display_current = f"{args.capture} {span}"
    args.current = args.capture  # named in messages; read by check() below, not as a file


def record_schema(reference_schema: Any, plan: readers.ColumnPlan) -> Any:
    """The reference's planned columns (numbers as double) plus the record's ids and time as text."""
    from pyspark.sql import types as T  # noqa: N812

    from drift.spark import current_json_schema

    schema = current_json_schema(reference_schema, plan)
    for name in _RECORD_FIELDS:
        if name not in schema.fieldNames():
            schema = schema.add(T.StructField(name, T.StringType(), True))
    if "label" not in schema.fieldNames():
        schema = schema.add(T.StructField("label", T.StringType(), True))
    return schema


def unwrap_lines(lines: DataFrame, schema: Any) -> DataFrame:
    """Text lines (column ``value``) to columns ``rec`` (the record or null) and ``layout``."""
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql import types as T  # noqa: N812

    envelope = T.StructType(
        [
            T.StructField("jsonPayload", schema, True),
            T.StructField("textPayload", T.StringType(), True),
            T.StructField("logName", T.StringType(), True),
            T.StructField("timestamp", T.StringType(), True),
            T.StructField("time", T.StringType(), True),
            T.StructField("category", T.StringType(), True),
            T.StructField("resourceId", T.StringType(), True),
            T.StructField("properties", T.StructType([T.StructField("message", T.StringType(), True)]), True),
        ]
    )

    def is_record(rec: Any) -> Any:
        return rec.isNotNull() & rec["model_version"].isNotNull() & rec["prediction"].isNotNull()

    line = F.col("value")
    env = F.from_json(line, envelope)
    plain = F.from_json(line, schema)
    frame = lines.select(plain.alias("plain"), env.alias("env"))
    frame = frame.withColumn(
        "_msg",
        F.when(F.col("env.jsonPayload").isNull() & F.col("env.textPayload").isNotNull(), F.col("env.textPayload")).when(
            F.col("env.category").isNotNull() | F.col("env.resourceId").isNotNull(), F.col("env.properties.message")
        ),
    )
    # The handler's JSON after any prefix (a logger's "Information: ..."), as drift.capture._from_message.
    message_rec = F.when(F.instr("_msg", "{") > 0, F.from_json(F.expr("substring(_msg, instr(_msg, '{'))"), schema))
    frame = frame.withColumn("msg_rec", message_rec)
    is_logentry = (
        F.col("env.jsonPayload").isNotNull() | F.col("env.textPayload").isNotNull() | F.col("env.logName").isNotNull()
    )
    is_azure = F.col("env.properties").isNotNull() & (
        F.col("env.category").isNotNull() | F.col("env.resourceId").isNotNull()
    )
    payload = F.col("env.jsonPayload")
    message = F.col("msg_rec")
    stamp_of = {
        "payload": F.coalesce(payload["timestamp"], F.col("env.timestamp")),
        "text": F.coalesce(message["timestamp"], F.col("env.timestamp")),
        "azure": F.coalesce(message["timestamp"], F.col("env.time")),
    }

    def with_stamp(rec: Any, stamp: Any) -> Any:
        return rec.withField("timestamp", stamp)

    rec = (
        F.when(is_record(F.col("plain")), F.col("plain"))
        .when(is_logentry & is_record(payload), with_stamp(payload, stamp_of["payload"]))
        .when(is_logentry & payload.isNull() & is_record(message), with_stamp(message, stamp_of["text"]))
        .when(~is_logentry & is_azure & is_record(message), with_stamp(message, stamp_of["azure"]))
    )
    layout = (
        F.when(is_record(F.col("plain")), F.lit(_PLAIN))
        .when(is_logentry & (is_record(payload) | is_record(message)), F.lit(_CLOUD_LOGGING))
        .when(~is_logentry & is_azure & is_record(message), F.lit(_AZURE))
    )
    return frame.select(rec.alias("rec"), layout.alias("layout"))


#: Tasks of the job that reads objects Hadoop cannot open: one object per task, up to this many tasks.
MAX_OBJECT_TASKS = 4096
#: Arrow rows per batch the object readers yield.
_OBJECT_BATCH_ROWS = 8192
#: Marks an executor's read error so the driver can report it as the local engine does (exit 2).
_READ_ERROR = "drift-capture-unreadable"
_READ_ERROR_RE = re.compile(_READ_ERROR + r"\[(.*?)\]" + _READ_ERROR)
OBJECT_SCHEMA = "rec_json string, layout string"


def hadoop_opens(uri: str) -> bool:
    """Whether Hadoop's ``Path`` can open ``uri``: not when the file name has a ``:``.

    Hadoop parses a colon in a file name as a scheme ("Relative path in absolute URI", HADOOP-3257),
    whether the path is given, percent-encoded (``%3A`` is looked up literally), globbed or listed
    (checked on Spark 4.3 in local mode), and Cloud Logging names its sink files
    ``HH:00:00_HH:59:59_S0.json``: those are read by :func:`read_objects` instead.
    """
    return ":" not in uri.rsplit("/", 1)[-1]


class _Layouts(dict[str, int]):
    """``ReadStats.layouts`` that remembers the layout :func:`drift.capture.unwrap` counted last."""

    last: str | None = None

    def __setitem__(self, key: str, value: int) -> None:
        self.last = key
        super().__setitem__(key, value)


def object_records(uri: str) -> Iterator[tuple[str | None, str | None]]:
    """``(record as JSON, layout)`` per capture record of one object, ``(None, None)`` per skipped line.

    The local engine's code: the object is opened with its fsspec filesystem, gunzipped when it starts
    with the gzip magic (as ``drift.capture._decode``), and each line's JSON values are unwrapped by
    :func:`drift.capture.unwrap`. Lines are streamed, so an executor holds one line, not the object.
    """
    fs, path = capture._filesystem(uri)
    layouts = _Layouts()
    stats = capture.ReadStats(layouts=layouts)
    skipped = 0
    try:
        with fs.open(path, "rb") as raw:
            head = raw.read(2)
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b" else raw
            for line in io.TextIOWrapper(stream, encoding="utf-8", errors="replace"):
                for value in capture.iter_json_values(line, stats):
                    for record in capture.unwrap(value, stats):
                        yield json.dumps(record, separators=(",", ":"), default=str), layouts.last
                for _ in range(stats.skipped_lines - skipped):
                    yield None, None
                skipped = stats.skipped_lines
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise RuntimeError(
            f"{_READ_ERROR}[{path}: not gzip or truncated ({readers.one_line(exc)})]{_READ_ERROR}"
        ) from None
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"{_READ_ERROR}[cannot read {path}: {readers.one_line(exc)}]{_READ_ERROR}") from None


def _read_object_batches(batches: Iterable[Any]) -> Iterator[Any]:
    """``mapInArrow`` function: batches of object URIs in, batches of :data:`OBJECT_SCHEMA` out."""
    import pyarrow as pa

    recs: list[str | None] = []
    layouts: list[str | None] = []
    for batch in batches:
        for uri in batch.column(0).to_pylist():
            for rec, layout in object_records(uri):
                recs.append(rec)
                layouts.append(layout)
                if len(recs) >= _OBJECT_BATCH_ROWS:
                    yield pa.RecordBatch.from_pydict({"rec_json": recs, "layout": layouts})
                    recs, layouts = [], []
    if recs:
        yield pa.RecordBatch.from_pydict({"rec_json": recs, "layout": layouts})


def read_objects(spark: SparkSession, uris: list[str]) -> DataFrame:
    """The records of objects Hadoop cannot open, read in the executors: columns ``rec_json``, ``layout``.

    Only the URIs go from the driver to the cluster (one per task, up to :data:`MAX_OBJECT_TASKS`
    tasks); the executors need the object store's fsspec package (gcsfs for ``gs://``) and credentials.
    """
    frame = spark.createDataFrame([(u,) for u in uris], "uri string")
    frame = frame.repartition(max(1, min(len(uris), MAX_OBJECT_TASKS)))
    return frame.mapInArrow(_read_object_batches, OBJECT_SCHEMA)


def _unreadable(exc: Exception, uri: str) -> DataError:
    """An executor's read error (:func:`object_records`) as the local engine's DataError, else a generic one."""
    text = readers.one_line(exc)
    found = _READ_ERROR_RE.search(text)
    if found:
        return DataError(uri, found.group(1))
    return DataError(uri, f"cannot read: {text[:300]}")


def window_objects(uri: str, window: capture.Window | None) -> tuple[list[tuple[str, str]], capture.Listing]:
    """The window's objects under ``uri`` (listed through fsspec, pruned): ``(own URI, Hadoop URI)`` each.

    The own URI is in ``uri``'s form (``fs.unstrip_protocol`` would lose an Azure account): what fsspec,
    and so :func:`read_objects` in the executors, opens. The Hadoop URI is what Spark's own readers open:
    Azure Blob URIs become ``abfss://<container>@<account>.dfs.core.windows.net/...``
    (:func:`drift.readers.hadoop_uri`), the other schemes are Hadoop's as they are.
    """
    if readers.azure_blob_location(uri) is None:
        readers.hadoop_uri(uri)  # abfs[s]://<container>/... without the account: a usage error, named
        fs, listing = capture.list_window(uri, window)
        own = [fs.unstrip_protocol(p) for p in listing.files]
        return [(u, u) for u in own], listing
    _, listing = capture.list_window(uri, window)
    _, root = capture._filesystem(uri)
    own = [readers.child_uri(uri, root, p) for p in listing.files]
    return [(u, readers.hadoop_uri(u)) for u in own], listing


def hadoop_paths(uri: str, window: capture.Window | None) -> tuple[list[str], capture.Listing]:
    """The window's objects as Spark opens them (:func:`window_objects`' Hadoop URIs)."""
    objects, listing = window_objects(uri, window)
    return [hadoop for _, hadoop in objects], listing


def _timestamp(text: Any) -> Any:
    """ISO 8601 text (``Z`` or an offset) or epoch seconds, as a Spark timestamp (session time zone UTC)."""
    from pyspark.sql import functions as F  # noqa: N812

    epoch = F.timestamp_seconds(text.cast("double"))
    return F.when(text.rlike(r"^\s*[0-9]+(\.[0-9]+)?\s*$"), epoch).otherwise(F.to_timestamp(text))


def _with_time(records: DataFrame, columns: list[str]) -> DataFrame:
    """The planned columns plus the record's time, which orders the performance chunks (drift.spark_chunks)."""
    from pyspark.sql import functions as F  # noqa: N812

    from drift import spark as drift_spark

    cols = [drift_spark._col(c) for c in columns]
    if "timestamp" not in columns:
        cols.append(_timestamp(F.col("timestamp")).alias("timestamp"))
    return records.select(cols)


def _timestamp_of(dtype: Any, column: Any) -> Any:
    """A column of any type holding a time (a timestamp, ISO 8601 text, epoch seconds) as a timestamp."""
    from pyspark.sql import types as T  # noqa: N812

    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType)):
        return column.cast("timestamp")
    return _timestamp(column.cast("string"))


# ---- the records of a window as text, for --compare-variants (no reference to take a schema from) ------


def _record_texts(lines: DataFrame) -> Any:
    """Per text line, the capture record's JSON text in it, or null (the shapes :func:`unwrap_lines` reads)."""
    from pyspark.sql import functions as F  # noqa: N812

    line = F.col("value")

    def has_record(text: Any) -> Any:
        return (
            F.get_json_object(text, "$.model_version").isNotNull() & F.get_json_object(text, "$.prediction").isNotNull()
        )

    payload = F.get_json_object(line, "$.jsonPayload")
    message = F.coalesce(F.get_json_object(line, "$.textPayload"), F.get_json_object(line, "$.properties.message"))
    from_message = F.when(F.instr(message, "{") > 0, F.expr("substring(_m, instr(_m, '{'))"))
    frame = lines.withColumn("_m", message)
    return frame.select(
        F.when(has_record(line), line)
        .when(payload.isNotNull() & has_record(payload), payload)
        .when(has_record(from_message), from_message)
        .alias("rec_json")
    )


def _split_top(text: str) -> list[str]:
    """``a: T, b: OBJECT<c: U, d: V>`` split at the commas outside ``<>``, ``()`` and backticked names."""
    parts, depth, start, quoted = [], 0, 0, False
    for i, ch in enumerate(text):
        if ch == "`":
            quoted = not quoted  # a doubled backtick inside a name toggles twice
        elif quoted:
            continue
        elif ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    tail = text[start:].strip()
    return [*parts, tail] if tail else parts


def variant_fields(ddl: str | None) -> dict[str, Any]:
    """Spark types of the fields of ``schema_of_variant_agg``'s ``OBJECT<name: TYPE, ...>``.

    Numbers (any integral, decimal or floating type) become double, text string, booleans boolean, a
    field that is null everywhere ``VOID`` null (reported as "all values are null" if it is a feature);
    anything else (objects, arrays, mixed types) an empty struct, an unsupported feature type.
    """
    from pyspark.sql import types as T  # noqa: N812

    if not ddl or not ddl.startswith("OBJECT<") or not ddl.endswith(">"):
        return {}
    fields: dict[str, Any] = {}
    for part in _split_top(ddl[len("OBJECT<") : -1]):
        if part.startswith("`"):
            end = part.index("`: ", 1) if "`: " in part else len(part) - 1
            name, kind = part[1:end].replace("``", "`"), part[end + 3 :]
        else:
            name, _, kind = part.partition(": ")
        base = kind.split("(", 1)[0].split("<", 1)[0].strip().upper()
        if base in ("TINYINT", "SMALLINT", "INT", "BIGINT", "DECIMAL", "FLOAT", "DOUBLE"):
            fields[name] = T.DoubleType()
        elif base == "STRING":
            fields[name] = T.StringType()
        elif base == "BOOLEAN":
            fields[name] = T.BooleanType()
        elif base == "VOID":
            fields[name] = T.NullType()
        else:
            fields[name] = T.StructType([])
    return fields


def infer_variant_schemas(texts: DataFrame) -> tuple[list[str], Any, set[str]]:
    """From the window's record texts: the stable side's field names (in the first record's key order),
    a record schema for both sides, and the canary side's field names. One job; the driver gets schemas.
    """
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql import types as T  # noqa: N812

    rec = F.col("rec_json")
    canary = F.coalesce(F.get_json_object(rec, "$.variant") == F.lit("canary"), F.lit(False))
    frame = texts.filter(rec.isNotNull()).withColumn("_c", canary)
    row = frame.agg(
        F.expr("schema_of_variant_agg(CASE WHEN NOT _c THEN try_parse_json(rec_json) END)").alias("stable"),
        F.expr("schema_of_variant_agg(CASE WHEN _c THEN try_parse_json(rec_json) END)").alias("canary"),
        F.first(F.when(~F.col("_c"), F.json_object_keys(rec)), ignorenulls=True).alias("keys"),
    ).collect()[0]
    stable, canary_fields = variant_fields(row["stable"]), variant_fields(row["canary"])
    first = [k for k in (row["keys"] or []) if k in stable]
    names = first + sorted(k for k in stable if k not in first)
    merged = {**canary_fields, **stable}
    schema = T.StructType(
        [T.StructField(n, merged[n], True) for n in names]
        + [T.StructField(n, t, True) for n, t in sorted(canary_fields.items()) if n not in stable]
    )
    for name in (*_RECORD_FIELDS, "label"):
        if name not in schema.fieldNames():
            schema = schema.add(T.StructField(name, T.StringType(), True))
    return names, schema, set(canary_fields)


def _unwrapped(spark: SparkSession, objects: list[tuple[str, str]], schema: Any, capture_uri: str) -> DataFrame:
    """Columns ``rec`` (the record decoded with ``schema``, or null) and ``layout`` of every object's lines.

    Objects Hadoop opens are read by Spark as text and unwrapped by :func:`unwrap_lines`; the others
    (Cloud Logging's ``HH:00:00_HH:59:59_S0.json``) by :func:`read_objects` in the executors.
    """
    from pyspark.sql import functions as F  # noqa: N812

    # (own URI, Hadoop URI) pairs (window_objects): Spark opens the Hadoop form, executors' fsspec the own.
    hadoop = [h for _, h in objects if hadoop_opens(h)]
    others = [own for own, h in objects if not hadoop_opens(h)]
    parts = []
    try:
        if hadoop:
            lines = spark.read.text(hadoop).filter(F.trim(F.col("value")) != "")
            parts.append(unwrap_lines(lines, schema))
        if others:
            read = read_objects(spark, others)
            parts.append(read.select(F.from_json("rec_json", schema).alias("rec"), "layout"))
    except Exception as exc:
        raise _unreadable(exc, capture_uri) from None
    frame = parts[0]
    for other in parts[1:]:
        frame = frame.unionByName(other)
    return frame


def _texts(spark: SparkSession, objects: list[tuple[str, str]]) -> DataFrame:
    """Column ``rec_json``: the record texts of the window's objects (for :func:`infer_variant_schemas`)."""
    from pyspark.sql import functions as F  # noqa: N812

    # (own URI, Hadoop URI) pairs (window_objects): Spark opens the Hadoop form, executors' fsspec the own.
    hadoop = [h for _, h in objects if hadoop_opens(h)]
    others = [own for own, h in objects if not hadoop_opens(h)]
    parts = []
    if hadoop:
        parts.append(_record_texts(spark.read.text(hadoop).filter(F.trim(F.col("value")) != "")))
    if others:
        parts.append(read_objects(spark, others).select("rec_json"))
    frame = parts[0]
    for other in parts[1:]:
        frame = frame.unionByName(other)
    return frame


def check(spark: SparkSession, args: argparse.Namespace, config: Any) -> tuple[Any, dict[str, Any]]:
    """The report and the windows' summaries of ``args.capture``'s window against ``args.reference``
    (with ``--compare-variants``: of its canary records against its stable records).

    Sets ``args.report_extra`` to the ``capture`` object of the local reader's report (files, records,
    records outside the window, skipped lines, duplicates, layouts; ``variants`` and ``labels``).
    """
    from pyspark.sql import functions as F  # noqa: N812

    from drift import spark as drift_spark
    from drift.detect import DetectConfig

    cfg = config or DetectConfig()
    window: capture.Window = args.capture_window
    uri = args.current  # the capture URI (prepare)
    variants = bool(getattr(args, "compare_variants", False))
    labels_uri = getattr(args, "labels", None)
    span = f"[{window.since:%Y-%m-%dT%H:%M:%SZ}, {window.until:%Y-%m-%dT%H:%M:%SZ})"
    objects, listing = window_objects(uri, window)
    if not listing.files:
        raise DataError(uri, f"no capture records in {span} (0 file(s), 0 record(s) read)")

    ref_df = None
    canary_names: set[str] = set()
    if variants:
        try:
            stable_names, schema, canary_names = infer_variant_schemas(_texts(spark, objects))
        except DataError:
            raise
        except Exception as exc:
            raise _unreadable(exc, uri) from None
        ref_columns = stable_names
    else:
        ref_df = drift_spark.read_logs(spark, args.reference, args.input_format)
        forced = list(args.categorical) + [n for n, ov in cfg.features.items() if ov.kind == "categorical"]
        plan = drift_spark.plan_frame(ref_df.schema, args.reference, columns=args.columns, categorical=forced)
        schema = record_schema(ref_df.schema, plan)
        ref_columns = ref_df.columns
    unwrapped = _unwrapped(spark, objects, schema, uri)
    t = _timestamp(F.col("rec.timestamp"))
    in_window = (t >= F.lit(window.since)) & (t < F.lit(window.until))
    tagged = unwrapped.withColumn("in_window", F.coalesce(in_window, F.lit(False)))
    records = tagged.filter(F.col("rec").isNotNull() & F.col("in_window")).select("rec.*")
    rid = F.col("request_id")
    deduped = records.filter(rid.isNull()).unionByName(records.filter(rid.isNotNull()).dropDuplicates(["request_id"]))

    try:
        counts = tagged.groupBy("layout", "in_window").agg(
            F.count(F.lit(1)).alias("n"),
            F.count(F.col("rec.label")).alias("labels"),
            F.count(F.col("rec.request_id")).alias("ids"),
            F.countDistinct(F.col("rec.request_id")).alias("distinct_ids"),
        )
        rows = counts.collect()
    except Exception as exc:
        raise _unreadable(exc, uri) from None
    layouts: dict[str, int] = {}
    read = kept = skipped = labelled = ids = distinct = 0
    for row in rows:
        if row["layout"] is None:
            skipped += row["n"]
            continue
        layouts[row["layout"]] = layouts.get(row["layout"], 0) + row["n"]
        read += row["n"]
        if row["in_window"]:
            kept += row["n"]
            labelled += row["labels"]
            ids += row["ids"]
            distinct += row["distinct_ids"]
    # Distinct ids per layout group add up to the window's only when no id spans two layouts, which
    # one function's capture prefix does not mix; the exact number is the de-duplicated count below.
    duplicates = ids - distinct
    found = f"{len(listing.files)} file(s), {read} record(s) read"
    if kept == 0:
        raise DataError(uri, f"no capture records in {span} ({found})")

    canary = F.coalesce(F.col("variant") == F.lit("canary"), F.lit(False))
    label_summary = None
    sides: dict[str, int] = {}
    if labels_uri:
        from drift.spark_join import join_labels

        # No reference with --compare-variants: the label's type is the labels file's (numbers as double).
        label_type = None if variants else schema["label"].dataType
        joined = join_labels(
            spark, deduped, labels_uri, args.capture_grace, label_type, canary=canary if variants else None
        )
        deduped, label_summary = joined.records, joined.summary
        n_canary = label_summary.pop("_canary", 0)
        sides = {"stable": label_summary["matched"] - n_canary, "canary": n_canary}
        labelled = label_summary["matched"]
    elif variants:
        try:
            side_rows = deduped.groupBy(canary.alias("c")).count().collect()
        except Exception as exc:
            raise _unreadable(exc, uri) from None
        by = {bool(r["c"]): int(r["count"]) for r in side_rows}
        sides = {"stable": by.get(False, 0), "canary": by.get(True, 0)}
    if variants:
        for side in ("canary", "stable"):
            if sides[side] == 0:
                raise DataError(uri, f"no {side} records in {span} ({found})")
    elif labels_uri and labelled == 0:
        raise DataError(uri, f"no capture records in {span} ({found})")

    columns = args.columns
    if not columns:
        columns = [c for c in ref_columns if c not in readers.NON_FEATURE_COLUMNS]
        if labels_uri and "label" not in columns and variants:
            columns.append("label")  # joined from the labels file, after the record's fields (as exported)
        has_label = ("label" in canary_names) if variants and not labels_uri else labelled > 0
        if "label" in columns and not has_label:
            columns.remove("label")  # labels arrive later: compare features and predictions (as capture_cli)
    if variants:
        reference = _with_time(deduped.filter(~canary), columns)
        current = _with_time(deduped.filter(canary), columns)
        reference_name, current_name = f"{uri} (stable)", f"{uri} (canary)"
    else:
        assert ref_df is not None
        reference, reference_name = ref_df, args.reference
        current, current_name = _with_time(deduped, columns), uri
    report, windows = drift_spark.check_frames(
        reference,
        current,
        config=cfg,
        columns=columns,
        categorical=args.categorical,
        reference_name=reference_name,
        current_name=current_name,
    )
    summary: dict[str, Any] = {
        "uri": uri,
        "since": f"{window.since:%Y-%m-%dT%H:%M:%SZ}",
        "until": f"{window.until:%Y-%m-%dT%H:%M:%SZ}",
        "files": len(listing.files),
        "records": kept - duplicates,
        "records_outside_window": read - kept,
        "skipped_lines": skipped,
        "duplicates": duplicates,
        "layouts": dict(sorted(layouts.items())),
    }
    if variants:
        summary["variants"] = sides
    if label_summary is not None:
        summary["labels"] = label_summary
    summary["engine"] = "spark"
    args.report_extra = {"capture": summary}
    return report, windows
