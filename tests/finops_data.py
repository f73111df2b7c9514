"""Generated FOCUS exports (AWS, Azure, Google column sets and tag forms) and capture files with known truths.

Scenario, stack ``dev`` (Pulumi.dev.yaml with fraud-scorer over-provisioned at 3008 MB and a latency
objective), data from 2026-10-04 to 2026-11-20:

* fraud-scorer (AWS FOCUS 1.2 with AWS columns, Parquet map tags with ``user:`` keys, plus one gzip CSV
  part): about 2M requests a day at 40 ms, one anomalous day (2026-11-19, 4x), a credit, a tax line and a
  correction that must stay out of usage; capture with ``memory_used_mb`` near 180 MB.
* churn-predictor (Azure FocusCost CSV.gz, JSON object tags): steady spend that forecasts over budget.
* doc-classifier (Google FOCUS Parquet, array of key/value structs; and a CSV part with JSON arrays):
  steady and in line with its estimate.
* sentiment (Kubernetes): no billing rows; cost from the node price and its capture.
* Unattributed: a dev-tagged resource of a removed function; outside: another stack and untagged EC2.
"""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from finops.keys import function_key

ROOT = Path(__file__).resolve().parents[1]
START = np.datetime64("2026-10-04")
AS_OF = np.datetime64("2026-11-20")
MONTH_START = np.datetime64("2026-11-01")
ANOMALY_DAY = np.datetime64("2026-11-19")
STACK = "dev"

# Columns common to every FOCUS 1.0-1.2 export (a realistic subset of the mandatory set).
_COMMON = [
    "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingAccountId", "BillingCurrency",
    "BillingPeriodStart", "BillingPeriodEnd", "ChargeCategory", "ChargeClass", "ChargeDescription",
    "ChargeFrequency", "ChargePeriodStart", "ChargePeriodEnd", "ConsumedQuantity", "ConsumedUnit",
    "InvoiceIssuerName", "ProviderName", "PublisherName", "RegionId", "ResourceId", "ServiceCategory",
    "ServiceName", "SubAccountId", "Tags",
]  # fmt: skip
PROVIDER_EXTRA = {
    "aws": ["x_Discounts", "x_Operation", "x_ServiceCode"],
    "azure": ["x_ResourceGroupName", "x_SkuMeterCategory", "x_BillingProfileId"],
    "google": ["x_ServiceId", "x_Credits", "x_ExportTime"],
}


def key(name: str) -> str:
    return function_key("inferops", STACK, name)


@dataclass
class Rows:
    """Rows being generated for one provider, plus the truths they encode."""

    provider: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, day: np.datetime64, cost: float, tags: Any, *, category: str = "Usage", correction: bool = False,
            quantity: float | None = None, unit: str | None = None, service: str = "AWS Lambda") -> None:  # fmt: skip
        d = str(day)
        row = {c: None for c in _COMMON + PROVIDER_EXTRA[self.provider]}
        row.update(
            BilledCost=round(cost, 6), EffectiveCost=round(cost, 6), ListCost=round(cost, 6), ContractedCost=round(cost, 6),
            BillingAccountId="123456789012", BillingCurrency="USD",
            BillingPeriodStart=d[:8] + "01T00:00:00Z", BillingPeriodEnd=d[:8] + "28T00:00:00Z",
            ChargeCategory=category, ChargeClass="Correction" if correction else None,
            ChargeDescription=f"{category} {service}", ChargeFrequency="Usage-Based",
            ChargePeriodStart=f"{d}T00:00:00Z", ChargePeriodEnd=f"{np.datetime64(d) + 1}T00:00:00Z",
            ConsumedQuantity=quantity, ConsumedUnit=unit, InvoiceIssuerName=self.provider,
            ProviderName={"aws": "AWS", "azure": "Microsoft", "google": "Google Cloud"}[self.provider],
            PublisherName=self.provider, RegionId="us-east-1", ResourceId=f"res-{len(self.rows)}",
            ServiceCategory="Compute", ServiceName=service, SubAccountId="sub", Tags=tags,
        )  # fmt: skip
        self.rows.append(row)


@dataclass
class Truth:
    """What the generated data says, computed from the generated rows themselves."""

    usage_mtd: dict[str, float] = field(default_factory=dict)
    credits_mtd: dict[str, float] = field(default_factory=dict)
    corrections_mtd: dict[str, float] = field(default_factory=dict)
    unattributed: float = 0.0
    outside: float = 0.0
    total: float = 0.0


def _days() -> list[np.datetime64]:
    return [START + i for i in range(int((AS_OF - START).astype(int)) + 1)]


