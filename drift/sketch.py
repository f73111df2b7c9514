"""Bounded-memory (binned) drift statistics for inputs read chunk by chunk.

A :class:`NumericSketch` counts values in fixed bins whose edges are the reference's quantiles on a fine
grid (default 1,000 bins, cut from a sample of the reference such as its first chunk), plus exact count,
min, max, mean and variance. A :class:`CategoricalCounts` keeps exact category counts. Both are updated
per chunk; memory does not grow with the data. :func:`detect_from_sketches` applies the same selection,
correction and severity rules as :func:`drift.detect.detect`.

Error bounds (``FeatureResult.error_bound``):

* ``ks``: the CDFs are known exactly at the bin edges, so the binned statistic ``D_b = max_e |F_r(e) -
  F_c(e)|`` is a lower bound of the exact ``D``. Inside bin ``k`` each CDF moves by at most its own
  mass there (``p_k``, ``q_k``), so ``D <= max_k max(d_k + p_k, q_k - d_k)`` where ``d_k`` is the CDF
  difference at the bin's left edge. We report ``statistic = D_b`` and ``error_bound`` = that upper bound
  minus ``D_b``; it never exceeds the largest bin mass of either sample (about 1/1000 for the reference
  with the default grid). The p-value uses Smirnov's asymptotic distribution at ``D_b`` (so it is
  an upper bound of the asymptotic p-value at the exact ``D``).
* ``wasserstein``: the integral of ``|F_r - F_c|`` with both CDFs taken linear inside each bin (the outer
  bins end at the exact min and max), except that values equal to a bin's right edge (counted exactly
  per edge) are a step at that edge. Inside bin ``k`` (width ``w_k``) the true and the interpolated
  difference both lie in an interval of length ``p_k + q_k`` (the masses strictly inside the bin), so the
  error is at most ``sum_k w_k (p_k + q_k)``, divided by the same reference std as the statistic. For a
  column with few distinct values the edges sit on the values, nothing is strictly inside a bin, and
  the distance is exact (bound 0).
* ``psi`` / ``jensenshannon``: computed on the fine bins merged into ``bins`` groups at the reference's
  quantiles ``k / bins`` read off the fine grid; the groups' edges can differ from the exact quantiles
  by one fine bin, so these are approximations without a bound (``error_bound`` is null).
* categorical tests are exact (counts are sufficient statistics).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from drift import stattests
from drift.detect import DetectConfig, FeatureOverride, assemble_report, summarize
from drift.model import FeatureResult

DEFAULT_SKETCH_BINS = 1000


class NumericSketch:
    """Counts of a numeric column in fixed bins ``(-inf, e0], (e0, e1], ..., (e_last, inf)``."""

    def __init__(self, edges: np.ndarray) -> None:
        e = np.unique(np.asarray(edges, dtype=np.float64))
        if e.size == 0 or not np.all(np.isfinite(e)):
            raise ValueError("sketch edges must be a non-empty array of finite numbers")
        self.edges = e
        self.counts = np.zeros(e.size + 1, dtype=np.int64)
        #: values exactly equal to each edge (bin k's right end): point masses, as in discrete columns
        self.at_edge = np.zeros(e.size, dtype=np.int64)
        self.n = 0
        self.min = np.inf
        self.max = -np.inf
        self.mean = 0.0
        self._m2 = 0.0

    @classmethod
    def from_reference(cls, sample: Any, bins: int = DEFAULT_SKETCH_BINS) -> NumericSketch:
        """Edges at the quantiles ``k / bins`` of ``sample`` (e.g. the reference's first chunk)."""
        s = stattests.NumericSample(sample)
        return cls(s.quantiles(np.arange(1, bins) / bins))

    def empty_like(self) -> NumericSketch:
        """A new, empty sketch with the same edges (for the current window)."""
        return NumericSketch(self.edges)

    @classmethod
    def from_counts(
        cls,
        edges: np.ndarray,
        counts: np.ndarray,
        at_edge: np.ndarray,
        *,
        minimum: float,
        maximum: float,
        mean: float,
        m2: float,
    ) -> NumericSketch:
        """A sketch from merged partial summaries (e.g. added up by Spark): bin counts, moments, range.

        ``m2`` is the sum of squared deviations from ``mean``; ``n`` is the total of ``counts``.
        """
        sketch = cls(edges)
        c, a = np.asarray(counts, dtype=np.int64), np.asarray(at_edge, dtype=np.int64)
        if c.shape != sketch.counts.shape or a.shape != sketch.at_edge.shape:
            raise ValueError("sketch counts do not match the edges")
        sketch.counts, sketch.at_edge = c.copy(), a.copy()
        sketch.n = int(c.sum())
        sketch.min, sketch.max, sketch.mean, sketch._m2 = float(minimum), float(maximum), float(mean), max(m2, 0.0)
        return sketch

    def update(self, chunk: Any) -> None:
        """Add one chunk of finite values."""
        x = np.asarray(chunk, dtype=np.float64).ravel()
        if x.size == 0:
            return
        if not np.all(np.isfinite(x)):
            raise ValueError("numeric sketch: chunk contains NaN or infinite values")
        idx = np.searchsorted(self.edges, x, side="left")
        self.counts += np.bincount(idx, minlength=self.counts.size)
        inner = idx < self.edges.size
        hit = idx[inner][self.edges[idx[inner]] == x[inner]]
        if hit.size:
            self.at_edge += np.bincount(hit, minlength=self.edges.size)
        # Chan et al.'s pairwise update keeps the variance accurate across many chunks.
        n_b, mean_b = x.size, float(x.mean())
        m2_b = float(np.sum((x - mean_b) ** 2))
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self._m2 += m2_b + delta * delta * self.n * n_b / n
        self.n = n
        self.min = min(self.min, float(x.min()))
        self.max = max(self.max, float(x.max()))

    @property
    def std(self) -> float:
        """Population standard deviation of everything added."""
        return float(np.sqrt(self._m2 / self.n)) if self.n else 0.0

    def summary(self) -> dict[str, Any]:
        """Moments for reports (the median is read off the bins: within one bin)."""
        cum = np.cumsum(self.counts)
        k = int(np.searchsorted(cum, self.n / 2.0))
        med = self.edges[min(k, self.edges.size - 1)] if self.n else 0.0
        return {"mean": self.mean, "std": self.std, "min": self.min, "median": float(med), "max": self.max}


class CategoricalCounts:
    """Exact category counts, updated per chunk."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def update(self, chunk: Any) -> None:
        """Add one chunk of category values (numpy or Arrow, as :class:`drift.stattests.CategoricalSample`)."""
        if len(chunk) == 0:
            return
        for k, v in stattests.CategoricalSample(chunk).counts.items():
            self.counts[k] = self.counts.get(k, 0) + v

    @property
    def n(self) -> int:
        """Number of values added."""
        return sum(self.counts.values())

    def sample(self) -> stattests.CategoricalSample:
        """As a :class:`drift.stattests.CategoricalSample` for the exact categorical tests."""
        return stattests.CategoricalSample(counts=self.counts)


def _check_same_edges(ref: NumericSketch, cur: NumericSketch, name: str) -> None:
    if ref.edges.shape != cur.edges.shape or not np.array_equal(ref.edges, cur.edges):
        raise ValueError(f"column {name!r}: reference and current sketches have different bin edges")
    if ref.n == 0 or cur.n == 0:
        raise ValueError(f"column {name!r}: empty {'reference' if ref.n == 0 else 'current'} sketch")


def binned_ks(ref: NumericSketch, cur: NumericSketch) -> tuple[float, float, float]:
    """``(D_binned, p_value, error_bound)``: exact ``D`` lies in ``[D_binned, D_binned + error_bound]``."""
    p = ref.counts / ref.n
    q = cur.counts / cur.n
    d_edges = np.cumsum(p)[:-1] - np.cumsum(q)[:-1]  # F_r - F_c at each edge
    d_left = np.concatenate(([0.0], d_edges))  # at each bin's left end
    lower = float(np.max(np.abs(d_edges)))
    upper = float(np.max(np.maximum(d_left + p, q - d_left)))
    from scipy import stats  # about a second to import: only when a binned KS runs

    m, n = sorted([float(ref.n), float(cur.n)], reverse=True)
    # The effective sample size rounds to 0 when one side has a single value; kstwo needs n >= 1.
    pv = float(np.clip(stats.kstwo.sf(lower, max(1.0, np.round(m * n / (m + n)))), 0.0, 1.0))
    return lower, pv, max(upper - lower, 0.0)


def binned_wasserstein(ref: NumericSketch, cur: NumericSketch) -> tuple[float, float]:
    """``(W / reference std, error bound)`` with CDFs interpolated linearly inside bins.

    Values equal to a bin's right edge are a step at that edge, not spread over the bin: a column with
    few distinct values (0/1 flags, counts) has its edges at those values, so its CDFs are steps and the
    result is exact (interpolating them linearly halved the distance of a 0/1 column).
    """
    lo, hi = min(ref.min, cur.min), max(ref.max, cur.max)
    inner = np.clip(ref.edges, lo, hi)
    bounds = np.concatenate(([lo], inner, [hi]))
    widths = np.diff(bounds)
    p = ref.counts / ref.n
    q = cur.counts / cur.n
    # point masses at each bin's right edge (the top bin has none) and the mass strictly inside
    p_at = np.append(ref.at_edge, 0) / ref.n
    q_at = np.append(cur.at_edge, 0) / cur.n
    p_in, q_in = p - p_at, q - q_at
    d = np.concatenate(([0.0], np.cumsum(p) - np.cumsum(q)))  # at every bound, point masses included
    a = d[:-1]
    b = d[1:] - (p_at - q_at)  # just before the bin's right end: the step there is not yet taken
    same = a * b >= 0
    denom = np.where(same, 1.0, np.abs(a) + np.abs(b))
    area = np.where(same, (np.abs(a) + np.abs(b)) / 2.0, (a * a + b * b) / (2.0 * denom))
    w = float(np.dot(widths, area))
    err = float(np.dot(widths, p_in + q_in))
    scale = ref.std
    if scale == 0.0:
        n = ref.n + cur.n
        mean = (ref.n * ref.mean + cur.n * cur.mean) / n
        m2 = ref._m2 + cur._m2 + (ref.mean - mean) ** 2 * ref.n + (cur.mean - mean) ** 2 * cur.n
        scale = float(np.sqrt(m2 / n))
    if scale == 0.0:
        return 0.0, 0.0
    return w / scale, err / scale


def coarse_counts(ref: NumericSketch, cur: NumericSketch, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Fine bins merged into ``bins`` groups at the reference's quantiles (for PSI and JS)."""
    cum = np.cumsum(ref.counts)
    cuts = np.unique(np.searchsorted(cum, np.arange(1, bins) / bins * ref.n, side="left"))
    cuts = cuts[cuts < ref.counts.size - 1]
    groups = np.concatenate(([0], cuts + 1))
    return (
        np.add.reduceat(ref.counts, groups).astype(np.float64),
        np.add.reduceat(cur.counts, groups).astype(np.float64),
    )


def detect_from_sketches(
    reference: Mapping[str, NumericSketch | CategoricalCounts],
    current: Mapping[str, NumericSketch | CategoricalCounts],
    *,
    config: DetectConfig | None = None,
    n_rows: tuple[int, int] | None = None,
    columns: list[str] | None = None,
) -> Any:
    """Build a :class:`drift.model.DriftReport` from per-column sketches (binned path).

    The key ``prediction``, if present, is the output-drift entry; every other key is a feature. No
    performance or change-point analysis is done here (they need paired per-record data). With
    ``n_rows`` (rows of each file) the missing share of every column is compared as in
    :func:`drift.detect.detect`; ``columns`` names every planned column, so one without any value in the
    reference (no sketch) is reported untested instead of silently left out.
    """
    cfg = config or DetectConfig()
    if columns is not None:
        for name in columns:
            if name not in reference and name not in current:
                reference = {**reference, name: CategoricalCounts()}
                current = {**current, name: CategoricalCounts()}
    if set(reference) != set(current):
        missing = sorted(set(reference) ^ set(current))
        raise ValueError(f"sketches: columns {', '.join(missing)} are not in both reference and current")
    planned: list[tuple[str, str, stattests.StatTest, float | None, float, float | None, float | None, Any, Any]] = []
    for name in reference:
        if name in ("label", "timestamp", "model_id", "model_version") or (
            name == "prediction" and not cfg.test_prediction
        ):
            continue
        r, c = reference[name], current[name]
        ov = cfg.features.get(name, FeatureOverride())
        kind = "numeric" if isinstance(r, NumericSketch) else "categorical"
        if type(r) is not type(c):
            raise ValueError(f"column {name!r}: reference and current sketches are of different kinds")
        large = min(r.n, c.n) > cfg.large_sample_cutoff
        tname = ov.test or getattr(cfg, f"{kind}_{'large' if large else 'small'}_test")
        test = stattests.get_stattest(tname, kind)
        err: float | None = None
        if isinstance(r, NumericSketch) and isinstance(c, NumericSketch) and not np.array_equal(r.edges, c.edges):
            raise ValueError(f"column {name!r}: reference and current sketches have different bin edges")
        if r.n == 0 or c.n == 0:
            empty = " and ".join(side for side, x in (("reference", r), ("current", c)) if x.n == 0)
            planned.append(
                (
                    name,
                    kind,
                    test,
                    ov.threshold,
                    0.0,
                    None,
                    None,
                    {},
                    {"note": f"not tested: no values in the {empty} data"},
                )
            )
            continue
        if isinstance(r, NumericSketch):
            assert isinstance(c, NumericSketch)
            _check_same_edges(r, c, name)
            if test.name == "ks":
                stat, pv, err = binned_ks(r, c)
            elif test.name == "wasserstein":
                (stat, err), pv = binned_wasserstein(r, c), None
            else:
                rc, cc = coarse_counts(r, c, cfg.bins)
                stat = stattests.psi_from_counts(rc, cc) if test.name == "psi" else stattests.js_from_counts(rc, cc)
                pv = None
            rsum, csum = r.summary(), c.summary()
        else:
            assert isinstance(c, CategoricalCounts)
            rs, cs = r.sample(), c.sample()
            stat, pv = test.func(rs, cs, **({"bins": cfg.bins} if test.name in ("psi", "jensenshannon") else {}))
            rsum, csum = summarize(rs), summarize(cs, rs)
        planned.append((name, kind, test, ov.threshold, float(stat), pv, err, rsum, csum))

    # Reuse detect's correction by handing it lightweight stand-ins with the same attributes.
    from drift.detect import _Planned, _quality, _result, _thresholds

    stand_ins = [_Planned(name, kind, test, thr, None, None) for name, kind, test, thr, *_ in planned]
    for s, p in zip(stand_ins, planned, strict=True):
        s.note = p[8].get("note")
        s.n_reference, s.n_current = reference[s.name].n, current[s.name].n
        s.size_reference, s.size_current = n_rows if n_rows is not None else (0, 0)
        s.current_summary = {} if s.note else p[8]
    thresholds = _thresholds([(s, p[5]) for s, p in zip(stand_ins, planned, strict=True) if s.note is None], cfg)
    results: list[FeatureResult] = []
    prediction = None
    for s, (name, kind, test, _, stat, pv, err, rsum, csum) in zip(stand_ins, planned, strict=True):
        if s.note is not None:
            fr = _result(s, 0.0, None, 0.0)
            if name == "prediction":
                prediction = fr
            else:
                results.append(fr)
            continue
        thr = thresholds[id(s)]
        fr = FeatureResult(
            feature=name,
            kind=kind,  # type: ignore[arg-type]  # "numeric" or "categorical" by construction
            test=test.name,
            statistic=stat,
            p_value=pv,
            threshold=thr,
            drifted=test.is_drift(stat, pv, thr),
            n_reference=reference[name].n,
            n_current=current[name].n,
            returns=test.returns,
            error_bound=err,
            reference_summary=rsum,
            current_summary=csum,
        )
        if name == "prediction":
            prediction = fr
        else:
            results.append(fr)
    n_ref = max((v.n for v in reference.values()), default=0)
    n_cur = max((v.n for v in current.values()), default=0)
    quality = _quality(stand_ins, [], cfg) if n_rows is not None else None
    return assemble_report(results, prediction, None, [], cfg, n_ref, n_cur, binned=True, data_quality=quality)
