"""``drift check --capture URI --engine spark``: a captured window read through Spark.

The window's partitions are listed by :func:`drift.capture.list_window` (the local reader's pruning:
only partitions that can hold records of the window are listed), and Spark reads only those objects,
as text lines (``.gz`` objects decompressed by Hadoop's codec, by suffix). Each line is unwrapped with
Spark functions, decoded with the reference's schema (``from_json``), as :func:`drift.capture.unwrap`
does per line in Python:

* a plain capture record (Firehose with message extraction, the Kubernetes writer's ``.jsonl.gz``);
* a Cloud Logging ``LogEntry``: the record in ``jsonPayload`` (the entry's ``timestamp`` when the payload
  lost its own), or a JSON line in ``textPayload``;
* an Azure ``FunctionAppLogs`` record (``category``/``resourceId`` with ``properties``): the handler's
  line in ``properties.message``, after any prefix before the first ``{``; ``time`` stands in for a
  missing ``timestamp``.

Records are kept when their own ``timestamp`` falls in the window and de-duplicated by ``request_id``
(records without one are all kept), then summarised like any other window (:func:`drift.spark.check_frames`).

Not on Spark (a usage error, exit 2): ``--compare-variants``, ``--labels``, a captured prefix as the
reference. Not read by Spark: Firehose without message extraction (gzip'd CloudWatch Logs envelopes in
objects without a ``.gz`` suffix) and records concatenated without a delimiter: their lines are counted
as skipped; use the local engine for them.
"""

from __future__ import annotations

import argparse
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
    """What the Spark engine does not do with ``--capture``: one line, exit 2."""
    if args.current:
        raise DataError("--current", "give either --current or --capture, not both")
    if args.compare_variants:
        raise DataError("--compare-variants", "not supported with --engine spark (use --engine local)")
    if args.labels:
        raise DataError("--labels", "not supported with --engine spark (use --engine local)")


def prepare(args: argparse.Namespace) -> None:
    """Resolve the window and the reference; leave the reading to :func:`check` inside the session."""
    from drift.capture_cli import _is_prefix, stack_reference

    validate(args)
    args.capture_window = capture.Window.resolve(args.since, args.until, args.window)
    capture.parse_duration(args.label_grace, "--label-grace")
    if not args.reference:
        if not (args.stack and args.function):
            raise DataError("--reference", "give --reference, or --stack and --function to use model.referenceUri")
        args.reference = stack_reference(args.repo, args.stack, args.function)
    if _is_prefix(args.reference):
        raise DataError(args.reference, "a captured prefix as the reference is not supported with --engine spark")
    span = f"[{args.capture_window.since:%Y-%m-%dT%H:%M:%SZ}, {args.capture_window.until:%Y-%m-%dT%H:%M:%SZ})"
    args.display_reference = args.reference
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


def _hadoop_path(uri: str, capture_uri: str) -> str:
    """``uri`` as Spark opens it; a file name with ``:`` is a DataError (exit 2) naming the file.

    Hadoop's ``Path`` parses a colon in a file name as a scheme ("Relative path in absolute URI",
    HADOOP-3257), whether the path is given or listed (checked on Spark 4.3 in local mode), and Cloud
    Logging names its sink files ``HH:00:00_HH:59:59_S0.json``: those windows need the local engine.
    """
    name = uri.rsplit("/", 1)[-1]
    if ":" in name:
        raise DataError(
            capture_uri, f"{name}: Spark cannot open file names with ':' (Cloud Logging sink files): use --engine local"
        )
    return uri


def hadoop_paths(uri: str, window: capture.Window | None) -> tuple[list[str], capture.Listing]:
    """The window's objects under ``uri`` (listed through fsspec, pruned) as Spark opens them.

    Each is named in ``uri``'s own form first (``fs.unstrip_protocol`` would lose an Azure account), then
    translated: Azure Blob URIs become ``abfss://<container>@<account>.dfs.core.windows.net/...``
    (:func:`drift.readers.hadoop_uri`), the other schemes are Hadoop's as they are.
    """
    if readers.azure_blob_location(uri) is None:
        readers.hadoop_uri(uri)  # abfs[s]://<container>/... without the account: a usage error, named
        fs, listing = capture.list_window(uri, window)
        return [_hadoop_path(fs.unstrip_protocol(p), uri) for p in listing.files], listing
    _, listing = capture.list_window(uri, window)
    _, root = capture._filesystem(uri)
    return [_hadoop_path(readers.hadoop_uri(readers.child_uri(uri, root, p)), uri) for p in listing.files], listing


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


def check(spark: SparkSession, args: argparse.Namespace, config: Any) -> tuple[Any, dict[str, Any]]:
    """The report and the windows' summaries of ``args.capture``'s window against ``args.reference``.

    Sets ``args.report_extra`` to the ``capture`` object of the local reader's report (files, records,
    records outside the window, skipped lines, duplicates, layouts).
    """
    from pyspark.sql import functions as F  # noqa: N812

    from drift import spark as drift_spark
    from drift.detect import DetectConfig

    cfg = config or DetectConfig()
    window: capture.Window = args.capture_window
    uri = args.current  # the capture URI (prepare)
    span = f"[{window.since:%Y-%m-%dT%H:%M:%SZ}, {window.until:%Y-%m-%dT%H:%M:%SZ})"
    paths, listing = hadoop_paths(uri, window)
    if not listing.files:
        raise DataError(uri, f"no capture records in {span} (0 file(s), 0 record(s) read)")

    ref_df = drift_spark.read_logs(spark, args.reference, args.input_format)
    forced = list(args.categorical) + [n for n, ov in cfg.features.items() if ov.kind == "categorical"]
    plan = drift_spark.plan_frame(ref_df.schema, args.reference, columns=args.columns, categorical=forced)
    schema = record_schema(ref_df.schema, plan)
    try:
        lines = spark.read.text(paths).filter(F.trim(F.col("value")) != "")
        unwrapped = unwrap_lines(lines, schema)
    except Exception as exc:
        raise DataError(uri, f"cannot read: {readers.one_line(exc)[:300]}") from None
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
        raise DataError(uri, f"cannot read: {readers.one_line(exc)[:300]}") from None
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
    if kept == 0:
        found = f"{len(listing.files)} file(s), {read} record(s) read"
        raise DataError(uri, f"no capture records in {span} ({found})")
    columns = args.columns
    if not columns:
        columns = [c for c in ref_df.columns if c not in readers.NON_FEATURE_COLUMNS]
        if "label" in columns and labelled == 0:
            columns.remove("label")  # labels arrive later: compare features and predictions (as capture_cli)
    current = _with_time(deduped, columns)
    report, windows = drift_spark.check_frames(
        ref_df,
        current,
        config=cfg,
        columns=columns,
        categorical=args.categorical,
        reference_name=args.reference,
        current_name=uri,
    )
    args.report_extra = {
        "capture": {
            "uri": uri,
            "since": f"{window.since:%Y-%m-%dT%H:%M:%SZ}",
            "until": f"{window.until:%Y-%m-%dT%H:%M:%SZ}",
            "files": len(listing.files),
            "records": kept - duplicates,
            "records_outside_window": read - kept,
            "skipped_lines": skipped,
            "duplicates": duplicates,
            "layouts": dict(sorted(layouts.items())),
            "engine": "spark",
        }
    }
    return report, windows
