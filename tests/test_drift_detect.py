"""drift.detect: selection, false-alarm rates, known shifts, correction, overrides, performance, severity."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from drift.detect import DetectConfig, FeatureOverride, auc_delong, detect, load_detect_config

CATS = np.array(["a", "b", "c", "d"], dtype=object)
SHARES = [0.4, 0.3, 0.2, 0.1]


def _data(
    n: int,
    rng: np.random.Generator,
    *,
    mean: float = 0.0,
    scale: float = 1.0,
    shares: list[float] | None = None,
    cats: np.ndarray = CATS,
) -> dict[str, np.ndarray]:
    return {
        "x": rng.normal(mean, scale, n),
        "u": rng.uniform(0, 10, n),
        "c": rng.choice(cats, n, p=shares or SHARES),
    }


def _max_alarm_rate(nominal: float, trials: int) -> float:
    # one-sided binomial 99.9% upper limit: an honest bound that still fails on a real excess
    return float(stats.binom.ppf(0.999, trials, nominal)) / trials


@pytest.mark.parametrize(("n", "seeds"), [(50, 300), (500, 200)])
def test_identical_small_samples_false_alarm_rate_at_most_nominal(n: int, seeds: int) -> None:
    alpha = 0.05
    alarms = 0
    per_test_alarms = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        rep = detect(_data(n, rng), _data(n, rng))
        assert all(f.test in ("ks", "chisquare") for f in rep.features)
        alarms += rep.drifted
        per_test_alarms += sum(f.drifted for f in rep.features)
    # Bonferroni controls the family-wise rate at alpha over the 3 features
    assert alarms / seeds <= _max_alarm_rate(alpha, seeds)
    assert per_test_alarms / (3 * seeds) <= _max_alarm_rate(alpha / 3, 3 * seeds)


@pytest.mark.parametrize(
    ("n", "seeds"), [(5_000, 20), (100_000, 2), pytest.param(1_000_000, 1, marks=pytest.mark.slow)]
)
def test_identical_large_samples_never_alarm(n: int, seeds: int) -> None:
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        rep = detect(_data(n, rng), _data(n, rng))
        assert {f.test for f in rep.features} == {"wasserstein", "jensenshannon"}
        assert not rep.drifted and rep.severity == "none" and rep.drift_kinds == []
        assert max(f.statistic for f in rep.features) < 0.05  # far below the 0.1 thresholds


SHIFTS = {
    "mean": ({"mean": 0.6}, "x"),
    "scale": ({"scale": 1.8}, "x"),
    "share": ({"shares": [0.2, 0.2, 0.3, 0.3]}, "c"),
    "unseen": ({"cats": np.array(["a", "b", "c", "new"], dtype=object)}, "c"),
}


@pytest.mark.parametrize("n", [500, 5_000, 100_000])
@pytest.mark.parametrize("shift", sorted(SHIFTS))
def test_known_shifts_are_flagged_and_only_there(n: int, shift: str) -> None:
    kwargs, column = SHIFTS[shift]
    for seed in range(3):
        rng = np.random.default_rng(seed)
        rep = detect(_data(n, rng), _data(n, rng, **kwargs))
        by = {f.feature: f for f in rep.features}
        assert by[column].drifted, (shift, n, by[column])
        assert not by["u"].drifted
        assert rep.drifted and "data" in rep.drift_kinds and rep.severity in ("minor", "major")


def test_unseen_category_reported_in_summary() -> None:
    rng = np.random.default_rng(0)
    rep = detect(_data(2000, rng), _data(2000, rng, cats=np.array(["a", "b", "c", "new"], dtype=object)))
    c = next(f for f in rep.features if f.feature == "c")
    assert c.current_summary["new_categories"] == ["new"]
    assert c.current_summary["new_share"] == pytest.approx(0.1, abs=0.03)


def test_bonferroni_threshold_is_alpha_over_features() -> None:
    rng = np.random.default_rng(1)
    ref = {f"f{i}": rng.normal(size=200) for i in range(4)}
    cur = {f"f{i}": rng.normal(size=200) for i in range(4)}
    rep = detect(ref, cur, config=DetectConfig(alpha=0.1, test_prediction=False))
    assert [f.threshold for f in rep.features] == [0.1 / 4] * 4
    none = detect(ref, cur, config=DetectConfig(alpha=0.1, correction="none"))
    assert [f.threshold for f in none.features] == [0.1] * 4


def test_holm_is_step_down_and_consistent() -> None:
    rng = np.random.default_rng(2)
    ref = {f"f{i}": rng.normal(size=300) for i in range(4)}
    cur = {
        "f0": rng.normal(1.0, 1, 300),
        "f1": rng.normal(0.35, 1, 300),
        "f2": rng.normal(size=300),
        "f3": rng.normal(size=300),
    }
    rep = detect(ref, cur, config=DetectConfig(correction="holm"))
    ps = sorted((f.p_value, f.threshold, f.drifted) for f in rep.features)
    expected = []
    stopped = None
    for k, (p, _, _) in enumerate(ps):
        thr = 0.05 / (4 - k)
        if stopped is None and p >= thr:
            stopped = thr
        expected.append(thr if stopped is None else stopped)
    assert [t for _, t, _ in ps] == pytest.approx(expected)
    assert [d for *_, d in ps] == [p < t for p, t, _ in ps]
    assert ps[0][2]  # the 1-sd shift is always found


def test_overrides_from_yaml_and_json(tmp_path: Path) -> None:
    y = tmp_path / "drift.yaml"
    y.write_text(
        "alpha: 0.01\ncorrection: holm\nfeatures:\n  x: {test: psi, threshold: 0.2}\n"
        "  c: {kind: categorical}\nseverity: {major_share: 0.75}\nperformance: {threshold: 0.1}\n"
    )
    cfg = load_detect_config(y)
    assert cfg.alpha == 0.01 and cfg.correction == "holm" and cfg.major_share == 0.75
    assert cfg.features["x"] == FeatureOverride(test="psi", threshold=0.2)
    assert cfg.performance_threshold == 0.1
    rng = np.random.default_rng(3)
    rep = detect(_data(400, rng), _data(400, rng), config=cfg)
    x = next(f for f in rep.features if f.feature == "x")
    assert (x.test, x.threshold) == ("psi", 0.2)
    j = tmp_path / "drift.json"
    j.write_text(json.dumps({"tests": {"numeric_large": "ks"}, "large_sample_cutoff": 10}))
    assert load_detect_config(j).numeric_large_test == "ks"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("alpah: 0.1\n", r"drift\.yaml: unknown key 'alpah'; valid: alpha"),
        ("alpha: 2\n", r"drift\.yaml: key 'alpha': must be in \(0, 1\)"),
        ("alpha: yes\n", r"drift\.yaml: key 'alpha': expected float"),
        ("features:\n  x: {test: nope}\n", r"drift\.yaml: key 'features\.x\.test': unknown drift test 'nope'"),
        ("features:\n  x: {treshold: 1}\n", r"drift\.yaml: unknown key 'features\.x\.treshold'"),
        ("features:\n  x: {kind: categorical, test: ks}\n", r"features\.x\.test.*does not accept categorical"),
        ("tests: {numeric_small: chisquare}\n", r"drift\.yaml: key 'tests\.numeric_small'.*does not accept numeric"),
        ("correction: fdr\n", r"key 'correction': must be one of bonferroni, holm, none"),
        ("alpha: [\n", r"drift\.yaml: invalid YAML"),
        ("- 1\n", r"drift\.yaml: the top level must be a mapping"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "drift.yaml"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_detect_config(p)


def test_bad_input_errors_name_the_column() -> None:
    rng = np.random.default_rng(0)
    ref = _data(100, rng)
    cur = _data(100, rng)
    del cur["u"]
    with pytest.raises(ValueError, match=r"current: missing feature column.*u"):
        detect(ref, cur)
    cur = _data(100, rng)
    cur["x"][3] = np.nan
    with pytest.raises(ValueError, match="current: column 'x' contains NaN"):
        detect(ref, cur)
    with pytest.raises(ValueError, match="kinds: column 'x': unknown kind 'text'"):
        detect(ref, _data(100, rng), kinds={"x": "text"})


def test_prediction_is_output_drift_not_a_feature() -> None:
    rng = np.random.default_rng(4)
    ref = {"x": rng.normal(size=3000), "prediction": rng.normal(size=3000)}
    cur = {"x": rng.normal(size=3000), "prediction": rng.normal(1.0, 1, 3000)}
    rep = detect(ref, cur)
    assert [f.feature for f in rep.features] == ["x"]
    assert rep.prediction is not None and rep.prediction.drifted
    assert rep.drift_kinds == ["data"] and rep.severity == "major"  # 1 of 2 columns, and W/std >= 2 x 0.1


# ---- performance ---------------------------------------------------------------------------------------


def _classified(n: int, accuracy: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    label = rng.integers(0, 3, n)
    wrong = rng.random(n) > accuracy
    pred = np.where(wrong, (label + 1) % 3, label)
    return {"x": rng.normal(size=n), "label": label.astype(np.int64), "prediction": pred.astype(np.int64)}


def test_accuracy_drop_is_performance_drift() -> None:
    rng = np.random.default_rng(5)
    rep = detect(_classified(2000, 0.9, rng), _classified(2000, 0.8, rng))
    perf = rep.performance
    assert perf is not None and perf.metric == "accuracy" and perf.test == "fisher_exact"
    assert perf.drifted and perf.degradation == pytest.approx(0.1, abs=0.03)
    assert "performance" in rep.drift_kinds and rep.severity == "major"


def test_equal_quality_is_not_performance_drift() -> None:
    flagged = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        rep = detect(_classified(1000, 0.85, rng), _classified(1000, 0.85, rng))
        assert rep.performance is not None
        flagged += rep.performance.drifted
    # Each segment's test is at alpha / segments, so the family-wise rate is at most alpha (0.05); the
    # threshold (3 sd of the reference's chunks) only lowers it. 99.9% binomial limit over 40 seeds:
    assert flagged <= stats.binom.ppf(0.999, 40, 0.05)


def test_auc_drop_with_delong_and_auc_equals_mann_whitney() -> None:
    rng = np.random.default_rng(6)

    def scored(n: int, sep: float) -> dict[str, np.ndarray]:
        y = (rng.random(n) < 0.4).astype(np.float64)
        s = 1 / (1 + np.exp(-(rng.normal(size=n) + sep * (2 * y - 1))))
        return {"x": rng.normal(size=n), "label": y, "prediction": s}

    ref, cur = scored(3000, 1.5), scored(3000, 0.5)
    auc, var = auc_delong(ref["label"], ref["prediction"])
    pos, neg = ref["prediction"][ref["label"] == 1], ref["prediction"][ref["label"] == 0]
    u = stats.mannwhitneyu(pos, neg).statistic
    assert auc == pytest.approx(u / (pos.size * neg.size), abs=1e-12)
    assert 0 < var < 1e-3
    rep = detect(ref, cur)
    assert rep.performance is not None and rep.performance.metric == "auc" and rep.performance.drifted
    same = detect(ref, scored(3000, 1.5))
    assert same.performance is not None and not same.performance.drifted


def test_regression_mae_increase() -> None:
    rng = np.random.default_rng(7)

    def reg(n: int, noise: float) -> dict[str, np.ndarray]:
        y = rng.normal(10, 3, n)
        return {"x": rng.normal(size=n), "label": y, "prediction": y + rng.normal(0, noise, n)}

    rep = detect(reg(2000, 1.0), reg(2000, 1.3))
    perf = rep.performance
    assert perf is not None and (perf.metric, perf.task, perf.test) == ("mae", "regression", "welch_t")
    assert perf.drifted and perf.degradation == pytest.approx(0.3, abs=0.08)
    assert not detect(reg(2000, 1.0), reg(2000, 1.0)).performance.drifted  # type: ignore[union-attr]


# ---- severity and report -------------------------------------------------------------------------------


def test_severity_minor_for_one_mild_drift_of_many() -> None:
    rng = np.random.default_rng(8)
    ref = {f"f{i}": rng.normal(size=5000) for i in range(5)}
    cur = {f"f{i}": rng.normal(size=5000) for i in range(5)}
    cur["f0"] = rng.normal(0.15, 1, 5000)  # W/std about 0.15: past 0.1, not past 2 x 0.1
    rep = detect(ref, cur)
    assert [f.feature for f in rep.features if f.drifted] == ["f0"]
    assert rep.severity == "minor" and rep.severity_reasons


def test_report_round_trips_and_rejects_bad_fields() -> None:
    rng = np.random.default_rng(9)
    rep = detect(_classified(500, 0.9, rng), _classified(500, 0.7, rng))
    d = json.loads(json.dumps(rep.to_dict()))
    assert list(d)[:5] == ["drifted", "severity", "n_reference", "n_current", "features"]
    from drift.model import DriftReport

    assert DriftReport.from_dict(d).to_dict() == d
    bad = json.loads(json.dumps(d))
    bad["features"][0]["statistic"] = "big"
    with pytest.raises(ValueError, match=r"features\[0\]: field 'statistic' must be a finite number"):
        DriftReport.from_dict(bad)
    bad = dict(d, severity="huge")
    with pytest.raises(ValueError, match="field 'severity' must be one of"):
        DriftReport.from_dict(bad)
    assert all(math.isfinite(f["statistic"]) for f in d["features"])


def test_thread_pool_gives_the_sequential_report(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa

    import drift.detect as d

    rng = np.random.default_rng(12)
    ref, cur = _data(3000, rng), _data(2500, rng, mean=0.3, shares=[0.1, 0.2, 0.3, 0.4])
    for data in (ref, cur):
        data["p"] = rng.normal(size=data["x"].size)
        data["c_arrow"] = pa.chunked_array([pa.array(data["c"]).dictionary_encode()])
    monkeypatch.setattr(d, "PARALLEL_MIN_VALUES", 10**12)
    sequential = detect(ref, cur).to_dict()
    monkeypatch.setattr(d, "PARALLEL_MIN_VALUES", 0)
    monkeypatch.setattr(d, "_cpus", lambda: 4)
    parallel = detect(ref, cur).to_dict()
    assert parallel == sequential
    by = {f["feature"]: f for f in parallel["features"]}
    assert [f["feature"] for f in parallel["features"]] == ["x", "u", "c", "p", "c_arrow"]
    assert by["x"]["drifted"] and by["c"]["drifted"] and not by["u"]["drifted"]
    assert {k: v for k, v in by["c_arrow"].items() if k != "feature"} == {
        k: v for k, v in by["c"].items() if k != "feature"
    }  # Arrow and object arrays: same numbers
    # the first bad column (in column order) is the one reported, as sequentially
    cur["u"] = np.full(10, np.nan)
    cur["p"] = np.full(10, np.inf)
    with pytest.raises(ValueError, match="current: column 'u' contains NaN"):
        detect(ref, cur)


def test_model_id_is_not_a_feature() -> None:
    # functions/core.py writes model_id on every log record: an identifier, not a model input
    rng = np.random.default_rng(13)
    ref, cur = _data(500, rng), _data(500, rng)
    ref["model_id"] = np.array(["fraud-scorer"] * 500, dtype=object)
    cur["model_id"] = np.array(["fraud-scorer-v2"] * 500, dtype=object)
    report = detect(ref, cur)
    assert [f.feature for f in report.features] == ["x", "u", "c"]
