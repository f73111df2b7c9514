"""The FinOps report: actuals per function against budget and plan, anomalies, proposals.

JSON schema ``finops.report/v1`` (documented field by field in docs/finops.md)::

    {
      "schema": "finops.report/v1",
      "stack": "dev", "currency": "USD",
      "month": "2026-11", "as_of": "2026-11-20", "days_in_month": 30, "days_elapsed": 20,
      "inputs": {"focus": [...], "capture": [...], "opencost": [...], "plan": "program" | "<file>"},
      "functions": [
        {"name", "platform", "function_key", "cost_sources": ["focus" | "opencost" | "node-price"],
         "month_to_date_usd", "forecast_usd", "budget_usd", "forecast_budget_percent",
         "plan_estimate_usd", "gap_usd", "gap_percent",
         "by_category": {"usage", "credit", "tax", "purchase", "adjustment"}, "corrections_usd",
         "by_model_version": {"2.2.0": usd, ...},
         "daily_by_model_version": [{"date", "model_version", "usd"}],
         "canary": {"method": "tags" | "capture" | "config" | "none", "canary_version", "stable_version",
                    "canary_usd", "stable_usd"},
         "requests": {"month_to_date", "source", "per_1k_usd"},
         "daily": [{"date", "usd"}],
         "anomalies": [{"date", "usd", "expected_usd", "z", "method", "recent"}],
         "rightsizing": {...} | null, "estimate_drift": [...],
         "proposals": [{"action", "edits": [{"path", "from", "to"}], "reasons": [...]}],
         "findings": [{"kind", "enforcement", "message"}]}
      ],
      "unattributed": {"usd", "reasons": [{"reason", "usd"}]},
      "outside": {"usd", "reasons": [{"reason", "usd"}]},
      "totals": {"attributed_usd", "unattributed_usd", "outside_usd", "all_usd"},
      "findings": [{"function", "kind", "enforcement", "message"}],
      "summary": {"mandatory", "advisory", "proposals"},
      "warnings": [...]
    }

Amounts are USD rounded to the cent (``per_1k_usd`` to 1/10,000 of a cent is not meaningful: 6 digits).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from components.spec import FunctionSpec, StackSpec, default_cpu
from finops import anomalies as anomaly_mod
from finops.attribution import Attribution, FunctionRows, attribute, attribute_opencost, node_price_rows
from finops.estimates import DEFAULT_THRESHOLD, estimate_drift, forecast_month, weekdays
from finops.focus import Charges
from finops.keys import PROJECT, function_key
from finops.rightsizing import Observed, Pricer, recommend
from finops.usage import Allocation, FunctionUsage

SCHEMA = "finops.report/v1"
HISTORY_DAYS = 28


@dataclass
class Options:
    """Knobs of the report (CLI flags)."""

    as_of: np.datetime64 | None = None
    anomaly_lookback_days: int = 3
    estimate_threshold: float = DEFAULT_THRESHOLD
    method: str = anomaly_mod.DEFAULT_METHOD
    proposals_are_findings: bool = False
    inputs: dict[str, Any] = field(default_factory=dict)


def _c(x: float | None) -> float | None:
    return None if x is None else round(float(x) + 0.0, 2)


def _month_end(as_of: np.datetime64) -> np.datetime64:
    month = as_of.astype("datetime64[M]")
    return (month + 1).astype("datetime64[D]") - 1


def _latency(usage: FunctionUsage | None, start: np.datetime64, end: np.datetime64) -> np.ndarray | None:
    if usage is None:
        return None
    m = (usage.day >= start) & (usage.day <= end)
    return usage.latency_ms[m] if m.any() else None


def _observed(
    fn: FunctionSpec,
    rows: FunctionRows,
    usage: FunctionUsage | None,
    start: np.datetime64,
    end: np.datetime64,
    hours_per_month: float,
) -> tuple[Observed | None, float | None, str, float | None, str]:
    """What was observed this month: (rightsizing input, requests/month, its source, duration, its source)."""
    focus_requests = rows.consumed("requests", start, end)
    gb_seconds = rows.consumed("gb_seconds", start, end)
    sel = None
    if usage is not None:
        sel = (usage.day >= start) & (usage.day <= end)
        if not sel.any():
            sel = None
    days_observed = int((end - start).astype(int)) + 1
    if sel is not None and usage is not None:
        first = usage.day[sel].min()
        days_observed = int((end - max(first, start)).astype(int)) + 1
    month_factor = hours_per_month / 24.0 / max(days_observed, 1)
    requests = None
    req_source = "none"
    if focus_requests:
        requests, req_source = focus_requests * month_factor, "focus"
    elif sel is not None and usage is not None:
        requests, req_source = float(sel.sum()) * usage.scale * month_factor, "capture"
    duration = None
    dur_source = "none"
    if sel is not None and usage is not None:
        duration, dur_source = float(usage.latency_ms[sel].mean()), "capture"
    elif gb_seconds and focus_requests:
        duration = gb_seconds / focus_requests / (fn.runtime.memory_mb / 1024.0) * 1000.0
        dur_source = "focus (GB-seconds per request at the configured memory)"
    if sel is None or usage is None or requests is None:
        return None, requests, req_source, duration, dur_source
    lat = usage.latency_ms[sel]
    t = usage.time[sel]
    # the billing data's request count tells the capture's real sampling rate
    scale = focus_requests / float(sel.sum()) if focus_requests else usage.scale
    _minutes, counts = np.unique(t.astype("datetime64[m]"), return_counts=True)
    peak = float(counts.max()) * scale * float(lat.mean()) / 60000.0 if counts.size else None
    windows = np.unique(t.astype("datetime64[m]").astype(int) // 5)
    span = int(windows.max() - windows.min()) + 1 if windows.size else 0
    idle = 1.0 - windows.size / span if span else None
    mem = usage.memory_mb[sel] if usage.memory_mb is not None else None
    mem = mem[~np.isnan(mem)] if mem is not None else None
    cold = usage.cold_start[sel] if usage.cold_start is not None else None
    warm = lat[~cold] if cold is not None and (~cold).any() else None
    obs = Observed(
        requests_per_month=requests,
        mean_latency_ms=float(lat.mean()),
        p95_latency_ms=float(np.percentile(lat, 95)),
        peak_memory_mb=float(mem.max()) if mem is not None and mem.size else None,
        peak_concurrency=peak,
        idle_window_share=idle,
        cold_start_share=float(cold.mean()) if cold is not None else None,
        p95_warm_latency_ms=float(np.percentile(warm, 95)) if warm is not None else None,
    )
    return obs, requests, req_source, duration, dur_source


def _canary(
    fn: FunctionSpec,
    by_version: Mapping[str, float],
    usage: FunctionUsage | None,
    start: np.datetime64,
    end: np.datetime64,
    mtd: float,
) -> dict[str, Any]:
    if not fn.canary_active:
        return {
            "method": "none",
            "canary_version": None,
            "stable_version": fn.stable_version,
            "canary_usd": 0.0,
            "stable_usd": _c(mtd),
        }
    cv, sv = fn.model.version, fn.stable_version
    out: dict[str, Any] = {"canary_version": cv, "stable_version": sv}
    if by_version.get(cv, 0) > 0 and by_version.get(sv, 0) > 0:
        out.update(method="tags", canary_usd=_c(by_version[cv]), stable_usd=_c(mtd - by_version[cv]))
        return out
    if usage is not None:
        m = (usage.day >= start) & (usage.day <= end)
        busy = usage.latency_ms[m]
        if busy.sum() > 0:
            share = float(busy[usage.variant[m] == "canary"].sum() / busy.sum())
            out.update(method="capture", canary_usd=_c(mtd * share), stable_usd=_c(mtd * (1 - share)))
            return out
    share = fn.canary_percent / 100.0
    out.update(method="config", canary_usd=_c(mtd * share), stable_usd=_c(mtd * (1 - share)))
    return out


def build_report(
    stack_name: str,
    stack: StackSpec,
    charges: Charges,
    *,
    capture: Mapping[str, FunctionUsage] | None = None,
    allocations: Sequence[Allocation] | None = None,
    plan_estimates: Mapping[str, float | None] | None = None,
    pricer: Pricer | None = None,
    hours_per_month: float = 730.0,
    options: Options | None = None,
) -> dict[str, Any]:
    """Assemble the report dict (pure apart from the pricer it is given)."""
    opts = options or Options()
    capture = capture or {}
    names = [fn.name for fn in stack.functions]
    att: Attribution = attribute(charges, stack_name, names)
    if allocations:
        attribute_opencost(att, allocations, stack_name)
    warnings = list(att.warnings)
    node = stack.kubernetes_node_price
    for fn in stack.functions:
        rows = att.functions[fn.name]
        if fn.platform == "kubernetes" and not rows.cost.size and fn.name in capture:
            u = capture[fn.name]
            per_day = u.requests_per_day()
            lat = {d: float(u.latency_ms[u.day == d].mean()) for d in per_day}
            rows.extend(
                node_price_rows(
                    fn.name, per_day, lat, vcpu=default_cpu(fn), memory_gib=fn.runtime.memory_mb / 1024,
                    vcpu_hour_usd=node.vcpu_hour_usd, gib_hour_usd=node.gib_hour_usd,
                    min_scale=fn.scaling.min_instances, serving_revisions=2 if fn.canary_active else 1,
                    version=fn.model.version,
                )
            )  # fmt: skip
            att.total += float(rows.cost.sum())  # computed, not billed: counted so the totals reconcile
    all_days = [r.day.max() for r in att.functions.values() if r.day.size]
    if opts.as_of is not None:
        as_of = opts.as_of
    elif all_days:
        as_of = max(all_days)
    elif charges.n_rows:
        as_of = charges.day.max()
    else:
        raise ValueError("no charges in the billing data: nothing to report on")
    month_start = as_of.astype("datetime64[M]").astype("datetime64[D]")
    month_end = _month_end(as_of)
    hist_start = month_start - HISTORY_DAYS
    days_in_month = int((month_end - month_start).astype(int)) + 1
    detector = anomaly_mod.DETECTORS[opts.method]

    functions = []
    findings = []
    n_proposals = 0
    for fn in stack.functions:
        rows = att.functions[fn.name]
        usage = capture.get(fn.name)
        daily = rows.daily_usage(hist_start, as_of)
        mtd = float(daily[HISTORY_DAYS:].sum())
        forecast = forecast_month(daily, hist_start, as_of, month_end)
        budget = fn.finops.monthly_budget_usd
        plan = (plan_estimates or {}).get(fn.name)
        by_version = rows.by_version(month_start, as_of)
        obs, req_month, req_source, duration, dur_source = _observed(
            fn, rows, usage, month_start, as_of, hours_per_month
        )
        focus_req = rows.consumed("requests", month_start, as_of)
        if focus_req:
            req_mtd, req_src = focus_req, "focus"
        elif usage is not None:
            m = (usage.day >= month_start) & (usage.day <= as_of)
            req_mtd, req_src = float(m.sum()) * usage.scale, "capture"
        else:
            req_mtd, req_src = None, "none"
        fn_findings: list[dict[str, Any]] = []
        if forecast > budget:
            fn_findings.append(
                {
                    "kind": "forecast-over-budget",
                    "enforcement": "mandatory",
                    "message": f"forecast ${forecast:,.2f} for {str(month_start)[:7]} is "
                    f"{100 * forecast / budget:.0f}% of the ${budget:,.2f} budget (month to date ${mtd:,.2f})",
                }
            )
        found = detector(daily, weekdays(hist_start, daily.size), start=HISTORY_DAYS)
        anomalies = []
        for a in found:
            day = hist_start + a.index
            recent = int((as_of - day).astype(int)) < opts.anomaly_lookback_days
            anomalies.append(
                {"date": str(day), "usd": _c(a.value), "expected_usd": _c(a.expected), "z": round(a.z, 2),
                 "method": opts.method, "recent": recent}
            )  # fmt: skip
            if recent:
                fn_findings.append(
                    {
                        "kind": "anomaly",
                        "enforcement": "mandatory",
                        "message": f"{day}: ${a.value:,.2f} against an expected ${a.expected:,.2f} (z={a.z:.1f})",
                    }
                )
        proposals: list[dict[str, Any]] = []
        rightsizing = None
        if obs is not None and pricer is not None:
            rec = recommend(fn, obs, pricer, fn.finops.latency_slo_ms)
            rightsizing = {
                "current": rec.current,
                "recommended": rec.recommended,
                "monthly_savings_usd": rec.monthly_savings_usd,
                "assumptions": rec.assumptions,
                "reasons": rec.reasons,
                "observed": {
                    "requests_per_month": round(obs.requests_per_month),
                    "mean_latency_ms": round(obs.mean_latency_ms, 1),
                    "p95_latency_ms": round(obs.p95_latency_ms, 1),
                    "peak_memory_mb": obs.peak_memory_mb,
                    "peak_concurrency": None if obs.peak_concurrency is None else round(obs.peak_concurrency, 2),
                },
            }
            if rec.edits:
                proposals.append(
                    {
                        "action": "rightsize",
                        "edits": [{"path": ".".join(p), "from": old, "to": new} for p, old, new in rec.edits],
                        "reasons": rec.reasons,
                        "monthly_savings_usd": rec.monthly_savings_usd,
                    }
                )
        drift = estimate_drift(
            expected_requests=fn.finops.expected_monthly_requests,
            avg_duration_ms=fn.finops.avg_duration_ms,
            observed_requests=req_month,
            observed_duration_ms=duration,
            requests_source=req_source,
            duration_source=dur_source,
            threshold=opts.estimate_threshold,
        )
        drift_edits = [d for d in drift if d.proposed is not None]
        if drift_edits:
            proposals.append(
                {
                    "action": "update-estimates",
                    "edits": [
                        {"path": f"finops.{d.field}", "from": d.configured, "to": d.proposed} for d in drift_edits
                    ],
                    "reasons": [
                        f"observed {d.field} {d.observed:,.1f} is {100 * (d.ratio - 1):+.0f}% off the configured "
                        f"{d.configured:g} (threshold {100 * opts.estimate_threshold:.0f}%; source {d.source})"
                        for d in drift_edits
                    ],
                }
            )
        n_proposals += len(proposals)
        if opts.proposals_are_findings:
            for p in proposals:
                fn_findings.append(
                    {"kind": f"proposal-{p['action']}", "enforcement": "mandatory", "message": "; ".join(p["reasons"])}
                )
        if not rows.cost.size:
            warnings.append(
                f"{fn.name}: no billing data attributed (function-name {function_key(PROJECT, stack_name, fn.name)})"
            )
        per_1k = mtd / req_mtd * 1000 if req_mtd else None
        functions.append(
            {
                "name": fn.name,
                "platform": fn.platform,
                "function_key": function_key(PROJECT, stack_name, fn.name),
                "cost_sources": rows.sources,
                "month_to_date_usd": _c(mtd),
                "forecast_usd": _c(forecast),
                "budget_usd": _c(budget),
                "forecast_budget_percent": round(100 * forecast / budget, 1),
                "plan_estimate_usd": _c(plan),
                "gap_usd": _c(forecast - plan) if plan is not None else None,
                "gap_percent": round(100 * (forecast - plan) / plan, 1) if plan else None,
                "by_category": {k: _c(v) for k, v in sorted(rows.by_category(month_start, as_of).items())},
                "corrections_usd": _c(rows.corrections(month_start, as_of)),
                "by_model_version": {k or "untagged": _c(v) for k, v in sorted(by_version.items())},
                "daily_by_model_version": rows.daily_by_version(month_start, as_of),
                "canary": _canary(fn, by_version, usage, month_start, as_of, mtd),
                "requests": {
                    "month_to_date": None if req_mtd is None else round(req_mtd),
                    "source": req_src,
                    "per_1k_usd": None if per_1k is None else round(per_1k, 6),
                },
                "daily": [
                    {"date": str(hist_start + i), "usd": _c(v)} for i, v in enumerate(daily) if i >= HISTORY_DAYS
                ],
                "anomalies": anomalies,
                "rightsizing": rightsizing,
                "estimate_drift": [d.to_json() for d in drift],
                "proposals": proposals,
                "findings": fn_findings,
            }
        )
        findings += [{"function": fn.name, **f} for f in fn_findings]
    unattributed = sum(att.unattributed.values())
    outside = sum(att.outside.values())
    return {
        "schema": SCHEMA,
        "stack": stack_name,
        "currency": charges.currency or "USD",
        "month": str(month_start)[:7],
        "as_of": str(as_of),
        "days_in_month": days_in_month,
        "days_elapsed": int((as_of - month_start).astype(int)) + 1,
        "inputs": opts.inputs,
        "functions": functions,
        "unattributed": {
            "usd": _c(unattributed),
            "reasons": [
                {"reason": k, "usd": _c(v)} for k, v in sorted(att.unattributed.items(), key=lambda kv: -kv[1])
            ],
        },
        "outside": {
            "usd": _c(outside),
            "reasons": [{"reason": k, "usd": _c(v)} for k, v in sorted(att.outside.items(), key=lambda kv: -kv[1])],
        },
        "totals": {
            "attributed_usd": _c(att.attributed_total),
            "unattributed_usd": _c(unattributed),
            "outside_usd": _c(outside),
            "all_usd": _c(att.total),
        },
        "findings": findings,
        "summary": {
            "mandatory": sum(1 for f in findings if f["enforcement"] == "mandatory"),
            "advisory": sum(1 for f in findings if f["enforcement"] != "mandatory"),
            "proposals": n_proposals,
        },
        "warnings": warnings,
    }


# --- rendering ----------------------------------------------------------------------------------------


def _usd(v: float | None) -> str:
    return "n/a" if v is None else f"${v:,.2f}"


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown (the workflow's job summary)."""
    lines = [
        f"## FinOps report: stack `{report['stack']}`, {report['month']} (data to {report['as_of']}, "
        f"day {report['days_elapsed']} of {report['days_in_month']})",
        "",
        "| function | month to date | forecast | budget | % of budget | plan estimate | gap | canary / stable "
        "| per 1k |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for f in report["functions"]:
        c = f["canary"]
        split = "—" if c["method"] == "none" else f"{_usd(c['canary_usd'])} / {_usd(c['stable_usd'])} ({c['method']})"
        per1k = f["requests"]["per_1k_usd"]
        lines.append(
            f"| `{f['name']}` | {_usd(f['month_to_date_usd'])} | {_usd(f['forecast_usd'])} | {_usd(f['budget_usd'])} "
            f"| {f['forecast_budget_percent']:.0f}% | {_usd(f['plan_estimate_usd'])} | {_usd(f['gap_usd'])} | {split} "
            f"| {'n/a' if per1k is None else f'${per1k:.4f}'} |"
        )
    t = report["totals"]
    lines += [
        "",
        f"Attributed {_usd(t['attributed_usd'])}; unattributed {_usd(t['unattributed_usd'])}; outside the stack "
        f"{_usd(t['outside_usd'])}; all rows {_usd(t['all_usd'])}.",
    ]
    for r in report["unattributed"]["reasons"]:
        lines.append(f"- unattributed: {r['reason']}: {_usd(r['usd'])}")
    if report["findings"]:
        lines += ["", "### Findings", ""]
        lines += [f"- **{f['enforcement']}** `{f['function']}` {f['kind']}: {f['message']}" for f in report["findings"]]
    props = [(f["name"], p) for f in report["functions"] for p in f["proposals"]]
    if props:
        lines += ["", "### Proposed config changes (`python -m finops remediate`)", ""]
        for name, p in props:
            edits = ", ".join(f"`{e['path']}` {e['from']} → {e['to']}" for e in p["edits"])
            lines.append(f"- `{name}` {p['action']}: {edits}")
            lines += [f"  - {r}" for r in p["reasons"]]
    anomalies = [(f["name"], a) for f in report["functions"] for a in f["anomalies"]]
    if anomalies:
        lines += ["", "### Anomalous days", "", "| function | date | cost | expected | z |", "|---|---|---:|---:|---:|"]
        lines += [
            f"| `{n}` | {a['date']} | {_usd(a['usd'])} | {_usd(a['expected_usd'])} | {a['z']:.1f} |"
            for n, a in anomalies
        ]
    if report["warnings"]:
        lines += ["", "### Warnings", ""] + [f"- {w}" for w in report["warnings"]]
    s = report["summary"]
    lines += ["", f"{s['mandatory']} mandatory finding(s), {s['proposals']} proposal(s)."]
    return "\n".join(lines) + "\n"


def plan_estimates_from_file(path: Path, data: Mapping[str, Any]) -> dict[str, float | None]:
    """Per-function monthly estimates of an ``inferops.plan/v1`` JSON (``inferops plan --format json``)."""
    if data.get("schema") != "inferops.plan/v1" or not isinstance(data.get("functions"), list):
        raise ValueError(f"{path}: schema: expected an inferops.plan/v1 plan (inferops plan --format json)")
    out: dict[str, float | None] = {}
    for f in data["functions"]:
        cost = f.get("cost") or {}
        value = cost.get("monthly_usd")
        out[str(f.get("name"))] = (
            None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
        )
    return out
