"""Performance per time chunk on Spark: segment summaries of each window in time order (drift.chunk_summaries).

Per window, two jobs over the same plan, neither bringing a row to the driver:

1. sort the window's ``timestamp``, ``label`` and ``prediction`` by time (``orderBy``: range partitions,
   each sorted; ties and windows without timestamps keep the order Spark read the rows in, through
   ``monotonically_increasing_id``), and count each partition's rows (one row per partition collected);
2. the same sorted plan again, each partition told how many rows and labelled rows precede it, summarises
   the chunks it holds (:func:`drift.chunk_summaries.summarize_chunk_batches`); a ``groupBy`` merges them.

The second job reports the rows each partition saw; a partitioning that differs from the first job's
(it cannot, for the same input and plan) is an internal error, not a silently wrong chunk.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any

from drift import chunk_summaries as cs
from drift.summaries import KEY, ROW_DDL, SummarySpec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def _sorted_pairs(df: DataFrame) -> DataFrame:
    """``_ts``, ``label``, ``prediction`` of every row in time order, with the partition id in ``_pid``."""
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql import types as T  # noqa: N812

    mid = F.monotonically_increasing_id().alias("_mid")
    cols = [F.col("`label`").alias("label"), F.col("`prediction`").alias("prediction"), mid]
    order = []
    if "timestamp" in df.columns:
        dtype = df.schema["timestamp"].dataType
        ts = F.col("`timestamp`")
        # Strings as the local readers take them: ISO 8601 parsed to UTC instants (unparseable: null).
        stamp = ts if isinstance(dtype, (T.TimestampType, T.TimestampNTZType)) else ts.cast("timestamp")
        cols.append(stamp.alias(cs.TS))
        order.append(F.col(cs.TS).asc_nulls_first())
    frame = df.select(cols)
    return frame.orderBy(*order, F.col("_mid")).drop("_mid").withColumn(cs.PID, F.spark_partition_id())


def _summarize(frame: DataFrame, chunk_spec: cs.ChunkSpec, counts: list[Any], source: str) -> Any:
    """One pass of :func:`drift.chunk_summaries.summarize_chunk_batches` over the sorted window, merged."""
    from pyspark.sql import functions as F  # noqa: N812

    from drift.spark import _to_arrow

    partials = frame.mapInArrow(functools.partial(cs.summarize_chunk_batches, spec=chunk_spec), ROW_DDL)
    merged = partials.groupBy(*KEY).agg(
        F.sum("n").alias("n"),
        F.sum("x").alias("sx"),
        F.sum("y").alias("sy"),
        F.min("x").alias("mn"),
        F.max("x").alias("mx"),
    )
    table = _to_arrow(merged)
    stats, seen = cs.stats_from_merged(table, chunk_spec)
    expected = {pid: r for pid, r, _ in counts if r}
    if seen != expected:
        raise RuntimeError(f"{source}: Spark partitioned the sorted window differently in two jobs of one plan")
    return table, stats


def window_chunks(
    df: DataFrame, spec: SummarySpec, metric: str, size_of: Any, source: str, *, cfg: Any = None
) -> cs.ChunkedWindow:
    """Segment summaries of one window; ``size_of(pairs)`` gives its chunk rows (None: the window only).

    With ``cfg`` (the current window), ADWIN runs on its error blocks and the segments after the changes
    where the error rose are summarised by one more pass: ``extra`` holds ``changes`` and ``starts``.
    """
    from drift.spark import _to_arrow

    frame = _sorted_pairs(df)
    counted = _to_arrow(frame.mapInArrow(cs.count_batches, cs.COUNT_DDL)).to_pydict()
    counts = list(zip(counted["pid"], counted["rows"], counted["pairs"], strict=True))
    rows, pairs, labelled = sum(counted["rows"]), sum(counted["pairs"]), sum(counted["labelled"])
    size = size_of(pairs)
    chunk_spec = cs.ChunkSpec(
        kinds={"label": spec.kinds["label"], "prediction": spec.kinds["prediction"]},
        metric=metric,
        segments=cs.segments_of(pairs, size),
        offsets=cs.offsets_of(counts),
        edges=tuple(spec.edges["prediction"]) if "prediction" in spec.edges else None,
        block=cs.block_rows(pairs) if cfg is not None and cfg.streaming_metric in ("auto", "error") else 0,
    )
    table, stats = _summarize(frame, chunk_spec, counts, source)
    out = cs.ChunkedWindow(stats=stats, rows=rows, pairs=pairs, labelled=labelled, chunk_size=size)
    if chunk_spec.block:
        raw = cs.changes_of(cs.error_blocks(table, chunk_spec.block), metric, cfg.streaming_delta, pairs)
        if raw:
            again = dataclasses.replace(chunk_spec, segments=cs.change_segments(raw, pairs), block=0)
            out.stats.update(_summarize(frame, again, counts, source)[1])
        out.extra = {
            "changes": cs.change_points(raw, out.stats),
            "starts": [c.start for c in raw if c.mean_after > c.mean_before],
        }
    return out


def chunked_performance(
    reference: DataFrame, current: DataFrame, spec: SummarySpec, whole: Any, cfg: Any, names: tuple[str, str]
) -> tuple[Any, list[Any]]:
    """The chunked performance result replacing the whole-window one ``whole`` (same task and metric).

    Returns ``(result, change points of the error)``; ``whole`` unchanged when the rule has nothing more
    to say (metric undefined on a window).
    """
    from drift import performance as perf

    settings = cs.settings_of(cfg)
    task = perf.Task(whole.task, whole.metric, "1" if whole.metric == "auc" else None)
    cur = window_chunks(
        current, spec, whole.metric, lambda n: cs.chunk_sizes(whole.n_reference, n, settings)[1], names[1], cfg=cfg
    )
    ref = window_chunks(reference, spec, whole.metric, lambda n: cs.chunk_sizes(n, cur.pairs, settings)[0], names[0])
    starts = cur.extra.get("starts", [])
    ev = cs.evaluate_chunks(ref, cur, task, settings, starts)
    if ev is None:
        return whole, []
    return cs.performance_result(ev, ref, cur, cfg, starts), cur.extra.get("changes", [])
