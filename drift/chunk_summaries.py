"""Performance per time chunk from mergeable summaries: the chunked rule of :mod:`drift.performance` on a cluster.

The local engine (:func:`drift.performance.evaluate`) cuts a window's labelled rows, in time order, into
chunks and compares each chunk's metric with the reference, with a threshold from the spread of the
reference's own chunks. A distributed engine cannot hold the rows, but every statistic the rule's
metrics need is a sum over the chunk's rows, so each partition can summarise the part of every chunk it
holds and the parts add up:

* accuracy: rows and correct predictions (Fisher's exact test: exact);
* MAE: rows, sum and sum of squares of the absolute error (Welch's t-test: exact up to rounding);
* AUC: per-class counts of the score on the reference's score cells (:func:`drift.summaries.score_cells`),
  so each chunk's AUC is within :func:`drift.summaries.auc_error_bound` of the exact one, as for the
  whole window;
* where each chunk starts and ends: the smallest and largest window position (and its timestamp).

A partition must know where its rows sit in the window's time order: the engine sorts the window (range
partitions, each sorted), counts the rows of each partition (:func:`count_batches`), and passes every
partition its offset (:class:`ChunkSpec`). :func:`summarize_chunk_batches` then emits partial rows in
:data:`drift.summaries.ROW_SCHEMA` (``col`` is the segment's name), merged by the same group-by as the
window summaries; their number depends on segments, score cells and partitions, never on rows.
:func:`evaluate_chunks` applies the rule with the shared helpers of :mod:`drift.performance`
(:func:`~drift.performance.chunk_layout`, :func:`~drift.performance.reference_chunk_size`,
:func:`~drift.performance.chunk_spread`, :func:`~drift.performance.threshold_of`), so the decisions are
the local engine's.

Change points: ADWIN (:func:`drift.streaming.adwin`) runs on the driver over the error stream summarised
in blocks of ``ceil(n / MAX_BLOCKS)`` labelled rows (:func:`error_blocks`): the block's mean error, the
per-row error of :func:`drift.performance.error_stream` (0/1 misclassification, ``|y - score|`` for AUC,
``|y - prediction|`` for MAE). Up to :data:`MAX_BLOCKS` labelled rows a block is one row, so the stream,
the change points and the segments after them are the local engine's; above, ADWIN sees block means
and a change is placed at a block's first row (at most ``block - 1`` rows late). One more pass then
summarises the rows where changes start and are detected (their window positions and times) and the
segments after rising changes (:func:`change_segments`). Blocks are one partial row each, so the
driver collects at most :data:`MAX_BLOCKS` of them whatever the rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from drift import performance as perf
from drift.summaries import _correct, _floats, _Rows, _strings, auc_from_cells, score_cells

#: Columns the sorted window carries into the partition functions (besides ``label`` and ``prediction``).
PID, TS = "_pid", "_ts"
WINDOW = "w"
METRICS = ("accuracy", "auc", "mae")
COUNT_DDL = "pid long, rows long, pairs long, labelled long"
#: Blocks of the error stream collected for ADWIN: about 1.5 MB on the driver whatever the rows.
MAX_BLOCKS = 1 << 16


def block_rows(n: int) -> int:
    """Labelled rows per error block of a window of ``n`` labelled rows (1 up to :data:`MAX_BLOCKS`)."""
    return max(1, -(-n // MAX_BLOCKS))


def _errors(y: np.ndarray, p: np.ndarray, metric: str) -> np.ndarray:
    """The local engine's per-row error stream (:func:`drift.performance.error_stream`) for ``metric``."""
    if metric == "accuracy":
        return (~_correct(y, p)).astype(np.float64)
    if metric == "auc":  # scores in [0, 1] (the summaries' rule for AUC), positives are label 1
        return np.abs((y == 1).astype(np.float64) - p)
    return np.abs(y - p)


def chunk_name(i: int) -> str:
    """The segment name of chunk ``i``."""
    return f"c{i}"


@dataclass(frozen=True)
class ChunkSpec:
    """What every partition needs: the pair columns' kinds, the metric, the segments, its offset.

    ``segments`` are ``(name, start, end)`` in positions among the window's labelled rows (end
    exclusive); ``offsets`` maps a partition id to the window rows and labelled rows before it.
    """

    kinds: Mapping[str, str]
    metric: str
    segments: tuple[tuple[str, int, int], ...]
    offsets: Mapping[int, tuple[int, int]]
    edges: tuple[float, ...] | None = None  # the prediction's bin edges (AUC)
    #: labelled rows per block of the error stream (ADWIN), 0 for none: blocks of one row are the local stream
    block: int = 0


