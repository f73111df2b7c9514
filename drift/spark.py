"""`drift check` on Apache Spark: only per-column summaries leave the cluster.

Entry points:

* ``python -m drift check --engine spark ...``: the CLI, on the active SparkSession or a new one (under
  ``spark-submit`` that one carries the cluster's settings; plain ``python`` starts Spark locally).
* ``spark-submit [--py-files inferops-drift.zip] drift/spark.py check --reference REF --current CUR
  --out URI``: the same arguments; ``--out`` may be any URI the cluster's Hadoop file systems write
  (``s3://`` on EMR, ``gs://`` on Dataproc, ``abfss://``/``dbfs:/`` on Databricks). docs/drift-spark.md.
* From a notebook with an existing session: ``report = drift.spark.check(spark, REF, CUR)``, or
  :func:`check_frames` on DataFrames already loaded (any source Spark reads, any preparation).

What runs where (three jobs; none brings a row to the driver):

1. Bin edges from the reference: ``percentile_approx`` over a Bernoulli sample of about
   :data:`DEFAULT_SAMPLE_ROWS` rows (all rows when fewer) at the quantiles ``k / 1000``: the bins of
   :class:`drift.sketch.NumericSketch`, whose KS and Wasserstein error bounds (docs/drift.md, "Binned path")
   hold for any edges, since they are computed from the bin masses actually counted.
2. and 3. Per window, ``mapInArrow`` runs :func:`drift.summaries.summarize_batches` on each partition
   (bin counts, exact category counts, moments, missing values, label/prediction summaries) and a
   ``groupBy().agg()`` adds the partial rows up by key. The driver collects the merged rows: their
   number depends on columns, bins and categories, not on rows or partitions.

Detection and the report are the local engine's pure code (:func:`drift.summaries.detect_from_summaries`).

Envelopes (capture layouts): ``read_logs(..., unwrap=fn)`` applies ``fn(DataFrame) -> DataFrame`` to
what Spark read, before anything else looks at it; :func:`register_unwrap` names such functions.
"""

from __future__ import annotations

import functools
import os
import re
import sys

if __name__ == "__main__":  # pragma: no cover - spark-submit's main file
    # Python puts this file's folder (drift/) first on the path; its modules would shadow top-level ones.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from drift import readers
from drift.readers import DataError, one_line
from drift.summaries import (
    KEY,
    ROW_DDL,
    SummarySpec,
    WindowSummary,
    detect_from_summaries,
    summarize_batches,
    window_from_merged,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: Rows of the reference sampled for the bin edges (the local chunked mode uses its first 1,048,576 rows).
DEFAULT_SAMPLE_ROWS = 1 << 20
#: ``percentile_approx`` accuracy: rank error at most (sample rows) / accuracy, about 10 rows of 1M.
DEFAULT_ACCURACY = 100_000
SAMPLE_SEED = 2026

#: Settings of the sessions this module creates (tests, benchmark, CLI outside spark-submit). A session
#: passed in or already active is used as it is.
LOCAL_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    # Larger Arrow batches: fewer per-batch numpy calls in the summarising Python workers.
    "spark.sql.execution.arrow.maxRecordsPerBatch": "65536",
    "spark.sql.session.timeZone": "UTC",
}

Unwrap = Callable[["DataFrame"], "DataFrame"]
#: Envelope unwrappers by layout name (capture layouts register theirs here).
UNWRAPPERS: dict[str, Unwrap] = {}


def register_unwrap(name: str, fn: Unwrap) -> None:
    """Register an envelope unwrapper (a function from the DataFrame Spark read to the record DataFrame)."""
    UNWRAPPERS[name] = fn


def _pyspark() -> Any:
    try:
        import pyspark.sql
    except ImportError:
        raise DataError(
            "--engine spark", "needs the optional package pyspark (pip install -r requirements-spark.txt)"
        ) from None
    return pyspark.sql


