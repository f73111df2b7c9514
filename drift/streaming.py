"""ADWIN change detection over a time-ordered metric (where in the current window a change began).

ADWIN (ADaptive WINdowing, Bifet and Gavaldà, "Learning from time-changing data with adaptive
windowing", SIAM SDM 2007) keeps a window of recent values and drops its older part whenever some split
of the window into an older part ``W0`` (``n0`` values, mean ``mu0``) and a newer part ``W1`` (``n1``,
``mu1``) has ``|mu0 - mu1| >= eps_cut`` with

    m = 1 / (1/n0 + 1/n1),   d = ln(2 / delta'),
    eps_cut = sqrt(2 / m * var_W * d) + 2 / (3 m) * d,

where ``var_W`` is the window's variance and values are scaled to [0, 1]. This is the Bernstein-type
cut of the paper's practical version (the one MOA and river use). Published false-alarm bound
(Theorem 3.1 of the paper, by a union bound over the splits checked): if the mean is constant over the
window, the probability that any of the ``K`` splits checked at one check fires is at most ``delta``
when ``delta' = delta / K``. We check splits at geometrically spaced distances from the newest value
(ratio 1.2, like the bucket boundaries of ADWIN2's exponential histogram with 5 buckets per size),
every ``clock`` values, so a check costs O(log W).

When a check fires, the start of the change is estimated as the split over *all* positions of the
window that maximises ``|mu0 - mu1| / eps_cut`` (done only at an alarm, vectorised), the window is cut
there, and scanning continues. The whole scan is vectorised per stretch between alarms: no Python loop
over records.

Scaling: ``adwin(values, value_range=(lo, hi))`` maps values to [0, 1]; without a range the stream's own
min and max are used (fine for offline analysis of a finished window; 0/1 error indicators need none).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_DELTA = 0.002
DEFAULT_CLOCK = 32
MIN_SUBWINDOW = 5
GRACE = 10
_RATIO = 1.2
_BLOCK = 2048  # check times evaluated per vectorised block


@dataclass(frozen=True)
class Change:
    """One ADWIN alarm: the change began at ``start`` and was detected after reading ``detected``."""

    start: int
    detected: int
    mean_before: float
    mean_after: float


def _cut_distances(max_width: int) -> np.ndarray:
    """Sizes of the newer sub-window checked: 5, 6, 7, ... growing by 20% (deduplicated)."""
    d = [MIN_SUBWINDOW]
    while d[-1] < max_width:
        d.append(max(d[-1] + 1, int(d[-1] * _RATIO)))
    return np.asarray(d, dtype=np.int64)


def _epsilon(n0: np.ndarray, n1: np.ndarray, var: np.ndarray, log_term: np.ndarray) -> np.ndarray:
    m = 1.0 / (1.0 / n0 + 1.0 / n1)
    return np.sqrt(2.0 / m * var * log_term) + 2.0 / (3.0 * m) * log_term


def adwin(
    values: np.ndarray,
    *,
    delta: float = DEFAULT_DELTA,
    clock: int = DEFAULT_CLOCK,
    value_range: tuple[float, float] | None = None,
) -> list[Change]:
    """Run ADWIN over ``values`` (in time order) and return every change it detects.

    Parameters
    ----------
    values
        One metric value per record, oldest first.
    delta
        Confidence: the false-alarm probability bound per check (see the module docstring).
    clock
        Check every ``clock`` records (river and MOA use 32).
    value_range
        ``(lo, hi)`` used to scale values to [0, 1]; the data's own min and max when omitted.

    Returns
    -------
    list[Change]
        In detection order; ``start`` is the index of the first record of the new regime.
    """
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if clock < 1:
        raise ValueError(f"clock must be >= 1, got {clock}")
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {x.shape}")
    if x.size == 0 or not np.all(np.isfinite(x)):
        if x.size == 0:
            return []
        raise ValueError("values must be finite")
    lo, hi = (float(x.min()), float(x.max())) if value_range is None else map(float, value_range)
    if hi <= lo:
        return []  # a constant stream has no change
    x = (x - lo) / (hi - lo)
    n = x.size
    s1 = np.concatenate(([0.0], np.cumsum(x)))
    s2 = np.concatenate(([0.0], np.cumsum(x * x)))
    dist = _cut_distances(n)

    changes: list[Change] = []
    start = 0
    t_next = start + max(GRACE, clock)
    while t_next <= n:
        fired = _first_alarm(s1, s2, dist, start, t_next, n, clock, delta)
        if fired is None:
            break
        t = fired
        cut = _best_cut(s1, s2, start, t, delta)
        n0, n1 = cut - start, t - cut
        changes.append(
            Change(
                start=int(cut),
                detected=int(t - 1),
                mean_before=float((s1[cut] - s1[start]) / n0 * (hi - lo) + lo),
                mean_after=float((s1[t] - s1[cut]) / n1 * (hi - lo) + lo),
            )
        )
        start = cut
        t_next = t + clock
    return changes


def _first_alarm(
    s1: np.ndarray, s2: np.ndarray, dist: np.ndarray, start: int, t_first: int, n: int, clock: int, delta: float
) -> int | None:
    """First check time ``t`` (window ``[start, t)``) at which a geometric split fires, else None."""
    for t0 in range(t_first, n + 1, clock * _BLOCK):
        ts = np.arange(t0, min(n, t0 + clock * _BLOCK - 1) + 1, clock, dtype=np.int64)
        if ts.size == 0:
            break
        width = ts - start
        ok = (dist[None, :] <= (width[:, None] - MIN_SUBWINDOW)) & (width[:, None] >= GRACE)
        k = ok.sum(axis=1)
        if not k.any():
            continue
        n1 = np.broadcast_to(dist[None, :], ok.shape).astype(np.float64)
        n0 = width[:, None] - n1
        cut = np.where(ok, ts[:, None] - dist[None, :], start + 1)
        sum_w = (s1[ts] - s1[start])[:, None]
        mean_w = sum_w / width[:, None]
        var = np.maximum((s2[ts] - s2[start])[:, None] / width[:, None] - mean_w**2, 0.0)
        mu0 = (s1[cut] - s1[start]) / np.where(ok, n0, 1.0)
        mu1 = (s1[ts][:, None] - s1[cut]) / np.where(ok, n1, 1.0)
        log_term = np.log(2.0 * np.maximum(k, 1) / delta)[:, None]
        eps = _epsilon(np.where(ok, n0, 1.0), np.where(ok, n1, 1.0), var, log_term)
        hit = ok & (np.abs(mu0 - mu1) >= eps)
        rows = np.flatnonzero(hit.any(axis=1))
        if rows.size:
            return int(ts[rows[0]])
    return None


def _best_cut(s1: np.ndarray, s2: np.ndarray, start: int, t: int, delta: float) -> int:
    """The split of ``[start, t)`` with the largest ``|mu0 - mu1| / eps`` (the change's start)."""
    width = t - start
    cuts = np.arange(start + MIN_SUBWINDOW, t - MIN_SUBWINDOW + 1, dtype=np.int64)
    n0 = (cuts - start).astype(np.float64)
    n1 = (t - cuts).astype(np.float64)
    mean_w = (s1[t] - s1[start]) / width
    var = max((s2[t] - s2[start]) / width - mean_w**2, 0.0)
    mu0 = (s1[cuts] - s1[start]) / n0
    mu1 = (s1[t] - s1[cuts]) / n1
    eps = _epsilon(n0, n1, np.full(cuts.size, var), np.full(cuts.size, np.log(2.0 * cuts.size / delta)))
    return int(cuts[int(np.argmax(np.abs(mu0 - mu1) / eps))])


class Adwin:
    """Incremental ADWIN for one value at a time, with the same rule as :func:`adwin`.

    Values must already lie in [0, 1] (e.g. 0/1 errors). Memory is O(window); the window shrinks at
    each alarm. ``update`` returns True when a change is detected at this value.
    """

    def __init__(self, delta: float = DEFAULT_DELTA, clock: int = DEFAULT_CLOCK) -> None:
        if not 0.0 < delta < 1.0:
            raise ValueError(f"delta must be in (0, 1), got {delta}")
        self.delta = delta
        self.clock = clock
        self._values: list[float] = []
        self._seen = 0
        self._offset = 0  # stream index of the window's first value
        self.changes: list[Change] = []

    @property
    def width(self) -> int:
        """Number of values currently in the window."""
        return len(self._values)

    def update(self, value: float) -> bool:
        """Add one value in [0, 1]; True when a change is detected."""
        v = float(value)
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"Adwin values must lie in [0, 1], got {v}")
        self._values.append(v)
        self._seen += 1
        w = len(self._values)
        if self._seen % self.clock or w < GRACE:
            return False
        x = np.asarray(self._values)
        s1 = np.concatenate(([0.0], np.cumsum(x)))
        s2 = np.concatenate(([0.0], np.cumsum(x * x)))
        if _first_alarm(s1, s2, _cut_distances(w), 0, w, w, self.clock, self.delta) != w:
            return False
        cut = _best_cut(s1, s2, 0, w, self.delta)
        self.changes.append(
            Change(
                start=self._offset + cut,
                detected=self._seen - 1,
                mean_before=float(s1[cut] / cut),
                mean_after=float((s1[w] - s1[cut]) / (w - cut)),
            )
        )
        self._values = self._values[cut:]
        self._offset += cut
        return True
