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

# Quantity name -> (unit price key, free-tier key or None). Quantities ending in "requests" are
# priced per million. A free-tier key "instance:<k>" reads the product's ``instance_free_tier``.
_QUANTITIES: dict[str, tuple[str, str | None]] = {
    "requests": ("request_per_million", "requests"),
    "gb_seconds": ("gb_second", "gb_seconds"),
    "vcpu_seconds": ("vcpu_second", "vcpu_seconds"),
    "gib_seconds": ("gib_second", "gib_seconds"),
    "provisioned_gb_seconds": ("provisioned_duration_gb_second", None),
    "ephemeral_gb_seconds": ("ephemeral_gb_second", None),
    "always_ready_gb_seconds": ("always_ready_gb_second", None),
    "always_ready_requests": ("always_ready_request_per_million", None),
    "instance_vcpu_seconds": ("instance_vcpu_second", "instance:vcpu_seconds"),
    "instance_gib_seconds": ("instance_gib_second", "instance:gib_seconds"),
}


@lru_cache(maxsize=4)
def load_price_table(path: str | None = None) -> dict[str, Any]:
    """Load the price table (cached). Raises ``ValueError`` naming the file when it is unreadable."""
    target = Path(path) if path else PRICE_TABLE_PATH
    try:
        return json.loads(target.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"price table {target}: {exc}") from exc


def month_seconds() -> float:
    """Seconds in the table's billing month (``hours_per_month`` x 3,600)."""
    return float(load_price_table()["hours_per_month"]) * SECONDS_PER_HOUR


def tiered_cost(amount: float, tiers: list[list[Any]]) -> float:
    """Cost of ``amount`` units priced by monthly volume tiers ``[[size or None, price], ...]``."""
    cost, remaining = 0.0, amount
    for size, price in tiers:
        take = remaining if size is None else min(remaining, float(size))
        cost += take * float(price)
        remaining -= take
        if remaining <= 0:
            break
    return cost


@dataclass
class Usage:
    """Billable quantities of one function on one product, with the unit prices that apply.

    ``fixed_usd`` holds capacity charged regardless of traffic (provisioned concurrency, minimum
    instances, always-ready instances, Kubernetes replicas); free tiers never reduce it.
    ``free_tier_eligible`` is False where the product excludes the function from its free tier
    (Lambda with provisioned concurrency). ``free_prices`` are the unit prices at which free units
    are credited (Cloud Run credits its free tier at Tier 1 prices in every region).
    """

    product: str
    region: str
    quantities: dict[str, float]
    prices: dict[str, Any]
    fixed_usd: float = 0.0
    warnings: list[str] = field(default_factory=list)
    free_tier_eligible: bool = True
    free_prices: dict[str, Any] = field(default_factory=dict)

    def _unit_price(self, quantity: str, prices: dict[str, Any] | None = None) -> float:
        price = float((prices or self.prices).get(_QUANTITIES[quantity][0], 0.0))
        return price / 1_000_000 if quantity.endswith("requests") else price

    def _amount_cost(self, quantity: str, amount: float) -> float:
        tiers = self.prices.get("gb_second_tiers") if quantity == "gb_seconds" else None
        return tiered_cost(amount, tiers) if tiers else amount * self._unit_price(quantity)

    def cost(self) -> float:
        """Monthly USD for this usage alone, assuming no free tier."""
        return sum(self._amount_cost(name, amount) for name, amount in self.quantities.items()) + self.fixed_usd

    def cost_per_1k(self) -> float:
        """USD per 1,000 requests (no free tier); 0 when no requests are expected."""
        requests = self.quantities.get("requests", 0.0) + self.quantities.get("always_ready_requests", 0.0)
        return self.cost() / requests * 1000 if requests > 0 else 0.0


def highest_prices(product: str, arch: str) -> dict[str, Any]:
    """Unit by unit, the highest price any listed region charges (the fallback for unlisted regions)."""
    out: dict[str, Any] = {}
    for price_set in load_price_table()[product]["price_sets"].values():
        prices = price_set.get(arch) or price_set.get("any") or {}
        for key, value in prices.items():
            if isinstance(value, int | float):
                out[key] = max(float(value), out.get(key, float(value)))
            elif key == "gb_second_tiers":
                current = out.get(key)
                out[key] = (
                    [list(t) for t in value]
                    if current is None
                    else [[a[0], max(float(a[1]), float(b[1]))] for a, b in zip(current, value, strict=True)]
                )
    return out


