"""Golden report: fixed-seed data -> DriftReport.to_dict() equals the committed JSON (floats to 1e-9).

Regenerate after an intended change with ``DRIFT_GOLDEN_UPDATE=1 pytest tests/test_drift_golden.py`` and
review the diff of tests/data/drift_golden.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from drift.detect import detect
from drift.model import DriftReport

GOLDEN = Path(__file__).parent / "data" / "drift_golden.json"


def _golden_report() -> dict[str, Any]:
    rng = np.random.default_rng(20261125)
    n = 800

    def window(shift: float, share_new: float, err: float) -> dict[str, np.ndarray]:
        label = rng.integers(0, 2, n)
        pred = np.where(rng.random(n) < err, 1 - label, label)
        cats = np.array(["de", "fr", "us", "xx"], dtype=object)
        return {
            "timestamp": np.datetime64("2026-11-01T00:00:00") + np.arange(n).astype("timedelta64[m]"),
            "model_version": np.array(["2.2.0"] * n, dtype=object),
            "amount": rng.lognormal(3 + shift, 0.5, n),
            "age": rng.normal(40, 10, n).round(),
            "country": rng.choice(cats, n, p=[0.3, 0.3, 0.4 - share_new, share_new]),
            "label": label,
            "prediction": pred,
        }

    ref = window(0.0, 0.0, 0.1)
    cur = window(0.3, 0.1, 0.2)
    return detect(ref, cur, kinds={"prediction": "categorical"}).to_dict()


def _assert_close(actual: Any, expected: Any, path: str = "$") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and list(actual) == list(expected), path
        for k in expected:
            _assert_close(actual[k], expected[k], f"{path}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _assert_close(a, e, f"{path}[{i}]")
    elif isinstance(expected, float) and not isinstance(expected, bool):
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-12), path
    else:
        assert actual == expected, path


def test_golden_report() -> None:
    report = json.loads(json.dumps(_golden_report()))
    if os.environ.get("DRIFT_GOLDEN_UPDATE") == "1":
        GOLDEN.write_text(json.dumps(report, indent=2) + "\n")
    expected = json.loads(GOLDEN.read_text())
    _assert_close(report, expected)
    # sanity of the scenario itself, independent of the stored numbers
    by = {f["feature"]: f for f in report["features"]}
    assert by["amount"]["drifted"] and by["country"]["drifted"] and not by["age"]["drifted"]
    assert report["performance"]["drifted"] and report["drift_kinds"] == ["data", "performance"]
    assert DriftReport.from_dict(expected).to_dict() == expected
