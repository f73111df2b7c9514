"""Two-sample statistical tests for data drift, in a small registry.

Each :class:`StatTest` has a name, the column kinds it accepts, a default threshold, whether it returns a
p-value (drift when ``p_value < threshold``) or a distance (drift when ``statistic >= threshold``), and a
plain function ``func(reference, current, **params) -> (statistic, p_value | None)`` that takes prepared
samples (:class:`NumericSample` sorts a column exactly once; :class:`CategoricalSample` counts it once),
so several tests on the same column share the work.

Tests (``docs/drift.md`` has the details and the references):

``ks``            two-sample Kolmogorov-Smirnov, two-sided; numeric; p-value; same numbers as
                  ``scipy.stats.ks_2samp`` (exact p below 10,000 rows, Smirnov's asymptotic above).
``wasserstein``   first Wasserstein distance divided by the reference standard deviation (the pooled one
                  when the reference is constant); numeric; distance; threshold 0.1.
``psi``           population stability index on reference-quantile bins (numeric) or category shares
                  (categorical); shares are floored at 1e-4 so empty bins and unseen categories count
                  instead of producing infinities; distance; threshold 0.1.
``jensenshannon`` Jensen-Shannon distance with the natural log (in [0, sqrt(ln 2)] = [0, 0.833]), as
                  Evidently computes it (``scipy.spatial.distance.jensenshannon`` with its default
                  base), so Evidently's threshold 0.1 means the same here; distance.
``chisquare``     chi-square test of homogeneity on the 2 x k table of category counts
                  (as ``scipy.stats.chi2_contingency``, no continuity correction); categories seen only in
                  the current window are a column of the table, not dropped; categorical; p-value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# scipy.stats costs about a second to import: it is imported inside the few functions that need it
# (exact KS p-values), never at module level; scipy.special (a fraction of that) serves the rest.

#: scipy's ks_2samp switches from the exact to the asymptotic p-value above this many rows.
KS_EXACT_MAX_N = 10_000
#: floor for bin / category shares in PSI (evidently and most PSI write-ups use the same 1e-4).
PSI_EPS = 1e-4
DEFAULT_BINS = 10


class NumericSample:
    """A numeric column prepared for testing: sorted once, with cached moments.

    ``values`` must be finite (the readers reject NaN and inf); ``presorted=True`` skips the sort when the
    caller already holds an ascending array.
    """

    def __init__(self, values: Any, *, presorted: bool = False) -> None:
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim != 1:
            raise ValueError(f"numeric sample must be one-dimensional, got shape {arr.shape}")
        if arr.size == 0:
            raise ValueError("numeric sample is empty")
        self.sorted: np.ndarray = arr if presorted else np.sort(arr)
        self.n: int = int(self.sorted.size)
        self._mean: float | None = None
        self._std: float | None = None

    @property
    def mean(self) -> float:
        """Arithmetic mean."""
        if self._mean is None:
            self._mean = float(self.sorted.mean())
        return self._mean

    @property
    def std(self) -> float:
        """Population standard deviation (ddof=0)."""
        if self._std is None:
            self._std = float(self.sorted.std())
        return self._std

    def quantiles(self, probs: np.ndarray) -> np.ndarray:
        """Quantiles by linear interpolation (numpy's default method) read off the sorted array."""
        pos = np.asarray(probs, dtype=np.float64) * (self.n - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, self.n - 1)
        frac = pos - lo
        s = self.sorted
        return s[lo] + (s[hi] - s[lo]) * frac

    def cdf_counts(self, edges: np.ndarray) -> np.ndarray:
        """Number of values ``<= edge`` for each edge (edges ascending)."""
        return np.searchsorted(self.sorted, edges, side="right")


class CategoricalSample:
    """A categorical column reduced to category counts (keys are strings).

    ``values`` may be a numpy array (object, str, bool or numeric codes) or an Arrow ``Array`` /
    ``ChunkedArray``. Dictionary-encoded Arrow columns (what the readers produce, and what Parquet stores
    for low-cardinality strings) are counted with ``np.bincount`` over the dictionary indices, without
    materialising a Python object per row; other Arrow arrays with Arrow's hash-based ``value_counts``.
    Nulls count as the category ``"<null>"`` in every representation.
    """

    def __init__(self, values: Any = None, *, counts: Mapping[str, int] | None = None) -> None:
        if counts is not None:
            self.counts: dict[str, int] = {str(k): int(v) for k, v in counts.items() if int(v) > 0}
        else:
            self.counts = _count_categories(values)
        self.n: int = int(sum(self.counts.values()))
        if self.n == 0:
            raise ValueError("categorical sample is empty")

    def shares(self) -> dict[str, float]:
        """Category share of the sample, in descending share then name order."""
        items = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return {k: v / self.n for k, v in items}


def _count_categories(values: Any) -> dict[str, int]:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return _count_arrow(values)
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"categorical sample must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind in "biuf":
        # Numeric codes (or booleans) declared categorical: np.unique is fast on native dtypes.
        keys, cnt = np.unique(arr, return_counts=True)
        return {_cat_key(k): int(c) for k, c in zip(keys.tolist(), cnt.tolist(), strict=True)}
    # Hash-based counting in Arrow avoids sorting Python objects (np.unique on object arrays is slow).
    try:
        parr = pa.array(arr, from_pandas=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        parr = pa.array(arr.astype(str))
    vc = pc.value_counts(parr)
    out: dict[str, int] = {}
    for k, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True):
        key = _cat_key(k)
        out[key] = out.get(key, 0) + int(c)
    return out


def _count_arrow(values: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    out: dict[str, int] = {}

    def add(key: str, count: int) -> None:
        out[key] = out.get(key, 0) + count

    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        if chunk.null_count:
            add("<null>", chunk.null_count)
            chunk = chunk.drop_null()
        if pa.types.is_dictionary(chunk.type):
            dictionary = chunk.dictionary
            counts = np.bincount(chunk.indices.to_numpy(zero_copy_only=False), minlength=len(dictionary))
            used = np.flatnonzero(counts)  # a dictionary may hold values this chunk never uses
            keys = dictionary.take(pa.array(used)).to_pylist()
            for k, c in zip(keys, counts[used].tolist(), strict=True):
                add(_cat_key(k), int(c))
        else:
            vc = pc.value_counts(chunk)
            for k, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True):
                add(_cat_key(k), int(c))
    return out


def _cat_key(k: Any) -> str:
    if k is None:
        return "<null>"
    if isinstance(k, float) and k.is_integer():
        return str(int(k))
    return str(k)


def aligned_counts(ref: CategoricalSample, cur: CategoricalSample) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Counts of both samples over the union of categories (reference categories first, then new ones)."""
    cats = sorted(ref.counts) + sorted(set(cur.counts) - set(ref.counts))
    r = np.array([ref.counts.get(c, 0) for c in cats], dtype=np.float64)
    c = np.array([cur.counts.get(c, 0) for c in cats], dtype=np.float64)
    return cats, r, c


def quantile_bin_counts(
    ref: NumericSample, cur: NumericSample, bins: int = DEFAULT_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of both samples in bins cut at the reference's quantiles ``k / bins``.

    Bins are right-closed, the outer ones unbounded; repeated quantiles (ties) are merged, so a
    reference with few distinct values gets fewer bins. Returns ``(edges, ref_counts, cur_counts)``.
    """
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    edges = np.unique(ref.quantiles(np.arange(1, bins) / bins))
    rc = np.diff(np.concatenate(([0], ref.cdf_counts(edges), [ref.n])))
    cc = np.diff(np.concatenate(([0], cur.cdf_counts(edges), [cur.n])))
    return edges, rc.astype(np.float64), cc.astype(np.float64)


# ---- statistics on counts (shared with the binned path in drift.sketch) ---------------------------------


def psi_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray, eps: float = PSI_EPS) -> float:
    """Population stability index ``sum((q - p) * ln(q / p))`` with shares floored at ``eps``."""
    p = np.maximum(ref_counts / ref_counts.sum(), eps)
    q = np.maximum(cur_counts / cur_counts.sum(), eps)
    return float(np.sum((q - p) * np.log(q / p)))


