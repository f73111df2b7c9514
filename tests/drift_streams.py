"""Seeded streams with known change points for the drift tests (no I/O, no randomness outside a seed).

``sea`` follows river's ``synth.SEA`` (river/datasets/synth/sea.py): three features uniform on [0, 10],
label ``x0 + x1 > threshold`` with thresholds 8, 9, 7, 9.5 for variants 0-3, and a share ``noise`` of the
labels flipped. It is written out here, seeded with numpy, rather than adding river as a test
dependency; the model is the exact variant-0 rule, so its accuracy is ``1 - noise`` before a flip and
drops by the mass between the two thresholds after it (variant 0 -> 3: 94.6% -> 83% at noise 0.054).
"""

from __future__ import annotations

import numpy as np

SEA_THRESHOLDS = {0: 8.0, 1: 9.0, 2: 7.0, 3: 9.5}


def timestamps(n: int, start: str = "2026-11-01T00:00:00") -> np.ndarray:
    """One record a second."""
    return np.datetime64(start) + np.arange(n).astype("timedelta64[s]")


def sea(
    n: int,
    rng: np.random.Generator,
    *,
    variant: int = 0,
    flip_at: int | None = None,
    to_variant: int = 3,
    width: int = 0,
    noise: float = 0.054,
) -> dict[str, np.ndarray]:
    """A SEA stream scored by the variant-``variant`` rule; from ``flip_at`` the concept is ``to_variant``.

    ``width > 0`` makes the drift gradual: record ``i`` follows the new concept with probability rising
    linearly from 0 at ``flip_at`` to 1 at ``flip_at + width``.
    """
    x = rng.uniform(0.0, 10.0, (n, 3))
    s = x[:, 0] + x[:, 1]
    new = np.zeros(n, dtype=bool)
    if flip_at is not None:
        i = np.arange(n)
        new = rng.random(n) < np.clip((i - flip_at) / width, 0.0, 1.0) if width else i >= flip_at
    theta = np.where(new, SEA_THRESHOLDS[to_variant], SEA_THRESHOLDS[variant])
    y = s > theta
    y ^= rng.random(n) < noise
    pred = s > SEA_THRESHOLDS[variant]
    return {
        "timestamp": timestamps(n),
        "x0": x[:, 0],
        "x1": x[:, 1],
        "x2": x[:, 2],
        "label": y,
        "prediction": pred,
    }


def prior_shift(
    n: int, rng: np.random.Generator, *, at: int | None, before: float = 0.3, after: float = 0.7
) -> dict[str, np.ndarray]:
    """Positive share ``before`` -> ``after`` from row ``at``; right on 95% of negatives, 80% of positives."""
    i = np.arange(n)
    share = np.where(i >= at, after, before) if at is not None else np.full(n, before)
    y = rng.random(n) < share
    right = rng.random(n) < np.where(y, 0.80, 0.95)
    return {"timestamp": timestamps(n), "x": rng.normal(size=n), "label": y, "prediction": np.where(right, y, ~y)}


def covariate_ramp(n: int, rng: np.random.Generator, *, start: int | None, to: float = 1.5) -> dict[str, np.ndarray]:
    """``x``'s mean ramps linearly from 0 (row ``start``) to ``to`` (last row); the label follows ``z`` only."""
    i = np.arange(n)
    mean = np.zeros(n) if start is None else np.clip((i - start) / max(n - start, 1), 0.0, 1.0) * to
    x = rng.normal(mean, 1.0)
    z = rng.normal(size=n)
    y = z > 0
    right = rng.random(n) < 0.9
    return {"timestamp": timestamps(n), "x": x, "z": z, "label": y, "prediction": np.where(right, y, ~y)}