@dataclass
class ChunkStats:
    """Merged summaries of one segment of a window."""

    n: int = 0
    hits: int = 0
    err_n: int = 0
    err_s1: float = 0.0
    err_s2: float = 0.0
    cells_pos: np.ndarray | None = None
    cells_neg: np.ndarray | None = None
    first: int | None = None  # window position of its first and last labelled row
    last: int | None = None
    first_ts: str | None = None
    last_ts: str | None = None

    @property
    def err_mean(self) -> float:
        """Mean absolute error."""
        return self.err_s1 / self.err_n if self.err_n else 0.0

    @property
    def err_m2(self) -> float:
        """Sum of squared deviations of the absolute error (rounding dust of a constant error is 0)."""
        if not self.err_n:
            return 0.0
        m2 = self.err_s2 - self.err_s1 * self.err_s1 / self.err_n
        return 0.0 if m2 <= 1e-12 * max(self.err_s2, 1e-300) else m2


# ---- in each partition ------------------------------------------------------------------------------------


def _pair_values(batch: pa.RecordBatch, kinds: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(valid, label, prediction)``: the rows with both, and their values (numbers or strings)."""
    names = batch.schema.names
    y_arr, p_arr = batch.column(names.index("label")), batch.column(names.index("prediction"))
    valid = np.asarray(pc.and_(pc.is_valid(y_arr), pc.is_valid(p_arr)).to_numpy(zero_copy_only=False), dtype=bool)
    if not valid.all():
        mask = pa.array(valid)
        y_arr, p_arr = y_arr.filter(mask), p_arr.filter(mask)

    def values(arr: pa.Array, kind: str) -> np.ndarray:
        if kind == "numeric":
            got, _ = _floats(arr)
            if got is None:  # reported by the window summaries as a bad value of the column
                raise ValueError("non-numeric label or prediction")
            return got
        return _strings(arr).cast(pa.string()).to_numpy(zero_copy_only=False)

    return valid, values(y_arr, kinds["label"]), values(p_arr, kinds["prediction"])


def _stamps(batch: pa.RecordBatch) -> np.ndarray | None:
    """The sort key as the local engine prints it (``datetime64[ns]`` ISO text), or None without one."""
    if TS not in batch.schema.names:
        return None
    arr = batch.column(batch.schema.names.index(TS))
    if pa.types.is_timestamp(arr.type):
        arr = pc.cast(arr, pa.timestamp("ns", arr.type.tz)).cast(pa.timestamp("ns"))
        ns = arr.to_numpy(zero_copy_only=False)
        text: np.ndarray = np.asarray(np.datetime_as_string(ns), dtype=object)
        text[np.isnat(ns)] = None
        return text
    return np.asarray(arr.cast(pa.string()).to_pylist(), dtype=object)


def count_batches(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Rows, rows with label and prediction, and labelled rows of one partition (``mapInArrow``, COUNT_DDL)."""
    pid, rows, pairs, labelled = None, 0, 0, 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        names = batch.schema.names
        pid = int(batch.column(names.index(PID))[0].as_py())
        y, p = batch.column(names.index("label")), batch.column(names.index("prediction"))
        rows += batch.num_rows
        labelled += batch.num_rows - y.null_count
        pairs += int(pc.sum(pc.and_(pc.is_valid(y), pc.is_valid(p)).cast(pa.int64())).as_py() or 0)
    if pid is not None:
        yield pa.RecordBatch.from_pydict(
            {"pid": [pid], "rows": [rows], "pairs": [pairs], "labelled": [labelled]},
            schema=pa.schema([(k, pa.int64()) for k in ("pid", "rows", "pairs", "labelled")]),
        )


class _Acc:
    def __init__(self, cells: int) -> None:
        self.stats = ChunkStats()
        if cells:
            self.stats.cells_pos = np.zeros(cells, dtype=np.int64)
            self.stats.cells_neg = np.zeros(cells, dtype=np.int64)


def summarize_chunk_batches(batches: Iterable[pa.RecordBatch], spec: ChunkSpec) -> Iterator[pa.RecordBatch]:
    """The partition function: its sorted rows in, partial rows of every segment it touches out.

    The batches must be one partition of the window sorted in time order, with the partition id in
    :data:`PID`; the pair positions of a batch are one contiguous range, so each segment is a slice.
    """
    edges = np.unique(np.asarray(spec.edges, dtype=np.float64)) if spec.edges else None
    n_cells = 2 * edges.size + 1 if (edges is not None and spec.metric == "auc") else 0
    accs: dict[str, _Acc] = {}
    blocks = _Blocks() if spec.block else None
    pid: int | None = None
    row_base = pair_base = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        if pid is None:
            pid = int(batch.column(batch.schema.names.index(PID))[0].as_py())
            row_base, pair_base = spec.offsets[pid]
        valid, y, p = _pair_values(batch, spec.kinds)
        positions = row_base + np.flatnonzero(valid)  # window positions of the labelled rows
        stamps = _stamps(batch)
        stamps = None if stamps is None else stamps[valid]
        lo, hi = pair_base, pair_base + int(y.size)
        numeric = spec.kinds["label"] == "numeric" and spec.kinds["prediction"] == "numeric"
        for name, a, b in spec.segments:
            s0, s1 = max(a, lo) - lo, min(b, hi) - lo
            if s1 <= s0:
                continue
            acc = accs.setdefault(name, _Acc(n_cells))
            st = acc.stats
            ys, ps = y[s0:s1], p[s0:s1]
            st.n += int(ys.size)
            st.hits += int(np.count_nonzero(_correct(ys, ps)))
            if numeric and spec.metric == "mae":
                err = np.abs(ys - ps)
                st.err_n += int(err.size)
                st.err_s1 += float(err.sum())
                st.err_s2 += float(np.dot(err, err))
            if n_cells and numeric:
                assert edges is not None and st.cells_pos is not None and st.cells_neg is not None
                cells = score_cells(edges, ps)
                st.cells_pos += np.bincount(cells[ys == 1], minlength=n_cells)
                st.cells_neg += np.bincount(cells[ys == 0], minlength=n_cells)
            if st.first is None:
                st.first = int(positions[s0])
                st.first_ts = None if stamps is None else stamps[s0]
            st.last = int(positions[s1 - 1])
            st.last_ts = None if stamps is None else stamps[s1 - 1]
        if blocks is not None and y.size:
            blocks.add((np.arange(lo, hi) // spec.block), _errors(y, p, spec.metric))
        row_base += batch.num_rows
        pair_base = hi
    if pid is None:
        return
    out = _Rows()
    out.put("", "partition", idx=pid, n=row_base - spec.offsets[pid][0])
    for name, acc in accs.items():
        st = acc.stats
        out.put(name, "n", n=st.n)
        out.put(name, "hits", n=st.hits)
        if st.err_n:
            out.many(name, "err", [0], [None], [st.err_n], [st.err_s1], [st.err_s2])
        if st.cells_pos is not None and st.cells_neg is not None:
            out.nonzero(name, "cell_pos", st.cells_pos)
            out.nonzero(name, "cell_neg", st.cells_neg)
        out.put(name, "first", idx=int(st.first or 0), key=st.first_ts)
        out.put(name, "last", idx=int(st.last or 0), key=st.last_ts)
    if blocks is not None:
        blocks.emit(out)
    yield out.batch()


class _Blocks:
    """Per error block of one partition: labelled rows and the sum of their errors."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, block: np.ndarray, err: np.ndarray) -> None:
        ids, counts = np.unique(block, return_counts=True)
        sums = np.bincount(block - ids[0], weights=err)[ids - ids[0]]
        self.parts.append((ids, counts, sums))

    def emit(self, out: _Rows) -> None:
        for ids, counts, sums in self.parts:
            none = [None] * ids.size
            out.many("", "block", ids.tolist(), none, counts.tolist(), sums.tolist(), none)


# ---- on the driver ------------------------------------------------------------------------------------


def stats_from_merged(merged: pa.Table, spec: ChunkSpec) -> tuple[dict[str, ChunkStats], dict[int, int]]:
    """Segment summaries from the merged partial rows, and the rows each partition summarised."""
    data = merged.to_pydict()
    edges = np.unique(np.asarray(spec.edges, dtype=np.float64)) if spec.edges else None
    n_cells = 2 * edges.size + 1 if (edges is not None and spec.metric == "auc") else 0
    stats: dict[str, ChunkStats] = {}
    partitions: dict[int, int] = {}
    for i, (col, part) in enumerate(zip(data["col"], data["part"], strict=True)):
        idx, n = int(data["idx"][i] or 0), int(data["n"][i] or 0)
        if col == "" and part == "partition":
            partitions[idx] = partitions.get(idx, 0) + n
            continue
        if col == "":
            continue  # error blocks: error_blocks()
        st = stats.get(col)
        if st is None:
            st = stats[col] = ChunkStats()
            if n_cells:
                st.cells_pos = np.zeros(n_cells, dtype=np.int64)
                st.cells_neg = np.zeros(n_cells, dtype=np.int64)
        if part == "n":
            st.n += n
        elif part == "hits":
            st.hits += n
        elif part == "err":
            st.err_n += n
            st.err_s1 += float(data["sx"][i])
            st.err_s2 += float(data["sy"][i])
        elif part in ("cell_pos", "cell_neg"):
            target = st.cells_pos if part == "cell_pos" else st.cells_neg
            assert target is not None
            target[idx] += n
        elif part == "first" and (st.first is None or idx < st.first):
            st.first, st.first_ts = idx, data["key"][i]
        elif part == "last" and (st.last is None or idx > st.last):
            st.last, st.last_ts = idx, data["key"][i]
    return stats, partitions


@dataclass
class ErrorBlocks:
    """The error stream in blocks of ``block`` labelled rows: rows and mean error per block."""

    block: int
    n: np.ndarray
    mean: np.ndarray


def error_blocks(merged: pa.Table, block: int) -> ErrorBlocks:
    """The blocks of :func:`summarize_chunk_batches` from its merged rows."""
    data = merged.to_pydict()
    found = [i for i, (c, p) in enumerate(zip(data["col"], data["part"], strict=True)) if c == "" and p == "block"]
    size = 1 + max((int(data["idx"][i]) for i in found), default=-1)
    n = np.zeros(size, dtype=np.int64)
    sums = np.zeros(size)
    for i in found:
        n[int(data["idx"][i])] += int(data["n"][i])
        sums[int(data["idx"][i])] += float(data["sx"][i])
    return ErrorBlocks(block, n, sums / np.maximum(n, 1))


@dataclass(frozen=True)
class RawChange:
    """An ADWIN alarm in positions among the labelled rows (start of the new regime, where detected)."""

    start: int
    detected: int
    mean_before: float
    mean_after: float


def changes_of(blocks: ErrorBlocks, metric: str, delta: float, pairs: int) -> list[RawChange]:
    """ADWIN on the blocks' mean error (the local engine's ``_error_change_points`` when blocks are rows)."""
    from drift.streaming import adwin

    value_range = None if metric == "mae" else (0.0, 1.0)
    out = []
    for ch in adwin(blocks.mean, delta=delta, value_range=value_range):
        detected = min(ch.detected * blocks.block + blocks.block - 1, pairs - 1)
        out.append(RawChange(ch.start * blocks.block, detected, ch.mean_before, ch.mean_after))
    return out


def point_name(i: int) -> str:
    """The one-row segment of labelled row ``i`` (where a change starts or is detected)."""
    return f"p{i}"


def change_segments(changes: Sequence[RawChange], pairs: int) -> tuple[tuple[str, int, int], ...]:
    """What the pass after ADWIN summarises: the rows where changes start and are detected, and the
    stretches after the rises (:func:`segments_after`)."""
    points = sorted({i for c in changes for i in (c.start, c.detected) if 0 <= i < pairs})
    rises = [c.start for c in changes if c.mean_after > c.mean_before]
    return (*((point_name(i), i, i + 1) for i in points), *segments_after(pairs, rises))


def change_points(changes: Sequence[RawChange], stats: Mapping[str, ChunkStats]) -> list[Any]:
    """The report's change points, their rows' window positions and times from the point segments."""
    from drift.model import ChangePoint

    out = []
    for c in changes:
        start, det = stats[point_name(c.start)], stats[point_name(c.detected)]
        out.append(
            ChangePoint(
                metric="error",
                index=int(start.first or 0),
                timestamp=start.first_ts,
                detected_index=int(det.first or 0),
                detected_timestamp=det.first_ts,
                mean_before=c.mean_before,
                mean_after=c.mean_after,
            )
        )
    return out


def after_name(start: int) -> str:
    """The segment name of the stretch after a change at labelled row ``start``."""
    return f"a{start}"


def segments_after(n: int, starts: Iterable[int]) -> tuple[tuple[str, int, int], ...]:
    """The stretches after each change the rule tests: ``[s, n)`` for ``0 < s <= n - 30``, sorted."""
    kept = sorted({int(s) for s in starts if 0 < s <= n - perf.MIN_SEGMENT_ROWS})
    return tuple((after_name(s), s, n) for s in kept)


def segments_of(n: int, size: int | None) -> tuple[tuple[str, int, int], ...]:
    """The whole window and its chunks of ``size`` labelled rows (none when ``size`` is None)."""
    chunks = [] if size is None else perf.chunk_bounds(n, size)
    return ((WINDOW, 0, n), *((chunk_name(i), a, b) for i, (a, b) in enumerate(chunks)))


@dataclass
class _Measured:
    value: float
    var: float
    stats: ChunkStats


def measure(st: ChunkStats, metric: str) -> _Measured | None:
    """The metric on one segment, or None when undefined there (no rows, one class only for AUC)."""
    if st.n == 0:
        return None
    if metric == "auc":
        if st.cells_pos is None or st.cells_neg is None or not st.cells_pos.any() or not st.cells_neg.any():
            return None
        auc, var = auc_from_cells(st.cells_pos, st.cells_neg)
        return _Measured(auc, var, st)
    if metric == "accuracy":
        return _Measured(st.hits / st.n, 0.0, st)
    return _Measured(st.err_mean, 0.0, st)


def p_worse(metric: str, ref: _Measured, cur: _Measured) -> float:
    """One-sided p-value for "the segment is worse than the reference": the local engine's tests."""
    if metric == "auc":
        se = math.sqrt(ref.var + cur.var)
        if se == 0.0:
            return 0.0 if cur.value < ref.value else 1.0
        return perf.normal_sf((ref.value - cur.value) / se)
    r, c = ref.stats, cur.stats
    if metric == "accuracy":
        return perf.fisher_greater(r.hits, r.n - r.hits, c.hits, c.n - c.hits)
    if r.err_n < 2 or c.err_n < 2 or (r.err_m2 == 0 and c.err_m2 == 0):
        return 0.0 if c.err_mean > r.err_mean else 1.0
    from scipy.special import stdtr

    va, vb = r.err_m2 / (r.err_n - 1) / r.err_n, c.err_m2 / (c.err_n - 1) / c.err_n
    se = math.sqrt(va + vb)
    t = (r.err_mean - c.err_mean) / se
    df = (va + vb) ** 2 / (va**2 / (r.err_n - 1) + vb**2 / (c.err_n - 1))
    return float(stdtr(df, t))


@dataclass
class ChunkedWindow:
    """One window's segment summaries and its row counts."""

    stats: dict[str, ChunkStats]
    rows: int
    pairs: int
    labelled: int
    chunk_size: int | None = None  # rows per chunk the segments were cut at
    extra: dict[str, Any] = field(default_factory=dict)

    def chunks(self) -> list[ChunkStats]:
        """The chunks in time order."""
        out, i = [], 0
        while chunk_name(i) in self.stats:
            out.append(self.stats[chunk_name(i)])
            i += 1
        return out


def chunk_sizes(n_ref: int, n_cur: int, settings: perf.Settings) -> tuple[int | None, int | None, int]:
    """``(reference chunk rows, current chunk rows, chunk_rows)`` the rule cuts the two windows at."""
    n_chunks, chunk_rows = perf.chunk_layout(n_cur, settings)
    return perf.reference_chunk_size(n_ref, chunk_rows), (chunk_rows if n_chunks >= 2 else None), chunk_rows


def evaluate_chunks(
    ref: ChunkedWindow, cur: ChunkedWindow, task: perf.Task, settings: perf.Settings, change_starts: Sequence[int] = ()
) -> perf.Evaluation | None:
    """:func:`drift.performance.evaluate` on segment summaries: same rule, same helpers.

    ``change_starts`` are positions among the labelled rows where the error rose; ``cur.stats`` must hold
    their segments (:func:`segments_after`).
    """
    if task.metric not in METRICS:
        raise ValueError(f"metric {task.metric!r} has no chunk summaries (one of {', '.join(METRICS)})")
    r_all, c_all = measure(ref.stats[WINDOW], task.metric), measure(cur.stats[WINDOW], task.metric)
    if r_all is None or c_all is None:
        return None
    _, chunk_rows = perf.chunk_layout(cur.pairs, settings)
    sigma, ref_chunks = None, 0
    if ref.chunk_size is not None:
        values = [m.value for m in (measure(c, task.metric) for c in ref.chunks()) if m is not None]
        ref_chunks = len(values)
        sigma = perf.chunk_spread(values, ref.chunk_size, chunk_rows, task, r_all.value)
    thr, source = perf.threshold_of(settings, sigma, task.metric)
    chunks = cur.chunks()
    after = [cur.stats[name] for name, _, _ in segments_after(cur.pairs, change_starts)]
    seg_alpha = settings.alpha / (1 + len(chunks) + len(after))

    def test(kind: str, st: ChunkStats) -> perf.Segment:
        s = c_all if st is cur.stats[WINDOW] else measure(st, task.metric)
        lo = int(st.first or 0)
        hi = int(st.last or 0) + 1
        if s is None or (st.n < perf.MIN_SEGMENT_ROWS and kind != "window"):
            return perf.Segment(kind, lo, hi, st.n, None if s is None else s.value, None, None, False)
        d = perf.degradation(task, r_all.value, s.value)
        p = p_worse(task.metric, r_all, s)
        return perf.Segment(kind, lo, hi, st.n, s.value, d, p, bool(d >= thr and p < seg_alpha))

    window = test("window", cur.stats[WINDOW])
    window.start, window.end = 0, cur.rows
    tested = [test("chunk", c) for c in chunks]
    tested_after = [test("after_change", a) for a in after]
    return perf.Evaluation(
        task=task,
        reference=r_all.value,
        current=c_all.value,
        p_value=float(window.p_value if window.p_value is not None else 1.0),
        threshold=float(thr),
        threshold_source=source,
        reference_chunk_std=sigma,
        reference_chunks=ref_chunks,
        chunk_rows=int(chunk_rows),
        segment_alpha=seg_alpha,
        window=window,
        chunks=tested,
        after_change=tested_after,
        drifted=window.drifted or any(c.drifted for c in tested) or any(a.drifted for a in tested_after),
    )


def performance_result(
    ev: perf.Evaluation, ref: ChunkedWindow, cur: ChunkedWindow, cfg: Any, change_starts: Sequence[int] = ()
) -> Any:  # drift.model.PerformanceResult
    """The report's performance section from :func:`evaluate_chunks` (the fields of ``drift.detect``'s)."""
    from drift.model import PerformanceResult, PerformanceSegment

    def segment(seg: perf.Segment, st: ChunkStats) -> PerformanceSegment:
        return PerformanceSegment(
            kind=seg.kind,
            start=seg.start,
            end=seg.end,
            n=seg.n,
            value=seg.value,
            degradation=seg.degradation,
            p_value=seg.p_value,
            drifted=seg.drifted,
            start_timestamp=st.first_ts,
            end_timestamp=st.last_ts,
        )

    return PerformanceResult.of(
        ev,
        alpha=cfg.performance_alpha,
        test=perf.TEST_NAMES[ev.task.metric],
        pairs=(ref.pairs, cur.pairs),
        rows=(ref.rows, cur.rows),
        labelled=(ref.labelled, cur.labelled),
        chunks=[segment(s, st) for s, st in zip(ev.chunks, cur.chunks(), strict=True)],
        after_change=[
            segment(s, cur.stats[name])
            for s, (name, _, _) in zip(ev.after_change, segments_after(cur.pairs, change_starts), strict=True)
        ],
    )


def settings_of(cfg: Any) -> perf.Settings:
    """The rule's settings from a :class:`drift.detect.DetectConfig` (its ``performance.*`` keys)."""
    from drift.detect import _settings

    return _settings(cfg)


def offsets_of(counts: Sequence[tuple[int, int, int]]) -> dict[int, tuple[int, int]]:
    """Partition id -> (window rows, labelled pairs) before it, from ``(pid, rows, pairs)`` in pid order."""
    out, rows, pairs = {}, 0, 0
    for pid, r, p in sorted(counts):
        out[pid] = (rows, pairs)
        rows, pairs = rows + r, pairs + p
    return out
