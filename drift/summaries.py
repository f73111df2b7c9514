"""Mergeable summaries of one window of inference logs: what a distributed engine computes per partition.

The Spark engine (:mod:`drift.spark`) never brings rows to the driver. Each partition runs
:func:`summarize_batches` on its Arrow record batches and emits *partial rows* in one long format
(:data:`ROW_SCHEMA`: ``col, part, idx, key, n, x, y``). Partials of all partitions are merged by their
key ``(col, part, idx, key)`` with plain ``sum(n)``, ``sum(x)``, ``sum(y)``, ``min(x)`` and ``max(x)``:
an engine's own group-by (Spark's ``groupBy().agg()``), or :func:`merge_partials` on one machine. The
merged table's size depends on the number of columns, bins and categories, never on the number of rows
or partitions. :func:`window_from_merged` turns it into the sketches of :mod:`drift.sketch` plus a
performance summary, and :func:`detect_from_summaries` runs the existing pure detection on them.

Per column (``part``):

* ``null``: missing values; ``nonfinite``: NaN/infinite values (an error, as in the local readers);
  ``bad``: a value that is not a number in a numeric column (an error; ``key`` is the value).
* numeric: ``bin`` (``idx`` = bin, ``n`` = count) and ``edge`` (values equal to edge ``idx``) on the bins
  of :class:`drift.sketch.NumericSketch`, whose edges come from the reference; ``mom`` (``n``, ``x`` =
  sum of ``v - shift``, ``y`` = sum of ``(v - shift)^2``: the column is centred on a shift known to every
  partition, the reference's median edge, so merging sums loses no precision worth speaking of);
  ``min`` and ``max``.
* categorical: ``cat`` (``key`` = category, ``n`` = count): exact counts.
* performance (``col`` empty, ``part`` ``perf.*``), over rows where ``label`` and ``prediction`` are both
  present: pairs, correct predictions, the moments of the absolute error, what the task choice of
  :func:`drift.detect.detect` looks at (labels outside {0, 1}, non-integral values, score range, up to
  21 distinct values), and the score distribution per class on the prediction's bins, split into cells
  that are either strictly inside a bin or exactly on an edge (for AUC and DeLong's variance).

Performance from summaries (:func:`performance_from_summaries`) follows ``detect``'s rules:

* accuracy (Fisher's exact test) and MAE (Welch's t-test, from the error moments) are exact;
* AUC: pairs of a positive and a negative in different cells, or on the same edge value, are ordered
  (or tied) exactly; pairs strictly inside the same bin count one half, so the AUC is within
  :func:`auc_error_bound` (``0.5 * sum_k P_k N_k / (m n)`` over the inner cells) of the exact one, and
  exact when scores take few distinct values (the edges then sit on them). DeLong's variance is taken
  over the cells (ranks within a bin treated as ties): an approximation, without a bound.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from drift.readers import DataError, _first_non_numeric

#: The partial rows every partition emits (and the Spark DDL of the same).
ROW_SCHEMA = pa.schema(
    [
        ("col", pa.string()),
        ("part", pa.string()),
        ("idx", pa.int64()),
        ("key", pa.string()),
        ("n", pa.int64()),
        ("x", pa.float64()),
        ("y", pa.float64()),
    ]
)
ROW_DDL = "col string, part string, idx long, key string, n long, x double, y double"
#: Grouping key of the merge, and the merged columns.
KEY = ("col", "part", "idx", "key")
MERGED_COLUMNS = ("n", "sx", "sy", "mn", "mx")
PERF_DISTINCT = "perf.distinct"
#: Distinct label/prediction values: this many or more (over 20 classes) means regression (detect's rule),
#: so no partition keeps more than this many.
MAX_DISTINCT = 21


@dataclass(frozen=True)
class SummarySpec:
    """What every partition summarises: planned columns, bin edges from the reference, shifts."""

    kinds: dict[str, str]
    edges: dict[str, tuple[float, ...]]
    shifts: dict[str, float] = field(default_factory=dict)

    @property
    def performance(self) -> bool:
        """Whether label/prediction pairs are summarised."""
        return "label" in self.kinds and "prediction" in self.kinds

    def sketch_columns(self) -> list[str]:
        """Columns that get a sketch: every planned column but ``label`` (not a tested column)."""
        return [name for name in self.kinds if name != "label"]


def _floats(arr: pa.Array) -> tuple[np.ndarray | None, str | None]:
    """Non-null values as float64, or ``(None, first non-numeric value)``."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if arr.null_count:
        arr = arr.drop_null()
    if not (pa.types.is_floating(arr.type) and arr.type.bit_width == 64):
        try:
            arr = pc.cast(arr, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None, _first_non_numeric(arr)
    return arr.to_numpy(zero_copy_only=False), None


def _strings(arr: pa.Array) -> pa.Array:
    """Categorical values as the local readers see them: strings (``true``/``false`` for booleans)."""
    if pa.types.is_dictionary(arr.type) or pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return arr
    return pc.cast(arr, pa.string())


def score_cells(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Ordered cells of ``values`` on bins ``(-inf, e0], (e0, e1], ...``: ``2k`` strictly inside bin ``k``,
    ``2k + 1`` exactly on edge ``e_k`` (``2 * len(edges) + 1`` cells)."""
    k = np.searchsorted(edges, values, side="left")
    on_edge = np.zeros(values.size, dtype=bool)
    inner = k < edges.size
    on_edge[inner] = edges[k[inner]] == values[inner]
    return 2 * k + on_edge


class _Moments:
    """Count, mean and sum of squared deviations, merged per chunk (Chan et al.)."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, x: np.ndarray) -> None:
        if x.size == 0:
            return
        n_b, mean_b = x.size, float(x.mean())
        m2_b = float(np.sum((x - mean_b) ** 2))
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * self.n * n_b / n
        self.n = n


def _correct(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """A correct prediction: equal numbers, else equal text (the whole-window rule of the summaries)."""
    if y.dtype.kind in "iufb" and p.dtype.kind in "iufb":
        return y == p
    return y.astype(str) == p.astype(str)


class _Performance:
    """Label/prediction pair summaries of one partition."""

    def __init__(self, spec: SummarySpec) -> None:
        self.numeric = spec.kinds["label"] == "numeric" and spec.kinds["prediction"] == "numeric"
        self.pairs = self.correct = 0
        self.err = _Moments()
        self.y_not01 = self.y_nonint = self.p_nonint = 0
        self.p_min, self.p_max = math.inf, -math.inf
        self.distinct: set[float] | None = set()
        self.positives = self.negatives = 0
        pred_edges = spec.edges.get("prediction")
        self.edges = np.unique(np.asarray(pred_edges, dtype=np.float64)) if self.numeric and pred_edges else None
        size = 2 * self.edges.size + 1 if self.edges is not None else 0
        self.cells_pos = np.zeros(size, dtype=np.int64)
        self.cells_neg = np.zeros(size, dtype=np.int64)

    def _values(self, arr: pa.Array, kind: str) -> np.ndarray | None:
        if kind == "numeric":
            values, _ = _floats(arr)
            if values is None or not np.all(np.isfinite(values)):
                return None  # reported as an error of the column itself
            return values
        return _strings(arr).cast(pa.string()).to_numpy(zero_copy_only=False)

    def add(self, y_arr: pa.Array, p_arr: pa.Array, kinds: Mapping[str, str]) -> None:
        if y_arr.null_count or p_arr.null_count:
            both = pc.and_(pc.is_valid(y_arr), pc.is_valid(p_arr))
            y_arr, p_arr = y_arr.filter(both), p_arr.filter(both)
        if len(y_arr) == 0:
            return
        y, p = self._values(y_arr, kinds["label"]), self._values(p_arr, kinds["prediction"])
        if y is None or p is None:
            return
        self.pairs += int(y.size)
        self.correct += int(np.count_nonzero(_correct(y, p)))
        if not self.numeric:
            return
        self.err.add(np.abs(y - p))
        self.y_not01 += int(np.count_nonzero((y != 0) & (y != 1)))
        self.y_nonint += int(np.count_nonzero(y != np.round(y)))
        self.p_nonint += int(np.count_nonzero(p != np.round(p)))
        self.p_min, self.p_max = min(self.p_min, float(p.min())), max(self.p_max, float(p.max()))
        if self.distinct is not None:
            self.distinct.update(np.unique(np.concatenate([y, p]))[:MAX_DISTINCT].tolist())
            if len(self.distinct) >= MAX_DISTINCT:
                self.distinct = None  # more than 20 distinct values: not a class label
        pos, neg = y == 1, y == 0
        self.positives += int(np.count_nonzero(pos))
        self.negatives += int(np.count_nonzero(neg))
        if self.edges is not None:
            cells = score_cells(self.edges, p)
            self.cells_pos += np.bincount(cells[pos], minlength=self.cells_pos.size)
            self.cells_neg += np.bincount(cells[neg], minlength=self.cells_neg.size)


class _Rows:
    """Column-wise builder of partial rows."""

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {name: [] for name in ROW_SCHEMA.names}

    def put(
        self, col: str, part: str, *, idx: int = 0, key: str | None = None, n: int = 0, x: float | None = None
    ) -> None:
        self.many(col, part, [idx], [key], [n], [x], [None])

    def many(self, col: str, part: str, idx: Any, key: Any, n: Any, x: Any, y: Any) -> None:
        size = len(idx)
        self.cols["col"].extend([col] * size)
        self.cols["part"].extend([part] * size)
        self.cols["idx"].extend(int(i) for i in idx)
        self.cols["key"].extend(key)
        self.cols["n"].extend(int(v) for v in n)
        self.cols["x"].extend(x)
        self.cols["y"].extend(y)

    def nonzero(self, col: str, part: str, counts: np.ndarray) -> None:
        """One row per non-zero entry of ``counts`` (``idx`` = position)."""
        nz = np.flatnonzero(counts)
        none = [None] * nz.size
        self.many(col, part, nz.tolist(), none, counts[nz].tolist(), none, none)

    def batch(self) -> pa.RecordBatch:
        return pa.RecordBatch.from_pydict(self.cols, schema=ROW_SCHEMA)


class PartitionSummary:
    """Summaries of the batches of one partition (or of a whole window, on one machine)."""

    def __init__(self, spec: SummarySpec) -> None:
        from drift.sketch import CategoricalCounts, NumericSketch

        self.spec = spec
        self.rows = 0
        self.nulls = dict.fromkeys(spec.kinds, 0)
        self.nonfinite = dict.fromkeys(spec.kinds, 0)
        self.bad: dict[str, str] = {}
        self.numeric = {name: NumericSketch(np.asarray(e, dtype=np.float64)) for name, e in spec.edges.items()}
        self.categorical = {
            name: CategoricalCounts() for name in spec.sketch_columns() if spec.kinds[name] == "categorical"
        }
        self.performance = _Performance(spec) if spec.performance else None

    def add(self, batch: pa.RecordBatch) -> None:
        """Add one record batch holding (at least) the planned columns."""
        self.rows += batch.num_rows
        names = batch.schema.names
        for name, kind in self.spec.kinds.items():
            arr = batch.column(names.index(name))
            self.nulls[name] += arr.null_count
            if kind == "numeric":
                if name in self.bad:
                    continue
                values, bad = _floats(arr)
                if values is None:
                    self.bad[name] = "?" if bad is None else bad
                    continue
                finite = np.isfinite(values)
                if not finite.all():
                    self.nonfinite[name] += int(values.size - np.count_nonzero(finite))
                    values = values[finite]
                if name in self.numeric:
                    self.numeric[name].update(values)
            elif name in self.categorical:
                self.categorical[name].update(_strings(arr.drop_null() if arr.null_count else arr))
        if self.performance is not None:
            label, prediction = batch.column(names.index("label")), batch.column(names.index("prediction"))
            self.performance.add(label, prediction, self.spec.kinds)

    def to_batch(self) -> pa.RecordBatch:
        """The partial rows of everything added."""
        out = _Rows()
        out.put("", "rows", n=self.rows)
        for name in self.spec.kinds:
            out.put(name, "null", n=self.nulls[name])
            if self.nonfinite[name]:
                out.put(name, "nonfinite", n=self.nonfinite[name])
            if name in self.bad:
                out.put(name, "bad", key=self.bad[name], n=1)
        for name, sk in self.numeric.items():
            out.nonzero(name, "bin", sk.counts)
            out.nonzero(name, "edge", sk.at_edge)
            if sk.n:
                d = sk.mean - self.spec.shifts.get(name, 0.0)
                m2 = sk.std**2 * sk.n
                out.many(name, "mom", [0], [None], [sk.n], [sk.n * d], [m2 + sk.n * d * d])
                out.put(name, "min", x=sk.min)
                out.put(name, "max", x=sk.max)
        for name, cc in self.categorical.items():
            keys = list(cc.counts)
            none = [None] * len(keys)
            out.many(name, "cat", [0] * len(keys), keys, [cc.counts[k] for k in keys], none, none)
        perf = self.performance
        if perf is not None and perf.pairs:
            out.put("", "perf.pairs", n=perf.pairs)
            out.put("", "perf.correct", n=perf.correct)
            if perf.numeric:
                e = perf.err
                out.many("", "perf.err", [0], [None], [e.n], [e.n * e.mean], [e.m2 + e.n * e.mean * e.mean])
                for part, count in (
                    ("perf.y_not01", perf.y_not01),
                    ("perf.y_nonint", perf.y_nonint),
                    ("perf.p_nonint", perf.p_nonint),
                    ("perf.positives", perf.positives),
                    ("perf.negatives", perf.negatives),
                ):
                    out.put("", part, n=count)
                out.put("", "perf.p_min", x=perf.p_min)
                out.put("", "perf.p_max", x=perf.p_max)
                if perf.distinct is None:
                    out.put("", "perf.distinct_overflow", n=1)
                else:
                    for v in sorted(perf.distinct):
                        out.put("", PERF_DISTINCT, key=repr(float(v)), n=1)
                out.nonzero("", "perf.cell_pos", perf.cells_pos)
                out.nonzero("", "perf.cell_neg", perf.cells_neg)
        return out.batch()


def summarize_batches(batches: Iterable[pa.RecordBatch], spec: SummarySpec) -> Iterator[pa.RecordBatch]:
    """The partition function: all batches of one partition in, one batch of partial rows out.

    Usable as ``DataFrame.mapInArrow(functools.partial(summarize_batches, spec=spec), ROW_DDL)``.
    """
    summary = PartitionSummary(spec)
    for batch in batches:
        summary.add(batch)
    yield summary.to_batch()


def merge_partials(partials: Iterable[pa.RecordBatch | pa.Table]) -> pa.Table:
    """Merge partial rows on one machine, as the engine's group-by does (``n``, ``sx``, ``sy``, ``mn``, ``mx``)."""
    table = pa.Table.from_batches(
        [b for p in partials for b in (p.to_batches() if isinstance(p, pa.Table) else [p])], schema=ROW_SCHEMA
    )
    merged = table.group_by(list(KEY), use_threads=False).aggregate(
        [("n", "sum"), ("x", "sum"), ("y", "sum"), ("x", "min"), ("x", "max")]
    )
    names = {"n_sum": "n", "x_sum": "sx", "y_sum": "sy", "x_min": "mn", "x_max": "mx"}
    return pa.table({**{k: merged[k] for k in KEY}, **{v: merged[k] for k, v in names.items()}})


@dataclass
class PerformanceSummary:
    """Merged label/prediction summaries of one window."""

    numeric: bool
    pairs: int
    correct: int
    err_n: int = 0
    err_mean: float = 0.0
    err_m2: float = 0.0
    y_not01: int = 0
    y_nonint: int = 0
    p_nonint: int = 0
    p_min: float = math.inf
    p_max: float = -math.inf
    #: distinct label/prediction values, None when more than 20
    distinct: frozenset[float] | None = None
    positives: int = 0
    negatives: int = 0
    cells_pos: np.ndarray | None = None
    cells_neg: np.ndarray | None = None


@dataclass
class WindowSummary:
    """Everything the detection needs from one window, merged over all partitions."""

    rows: int
    sketches: dict[str, Any]
    missing: dict[str, int]
    nonfinite: dict[str, int] = field(default_factory=dict)
    bad_values: dict[str, str] = field(default_factory=dict)
    performance: PerformanceSummary | None = None

    def check(self, source: str, kinds: Mapping[str, str]) -> None:
        """Raise :class:`drift.readers.DataError` (one line, naming ``source`` and the column) for bad data."""
        if self.rows == 0:
            raise DataError(source, "no rows")
        for name, kind in kinds.items():
            if name in self.bad_values:
                raise DataError(
                    source, f"column {name!r}: non-numeric value {self.bad_values[name]!r} in a numeric column"
                )
            if self.nonfinite.get(name):
                raise DataError(source, f"column {name!r}: {self.nonfinite[name]} NaN or infinite value(s)")
            if self.rows - self.missing.get(name, 0) <= 0:
                raise DataError(source, f"column {name!r}: all values are null")
            if kind == "numeric" and name in self.sketches and self.sketches[name].n == 0:
                raise DataError(source, f"column {name!r}: all values are null")


def window_from_merged(merged: pa.Table, spec: SummarySpec) -> WindowSummary:
    """Build the sketches and the performance summary of one window from its merged partial rows."""
    from drift.sketch import CategoricalCounts, NumericSketch

    data = merged.to_pydict()
    by: dict[tuple[str, str], list[int]] = {}
    for i, (col, part) in enumerate(zip(data["col"], data["part"], strict=True)):
        by.setdefault((col, part), []).append(i)

    def rows_of(col: str, part: str) -> list[int]:
        return by.get((col, part), [])

    def total(col: str, part: str) -> int:
        return int(sum(data["n"][i] or 0 for i in rows_of(col, part)))

    def first(col: str, part: str, what: str) -> Any:
        found = rows_of(col, part)
        return data[what][found[0]] if found else None

    missing = {name: total(name, "null") for name in spec.kinds}
    nonfinite = {name: total(name, "nonfinite") for name in spec.kinds if total(name, "nonfinite")}
    bad = {name: str(first(name, "bad", "key")) for name in spec.kinds if rows_of(name, "bad")}
    sketches: dict[str, Any] = {}
    for name in spec.sketch_columns():
        if spec.kinds[name] == "categorical":
            counts = {data["key"][i]: int(data["n"][i]) for i in rows_of(name, "cat")}
            cc = CategoricalCounts()
            cc.counts = counts
            sketches[name] = cc
            continue
        edges = np.unique(np.asarray(spec.edges[name], dtype=np.float64))
        counts_arr = np.zeros(edges.size + 1, dtype=np.int64)
        at_edge = np.zeros(edges.size, dtype=np.int64)
        for part, target in (("bin", counts_arr), ("edge", at_edge)):
            for i in rows_of(name, part):
                target[data["idx"][i]] += int(data["n"][i])
        n = int(counts_arr.sum())
        mean = m2 = 0.0
        lo, hi = math.inf, -math.inf
        if n:
            shift = spec.shifts.get(name, 0.0)
            s1, s2 = float(first(name, "mom", "sx")), float(first(name, "mom", "sy"))
            mean = shift + s1 / n
            m2 = max(s2 - s1 * s1 / n, 0.0)
            lo, hi = float(first(name, "min", "mn")), float(first(name, "max", "mx"))
        sketches[name] = NumericSketch.from_counts(edges, counts_arr, at_edge, minimum=lo, maximum=hi, mean=mean, m2=m2)
    performance = None
    pairs = total("", "perf.pairs")
    if spec.performance and pairs:
        numeric = spec.kinds["label"] == "numeric" and spec.kinds["prediction"] == "numeric"
        performance = PerformanceSummary(numeric=numeric, pairs=pairs, correct=total("", "perf.correct"))
        if numeric:
            en = total("", "perf.err")
            s1, s2 = float(first("", "perf.err", "sx")), float(first("", "perf.err", "sy"))
            performance.err_n, performance.err_mean = en, s1 / en
            # Constant errors give m2 = 0 exactly per partition; the merge may leave rounding dust.
            m2 = s2 - s1 * s1 / en
            performance.err_m2 = 0.0 if m2 <= 1e-12 * max(s2, 1e-300) else m2
            performance.y_not01 = total("", "perf.y_not01")
            performance.y_nonint = total("", "perf.y_nonint")
            performance.p_nonint = total("", "perf.p_nonint")
            performance.positives = total("", "perf.positives")
            performance.negatives = total("", "perf.negatives")
            performance.p_min = float(first("", "perf.p_min", "mn"))
            performance.p_max = float(first("", "perf.p_max", "mx"))
            keys = [data["key"][i] for i in rows_of("", PERF_DISTINCT)]
            if not rows_of("", "perf.distinct_overflow") and len(keys) < MAX_DISTINCT:
                performance.distinct = frozenset(float(k) for k in keys)
            pred_edges = spec.edges.get("prediction")
            if pred_edges:
                size = 2 * np.unique(np.asarray(pred_edges, dtype=np.float64)).size + 1
                for part, attr in (("perf.cell_pos", "cells_pos"), ("perf.cell_neg", "cells_neg")):
                    cells = np.zeros(size, dtype=np.int64)
                    for i in rows_of("", part):
                        cells[data["idx"][i]] += int(data["n"][i])
                    setattr(performance, attr, cells)
    return WindowSummary(
        rows=total("", "rows"),
        sketches=sketches,
        missing=missing,
        nonfinite=nonfinite,
        bad_values=bad,
        performance=performance,
    )


def summarize_local(batches: Iterable[pa.RecordBatch], spec: SummarySpec) -> WindowSummary:
    """One window summarised on one machine, through the same partial rows and merge as on a cluster."""
    return window_from_merged(merge_partials(summarize_batches(batches, spec)), spec)


# ---- performance from summaries ------------------------------------------------------------------------


def _task(ref: PerformanceSummary, cur: PerformanceSummary, task: str) -> tuple[str, str]:
    """``(task, metric)`` by :func:`drift.detect._task`'s rules, from both windows' summaries."""
    numeric = ref.numeric and cur.numeric
    binary = numeric and ref.y_not01 == 0 and cur.y_not01 == 0
    scores = (
        numeric
        and (ref.p_nonint + cur.p_nonint) > 0
        and min(ref.p_min, cur.p_min) >= 0
        and max(ref.p_max, cur.p_max) <= 1
    )
    if task == "regression":
        return "regression", "mae"
    if task == "classification" or not numeric:
        return "classification", "auc" if binary and scores else "accuracy"
    if binary and scores:
        return "classification", "auc"
    integral = ref.y_nonint == 0 and cur.y_nonint == 0 and ref.p_nonint == 0 and cur.p_nonint == 0
    if integral and ref.distinct is not None and cur.distinct is not None and len(ref.distinct | cur.distinct) <= 20:
        return "classification", "accuracy"
    return "regression", "mae"


def auc_from_cells(cells_pos: np.ndarray, cells_neg: np.ndarray) -> tuple[float, float]:
    """AUC and DeLong variance from per-class counts in ordered cells (ties within a cell count one half)."""
    pos, neg = cells_pos.astype(np.float64), cells_neg.astype(np.float64)
    m, n = pos.sum(), neg.sum()
    below_neg = np.cumsum(neg) - neg
    above_pos = pos.sum() - np.cumsum(pos)
    v10 = (below_neg + 0.5 * neg) / n  # per positive in the cell: share of negatives ranked below
    v01 = (above_pos + 0.5 * pos) / m  # per negative: share of positives ranked above
    auc = float(np.dot(pos, v10) / m)
    mean01 = float(np.dot(neg, v01) / n)
    var10 = float(np.dot(pos, (v10 - auc) ** 2) / (m - 1)) if m > 1 else 0.0
    var01 = float(np.dot(neg, (v01 - mean01) ** 2) / (n - 1)) if n > 1 else 0.0
    return auc, var10 / m + var01 / n


def auc_error_bound(cells_pos: np.ndarray, cells_neg: np.ndarray) -> float:
    """Largest possible difference between :func:`auc_from_cells` and the exact AUC.

    Only pairs strictly inside the same bin (the even cells) have an unknown order; each counts one half
    but could be 0 or 1.
    """
    m, n = float(cells_pos.sum()), float(cells_neg.sum())
    inner = slice(0, None, 2)
    return float(0.5 * np.dot(cells_pos[inner].astype(np.float64), cells_neg[inner]) / (m * n))


def performance_from_summaries(
    ref: PerformanceSummary, cur: PerformanceSummary, cfg: Any
) -> Any:  # drift.model.PerformanceResult
    """Concept drift from two windows' summaries, by the rules (and tests) of :func:`drift.detect.detect`."""
    from scipy import stats

    from drift.detect import PERFORMANCE_THRESHOLDS
    from drift.model import PerformanceResult

    task, metric = _task(ref, cur, cfg.performance_task)
    if metric == "auc" and not (ref.positives and ref.negatives and cur.positives and cur.negatives):
        metric = "accuracy"
    if metric == "auc" and (ref.cells_pos is None or cur.cells_pos is None):
        metric = "accuracy"  # no score bins (prediction not histogrammed): cannot rank
    thr = cfg.performance_threshold or PERFORMANCE_THRESHOLDS[metric]
    pv: float
    if metric == "auc":
        assert ref.cells_pos is not None and ref.cells_neg is not None
        assert cur.cells_pos is not None and cur.cells_neg is not None
        (r, vr), (c, vc) = auc_from_cells(ref.cells_pos, ref.cells_neg), auc_from_cells(cur.cells_pos, cur.cells_neg)
        se = math.sqrt(vr + vc)
        pv = float(stats.norm.sf((r - c) / se)) if se > 0 else (0.0 if r > c else 1.0)
        test, degr = "delong", r - c
    elif metric == "accuracy":
        r, c = ref.correct / ref.pairs, cur.correct / cur.pairs
        table = [[ref.correct, ref.pairs - ref.correct], [cur.correct, cur.pairs - cur.correct]]
        pv = float(stats.fisher_exact(table, alternative="greater").pvalue)
        test, degr = "fisher_exact", r - c
    else:
        r, c = ref.err_mean, cur.err_mean
        if ref.err_n < 2 or cur.err_n < 2 or (ref.err_m2 == 0 and cur.err_m2 == 0):
            pv = 0.0 if c > r else 1.0
        else:
            res = stats.ttest_ind_from_stats(
                r,
                math.sqrt(ref.err_m2 / (ref.err_n - 1)),
                ref.err_n,
                c,
                math.sqrt(cur.err_m2 / (cur.err_n - 1)),
                cur.err_n,
                equal_var=False,
                alternative="less",
            )
            pv = float(res.pvalue)
        test, degr = "welch_t", (c - r) / max(r, 1e-12)
    return PerformanceResult(
        metric=metric,
        reference=float(r),
        current=float(c),
        delta=float(c - r),
        test=test,
        p_value=pv,
        threshold=float(thr),
        drifted=bool(degr >= thr and pv < cfg.performance_alpha),
        degradation=float(degr),
        alpha=cfg.performance_alpha,
        task=task,
        n_reference=int(ref.pairs),
        n_current=int(cur.pairs),
    )


def detect_from_summaries(reference: WindowSummary, current: WindowSummary, config: Any = None) -> Any:
    """The drift report of two windows' summaries: :func:`drift.sketch.detect_from_sketches` for the columns,
    :func:`performance_from_summaries` for concept drift, the shared severity rules for the verdict.

    Performance is computed when both windows have ``label`` and ``prediction`` without a missing value
    (the local engine's rule); change points need records in time order and are not computed.
    """
    from drift.detect import DetectConfig, assemble_report
    from drift.sketch import detect_from_sketches

    cfg = config or DetectConfig()
    report = detect_from_sketches(reference.sketches, current.sketches, config=cfg)
    complete = all(
        w.performance is not None and w.missing.get("label", 1) == 0 and w.missing.get("prediction", 1) == 0
        for w in (reference, current)
    )
    if complete:
        assert reference.performance is not None and current.performance is not None
        perf = performance_from_summaries(reference.performance, current.performance, cfg)
        report = assemble_report(report.features, report.prediction, perf, [], cfg, 0, 0, binned=True)
    report.n_reference, report.n_current = reference.rows, current.rows
    return report