def _region_prices(product: str, region: str | None, arch: str) -> tuple[dict[str, Any], str, list[str]]:
    """The price set of a region. A region the table does not list is priced, unit by unit, at the
    highest price of the listed regions (:func:`highest_prices`), so it is never priced below them."""
    table = load_price_table()
    entry = table[product]
    warnings: list[str] = []
    if region is None or region not in entry["regions"]:
        shown = "no region" if region is None else f"region '{region}'"
        warnings.append(
            f"{shown} is not in the {product} price table (version {table['version']}); priced at the highest "
            "listed prices"
        )
        return highest_prices(product, arch), region or entry["default_region"], warnings
    price_set = entry["price_sets"][entry["regions"][region]]
    prices = price_set.get(arch) or price_set.get("any")
    if prices is None:
        raise ValueError(f"{product}: no prices for architecture '{arch}'")
    return {k: v for k, v in prices.items() if k != "verify"}, region, warnings


def lambda_usage(
    *,
    requests: float,
    duration_ms: float,
    memory_mb: float,
    architecture: str = "x86_64",
    region: str | None = None,
    provisioned_concurrency: float = 0.0,
    provisioned_hours: float | None = None,
    ephemeral_storage_mb: float = 512.0,
) -> Usage:
    """AWS Lambda: GB-seconds billed per 1 ms at the configured memory (volume tiers), plus requests.

    Provisioned concurrency adds ``instances x memory x provisioned_hours`` (default: all month)
    at the provisioned rate, and the requests it serves (up to its capacity, one request per
    instance at a time) are billed at the provisioned duration rate; the rest spill over to
    on-demand. A function with provisioned concurrency gets no free tier (the pricing page).
    Ephemeral storage above the free 512 MB is billed per GB-s of duration.
    """
    arch = "arm64" if architecture == "arm64" else "x86_64"
    prices, region_used, warnings = _region_prices("aws-lambda", region, arch)
    memory_gb = memory_mb / 1024.0
    busy_s = requests * math.ceil(duration_ms) / 1000.0
    fixed, served_s = 0.0, 0.0
    if provisioned_concurrency > 0:
        hours = load_price_table()["hours_per_month"] if provisioned_hours is None else provisioned_hours
        enabled_s = hours * SECONDS_PER_HOUR
        fixed = provisioned_concurrency * memory_gb * enabled_s * float(prices["provisioned_gb_second"])
        served_s = min(busy_s, provisioned_concurrency * enabled_s)
    extra_storage_gb = max(0.0, ephemeral_storage_mb - 512.0) / 1024.0
    return Usage(
        "aws-lambda",
        region_used,
        {
            "requests": requests,
            "gb_seconds": (busy_s - served_s) * memory_gb,
            "provisioned_gb_seconds": served_s * memory_gb,
            "ephemeral_gb_seconds": busy_s * extra_storage_gb,
        },
        prices,
        fixed,
        warnings,
        free_tier_eligible=provisioned_concurrency <= 0,
    )


def azure_consumption_memory_mb(memory_mb: float) -> float:
    """Billed memory on the Consumption plan: rounded up to 128 MB steps, 128 MB to 1,536 MB."""
    return min(1536.0, max(128.0, math.ceil(memory_mb / 128.0) * 128.0))


def azure_functions_usage(
    *,
    requests: float,
    duration_ms: float,
    memory_mb: float,
    region: str | None = None,
    flex: bool = False,
    always_ready: float = 0.0,
) -> Usage:
    """Azure Functions Consumption (default) or Flex Consumption.

    Consumption bills the memory rounded up to 128 MB steps (at most 1,536 MB) and at least
    100 ms per execution. Flex bills the instance memory, at least 1,000 ms per execution and then
    100 ms steps; ``always_ready`` instances cost their baseline all month and the executions they
    serve (up to one at a time each) are billed at the always-ready rates, the rest on demand.
    """
    product = "azure-functions-flex" if flex else "azure-functions-consumption"
    prices, region_used, warnings = _region_prices(product, region, "any")
    fixed = 0.0
    quantities: dict[str, float]
    if flex:
        memory_gb = memory_mb / 1024.0
        billed_s = max(1.0, math.ceil(duration_ms / 100.0) / 10.0)
        busy_s = requests * billed_s
        served_s = 0.0
        if always_ready > 0:
            capacity_s = always_ready * month_seconds()
            fixed = capacity_s * memory_gb * float(prices["always_ready_baseline_gb_second"])
            served_s = min(busy_s, capacity_s)
        served_requests = served_s / billed_s
        quantities = {
            "requests": requests - served_requests,
            "gb_seconds": (busy_s - served_s) * memory_gb,
            "always_ready_requests": served_requests,
            "always_ready_gb_seconds": served_s * memory_gb,
        }
    else:
        billed_s = max(100.0, math.ceil(duration_ms)) / 1000.0
        billed_gb = azure_consumption_memory_mb(memory_mb) / 1024.0
        quantities = {"requests": requests, "gb_seconds": requests * billed_s * billed_gb}
    return Usage(product, region_used, quantities, prices, fixed, warnings)


