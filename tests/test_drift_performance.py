"""Concept drift on seeded streams with known change points; labels as they arrive (types, nulls, delays).

Streams (tests/drift_streams.py) have their change at a known row; the chunks (10 of 1,000 rows) that
must be flagged are asserted exactly. False-alarm rates are measured on no-drift streams and asserted
under the rule's bound (alpha = 0.05 family-wise over the segments: docs/drift.md, "Concept drift").
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from drift import performance as perf
from drift.detect import DetectConfig, detect
from tests.drift_streams import covariate_ramp, prior_shift, sea, timestamps


def _flagged(rep) -> list[int]:  # type: ignore[no-untyped-def]
    assert rep.performance is not None
    return [i for i, c in enumerate(rep.performance.chunks) if c.drifted]


# ---- seeded streams with known change points ----------------------------------------------------------


def test_sea_concept_flip_is_found_in_exactly_the_chunks_after_it() -> None:
    # river's SEA, variant 0 -> 3 halfway (issue 12: 94.6% -> 83% accuracy exited 0 before)
    rng = np.random.default_rng(0)
    ref, cur = sea(10_000, rng), sea(10_000, rng, flip_at=5_000)
    rep = detect(ref, cur)
    p = rep.performance
    assert p is not None and p.metric == "accuracy" and p.drifted and rep.drifted
    assert p.reference == pytest.approx(0.946, abs=0.01)
    assert p.chunks[7].value == pytest.approx(0.83, abs=0.03)
    assert _flagged(rep) == [5, 6, 7, 8, 9]
    assert [(c.start, c.end) for c in p.chunks[5:6]] == [(5_000, 6_000)]
    (after,) = p.after_change
    assert 4_500 <= after.start <= 5_300 and after.drifted and after.end == 10_000
    assert rep.change_points[0].index == after.start and rep.change_points[0].metric == "error"
    assert p.chunks[5].start_timestamp == str(np.datetime_as_string(timestamps(10_000)[5_000]))


def test_sea_stream_shuffled_in_the_file_is_put_in_time_order() -> None:
    rng = np.random.default_rng(0)
    ref, cur = sea(10_000, rng), sea(10_000, rng, flip_at=5_000)
    shuffle = np.random.default_rng(1).permutation(10_000)
    shuffled = {k: v[shuffle] for k, v in cur.items()}
    assert _flagged(detect(ref, shuffled)) == [5, 6, 7, 8, 9]


def test_gradual_concept_drift_flags_the_chunks_of_the_transition_and_after() -> None:
    rng = np.random.default_rng(0)
    ref, cur = sea(10_000, rng), sea(10_000, rng, flip_at=4_000, width=2_000)
    rep = detect(ref, cur)
    # 4,000-6,000: the new concept's share rises 0 -> 1; before it nothing may be flagged
    assert _flagged(rep) == [4, 5, 6, 7, 8, 9]
    assert all(3_800 <= c.start <= 6_200 for c in rep.performance.after_change)  # type: ignore[union-attr]


def test_prior_shift_is_performance_and_output_drift_from_the_shift_on() -> None:
    rng = np.random.default_rng(0)
    ref, cur = prior_shift(10_000, rng, at=None), prior_shift(10_000, rng, at=5_000)
    rep = detect(ref, cur)
    assert _flagged(rep) == [5, 6, 7, 8, 9]
    assert rep.prediction is not None and rep.prediction.drifted
    assert rep.drift_kinds == ["data", "performance"]


def test_covariate_ramp_is_data_drift_not_performance_and_adwin_finds_the_ramp() -> None:
    rng = np.random.default_rng(0)
    ref, cur = covariate_ramp(10_000, rng, start=None), covariate_ramp(10_000, rng, start=5_000)
    rep = detect(ref, cur)
    assert rep.drift_kinds == ["data"]
    assert {f.feature for f in rep.features if f.drifted} == {"x"}
    assert rep.performance is not None and not rep.performance.drifted and _flagged(rep) == []
    on_x = detect(ref, cur, config=DetectConfig(streaming_metric="x"))
    assert on_x.change_points and 5_000 <= on_x.change_points[0].index <= 8_000
    assert on_x.change_points[0].metric == "x"


def _scored(n: int, d: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    # binormal scores: AUC = Phi(d / sqrt 2)
    y = rng.random(n) < 0.5
    s = rng.normal(size=n) + d * y
    return {"x": rng.normal(size=n), "label": y.astype(np.int64), "prediction": 1 / (1 + np.exp(-s))}


def test_auc_drop_of_one_point_on_25000_rows_is_flagged() -> None:
    # issue 12: AUC 0.970 -> 0.959 (p ~ 1e-14) exited 0 with the fixed 0.05 drop; NannyML flags it
    rng = np.random.default_rng(0)
    ref, cur = _scored(25_000, 2.660, rng), _scored(25_000, 2.459, rng)
    rep = detect(ref, cur)
    p = rep.performance
    assert p is not None and p.metric == "auc" and p.test == "delong"
    assert p.degradation == pytest.approx(0.011, abs=0.002) and p.p_value < 1e-10
    assert p.threshold_source == "reference_chunks" and p.threshold < p.degradation
    assert p.chunk_rows == 2_500 and p.reference_chunks == 10
    assert p.drifted and len(_flagged(rep)) >= 5
    fixed = detect(ref, cur, config=DetectConfig(performance_threshold=0.05))
    assert fixed.performance is not None and not fixed.performance.drifted  # the old rule missed it


# ---- false alarms on no-drift streams ----------------------------------------------------------------


def _limit(seeds: int, rate: float = 0.05) -> float:
    return float(stats.binom.ppf(0.999, seeds, rate))


@pytest.mark.parametrize(("n", "seeds"), [(1_000, 80), (5_000, 30), (20_000, 10)])
def test_no_drift_false_alarm_rate_is_under_alpha(n: int, seeds: int) -> None:
    alarms = {"accuracy": 0, "auc": 0}
    for seed in range(seeds):
        rng = np.random.default_rng(10_000 + seed)
        for metric, make in (("accuracy", lambda r: sea(n, r)), ("auc", lambda r: _scored(n, 1.5, r))):
            rep = detect(make(rng), make(rng))
            assert rep.performance is not None and rep.performance.metric == metric
            alarms[metric] += rep.performance.drifted
    for metric, count in alarms.items():
        assert count <= _limit(seeds), (metric, count, seeds)


def test_no_drift_one_million_rows_no_alarm() -> None:
    rng = np.random.default_rng(77)
    rep = detect(sea(1_000_000, rng), sea(1_000_000, rng))
    p = rep.performance
    assert p is not None and not p.drifted and _flagged(rep) == []
    assert p.chunk_rows == 100_000 and p.threshold == perf.MIN_DEGRADATION["accuracy"]  # the floor
    assert not rep.drifted


# ---- label types --------------------------------------------------------------------------------------


def _binary(n: int, rng: np.random.Generator, sep: float) -> tuple[np.ndarray, np.ndarray]:
    y = rng.random(n) < 0.4
    logit = rng.normal(size=n) + sep * (2 * y - 1)
    return y, logit


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y], s[~y]
    return float(stats.mannwhitneyu(pos, neg).statistic / (pos.size * neg.size))


@pytest.mark.parametrize(
    ("encode", "score", "positive"),
    [
        (lambda y: y, "probability", None),  # booleans
        (lambda y: np.where(y, "yes", "no").astype(object), "probability", None),
        (lambda y: np.where(y, "true", "false").astype(object), "probability", None),
        (lambda y: np.where(y, "True", "False").astype(object), "probability", None),  # CSV spelling
        (lambda y: y.astype(np.int64), "logodds", None),  # 0/1 with log-odds: AUC, not regression
        (lambda y: np.where(y, "fraud", "legit").astype(object), "probability", "fraud"),
        (lambda y: np.where(y, "b", "a").astype(object), "probability", None),  # rarer class: "b"
    ],
)
def test_label_types_with_scores_give_the_same_auc(encode, score, positive) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    windows = []
    for sep in (1.2, 0.6):
        y, logit = _binary(3_000, rng, sep)
        s = logit if score == "logodds" else 1 / (1 + np.exp(-logit))
        windows.append(({"x": rng.normal(size=y.size), "label": encode(y), "prediction": s}, y, s))
    cfg = DetectConfig(performance_positive_label=positive)
    rep = detect(windows[0][0], windows[1][0], config=cfg)
    p = rep.performance
    assert p is not None and p.metric == "auc" and p.task == "classification" and p.drifted
    assert p.reference == pytest.approx(_auc(windows[0][1], windows[0][2]), abs=1e-12)
    assert p.current == pytest.approx(_auc(windows[1][1], windows[1][2]), abs=1e-12)


def test_class_predictions_with_probability_column_get_auc_accuracy_and_f1() -> None:
    rng = np.random.default_rng(4)

    def window(sep: float) -> dict[str, np.ndarray]:
        y, logit = _binary(2_000, rng, sep)
        prob = 1 / (1 + np.exp(-logit))
        return {"x": rng.normal(size=y.size), "label": y, "prediction": prob > 0.5, "probability": prob}

    ref, cur = window(1.2), window(1.2)
    rep = detect(ref, cur)
    p = rep.performance
    assert p is not None and p.metric == "auc" and p.positive_label == "true"
    assert set(p.metrics) == {"accuracy", "f1"}
    y, pred = cur["label"], cur["prediction"]
    tp = np.sum(y & pred)
    f1 = 2 * tp / (2 * tp + np.sum(pred & ~y) + np.sum(y & ~pred))
    assert p.metrics["f1"]["current"] == pytest.approx(f1, abs=1e-12)
    assert p.metrics["accuracy"]["current"] == pytest.approx(np.mean(y == pred), abs=1e-12)
    assert [f.feature for f in rep.features] == ["x"]  # probability is a score, not a feature
    only_f1 = detect(ref, cur, config=DetectConfig(performance_metric="f1"))
    assert only_f1.performance is not None and only_f1.performance.metric == "f1"
    assert only_f1.performance.test == "delta_method_z"


def test_f1_variance_matches_the_bootstrap() -> None:
    rng = np.random.default_rng(5)
    y = rng.random(4_000) < 0.3
    pred = np.where(rng.random(4_000) < 0.85, y, ~y)
    _, var = perf.f1_and_variance(y, pred)
    boot = []
    for _ in range(400):
        i = rng.integers(0, y.size, y.size)
        boot.append(perf.f1_and_variance(y[i], pred[i])[0])
    assert math_close(var, float(np.var(boot)), rel=0.25)


def math_close(a: float, b: float, rel: float) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b))


def test_fisher_and_welch_equal_scipy() -> None:
    for a, b, c, d in [(90, 10, 80, 20), (5, 0, 1, 4), (0, 10, 0, 10), (700, 300, 650, 350)]:
        assert perf.fisher_greater(a, b, c, d) == pytest.approx(
            stats.fisher_exact([[a, b], [c, d]], alternative="greater").pvalue, rel=1e-9, abs=1e-300
        )
    rng = np.random.default_rng(6)
    x, z = rng.normal(0, 1, 300), rng.normal(0.2, 2, 500)
    assert perf.welch_less(x, z) == pytest.approx(
        stats.ttest_ind(x, z, equal_var=False, alternative="less").pvalue, rel=1e-9
    )
    ranks = perf.midranks(np.array([3.0, 1.0, 3.0, 2.0, 3.0]))
    assert ranks.tolist() == stats.rankdata([3.0, 1.0, 3.0, 2.0, 3.0]).tolist()


# ---- nulls and delayed labels: rows are paired, never zipped --------------------------------------------


def _alternating(n: int) -> dict[str, np.ndarray]:
    y = np.arange(n) % 2
    return {"x": np.linspace(0, 1, n), "label": y.astype(object), "prediction": y.astype(object)}


@pytest.mark.parametrize("form", ["none", "masked", "arrow"])
def test_null_label_and_null_prediction_in_different_rows_keep_accuracy(form: str) -> None:
    # issue 12: a null label in row 0 and a null prediction in row 399, each dropped on its own and the
    # columns zipped, reported accuracy 1.0 -> 0.0 ("major performance drift") on a perfect model
    ref, cur = _alternating(400), _alternating(400)
    label = cur["label"].copy()
    pred = cur["prediction"].copy()
    label[0] = None
    pred[399] = None
    if form == "masked":
        cur["label"] = np.ma.MaskedArray(np.arange(400) % 2, mask=np.arange(400) == 0)
        cur["prediction"] = np.ma.MaskedArray(np.arange(400) % 2, mask=np.arange(400) == 399)
        ref = {k: (v.astype(np.int64) if k != "x" else v) for k, v in ref.items()}
    elif form == "arrow":
        cur["label"] = pa.array(label.tolist(), pa.int64())
        cur["prediction"] = pa.array(pred.tolist(), pa.int64())
        ref = {k: (v.astype(np.int64) if k != "x" else v) for k, v in ref.items()}
    else:
        cur["label"], cur["prediction"] = label, pred
    rep = detect(ref, cur)
    p = rep.performance
    assert p is not None and p.metric == "accuracy"
    assert (p.reference, p.current) == (1.0, 1.0)
    assert (p.n_current, p.labelled_current, p.rows_current) == (398, 399, 400)
    assert not p.drifted and "performance" not in rep.drift_kinds


def test_delayed_labels_use_the_rows_that_have_both_and_report_the_count() -> None:
    rng = np.random.default_rng(8)
    ref, cur = sea(10_000, rng), sea(10_000, rng, flip_at=5_000)
    label = cur["label"].astype(object)
    late = rng.random(10_000) < 0.6  # 60% of the labels have not arrived
    label[late] = None
    cur["label"] = label
    rep = detect(ref, cur)
    p = rep.performance
    assert p is not None and p.n_current == int((~late).sum()) == p.labelled_current
    # chunks are cut over the labelled rows (7 of 554 here) and reported in positions among all rows:
    # flagged are exactly the chunks that reach past the flip at row 5,000
    assert p.drifted and p.chunk_rows == p.n_current // 7
    assert _flagged(rep) == [i for i, c in enumerate(p.chunks) if c.end > 5_000] == [3, 4, 5, 6]
    assert p.chunks[0].start < 10 and p.chunks[-1].end > 9_990
    assert not any(m.column == "label" for m in rep.data_quality.missing)  # type: ignore[union-attr]


def test_no_labelled_row_is_said_not_silently_skipped() -> None:
    rng = np.random.default_rng(9)
    ref, cur = sea(2_000, rng), sea(2_000, rng)
    cur["label"] = np.full(2_000, None, dtype=object)
    rep = detect(ref, cur)
    assert rep.performance is None
    assert rep.notes == [
        "performance: current: no row has both label and prediction (0 of 2000 rows labelled); not computed"
    ]


def test_columns_whose_nulls_were_dropped_are_not_zipped() -> None:
    ref, cur = _alternating(400), _alternating(400)
    cur["label"], cur["prediction"] = cur["label"][1:], cur["prediction"][:-1]  # dropped nulls, zipped: wrong
    rep = detect(ref, cur)
    assert rep.performance is None
    assert "cannot pair 'label' with the other columns row by row: it has 399 entries for 400 rows" in rep.notes[0]


def test_labels_join_on_request_id_not_position() -> None:
    ids = np.array(["r1", "r2", "r3", "r4"], dtype=object)
    joined = perf.labels_by_request_id(ids, ["r4", "r2", "r9"], ["no", "yes", "yes"])
    assert joined.tolist() == [None, "yes", None, "no"]
    with pytest.raises(ValueError, match="request_id 'r2' has two labels"):
        perf.labels_by_request_id(ids, ["r2", "r2"], ["yes", "no"])


def test_cli_pairs_label_and_prediction_by_row(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    # the reproduction end to end: CSV, a null label in row 0 and a null prediction in row 399
    import json

    from drift.cli import main

    rows = ["x,label,prediction"]
    cur = ["x,label,prediction"]
    for i in range(400):
        rows.append(f"{i / 400},{i % 2},{i % 2}")
        cur.append(f"{i / 400},{'' if i == 0 else i % 2},{'' if i == 399 else i % 2}")
    (tmp_path / "ref.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "cur.csv").write_text("\n".join(cur) + "\n")
    out = tmp_path / "r.json"
    code = main(
        ["check", "--reference", str(tmp_path / "ref.csv"), "--current", str(tmp_path / "cur.csv"), "--out", str(out)]
    )
    report = json.loads(out.read_text())
    p = report["performance"]
    assert (p["reference"], p["current"], p["n_current"], p["labelled_current"]) == (1.0, 1.0, 398, 399)
    assert not p["drifted"] and code == 0