def _weekend(day: np.datetime64) -> bool:
    return int((day.astype(int) + 3) % 7) >= 5


def _count(
    truth: Truth, name: str, day: np.datetime64, cost: float, category: str = "usage", correction: bool = False
) -> None:
    truth.total += cost
    if day < MONTH_START:
        return
    if correction:
        truth.corrections_mtd[name] = truth.corrections_mtd.get(name, 0.0) + cost
    elif category == "usage":
        truth.usage_mtd[name] = truth.usage_mtd.get(name, 0.0) + cost
    elif category == "credit":
        truth.credits_mtd[name] = truth.credits_mtd.get(name, 0.0) + cost


def generate(rng: np.random.Generator | None = None) -> tuple[dict[str, Rows], Truth]:
    """Rows per provider and the truths they encode."""
    rng = rng or np.random.default_rng(2026)
    truth = Truth()
    aws, azure, google = Rows("aws"), Rows("azure"), Rows("google")
    fraud_tags = {"user:function-name": key("fraud-scorer"), "user:stack": STACK, "user:model-id": "fraud-scorer",
                  "user:model-version": "2.2.0", "aws:createdBy": "pulumi"}  # fmt: skip
    churn_tags = json.dumps({"function-name": key("churn-predictor"), "stack": STACK, "model-version": "1.4.0"})
    doc_tags = [{"key": "function-name", "value": key("doc-classifier")}, {"key": "stack", "value": STACK}]
    for day in _days():
        factor = 0.6 if _weekend(day) else 1.0
        # fraud-scorer: Lambda arm64 at 3008 MB, 40 ms; requests and GB-seconds rows
        requests = round(2_000_000 * factor * rng.lognormal(0, 0.05))
        if day == ANOMALY_DAY:
            requests *= 4
        gb_s = requests * 0.040 * 3008 / 1024
        for cost, q, unit in (
            (requests * 0.2 / 1e6, requests, "Requests"),
            (gb_s * 0.0000133334, gb_s, "Lambda-GB-Second"),
        ):
            aws.add(day, cost, fraud_tags, quantity=q, unit=unit)
            _count(truth, "fraud-scorer", day, round(cost, 6))
        # churn-predictor: Azure, about $7 a weekday
        cost = 7.0 * factor * rng.lognormal(0, 0.05)
        azure.add(day, cost, churn_tags, quantity=cost / 0.000016, unit="GB Seconds", service="Azure Functions")
        _count(truth, "churn-predictor", day, round(cost, 6))
        # doc-classifier: Cloud Run, about 16.4k requests a day at 400 ms billed, 1 vCPU, 1 GiB
        req = 500_000 / 30.4 * factor
        cost = req * 0.4 * (0.000024 + 0.0000025) + req * 0.4 / 1e6
        google.add(day, cost, doc_tags, quantity=req, unit="Requests", service="Cloud Run")
        google.add(day, 0.0, doc_tags, quantity=req * 0.4, unit="GiB-Seconds", service="Cloud Run")
        _count(truth, "doc-classifier", day, round(cost, 6))
        # outside the stack: untagged EC2 and another stack's function
        aws.add(day, 3.21, {"user:team": "web"}, service="Amazon EC2")
        truth.total += 3.21
        truth.outside += 3.21
        aws.add(
            day, 1.11, {"user:function-name": function_key("inferops", "prod", "fraud-scorer"), "user:stack": "prod"}
        )
        truth.total += 1.11
        truth.outside += 1.11
    # a dev resource of a removed function: unattributed, never dropped
    aws.add(np.datetime64("2026-11-10"), 12.34, {"user:function-name": key("old-function"), "user:stack": STACK})
    truth.total += 12.34
    truth.unattributed += 12.34
    # credit, tax and a correction on fraud-scorer: kept apart from usage
    for cost, cat, corr in ((-5.0, "Credit", False), (0.75, "Tax", False), (2.5, "Usage", True)):
        aws.add(np.datetime64("2026-11-15"), cost, fraud_tags, category=cat, correction=corr)
        _count(truth, "fraud-scorer", np.datetime64("2026-11-15"), cost, cat.lower(), corr)
    return {"aws": aws, "azure": azure, "google": google}, truth


