"""End to end: the real inference handler's log records, written as JSON Lines, checked by `drift check`.

functions/core.py writes one JSON record per prediction to stdout (timestamp, model_id, model_version,
features, prediction). These tests drive ``core.handle`` as the platform adapters do, collect the records
with capsys (as tests/test_functions.py does), write them to files and run ``python -m drift check`` in a
subprocess on them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions import core

ROOT = Path(__file__).resolve().parent.parent
MODEL_PATH = ROOT / "functions" / "models" / "example-linear.json"
ROWS = 2000  # per window; two requests of at most core.MAX_INSTANCES rows each


def _rows(rng: np.random.Generator, n: int, amount_mean: float) -> list[dict[str, Any]]:
    amount = rng.normal(amount_mean, 8.0, n).round(2)
    age = rng.integers(18, 80, n)
    country = rng.choice(["US", "IN", "DE"], n, p=[0.5, 0.3, 0.2])
    device = rng.choice(["ios", "android", "web"], n, p=[0.4, 0.4, 0.2])
    return [
        {"amount": float(a), "age": int(g), "country": str(c), "device": str(d)}
        for a, g, c, d in zip(amount, age, country, device, strict=True)
    ]


def _log_window(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    path: Path,
    rows: list[dict[str, Any]],
    version: str,
) -> list[dict[str, Any]]:
    """Send ``rows`` through the handler in batches; write the captured log lines to ``path``."""
    monkeypatch.setenv("MODEL_URI", str(MODEL_PATH))
    monkeypatch.setenv("MODEL_ID", "fraud-scorer")
    monkeypatch.setenv("MODEL_VERSION", version)
    core.clear_cache()
    capsys.readouterr()  # drop anything printed before
    for start in range(0, len(rows), core.MAX_INSTANCES):
        status, body = core.handle(json.dumps({"instances": rows[start : start + core.MAX_INSTANCES]}))
        assert status == 200, body
    out = capsys.readouterr().out
    core.clear_cache()
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(records) == len(rows)
    assert all(r["model_id"] == "fraud-scorer" and r["model_version"] == version for r in records)
    path.write_text(out)
    return records


def _check(ref: Path, cur: Path, out: Path) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "drift", "check", "--reference", str(ref), "--current", str(cur), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(out.read_text())


def test_shifted_feature_in_handler_logs_is_flagged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(7)
    ref_path, cur_path = tmp_path / "reference.jsonl", tmp_path / "current.jsonl"
    reference = _log_window(monkeypatch, capsys, ref_path, _rows(rng, ROWS, 20.0), "2.2.0")
    # amount shifted by one standard deviation; the model's prediction share moves with it
    current = _log_window(monkeypatch, capsys, cur_path, _rows(rng, ROWS, 28.0), "2.3.0")
    code, report = _check(ref_path, cur_path, tmp_path / "report.json")
    assert code == 1
    by = {f["feature"]: f for f in report["features"]}
    assert set(by) == {"amount", "age", "country", "device"}  # model_id/model_version/timestamp are not features
    assert by["amount"]["drifted"] and by["amount"]["kind"] == "numeric"
    assert not any(by[name]["drifted"] for name in ("age", "country", "device"))
    assert report["n_reference"] == len(reference) and report["n_current"] == len(current)
    share = [np.mean([r["prediction"] for r in recs]) for recs in (reference, current)]
    assert share[1] > share[0] + 0.1  # the shift is real at the model's output too...
    assert report["prediction"]["drifted"]  # ...and reported as output drift


def test_same_distribution_in_handler_logs_is_not_flagged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(8)
    ref_path, cur_path = tmp_path / "reference.jsonl", tmp_path / "current.jsonl"
    _log_window(monkeypatch, capsys, ref_path, _rows(rng, ROWS, 20.0), "2.2.0")
    # a new model release with the same inputs: the version change itself is not drift
    _log_window(monkeypatch, capsys, cur_path, _rows(rng, ROWS, 20.0), "2.3.0")
    code, report = _check(ref_path, cur_path, tmp_path / "report.json")
    assert code == 0, [f for f in report["features"] if f["drifted"]]
    assert [f["feature"] for f in report["features"]] == ["amount", "age", "country", "device"]
    assert not report["prediction"]["drifted"]
    assert report["severity"] == "none"
