"""Model quality (concept drift): metrics, their tests, and chunked comparison with the reference.

Pure functions, no I/O. :func:`drift.detect.detect` pairs the rows, calls :func:`evaluate` and puts the
result in the report; ``docs/drift.md`` ("Concept drift") documents the rule and its measured
false-alarm rate.

The rule, in short (after NannyML's realized performance, which compares each chunk's metric with the
mean of the reference chunks +- 3 standard deviations):

* the current window's labelled rows, in time order, are cut into ``chunks`` equal chunks (at least
  ``min_chunk_rows`` rows each); the reference is cut into chunks of the same size, and the metric's
  standard deviation over the reference chunks (``sigma``) is the natural chunk-to-chunk variability;
* the degradation threshold is ``max(std_multiplier * sigma, min_degradation)``;
* the segments tested are the whole window, each chunk, and the segment after each ADWIN change point
  where the error went up; a segment has drifted when its degradation (reference minus segment for
  accuracy, F1 and AUC; relative increase for MAE) reaches the threshold AND the one-sided test of the
  segment against the whole reference (DeLong for AUC, Fisher's exact for accuracy, a delta-method z for
  F1, Welch's t for MAE) gives ``p < alpha / number of segments`` (Bonferroni).

The test bounds the false-alarm rate (``alpha`` over the segments, plus ADWIN's own); the threshold
keeps the alarms to drops larger than the reference's own chunk-to-chunk noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

#: Label values taken as the positive class of a two-class problem (compared lower-cased).
POSITIVE_NAMES = ("1", "true", "yes", "y", "t", "positive", "pos")
METRICS = ("auto", "auc", "accuracy", "f1", "mae")
#: A chunk needs this many rows with both label and prediction (and both classes, for AUC and F1).
MIN_SEGMENT_ROWS = 30
#: NannyML warns below 6 reference chunks; below it the spread of the chunk metrics means little.
MIN_REFERENCE_CHUNKS = 6


@dataclass
class Pairs:
    """One window's rows that have both a label and a prediction, in time order.

    ``y`` are class keys (strings) for classification or floats for regression; ``pred`` the predicted
    class keys (or floats); ``score`` the positive-class scores (any monotone score: probabilities,
    log-odds) or None; ``rows`` the positions of these rows in the window's time order.
    """

    y: np.ndarray
    pred: np.ndarray | None
    score: np.ndarray | None
    rows: np.ndarray
    n_rows: int  # rows of the window
    n_labelled: int  # rows with a label

    @property
    def n(self) -> int:
        """Rows with both label and prediction."""
        return int(self.y.size)

    def take(self, idx: np.ndarray | slice) -> Pairs:
        """A subset (chunk or segment) of these rows."""
        return Pairs(
            self.y[idx],
            None if self.pred is None else self.pred[idx],
            None if self.score is None else self.score[idx],
            self.rows[idx],
            self.n_rows,
            self.n_labelled,
        )


@dataclass
class Task:
    """What is measured: ``metric`` decides, ``positive`` is the positive class key (two-class only)."""

    task: str  # classification | regression
    metric: str  # auc | accuracy | f1 | mae
    positive: str | None = None


# ---- labels -------------------------------------------------------------------------------------------


def class_keys(values: np.ndarray) -> np.ndarray:
    """Labels or class predictions as comparable string keys.

    Booleans become ``"true"``/``"false"`` and strings spelling a boolean are lower-cased, so a CSV
    ``True`` matches a JSON ``true`` and a numpy ``True``; integral numbers become ``"0"``, ``"1"``, ...
    (so ``1.0`` matches ``1``); other strings are kept as they are.
    """
    a = np.asarray(values)
    if a.dtype.kind == "b":
        return np.where(a, "true", "false").astype(object)
    if a.dtype.kind in "iu":
        return a.astype(str).astype(object)
    if a.dtype.kind == "f":
        if np.all(a == np.round(a)):
            return a.astype(np.int64).astype(str).astype(object)
        return a.astype(str).astype(object)
    out = a.astype(str).astype(object)
    low = np.char.lower(out.astype(str))
    boolish = np.isin(low, ("true", "false"))
    if boolish.any():
        out[boolish] = low[boolish]
    return out


def positive_class(keys: Sequence[str], reference_keys: np.ndarray, configured: str | None) -> str:
    """The positive class of a two-class problem.

    The configured ``performance.positive_label``; else the class whose lower-cased key is one of
    :data:`POSITIVE_NAMES` (``1``, ``true``, ``yes``, ...); else the rarer class of the reference (the
    event a binary model usually scores), ties broken by name.
    """
    if configured is not None:
        return configured
    for k in keys:
        if k.lower() in POSITIVE_NAMES:
            return k
    counts = {k: int(np.count_nonzero(reference_keys == k)) for k in keys}
    return min(keys, key=lambda k: (counts[k], k))


# ---- metrics -------------------------------------------------------------------------------------------


def midranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (``scipy.stats.rankdata(method='average')``)."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    n = xs.size
    # Boundaries of runs of equal values; each run gets the mean of its positions (1-based).
    starts = np.flatnonzero(np.concatenate(([True], xs[1:] != xs[:-1])))
    ends = np.concatenate((starts[1:], [n]))
    avg = (starts + ends + 1) / 2.0
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def auc_delong(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """ROC AUC of ``score`` for binary ``y`` and its DeLong variance (DeLong et al., Biometrics 1988).

    Uses midranks (Sun and Xu, IEEE SPL 2014), so ties count one half, as in the Mann-Whitney U.
    """
    yb = np.asarray(y).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    pos, neg = s[yb], s[~yb]
    m, n = pos.size, neg.size
    r_all = midranks(np.concatenate([pos, neg]))
    r_pos, r_neg = midranks(pos), midranks(neg)
    v10 = (r_all[:m] - r_pos) / n  # per positive: share of negatives ranked below
    v01 = 1.0 - (r_all[m:] - r_neg) / m  # per negative: share of positives ranked above
    auc = float(v10.mean())
    var = (float(v10.var(ddof=1)) / m if m > 1 else 0.0) + (float(v01.var(ddof=1)) / n if n > 1 else 0.0)
    return auc, var


def f1_and_variance(y_pos: np.ndarray, pred_pos: np.ndarray) -> tuple[float, float]:
    """F1 of the positive class and its delta-method variance.

    F1 = 2 TP / (2 TP + FP + FN) is a ratio of means ``x_bar / z_bar`` with per-row ``x = 2 [TP]`` and
    ``z = 2 [TP] + [FP] + [FN]``; its variance is ``var(x - F1 z) / (n z_bar^2)`` (the ratio estimator).
    """
    tp = (y_pos & pred_pos).astype(np.float64)
    x = 2.0 * tp
    z = x + (pred_pos & ~y_pos) + (y_pos & ~pred_pos)
    zbar = float(z.mean())
    if zbar == 0.0:
        return 0.0, 0.0
    f1 = float(x.mean()) / zbar
    n = x.size
    var = float(np.var(x - f1 * z, ddof=1)) / (n * zbar**2) if n > 1 else 0.0
    return f1, var


def _hypergeom_log_pmf(k: np.ndarray, total: int, good: int, draws: int) -> np.ndarray:
    from scipy.special import gammaln

    def lchoose(a: Any, b: Any) -> Any:
        return gammaln(a + 1) - gammaln(b + 1) - gammaln(a - b + 1)

    return lchoose(good, k) + lchoose(total - good, draws - k) - lchoose(total, draws)


def fisher_greater(a: int, b: int, c: int, d: int) -> float:
    """One-sided Fisher exact p-value of ``[[a, b], [c, d]]`` for "row 1 has the larger first-column share".

    Equals ``scipy.stats.fisher_exact(table, alternative="greater").pvalue``: the hypergeometric upper
    tail ``P(X >= a)`` with the margins fixed, summed in log space (no scipy.stats import).
    """
    total, good, draws = a + b + c + d, a + c, a + b
    hi = min(good, draws)
    if a > hi:
        return 0.0
    k = np.arange(a, hi + 1, dtype=np.float64)
    logp = _hypergeom_log_pmf(k, total, good, draws)
    top = float(logp.max())
    return float(min(1.0, math.exp(top) * float(np.sum(np.exp(logp - top)))))


def normal_sf(z: float) -> float:
    """Upper tail of the standard normal."""
    from scipy.special import ndtr

    return float(ndtr(-z))


def welch_less(a: np.ndarray, b: np.ndarray) -> float:
    """One-sided Welch t-test p-value for ``mean(a) < mean(b)`` (``scipy.stats.ttest_ind(..., 'less')``)."""
    from scipy.special import stdtr

    va, vb = float(a.var(ddof=1)) / a.size, float(b.var(ddof=1)) / b.size
    se = math.sqrt(va + vb)
    if se == 0.0:
        return 0.0 if a.mean() < b.mean() else 1.0
    t = (float(a.mean()) - float(b.mean())) / se
    df = (va + vb) ** 2 / ((va**2) / (a.size - 1) + (vb**2) / (b.size - 1))
    return float(stdtr(df, t))


@dataclass
class _Stat:
    value: float
    var: float = 0.0
    extra: Any = None  # per-row values (accuracy hits, absolute errors) for the exact tests


def _measure(p: Pairs, task: Task) -> _Stat | None:
    """The decision metric on ``p``, or None when it is undefined there (one class only, too few rows)."""
    if p.n == 0:
        return None
    if task.metric == "auc":
        assert p.score is not None
        yb = p.y == task.positive
        if yb.all() or not yb.any():
            return None
        auc, var = auc_delong(yb, p.score)
        return _Stat(auc, var)
    if task.metric == "f1":
        assert p.pred is not None
        yb, pb = p.y == task.positive, p.pred == task.positive
        if not yb.any():
            return None
        f1, var = f1_and_variance(yb, pb)
        return _Stat(f1, var)
    if task.metric == "accuracy":
        assert p.pred is not None
        hits = p.y == p.pred
        return _Stat(float(hits.mean()), extra=hits)
    assert p.pred is not None
    err = np.abs(p.y.astype(np.float64) - p.pred.astype(np.float64))
    return _Stat(float(err.mean()), extra=err)


def degradation(task: Task, ref: float, cur: float) -> float:
    """Absolute drop for accuracy, F1 and AUC; relative increase for MAE."""
    if task.metric == "mae":
        return (cur - ref) / max(ref, 1e-12)
    return ref - cur


def _p_worse(task: Task, ref: _Stat, cur: _Stat) -> float:
    """One-sided p-value for "the current segment is worse than the reference"."""
    if task.metric in ("auc", "f1"):
        se = math.sqrt(ref.var + cur.var)
        if se == 0.0:
            return 0.0 if cur.value < ref.value else 1.0
        return normal_sf((ref.value - cur.value) / se)
    if task.metric == "accuracy":
        r, c = ref.extra, cur.extra
        rh, ch = int(np.count_nonzero(r)), int(np.count_nonzero(c))
        return fisher_greater(rh, int(r.size) - rh, ch, int(c.size) - ch)
    er, ec = ref.extra, cur.extra
    if er.size < 2 or ec.size < 2 or (er.std() == 0 and ec.std() == 0):
        return 0.0 if ec.mean() > er.mean() else 1.0
    return welch_less(er, ec)


TEST_NAMES = {"auc": "delong", "accuracy": "fisher_exact", "f1": "delta_method_z", "mae": "welch_t"}


# ---- the rule -----------------------------------------------------------------------------------------


@dataclass
class Settings:
    """The knobs of :func:`evaluate` (``performance.*`` in the config file)."""

    alpha: float = 0.05
    threshold: float | None = None  # fixed degradation threshold; None: from the reference's chunks
    chunks: int = 10
    min_chunk_rows: int = 500
    std_multiplier: float = 3.0
    min_degradation: float | None = None  # None: MIN_DEGRADATION[metric]


#: Floor of the derived threshold: on very large windows the chunks' spread shrinks towards zero, and a
#: drop of a few hundredths of a point is not worth a pull request.
MIN_DEGRADATION = {"auc": 0.005, "accuracy": 0.005, "f1": 0.005, "mae": 0.02}
#: Used when the reference is too small for 6 chunks of 30 rows (and no threshold is configured).
FALLBACK_THRESHOLDS = {"accuracy": 0.05, "auc": 0.05, "f1": 0.05, "mae": 0.10}


@dataclass
class Segment:
    """One tested stretch of the current window (positions in its time order, end exclusive)."""

    kind: str  # window | chunk | after_change
    start: int
    end: int
    n: int
    value: float | None
    degradation: float | None
    p_value: float | None
    drifted: bool


@dataclass
class Evaluation:
    """Everything :func:`evaluate` found; :mod:`drift.detect` turns it into a PerformanceResult."""

    task: Task
    reference: float
    current: float
    p_value: float
    threshold: float
    threshold_source: str  # reference_chunks | config | fallback
    reference_chunk_std: float | None
    reference_chunks: int
    chunk_rows: int
    segment_alpha: float
    window: Segment
    chunks: list[Segment]
    after_change: list[Segment]
    drifted: bool


def chunk_bounds(n: int, size: int) -> list[tuple[int, int]]:
    """``[start, end)`` of consecutive chunks of ``size`` rows; a short tail joins the last chunk."""
    k = max(1, n // size)
    edges = [*(i * size for i in range(k)), n]
    return list(pairwise(edges))


def chunk_layout(n: int, settings: Settings) -> tuple[int, int]:
    """``(chunks, rows per chunk)`` of a current window with ``n`` labelled rows (fewer than 2: no chunks)."""
    n_chunks = min(settings.chunks, n // settings.min_chunk_rows)
    return n_chunks, (n // n_chunks if n_chunks >= 2 else n)


def reference_chunk_size(n_ref: int, chunk_rows: int) -> int | None:
    """Rows per reference chunk: ``chunk_rows``, smaller when that gives under 6 chunks; None below 30 rows."""
    size = chunk_rows
    if n_ref // size < MIN_REFERENCE_CHUNKS:
        size = n_ref // MIN_REFERENCE_CHUNKS
    return None if size < MIN_SEGMENT_ROWS else size


def chunk_spread(values: Sequence[float], size: int, chunk_rows: int, task: Task, whole: float | None) -> float | None:
    """The reference chunks' spread from their metric ``values`` (on chunks of ``size`` rows), or None.

    MAE chunks are taken relative to the whole reference's MAE ``whole``, like the MAE degradation.
    """
    if len(values) < MIN_REFERENCE_CHUNKS:
        return None
    arr = np.asarray(values, dtype=np.float64)
    if task.metric == "mae":
        arr = arr / max(whole if whole is not None else 1.0, 1e-12)
    # ddof=1 (NannyML uses the population std): with ten chunks the sample std is the less optimistic.
    # A metric's noise scales as 1/sqrt(rows), so a spread measured on larger chunks is scaled down.
    return float(arr.std(ddof=1)) * math.sqrt(size / chunk_rows)


def threshold_of(settings: Settings, sigma: float | None, metric: str) -> tuple[float, str]:
    """The degradation threshold and where it came from (config, reference_chunks, fallback)."""
    floor = settings.min_degradation if settings.min_degradation is not None else MIN_DEGRADATION[metric]
    if settings.threshold is not None:
        return settings.threshold, "config"
    if sigma is not None:
        return max(settings.std_multiplier * sigma, floor), "reference_chunks"
    return FALLBACK_THRESHOLDS[metric], "fallback"


def _reference_spread(ref: Pairs, task: Task, chunk_rows: int) -> tuple[float | None, int]:
    """Standard deviation of the metric over reference chunks, scaled to ``chunk_rows`` rows."""
    size = reference_chunk_size(ref.n, chunk_rows)
    if size is None:
        return None, 0
    values = []
    for a, b in chunk_bounds(ref.n, size):
        s = _measure(ref.take(slice(a, b)), task)
        if s is not None:
            values.append(s.value)
    whole = _measure(ref, task) if task.metric == "mae" else None
    return chunk_spread(values, size, chunk_rows, task, whole.value if whole else None), len(values)


def evaluate(
    ref: Pairs, cur: Pairs, task: Task, settings: Settings, change_starts: Sequence[int] = ()
) -> Evaluation | None:
    """Apply the module's rule; ``change_starts`` are positions (in ``cur``'s rows) where the error rose.

    Returns None when the metric is undefined on either whole window (for AUC and F1: a window with one
    class only), which the caller reports instead of switching the check off silently.
    """
    r_all, c_all = _measure(ref, task), _measure(cur, task)
    if r_all is None or c_all is None:
        return None
    n_chunks, chunk_rows = chunk_layout(cur.n, settings)
    sigma, ref_chunks = _reference_spread(ref, task, chunk_rows)
    thr, source = threshold_of(settings, sigma, task.metric)

    bounds = chunk_bounds(cur.n, chunk_rows) if n_chunks >= 2 else []
    starts = sorted({int(s) for s in change_starts if 0 < s <= cur.n - MIN_SEGMENT_ROWS})
    m = 1 + len(bounds) + len(starts)
    seg_alpha = settings.alpha / m

    def test(kind: str, a: int, b: int) -> Segment:
        part = cur.take(slice(a, b))
        s = c_all if (a, b) == (0, cur.n) else _measure(part, task)
        lo = int(cur.rows[a]) if a < cur.n else cur.n_rows
        hi = int(cur.rows[b - 1]) + 1 if b > a else lo
        if s is None or (part.n < MIN_SEGMENT_ROWS and kind != "window"):
            return Segment(kind, lo, hi, part.n, None if s is None else s.value, None, None, False)
        d = degradation(task, r_all.value, s.value)
        p = _p_worse(task, r_all, s)
        return Segment(kind, lo, hi, part.n, s.value, d, p, bool(d >= thr and p < seg_alpha))

    window = test("window", 0, cur.n)
    window.start, window.end = 0, cur.n_rows
    chunks = [test("chunk", a, b) for a, b in bounds]
    after = [test("after_change", s, cur.n) for s in starts]
    drifted = window.drifted or any(c.drifted for c in chunks) or any(s.drifted for s in after)
    return Evaluation(
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
        chunks=chunks,
        after_change=after,
        drifted=drifted,
    )


def error_stream(p: Pairs, task: Task) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Per-row error for ADWIN: 0/1 misclassification, ``|y - probability|`` for scores, else ``|y - pred|``."""
    if task.task == "classification" and p.pred is not None and task.metric != "auc":
        return (p.y != p.pred).astype(np.float64), (0.0, 1.0)
    if task.metric == "auc" and p.score is not None:
        s = p.score
        if s.min() < 0.0 or s.max() > 1.0:
            s = 1.0 / (1.0 + np.exp(-s))  # log-odds (or any real score) through the logistic
        return np.abs((p.y == task.positive).astype(np.float64) - s), (0.0, 1.0)
    return np.abs(p.y.astype(np.float64) - p.pred.astype(np.float64)), None  # type: ignore[union-attr]


