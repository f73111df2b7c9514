"""Statistical tests of drift.stattests and the binned path in drift.sketch, checked against scipy."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from drift import stattests as st
from drift.sketch import CategoricalCounts, NumericSketch, binned_ks, binned_wasserstein, detect_from_sketches

SIZES = [(7, 5), (50, 80), (500, 499), (1000, 1000), (3, 11)]


@pytest.mark.parametrize(("na", "nb"), SIZES)
@pytest.mark.parametrize("rounded", [False, True])  # rounding makes ties
def test_ks_and_wasserstein_equal_scipy(na: int, nb: int, rounded: bool) -> None:
    rng = np.random.default_rng(na * 31 + nb)
    a, b = rng.normal(size=na), rng.normal(0.3, 1.2, size=nb)
    if rounded:
        a, b = a.round(1), b.round(1)
    ra, rb = st.NumericSample(a), st.NumericSample(b)
    stat, p = st.ks_test(ra, rb)
    ref = stats.ks_2samp(a, b)
    assert stat == pytest.approx(ref.statistic, abs=1e-9)
    assert p == pytest.approx(ref.pvalue, abs=1e-9)
    assert st.wasserstein_sorted(ra.sorted, rb.sorted) == pytest.approx(stats.wasserstein_distance(a, b), abs=1e-9)
    w, none = st.wasserstein_normed(ra, rb)
    assert none is None
    assert w == pytest.approx(stats.wasserstein_distance(a, b) / np.std(a), abs=1e-9)


def test_ks_asymptotic_path_equals_scipy() -> None:
    # Above 10,000 rows we compute D ourselves and use Smirnov's distribution, as scipy's "auto" does.
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=20_000), rng.normal(0.02, 1.0, size=15_001)
    stat, p = st.ks_test(st.NumericSample(a), st.NumericSample(b))
    ref = stats.ks_2samp(a, b)
    assert stat == pytest.approx(ref.statistic, abs=1e-9)
    assert p == pytest.approx(ref.pvalue, abs=1e-9)


def test_chisquare_equals_scipy_and_keeps_unseen_categories() -> None:
    ref = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 20, dtype=object)
    cur = np.array(["a"] * 40 + ["b"] * 30 + ["c"] * 20 + ["new"] * 10, dtype=object)
    stat, p = st.chisquare_test(st.CategoricalSample(ref), st.CategoricalSample(cur))
    expected = stats.chi2_contingency(np.array([[50, 30, 20, 0], [40, 30, 20, 10]]), correction=False)
    assert stat == pytest.approx(expected.statistic, abs=1e-9)
    assert p == pytest.approx(expected.pvalue, abs=1e-9)
    assert p < 0.05  # the unseen category is what makes this significant


def test_categorical_psi_and_js_on_shares() -> None:
    ref = st.CategoricalSample(counts={"a": 500, "b": 300, "c": 200})
    cur = st.CategoricalSample(counts={"a": 300, "b": 300, "c": 200, "z": 200})
    js, _ = st.js_test(ref, cur)
    assert js == pytest.approx(jensenshannon([0.5, 0.3, 0.2, 0.0], [0.3, 0.3, 0.2, 0.2]), abs=1e-12)
    psi, _ = st.psi_test(ref, cur)
    p = np.array([0.5, 0.3, 0.2, 1e-4])
    q = np.array([0.3, 0.3, 0.2, 0.2])
    assert psi == pytest.approx(float(np.sum((q - p) * np.log(q / p))), abs=1e-12)
    same_psi, _ = st.psi_test(ref, ref)
    assert same_psi == 0.0


def test_jensenshannon_uses_the_natural_log_as_evidently() -> None:
    # The 0.1 threshold is Evidently's; Evidently computes the distance with scipy's default base (e):
    # evidently src/evidently/legacy/calculations/stattests/jensenshannon.py, `base: Optional[float] = None`
    # passed to `distance.jensenshannon` (and, before it took a base, `distance.jensenshannon(p, q)`).
    p, q = np.array([40.0, 60.0]), np.array([60.0, 40.0])
    natural = st.js_from_counts(p, q)
    assert math.e == st.JS_LOG_BASE
    assert natural == pytest.approx(jensenshannon(p / 100, q / 100), abs=1e-12)
    assert st.js_from_counts(p, q, base=2) == pytest.approx(natural / math.sqrt(math.log(2)), abs=1e-12)
    disjoint = st.js_from_counts(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert disjoint == pytest.approx(math.sqrt(math.log(2)), abs=1e-12)  # the range is [0, 0.833], not [0, 1]


def test_numeric_psi_and_js_use_reference_quantile_bins() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=5000), rng.normal(0.5, 1.0, size=4000)
    edges = np.quantile(a, np.arange(1, 10) / 10)  # numpy's own quantiles, independent of our code
    pa = np.histogram(a, np.concatenate(([-np.inf], edges, [np.inf])))[0] / a.size
    pb = np.histogram(b, np.concatenate(([-np.inf], edges, [np.inf])))[0] / b.size
    js, _ = st.js_test(st.NumericSample(a), st.NumericSample(b))
    assert js == pytest.approx(jensenshannon(pa, pb), abs=1e-9)
    psi, _ = st.psi_test(st.NumericSample(a), st.NumericSample(b))
    assert psi == pytest.approx(float(np.sum((pb - pa) * np.log(pb / pa))), abs=1e-9)
    assert psi > 0.1  # a half-sd mean shift is past the usual PSI alarm level


def test_categorical_counting_of_mixed_and_bool_values() -> None:
    assert st.CategoricalSample(np.array([True, False, True])).counts == {"True": 2, "False": 1}
    mixed = st.CategoricalSample(np.array(["a", 1, "a", None], dtype=object)).counts
    assert mixed == {"a": 2, "1": 1, "None": 1}


def test_registry_lookup_errors_list_valid_names() -> None:
    assert st.get_stattest("ks").returns == "p_value"
    with pytest.raises(ValueError, match="chisquare, jensenshannon, ks, psi, wasserstein"):
        st.get_stattest("kolmogorov")
    with pytest.raises(ValueError, match="does not accept categorical"):
        st.get_stattest("ks", "categorical")
    for test in st.REGISTRY.values():
        assert test.kinds <= {"numeric", "categorical"} and test.default_threshold > 0


def test_constant_reference_wasserstein_uses_pooled_spread() -> None:
    w, _ = st.wasserstein_normed(st.NumericSample(np.zeros(100)), st.NumericSample(np.ones(100)))
    assert w == pytest.approx(1.0 / 0.5)  # W = 1, pooled std = 0.5
    assert st.wasserstein_normed(st.NumericSample(np.ones(10)), st.NumericSample(np.ones(10)))[0] == 0.0


# ---- binned path -------------------------------------------------------------------------------------


def _sketches(a: np.ndarray, b: np.ndarray, bins: int = 1000) -> tuple[NumericSketch, NumericSketch]:
    r = NumericSketch.from_reference(a[: a.size // 4], bins=bins)  # edges from a sample, as readers do
    c = r.empty_like()
    for chunk in np.array_split(a, 7):
        r.update(chunk)
    for chunk in np.array_split(b, 3):
        c.update(chunk)
    return r, c


@pytest.mark.parametrize("seed", range(6))
def test_binned_ks_brackets_exact_ks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 40_000
    a = rng.normal(size=n)
    b = rng.normal(0.1 * (seed % 3), 1.0 + 0.2 * (seed % 2), size=n // 2)
    if seed >= 4:
        a, b = a.round(1), b.round(1)  # heavy ties
    r, c = _sketches(a, b)
    lower, _, bound = binned_ks(r, c)
    exact = stats.ks_2samp(a, b).statistic
    assert lower - 1e-12 <= exact <= lower + bound + 1e-12
    max_mass = max((r.counts / r.n).max(), (c.counts / c.n).max())
    assert bound <= max_mass + 1e-12


def test_binned_wasserstein_within_bound_and_moments_exact() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=60_000), rng.normal(0.3, 1.3, size=30_000)
    r, c = _sketches(a, b)
    w, err = binned_wasserstein(r, c)
    exact = stats.wasserstein_distance(a, b) / a.std()
    assert abs(w - exact) <= err
    assert r.mean == pytest.approx(a.mean(), abs=1e-12)
    assert r.std == pytest.approx(a.std(), rel=1e-12)
    assert (r.n, r.min, r.max) == (a.size, a.min(), a.max())


def test_detect_from_sketches_flags_shift_and_not_identical() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(size=50_000)
    r_same, c_same = _sketches(a, rng.normal(size=50_000))
    r_shift, c_shift = _sketches(a, rng.normal(0.5, 1.0, size=50_000))
    cat_r, cat_c = CategoricalCounts(), CategoricalCounts()
    cat_r.update(rng.choice(np.array(["a", "b"], dtype=object), 50_000))
    cat_c.update(rng.choice(np.array(["a", "b", "c"], dtype=object), 50_000, p=[0.3, 0.3, 0.4]))
    rep = detect_from_sketches({"x": r_same, "y": r_shift, "k": cat_r}, {"x": c_same, "y": c_shift, "k": cat_c})
    by = {f.feature: f for f in rep.features}
    assert not by["x"].drifted and by["y"].drifted and by["k"].drifted
    assert by["y"].test == "wasserstein" and by["y"].error_bound is not None
    assert rep.binned and rep.severity == "major"
    with pytest.raises(ValueError, match="different bin edges"):
        detect_from_sketches({"x": r_same}, {"x": NumericSketch(np.array([0.0]))})


@pytest.mark.parametrize("kind", ["flag", "counts"])
def test_binned_wasserstein_exact_on_discrete_columns(kind: str) -> None:
    # 0/1 flags and small counts: the edges sit on the values, so the CDFs are steps, not ramps.
    # (Interpolating linearly inside bins reported half the distance of a 0/1 column: 0.092 vs 0.183.)
    rng = np.random.default_rng(5)
    if kind == "flag":
        a = (rng.random(80_000) < 0.30).astype(float)
        b = (rng.random(40_000) < 0.38).astype(float)
    else:  # every value has a share above 1/1000, so each is a reference quantile, hence an edge
        a = rng.choice(np.arange(6.0), 80_000, p=[0.3, 0.25, 0.2, 0.12, 0.08, 0.05])
        b = rng.choice(np.arange(6.0), 40_000, p=[0.2, 0.2, 0.2, 0.15, 0.15, 0.1])
    r, c = _sketches(a, b)
    w, err = binned_wasserstein(r, c)
    exact = stats.wasserstein_distance(a, b) / a.std()
    assert exact > 0.05
    assert w == pytest.approx(exact, rel=1e-9)
    assert err == pytest.approx(0.0, abs=1e-12)


def test_binned_wasserstein_discrete_values_beyond_reference_edges_stay_within_bound() -> None:
    rng = np.random.default_rng(6)
    a = rng.poisson(2.0, 50_000).astype(float)
    b = rng.poisson(2.0, 50_000).astype(float) + (rng.random(50_000) < 0.1) * 30.0  # new values far above
    r, c = _sketches(a, b)
    w, err = binned_wasserstein(r, c)
    exact = stats.wasserstein_distance(a, b) / a.std()
    assert err > 0 and abs(w - exact) <= err + 1e-12


def test_categorical_counts_same_for_numpy_and_arrow() -> None:
    rng = np.random.default_rng(9)
    values = rng.choice(np.array(["de", "fr", "us", "xx"], dtype=object), 5000, p=[0.4, 0.3, 0.2, 0.1])
    values[[7, 99]] = None
    expected = st.CategoricalSample(values).counts
    assert expected["<null>"] == 2 and sum(expected.values()) == 5000
    plain = pa.array(values)
    dictionary = plain.dictionary_encode()
    # chunks with different dictionaries, one of them holding a value its rows never use
    first = dictionary.slice(0, 2500)
    second = pa.array([*values[2500:].tolist(), "never"]).dictionary_encode().slice(0, 2500)
    for arrow in (plain, dictionary, pa.chunked_array([first, second]), pa.chunked_array([plain])):
        assert st.CategoricalSample(arrow).counts == expected
    codes = rng.integers(0, 4, 1000)
    assert st.CategoricalSample(pa.array(codes)).counts == st.CategoricalSample(codes).counts
    for arrow in (pa.array(values), pa.array(values).dictionary_encode()):
        ref, cur = st.CategoricalSample(arrow), st.CategoricalSample(values[::-1])
        assert st.chisquare_test(ref, cur) == st.chisquare_test(st.CategoricalSample(values), cur)
