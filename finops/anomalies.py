"""Cost anomalies: a day's cost per function against a robust baseline with weekly seasonality.

Method ``weekday-robust-trend`` (the default of :data:`DETECTORS`), for the cost ``x_t`` of day ``t``
from the up to 28 days before it (days before the function's first charge are not history):

1. Work in log space, ``y = log(x + c)`` with ``c = max($0.01, 5% of the recent median)``: cost noise
   is multiplicative, weekly patterns are ratios (weekends at 60%), and growth is exponential.
2. Weekly seasonality: fit a Theil-Sen line (robust to a few outliers) to the history; the weekday
   effect is the median residual of that weekday (needs two samples of it; else 0).
3. Level: the median of the last 7 deseasonalised days, plus the weekday effect of day ``t``, is the
   expectation ``ŷ_t``.
4. Scale: ``1.4826 · MAD`` of the deseasonalised window (corrected for the weekday effect having been
   fitted on the same days), inflated by the error of the level and weekday estimates (a median's
   variance is about pi/2 times a mean's), floored at 0.05 so a flat series does not alarm on a wiggle.
5. Alarm when ``z = (y_t - ŷ_t) / σ > 4`` and the day exceeds the expectation by at least
   ``max($0.50, 20%)``; a series with less than 7 days of history never alarms, and a series younger
   than the window must also exceed 1.5x the largest of its last 7 days: a new function ramping up
   grows day over day, which is growth, not an anomaly.

Only increases alarm: a drop in spend is not a cost risk. Measured false-alarm rate on seeded series
(tests/test_finops_anomalies.py: steady series with weekly seasonality and 10% noise): asserted at
most 0.5% of days; detection of 3x one-day spikes at least 95% and of 2x level shifts within two days
at least 95%; no alarm on 95% of logistic ramp-ups of new functions. docs/finops.md has the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import theilslopes


@dataclass(frozen=True)
class Params:
    """Thresholds of the detector (defaults documented above)."""

    z_threshold: float = 4.0
    min_history: int = 7
    window: int = 28
    noise_floor: float = 0.05
    min_excess_usd: float = 0.5
    min_excess_ratio: float = 0.2
    young_peak_ratio: float = 1.5


@dataclass(frozen=True)
class Anomaly:
    """One anomalous day of a series."""

    index: int
    value: float
    expected: float
    z: float


def _line(y: np.ndarray) -> tuple[float, float]:
    x = np.arange(len(y), dtype=float)
    if len(y) < 2 or np.ptp(y) == 0:
        return float(np.median(y)), 0.0
    res = theilslopes(y, x)
    return float(res.intercept), float(res.slope)


def expectation(series: np.ndarray, t: int, weekdays: np.ndarray, p: Params = Params()) -> tuple[float, float] | None:
    """``(expected cost, z)`` of ``series[t]`` from the days before it; None without enough history."""
    start = max(0, t - p.window)
    hist = np.asarray(series[start:t], dtype=float)
    wd = np.asarray(weekdays[start:t])
    nz = np.flatnonzero(hist > 0)
    if nz.size == 0:
        return None
    hist, wd = hist[nz[0] :], wd[nz[0] :]
    if len(hist) < p.min_history:
        return None
    c = max(0.01, 0.05 * float(np.median(hist[-7:])))
    y = np.log(hist + c)
    a0, b0 = _line(y)
    resid = y - (a0 + b0 * np.arange(len(y)))
    season = np.zeros(7)
    for w in range(7):
        vals = resid[wd == w]
        if vals.size >= 2:
            season[w] = float(np.median(vals))
    present = [w for w in range(7) if (wd == w).sum() >= 2]
    if present:
        season[present] -= float(np.mean(season[present]))
    yd = y - season[wd]
    level = float(np.median(yd[-7:]))
    recent = yd  # the whole window: a MAD of 14 points is too noisy a scale
    n_w = int((wd == int(weekdays[t])).sum())
    noise = 1.4826 * float(np.median(np.abs(recent - np.median(recent))))
    if n_w >= 2:
        noise *= math.sqrt(n_w / (n_w - 1))  # the weekday effect was fitted on these same days
    # prediction error = the day's own noise + the error of the level (median of 7) and of the
    # weekday effect (median of n_w); a median's variance is about pi/2 times a mean's
    inflation = math.sqrt(1 + math.pi / 2 * (1 / 7 + (1 / n_w if n_w >= 2 else 0.0)))
    sigma = max(noise * inflation, p.noise_floor)
    y_hat = level + season[int(weekdays[t])]
    expected = max(0.0, math.exp(y_hat) - c)
    z = (math.log(float(series[t]) + c) - y_hat) / sigma
    return expected, z


def weekday_robust_trend(
    series: np.ndarray, weekdays: np.ndarray, p: Params = Params(), *, start: int = 0
) -> list[Anomaly]:
    """Anomalous days of ``series`` from index ``start`` on (``weekdays[i]``: 0 Monday .. 6 Sunday)."""
    out: list[Anomaly] = []
    series = np.asarray(series, dtype=float)
    for t in range(max(start, 1), len(series)):
        got = expectation(series, t, weekdays, p)
        if got is None:
            continue
        expected, z = got
        value = float(series[t])
        if z <= p.z_threshold:
            continue
        if value - expected < max(p.min_excess_usd, p.min_excess_ratio * expected):
            continue
        nz = np.flatnonzero(series[:t] > 0)
        young = nz.size and t - nz[0] < p.window
        if young and value <= p.young_peak_ratio * float(series[max(0, t - 7) : t].max()):
            continue
        out.append(Anomaly(t, value, expected, z))
    return out


#: Detectors by name: ``series, weekdays, params, start`` -> anomalies.
DETECTORS: dict[str, Callable[..., list[Anomaly]]] = {"weekday-robust-trend": weekday_robust_trend}
DEFAULT_METHOD = "weekday-robust-trend"