#: Log base of the Jensen-Shannon distance: natural, as Evidently (``distance.jensenshannon(p, q)`` with
#: scipy's default base) whose 0.1 threshold we use. Base 2 would make every distance 1/sqrt(ln 2) = 1.20
#: times larger and flag shifts Evidently does not.
JS_LOG_BASE = math.e


def js_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray, base: float = JS_LOG_BASE) -> float:
    """Jensen-Shannon distance, natural log by default (0 = identical, sqrt(ln 2) = disjoint supports).

    Equals ``scipy.spatial.distance.jensenshannon(p, q, base)`` on the normalised counts.
    """
    if ref_counts.size < 2:
        return 0.0
    from scipy.special import rel_entr

    p = ref_counts / ref_counts.sum()
    q = cur_counts / cur_counts.sum()
    m = (p + q) / 2.0
    js = (float(np.sum(rel_entr(p, m))) + float(np.sum(rel_entr(q, m)))) / 2.0
    return math.sqrt(max(js, 0.0) / math.log(base))


def chi2_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """Chi-square test of homogeneity of a 2 x k table; ``(statistic, p_value)``."""
    keep = (ref_counts + cur_counts) > 0
    if int(keep.sum()) < 2:
        return 0.0, 1.0  # one category in both windows: nothing can differ
    from scipy.special import chdtrc

    table = np.vstack([ref_counts[keep], cur_counts[keep]])
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(chdtrc(table.shape[1] - 1, statistic))


