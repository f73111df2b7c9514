"""The anomaly detector on seeded series: measured false-alarm and detection rates, ramp-ups, registry."""

from __future__ import annotations

import numpy as np
import pytest

from finops.anomalies import DETECTORS, weekday_robust_trend
from finops.estimates import forecast_month, weekdays

N = 60
WD = np.arange(N) % 7  # day 0 is a Monday
SEASON = np.where(WD >= 5, 0.6, 1.0)  # quiet weekends


def steady(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(2, 50) * SEASON * rng.lognormal(0, 0.1, N)


def test_false_alarm_rate_on_steady_series_with_weekly_seasonality() -> None:
    rng = np.random.default_rng(11)
    alarms = days = 0
    for _ in range(80):
        alarms += len(weekday_robust_trend(steady(rng), WD, start=28))
        days += N - 28
    rate = alarms / days
    assert rate <= 0.005, f"false-alarm rate {rate:.4f} over {days} clean days"


def test_one_day_spikes_are_detected() -> None:
    rng = np.random.default_rng(12)
    hits = 0
    for _ in range(60):
        s = steady(rng)
        day = int(rng.integers(30, N))
        s[day] *= 3
        found = [a.index for a in weekday_robust_trend(s, WD, start=28)]
        hits += day in found
    assert hits / 60 >= 0.95


def test_level_shifts_are_detected_within_two_days() -> None:
    rng = np.random.default_rng(13)
    hits = early = clean = 0
    for _ in range(60):
        s = steady(rng)
        day = int(rng.integers(30, N - 3))
        s[day:] *= 2
        found = [a.index for a in weekday_robust_trend(s, WD, start=28)]
        hits += any(day <= i <= day + 1 for i in found)
        early += sum(i < day for i in found)
        clean += day - 28
    assert hits / 60 >= 0.95
    assert early / clean <= 0.01  # before the shift: the steady false-alarm rate, no more


def test_a_new_function_ramping_up_does_not_alarm() -> None:
    rng = np.random.default_rng(14)
    alarmed = 0
    for _ in range(60):
        level, mid, k, start = rng.uniform(2, 50), rng.uniform(5, 15), rng.uniform(0.3, 0.8), int(rng.integers(0, 20))
        x = np.arange(N) - start
        s = np.where(x >= 0, level / (1 + np.exp(-k * (x - mid))), 0.0) * SEASON * rng.lognormal(0, 0.1, N)
        alarmed += bool(weekday_robust_trend(s, WD))
    assert alarmed / 60 <= 0.05


def test_short_history_and_drops_never_alarm() -> None:
    s = np.full(N, 10.0)
    assert weekday_robust_trend(s[:6], WD[:6]) == []
    s[40] = 0.5  # spend falling is not a cost risk
    assert weekday_robust_trend(s, WD) == []
    s[50] = 30.0
    assert [a.index for a in weekday_robust_trend(s, WD)] == [50]


def test_registry() -> None:
    assert DETECTORS["weekday-robust-trend"] is weekday_robust_trend


def test_forecast_uses_the_weekday_pattern() -> None:
    first = np.datetime64("2026-10-04")  # a Sunday
    as_of = np.datetime64("2026-11-20")  # a Friday
    n = int((as_of - first).astype(int)) + 1
    wd = weekdays(first, n)
    daily = np.where(wd >= 5, 6.0, 10.0)
    month_end = np.datetime64("2026-11-30")
    mtd = float(daily[-20:].sum())
    # 10 days left: Sat 21, Sun 22, Mon-Fri 23-27, Sat 28, Sun 29, Mon 30 -> 4 weekend days, 6 weekdays
    assert forecast_month(daily, first, as_of, month_end) == pytest.approx(mtd + 4 * 6.0 + 6 * 10.0)
    assert int(wd[0]) == 6 and int(wd[-1]) == 4