def local_session(
    master: str = "local[2]", app_name: str = "inferops-drift", conf: Mapping[str, str] | None = None
) -> SparkSession:
    """A SparkSession in local mode with :data:`LOCAL_CONF` (UI off, few shuffle partitions) plus ``conf``."""
    _local_workers()
    builder = _pyspark().SparkSession.builder.master(master).appName(app_name)
    for key, value in {**LOCAL_CONF, **(conf or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _local_workers() -> None:
    """Python workers of a Spark this process starts run this interpreter (its numpy, pyarrow, drift).

    Under spark-submit (which passes ``PYSPARK_GATEWAY_PORT``) the cluster's settings decide.
    """
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def _session() -> tuple[SparkSession, bool]:
    """The active session, else a new one (``spark-submit``'s settings, else local); whether it is new."""
    sql = _pyspark()
    active = sql.SparkSession.getActiveSession()
    if active is not None:
        return active, False
    _local_workers()
    try:
        builder = sql.SparkSession.builder.appName("inferops-drift")
        for key, value in LOCAL_CONF.items():
            builder = builder.config(key, value)
        return builder.getOrCreate(), True
    except Exception as exc:  # pyspark raises its own runtime errors when the JVM cannot start
        raise DataError("--engine spark", f"cannot start Spark (Java 17+ installed?): {one_line(exc)[:300]}") from None


def _col(name: str) -> Any:
    from pyspark.sql import functions as F  # noqa: N812 (Spark's convention)

    return F.col("`" + name.replace("`", "``") + "`")


# ---- reading ----------------------------------------------------------------------------------------------


def _format_of(uri: str, fmt: str | None) -> str:
    # A directory or glob of files: its last element with a suffix tells (".../dt=2026-01-12/*.jsonl.gz").
    return readers.infer_format(uri.rstrip("/"), fmt)


def read_logs(
    spark: SparkSession,
    uri: str,
    fmt: str | None = None,
    *,
    schema: Any = None,
    unwrap: Unwrap | None = None,
    infer: bool = True,
) -> DataFrame:
    """Read inference logs (a file, a directory, a glob; any URI scheme the cluster reads) as a DataFrame.

    JSON Lines and CSV are read with ``mode=FAILFAST`` (a record that does not parse is an error, not a
    row of nulls). CSV has a header; only the empty field is null, so ``NaN`` is a number and reported
    (as by the local readers). ``schema`` fixes the types (JSON Lines); ``infer=False`` reads CSV fields
    as strings (the summarising workers parse numbers and name the first value that is not one).
    ``unwrap`` turns an envelope DataFrame into the record DataFrame.
    """
    found = _format_of(uri, fmt)
    hadoop = readers.hadoop_uri(uri)  # az:// (the project's form) as Hadoop's ABFS driver names it
    reader = spark.read
    if found == "csv":
        reader = reader.option("header", "true").option("mode", "FAILFAST").option("nullValue", "")
        reader = reader.option("inferSchema", "true" if infer and schema is None else "false")
    elif found == "jsonl":
        reader = reader.option("mode", "FAILFAST")
    if schema is not None and found == "jsonl":
        reader = reader.schema(schema)
    try:
        df = reader.format("json" if found == "jsonl" else found).load(hadoop)
        if found == "jsonl" and schema is None and unwrap is None:
            df = _in_record_order(spark, df, hadoop)
        if unwrap is not None:
            df = unwrap(df)
        df.schema  # noqa: B018 (resolves the plan: a missing path or bad file fails here, named)
    except Exception as exc:
        raise _read_error(uri, found, exc) from None
    return df


def _in_record_order(spark: SparkSession, df: DataFrame, uri: str) -> DataFrame:
    """Columns in the order of the first record's keys (Spark's JSON inference sorts them by name).

    The report lists features in column order, as the local engine does; one line is read for it.
    """
    import json

    first = spark.read.text(uri).limit(1).collect()
    try:
        keys = list(json.loads(first[0][0])) if first else []
    except (ValueError, TypeError):
        return df
    names = df.columns
    ordered = [k for k in keys if k in names] + [n for n in names if n not in keys]
    return df.select([_col(n) for n in ordered])


def _read_error(uri: str, fmt: str, exc: Exception) -> Exception:
    text = one_line(exc)
    if "PATH_NOT_FOUND" in text or "Path does not exist" in text:
        return DataError(uri, "no such file")
    if "UNABLE_TO_INFER_SCHEMA" in text or "is empty" in text:
        return DataError(uri, "empty file")
    if type(exc).__name__ in ("AnalysisException", "SparkRuntimeException", "IllegalArgumentException"):
        return DataError(uri, f"cannot read as {fmt}: {text[:300]}")
    return exc


def _kind_of(dtype: Any) -> str | None:
    from pyspark.sql import types as T  # noqa: N812

    if isinstance(dtype, T.NumericType):
        return "numeric"
    if isinstance(dtype, (T.StringType, T.BooleanType, T.CharType, T.VarcharType)):
        return "categorical"
    if isinstance(dtype, T.NullType):
        return "null"
    return None


def plan_frame(
    schema: Any, source: str, *, columns: Sequence[str] | None = None, categorical: Iterable[str] = ()
) -> readers.ColumnPlan:
    """Feature columns and kinds from a Spark schema, by the rules (and messages) of ``readers.plan_columns``."""
    present = schema.fieldNames()
    forced = set(categorical)
    unknown = sorted((set(columns or ()) | forced) - set(present))
    if unknown:
        raise DataError(source, f"missing column(s) {', '.join(map(repr, unknown))}")
    wanted = list(columns) if columns else [c for c in present if c not in readers.NON_FEATURE_COLUMNS]
    kinds: dict[str, Any] = {}
    for name in wanted:
        dtype = schema[name].dataType
        kind = _kind_of(dtype)
        if kind == "null":
            raise DataError(source, f"column {name!r}: all values are null")
        if name in forced:
            kind = "categorical"
        if kind is None:
            raise DataError(
                source, f"column {name!r}: unsupported type {dtype.simpleString()} (expected numbers or strings)"
            )
        kinds[name] = kind
    if not kinds:
        raise DataError(source, "no feature columns")
    return readers.ColumnPlan(kinds=kinds, timestamp=readers.TIMESTAMP_COLUMN in present)


def current_json_schema(reference_schema: Any, plan: readers.ColumnPlan) -> Any:
    """The schema to read a JSON Lines current window with: the planned columns, numbers as double.

    Decoding the current window with the reference's types catches a text value in a numeric column
    wherever it sits (FAILFAST), as the local readers do.
    """
    from pyspark.sql import types as T  # noqa: N812

    fields = []
    for name, kind in plan.kinds.items():
        dtype = reference_schema[name].dataType
        fields.append(T.StructField(name, T.DoubleType() if kind == "numeric" else dtype, True))
    return T.StructType(fields)


# ---- summaries --------------------------------------------------------------------------------------------


def reference_edges(
    df: DataFrame,
    plan: readers.ColumnPlan,
    source: str = "reference",
    *,
    bins: int = 1000,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    accuracy: int = DEFAULT_ACCURACY,
    seed: int = SAMPLE_SEED,
) -> dict[str, tuple[float, ...]]:
    """Bin edges per numeric column (``label`` excepted): reference quantiles ``k / bins`` from a sample."""
    from pyspark.sql import functions as F  # noqa: N812

    numeric = [name for name, kind in plan.kinds.items() if kind == "numeric" and name != "label"]
    if not numeric:
        return {}
    probs = [k / bins for k in range(1, bins)]

    def quantiles(frame: DataFrame, names: list[str]) -> dict[str, Any]:
        exprs = []
        for i, name in enumerate(names):
            x = _col(name).cast("double")
            finite = F.when(~F.isnan(x) & (F.abs(x) < F.lit(float("inf"))), x)
            exprs.append(F.percentile_approx(finite, probs, accuracy).alias(f"q{i}"))
        row = frame.agg(*exprs).collect()[0]
        return {name: row[f"q{i}"] for i, name in enumerate(names)}

    total = df.count()  # Parquet: from the footers
    fraction = min(1.0, sample_rows / total) if total else 1.0
    sample = df.select([_col(n) for n in numeric])
    found = quantiles(sample if fraction >= 1.0 else sample.sample(False, fraction, seed), numeric)
    retry = [name for name, q in found.items() if not q]
    if retry and fraction < 1.0:  # a sparse column the sample missed: its quantiles from every row
        found.update(quantiles(df, retry))
    edges: dict[str, tuple[float, ...]] = {}
    for name in numeric:
        if not found[name]:
            raise DataError(source, f"column {name!r}: all values are null")
        edges[name] = tuple(float(v) for v in found[name])
    return edges


def summary_spec(plan: readers.ColumnPlan, edges: Mapping[str, tuple[float, ...]]) -> SummarySpec:
    """The spec every partition summarises by; moments are centred on each column's median edge."""
    shifts = {name: float(e[len(e) // 2]) for name, e in edges.items() if e}
    return SummarySpec(kinds=dict(plan.kinds), edges=dict(edges), shifts=shifts)


def _to_arrow(df: DataFrame) -> Any:
    import pyarrow as pa

    if hasattr(df, "toArrow"):  # pyspark >= 4.0
        return df.toArrow()
    rows = df.collect()
    names = df.columns
    return pa.table({name: [r[name] for r in rows] for name in names})


_MISSING = re.compile(r"PATH_NOT_FOUND|Path does not exist|FileNotFoundException")
_FAILFAST = re.compile(r"Malformed records are detected in (?:record|schema inference) parsing")


def summarize_frame(df: DataFrame, spec: SummarySpec, source: str) -> WindowSummary:
    """Summaries of one window: per-partition partial rows, merged by Spark, collected (bounded) and built.

    One action, DataFrame API only (no RDDs, no caching), so Spark Connect sessions (Databricks
    serverless, shared clusters) run it too. The collected rows are bounded by columns x bins plus the
    categories; distinct label/prediction values add at most 20 per partition, and only when a
    partition has at most 20 (a classification task).
    """
    from pyspark.sql import functions as F  # noqa: N812

    missing = [c for c in spec.kinds if c not in df.columns]
    if missing:
        raise DataError(source, f"missing column(s) {', '.join(map(repr, missing))} present in the reference")
    frame = df.select([_col(c) for c in spec.kinds])
    partials = frame.mapInArrow(functools.partial(summarize_batches, spec=spec), ROW_DDL)
    merged = partials.groupBy(*KEY).agg(
        F.sum("n").alias("n"),
        F.sum("x").alias("sx"),
        F.sum("y").alias("sy"),
        F.min("x").alias("mn"),
        F.max("x").alias("mx"),
    )
    try:
        table = _to_arrow(merged)
    except Exception as exc:
        text = one_line(exc)
        if _FAILFAST.search(text):
            raise DataError(source, "a record does not parse with the reference's column types") from None
        if _MISSING.search(text):  # a path read with a given schema is only listed when the job runs
            raise DataError(source, "no such file") from None
        raise
    return window_from_merged(table, spec)


def check_frames(
    reference: DataFrame,
    current: DataFrame,
    *,
    config: Any = None,
    columns: Sequence[str] | None = None,
    categorical: Iterable[str] = (),
    reference_name: str = "reference",
    current_name: str = "current",
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
) -> tuple[Any, dict[str, WindowSummary]]:
    """Drift report of two DataFrames of inference records, and the two windows' summaries.

    ``config`` is a :class:`drift.detect.DetectConfig`; a feature's ``kind: categorical`` there is
    honoured like ``categorical``. Raises :class:`drift.readers.DataError` for bad data (one line).
    """
    from drift.detect import DetectConfig

    cfg = config or DetectConfig()
    forced = list(categorical) + [n for n, ov in cfg.features.items() if ov.kind == "categorical"]
    plan = plan_frame(reference.schema, reference_name, columns=columns, categorical=forced)
    edges = reference_edges(reference, plan, reference_name, sample_rows=sample_rows)
    spec = summary_spec(plan, edges)
    ref = summarize_frame(reference, spec, reference_name)
    ref.check(reference_name, plan.kinds)
    cur = summarize_frame(current, spec, current_name)
    cur.check(current_name, plan.kinds)
    report = _per_chunk(
        detect_from_summaries(ref, cur, cfg), reference, current, spec, cfg, reference_name, current_name
    )
    return report, {"reference": ref, "current": cur}


def _per_chunk(report: Any, reference: DataFrame, current: DataFrame, spec: SummarySpec, cfg: Any, *names: str) -> Any:
    """The report with performance judged per time chunk (:mod:`drift.spark_chunks`), as the local engine does."""
    whole = report.performance
    if whole is None or whole.metric not in ("accuracy", "auc", "mae"):
        return report
    from drift.detect import assemble_report
    from drift.spark_chunks import chunked_performance

    perf, changes = chunked_performance(reference, current, spec, whole, cfg, (names[0], names[1]))
    out = assemble_report(
        report.features,
        report.prediction,
        perf,
        changes,
        cfg,
        report.n_reference,
        report.n_current,
        binned=True,
        data_quality=report.data_quality,
        notes=report.notes,
    )
    return out


def check(
    spark: SparkSession,
    reference: str,
    current: str,
    *,
    fmt: str | None = None,
    config: Any = None,
    columns: Sequence[str] | None = None,
    categorical: Iterable[str] = (),
    unwrap: Unwrap | None = None,
    reference_unwrap: Unwrap | None = None,
) -> tuple[Any, dict[str, WindowSummary]]:
    """Read both windows through Spark and compare them (see :func:`check_frames`).

    ``unwrap`` turns the current window's envelopes into records, ``reference_unwrap`` the reference's
    (a reference is often a plain training snapshot while the current window is captured traffic).
    """
    from drift.detect import DetectConfig

    cfg = config or DetectConfig()
    ref_df = read_logs(spark, reference, fmt, unwrap=reference_unwrap)
    forced = list(categorical) + [n for n, ov in cfg.features.items() if ov.kind == "categorical"]
    plan = plan_frame(ref_df.schema, reference, columns=columns, categorical=forced)
    cur_fmt = _format_of(current, fmt)
    if unwrap is None and cur_fmt == "jsonl":
        cur_df = read_logs(spark, current, fmt, schema=current_json_schema(ref_df.schema, plan))
    else:
        cur_df = read_logs(spark, current, fmt, unwrap=unwrap, infer=False)
    return check_frames(
        ref_df,
        cur_df,
        config=cfg,
        columns=columns,
        categorical=categorical,
        reference_name=reference,
        current_name=current,
    )


# ---- CLI ----------------------------------------------------------------------------------------------


def run_spark_check(
    args: Any, config: Any, *, unwrap: Unwrap | None = None, reference_unwrap: Unwrap | None = None
) -> tuple[Any, dict[str, Any]]:
    """``drift check --engine spark``: the report and the plot data (binned, as the chunked mode's)."""
    from drift.cli import _plot_bins

    spark, created = _session()
    try:
        if getattr(args, "capture_window", None) is not None:  # --capture: drift.spark_capture
            from drift import spark_capture

            report, windows = spark_capture.check(spark, args, config)
        else:
            report, windows = check(
                spark,
                args.reference,
                args.current,
                fmt=args.input_format,
                config=config,
                columns=args.columns,
                categorical=args.categorical,
                unwrap=unwrap,
                reference_unwrap=reference_unwrap,
            )
    finally:
        if created:
            spark.stop()
    ref, cur = windows["reference"], windows["current"]
    return report, {"binned": {name: _plot_bins(ref.sketches[name], cur.sketches[name]) for name in ref.sketches}}


def write_uri(spark: SparkSession, uri: str, text: str) -> None:
    """Write ``text`` to ``uri`` through the cluster's Hadoop file systems (S3, GCS, ABFS, DBFS, HDFS).

    Object stores make the object visible only when the stream closes, so readers never see half a report.
    """
    jvm = spark.sparkContext._jvm
    if jvm is None:
        raise RuntimeError("write_uri needs a classic SparkSession (with a JVM gateway), not Spark Connect")
    path = jvm.org.apache.hadoop.fs.Path(readers.hadoop_uri(uri))
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``spark-submit drift/spark.py check ARGS``: ``drift check --engine spark ARGS``; ``--out`` may be a URI."""
    import tempfile

    from drift import cli

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "check":
        args = args[1:]
    remote = None
    if "--out" in args:
        i = args.index("--out") + 1
        if i < len(args) and "://" in args[i] and not args[i].startswith("file://"):
            remote = args[i]
            try:
                readers.hadoop_uri(remote)  # before the check runs: an abfs:// URI without its account
            except DataError as exc:
                sys.stderr.write(f"drift: error: --out: {one_line(exc)}\n")
                return cli.EXIT_USAGE
            fd, local = tempfile.mkstemp(prefix="drift-report-")
            os.close(fd)
            args[i] = local
    spark, created = _session() if remote else (None, False)
    try:
        code = cli.main(["check", "--engine", "spark", *args])
        if remote and spark is not None and code in (cli.EXIT_OK, cli.EXIT_DRIFT):
            with open(args[args.index("--out") + 1], encoding="utf-8") as handle:
                write_uri(spark, remote, handle.read())
        return code
    finally:
        if created and spark is not None:
            spark.stop()


if __name__ == "__main__":
    # Run as spark-submit's main file: import the package's module, so that the functions shipped to the
    # executors are drift.spark's and drift.summaries' (importable there from --py-files), not __main__'s.
    from drift.spark import main as _main

    sys.exit(_main())
