"""FinOps policies: cost-allocation keys, a budget per function, estimated cost against budget.

The cost policies are stack policies because a function's cost spans several resources: a Lambda
function and its provisioned-concurrency configs, an Azure function app and its canary slot, a Cloud
Run service or Knative Service whose canary keeps a second revision warm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    StackValidationArgs,
)

from . import pricing
from .common import config_value, defaults_of, fmt_num, fmt_usd, label, shown
from .metadata import (
    AWS_BUDGET,
    AWS_LAMBDA,
    AWS_PROVISIONED,
    AZURE_BUDGET,
    AZURE_SLOT,
    AZURE_WEBAPP,
    GCP_BUDGET,
    GCP_RUN,
    K8S_PREFIX,
    KNATIVE,
    PLATFORM_OF,
    function_name,
    is_azure_function_app,
    is_function,
    is_taggable,
    metadata_value,
    provider_defaults,
    read_metadata,
)
from .props import MISSING, UNKNOWN, as_number, contains_unknown, get, plain

DEFAULT_REQUIRED_KEYS = ["cost-center", "owner", "environment", "monthly-budget-usd"]
_FIELD_OF = {
    "cost-center": "finops.costCenter (or inferops:defaults.costCenter)",
    "owner": "finops.owner (or inferops:defaults.owner)",
    "environment": "finops.environment (or inferops:defaults.environment)",
    "monthly-budget-usd": "finops.monthlyBudgetUsd",
}

DEFAULT_HEADROOM_PERCENT = 10.0
DEFAULT_MAX_USD_PER_1K = 0.50
DEFAULT_STACK_CEILING_USD = 10000.0
DEFAULT_AZURE_CONSUMPTION_MEMORY_MB = 1536.0
DEFAULT_FLEX_MEMORY_MB = 2048.0
DEFAULT_MAX_FIRST_THRESHOLD = 100.0

# Properties every cost policy accepts, so each can be tuned alone.
COST_MODEL_PROPERTIES: dict[str, dict[str, Any]] = {
    "kubernetesVcpuHourUsd": {
        "type": "number",
        "minimum": 0,
        "default": pricing.load_price_table()["kubernetes"]["default_vcpu_hour"],
        "description": "Node price per requested vCPU-hour for Knative services (the cluster's own rate).",
    },
    "kubernetesGibHourUsd": {
        "type": "number",
        "minimum": 0,
        "default": pricing.load_price_table()["kubernetes"]["default_gib_hour"],
        "description": "Node price per requested GiB-hour for Knative services.",
    },
    "azureConsumptionMemoryMb": {
        "type": "number",
        "minimum": 128,
        "maximum": 1536,
        "default": DEFAULT_AZURE_CONSUMPTION_MEMORY_MB,
        "description": "Memory assumed for Azure Consumption-plan apps that declare none in a memory-mb key "
        "(default: the plan's 1,536 MB maximum, an upper bound).",
    },
}

TAGS_SCHEMA = PolicyConfigSchema(
    properties={
        "requiredKeys": {
            "type": "array",
            "items": {"type": "string"},
            "default": DEFAULT_REQUIRED_KEYS,
            "description": "Metadata keys every taggable resource must carry.",
        },
        "exemptResourceTypes": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Resource type tokens not checked (e.g. aws:iam/role:Role).",
        },
    }
)
BUDGET_SCHEMA = PolicyConfigSchema(
    properties={
        "maxFirstThresholdPercent": {
            "type": "number",
            "minimum": 1,
            "maximum": 1000,
            "default": DEFAULT_MAX_FIRST_THRESHOLD,
            "description": "The lowest alert threshold of each budget, in percent of the amount, must be at most this.",
        },
    }
)
WITHIN_BUDGET_SCHEMA = PolicyConfigSchema(
    properties={
        "headroomPercent": {
            "type": "number",
            "minimum": 0,
            "maximum": 100,
            "default": DEFAULT_HEADROOM_PERCENT,
            "description": "Share of each budget kept free: the estimate must stay within budget x (1 - headroom).",
        },
        "assumeFreeTier": {
            "type": "boolean",
            "default": False,
            "description": "Subtract the platform free tier from each function's estimate (off: free tiers are "
            "per account, so a per-function estimate does not assume them).",
        },
        **COST_MODEL_PROPERTIES,
    }
)
PER_1K_SCHEMA = PolicyConfigSchema(
    properties={
        "maxUsdPer1kInferences": {
            "type": "number",
            "minimum": 0,
            "default": DEFAULT_MAX_USD_PER_1K,
            "description": "Ceiling on the estimated cost of 1,000 inferences of any function (no free tier).",
        },
        **COST_MODEL_PROPERTIES,
    }
)
STACK_CEILING_SCHEMA = PolicyConfigSchema(
    properties={
        "maxMonthlyUsd": {
            "type": "number",
            "minimum": 0,
            "default": DEFAULT_STACK_CEILING_USD,
            "description": "Ceiling on the estimated monthly cost of all functions in the stack.",
        },
        "applyFreeTiers": {
            "type": "boolean",
            "default": True,
            "description": "Subtract each platform's free tier once from the stack total.",
        },
        **COST_MODEL_PROPERTIES,
    }
)
COVERAGE_SCHEMA = PolicyConfigSchema(properties=dict(COST_MODEL_PROPERTIES))


# --------------------------------------------------------------------------- cost-allocation keys


def tags_validator(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every taggable resource carries the cost-allocation keys."""
    props = plain(args.props)
    if args.resource_type in config_value(args, "exemptResourceTypes", []):
        return
    if not is_taggable(args.resource_type, props):
        return
    meta = read_metadata(args.resource_type, props, defaults_of(args))
    who = label(args.resource_type, props, args.name)
    for key in config_value(args, "requiredKeys", DEFAULT_REQUIRED_KEYS):
        if isinstance(key, str) and metadata_value(meta, key) is MISSING:
            where = _FIELD_OF.get(key, f"the '{key}' tag/label")
            report_violation(
                f"'{who}' ({args.resource_type}) has no '{key}' cost-allocation key: set {where} in the stack "
                "config, or add the tag/label/annotation to a hand-written resource.",
                None,
            )


