"""Offline plan: what a stack deploys, what it costs against its budgets, and what the policy pack says.

No cloud account and no Pulumi CLI: the program runs under Pulumi's mocks (:mod:`inferops.harness`),
the real policy pack runs as the engine runs it and is called over its Analyzer gRPC protocol
(:mod:`inferops.analyzer`), and costs come from the pack's own dated price table, so the plan and
``pulumi preview --policy-pack policies`` can never disagree about a number.

The JSON form (``--format json``) is the stable, documented schema ``inferops.plan/v1``::

    {
      "schema": "inferops.plan/v1",
      "stack": "dev",
      "price_table": {"version": "...", "date": "..."},
      "functions": [
        {"name", "platform", "region", "model_version", "stable_version", "canary_percent",
         "resources": [{"type", "name"}],
         "cost": {"monthly_usd", "stable_usd", "canary_usd", "per_1k_usd", "budget_usd",
                  "budget_used_percent", "free_tier_assumed": false, "warnings": [...]},
         "capture": {"enabled", "path", "sample_percent", "retention_days", "resources": [names],
                     "record_bytes", "record_basis", "records_per_month",
                     "lines": [{"item", "quantity", "unit", "unit_usd", "monthly_usd"}],
                     "monthly_usd", "share_of_inference_percent", "max_share_percent", "warnings": [...]}}
      ],
      "total": {"monthly_usd", "monthly_usd_with_free_tiers", "budget_usd", "resources", "capture_monthly_usd"},
      "program_warnings": ["what the program logged as warnings"],
      "verdicts": [{"policy", "enforcement", "message", "resource", "urn"}],
      "summary": {"mandatory": n, "advisory": n, "remediate": n}
    }

``capture`` is the estimate of :mod:`inferops.capturecost`; a share above ``max_share_percent``
(``--max-capture-share``, default 20) is a warning, never a failure. Amounts are rounded to the cent.
Exit codes (:mod:`inferops.exitcodes`): 0 plan printed, 1 a mandatory violation, 2 bad input (one line
naming the file and field), 3 an internal error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.spec import FunctionSpec, SpecError, StackSpec, parse_stack_config
from inferops import safeload
from inferops.atomic import write_atomic
from inferops.exitcodes import EXIT_BAD_INPUT, EXIT_FINDING, EXIT_OK
from inferops.harness import PROJECT_DIR, ProgramError, ProgramRun, StackFileError, load_stack_file, run_program

SCHEMA = "inferops.plan/v1"
PACK_DIR = PROJECT_DIR / "policies"
LEVEL_ORDER = ("mandatory", "remediate", "advisory")


class PlanInputError(ValueError):
    """Bad input to the plan (stack file, pack config, previous plan); the message is one line."""


@dataclass
class Verdict:
    """One policy diagnostic, attributed to a resource."""

    policy: str
    enforcement: str
    message: str
    resource: str
    urn: str

    def key(self) -> tuple[str, str, str]:
        """Identity across plans (messages carry numbers that may change)."""
        return (self.policy, self.resource, self.enforcement)


# --- building the plan ---------------------------------------------------------------------------


def _resources_by_function(run: ProgramRun, stack: StackSpec) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    components = {r.name: r for r in run.resources if not r.custom and r.type.startswith("inferops:")}
    for fn in stack.functions:
        comp = components.get(fn.name)
        children = run.children_of(comp.urn) if comp is not None else []
        out[fn.name] = sorted(
            ({"type": r.type, "name": r.name} for r in children), key=lambda r: (r["type"], r["name"])
        )
    return out


def _cents(value: float) -> float:
    return round(value + 0.0, 2)


def _cost_entry(fn: FunctionSpec, estimate: Any | None, reason: str | None) -> dict[str, Any]:
    budget = fn.finops.monthly_budget_usd
    if estimate is None:
        return {
            "monthly_usd": None,
            "stable_usd": None,
            "canary_usd": None,
            "per_1k_usd": None,
            "budget_usd": _cents(budget),
            "budget_used_percent": None,
            "free_tier_assumed": False,
            "warnings": [f"cannot estimate {fn.name}: {reason or 'its function resource was not found'}"],
        }
    monthly = estimate.monthly_usd
    canary = monthly * fn.canary_percent / 100.0
    return {
        "monthly_usd": _cents(monthly),
        "stable_usd": _cents(monthly - canary),
        "canary_usd": _cents(canary),
        "per_1k_usd": round(estimate.per_1k_usd, 4),
        "budget_usd": _cents(budget),
        "budget_used_percent": round(100.0 * monthly / budget, 1),
        "free_tier_assumed": False,
        "warnings": list(estimate.warnings),
    }


#: Child resource names (after ``<function>-``) that belong to the capture path.
_CAPTURE_MARKERS = ("capture", "firehose", "logs-role", "logs-policy")


def _capture_entry(
    fn: FunctionSpec, resources: list[dict[str, str]], inference_usd: float | None, max_share: float
) -> dict[str, Any]:
    from inferops import capturecost, costs

    table = costs.price_table()
    est = capturecost.estimate_capture(fn, table)
    monthly = est.monthly_usd
    share = round(100.0 * monthly / inference_usd, 1) if inference_usd else None
    warnings = list(est.warnings)
    if share is not None and share > max_share:
        warnings.append(
            f"capture costs {share:.1f}% of the inference cost (more than {max_share:g}%): "
            "lower capture.samplePercent or capture.retentionDays"
        )
    warnings = [f"{fn.name}: {w}" for w in warnings]
    prefix = f"{fn.name}-"
    return {
        "enabled": fn.capture.enabled,
        "path": est.path,
        "sample_percent": fn.capture.sample_percent,
        "retention_days": fn.capture.retention_days,
        "resources": [
            r["name"]
            for r in resources
            if r["name"].startswith(prefix) and r["name"][len(prefix) :].startswith(_CAPTURE_MARKERS)
        ],
        "record_bytes": est.record_bytes,
        "record_basis": est.record_basis,
        "records_per_month": round(est.records_per_month),
        "lines": [
            {
                "item": line.item,
                "quantity": round(line.quantity, 6),
                "unit": line.unit,
                "unit_usd": line.unit_usd,
                "monthly_usd": round(line.monthly_usd, 4),
            }
            for line in est.lines
        ],
        "monthly_usd": _cents(monthly),
        "share_of_inference_percent": share,
        "max_share_percent": max_share,
        "warnings": warnings,
    }


def build_plan(
    stack_file: Path,
    *,
    pack_dir: Path = PACK_DIR,
    pack_config: dict[str, Any] | None = None,
    stack_name: str | None = None,
    max_capture_share: float | None = None,
) -> dict[str, Any]:
    """Run the program and the pack for ``stack_file`` and return the plan as the JSON-ready dict."""
    from inferops import capturecost, costs

    max_share = capturecost.DEFAULT_MAX_SHARE_PERCENT if max_capture_share is None else max_capture_share
    from inferops.analyzer import PolicyPackProcess

    try:
        config = load_stack_file(stack_file)
        stack = parse_stack_config(config)
    except (StackFileError, SpecError) as exc:
        raise PlanInputError(str(exc) if isinstance(exc, StackFileError) else f"{stack_file}: {exc}") from None
    try:
        run = run_program(stack_file, config=config, stack=stack_name)
    except ProgramError as exc:
        raise PlanInputError(f"{stack_file}: {exc}") from None

    with PolicyPackProcess(pack_dir, config=pack_config, stack=run.stack) as pack:
        diagnostics = []
        for resource in run.resources:
            if resource.custom:
                diagnostics.extend(pack.analyze(resource))
        diagnostics.extend(pack.analyze_stack(run.resources))

    names = {r.urn: r.name for r in run.resources}
    verdicts = sorted(
        (
            Verdict(
                policy=d.policy_name,
                enforcement=d.enforcement_level,
                message=d.message,
                resource=names.get(d.urn, d.urn or "(stack)"),
                urn=d.urn,
            )
            for d in diagnostics
        ),
        key=lambda v: (LEVEL_ORDER.index(v.enforcement) if v.enforcement in LEVEL_ORDER else 9, v.policy, v.resource),
    )

    estimates = costs.estimate_functions(run, stack, pack_config)
    by_fn = _resources_by_function(run, stack)
    functions: list[dict[str, Any]] = []
    for fn in stack.functions:
        cost = _cost_entry(fn, estimates.functions.get(fn.name), estimates.unpriced.get(fn.name))
        functions.append(
            {
                "name": fn.name,
                "platform": fn.platform,
                "region": fn.region,
                "model_version": fn.model.version,
                "stable_version": fn.stable_version,
                "canary_percent": fn.canary_percent,
                "resources": by_fn[fn.name],
                "cost": cost,
                "capture": _capture_entry(fn, by_fn[fn.name], cost["monthly_usd"], max_share),
            }
        )
    total_monthly = sum(f["cost"]["monthly_usd"] or 0.0 for f in functions)
    return {
        "schema": SCHEMA,
        "stack": run.stack,
        "price_table": estimates.price_table,
        "functions": functions,
        "total": {
            "monthly_usd": _cents(total_monthly),
            "monthly_usd_with_free_tiers": _cents(estimates.stack_total_with_free_tiers),
            "budget_usd": _cents(sum(fn.finops.monthly_budget_usd for fn in stack.functions)),
            "resources": sum(1 for r in run.resources if r.custom),
            "capture_monthly_usd": _cents(sum(f["capture"]["monthly_usd"] for f in functions)),
        },
        "program_warnings": list(run.warnings),
        "verdicts": [v.__dict__ for v in verdicts],
        "summary": {level: sum(1 for v in verdicts if v.enforcement == level) for level in LEVEL_ORDER},
    }


# --- comparing -----------------------------------------------------------------------------------


def load_plan(path: Path) -> dict[str, Any]:
    """A plan written earlier with ``--format json``; one-line error when it is not one."""
    try:
        data = safeload.load_json(path, what="previous plan")
    except safeload.LoadError as exc:
        raise PlanInputError(str(exc)) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise PlanInputError(f"{safeload.escape(str(path))}: not an inferops plan (schema must be {SCHEMA})")
    problem = _plan_shape_error(data)
    if problem:
        raise PlanInputError(f"{safeload.escape(str(path))}: {problem}")
    return data


def _is_amount(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _plan_shape_error(data: dict[str, Any]) -> str | None:
    """The first field of a previous plan that :func:`compare` cannot use, or None."""
    functions = data.get("functions", [])
    if not isinstance(functions, list):
        return "functions: must be a list"
    for i, fn in enumerate(functions):
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            return f"functions[{i}].name: must be a string"
        cost = fn.get("cost", {})
        if not isinstance(cost, dict) or not _is_amount(cost.get("monthly_usd")):
            return f"functions[{i}].cost.monthly_usd: must be a number"
    total = data.get("total", {})
    if not isinstance(total, dict) or not _is_amount(total.get("monthly_usd")):
        return "total.monthly_usd: must be a number"
    verdicts = data.get("verdicts", [])
    if not isinstance(verdicts, list):
        return "verdicts: must be a list"
    for i, v in enumerate(verdicts):
        if not isinstance(v, dict):
            return f"verdicts[{i}]: must be an object"
        for key in ("policy", "resource", "enforcement", "message"):
            if not isinstance(v.get(key), str):
                return f"verdicts[{i}].{key}: must be a string"
    return None


def compare(previous: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """Cost and verdict differences, like ``infracost diff``: per function, the total, verdicts."""
    old = {f["name"]: f for f in previous.get("functions", [])}
    new = {f["name"]: f for f in current.get("functions", [])}
    rows = []
    for name in sorted(old.keys() | new.keys()):
        before = (old.get(name) or {}).get("cost", {}).get("monthly_usd") or 0.0
        after = (new.get(name) or {}).get("cost", {}).get("monthly_usd") or 0.0
        change = "added" if name not in old else "removed" if name not in new else "changed"
        if change == "changed" and before == after:
            change = "unchanged"
        rows.append(
            {
                "name": name,
                "change": change,
                "before_usd": before,
                "after_usd": after,
                "delta_usd": _cents(after - before),
            }
        )

    def keyed(plan: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
        return {(v["policy"], v["resource"], v["enforcement"]): v for v in plan.get("verdicts", [])}

    old_v, new_v = keyed(previous), keyed(current)
    before_total = previous.get("total", {}).get("monthly_usd") or 0.0
    after_total = current.get("total", {}).get("monthly_usd") or 0.0
    return {
        "functions": rows,
        "total": {
            "before_usd": before_total,
            "after_usd": after_total,
            "delta_usd": _cents(after_total - before_total),
        },
        "new_verdicts": [new_v[k] for k in sorted(new_v.keys() - old_v.keys())],
        "resolved_verdicts": [old_v[k] for k in sorted(old_v.keys() - new_v.keys())],
    }


# --- rendering -----------------------------------------------------------------------------------


def _usd(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def _signed(value: float) -> str:
    return ("+" if value > 0 else "-" if value < 0 else "±") + f"${abs(value):,.2f}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool) -> list[str]:
    if markdown:
        out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        return out + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows]
    return [line.rstrip() for line in lines]


def render(plan: dict[str, Any], fmt: str, diff: dict[str, Any] | None = None) -> str:
    """The plan as ``table`` (terminals), ``markdown`` (pull-request comments) or ``json``."""
    if fmt == "json":
        body = dict(plan)
        if diff is not None:
            body["diff"] = diff
        return json.dumps(body, indent=2, sort_keys=False, allow_nan=False) + "\n"
    md = fmt == "markdown"
    h = (lambda t: f"### {t}") if md else (lambda t: f"== {t} ==")
    lines = [
        ("## " if md else "") + f"inferops plan: stack {plan['stack']}",
        "",
        h("Resources"),
    ]
    for fn in plan["functions"]:
        lines.append(
            f"{'- **' if md else '* '}{fn['name']}{'**' if md else ''} ({fn['platform']}, {fn['region']}): "
            f"{len(fn['resources'])} resources"
        )
        for r in fn["resources"]:
            lines.append(f"  {'- ' if md else '  '}{r['type']} {'`' if md else ''}{r['name']}{'`' if md else ''}")
    lines += ["", h("Estimated monthly cost")]
    rows = []
    for fn in plan["functions"]:
        c = fn["cost"]
        used = "n/a" if c["budget_used_percent"] is None else f"{c['budget_used_percent']:.1f}%"
        canary = f"{_usd(c['canary_usd'])} ({fn['canary_percent']}%)" if fn["canary_percent"] else "-"
        rows.append(
            [
                fn["name"],
                fn["platform"],
                _usd(c["stable_usd"]),
                canary,
                _usd(c["monthly_usd"]),
                _usd(c["budget_usd"]),
                used,
            ]
        )
    t = plan["total"]
    rows.append(
        [
            "TOTAL",
            "",
            "",
            "",
            _usd(t["monthly_usd"]),
            _usd(t["budget_usd"]),
            f"{100 * t['monthly_usd'] / t['budget_usd']:.1f}%" if t["budget_usd"] else "n/a",
        ]
    )
    lines += _table(["function", "platform", "stable", "canary", "monthly", "budget", "used"], rows, md)
    lines.append(
        f"Per-function estimates assume no free tier; with each free tier applied once to the stack: "
        f"{_usd(t['monthly_usd_with_free_tiers'])}. Prices: table {plan['price_table'].get('version', '?')}."
    )
    lines += ["", h("Estimated monthly capture cost")]
    rows = []
    for fn in plan["functions"]:
        c = fn.get("capture") or {}
        if not c:
            continue
        share = c.get("share_of_inference_percent")
        rows.append(
            [
                fn["name"],
                c["path"],
                f"{c['records_per_month']:,}",
                f"{c['record_bytes']} B" if c["enabled"] else "-",
                _usd(c["monthly_usd"]),
                "n/a" if share is None else f"{share:.1f}%",
            ]
        )
    lines += _table(["function", "capture path", "records", "record", "monthly", "of inference"], rows, md)
    for fn in plan["functions"]:
        c = fn.get("capture") or {}
        if not c.get("lines"):
            continue
        lines.append(f"{'- ' if md else ''}{fn['name']} ({c['record_basis']}; {c['retention_days']} days kept):")
        lines += [f"  {'- ' if md else '  '}{x['item']}: {_usd(x['monthly_usd'])}" for x in c["lines"]]
        if c["resources"]:
            lines.append(f"  {'- ' if md else '  '}resources: {', '.join(c['resources'])}")
    warnings = sorted(
        {
            w
            for fn in plan["functions"]
            for w in [*fn["cost"]["warnings"], *(fn.get("capture") or {}).get("warnings", [])]
        }
    )
    lines += [f"warning: {w}" for w in [*warnings, *plan.get("program_warnings", [])]]
    lines += ["", h("Policy verdicts")]
    if not plan["verdicts"]:
        lines.append("No policy violations.")
    for level in LEVEL_ORDER:
        group = [v for v in plan["verdicts"] if v["enforcement"] == level]
        if group:
            lines.append(f"{'**' if md else ''}{level} ({len(group)}){'**' if md else ''}")
            lines += [f"- [{v['policy']}] {v['resource']}: {v['message']}" for v in group]
    if diff is not None:
        lines += ["", h("Difference from the previous plan")]
        rows = [
            [r["name"], r["change"], _usd(r["before_usd"]), _usd(r["after_usd"]), _signed(r["delta_usd"])]
            for r in diff["functions"]
        ]
        dt = diff["total"]
        rows.append(["TOTAL", "", _usd(dt["before_usd"]), _usd(dt["after_usd"]), _signed(dt["delta_usd"])])
        lines += _table(["function", "change", "before", "after", "delta"], rows, md)
        lines += [
            f"+ new [{v['enforcement']}] [{v['policy']}] {v['resource']}: {v['message']}" for v in diff["new_verdicts"]
        ]
        lines += [f"- resolved [{v['policy']}] {v['resource']}" for v in diff["resolved_verdicts"]]
    s = plan["summary"]
    lines += ["", f"{s['mandatory']} mandatory, {s['remediate']} remediate, {s['advisory']} advisory."]
    return "\n".join(lines) + "\n"


def main_plan(args: Any) -> int:
    """``inferops plan``: print the plan; exit 1 on a mandatory violation, 2 on bad input.

    Unexpected exceptions are left to :func:`inferops.exitcodes.run_guarded` (exit 3).
    """
    from inferops.analyzer import load_policy_pack_config

    stack_file = Path(args.stack_file) if args.stack_file else PROJECT_DIR / f"Pulumi.{args.stack}.yaml"
    try:
        pack_config = load_policy_pack_config(args.policy_pack_config) if args.policy_pack_config else None
        previous = load_plan(Path(args.compare)) if args.compare else None
        plan = build_plan(
            stack_file,
            pack_config=pack_config,
            stack_name=args.stack if not args.stack_file else None,
            max_capture_share=getattr(args, "max_capture_share", None),
        )
    except (PlanInputError, ValueError) as exc:
        print(f"inferops plan: error: {safeload.escape(' '.join(str(exc).split()))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    diff = compare(previous, plan) if previous is not None else None
    text = render(plan, args.format, diff)
    if args.out:
        try:
            write_atomic(Path(args.out), text, make_parents=True)
        except OSError as exc:
            out = safeload.escape(str(args.out))
            print(f"inferops plan: error: {out}: cannot write the plan ({exc.strerror or exc})", file=sys.stderr)
            return EXIT_BAD_INPUT
    else:
        sys.stdout.write(text)
    return EXIT_FINDING if plan["summary"]["mandatory"] else EXIT_OK
