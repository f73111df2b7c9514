"""ADWIN (drift.streaming) and change points in detect()."""

from __future__ import annotations

import numpy as np
import pytest

from drift.detect import detect
from drift.streaming import Adwin, adwin

# A step change is located within this many records of the truth on these seeded streams (docs/drift.md).
TOLERANCE = 150


def test_constant_stream_never_alarms() -> None:
    assert adwin(np.full(50_000, 0.7)) == []
    a = Adwin()
    assert not any(a.update(0.3) for _ in range(5000))


@pytest.mark.parametrize("seed", range(6))
def test_stationary_noisy_streams_do_not_alarm(seed: int) -> None:
    rng = np.random.default_rng(seed)
    assert adwin((rng.random(20_000) < 0.3).astype(float), value_range=(0, 1)) == []
    assert adwin(rng.normal(size=20_000)) == []


@pytest.mark.parametrize(
    ("seed", "before", "after", "at"),
    [(0, 0.2, 0.5, 5000), (1, 0.1, 0.3, 3000), (2, 0.5, 0.2, 8000), (3, 0.05, 0.25, 1000)],
)
def test_step_change_detected_near_true_start(seed: int, before: float, after: float, at: int) -> None:
    rng = np.random.default_rng(seed)
    n = at + 4000
    x = np.where(np.arange(n) < at, rng.random(n) < before, rng.random(n) < after).astype(float)
    changes = adwin(x, value_range=(0, 1))
    assert len(changes) >= 1
    first = changes[0]
    assert abs(first.start - at) <= TOLERANCE, first
    assert at <= first.detected < at + 1000
    assert first.mean_before == pytest.approx(before, abs=0.05)
    # the new sub-window is short at the alarm, so only its direction is reliable
    assert (first.mean_after > first.mean_before) == (after > before)


def test_mean_shift_in_real_valued_stream() -> None:
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.normal(0, 1, 6000), rng.normal(1.0, 1, 6000)])
    changes = adwin(x)
    assert changes and abs(changes[0].start - 6000) <= TOLERANCE


def test_incremental_class_matches_batch_function() -> None:
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.random(3000) < 0.2, rng.random(3000) < 0.6]).astype(float)
    a = Adwin()
    alarms = [i for i, v in enumerate(x) if a.update(v)]
    batch = adwin(x, value_range=(0, 1))
    assert alarms == [c.detected for c in batch]
    assert [c.start for c in a.changes] == [c.start for c in batch]


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="delta"):
        adwin(np.zeros(10), delta=0)
    with pytest.raises(ValueError, match="finite"):
        adwin(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Adwin().update(2.0)


def test_detect_reports_where_error_rate_changed_with_timestamps() -> None:
    rng = np.random.default_rng(6)
    n = 6000
    label = rng.integers(0, 2, n)
    wrong = rng.random(n) < np.where(np.arange(n) < 4000, 0.05, 0.4)
    pred = np.where(wrong, 1 - label, label)
    ts = np.datetime64("2026-11-01T00:00:00") + np.arange(n).astype("timedelta64[m]")
    perm = rng.permutation(n)  # records arrive shuffled; detect orders them by time
    cur = {"x": rng.normal(size=n)[perm], "label": label[perm], "prediction": pred[perm]}
    ref = {"x": rng.normal(size=n), "label": label, "prediction": label.copy()}
    rep = detect(ref, cur, timestamps=ts[perm])
    assert rep.change_points, rep.to_dict()
    cp = rep.change_points[0]
    assert cp.metric == "error" and abs(cp.index - 4000) <= TOLERANCE
    assert cp.timestamp == str(ts[cp.index])
    assert cp.mean_after > cp.mean_before
