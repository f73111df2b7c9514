"""Generate the sample inference logs used by the README and the CLI tests (fixed seed).

Writes three small files next to this script:

- ``reference.csv``: the baseline window, 2,000 records;
- ``current.jsonl``: a later window, 2,000 records, in which ``amount`` has shifted up, the share of
  ``country`` values has changed and accuracy has dropped; ``age`` and ``device`` are unchanged;
- ``stable.parquet``: another 2,000 records from the reference distributions (no drift).

Run ``python examples/drift/make_sample.py`` to regenerate; the output is byte-for-byte reproducible.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROWS = 2_000
COUNTRIES = ["US", "GB", "DE", "FR", "IN"]
DEVICES = ["ios", "android", "web"]


def make_window(seed: int, start: datetime, *, drifted: bool) -> dict[str, list]:
    """One window of records as columns; ``drifted`` applies the documented shifts."""
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(mean=3.6 if drifted else 3.3, sigma=0.6, size=ROWS)
    age = rng.normal(41.0, 12.0, size=ROWS).clip(18, 90)
    country_p = [0.20, 0.10, 0.15, 0.15, 0.40] if drifted else [0.40, 0.20, 0.15, 0.15, 0.10]
    country = rng.choice(COUNTRIES, size=ROWS, p=country_p)
    device = rng.choice(DEVICES, size=ROWS, p=[0.35, 0.45, 0.20])
    score = 1.0 / (1.0 + np.exp(-(0.04 * (amount - 30.0) + rng.normal(0.0, 1.0, size=ROWS))))
    prediction = (score > 0.5).astype(int)
    # The label agrees with the prediction 90% of the time in the reference, 75% after the drift.
    agree = rng.random(ROWS) < (0.75 if drifted else 0.90)
    label = np.where(agree, prediction, 1 - prediction)
    stamps = [(start + timedelta(seconds=30 * i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(ROWS)]
    return {
        "timestamp": stamps,
        "model_version": ["2.2.0"] * ROWS,
        "amount": [round(float(v), 2) for v in amount],
        "age": [round(float(v), 1) for v in age],
        "country": [str(v) for v in country],
        "device": [str(v) for v in device],
        "prediction": [int(v) for v in prediction],
        "label": [int(v) for v in label],
    }


def write_csv(path: Path, cols: dict[str, list]) -> None:
    """Plain CSV with a header; values never contain commas or quotes."""
    names = list(cols)
    lines = [",".join(names)]
    lines += [",".join(str(cols[n][i]) for n in names) for i in range(len(cols[names[0]]))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_jsonl(path: Path, cols: dict[str, list]) -> None:
    """One JSON object per line."""
    names = list(cols)
    rows = (json.dumps({n: cols[n][i] for n in names}, separators=(",", ":")) for i in range(len(cols[names[0]])))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def main(out_dir: str | None = None) -> None:
    """Write the three sample files into ``out_dir`` (default: this script's folder)."""
    out = Path(out_dir) if out_dir else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    write_csv(out / "reference.csv", make_window(20260105, t0, drifted=False))
    write_jsonl(out / "current.jsonl", make_window(20260112, t0 + timedelta(days=7), drifted=True))
    stable = make_window(20260119, t0 + timedelta(days=14), drifted=False)
    pq.write_table(pa.table(stable), out / "stable.parquet", compression="zstd")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
