"""Mergeable window summaries (drift/summaries.py): the Spark engine's unit of work, tested without Spark.

Partition summaries merged by key must equal the sketches of the whole window built directly, whatever the
split into partitions; performance from summaries must equal the local engine's (exact for accuracy and
MAE, within the documented bound for AUC).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from drift import detect as detect_mod
from drift.detect import DetectConfig, detect
from drift.readers import DataError
from drift.sketch import CategoricalCounts, NumericSketch
from drift.summaries import (
    SummarySpec,
    auc_error_bound,
    auc_from_cells,
    detect_from_summaries,
    merge_partials,
    performance_from_summaries,
    summarize_batches,
    summarize_local,
    window_from_merged,
)


def _spec(reference: dict[str, np.ndarray], kinds: dict[str, str]) -> SummarySpec:
    edges = {
        name: tuple(NumericSketch.from_reference(values[~np.isnan(values)]).edges.tolist())
        for name, values in reference.items()
        if kinds[name] == "numeric" and name != "label"
    }
    return SummarySpec(kinds=kinds, edges=edges, shifts={n: e[len(e) // 2] for n, e in edges.items()})


def _batches(data: dict[str, np.ndarray], size: int) -> list[pa.RecordBatch]:
    n = len(next(iter(data.values())))
    out = []
    for start in range(0, n, size):
        cols = {}
        for name, values in data.items():
            part = values[start : start + size]
            if part.dtype.kind == "f":
                cols[name] = pa.array(part, mask=np.isnan(part))  # NaN here stands for a missing value
            else:
                cols[name] = pa.array(part.tolist())
        out.append(pa.record_batch(cols))
    return out


def _window(seed: int, n: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(shift, 1.0, n)
    amount[rng.random(n) < 0.05] = np.nan  # missing values
    cat = rng.choice(np.array(["a", "b", "c", None], dtype=object), n, p=[0.5, 0.3, 0.15, 0.05])
    return {
        "amount": amount,
        "flag": rng.integers(0, 2, n).astype(np.float64),  # few distinct values: edges on the values
        "country": cat,
    }


KINDS = {"amount": "numeric", "flag": "numeric", "country": "categorical"}


def test_partitions_merged_equal_the_whole_window_sketched_directly() -> None:
    ref = _window(1, 30_000)
    spec = _spec(ref, KINDS)
    batches = _batches(ref, 4096)
    # Three "partitions" of uneven size, merged by key, as Spark's groupBy does.
    parts = [batches[:1], batches[1:5], batches[5:]]
    merged = window_from_merged(merge_partials(b for p in parts for b in summarize_batches(p, spec)), spec)
    whole = summarize_local(batches, spec)
    for name in ("amount", "flag"):
        direct = NumericSketch(np.asarray(spec.edges[name]))
        values = ref[name][~np.isnan(ref[name])]
        direct.update(values)
        for got in (merged.sketches[name], whole.sketches[name]):
            np.testing.assert_array_equal(got.counts, direct.counts)
            np.testing.assert_array_equal(got.at_edge, direct.at_edge)
            assert got.n == direct.n == values.size
            assert got.mean == pytest.approx(values.mean(), rel=1e-12)
            assert got.std == pytest.approx(values.std(), rel=1e-9)
            assert (got.min, got.max) == (values.min(), values.max())
    direct_counts = CategoricalCounts()
    direct_counts.update(np.array([c for c in ref["country"] if c is not None], dtype=object))
    assert merged.sketches["country"].counts == direct_counts.counts
    assert merged.missing == {
        "amount": int(np.isnan(ref["amount"]).sum()),
        "flag": 0,
        "country": int(sum(c is None for c in ref["country"])),
    }
    assert merged.rows == whole.rows == 30_000


def test_verdicts_and_statistics_match_the_exact_local_detection() -> None:
    ref, cur = _window(1, 20_000), _window(2, 20_000, shift=0.4)
    spec = _spec(ref, KINDS)
    r, c = summarize_local(_batches(ref, 5000), spec), summarize_local(_batches(cur, 5000), spec)
    report = detect_from_summaries(r, c)

    def clean(d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {
            "amount": d["amount"][~np.isnan(d["amount"])],
            "flag": d["flag"],
            "country": np.array([x for x in d["country"] if x is not None], dtype=object),
        }

    exact = detect(clean(ref), clean(cur), kinds=KINDS)
    assert [f.feature for f in report.features] == [f.feature for f in exact.features]
    for got, want in zip(report.features, exact.features, strict=True):
        assert got.test == want.test and got.drifted == want.drifted, got.feature
        if got.test == "wasserstein":
            assert abs(got.statistic - want.statistic) <= got.error_bound + 1e-12
        else:
            assert got.statistic == pytest.approx(want.statistic, rel=1e-12)
    assert [f.feature for f in report.features if f.drifted] == ["amount"]
    assert report.binned and report.n_reference == report.n_current == 20_000


def _pairs(seed: int, n: int, kind: str, worse: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "accuracy":
        y = rng.integers(0, 4, n).astype(np.float64)
        p = np.where(rng.random(n) < (0.6 if worse else 0.8), y, rng.integers(0, 4, n)).astype(np.float64)
    elif kind == "mae":
        y = rng.normal(10, 3, n)
        p = y + rng.normal(0, 1.5 if worse else 1.0, n)
    elif kind == "auc-discrete":
        y = rng.integers(0, 2, n).astype(np.float64)
        p = np.clip(np.round(0.5 + (y - 0.5) * (0.3 if worse else 0.6) + rng.normal(0, 0.3, n), 1), 0.05, 0.95)
    else:  # continuous scores
        y = rng.integers(0, 2, n).astype(np.float64)
        p = 1 / (1 + np.exp(-((y - 0.5) * (1.0 if worse else 2.0) + rng.normal(0, 1, n))))
    return {"label": y, "prediction": p}


def _whole_window(ref: dict[str, np.ndarray], cur: dict[str, np.ndarray], kind: str) -> tuple[str, float, float, float]:
    """``(metric, reference, current, one-sided p)`` of the whole windows, computed from the pairs directly.

    The Spark engine compares whole windows from mergeable summaries; the local engine's chunked rule
    (drift.performance, issue 12) needs the rows in time order and is not computed from summaries yet.
    """
    from scipy import stats

    from drift.performance import auc_delong

    (y0, p0), (y1, p1) = (ref["label"], ref["prediction"]), (cur["label"], cur["prediction"])
    if kind == "accuracy":
        a, c = int(np.sum(y0 == p0)), int(np.sum(y1 == p1))
        pv = stats.fisher_exact([[a, y0.size - a], [c, y1.size - c]], alternative="greater").pvalue
        return "accuracy", a / y0.size, c / y1.size, float(pv)
    if kind == "mae":
        e0, e1 = np.abs(y0 - p0), np.abs(y1 - p1)
        return (
            "mae",
            float(e0.mean()),
            float(e1.mean()),
            float(stats.ttest_ind(e0, e1, equal_var=False, alternative="less").pvalue),
        )
    (r, vr), (c, vc) = auc_delong(y0, p0), auc_delong(y1, p1)
    return "auc", r, c, float(stats.norm.sf((r - c) / np.sqrt(vr + vc)))


@pytest.mark.parametrize("kind", ["accuracy", "mae", "auc-discrete", "auc-continuous"])
@pytest.mark.parametrize("worse", [False, True])
def test_performance_from_summaries_matches_the_pairs(kind: str, worse: bool) -> None:
    ref, cur = _pairs(10, 8000, kind, False), _pairs(11, 8000, kind, worse)
    kinds = {"label": "numeric", "prediction": "numeric"}
    spec = _spec(ref, kinds)
    r, c = summarize_local(_batches(ref, 3000), spec), summarize_local(_batches(cur, 3000), spec)
    assert r.performance is not None and c.performance is not None
    got = performance_from_summaries(r.performance, c.performance, DetectConfig())
    metric, want_ref, want_cur, want_p = _whole_window(ref, cur, kind)
    assert got.metric == metric
    assert got.drifted is worse
    if kind in ("accuracy", "mae", "auc-discrete"):
        # exact: counts, moments, or scores on few values (the bin edges sit on them)
        assert got.reference == pytest.approx(want_ref, rel=1e-9)
        assert got.current == pytest.approx(want_cur, rel=1e-9)
        if kind != "mae":
            assert got.p_value == pytest.approx(want_p, rel=1e-6, abs=1e-300)
    else:
        assert c.performance.cells_pos is not None and c.performance.cells_neg is not None
        bound = auc_error_bound(c.performance.cells_pos, c.performance.cells_neg)
        assert 0 < bound < 0.002
        assert abs(got.current - want_cur) <= bound


def test_auc_from_cells_equals_delong_on_tied_scores() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 3000)
    s = rng.integers(0, 7, 3000).astype(np.float64)  # heavy ties
    edges = np.arange(7, dtype=np.float64)
    cells = 2 * np.searchsorted(edges, s) + 1  # every value sits on an edge
    pos = np.bincount(cells[y == 1], minlength=15)
    neg = np.bincount(cells[y == 0], minlength=15)
    auc, var = auc_from_cells(pos, neg)
    want_auc, want_var = detect_mod.auc_delong(y, s)
    assert auc == pytest.approx(want_auc, rel=1e-12)
    assert var == pytest.approx(want_var, rel=1e-9)
    assert auc_error_bound(pos, neg) == 0.0


def test_bad_data_is_one_line_naming_the_source_and_column() -> None:
    kinds = {"amount": "numeric", "country": "categorical"}
    spec = SummarySpec(kinds=kinds, edges={"amount": (0.0, 1.0)})
    text = pa.record_batch({"amount": pa.array(["1.5", "lots", None]), "country": pa.array(["a", "b", "c"])})
    with pytest.raises(DataError, match=r"^cur.csv: column 'amount': non-numeric value 'lots' in a numeric column$"):
        summarize_local([text], spec).check("cur.csv", kinds)
    nan = pa.record_batch({"amount": pa.array([1.0, float("nan"), float("inf")]), "country": pa.array(["a", "b", "c"])})
    with pytest.raises(DataError, match=r"^cur.csv: column 'amount': 2 NaN or infinite value\(s\)$"):
        summarize_local([nan], spec).check("cur.csv", kinds)
    empty = pa.record_batch({"amount": pa.array([1.0, 2.0]), "country": pa.array([None, None], pa.string())})
    with pytest.raises(DataError, match=r"^cur.csv: column 'country': all values are null$"):
        summarize_local([empty], spec).check("cur.csv", kinds)
