"""Month-end forecast and estimate drift (pure functions).

Forecast: month-to-date usage plus, for every remaining day of the month, the median cost of the same
weekday over the last four weeks of data (the mean of the last 7 days when a weekday has no sample
yet). Weekly patterns (quiet weekends) are common in inference traffic, and a median ignores the one
anomalous day that the anomaly detector reports separately.

Estimate drift: the plan and the pack's budget checks price ``finops.expectedMonthlyRequests`` and
``finops.avgDurationMs``. When what was observed differs from either by more than a threshold
(default 25%), :func:`estimate_drift` proposes the observed values, rounded so the config does not
churn on noise (requests to 2 significant digits, duration to whole milliseconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_THRESHOLD = 0.25


def forecast_month(
    daily: np.ndarray, first_day: np.datetime64, as_of: np.datetime64, month_end: np.datetime64
) -> float:
    """Forecast of the month's usage cost.

    ``daily[i]`` is the cost of ``first_day + i`` up to ``as_of`` (inclusive; ``first_day`` may lie
    before the month to give history). Returns month-to-date plus the forecast of the days after
    ``as_of`` to ``month_end`` inclusive.
    """
    month_start = as_of.astype("datetime64[M]").astype("datetime64[D]")
    offset = int((month_start - first_day).astype(int))
    mtd = float(daily[max(offset, 0) :].sum())
    remaining = int((month_end - as_of).astype(int))
    if remaining <= 0 or daily.size == 0:
        return mtd
    recent = daily[-28:]
    recent_days = np.arange(len(daily) - len(recent), len(daily))
    weekday = (first_day.astype("datetime64[D]").astype(int) + recent_days + 3) % 7  # 1970-01-01 was a Thursday
    fallback = float(daily[-7:].mean())
    total = mtd
    for k in range(1, remaining + 1):
        wd = (as_of.astype(int) + k + 3) % 7
        same = recent[weekday == wd]
        total += float(np.median(same)) if same.size else fallback
    return total


def weekdays(first_day: np.datetime64, n: int) -> np.ndarray:
    """Weekday (0 Monday .. 6 Sunday) of ``first_day + i`` for ``i < n``."""
    return (first_day.astype("datetime64[D]").astype(int) + np.arange(n) + 3) % 7


def _round_sig(x: float, digits: int = 2) -> int:
    if x <= 0:
        return 0
    scale = 10 ** (math.floor(math.log10(x)) - digits + 1)
    return int(round(x / scale) * scale)


@dataclass(frozen=True)
class EstimateDrift:
    """Observed vs configured usage, and the proposed values (None when within the threshold)."""

    field: str  # expectedMonthlyRequests | avgDurationMs
    configured: float
    observed: float
    ratio: float
    proposed: float | None
    source: str

    def to_json(self) -> dict[str, Any]:
        """The report's form."""
        return {
            "field": f"finops.{self.field}",
            "configured": self.configured,
            "observed": round(self.observed, 1),
            "ratio": round(self.ratio, 3),
            "proposed": self.proposed,
            "source": self.source,
        }


def estimate_drift(
    *,
    expected_requests: float,
    avg_duration_ms: float,
    observed_requests: float | None,
    observed_duration_ms: float | None,
    requests_source: str,
    duration_source: str,
    threshold: float = DEFAULT_THRESHOLD,
) -> list[EstimateDrift]:
    """Both fields' drift; ``proposed`` is set only where the observation is off by more than ``threshold``."""
    out = []
    for name, configured, observed, source, rounding in (
        ("expectedMonthlyRequests", expected_requests, observed_requests, requests_source, _round_sig),
        ("avgDurationMs", avg_duration_ms, observed_duration_ms, duration_source, lambda v: max(1, round(v))),
    ):
        if observed is None:
            continue
        ratio = observed / configured if configured else math.inf
        off = abs(ratio - 1.0) > threshold if configured else observed > 0
        proposed = rounding(observed) if off else None
        if proposed is not None and proposed == configured:
            proposed = None
        out.append(EstimateDrift(name, configured, observed, ratio, proposed, source))
    return out