# --------------------------------------------------------------------------- the stack's functions


@dataclass
class StackResource:
    """A stack resource with plain properties."""

    type: str
    name: str
    urn: str
    props: dict[str, Any]
    defaults: dict[str, Any] = field(default_factory=dict)  # tags/labels its provider adds


@dataclass
class Function:
    """An inference function found in a stack, with what its cost depends on."""

    resource: StackResource
    platform: str
    name: Any
    meta: dict[str, Any]
    canaries: list[StackResource] = field(default_factory=list)
    provisioned: list[StackResource] = field(default_factory=list)
    # A slot or provisioned-concurrency config of the stack may belong to it but that depends on a
    # value not known yet: its cost cannot be judged.
    attachments_unknown: bool = False

    def key(self, name: str) -> Any:
        """One metadata value (or UNKNOWN/MISSING)."""
        return metadata_value(self.meta, name)

    @property
    def label(self) -> str:
        """A readable name for messages."""
        return self.resource.name if self.name is UNKNOWN else str(self.name)


def stack_resources(args: StackValidationArgs) -> list[StackResource]:
    """The stack's resources with plain properties (unknowns as UNKNOWN)."""
    return [
        StackResource(
            r.resource_type,
            r.name,
            r.urn,
            plain(r.props),
            provider_defaults(r.resource_type, getattr(r, "provider", None)),
        )
        for r in args.resources
    ]


def _lambda_ref_matches(ref: Any, name: Any) -> bool:
    if not isinstance(ref, str) or not isinstance(name, str):
        return False
    return ref == name or ref.endswith(f":function:{name}") or f":function:{name}:" in ref


def find_functions(resources: list[StackResource]) -> list[Function]:
    """The inference functions of a stack, each with its canary slots and provisioned capacity."""
    functions: list[Function] = []
    for res in resources:
        if not is_function(res.type, res.props):
            continue
        functions.append(
            Function(
                res,
                PLATFORM_OF[res.type],
                function_name(res.type, res.props, res.name),
                read_metadata(res.type, res.props, res.defaults),
            )
        )
    # Which resources of each kind could be a slot's app or a config's function: an unknown name
    # (or an app whose kind is unknown) could match any of them.
    undecided = {
        AZURE_WEBAPP: any(
            r.type == AZURE_WEBAPP and (is_function(r.type, r.props) is UNKNOWN or get(r.props, "name") is UNKNOWN)
            for r in resources
        )
        or any(f.resource.type == AZURE_WEBAPP and f.name is UNKNOWN for f in functions),
        AWS_LAMBDA: any(
            f.resource.type == AWS_LAMBDA and (f.name is UNKNOWN or get(f.resource.props, "name") is UNKNOWN)
            for f in functions
        ),
    }

    def attach(owner_type: str, res: StackResource, matches: Any, refs: list[Any], into: str) -> None:
        owners = [fn for fn in functions if fn.resource.type == owner_type]
        if undecided[owner_type] or any(r is UNKNOWN for r in refs):
            for fn in owners:
                fn.attachments_unknown = True
            return
        for fn in owners:
            if matches(fn):
                getattr(fn, into).append(res)
                return

    for res in resources:
        if res.type == AZURE_SLOT:
            kind = is_azure_function_app(res.props)
            if kind is False:
                continue
            site = get(res.props, "name")
            tagged = metadata_value(read_metadata(res.type, res.props), "function-name")
            attach(
                AZURE_WEBAPP,
                res,
                lambda fn, site=site, tagged=tagged: (
                    (isinstance(site, str) and site == get(fn.resource.props, "name"))
                    or (isinstance(tagged, str) and tagged == fn.name)
                ),
                [kind, site, tagged],
                "canaries",
            )
        elif res.type == AWS_PROVISIONED:
            ref = get(res.props, "functionName")
            attach(
                AWS_LAMBDA,
                res,
                lambda fn, ref=ref: (
                    _lambda_ref_matches(ref, get(fn.resource.props, "name")) or _lambda_ref_matches(ref, fn.name)
                ),
                [ref],
                "provisioned",
            )
    return functions


