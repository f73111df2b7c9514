"""Shared fixtures for the policy-pack tests: hand-built resources per platform and runners that
call a validator the way ``pulumi_policy`` does (properties wrapped in its unknown-checking proxy).

No tests live here; the ``test_policy_`` prefix only keeps the file with its siblings.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

PACK_DIR = Path(__file__).resolve().parent.parent / "policies"
if str(PACK_DIR) not in sys.path:
    sys.path.insert(0, str(PACK_DIR))

# The rule modules, imported after policies/ is on sys.path (as the engine's runpy puts it there).
from inferops_policy import finops, pack, pricing, responsible_ai, security  # noqa: E402
from pulumi_policy import (  # noqa: E402
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.proxy import unknown_checking_proxy  # noqa: E402

__all__ = ["finops", "pack", "pricing", "responsible_ai", "security"]

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def _opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def urn(rtype: str, name: str) -> str:
    """The URN a resource of the dev stack would have."""
    return f"urn:pulumi:dev::inferops::{rtype}::{name}"


def run_resource(
    validator: Any, rtype: str, props: dict[str, Any], *, name: str = "res", config: dict[str, Any] | None = None
) -> list[str]:
    """Messages a resource validator reports."""
    messages: list[str] = []
    args = ResourceValidationArgs(
        rtype, unknown_checking_proxy(copy.deepcopy(props)), urn(rtype, name), name, _opts(), None, config
    )
    validator(args, lambda message, _urn=None: messages.append(message))
    return messages


def run_stack(
    validator: Any, resources: list[tuple[str, str, dict[str, Any]]], *, config: dict[str, Any] | None = None
) -> list[tuple[str, str | None]]:
    """(message, urn) pairs a stack validator reports for ``(type, name, props)`` resources."""
    found: list[tuple[str, str | None]] = []
    policy_resources = [
        PolicyResource(t, unknown_checking_proxy(copy.deepcopy(p)), urn(t, n), n, _opts(), None, None, [], {})
        for t, n, p in resources
    ]
    validator(StackValidationArgs(policy_resources, config), lambda message, u=None: found.append((message, u)))
    return found


# --------------------------------------------------------------------------- compliant fixtures


def logical(name: str, **overrides: str) -> dict[str, str]:
    """The design contract's keys for one function, as strings."""
    meta = {
        "cost-center": "fraud-analytics",
        "owner": "ml-platform@example.com",
        "environment": "dev",
        "model-id": name,
        "model-version": "2.2.0",
        "model-card-url": f"https://models.example.com/{name}/card",
        "data-lineage-url": f"https://lineage.example.com/{name}",
        "fairness-score": "0.91",
        "risk-tier": "high",
        "approval-ref": "https://github.com/example/models/pull/42",
        "monthly-budget-usd": "400",
        "expected-monthly-requests": "3000000",
        "avg-duration-ms": "120",
        "managed-by": "inferops",
        "function-name": name,
    }
    meta.update(overrides)
    return {k: v for k, v in meta.items() if v is not None}


def _drop(meta: dict[str, str], drop: tuple[str, ...]) -> dict[str, str]:
    return {k: v for k, v in meta.items() if k not in drop}


def lambda_fn(name: str = "fraud-scorer", drop: tuple[str, ...] = (), **meta: Any) -> dict[str, Any]:
    """A compliant Lambda function's inputs."""
    return {
        "name": name,
        "memorySize": 1024,
        "architectures": ["arm64"],
        "timeout": 30,
        "region": "us-east-1",
        "role": "arn:aws:iam::123456789012:role/fraud-scorer",
        "environment": {"variables": {"MODEL_URI": "s3://example-models/fraud-scorer/2.2.0/model.json"}},
        "tags": _drop(logical(name, **meta), drop),
    }


def webapp(name: str = "churn-predictor", drop: tuple[str, ...] = (), **meta: Any) -> dict[str, Any]:
    """A compliant Azure function app's inputs."""
    return {
        "name": name,
        "kind": "functionapp,linux",
        "location": "eastus",
        "httpsOnly": True,
        "resourceGroupName": "rg-churn",
        "siteConfig": {
            "minTlsVersion": "1.2",
            "appSettings": [
                {"name": "FUNCTIONS_WORKER_RUNTIME", "value": "python"},
                {"name": "AzureWebJobsStorage__accountName", "value": "stchurn"},
            ],
        },
        "tags": _drop(logical(name, **meta), drop),
    }


