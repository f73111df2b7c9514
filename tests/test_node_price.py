"""The cluster price in stack config reaches the Knative Service, and the pack prices from it."""

from __future__ import annotations

import copy
import sys

import pytest

from inferops.harness import ProgramRun
from tests.conftest import ROOT

KNATIVE = "kubernetes:serving.knative.dev/v1:Service"

sys.path.insert(0, str(ROOT / "policies"))
from inferops_policy import finops  # noqa: E402
from inferops_policy.props import plain  # noqa: E402


def _knative_cost(props: dict, config: dict | None = None) -> float:
    resource = finops.StackResource(KNATIVE, "sentiment-service", "urn:x", plain(props))
    (cost,) = finops.function_costs([resource], config or {})
    assert cost.monthly_usd is not None, cost.reason
    return float(cost.monthly_usd)


def test_knative_service_records_the_stack_node_price(dev_run: ProgramRun) -> None:
    (svc,) = dev_run.of_type(KNATIVE)
    annotations = svc.inputs["metadata"]["annotations"]
    assert annotations["inferops.dev/node-vcpu-hour-usd"] == "0.0316"
    assert annotations["inferops.dev/node-gib-hour-usd"] == "0.0042"


def test_pack_prices_from_the_recorded_node_price(dev_run: ProgramRun) -> None:
    (svc,) = dev_run.of_type(KNATIVE)
    props = copy.deepcopy({**svc.inputs, **svc.outputs})
    recorded = _knative_cost(props)
    doubled = copy.deepcopy(props)
    ann = doubled["metadata"]["annotations"]
    ann["inferops.dev/node-vcpu-hour-usd"] = "0.0632"
    ann["inferops.dev/node-gib-hour-usd"] = "0.0084"
    assert _knative_cost(doubled) == pytest.approx(2 * recorded)
    # without the annotations the pack config (or its default) prices the pods
    bare = copy.deepcopy(props)
    for key in ("inferops.dev/node-vcpu-hour-usd", "inferops.dev/node-gib-hour-usd"):
        del bare["metadata"]["annotations"][key]
    from_config = _knative_cost(bare, {"kubernetesVcpuHourUsd": 0.0316, "kubernetesGibHourUsd": 0.0042})
    assert from_config == pytest.approx(recorded)
    # a malformed annotation is not trusted
    bad = copy.deepcopy(props)
    bad["metadata"]["annotations"]["inferops.dev/node-vcpu-hour-usd"] = "-1"
    bad["metadata"]["annotations"]["inferops.dev/node-gib-hour-usd"] = "cheap"
    assert _knative_cost(bad, {"kubernetesVcpuHourUsd": 0.0316, "kubernetesGibHourUsd": 0.0042}) == pytest.approx(
        recorded
    )