# --------------------------------------------------------------------------- cost estimate


class CannotEstimateError(Exception):
    """The estimate needs a value that is missing (a gap to report) or unknown (preview: skip)."""

    def __init__(self, reason: str, unknown: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unknown = unknown


def _need_number(value: Any, what: str, default: float | None = None) -> float:
    if value is UNKNOWN or contains_unknown(value):
        raise CannotEstimateError(f"{what} is not known yet", unknown=True)
    number = as_number(value)
    if number is MISSING:
        if default is not None:
            return default
        raise CannotEstimateError(f"{what} is not set")
    if number is None:
        raise CannotEstimateError(f"{what} is not a finite number ({shown(value)})")
    if number < 0:
        raise CannotEstimateError(f"{what} is negative ({shown(value)})")
    return number


def _need_str(value: Any, what: str, default: str | None) -> str | None:
    if value is UNKNOWN:
        raise CannotEstimateError(f"{what} is not known yet", unknown=True)
    return value if isinstance(value, str) and value else default


def _serving_revisions(traffic: Any) -> int:
    if traffic is UNKNOWN:
        raise CannotEstimateError("the traffic split is not known yet", unknown=True)
    if not isinstance(traffic, list):
        return 1
    serving = 0
    for entry in traffic:
        percent = as_number(get(entry, "percent"))
        if percent is UNKNOWN:
            raise CannotEstimateError("the traffic split is not known yet", unknown=True)
        if isinstance(percent, float) and percent > 0:
            serving += 1
    return max(1, serving)


def _lambda_region(props: dict[str, Any]) -> str | None:
    region = _need_str(get(props, "region"), "the region", None)
    if region:
        return region
    arn = get(props, "arn")
    if arn is UNKNOWN:
        raise CannotEstimateError("the region is not known yet (no region, arn unknown)", unknown=True)
    if isinstance(arn, str) and arn.count(":") >= 4:
        return arn.split(":")[3] or None
    return None


def estimate(fn: Function, args: Any) -> list[pricing.Usage]:
    """The usages that make up a function's monthly cost. Raises :class:`CannotEstimateError`,
    also when the inputs are so large that the estimate is not a finite number of dollars."""
    try:
        usages = _estimate(fn, args)
    except (OverflowError, ValueError) as exc:  # arithmetic on hostile sizes: a gap, never a crash
        raise CannotEstimateError(f"the estimate cannot be computed ({exc})") from None
    for usage in usages:
        amounts = [usage.cost(), *usage.quantities.values()]
        if not all(math.isfinite(a) for a in amounts):
            raise CannotEstimateError("the inputs are too large to give a finite estimate")
    return usages


def _estimate(fn: Function, args: Any) -> list[pricing.Usage]:
    if fn.attachments_unknown:
        raise CannotEstimateError("a canary slot or provisioned concurrency config is not known yet", unknown=True)
    requests = _need_number(fn.key("expected-monthly-requests"), "expected-monthly-requests")
    duration = _need_number(fn.key("avg-duration-ms"), "avg-duration-ms")
    props = fn.resource.props
    if fn.resource.type == AWS_LAMBDA:
        memory = _need_number(get(props, "memorySize"), "memorySize", 128.0)
        archs = get(props, "architectures")
        if archs is UNKNOWN or contains_unknown(archs):
            raise CannotEstimateError("architectures is not known yet", unknown=True)
        arch = archs[0] if isinstance(archs, list) and archs else "x86_64"
        provisioned = sum(
            _need_number(get(p.props, "provisionedConcurrentExecutions"), "provisionedConcurrentExecutions", 0.0)
            for p in fn.provisioned
        )
        return [
            pricing.lambda_usage(
                requests=requests,
                duration_ms=duration,
                memory_mb=memory,
                architecture=arch,
                region=_lambda_region(props),
                provisioned_concurrency=provisioned,
                ephemeral_storage_mb=_need_number(get(props, "ephemeralStorage.size"), "ephemeralStorage.size", 512.0),
            )
        ]
    if fn.resource.type == AZURE_WEBAPP:
        sites = [fn.resource, *fn.canaries]
        shares = _azure_shares(props, len(sites))
        usages = []
        for site, share in zip(sites, shares, strict=True):
            flex_config = get(site.props, "functionAppConfig")
            if flex_config is UNKNOWN:
                raise CannotEstimateError("functionAppConfig is not known yet", unknown=True)
            flex = flex_config is not MISSING
            always_ready = 0.0
            if flex:
                memory = _need_number(
                    get(flex_config, "scaleAndConcurrency.instanceMemoryMB"), "instanceMemoryMB", DEFAULT_FLEX_MEMORY_MB
                )
                always_ready = _always_ready(get(flex_config, "scaleAndConcurrency.alwaysReady"))
            else:
                # Consumption has no memory setting: the function's declared memory (the memory-mb
                # key) is what it is sized for; without one, the pack config's assumption.
                default = float(config_value(args, "azureConsumptionMemoryMb", DEFAULT_AZURE_CONSUMPTION_MEMORY_MB))
                memory = _need_number(fn.key("memory-mb"), "memory-mb", default)
            region = _need_str(get(site.props, "location"), "the location", None)
            usages.append(
                pricing.azure_functions_usage(
                    requests=requests * share,
                    duration_ms=duration,
                    memory_mb=memory,
                    region=region,
                    flex=flex,
                    always_ready=always_ready,
                )
            )
        return usages
    if fn.resource.type == GCP_RUN:
        container = get(props, "template.containers.0")
        cpu = pricing.parse_cpu(_need_str(get(container, "resources.limits.cpu"), "the CPU limit", "1"))
        mem = pricing.parse_memory_gib(
            _need_str(get(container, "resources.limits.memory"), "the memory limit", "512Mi")
        )
        if cpu is None or mem is None:
            raise CannotEstimateError("the container's CPU or memory limit is malformed")
        revision_min = _need_number(get(props, "template.scaling.minInstanceCount"), "minInstanceCount", 0.0)
        service_min = _need_number(get(props, "scaling.minInstanceCount"), "scaling.minInstanceCount", 0.0)
        revisions = _serving_revisions(get(props, "traffics"))
        cpu_idle = get(container, "resources.cpuIdle")
        if cpu_idle is UNKNOWN:
            raise CannotEstimateError("resources.cpuIdle is not known yet", unknown=True)
        # A service-level minimum is shared by the revisions: the larger of the two applies.
        total_min = max(revision_min * revisions, service_min)
        return [
            pricing.cloud_run_usage(
                requests=requests,
                duration_ms=duration,
                vcpu=cpu,
                memory_gib=mem,
                region=_need_str(get(props, "location"), "the location", None),
                min_instances=total_min / revisions,
                serving_revisions=revisions,
                # cpuIdle false: CPU always allocated, i.e. instance-based billing
                # (cloud.google.com/run/docs/configuring/billing-settings).
                instance_based=cpu_idle is False,
            )
        ]
    if fn.resource.type == KNATIVE:
        container = get(props, "spec.template.spec.containers.0")
        cpu_raw = _need_str(get(container, "resources.requests.cpu"), "the CPU request", None) or _need_str(
            get(container, "resources.limits.cpu"), "the CPU limit", None
        )
        mem_raw = _need_str(get(container, "resources.requests.memory"), "the memory request", None) or _need_str(
            get(container, "resources.limits.memory"), "the memory limit", None
        )
        cpu = pricing.parse_cpu(cpu_raw) if cpu_raw else None
        mem = pricing.parse_memory_gib(mem_raw) if mem_raw else None
        if cpu is None or mem is None:
            raise CannotEstimateError("the container declares no CPU/memory requests, so its node share is unknown")
        annotations = get(props, "spec.template.metadata.annotations")
        if annotations is UNKNOWN:
            raise CannotEstimateError("the revision annotations are not known yet", unknown=True)
        min_raw = MISSING
        if isinstance(annotations, dict):
            min_raw = annotations.get(
                "autoscaling.knative.dev/min-scale", annotations.get("autoscaling.knative.dev/minScale", MISSING)
            )
        min_scale = _need_number(min_raw, "autoscaling.knative.dev/min-scale", 0.0)
        concurrency = _need_number(get(props, "spec.template.spec.containerConcurrency"), "containerConcurrency", 0.0)
        return [
            pricing.knative_usage(
                requests=requests,
                duration_ms=duration,
                vcpu=cpu,
                memory_gib=mem,
                vcpu_hour_usd=_node_price(props, args, "node-vcpu-hour-usd", "kubernetesVcpuHourUsd"),
                gib_hour_usd=_node_price(props, args, "node-gib-hour-usd", "kubernetesGibHourUsd"),
                min_scale=min_scale,
                serving_revisions=_serving_revisions(get(props, "spec.traffic")),
                container_concurrency=concurrency,
            )
        ]
    raise CannotEstimateError(f"{fn.resource.type} is not priced")  # pragma: no cover - find_functions filters


def _always_ready(entries: Any) -> float:
    """Always-ready instances of a Flex Consumption app (``alwaysReady: [{name, instanceCount}]``)."""
    if entries is UNKNOWN or contains_unknown(entries):
        raise CannotEstimateError("alwaysReady is not known yet", unknown=True)
    total = 0.0
    for entry in entries if isinstance(entries, list) else []:
        total += _need_number(get(entry, "instanceCount"), "alwaysReady.instanceCount", 0.0)
    return total


def _node_price(props: dict[str, Any], args: Any, annotation: str, config_key: str) -> float:
    """The cluster price a Knative Service records (``inferops.dev/node-*-hour-usd``), else pack config.

    The service's own annotation wins so that the estimate follows the price of the cluster the
    stack declares; pack config is the fallback for services that record none.
    """
    annotations = get(props, "metadata.annotations")
    if annotations is UNKNOWN:
        raise CannotEstimateError("the service's annotations (node price) are not known yet", unknown=True)
    recorded = annotations.get(K8S_PREFIX + annotation) if isinstance(annotations, dict) else None
    if recorded is UNKNOWN:
        raise CannotEstimateError(f"{K8S_PREFIX}{annotation} is not known yet", unknown=True)
    if isinstance(recorded, str):
        try:
            value = float(recorded)
        except ValueError:
            value = -1.0
        if value >= 0 and value == value and value != float("inf"):
            return value
    return float(config_value(args, config_key, COST_MODEL_PROPERTIES[config_key]["default"]))


def _azure_shares(props: dict[str, Any], sites: int) -> list[float]:
    """Request shares of the production app and its slots from the app's ramp-up rules."""
    if sites == 1:
        return [1.0]
    rules = get(props, "siteConfig.experiments.rampUpRules")
    if rules is UNKNOWN or contains_unknown(rules):
        raise CannotEstimateError("the slot traffic rules are not known yet", unknown=True)
    slot_percents = [as_number(get(rule, "reroutePercentage")) for rule in rules] if isinstance(rules, list) else []
    slot_percents = [p if isinstance(p, float) else 0.0 for p in slot_percents]
    slot_percents = (slot_percents + [0.0] * sites)[: sites - 1]
    production = max(0.0, 100.0 - sum(slot_percents))
    return [production / 100.0, *(p / 100.0 for p in slot_percents)]


def _budget(fn: Function) -> Any:
    value = fn.key("monthly-budget-usd")
    if value is UNKNOWN or value is MISSING:
        return value
    number = as_number(value)
    return number if isinstance(number, float) and number >= 0 else None


def _usage_summary(fn: Function, usages: list[pricing.Usage]) -> str:
    first = usages[0]
    parts = [first.product if first.region == "cluster" else f"{first.product} {first.region}"]
    requests = sum(u.quantities.get("requests", 0.0) for u in usages)
    parts.append(f"{requests:,.0f} requests x {fmt_num(float(as_number(fn.key('avg-duration-ms'))))} ms")
    if len(usages) > 1 or fn.provisioned or any(u.fixed_usd for u in usages):
        parts.append("including canary and always-on capacity")
    return ", ".join(parts)


def _function_costs(args: Any, *, free_tier: bool) -> list[tuple[Function, list[pricing.Usage], float]]:
    out = []
    for fn in find_functions(stack_resources(args)):
        try:
            usages = estimate(fn, args)
        except CannotEstimateError:
            continue  # reported (when it is a gap) by the coverage policy
        cost = pricing.stack_cost(usages, apply_free_tiers=True) if free_tier else sum(u.cost() for u in usages)
        out.append((fn, usages, cost))
    return out


def cost_within_budget_validator(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Each function's estimated monthly cost stays within its budget minus the headroom."""
    headroom = float(config_value(args, "headroomPercent", DEFAULT_HEADROOM_PERCENT))
    free_tier = bool(config_value(args, "assumeFreeTier", False))
    for fn, usages, cost in _function_costs(args, free_tier=free_tier):
        budget = _budget(fn)
        if not isinstance(budget, float):
            continue  # missing: the tags policy reports it; unknown: cannot judge yet
        allowed = budget * (1 - headroom / 100.0)
        if cost > allowed + 0.005:
            report_violation(
                f"'{fn.label}' is estimated at {fmt_usd(cost)}/month ({_usage_summary(fn, usages)}, "
                f"{'free tier assumed' if free_tier else 'no free tier assumed'}), above its budget "
                f"{fmt_usd(budget)} minus {fmt_num(headroom)}% headroom ({fmt_usd(allowed)}): raise "
                "finops.monthlyBudgetUsd, or lower memory, duration, minimum instances or expected traffic.",
                fn.resource.urn,
            )


def cost_per_1k_validator(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """No function costs more per 1,000 inferences than the configured ceiling."""
    ceiling = float(config_value(args, "maxUsdPer1kInferences", DEFAULT_MAX_USD_PER_1K))
    for fn, usages, cost in _function_costs(args, free_tier=False):
        requests = sum(u.quantities.get("requests", 0.0) for u in usages)
        if requests <= 0:
            continue
        per_1k = cost / requests * 1000
        if per_1k > ceiling:
            report_violation(
                f"'{fn.label}' costs an estimated ${per_1k:.4f} per 1,000 inferences "
                f"({_usage_summary(fn, usages)}), above the ceiling ${ceiling:.4f}: reduce memory, duration or "
                "always-on capacity, or raise maxUsdPer1kInferences in the pack config.",
                fn.resource.urn,
            )


def stack_ceiling_validator(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """The stack's functions together stay under a monthly ceiling (free tiers applied once)."""
    ceiling = float(config_value(args, "maxMonthlyUsd", DEFAULT_STACK_CEILING_USD))
    apply_free = bool(config_value(args, "applyFreeTiers", True))
    costs = _function_costs(args, free_tier=False)
    usages = [u for _fn, fn_usages, _cost in costs for u in fn_usages]
    total = pricing.stack_cost(usages, apply_free_tiers=apply_free)
    if total > ceiling:
        report_violation(
            f"the stack's {len(costs)} functions are estimated at {fmt_usd(total)}/month "
            f"({'free tiers applied once' if apply_free else 'no free tiers'}), above the stack ceiling "
            f"{fmt_usd(ceiling)}: remove or shrink functions, or raise maxMonthlyUsd in the pack config.",
            None,
        )


def coverage_validator(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Warn where a cost estimate is a fallback (region not in the price table) or impossible."""
    for fn in find_functions(stack_resources(args)):
        try:
            usages = estimate(fn, args)
        except CannotEstimateError as exc:
            if not exc.unknown:
                report_violation(
                    f"'{fn.label}' cannot be priced: {exc.reason}; set it so the FinOps policies "
                    "can check the function.",
                    fn.resource.urn,
                )
            continue
        for warning in dict.fromkeys(w for u in usages for w in u.warnings):
            report_violation(
                f"'{fn.label}': {warning}; add the region to prices.json with its source and date.", fn.resource.urn
            )


# --------------------------------------------------------------------------- budgets


#: Metadata keys a budget may filter on to single out one function (design.md): the stack-scoped
#: ``function-name``, or ``model-id`` (with ``model-version``) when that identifies one function.
LINK_KEYS = ("function-name", "model-id", "model-version")
_BUDGET_CLOUD = {AWS_BUDGET: "aws", AZURE_BUDGET: "azure", GCP_BUDGET: "gcp"}


@dataclass
class Budget:
    """A budget resource found in the stack."""

    resource: StackResource
    filters: Any  # {link key: [accepted values]}, or UNKNOWN when the filter is not known yet
    amount: Any  # float, UNKNOWN, MISSING or None (malformed)
    thresholds: Any  # list of percents, or UNKNOWN

    @property
    def cloud(self) -> str:
        """The platform whose functions this budget can cover."""
        return _BUDGET_CLOUD[self.resource.type]

    @property
    def function(self) -> Any:
        """The function-name the budget filters on (first value), UNKNOWN, or None."""
        if self.filters is UNKNOWN:
            return UNKNOWN
        values = self.filters.get("function-name")
        return values[0] if values else None


def _add_filter(filters: dict[str, list[Any]], key: Any, values: Any) -> bool:
    """Record one tag/label filter; False when its values are not known yet."""
    if key is UNKNOWN or values is UNKNOWN:
        return False
    if not isinstance(key, str) or key not in LINK_KEYS:
        return True
    values = values if isinstance(values, list) else [values]
    if UNKNOWN in values:
        return False
    filters.setdefault(key, []).extend(v for v in values if isinstance(v, str))
    return True


def _notification_thresholds(notifications: Any, amount: Any) -> Any:
    thresholds: list[float] = []
    if notifications is UNKNOWN or contains_unknown(notifications):
        return UNKNOWN
    for note in notifications if isinstance(notifications, list) else []:
        value = as_number(get(note, "threshold"))
        if not isinstance(value, float):
            continue
        if get(note, "thresholdType") == "ABSOLUTE_VALUE":
            if amount is UNKNOWN:
                return UNKNOWN  # the percent depends on an amount not known yet
            value = value / amount * 100 if isinstance(amount, float) and amount > 0 else None
        if value is not None:
            thresholds.append(value)
    return thresholds


def _aws_budget(res: StackResource) -> Budget | None:
    filters_prop = get(res.props, "costFilters")
    if contains_unknown(filters_prop):
        return Budget(res, UNKNOWN, MISSING, UNKNOWN)
    entries = (
        filters_prop
        if isinstance(filters_prop, list)
        else ([{"name": k, "values": v} for k, v in filters_prop.items()] if isinstance(filters_prop, dict) else [])
    )
    filters: dict[str, list[Any]] = {}
    for entry in entries:
        if get(entry, "name") != "TagKeyValue":
            continue
        values = get(entry, "values")
        for value in values if isinstance(values, list) else [values]:
            # Cost Explorer tag filters read "user:<key>$<value>".
            if isinstance(value, str) and value.startswith("user:") and "$" in value:
                key, tag_value = value[len("user:") :].split("$", 1)
                _add_filter(filters, key, tag_value)
    if not filters:
        return None
    amount = as_number(get(res.props, "limitAmount"))
    return Budget(res, filters, amount, _notification_thresholds(get(res.props, "notifications"), amount))


def _azure_tag_filters(expr: Any, filters: dict[str, list[Any]]) -> bool:
    """Collect the tag filters of an Azure budget filter expression; False when one is unknown."""
    if not isinstance(expr, dict):
        return True
    tags = expr.get("tags")
    if tags is UNKNOWN:
        return False
    if isinstance(tags, dict) and not _add_filter(filters, tags.get("name"), tags.get("values")):
        return False
    nested = expr.get("and")
    if nested is UNKNOWN:
        return False
    # ``and`` is a list of expressions (BudgetFilter); anything else filters nothing the pack reads.
    return all(_azure_tag_filters(item, filters) for item in (nested if isinstance(nested, list) else []))


def _azure_budget(res: StackResource) -> Budget | None:
    filt = get(res.props, "filter")
    filters: dict[str, list[Any]] = {}
    if contains_unknown(filt) or not _azure_tag_filters(filt, filters):
        return Budget(res, UNKNOWN, as_number(get(res.props, "amount")), UNKNOWN)
    if not filters:
        return None
    notifications = get(res.props, "notifications")
    thresholds: Any = []
    if notifications is UNKNOWN or contains_unknown(notifications):
        thresholds = UNKNOWN
    elif isinstance(notifications, dict):
        for note in notifications.values():
            if get(note, "enabled") is False:
                continue
            value = as_number(get(note, "threshold"))
            if isinstance(value, float):
                thresholds.append(value)
    return Budget(res, filters, as_number(get(res.props, "amount")), thresholds)


def _gcp_budget(res: StackResource) -> Budget | None:
    labels = get(res.props, "budgetFilter.labels")
    filters: dict[str, list[Any]] = {}
    if contains_unknown(get(res.props, "budgetFilter")):
        return Budget(res, UNKNOWN, MISSING, UNKNOWN)
    if isinstance(labels, dict):
        for key, value in labels.items():
            _add_filter(filters, key, value)
    if not filters:
        return None
    rules = get(res.props, "thresholdRules")
    thresholds: Any = []
    if rules is UNKNOWN or contains_unknown(rules):
        thresholds = UNKNOWN
    elif isinstance(rules, list):
        for rule in rules:
            value = as_number(get(rule, "thresholdPercent"))
            if isinstance(value, float):
                thresholds.append(value * 100.0)  # GCP states thresholds as fractions
    units = as_number(get(res.props, "amount.specifiedAmount.units"))
    nanos = as_number(get(res.props, "amount.specifiedAmount.nanos"))
    amount: Any = units
    if units is UNKNOWN or nanos is UNKNOWN:
        amount = UNKNOWN  # a known dollar part with unknown cents is not the amount
    elif isinstance(units, float) and isinstance(nanos, float):
        amount = units + nanos / 1e9
    elif isinstance(units, float) and nanos is None:
        amount = None  # malformed nanos: the amount cannot be read
    elif units is MISSING and isinstance(nanos, float):
        amount = nanos / 1e9
    return Budget(res, filters, amount, thresholds)


def find_budgets(resources: list[StackResource]) -> list[Budget]:
    """Budgets of the three clouds that filter on a function's ``function-name`` or model identity."""
    readers = {AWS_BUDGET: _aws_budget, AZURE_BUDGET: _azure_budget, GCP_BUDGET: _gcp_budget}
    found = []
    for res in resources:
        reader = readers.get(res.type)
        if reader is not None:
            budget = reader(res)
            if budget is not None:
                found.append(budget)
    return found


def _filter_match(budget: Budget, fn: Function) -> Any:
    """True/False whether ``fn`` passes every link-key filter of ``budget``; UNKNOWN if undecidable."""
    result: Any = True
    for key, values in budget.filters.items():
        value = fn.key(key)
        if value is UNKNOWN:
            result = UNKNOWN
        elif not (isinstance(value, str) and value in values):
            return False
    return result


def budget_links(budget: Budget, fn: Function, peers: list[Function]) -> Any:
    """Whether ``budget`` is ``fn``'s budget under the contract: True, False or UNKNOWN.

    It is when its filter names ``fn``'s ``function-name``, or, without a ``function-name``
    filter, when its ``model-id`` (and ``model-version``) filter selects ``fn`` and no other
    function of the same cloud in the stack (the pair identifies it).
    """
    if budget.cloud != fn.platform:
        return False  # an Azure budget never covers a Lambda function, whatever its filter
    if budget.filters is UNKNOWN:
        return UNKNOWN
    match = _filter_match(budget, fn)
    if match is not True or "function-name" in budget.filters:
        return match
    if "model-id" not in budget.filters:
        return False
    others = [_filter_match(budget, other) for other in peers if other is not fn and other.platform == fn.platform]
    if any(o is True for o in others):
        return False  # the model identity names several functions: not this one's budget
    return UNKNOWN if any(o is UNKNOWN for o in others) else True


def budget_coverage_validator(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Each cloud function has a budget resource for its amount that alerts at or before 100%."""
    max_first = float(config_value(args, "maxFirstThresholdPercent", DEFAULT_MAX_FIRST_THRESHOLD))
    resources = stack_resources(args)
    budgets = find_budgets(resources)
    functions = find_functions(resources)
    for fn in functions:
        if fn.platform == "kubernetes":
            continue  # Kubernetes has no budget resource; the annotation is the budget
        if fn.name is UNKNOWN:
            continue
        links = [(b, budget_links(b, fn, functions)) for b in budgets]
        mine = [b for b, linked in links if linked is True]
        if not mine:
            if any(linked is UNKNOWN for _b, linked in links):
                continue  # a budget's filter or a function's identity is not known yet: cannot judge
            report_violation(
                f"'{fn.label}' has no budget resource filtering on function-name={shown(fn.name)}: add a "
                f"{ {'aws': AWS_BUDGET, 'azure': AZURE_BUDGET, 'gcp': GCP_BUDGET}[fn.platform] } for it "
                "with the function's monthly-budget-usd as its amount.",
                fn.resource.urn,
            )
            continue
        expected = _budget(fn)
        for budget in mine:
            amount = budget.amount
            if amount is None:
                report_violation(
                    f"budget '{budget.resource.name}' for '{fn.label}' has an amount that is not a number: set it "
                    "to the function's monthly-budget-usd.",
                    budget.resource.urn,
                )
            elif isinstance(expected, float) and isinstance(amount, float) and abs(amount - expected) > 0.005:
                report_violation(
                    f"budget '{budget.resource.name}' for '{fn.label}' is {fmt_usd(amount)} but the function's "
                    f"monthly-budget-usd is {fmt_usd(expected)}: make them equal (set finops.monthlyBudgetUsd "
                    "once and derive both).",
                    budget.resource.urn,
                )
            if budget.thresholds is UNKNOWN:
                continue
            if not budget.thresholds:
                report_violation(
                    f"budget '{budget.resource.name}' for '{fn.label}' has no alert threshold: add notifications "
                    f"(e.g. finops.alertThresholdsPercent [50, 80, 100]).",
                    budget.resource.urn,
                )
            elif min(budget.thresholds) > max_first:
                report_violation(
                    f"budget '{budget.resource.name}' for '{fn.label}' first alerts at "
                    f"{fmt_num(min(budget.thresholds))}%, after the {fmt_num(max_first)}% limit: add an alert at "
                    f"or below {fmt_num(max_first)}% so owners hear before the budget is spent.",
                    budget.resource.urn,
                )


# --------------------------------------------------------------------------- reporting API


class _Config:
    """Adapts a plain mapping to the ``get_config()`` interface the validators read."""

    def __init__(self, config: dict[str, Any] | None) -> None:
        self._config = dict(config or {})

    def get_config(self) -> dict[str, Any]:
        return self._config


@dataclass
class FunctionCost:
    """One function's estimate for reports (e.g. an offline plan): no free tier assumed."""

    function: str
    platform: str
    urn: str
    monthly_usd: float | None
    budget_usd: float | None
    usd_per_1k: float | None
    warnings: list[str]
    reason: str | None = None  # why no estimate could be made


def function_costs(resources: list[StackResource], config: dict[str, Any] | None = None) -> list[FunctionCost]:
    """Per-function monthly estimates of a stack, with the cost-model keys of ``config``
    (``kubernetesVcpuHourUsd``, ``kubernetesGibHourUsd``, ``azureConsumptionMemoryMb``)."""
    args = _Config(config)
    out = []
    for fn in find_functions(resources):
        budget = _budget(fn)
        budget_usd = budget if isinstance(budget, float) else None
        try:
            usages = estimate(fn, args)
        except CannotEstimateError as exc:
            out.append(FunctionCost(fn.label, fn.platform, fn.resource.urn, None, budget_usd, None, [], exc.reason))
            continue
        cost = sum(u.cost() for u in usages)
        requests = sum(u.quantities.get("requests", 0.0) for u in usages)
        out.append(
            FunctionCost(
                fn.label,
                fn.platform,
                fn.resource.urn,
                cost,
                budget_usd,
                cost / requests * 1000 if requests else None,
                list(dict.fromkeys(w for u in usages for w in u.warnings)),
            )
        )
    return out


def stack_monthly_with_free_tiers(resources: list[StackResource], config: dict[str, Any] | None = None) -> float:
    """The stack's monthly estimate with each product's free tier applied once (functions it can price)."""
    args = _Config(config)
    usages: list[pricing.Usage] = []
    for fn in find_functions(resources):
        try:
            usages.extend(estimate(fn, args))
        except CannotEstimateError:
            continue
    return pricing.stack_cost(usages, apply_free_tiers=True)