def _gcp_split(meta: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    import re

    ok = re.compile(r"^[a-z0-9_-]{0,63}$")
    labels = {k: v for k, v in meta.items() if ok.match(v)}
    return labels, {k: v for k, v in meta.items() if k not in labels}


def cloud_run(name: str = "image-tagger", drop: tuple[str, ...] = (), **meta: Any) -> dict[str, Any]:
    """A compliant Cloud Run v2 service's inputs."""
    labels, annotations = _gcp_split(_drop(logical(name, **meta), drop))
    return {
        "name": name,
        "location": "us-central1",
        "ingress": "INGRESS_TRAFFIC_ALL",
        "labels": labels,
        "annotations": annotations,
        "template": {
            "containers": [
                {
                    "image": "us-docker.pkg.dev/example/tagger:2.2.0",
                    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                    "envs": [{"name": "MODEL_VERSION", "value": "2.2.0"}],
                }
            ],
            "scaling": {"minInstanceCount": 0, "maxInstanceCount": 20},
        },
        "traffics": [
            {"percent": 90, "revision": "image-tagger-stable"},
            {"percent": 10, "type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"},
        ],
    }


def knative(name: str = "text-classifier", drop: tuple[str, ...] = (), **meta: Any) -> dict[str, Any]:
    """A compliant Knative Service's inputs."""
    values = _drop(logical(name, **meta), drop)
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": "inference",
            "labels": {
                "networking.knative.dev/visibility": "cluster-local",
                **{f"inferops.dev/{k}": v for k, v in values.items() if "/" not in v and "@" not in v},
            },
            "annotations": {f"inferops.dev/{k}": v for k, v in values.items()},
        },
        "spec": {
            "template": {
                "metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "0"}},
                "spec": {
                    "containerConcurrency": 10,
                    "containers": [
                        {
                            "image": "ghcr.io/example/text-classifier:2.2.0",
                            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
                            "env": [{"name": "MODEL_VERSION", "value": "2.2.0"}],
                        }
                    ],
                },
            },
            "traffic": [{"percent": 100, "latestRevision": True}],
        },
    }


def aws_budget(function: str = "fraud-scorer", amount: str = "400", thresholds: tuple[float, ...] = (50, 80, 100)):
    """An AWS budget filtered on one function."""
    return {
        "budgetType": "COST",
        "limitAmount": amount,
        "limitUnit": "USD",
        "timeUnit": "MONTHLY",
        "costFilters": [{"name": "TagKeyValue", "values": [f"user:function-name${function}"]}],
        "notifications": [
            {
                "comparisonOperator": "GREATER_THAN",
                "threshold": t,
                "thresholdType": "PERCENTAGE",
                "notificationType": "FORECASTED",
                "subscriberEmailAddresses": ["ml-platform@example.com"],
            }
            for t in thresholds
        ],
    }


def azure_budget(function: str = "churn-predictor", amount: float = 400, thresholds: tuple[float, ...] = (50, 100)):
    """An Azure consumption budget filtered on one function."""
    return {
        "scope": "/subscriptions/0000/resourceGroups/rg-churn",
        "amount": amount,
        "category": "Cost",
        "timeGrain": "Monthly",
        "timePeriod": {"startDate": "2026-11-01T00:00:00Z"},
        "filter": {"tags": {"name": "function-name", "operator": "In", "values": [function]}},
        "notifications": {
            f"actual-{int(t)}": {
                "enabled": True,
                "operator": "GreaterThan",
                "threshold": t,
                "contactEmails": ["ml-platform@example.com"],
            }
            for t in thresholds
        },
    }


def gcp_budget(function: str = "image-tagger", units: str = "400", thresholds: tuple[float, ...] = (0.5, 1.0)):
    """A GCP billing budget filtered on one function."""
    return {
        "billingAccount": "000000-000000-000000",
        "displayName": f"{function}-budget",
        "budgetFilter": {"labels": {"function-name": function}},
        "amount": {"specifiedAmount": {"currencyCode": "USD", "units": units}},
        "thresholdRules": [{"thresholdPercent": t} for t in thresholds],
    }


def compliant_stack() -> list[tuple[str, str, dict[str, Any]]]:
    """One function per platform with its budget: a stack every policy accepts."""
    return [
        ("aws:lambda/function:Function", "fraud-scorer", lambda_fn()),
        ("aws:budgets/budget:Budget", "fraud-scorer-budget", aws_budget()),
        ("azure-native:web:WebApp", "churn-predictor", webapp()),
        ("azure-native:consumption:Budget", "churn-predictor-budget", azure_budget()),
        ("gcp:cloudrunv2/service:Service", "image-tagger", cloud_run()),
        ("gcp:billing/budget:Budget", "image-tagger-budget", gcp_budget()),
        ("kubernetes:serving.knative.dev/v1:Service", "text-classifier", knative()),
    ]
