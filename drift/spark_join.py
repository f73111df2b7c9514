"""``drift check --capture URI --labels URI --engine spark``: delayed ground truth joined in Spark.

The local engine's rules (:mod:`drift.capture`: ``read_labels``, ``Labels.join``, ``Labels.summary``),
computed by Spark jobs whose results on the driver are five counts:

* label rows are those with a ``request_id`` and a ``label`` (``total`` counts them); a request id listed
  twice keeps its last label: the last row of the last file in path order (Spark reads each file's splits
  in offset order, so ``(file name, monotonically_increasing_id())`` is that order);
* a window record (in the window, de-duplicated) whose ``request_id`` has a label is ``matched``, unless
  the label's ``timestamp`` is more than ``--label-grace`` after the record's: then it is ``late``,
  counted and not used; labels whose id is no window record's are ``unmatched``;
* the check then runs on the matched records only, their ``label`` the labels file's (a record's own
  ``label`` is dropped: the labels file is the ground truth).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from drift import capture, readers
from drift.readers import DataError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_LABEL_FIELDS = ("request_id", "label")


@dataclass
class LabelJoin:
    """The labelled records (``records``) and the counts of the report's ``capture.labels``."""

    records: DataFrame
    summary: dict[str, Any]


def read_labels(spark: SparkSession, uri: str) -> DataFrame:
    """Columns ``request_id`` (text), ``label``, ``labeled_at`` (timestamp or null), ``_file``, ``_pos``.

    ``uri`` is a label file or a prefix of them (every ``.jsonl``/``.csv``/``.parquet`` under it,
    listed on the driver by :func:`drift.capture._label_uris`); each format is one Spark read.
    """
    from pyspark.sql import functions as F  # noqa: N812

    from drift.spark import _col
    from drift.spark_capture import _timestamp_of

    files = capture._label_uris(uri)
    groups: dict[str, list[str]] = {}
    for file_uri in files:
        name = file_uri.rsplit("/", 1)[-1]
        if ":" in name:
            raise DataError(file_uri, "Spark cannot open file names with ':' (rename the label file)")
        groups.setdefault(readers.infer_format(file_uri), []).append(file_uri)
    frames = []
    for fmt, paths in sorted(groups.items()):
        reader = spark.read
        if fmt == "csv":
            reader = reader.option("header", "true").option("mode", "FAILFAST").option("inferSchema", "true")
        elif fmt == "jsonl":
            reader = reader.option("mode", "FAILFAST")
        named = uri if len(paths) > 1 else paths[0]
        try:
            # az://<account>/<container>/... (the project's form) as Hadoop's ABFS driver names it.
            df = reader.format("json" if fmt == "jsonl" else fmt).load([readers.hadoop_uri(p) for p in paths])
            names = df.columns
        except Exception as exc:
            raise DataError(named, f"cannot read as {fmt}: {readers.one_line(exc)[:300]}") from None
        missing = [c for c in _LABEL_FIELDS if c not in names]
        if missing:
            raise DataError(named, f"missing column(s) {', '.join(map(repr, missing))} (labels need request_id, label)")
        stamp = _timestamp_of(df.schema["timestamp"].dataType, _col("timestamp")) if "timestamp" in names else None
        frames.append(
            df.select(
                _col("request_id").cast("string").alias("request_id"),
                _col("label").alias("label"),
                (stamp if stamp is not None else F.lit(None).cast("timestamp")).alias("labeled_at"),
                F.input_file_name().alias("_file"),
                F.monotonically_increasing_id().alias("_pos"),
            )
        )
    frame = frames[0]
    for other in frames[1:]:
        frame = frame.unionByName(other, allowMissingColumns=False)
    return frame.filter(F.col("request_id").isNotNull() & F.col("label").isNotNull())


def join_labels(
    spark: SparkSession,
    records: DataFrame,
    uri: str,
    grace: timedelta,
    label_type: Any,
    *,
    canary: Any = None,
) -> LabelJoin:
    """Join ``records`` (the window's de-duplicated records, with ``request_id`` and ``timestamp``) with
    the labels of ``uri``; one job counts ``total``/``matched``/``late``/``unmatched`` (and, with
    ``canary``, a boolean column expression on the records, how many labelled records are canary).
    ``label_type`` is the type ``label`` is cast to (None: the labels file's, numbers as double).
    """
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql import types as T  # noqa: N812

    from drift.spark_capture import _timestamp_of

    rows = read_labels(spark, uri)
    if label_type is None:
        found = rows.schema["label"].dataType
        label_type = T.DoubleType() if isinstance(found, T.NumericType) else found
    order = F.struct(F.col("_file"), F.col("_pos"))
    latest = rows.groupBy("request_id").agg(
        F.max_by(F.col("label"), order).alias("_label"),
        F.max_by(F.col("labeled_at"), order).alias("_labeled_at"),
        F.count(F.lit(1)).alias("_rows"),
    )
    predicted_at = _timestamp_of(records.schema["timestamp"].dataType, F.col("timestamp"))
    keyed = records.filter(F.col("request_id").isNotNull()).withColumn("_predicted_at", predicted_at)
    if canary is not None:
        keyed = keyed.withColumn("_canary", canary)
    seconds = grace.total_seconds()
    late = F.coalesce(
        (F.col("_labeled_at").cast("double") - F.col("_predicted_at").cast("double")) > F.lit(seconds), F.lit(False)
    )
    ids = keyed.select("request_id", "_predicted_at", *(["_canary"] if canary is not None else []))
    counted = latest.join(ids, "request_id", "left").withColumn("_late", late)
    # Every window record has a timestamp (the window filter needs one): a null one here is no record.
    matched_id = F.col("_predicted_at").isNotNull()
    aggs = [
        F.sum("_rows").alias("total"),
        F.count(F.lit(1)).alias("ids"),
        F.count(F.when(matched_id, 1)).alias("matched_ids"),
        F.count(F.when(matched_id & F.col("_late"), 1)).alias("late"),
    ]
    if canary is not None:
        aggs.append(F.count(F.when(matched_id & ~F.col("_late") & F.col("_canary"), 1)).alias("canary"))
    try:
        row = counted.agg(*aggs).collect()[0]
    except Exception as exc:
        raise DataError(uri, f"cannot read: {readers.one_line(exc)[:300]}") from None
    total = int(row["total"] or 0)
    if total == 0:
        raise DataError(uri, "no labels (expected rows with request_id and label)")
    late_n = int(row["late"])
    summary: dict[str, Any] = {
        "total": total,
        "matched": int(row["matched_ids"]) - late_n,
        "late": late_n,
        "unmatched": int(row["ids"]) - int(row["matched_ids"]),
        "grace_hours": seconds / 3600.0,
    }
    if canary is not None:
        summary["_canary"] = int(row["canary"])
    labelled = (
        keyed.drop("label")
        .join(latest, "request_id", "inner")
        .withColumn("_late", late)
        .filter(~F.col("_late"))
        .withColumn("label", F.col("_label").cast(label_type))
        .drop("_label", "_labeled_at", "_rows", "_late", "_predicted_at", "_canary")
    )
    return LabelJoin(records=labelled, summary=summary)
