"""Monthly cost model for inference functions, from the dated price table in ``prices.json``.

Each estimator turns a function's own settings (memory, architecture, region, provisioned
concurrency, minimum instances, replicas) and its expected usage (requests per month, average
duration) into a :class:`Usage`: billable quantities and the unit prices that apply. A usage is then
priced either on its own, without free tiers (:meth:`Usage.cost`), or together with the rest of a
stack by :func:`stack_cost`, which subtracts each product's free tier once (free tiers belong to the
account, subscription or billing account, not to a function).

When a region is not in the table the product's documented default region is used and a warning is
attached, so the caller can tell the estimate is a fallback.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

PRICE_TABLE_PATH = Path(__file__).with_name("prices.json")
SECONDS_PER_HOUR = 3600.0

# Quantity name -> (unit price key, free-tier key).
_QUANTITIES = {
    "requests": ("request_per_million", "requests"),
    "gb_seconds": ("gb_second", "gb_seconds"),
    "vcpu_seconds": ("vcpu_second", "vcpu_seconds"),
    "gib_seconds": ("gib_second", "gib_seconds"),
}


@lru_cache(maxsize=4)
def load_price_table(path: str | None = None) -> dict[str, Any]:
    """Load the price table (cached). Raises ``ValueError`` naming the file when it is unreadable."""
    target = Path(path) if path else PRICE_TABLE_PATH
    try:
        return json.loads(target.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"price table {target}: {exc}") from exc


@dataclass
class Usage:
    """Billable quantities of one function on one product, with the unit prices that apply.

    ``fixed_usd`` holds capacity charged regardless of traffic (provisioned concurrency, minimum
    instances, Kubernetes replicas); free tiers never reduce it.
    """

    product: str
    region: str
    quantities: dict[str, float]
    prices: dict[str, float]
    fixed_usd: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def _unit_price(self, quantity: str) -> float:
        price_key = _QUANTITIES[quantity][0]
        price = self.prices.get(price_key, 0.0)
        return price / 1_000_000 if quantity == "requests" else price

    def cost(self) -> float:
        """Monthly USD for this usage alone, assuming no free tier."""
        variable = sum(amount * self._unit_price(name) for name, amount in self.quantities.items())
        return variable + self.fixed_usd

    def cost_per_1k(self) -> float:
        """USD per 1,000 requests (no free tier); 0 when no requests are expected."""
        requests = self.quantities.get("requests", 0.0)
        return self.cost() / requests * 1000 if requests > 0 else 0.0


def _region_prices(product: str, region: str | None, arch: str) -> tuple[dict[str, float], str, list[str]]:
    table = load_price_table()
    entry = table[product]
    warnings: list[str] = []
    default = entry["default_region"]
    if region is None or region not in entry["regions"]:
        shown = "no region" if region is None else f"region '{region}'"
        warnings.append(
            f"{shown} is not in the {product} price table (version {table['version']}); priced as {default}"
        )
        region_used = default
    else:
        region_used = region
    price_set = entry["price_sets"][entry["regions"][region_used]]
    prices = price_set.get(arch) or price_set.get("any")
    if prices is None:
        raise ValueError(f"{product}: no prices for architecture '{arch}'")
    return {k: v for k, v in prices.items() if k != "verify"}, region_used, warnings


def lambda_usage(
    *,
    requests: float,
    duration_ms: float,
    memory_mb: float,
    architecture: str = "x86_64",
    region: str | None = None,
    provisioned_concurrency: float = 0.0,
) -> Usage:
    """AWS Lambda: GB-seconds billed per 1 ms at the configured memory, plus requests.

    Provisioned concurrency adds ``instances x memory x hours of the month`` at the provisioned
    rate; requests it serves are still priced at the on-demand duration rate (an upper bound).
    """
    arch = "arm64" if architecture == "arm64" else "x86_64"
    prices, region_used, warnings = _region_prices("aws-lambda", region, arch)
    memory_gb = memory_mb / 1024.0
    billed_s = math.ceil(duration_ms) / 1000.0
    fixed = 0.0
    if provisioned_concurrency > 0:
        seconds = load_price_table()["hours_per_month"] * SECONDS_PER_HOUR
        fixed = provisioned_concurrency * memory_gb * seconds * prices["provisioned_gb_second"]
    return Usage(
        "aws-lambda",
        region_used,
        {"requests": requests, "gb_seconds": requests * billed_s * memory_gb},
        prices,
        fixed,
        warnings,
    )


def azure_functions_usage(
    *, requests: float, duration_ms: float, memory_mb: float, region: str | None = None, flex: bool = False
) -> Usage:
    """Azure Functions Consumption (default) or Flex Consumption on-demand execution.

    Consumption rounds memory up to 128 MB steps (at most 1,536 MB) and bills at least 100 ms per
    execution; Flex bills the instance memory size.
    """
    product = "azure-functions-flex" if flex else "azure-functions-consumption"
    prices, region_used, warnings = _region_prices(product, region, "any")
    if flex:
        billed_mb = memory_mb
        billed_s = math.ceil(duration_ms) / 1000.0
    else:
        billed_mb = min(1536.0, math.ceil(memory_mb / 128.0) * 128.0)
        billed_s = max(100.0, math.ceil(duration_ms)) / 1000.0
    gb_seconds = requests * billed_s * billed_mb / 1024.0
    return Usage(product, region_used, {"requests": requests, "gb_seconds": gb_seconds}, prices, 0.0, warnings)


def cloud_run_usage(
    *,
    requests: float,
    duration_ms: float,
    vcpu: float,
    memory_gib: float,
    region: str | None = None,
    min_instances: float = 0.0,
    serving_revisions: int = 1,
) -> Usage:
    """Cloud Run request-based billing: vCPU-seconds and GiB-seconds in 100 ms steps, plus requests.

    Minimum instances of every revision that serves traffic (both sides of a canary split) are
    charged all month at the idle rate.
    """
    prices, region_used, warnings = _region_prices("gcp-cloud-run", region, "any")
    billed_s = math.ceil(duration_ms / 100.0) / 10.0
    fixed = 0.0
    if min_instances > 0:
        seconds = load_price_table()["hours_per_month"] * SECONDS_PER_HOUR
        per_instance = (
            vcpu * prices["idle_min_instance_vcpu_second"] + memory_gib * prices["idle_min_instance_gib_second"]
        )
        fixed = min_instances * max(1, serving_revisions) * seconds * per_instance
    return Usage(
        "gcp-cloud-run",
        region_used,
        {
            "requests": requests,
            "vcpu_seconds": requests * billed_s * vcpu,
            "gib_seconds": requests * billed_s * memory_gib,
        },
        prices,
        fixed,
        warnings,
    )


def knative_usage(
    *,
    requests: float,
    duration_ms: float,
    vcpu: float,
    memory_gib: float,
    vcpu_hour_usd: float,
    gib_hour_usd: float,
    min_scale: float = 0.0,
    serving_revisions: int = 1,
    container_concurrency: float = 0.0,
) -> Usage:
    """Knative on a cluster: the requested vCPU and memory times the hours pods run, at the node price.

    Pods at ``min-scale`` run all month for every revision that serves traffic; above that, busy
    pod time is ``requests x duration / concurrency`` (concurrency 0, i.e. unlimited, counts as 1,
    an upper bound). Scale-to-zero time is free.
    """
    table = load_price_table()
    per_pod_hour = vcpu * vcpu_hour_usd + memory_gib * gib_hour_usd
    always_on = min_scale * max(1, serving_revisions) * table["hours_per_month"] * per_pod_hour
    concurrency = container_concurrency if container_concurrency and container_concurrency > 0 else 1.0
    busy_hours = requests * (duration_ms / 1000.0) / concurrency / SECONDS_PER_HOUR
    return Usage(
        "kubernetes",
        "cluster",
        {"requests": requests},
        {"request_per_million": 0.0},
        always_on + busy_hours * per_pod_hour,
        [],
    )


def free_tier(product: str) -> dict[str, float]:
    """The monthly free quantities of a product (empty when it has none)."""
    entry = load_price_table().get(product, {})
    return {k: float(v) for k, v in entry.get("free_tier", {}).items() if k != "scope"}


def stack_cost(usages: list[Usage], *, apply_free_tiers: bool = True) -> float:
    """Monthly USD for a set of usages, each product's free tier subtracted once.

    Free quantities go to the most expensive unit price first, which is the order that keeps the
    estimate from understating any single line.
    """
    total = sum(u.fixed_usd for u in usages)
    by_product: dict[str, list[Usage]] = {}
    for usage in usages:
        by_product.setdefault(usage.product, []).append(usage)
    for product, group in by_product.items():
        allowance = free_tier(product) if apply_free_tiers else {}
        for quantity, (_price_key, free_key) in _QUANTITIES.items():
            lines = sorted(
                ((u._unit_price(quantity), u.quantities.get(quantity, 0.0)) for u in group),
                key=lambda line: line[0],
                reverse=True,
            )
            remaining_free = allowance.get(free_key, 0.0)
            for unit_price, amount in lines:
                free_used = min(amount, remaining_free)
                remaining_free -= free_used
                total += (amount - free_used) * unit_price
    return total


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) and value >= 0 else None


def parse_cpu(value: Any) -> float | None:
    """A Kubernetes/Cloud Run CPU quantity (``"1"``, ``"500m"``, ``2``) in vCPU; ``None`` if malformed
    (negative, ``nan``/``inf`` and numbers beyond the float range included)."""
    try:
        return _finite(_parse_cpu(value))
    except OverflowError:
        return None


def _parse_cpu(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return float(text[:-1]) / 1000.0 if text.endswith("m") else float(text)
    except ValueError:
        return None


_MEMORY_UNITS = {
    "Ki": 1024.0,
    "Mi": 1024.0**2,
    "Gi": 1024.0**3,
    "Ti": 1024.0**4,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
}


def parse_memory_gib(value: Any) -> float | None:
    """A Kubernetes/Cloud Run memory quantity (``"512Mi"``, ``"1Gi"``, ``"1G"``, bytes) in GiB;
    ``None`` if malformed."""
    try:
        return _finite(_parse_memory_gib(value))
    except OverflowError:
        return None


def _parse_memory_gib(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) / 1024.0**3
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    for suffix in sorted(_MEMORY_UNITS, key=len, reverse=True):
        if text.endswith(suffix):
            try:
                return float(text[: -len(suffix)]) * _MEMORY_UNITS[suffix] / 1024.0**3
            except ValueError:
                return None
    try:
        return float(text) / 1024.0**3
    except ValueError:
        return None
