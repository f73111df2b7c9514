"""Report rendering: JSON of the contract, Markdown for a pull request, PNG plots, atomic writes."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from drift import render
from drift.model import ChangePoint, DriftReport, FeatureResult, PerformanceResult

CONTRACT_KEYS = {"drifted", "severity", "n_reference", "n_current", "features"}
FEATURE_KEYS = {"feature", "kind", "test", "statistic", "p_value", "threshold", "drifted"}


def make_report(n_steady: int = 2) -> DriftReport:
    features = [
        FeatureResult("amount", "numeric", "ks", 0.31, 1.2e-40, 0.025, True, 2000, 2000),
        FeatureResult("country", "categorical", "chisquare", 812.5, 3.0e-12, 0.025, True, 2000, 2000),
    ]
    features += [
        FeatureResult(f"f{i}|x", "numeric", "wasserstein", 0.01, None, 0.1, False, 2000, 2000, returns="distance")
        for i in range(n_steady)
    ]
    return DriftReport(
        drifted=True,
        severity="major",
        n_reference=2000,
        n_current=2000,
        features=features,
        performance=PerformanceResult("accuracy", 0.9, 0.75, -0.15, "two-proportion z", 1e-9, 0.05, True),
        change_points=[ChangePoint("error_rate", 412, "2026-01-12T03:26:00Z")],
        drift_kinds=["data", "performance"],
    )


def test_json_has_contract_fields_and_round_trips() -> None:
    report = make_report()
    text = render.render_json(report)
    assert text.endswith("\n")
    data = json.loads(text)
    assert data.keys() >= CONTRACT_KEYS
    assert data["severity"] == "major" and data["drifted"] is True
    assert all(f.keys() >= FEATURE_KEYS for f in data["features"])
    assert data["features"][2]["p_value"] is None
    assert DriftReport.from_dict(data).to_dict() == report.to_dict()
    assert render.render_json(data) == text  # a dict renders the same as the report object


def test_json_replaces_non_finite_numbers_with_null() -> None:
    data = make_report().to_dict()
    data["features"][0]["statistic"] = float("nan")
    data["extra"] = [float("inf"), np.float64(1.5)]
    parsed = json.loads(render.render_json(data))
    assert parsed["features"][0]["statistic"] is None
    assert parsed["extra"] == [None, 1.5]


def test_markdown_lists_drifted_features_first_and_the_rest_collapsed() -> None:
    md = render.render_markdown(
        make_report(), reference="ref.csv", current="s3://logs/cur.parquet", plots={"amount": "plots/amount.png"}
    )
    assert md.startswith("## Drift check: major drift\n")
    assert "reference `ref.csv` (2,000 rows)" in md and "current `s3://logs/cur.parquet` (2,000 rows)" in md
    assert "**2 of 4 features drifted**; drift kinds: data, performance" in md
    drifted_part, _, steady_part = md.partition("<details>")
    assert "`amount`" in drifted_part and "`country`" in drifted_part
    assert "`f0\\|x`" in steady_part and "`f0" not in drifted_part  # pipes escaped; steady ones collapsed
    assert "| `amount` | numeric | ks | 0.31 | 1.2e-40 | 0.025 | **yes** |" in md
    assert "| `f0\\|x` | numeric | wasserstein | 0.01 | n/a | 0.1 | no |" in md
    assert "![amount](plots/amount.png)" in md
    assert "| accuracy | 0.9 | 0.75 | -0.15 |" in md
    assert "| error_rate | 412 | 2026-01-12T03:26:00Z |" in md
    assert md.rstrip().endswith("</details>")


def test_markdown_without_drift() -> None:
    report = DriftReport(False, "none", 10, 12, [FeatureResult("x", "numeric", "ks", 0.1, 0.7, 0.05, False, 10, 12)])
    md = render.render_markdown(report)
    assert md.startswith("## Drift check: no drift\n")
    assert "**0 of 1 features drifted**" in md
    assert "### Drifted features" not in md and "### Model performance" not in md


def test_markdown_is_cut_to_fit_a_pull_request() -> None:
    md = render.render_markdown(make_report(n_steady=3000), limit=20_000)
    assert len(md) <= 20_000 + 30
    assert "report truncated" in md
    assert md.count("<details>") == md.count("</details>")
    assert "`amount`" in md  # drifted features come first, so they survive the cut


def test_plots_one_png_per_drifted_feature(tmp_path: Path) -> None:
    import matplotlib.image

    rng = np.random.default_rng(3)
    reference = {
        "amount": rng.normal(0, 1, 500),
        "country": rng.choice(["US", "GB"], 500).astype(object),
        "f0|x": rng.normal(size=500),
        "f1|x": rng.normal(size=500),
    }
    current = {
        "amount": rng.normal(1, 1, 400),
        "country": rng.choice(["US", "GB", "IN"], 400).astype(object),
        "f0|x": rng.normal(size=400),
        "f1|x": rng.normal(size=400),
    }
    written = render.write_plots(make_report(), tmp_path / "plots", reference=reference, current=current)
    assert set(written) == {"amount", "country"}
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["amount.png", "country.png"]
    for path in written.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = matplotlib.image.imread(path)
        assert image.shape[0] >= 300 and image.shape[1] >= 500


def test_plots_from_binned_counts(tmp_path: Path) -> None:
    edges = np.linspace(0, 1, 11)
    cats = {f"c{i}": 30 - i for i in range(30)}
    written = render.write_plots(
        make_report(),
        tmp_path,
        binned={
            "amount": (edges, np.arange(10), np.arange(10)[::-1]),
            "country": (None, cats, {"c0": 5, "new": 9}),
        },
    )
    assert set(written) == {"amount", "country"}
    assert all(p.stat().st_size > 1000 for p in written.values())


def test_plot_filenames_are_safe() -> None:
    assert render.plot_filename("amount") == "amount.png"
    assert re.fullmatch(r"a_b_c_d-[0-9a-f]{10}\.png", render.plot_filename("a/b c|d"))
    assert re.fullmatch(r"feature-[0-9a-f]{10}\.png", render.plot_filename("../.."))


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    render.atomic_write_text(target, "new")
    assert target.read_text() == "new"

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        render.atomic_write_text(target, "newer")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temp file left behind
