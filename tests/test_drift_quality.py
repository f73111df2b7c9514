"""Data quality in the verdict: missing shares, new categories, schema drift; golden Markdown.

Regenerate the golden Markdown after an intended change with
``DRIFT_GOLDEN_UPDATE=1 pytest tests/test_drift_quality.py`` and review the diff of
tests/data/drift_quality_golden.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from drift.detect import DetectConfig, detect
from drift.model import DriftReport
from drift.render import render_markdown

GOLDEN_MD = Path(__file__).parent / "data" / "drift_quality_golden.md"


def _window(n: int, rng: np.random.Generator, *, missing: float = 0.0, new: float = 0.0) -> dict[str, object]:
    x = rng.normal(size=n).astype(object)
    x[rng.random(n) < missing] = None
    cats = rng.choice(np.array(["de", "fr", "us"], dtype=object), n)
    cats[rng.random(n) < new] = "zz"
    return {"x": np.ma.MaskedArray(np.where(x == None, 0.0, x).astype(float), mask=x == None), "c": cats}  # noqa: E711


def _missing(rep: DriftReport) -> dict[str, object]:
    assert rep.data_quality is not None
    return {m.column: m for m in rep.data_quality.missing}


def test_missing_share_rise_is_a_finding_even_when_values_do_not_move() -> None:
    rng = np.random.default_rng(0)
    rep = detect(_window(5_000, rng), _window(5_000, rng, missing=0.3))
    x = _missing(rep)["x"]
    assert x.reference_share == 0.0 and x.current_share == pytest.approx(0.3, abs=0.02)  # type: ignore[attr-defined]
    assert x.drifted and x.p_value < 1e-100  # type: ignore[attr-defined]
    assert not rep.features[0].drifted  # the observed values are the same distribution
    assert rep.drifted and rep.drift_kinds == ["data"] and rep.severity == "minor"
    assert any(
        r.startswith("x: missing share 0.0% -> 2") or r.startswith("x: missing share 0.0% -> 3")
        for r in rep.severity_reasons
    )


def test_small_missing_share_changes_are_reported_not_flagged() -> None:
    rng = np.random.default_rng(1)
    rep = detect(_window(5_000, rng, missing=0.01), _window(5_000, rng, missing=0.02))
    x = _missing(rep)["x"]
    assert not x.drifted and not rep.drifted  # type: ignore[attr-defined]  # 1 point < the 5-point threshold


def test_missing_share_false_alarm_rate_on_equal_shares() -> None:
    alarms = 0
    for seed in range(100):
        rng = np.random.default_rng(100 + seed)
        rep = detect(_window(1_000, rng, missing=0.2), _window(1_000, rng, missing=0.2))
        alarms += rep.data_quality.drifted  # type: ignore[union-attr]
    # |change| >= 5 points AND p < alpha / columns: at most alpha family-wise (99.9% binomial limit)
    assert alarms <= stats.binom.ppf(0.999, 100, 0.05)


@pytest.mark.parametrize(("share", "flagged"), [(0.03, True), (0.005, False)])
def test_new_category_is_reported_with_its_share_and_drift_above_one_percent(share: float, flagged: bool) -> None:
    rng = np.random.default_rng(2)
    rep = detect(_window(20_000, rng), _window(20_000, rng, new=share))
    assert rep.data_quality is not None
    (c,) = rep.data_quality.new_categories
    assert c.column == "c" and list(c.categories) == ["zz"] and c.count == 1
    assert c.share == pytest.approx(share, rel=0.15) and c.drifted is flagged
    assert rep.drifted is flagged  # jensenshannon alone does not flag a few percent


def test_new_category_threshold_is_configurable() -> None:
    rng = np.random.default_rng(2)
    ref, cur = _window(20_000, rng), _window(20_000, rng, new=0.03)
    rep = detect(ref, cur, config=DetectConfig(quality_new_category_share=0.05))
    assert not rep.data_quality.new_categories[0].drifted  # type: ignore[union-attr]


def test_new_category_in_a_tiny_reference_is_not_evidence() -> None:
    # 2% unseen in 50 reference rows happens by chance 36% of the time ((1 - 0.02)^50): no finding
    rng = np.random.default_rng(3)
    rep = detect(_window(50, rng), _window(5_000, rng, new=0.02))
    assert not rep.data_quality.new_categories[0].drifted  # type: ignore[union-attr]


def test_column_only_in_current_is_schema_drift() -> None:
    rng = np.random.default_rng(4)
    ref, cur = _window(500, rng), _window(500, rng)
    cur["extra"] = rng.normal(size=500)
    rep = detect(ref, cur)
    assert rep.data_quality is not None and rep.data_quality.only_in_current == ["extra"]
    assert rep.drifted and [f.feature for f in rep.features] == ["x", "c"]
    assert "schema: column(s) only in the current data: extra" in rep.severity_reasons


@pytest.mark.parametrize("null_share", [0.999, 1.0])
def test_mostly_null_and_all_null_columns_are_handled_alike(null_share: float) -> None:
    n = 10_000
    rng = np.random.default_rng(5)
    ref = {"x": rng.normal(size=n), "y": rng.normal(size=n)}
    y = rng.normal(size=n)
    mask = np.arange(n) < round(null_share * n)
    cur = {"x": rng.normal(size=n), "y": np.ma.MaskedArray(y, mask=mask)}
    rep = detect(ref, cur)
    m = _missing(rep)["y"]
    assert m.current_share == pytest.approx(null_share) and m.drifted  # type: ignore[attr-defined]
    assert rep.drifted and rep.drift_kinds == ["data"]
    (feat,) = [f for f in rep.features if f.feature == "y"]
    assert not feat.drifted  # ten values (or none) are no evidence of a distribution change
    if null_share == 1.0:
        assert feat.note == "not tested: no values in the current data"
    # the same with Arrow nulls (what the readers hand over for categorical columns)
    arrow = detect(
        {"c": pa.array(["a", "b"] * (n // 2))},
        {"c": pa.array([None if k else "a" for k in mask], pa.string())},
    )
    assert _missing(arrow)["c"].drifted  # type: ignore[attr-defined]


def _golden_report() -> DriftReport:
    rng = np.random.default_rng(20261201)
    ref = _window(2_000, rng)
    cur = _window(2_000, rng, missing=0.25, new=0.04)
    cur["session"] = rng.integers(0, 9, 2_000)
    y = rng.random(2_000) < 0.5
    ref["label"], ref["prediction"] = y, y
    cur["label"], cur["prediction"] = y, np.where(rng.random(2_000) < 0.2, ~y, y)
    return detect(ref, cur)


def test_golden_markdown_shows_new_categories_missing_shares_and_schema() -> None:
    text = render_markdown(_golden_report(), reference="ref.parquet", current="cur.parquet")
    if os.environ.get("DRIFT_GOLDEN_UPDATE"):
        GOLDEN_MD.write_text(text, encoding="utf-8")
    assert text == GOLDEN_MD.read_text(encoding="utf-8")
    assert "### Data quality" in text and "`zz` 4" in text and "| `x` | 0% | 2" in text
    assert "Schema drift: column(s) only in the current data, not tested: `session`." in text


@pytest.mark.parametrize("chunked", [False, True])
def test_cli_reports_missing_shares_in_memory_and_binned(tmp_path: Path, chunked: bool) -> None:
    import json

    import pyarrow.parquet as pq

    from drift.cli import main

    rng = np.random.default_rng(6)
    n = 4_000
    ref = pa.table({"x": rng.normal(size=n), "y": rng.normal(size=n), "c": rng.choice(["a", "b"], n)})
    y = pa.array([None] * n, pa.float64())
    x = pa.array([None if i % 3 == 0 else v for i, v in enumerate(rng.normal(size=n).tolist())], pa.float64())
    cur = pa.table({"x": x, "y": y, "c": rng.choice(["a", "b", "new"], n, p=[0.49, 0.49, 0.02])})
    pq.write_table(ref, tmp_path / "ref.parquet")
    pq.write_table(cur, tmp_path / "cur.csv.parquet")
    out = tmp_path / "r.json"
    args = ["check", "--reference", str(tmp_path / "ref.parquet"), "--current", str(tmp_path / "cur.csv.parquet")]
    assert main([*args, "--out", str(out), *(["--chunked"] if chunked else [])]) == 1
    report = json.loads(out.read_text())
    assert report["binned"] is chunked
    missing = {m["column"]: (m["current_share"], m["drifted"]) for m in report["data_quality"]["missing"]}
    assert missing == {"x": (1_334 / n, True), "y": (1.0, True)}  # every third row of x is null
    (new,) = report["data_quality"]["new_categories"]
    assert new["column"] == "c" and list(new["categories"]) == ["new"] and new["drifted"]
    y_entry = next(f for f in report["features"] if f["feature"] == "y")
    assert y_entry["note"] == "not tested: no values in the current data"
