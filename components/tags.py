"""The metadata every taggable resource carries, in each cloud's charset.

One pure function, :func:`cloud_metadata`, turns a :class:`~components.spec.FunctionSpec` into the
tags (AWS, Azure), labels and annotations (GCP, Kubernetes) for the logical keys of the design
contract. Each cloud's naming rules live here and nowhere else:

* AWS tag keys/values: letters, digits, spaces and ``_ . : / = + - @``; values at most 256 characters.
* Azure tag names: no ``< > % & \\ ? /``, at most 512 characters; values at most 256.
* GCP labels: keys and values of lowercase letters, digits, ``_`` and ``-``, at most 63 characters.
  A value that cannot be a label value (a URL, an e-mail address, ``2.2.0``) goes to annotations
  under the same key and the label is omitted.
* Kubernetes: every key as the annotation ``inferops.dev/<key>``; label values (at most 63 characters
  of alphanumerics, ``-``, ``_``, ``.``, alphanumeric at both ends) also as labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from components.spec import FunctionSpec, Platform

MANAGED_BY = "inferops"
K8S_PREFIX = "inferops.dev/"
#: The key that only one function's resources carry; every budget filters on it.
FUNCTION_KEY = "function-name"

_AWS_VALUE_BAD = re.compile(r"[^\w .:/=+\-@]", re.ASCII)
_AZURE_NAME_BAD = re.compile(r"[<>%&\\?/]")
_GCP_LABEL = re.compile(r"^[a-z0-9_-]{0,63}$")
_K8S_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class CloudMetadata:
    """Metadata in one cloud's form: ``tags`` (AWS, Azure) or ``labels`` + ``annotations``."""

    tags: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def logical_metadata(fn: FunctionSpec) -> dict[str, str]:
    """The design contract's keys and their values for one function, cloud-neutral."""
    m, f = fn.model, fn.finops
    meta = {
        "cost-center": f.cost_center,
        "owner": f.owner,
        "environment": f.environment,
        "model-id": m.id,
        "model-version": m.version,
        "model-card-url": m.card_url,
        "data-lineage-url": m.lineage_url,
        "fairness-score": _number(m.fairness_score),
        "risk-tier": m.risk_tier,
        "monthly-budget-usd": _number(f.monthly_budget_usd),
        "expected-monthly-requests": str(f.expected_monthly_requests),
        "avg-duration-ms": _number(f.avg_duration_ms),
        "managed-by": MANAGED_BY,
        FUNCTION_KEY: fn.name,
    }
    if m.approval_ref:
        meta["approval-ref"] = m.approval_ref
    if fn.retraining is not None:
        meta["retraining-requested-at"] = fn.retraining.requested_at
        meta["retraining-report-digest"] = fn.retraining.report_digest.removeprefix("sha256:")[:16]
    return dict(sorted(meta.items()))


def cloud_metadata(fn: FunctionSpec, platform: Platform | None = None) -> CloudMetadata:
    """Metadata for ``fn`` in the form ``platform`` (default: the function's own) accepts."""
    meta = logical_metadata(fn)
    platform = platform or fn.platform
    if platform == "aws":
        return CloudMetadata(tags={k: _AWS_VALUE_BAD.sub("_", v)[:256] for k, v in meta.items()})
    if platform == "azure":
        return CloudMetadata(tags={_AZURE_NAME_BAD.sub("-", k): v[:256] for k, v in meta.items()})
    if platform == "gcp":
        labels = {k: v for k, v in meta.items() if _GCP_LABEL.match(v)}
        return CloudMetadata(labels=labels, annotations={k: v for k, v in meta.items() if k not in labels})
    return CloudMetadata(
        labels={K8S_PREFIX + k: v for k, v in meta.items() if _K8S_LABEL_VALUE.match(v)},
        annotations={K8S_PREFIX + k: v for k, v in meta.items()},
    )
