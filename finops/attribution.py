"""Attribution: which function of the stack each charge belongs to, by the resources' metadata.

A charge belongs to function ``F`` of stack ``S`` when its ``function-name`` tag is
``function_key("inferops", S, F)`` (brief contract 1) and its ``stack`` tag, when present, is ``S``.
Resources deployed before the stack-scoped key existed carry the bare function name; those match
when their ``stack`` tag is ``S`` or absent (the latter is reported as a warning: another stack's
function of the same name would match too).

Nothing is dropped. Every charge ends up in exactly one bucket:

* attributed to a function (its rows are kept: day, category, correction, model version, quantity);
* ``unattributed``: it carries this stack's metadata but no function of the stack matches (a removed
  function, a resource without ``function-name``), with the reason and the amount;
* ``outside``: another stack's charges, and the rest of the billing account (no inferops metadata).

``attributed + unattributed + outside`` equals the sum of every row read, which the report states.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from finops.focus import Charges
from finops.keys import PROJECT, function_key
from finops.usage import Allocation

FUNCTION_TAG = "function-name"
STACK_TAG = "stack"
VERSION_TAG = "model-version"
MANAGED_BY_TAG = "managed-by"


def quantity_kind(unit: str) -> str | None:
    """What a ``ConsumedUnit`` counts: ``requests``, ``gb_seconds``, ``vcpu_seconds`` or None.

    Providers spell units differently (``Requests``, ``Lambda-GB-Second``, ``GB-Seconds``, ``1M
    Executions``, ``GiB-Seconds``); the match is on the words, case-insensitive.
    """
    u = unit.lower().replace("_", "-")
    if any(w in u for w in ("request", "execution", "invocation")):
        return "requests"
    if "vcpu" in u and "second" in u:
        return "vcpu_seconds"
    if ("gb" in u or "gib" in u or "gigabyte" in u) and ("second" in u or u.endswith("-s")):
        return "gb_seconds"
    return None


@dataclass
class FunctionRows:
    """The charges attributed to one function (column-wise), and where they came from."""

    name: str
    day: np.ndarray
    cost: np.ndarray
    category: np.ndarray
    correction: np.ndarray
    version: np.ndarray
    quantity: np.ndarray
    unit: np.ndarray
    sources: list[str] = field(default_factory=list)  # "focus", "opencost", "node-price"

    @classmethod
    def empty(cls, name: str) -> FunctionRows:
        """No charges."""
        o = np.array([], dtype=object)
        return cls(name, np.array([], "datetime64[D]"), np.array([]), o, np.array([], bool), o, np.array([]), o)

    def extend(self, other: FunctionRows) -> None:
        """Append another set of rows of the same function."""
        for attr in ("day", "cost", "category", "correction", "version", "quantity", "unit"):
            setattr(self, attr, np.concatenate([getattr(self, attr), getattr(other, attr)]))
        self.sources += [s for s in other.sources if s not in self.sources]

    def _in(self, start: np.datetime64 | None, end: np.datetime64 | None) -> np.ndarray:
        m = np.ones(self.day.shape, bool)
        if start is not None:
            m &= self.day >= start
        if end is not None:
            m &= self.day <= end
        return m

    def usage_mask(self, start: np.datetime64 | None = None, end: np.datetime64 | None = None) -> np.ndarray:
        """Rows that are usage (not corrections) within [start, end]."""
        return self._in(start, end) & (self.category == "usage") & ~self.correction

    def daily_usage(self, start: np.datetime64, end: np.datetime64) -> np.ndarray:
        """Usage cost per day from ``start`` to ``end`` inclusive (zeros on days without charges)."""
        n = int((end - start).astype(int)) + 1
        out = np.zeros(max(n, 0))
        m = self.usage_mask(start, end)
        np.add.at(out, (self.day[m] - start).astype(int), self.cost[m])
        return out

    def by_category(self, start: np.datetime64, end: np.datetime64) -> dict[str, float]:
        """Non-correction totals per charge category within the period."""
        m = self._in(start, end) & ~self.correction
        out: dict[str, float] = {}
        for cat in dict.fromkeys(self.category[m].tolist()):
            out[str(cat)] = float(self.cost[m & (self.category == cat)].sum())
        return out

    def corrections(self, start: np.datetime64, end: np.datetime64) -> float:
        """Corrections (of earlier periods) that arrived within the period."""
        return float(self.cost[self._in(start, end) & self.correction].sum())

    def by_version(self, start: np.datetime64, end: np.datetime64) -> dict[str, float]:
        """Usage cost per ``model-version`` tag ("" when a charge has none)."""
        m = self.usage_mask(start, end)
        return {
            str(v): float(self.cost[m & (self.version == v)].sum()) for v in dict.fromkeys(self.version[m].tolist())
        }

    def daily_by_version(self, start: np.datetime64, end: np.datetime64) -> list[dict[str, object]]:
        """Usage cost per day and ``model-version`` tag (days with charges only), sorted by date and version."""
        m = self.usage_mask(start, end)
        sums: dict[tuple[str, str], float] = {}
        for d, v, c in zip(self.day[m], self.version[m], self.cost[m], strict=True):
            k = (str(d), str(v) or "untagged")
            sums[k] = sums.get(k, 0.0) + float(c)
        return [{"date": d, "model_version": v, "usd": round(c, 2)} for (d, v), c in sorted(sums.items())]

    def consumed(self, kind: str, start: np.datetime64, end: np.datetime64) -> float | None:
        """Sum of ``ConsumedQuantity`` of usage rows whose unit is ``kind``; None when there is none."""
        m = self.usage_mask(start, end) & ~np.isnan(self.quantity)
        kinds = np.array([quantity_kind(u) for u in self.unit[m]], dtype=object)
        q = self.quantity[m][kinds == kind]
        return float(q.sum()) if q.size else None


@dataclass
class Attribution:
    """Charges split into per-function rows, unattributed reasons, and what lies outside the stack."""

    functions: dict[str, FunctionRows]
    unattributed: dict[str, float]  # reason -> USD
    outside: dict[str, float]  # "other stacks" / "rest of the billing account" -> USD
    total: float
    warnings: list[str] = field(default_factory=list)

    @property
    def attributed_total(self) -> float:
        """USD attributed to functions."""
        return float(sum(r.cost.sum() for r in self.functions.values()))


def classify(tags: Mapping[str, str], stack: str, names: Sequence[str]) -> tuple[str, str]:
    """``("function", name)``, ``("unattributed", reason)`` or ``("outside", reason)`` for one tag set."""
    fn_value = tags.get(FUNCTION_TAG)
    stack_value = tags.get(STACK_TAG)
    keys = {function_key(PROJECT, stack, n): n for n in names}
    if fn_value is not None and fn_value in keys and (stack_value is None or stack_value == stack):
        return "function", keys[fn_value]
    if stack_value is not None and stack_value != stack:
        return "outside", "other stacks"
    if fn_value is not None and fn_value in names:
        return ("function", fn_value) if stack_value == stack else ("legacy", fn_value)
    ours = stack_value == stack
    if fn_value is not None and (ours or tags.get(MANAGED_BY_TAG) == "inferops"):
        if ours:
            return "unattributed", f"function-name '{fn_value}' is not a function of stack {stack}"
        return "outside", "other stacks"
    if ours:
        return "unattributed", f"tagged stack={stack} but no function-name tag"
    return "outside", "rest of the billing account (no inferops metadata)"


def attribute(charges: Charges, stack: str, names: Sequence[str]) -> Attribution:
    """Split FOCUS charges by function of ``stack`` (``names``: its function names)."""
    rows = {n: FunctionRows.empty(n) for n in names}
    unattributed: dict[str, float] = {}
    outside: dict[str, float] = {}
    warnings: list[str] = []
    decisions = [classify(t, stack, names) for t in charges.tag_sets]
    owner = np.array([d[1] if d[0] in ("function", "legacy") else "" for d in decisions] + [""], dtype=object)
    row_owner = owner[charges.tag_index] if charges.n_rows else np.array([], dtype=object)
    for kind, what in dict.fromkeys(decisions):
        if kind == "legacy":
            warnings.append(
                f"charges with function-name '{what}' and no stack tag were attributed to {what} by its bare "
                "name; another stack's function of that name would match too (deploy with the stack tag)"
            )
    versions = np.array([t.get(VERSION_TAG, "") for t in charges.tag_sets] + [""], dtype=object)
    for name in names:
        m = row_owner == name
        if m.any():
            rows[name].extend(
                FunctionRows(
                    name,
                    charges.day[m],
                    charges.cost[m],
                    charges.category[m],
                    charges.correction[m],
                    versions[charges.tag_index[m]],
                    charges.quantity[m],
                    charges.unit[m],
                    ["focus"],
                )
            )
    for i, (kind, what) in enumerate(decisions):
        if kind in ("function", "legacy"):
            continue
        amount = float(charges.cost[charges.tag_index == i].sum())
        bucket = unattributed if kind == "unattributed" else outside
        bucket[what] = bucket.get(what, 0.0) + amount
    return Attribution(rows, unattributed, outside, float(charges.cost.sum()), warnings)


def attribute_opencost(attribution: Attribution, allocations: Iterable[Allocation], stack: str) -> None:
    """Add OpenCost allocations (Kubernetes workloads) to an attribution, by the same metadata rules."""
    names = list(attribution.functions)
    for a in allocations:
        kind, what = classify(a.labels, stack, names)
        attribution.total += a.total_cost
        if kind in ("function", "legacy"):
            o = np.array(["usage"], dtype=object)
            attribution.functions[what].extend(
                FunctionRows(
                    what,
                    np.array([a.day], "datetime64[D]"),
                    np.array([a.total_cost]),
                    o,
                    np.array([False]),
                    np.array([a.labels.get(VERSION_TAG, "")], dtype=object),
                    np.array([np.nan]),
                    np.array([""], dtype=object),
                    ["opencost"],
                )
            )
        else:
            bucket = attribution.unattributed if kind == "unattributed" else attribution.outside
            bucket[what] = bucket.get(what, 0.0) + a.total_cost


def node_price_rows(
    name: str,
    requests_per_day: Mapping[np.datetime64, float],
    mean_latency_ms: Mapping[np.datetime64, float],
    *,
    vcpu: float,
    memory_gib: float,
    vcpu_hour_usd: float,
    gib_hour_usd: float,
    min_scale: int,
    serving_revisions: int,
    version: str,
) -> FunctionRows:
    """Daily Kubernetes cost from the node price and captured usage, with the policy pack's cost model.

    Per day: the pack's :func:`knative_usage` busy-pod cost for the day's requests and mean duration,
    plus its always-on cost of ``min-scale`` pods (a month's fixed cost prorated to 24 hours).
    """
    from finops.pricing import pricing_module

    pricing = pricing_module()
    hours = float(pricing.load_price_table()["hours_per_month"])
    always_on = pricing.knative_usage(
        requests=0.0, duration_ms=1.0, vcpu=vcpu, memory_gib=memory_gib,
        vcpu_hour_usd=vcpu_hour_usd, gib_hour_usd=gib_hour_usd,
        min_scale=min_scale, serving_revisions=serving_revisions,
    ).fixed_usd * 24.0 / hours  # fmt: skip
    days = sorted(requests_per_day)
    costs = []
    for d in days:
        busy = pricing.knative_usage(
            requests=requests_per_day[d], duration_ms=mean_latency_ms.get(d, 0.0), vcpu=vcpu, memory_gib=memory_gib,
            vcpu_hour_usd=vcpu_hour_usd, gib_hour_usd=gib_hour_usd,
        ).fixed_usd  # fmt: skip
        costs.append(busy + always_on)
    n = len(days)
    return FunctionRows(
        name,
        np.array(days, "datetime64[D]"),
        np.array(costs, dtype=float),
        np.full(n, "usage", dtype=object),
        np.zeros(n, bool),
        np.full(n, version, dtype=object),
        np.full(n, np.nan),  # request counts stay with the capture they came from
        np.full(n, "", dtype=object),
        ["node-price"],
    )
