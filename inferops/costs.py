"""Cost estimates for the plan, from the policy pack's own cost model and dated price table.

The pack is self-contained (it is published on its own), so this module loads its rule package from
the pack directory instead of keeping a second cost model that could drift from the one the pack
enforces.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.spec import StackSpec
from components.tags import function_key
from inferops.harness import PROJECT, PROJECT_DIR, ProgramRun

PACK_DIR = PROJECT_DIR / "policies"


@dataclass
class Estimate:
    """One function's monthly estimate, without free tiers."""

    monthly_usd: float
    per_1k_usd: float
    warnings: list[str] = field(default_factory=list)


@dataclass
class Estimates:
    """Per-function estimates, the stack total with free tiers applied once, and the price table used."""

    functions: dict[str, Estimate]
    stack_total_with_free_tiers: float
    price_table: dict[str, str]
    unpriced: dict[str, str] = field(default_factory=dict)


def _pack_modules(pack_dir: Path) -> tuple[Any, Any, Any]:
    pack = str(pack_dir.resolve())
    if pack not in sys.path:
        sys.path.insert(0, pack)
    from inferops_policy import finops, pricing
    from inferops_policy.props import plain

    return finops, pricing, plain


def price_table(pack_dir: Path = PACK_DIR) -> dict[str, Any]:
    """The pack's dated price table (``prices.json``), as its own pricing module loads it."""
    _finops, pricing, _plain = _pack_modules(pack_dir)
    table: dict[str, Any] = pricing.load_price_table()
    return table


def estimate_functions(
    run: ProgramRun, stack: StackSpec, pack_config: dict[str, Any] | None = None, *, pack_dir: Path = PACK_DIR
) -> Estimates:
    """Estimate every function the program registered, keyed by function name."""
    finops, pricing, plain = _pack_modules(pack_dir)
    entry = (pack_config or {}).get("finops-cost-within-budget")
    cost_config = {k: v for k, v in entry.items() if k != "enforcementLevel"} if isinstance(entry, dict) else {}
    resources = [
        finops.StackResource(r.type, r.name, r.urn, plain({**r.inputs, **r.outputs})) for r in run.resources if r.custom
    ]
    # The pack knows a function by the stack-scoped ``function-name`` its resources carry.
    names = {function_key(PROJECT, run.stack, fn.name): fn.name for fn in stack.functions}
    functions: dict[str, Estimate] = {}
    unpriced: dict[str, str] = {}
    for cost in finops.function_costs(resources, cost_config):
        name = names.get(cost.function)
        if name is None:
            continue
        if cost.monthly_usd is None:
            unpriced[name] = cost.reason or "cannot estimate"
            continue
        functions[name] = Estimate(cost.monthly_usd, cost.usd_per_1k or 0.0, list(cost.warnings))
    table = pricing.load_price_table()
    return Estimates(
        functions=functions,
        stack_total_with_free_tiers=finops.stack_monthly_with_free_tiers(resources, cost_config),
        price_table={"version": str(table.get("version", "")), "currency": str(table.get("currency", "USD"))},
        unpriced=unpriced,
    )