def labels_by_request_id(request_id: Any, label_request_id: Any, label: Any) -> np.ndarray:
    """Delayed labels joined to records on ``request_id``: one entry per record, None where unlabelled.

    ``label_request_id`` and ``label`` are the label records (design.md: records with ``request_id`` and
    ``label``); a request labelled twice with different labels is ambiguous and raises ``ValueError``
    naming it (callers report it as bad input). Records are never paired by position.
    """
    rid = np.asarray(request_id, dtype=object).astype(str)
    lid = np.asarray(label_request_id, dtype=object).astype(str)
    lab = np.asarray(label, dtype=object)
    if lid.size != lab.size:
        raise ValueError(f"labels: {lid.size} request ids for {lab.size} labels")
    order = np.argsort(lid, kind="stable")
    lid, lab = lid[order], lab[order]
    same = np.flatnonzero(lid[1:] == lid[:-1])
    for i in same:
        if lab[i] != lab[i + 1]:
            raise ValueError(f"labels: request_id {str(lid[i])!r} has two labels ({lab[i]!r}, {lab[i + 1]!r})")
    pos = np.searchsorted(lid, rid)
    pos_ok = pos < lid.size
    found = np.zeros(rid.size, dtype=bool)
    found[pos_ok] = lid[pos[pos_ok]] == rid[pos_ok]
    out = np.full(rid.size, None, dtype=object)
    out[found] = lab[pos[found]]
    return out