# ---- the tests ----------------------------------------------------------------------------------------


def ks_test(ref: NumericSample, cur: NumericSample) -> tuple[float, float]:
    """Two-sided two-sample KS; matches ``scipy.stats.ks_2samp`` (method ``auto``)."""
    from scipy import stats

    if max(ref.n, cur.n) <= KS_EXACT_MAX_N:
        res = stats.ks_2samp(ref.sorted, cur.sorted)
        return float(res.statistic), float(res.pvalue)
    d = ks_statistic_sorted(ref.sorted, cur.sorted)
    m, n = sorted([float(ref.n), float(cur.n)], reverse=True)
    en = m * n / (m + n)
    return d, float(np.clip(stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))


def ks_statistic_sorted(a: np.ndarray, b: np.ndarray) -> float:
    """KS statistic ``sup |F_a - F_b|`` of two ascending arrays (the CDFs jump only at data points)."""
    data_all = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, data_all, side="right") / a.size
    cdf_b = np.searchsorted(b, data_all, side="right") / b.size
    diff = cdf_a - cdf_b
    return float(max(np.clip(-diff.min(), 0.0, 1.0), diff.max()))


def wasserstein_sorted(a: np.ndarray, b: np.ndarray) -> float:
    """First Wasserstein distance of two ascending samples, in O(n) without a merge.

    ``W1 = integral over u in (0, 1] of |Q_a(u) - Q_b(u)|``; both quantile functions are step functions
    with breaks at ``i / n_a`` and ``j / n_b``. Each break closes one interval of the merged grid; the
    interval's start (the previous break of either grid) and the other sample's quantile on it follow from
    integer arithmetic, so the cost is a few vectorised passes instead of a merge sort.
    """
    na, nb = a.size, b.size
    if na == nb:
        return float(np.mean(np.abs(a - b)))
    i = np.arange(1, na + 1, dtype=np.int64)
    ci = (i * nb + (na - 1)) // na  # ceil(i * nb / na): b's quantile index (1-based) on this interval
    # On equal breaks the a-break is taken first, so the b-break after it closes an empty interval.
    wa = i / na - np.maximum((i - 1) / na, (ci - 1) / nb)
    total = float(np.dot(wa, np.abs(a - b[ci - 1])))
    j = np.arange(1, nb + 1, dtype=np.int64)
    fj = (j * na) // nb  # number of a-breaks <= j / nb
    wb = j / nb - np.maximum((j - 1) / nb, fj / na)
    cj = np.maximum(fj + ((j * na) % nb > 0), 1)  # ceil(j * na / nb)
    total += float(np.dot(wb, np.abs(a[cj - 1] - b)))
    return total


def wasserstein_normed(ref: NumericSample, cur: NumericSample) -> tuple[float, None]:
    """Wasserstein distance divided by the reference standard deviation (pooled if that is zero)."""
    w = wasserstein_sorted(ref.sorted, cur.sorted)
    if w == 0.0:
        return 0.0, None
    scale = ref.std
    if scale == 0.0:
        # A constant reference has no spread to scale by; the pooled one is > 0 whenever w > 0.
        pooled = np.concatenate([ref.sorted, cur.sorted])
        scale = float(pooled.std())
    return w / scale, None


