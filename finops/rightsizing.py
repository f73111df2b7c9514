"""Rightsizing: the memory and instance bounds that cost least while meeting the latency objective.

Pure: :func:`recommend` takes the function's spec, what was observed (latency and memory samples,
requests, peak concurrency, cold starts) and a pricing function, and returns a :class:`Recommendation`.
Every candidate shape is priced with the policy pack's estimators (:mod:`finops.pricing`), the same
ones the plan and the budget policies use.

The latency model, stated in every recommendation's ``assumptions``:

* The inference handler (functions/core.py) is single-threaded Python, so its speed is proportional to
  ``min(vCPU, 1)``: more than one vCPU does not make one request faster.
* AWS Lambda allocates CPU in proportion to memory, one vCPU at 1,769 MB, and memory is 128-10,240 MB
  in 1 MB steps (docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html). Without a
  measurement at the other sizes, duration is assumed to scale with that CPU share: halving memory
  below 1,769 MB doubles the duration (pessimistic for I/O-bound handlers), and memory above 1,769 MB
  buys no speed.
* Azure Flex Consumption instances are 512, 2,048 or 4,096 MB; CPU is assumed proportional to the
  instance size with 2,048 MB as one vCPU (not measured). Azure Consumption bills the memory actually
  used, rounded up to 128 MB, on a fixed instance: ``memoryMb`` only feeds the estimate, so it is
  sized to the observed peak and duration does not change.
* Cloud Run and Knative: CPU is ``runtime.cpu`` (or the spec's default for the memory when unset), so
  duration changes only when a smaller memory also lowers the default CPU.
* Memory never goes below 1.25x the largest observed peak (``memory_used_mb``); without a memory
  measurement it never goes below the current size.
* The objective is the capture's p95 latency at most ``finops.latencySloMs``; without an objective,
  never slower than today's p95.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from components.spec import FunctionSpec, _check_cloud_run_pair, default_cpu

LAMBDA_ONE_VCPU_MB = 1769
FLEX_ONE_VCPU_MB = 2048
MEMORY_HEADROOM = 1.25
_LAMBDA_SIZES = (128, 192, 256, 384, 512, 640, 768, 1024, 1280, 1536, 1769, 2048, 3008, 4096, 5120, 6144, 8192, 10240)
_GCP_SIZES = (128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
_K8S_SIZES = (64, 128, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 16384, 32768, 65536)
_MAX_INSTANCES = {"aws": 1000, "azure-consumption": 200, "azure-flex": 1000, "gcp": 1000, "kubernetes": 1000}

#: ``(spec, memory_mb, min_instances, monthly_requests, duration_ms) -> monthly USD``.
Pricer = Callable[[FunctionSpec, int, int, float, float], float]


@dataclass(frozen=True)
class Observed:
    """What the capture and the billing data say about one function over the period."""

    requests_per_month: float
    mean_latency_ms: float
    p95_latency_ms: float
    peak_memory_mb: float | None = None
    peak_concurrency: float | None = None
    #: share of 5-minute windows without a request (idle instances are reclaimed after minutes)
    idle_window_share: float | None = None
    cold_start_share: float | None = None
    p95_warm_latency_ms: float | None = None
    latency_source: str = "capture"


@dataclass
class Recommendation:
    """The least-cost shape under the objective, against the current one."""

    current: dict[str, Any]
    recommended: dict[str, Any]
    monthly_savings_usd: float
    edits: list[tuple[tuple[str, ...], Any, Any]]  # (path, old, new)
    assumptions: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def _plan_kind(fn: FunctionSpec) -> str:
    if fn.platform == "azure":
        return "azure-flex" if fn.runtime.azure_plan == "flexConsumption" else "azure-consumption"
    return fn.platform


def speed(fn: FunctionSpec, memory_mb: int) -> float:
    """Relative speed of one request at ``memory_mb`` (proportional to ``min(vCPU, 1)``)."""
    kind = _plan_kind(fn)
    if kind == "aws":
        return min(memory_mb / LAMBDA_ONE_VCPU_MB, 1.0)
    if kind == "azure-flex":
        return min(memory_mb / FLEX_ONE_VCPU_MB, 1.0)
    if kind == "azure-consumption":
        return 1.0
    cpu = (
        fn.runtime.cpu
        if fn.runtime.cpu is not None
        else default_cpu(fn.model_copy(update={"runtime": fn.runtime.model_copy(update={"memory_mb": memory_mb})}))
    )
    return min(cpu, 1.0)


def candidates(fn: FunctionSpec) -> list[int]:
    """The memory sizes the platform accepts for this function (what ``components/spec.py`` accepts)."""
    kind = _plan_kind(fn)
    sizes: Sequence[int]
    if kind == "aws":
        sizes = _LAMBDA_SIZES
    elif kind == "azure-flex":
        sizes = (512, 2048, 4096)
    elif kind == "azure-consumption":
        sizes = tuple(range(128, 1537, 128))
    elif kind == "gcp":
        sizes = [m for m in _GCP_SIZES if fn.runtime.cpu is None or _check_cloud_run_pair(fn.runtime.cpu, m) is None]
    else:
        sizes = _K8S_SIZES
    return sorted(set(sizes) | {fn.runtime.memory_mb})


def _assumptions(fn: FunctionSpec, obs: Observed, slo: float | None) -> list[str]:
    kind = _plan_kind(fn)
    out = []
    if kind == "aws":
        out.append(
            "Lambda CPU scales with memory (1 vCPU at 1,769 MB); no measurement at other sizes, so duration is "
            "assumed to scale with the CPU share below 1,769 MB and not to improve above it"
        )
    elif kind == "azure-flex":
        out.append("Flex Consumption CPU assumed proportional to instance memory (2,048 MB = 1 vCPU); not measured")
    elif kind == "azure-consumption":
        out.append("Azure Consumption bills observed memory rounded up to 128 MB; duration does not depend on memoryMb")
    else:
        out.append("CPU is set separately from memory; duration changes only if the default CPU changes with memory")
    if obs.peak_memory_mb is None:
        out.append("no memory measurement (memory_used_mb): memory is never lowered")
    else:
        out.append(f"memory kept at least {MEMORY_HEADROOM}x the observed peak of {obs.peak_memory_mb:.0f} MB")
    out.append(
        f"objective: p95 latency <= {slo:g} ms (finops.latencySloMs)"
        if slo is not None
        else "no finops.latencySloMs: never slower than today's p95"
    )
    return out


def _min_instances(fn: FunctionSpec, obs: Observed, slo: float | None, reasons: list[str]) -> int:
    current = fn.scaling.min_instances
    if _plan_kind(fn) == "azure-consumption":
        return 0
    if current > 0:
        if obs.idle_window_share is not None and obs.idle_window_share == 0.0:
            reasons.append(
                "every 5-minute window had requests, so instances stay warm without minInstances "
                f"({current} always-on instances buy no cold-start protection)"
            )
            return 0
        return current
    if (
        slo is not None
        and obs.cold_start_share
        and obs.p95_warm_latency_ms is not None
        and obs.p95_latency_ms > slo >= obs.p95_warm_latency_ms
    ):
        want = max(1, math.ceil((obs.peak_concurrency or 1.0) / 2))
        reasons.append(
            f"p95 {obs.p95_latency_ms:.0f} ms misses the objective only because of cold starts "
            f"({100 * obs.cold_start_share:.1f}% of requests); {want} warm instance(s) keep it at "
            f"{obs.p95_warm_latency_ms:.0f} ms"
        )
        return want
    return current


def _max_instances(fn: FunctionSpec, obs: Observed, minimum: int, reasons: list[str]) -> int:
    current = fn.scaling.max_instances
    if obs.peak_concurrency is None:
        return max(current, minimum)
    need = max(1, minimum, math.ceil(obs.peak_concurrency * 2))
    cap = _MAX_INSTANCES[_plan_kind(fn)]
    need = min(need, cap)
    if current < math.ceil(obs.peak_concurrency * 1.2):
        reasons.append(
            f"peak concurrency {obs.peak_concurrency:.1f} is close to maxInstances {current}: raised to {need}"
        )
        return need
    if current > 4 * need:
        reasons.append(
            f"peak concurrency {obs.peak_concurrency:.1f}: maxInstances {current} -> {need} "
            "(2x the peak) bounds a runaway"
        )
        return need
    return max(current, minimum)


def recommend(fn: FunctionSpec, obs: Observed, price: Pricer, slo_ms: float | None) -> Recommendation:
    """The least-cost ``runtime.memoryMb`` / ``scaling.minInstances`` / ``scaling.maxInstances`` for ``fn``."""
    reasons: list[str] = []
    cur_mem = fn.runtime.memory_mb
    base_speed = speed(fn, cur_mem)
    limit = slo_ms if slo_ms is not None else obs.p95_latency_ms * 1.0001
    floor = math.ceil(obs.peak_memory_mb * MEMORY_HEADROOM) if obs.peak_memory_mb is not None else cur_mem
    min_inst = _min_instances(fn, obs, slo_ms, reasons)

    def shape(mem: int, mins: int) -> tuple[float, float, float]:
        ratio = base_speed / speed(fn, mem)
        return (
            price(fn, mem, mins, obs.requests_per_month, obs.mean_latency_ms * ratio),
            obs.p95_latency_ms * ratio,
            obs.mean_latency_ms * ratio,
        )

    current_cost, cur_p95, _ = shape(cur_mem, fn.scaling.min_instances)
    if floor > cur_mem:
        reasons.append(
            f"observed peak memory {obs.peak_memory_mb:.0f} MB leaves less than {MEMORY_HEADROOM}x headroom "
            f"at {cur_mem} MB"
        )
    allowed = [m for m in candidates(fn) if m >= floor] or [max(candidates(fn))]
    meeting = [m for m in allowed if shape(m, min_inst)[1] <= limit]
    if cur_p95 > limit:
        reasons.append(f"p95 {cur_p95:.0f} ms is over the objective {limit:g} ms at the current size")
    if not meeting:
        # nothing meets the objective under the model: the fastest allowed size, cheapest among equals
        fastest = min(shape(m, min_inst)[1] for m in allowed)
        meeting = [m for m in allowed if shape(m, min_inst)[1] <= fastest * 1.0001]
    best_mem = meeting[0]
    best_cost, best_p95, _ = shape(best_mem, min_inst)
    for mem in meeting[1:]:
        cost, p95, _mean = shape(mem, min_inst)
        # costs within half a percent are equal (duration rounding), and then the faster wins
        tie = max(0.005, 0.005 * best_cost)
        if cost < best_cost - tie or (abs(cost - best_cost) <= tie and (p95, mem) < (best_p95, best_mem)):
            best_mem, best_cost, best_p95 = mem, cost, p95
    if cur_mem in meeting and best_mem != cur_mem:
        # keep today's size unless the change saves more than the tie margin: a speed-up the model only
        # assumes is no reason to churn the config
        cur_cost_new = shape(cur_mem, min_inst)[0]
        if cur_cost_new - best_cost <= max(0.005, 0.005 * cur_cost_new):
            best_mem, best_cost, best_p95 = cur_mem, cur_cost_new, cur_p95
    if best_mem != cur_mem:
        direction = "lower" if best_mem < cur_mem else "higher"
        reasons.append(
            f"memoryMb {cur_mem} -> {best_mem} ({direction}): estimated p95 {best_p95:.0f} ms, "
            f"${best_cost:.2f}/month at {obs.requests_per_month:,.0f} requests"
        )
    max_inst = _max_instances(fn, obs, min_inst, reasons)
    edits: list[tuple[tuple[str, ...], Any, Any]] = []
    if best_mem != cur_mem:
        edits.append((("runtime", "memoryMb"), cur_mem, best_mem))
    if min_inst != fn.scaling.min_instances:
        edits.append((("scaling", "minInstances"), fn.scaling.min_instances, min_inst))
    if max_inst != fn.scaling.max_instances:
        edits.append((("scaling", "maxInstances"), fn.scaling.max_instances, max_inst))
    return Recommendation(
        current={
            "memoryMb": cur_mem,
            "minInstances": fn.scaling.min_instances,
            "maxInstances": fn.scaling.max_instances,
            "monthly_usd": round(current_cost, 2),
            "p95_ms": round(cur_p95, 1),
        },
        recommended={
            "memoryMb": best_mem,
            "minInstances": min_inst,
            "maxInstances": max_inst,
            "monthly_usd": round(best_cost, 2),
            "p95_ms": round(best_p95, 1),
        },
        monthly_savings_usd=round(current_cost - best_cost, 2),
        edits=edits,
        assumptions=_assumptions(fn, obs, slo_ms),
        reasons=reasons,
    )


def pack_pricer(node_price: tuple[float, float]) -> Pricer:
    """A :data:`Pricer` on the policy pack's estimators; ``node_price`` is (vCPU-hour, GiB-hour) USD."""
    from finops.pricing import pricing_module

    pricing = pricing_module()

    def price(fn: FunctionSpec, memory_mb: int, min_instances: int, requests: float, duration_ms: float) -> float:
        revisions = 2 if fn.canary_active else 1
        if fn.platform == "aws":
            u = pricing.lambda_usage(
                requests=requests, duration_ms=duration_ms, memory_mb=memory_mb,
                architecture=fn.runtime.architecture, region=fn.region, provisioned_concurrency=min_instances,
            )  # fmt: skip
        elif fn.platform == "azure":
            u = pricing.azure_functions_usage(
                requests=requests, duration_ms=duration_ms, memory_mb=memory_mb, region=fn.region,
                flex=fn.runtime.azure_plan == "flexConsumption",
            )  # fmt: skip
        else:
            sized = fn.model_copy(update={"runtime": fn.runtime.model_copy(update={"memory_mb": memory_mb})})
            if fn.platform == "gcp":
                u = pricing.cloud_run_usage(
                    requests=requests, duration_ms=duration_ms, vcpu=default_cpu(sized), memory_gib=memory_mb / 1024,
                    region=fn.region, min_instances=min_instances, serving_revisions=revisions,
                )  # fmt: skip
            else:
                u = pricing.knative_usage(
                    requests=requests, duration_ms=duration_ms, vcpu=default_cpu(sized), memory_gib=memory_mb / 1024,
                    vcpu_hour_usd=node_price[0], gib_hour_usd=node_price[1], min_scale=min_instances,
                    serving_revisions=revisions,
                )  # fmt: skip
        return float(u.cost())

    return price
