"""The policy pack's cost model and dated price table, shared with the plan (:mod:`inferops.costs`).

FinOps prices what-if shapes (another memory size, fewer minimum instances) with the same estimators
the pack enforces budgets with, so a recommendation and the next plan can never disagree on a price.
"""

from __future__ import annotations

from typing import Any

from inferops import costs


def pricing_module() -> Any:
    """``inferops_policy.pricing`` from the pack directory (the estimators and the price table)."""
    _finops, pricing, _plain = costs._pack_modules(costs.PACK_DIR)
    return pricing