def cloud_run_usage(
    *,
    requests: float,
    duration_ms: float,
    vcpu: float,
    memory_gib: float,
    region: str | None = None,
    min_instances: float = 0.0,
    serving_revisions: int = 1,
    instance_based: bool = False,
) -> Usage:
    """Cloud Run, request-based billing (default) or instance-based billing (CPU always allocated).

    Request-based: vCPU-s and GiB-s of each request in 100 ms steps, plus requests; minimum
    instances of every serving revision are charged at the idle rate for the time they are not
    busy (busy time is already billed at the active rate). Instance-based: every instance-second
    at the instance rate, the minimum instances all month and busy time beyond them, no request
    fee, and the instance-based free tier. Free tiers are credited at Tier 1 prices.
    """
    prices, region_used, warnings = _region_prices("gcp-cloud-run", region, "any")
    entry = load_price_table()["gcp-cloud-run"]
    free_prices = dict(entry["price_sets"][entry.get("free_tier_price_set", "tier1")]["any"])
    busy_s = requests * math.ceil(duration_ms / 100.0) / 10.0
    min_s = min_instances * max(1, serving_revisions) * month_seconds() if min_instances > 0 else 0.0
    fixed = 0.0
    if instance_based:
        instance_s = max(busy_s, min_s)
        quantities = {
            "requests": requests,
            "instance_vcpu_seconds": instance_s * vcpu,
            "instance_gib_seconds": instance_s * memory_gib,
        }
        prices = {**prices, "request_per_million": 0.0}  # instance-based billing has no request fee
        free_prices = {**free_prices, "request_per_million": 0.0}
    else:
        idle_s = max(0.0, min_s - busy_s)
        fixed = idle_s * (
            vcpu * float(prices["idle_min_instance_vcpu_second"])
            + memory_gib * float(prices["idle_min_instance_gib_second"])
        )
        quantities = {"requests": requests, "vcpu_seconds": busy_s * vcpu, "gib_seconds": busy_s * memory_gib}
    return Usage("gcp-cloud-run", region_used, quantities, prices, fixed, warnings, free_prices=free_prices)


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
    """The monthly free quantities of a product (empty when it has none); instance-based free-tier
    keys are prefixed ``instance:``."""
    entry = load_price_table().get(product, {})
    out = {k: float(v) for k, v in entry.get("free_tier", {}).items() if k != "scope"}
    out.update({f"instance:{k}": float(v) for k, v in entry.get("instance_free_tier", {}).items() if k != "scope"})
    return out


def stack_cost(usages: list[Usage], *, apply_free_tiers: bool = True) -> float:
    """Monthly USD for a set of usages, each product's free tier subtracted once.

    Free units go to the cheapest unit price first, which is the order that gives the highest
    defensible total (any other assignment of the same free units bills less), and each is credited
    at the product's free-tier price (Cloud Run: Tier 1). Usages the product excludes from its free
    tier get none.
    """
    total = sum(u.fixed_usd for u in usages)
    by_product: dict[str, list[Usage]] = {}
    for usage in usages:
        by_product.setdefault(usage.product, []).append(usage)
    for product, group in by_product.items():
        allowance = free_tier(product) if apply_free_tiers else {}
        for quantity, (_price_key, free_key) in _QUANTITIES.items():
            lines = [(u._unit_price(quantity), i, u, u.quantities.get(quantity, 0.0)) for i, u in enumerate(group)]
            remaining_free = allowance.get(free_key, 0.0) if free_key else 0.0
            for unit_price, _i, usage, amount in sorted(lines, key=lambda line: (line[0], line[1])):
                total += usage._amount_cost(quantity, amount)
                if not usage.free_tier_eligible or remaining_free <= 0 or amount <= 0:
                    continue
                free_used = min(amount, remaining_free)
                remaining_free -= free_used
                credit = usage._unit_price(quantity, usage.free_prices) if usage.free_prices else unit_price
                total -= free_used * min(credit, unit_price)
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