def psi_test(
    ref: NumericSample | CategoricalSample, cur: NumericSample | CategoricalSample, bins: int = DEFAULT_BINS
) -> tuple[float, None]:
    """PSI on reference-quantile bins (numeric) or on category shares (categorical)."""
    r, c = _binned(ref, cur, bins)
    return psi_from_counts(r, c), None


def js_test(
    ref: NumericSample | CategoricalSample, cur: NumericSample | CategoricalSample, bins: int = DEFAULT_BINS
) -> tuple[float, None]:
    """Jensen-Shannon distance (natural log) on reference-quantile bins or category shares."""
    r, c = _binned(ref, cur, bins)
    return js_from_counts(r, c), None


def chisquare_test(ref: CategoricalSample, cur: CategoricalSample) -> tuple[float, float]:
    """Chi-square homogeneity test on category counts, unseen categories included."""
    _, r, c = aligned_counts(ref, cur)
    return chi2_from_counts(r, c)


def _binned(ref: Any, cur: Any, bins: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(ref, NumericSample) and isinstance(cur, NumericSample):
        _, r, c = quantile_bin_counts(ref, cur, bins)
        return r, c
    if isinstance(ref, CategoricalSample) and isinstance(cur, CategoricalSample):
        _, r, c = aligned_counts(ref, cur)
        return r, c
    raise TypeError("reference and current must both be NumericSample or both CategoricalSample")


# ---- registry -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatTest:
    """A registered drift test: see the module docstring for the calling convention."""

    name: str
    kinds: frozenset[str]
    default_threshold: float
    returns: Literal["p_value", "distance"]
    func: Callable[..., tuple[float, float | None]]
    description: str = ""

    def is_drift(self, statistic: float, p_value: float | None, threshold: float) -> bool:
        """Decision rule: ``p < threshold`` for p-value tests, ``statistic >= threshold`` for distances."""
        if self.returns == "p_value":
            return p_value is not None and p_value < threshold
        return statistic >= threshold


_BOTH = frozenset({"numeric", "categorical"})

REGISTRY: dict[str, StatTest] = {
    t.name: t
    for t in (
        StatTest("ks", frozenset({"numeric"}), 0.05, "p_value", ks_test, "two-sample Kolmogorov-Smirnov"),
        StatTest(
            "wasserstein",
            frozenset({"numeric"}),
            0.1,
            "distance",
            wasserstein_normed,
            "Wasserstein distance / reference std",
        ),
        StatTest("psi", _BOTH, 0.1, "distance", psi_test, "population stability index"),
        StatTest("jensenshannon", _BOTH, 0.1, "distance", js_test, "Jensen-Shannon distance (natural log)"),
        StatTest(
            "chisquare", frozenset({"categorical"}), 0.05, "p_value", chisquare_test, "chi-square test of homogeneity"
        ),
    )
}


def get_stattest(name: str, kind: str | None = None) -> StatTest:
    """Look a test up by name (and check it accepts ``kind`` when given); ``ValueError`` lists valid names."""
    test = REGISTRY.get(name)
    if test is None:
        raise ValueError(f"unknown drift test {name!r}; valid tests: {', '.join(sorted(REGISTRY))}")
    if kind is not None and kind not in test.kinds:
        valid = sorted(n for n, t in REGISTRY.items() if kind in t.kinds)
        raise ValueError(f"drift test {name!r} does not accept {kind} columns; valid for {kind}: {', '.join(valid)}")
    return test


def make_sample(values: Any, kind: str) -> NumericSample | CategoricalSample:
    """Prepare a column for testing according to its kind."""
    if kind == "numeric":
        return NumericSample(values)
    if kind == "categorical":
        return CategoricalSample(values)
    raise ValueError(f"unknown column kind {kind!r}; valid kinds: categorical, numeric")


def run_stattest(name: str, reference: Any, current: Any, kind: str, **params: Any) -> tuple[float, float | None]:
    """Convenience: run a registered test on two raw arrays."""
    test = get_stattest(name, kind)
    return test.func(make_sample(reference, kind), make_sample(current, kind), **params)