def _table(rows: Rows, tags: str) -> pa.Table:
    cols: dict[str, list[Any]] = {c: [r[c] for r in rows.rows] for c in rows.rows[0]}
    if tags == "map":
        values = [list(t.items()) for t in cols["Tags"]]
        cols_arr = {c: pa.array(v) for c, v in cols.items() if c != "Tags"}
        cols_arr["Tags"] = pa.array(values, type=pa.map_(pa.string(), pa.string()))
        return pa.table(cols_arr)
    if tags == "structs":
        cols_arr = {c: pa.array(v) for c, v in cols.items() if c != "Tags"}
        cols_arr["Tags"] = pa.array(
            cols["Tags"], type=pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))
        )
        return pa.table(cols_arr)
    # JSON text
    cols["Tags"] = [t if isinstance(t, str) else json.dumps(t) for t in cols["Tags"]]
    return pa.table(
        {
            c: pa.array(v, type=pa.string() if c in ("Tags", "ChargeClass", "ConsumedUnit") else None)
            for c, v in cols.items()
        }
    )


def write_exports(out: Path, providers: dict[str, Rows]) -> dict[str, Path]:
    """Write each provider's export in its own layout; returns the directory (or file) per provider."""
    paths: dict[str, Path] = {}
    aws_dir = out / "aws" / "focus-export" / "data" / "BILLING_PERIOD=2026-11"
    aws_dir.mkdir(parents=True)
    rows = providers["aws"]
    half = len(rows.rows) // 2
    pq.write_table(_table(Rows("aws", rows.rows[:half]), "map"), aws_dir / "focus-export-00001.snappy.parquet")
    buf = io.BytesIO()
    pacsv.write_csv(_table(Rows("aws", rows.rows[half:]), "json"), buf)
    (aws_dir / "focus-export-00002.csv.gz").write_bytes(gzip.compress(buf.getvalue()))
    (aws_dir.parent.parent / "metadata").mkdir()
    (aws_dir.parent.parent / "metadata" / "focus-export-Manifest.json").write_text("{}")
    paths["aws"] = out / "aws" / "focus-export"
    az = out / "azure" / "part_0_0001.csv.gz"
    az.parent.mkdir(parents=True)
    buf = io.BytesIO()
    pacsv.write_csv(_table(providers["azure"], "json"), buf)
    az.write_bytes(gzip.compress(buf.getvalue()))
    paths["azure"] = az
    g = out / "google"
    g.mkdir(parents=True)
    grows = providers["google"].rows
    pq.write_table(_table(Rows("google", grows[: len(grows) // 2]), "structs"), g / "focus-000.parquet")
    pacsv.write_csv(_table(Rows("google", grows[len(grows) // 2 :]), "json"), g / "focus-001.csv")
    paths["google"] = g
    return paths


def write_capture(out: Path, rng: np.random.Generator | None = None) -> dict[str, Path]:
    """Capture JSONL for fraud-scorer (sampled, with memory), sentiment (all records), churn (latency)."""
    rng = rng or np.random.default_rng(7)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    specs = {
        # name: (records per day, latency ms mean, memory MB or None, model id, version)
        "fraud-scorer": (300, 40.0, 180.0, "fraud-scorer", "2.2.0"),
        "sentiment": (6000, 50.0, None, "sentiment", "0.9.0"),
    }
    for name, (per_day, lat, mem, model, version) in specs.items():
        lines = []
        for day in [MONTH_START + i for i in range(20)]:
            secs = np.sort(rng.uniform(0, 86400, per_day))
            for i, s in enumerate(secs):
                ts = np.datetime64(str(day)) + np.timedelta64(int(s * 1000), "ms")
                rec = {"request_id": f"{name}-{day}-{i}", "timestamp": str(ts) + "Z", "model_id": model,
                       "model_version": version, "variant": "canary" if name == "fraud-scorer" and i % 10 == 0 else "stable",
                       "prediction": 1, "latency_ms": round(float(rng.gamma(16, lat / 16)), 2)}  # fmt: skip
                if mem is not None:
                    rec["memory_used_mb"] = round(float(mem * rng.uniform(0.9, 1.0)), 1)
                lines.append(json.dumps(rec))
        p = out / f"{name}.jsonl"
        p.write_text("\n".join(lines) + "\n")
        paths[name] = p
    return paths


def stack_repo(out: Path) -> Path:
    """A project directory with Pulumi.dev.yaml: fraud-scorer at 3008 MB with a 250 ms objective."""
    text = (ROOT / "Pulumi.dev.yaml").read_text()
    text = text.replace("runtime: {memoryMb: 1024, timeoutSeconds: 30, architecture: arm64}",
                        "runtime: {memoryMb: 3008, timeoutSeconds: 30, architecture: arm64}", 1)  # fmt: skip
    text = text.replace("        expectedMonthlyRequests: 3000000\n        avgDurationMs: 120\n",
                        "        expectedMonthlyRequests: 3000000\n        avgDurationMs: 120\n        latencySloMs: 250\n", 1)  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "Pulumi.dev.yaml").write_text(text)
    return out
