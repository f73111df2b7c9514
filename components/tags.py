"""The metadata every taggable resource carries, and the physical names, in each cloud's charset.

One pure function, :func:`cloud_metadata`, turns a :class:`~components.spec.FunctionSpec` (plus the
Pulumi project and stack) into the tags (AWS, Azure), labels and annotations (GCP, Kubernetes) for the
logical keys of the design contract. :func:`function_key` is the stack-scoped ``function-name`` value
(design contract 1) and :func:`scoped_name` derives every other physical name from project, stack and
function. Each cloud's naming rules live here and nowhere else:

* AWS tag values: letters, digits, spaces and ``_ . : / = + - @``, at most 256 characters
  (docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html). Values keep the user's case.
* Azure tag names: no ``< > % & \\ ? /``, at most 512 characters; values at most 256, any case
  (learn.microsoft.com/azure/azure-resource-manager/management/tag-resources#limitations). Azure
  resources also carry :data:`MEMORY_KEY` (the declared memory the pack prices Consumption at).
* GCP labels: keys and values of lowercase letters, digits, ``_`` and ``-``, at most 63 characters
  (cloud.google.com/resource-manager/docs/labels-overview#requirements). Model id, cost center and
  environment get one deterministic label-safe form (:func:`gcp_label_value`) when they are not label
  values, and the original goes to annotations under the same key; any other value that cannot be a
  label value (a URL, an e-mail address, ``2.2.0``) is an annotation only.
* Kubernetes: every key as the annotation ``inferops.dev/<key>`` with the original value; labels
  (at most 63 characters of alphanumerics, ``-``, ``_``, ``.``, alphanumeric at both ends,
  kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set) hold
  the value, or for model id, cost center and environment its label-safe form
  (:func:`k8s_label_value`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from components.spec import FunctionSpec, Platform

#: The Pulumi project name (Pulumi.yaml); part of every function key and physical name.
PROJECT = "inferops"
MANAGED_BY = "inferops"
K8S_PREFIX = "inferops.dev/"
#: The key that only one function's resources (of one stack) carry; every budget filters on it.
FUNCTION_KEY = "function-name"
#: The key holding the Pulumi stack name.
STACK_KEY = "stack"
#: Azure only: the function's declared memory in MB. The Consumption plan has no memory setting, so
#: this tag is the only place the policy pack can read what the app is sized for (it prices
#: Consumption at this memory rounded up to 128 MB steps, at most 1,536 MB, and at the 1,536 MB
#: maximum without it). AWS and GCP carry memory in the resource itself (``memorySize``, the
#: container's memory limit), so they do not get this key.
MEMORY_KEY = "memory-mb"
#: Free-text keys that cost reports group by: on label clouds they get a label-safe form (with the
#: original in annotations). Any other key is a label only when its value already is a valid one
#: (URLs, e-mail addresses, versions and decimals are annotations only, so a reader never mistakes a
#: mangled number or URL for the value).
SAFE_FORM_KEYS = frozenset({"model-id", "cost-center", "environment", FUNCTION_KEY, STACK_KEY})

_AWS_VALUE_BAD = re.compile(r"[^\w .:/=+\-@]", re.ASCII)
_AZURE_NAME_BAD = re.compile(r"[<>%&\\?/]")
_GCP_LABEL = re.compile(r"^[a-z0-9_-]{0,63}$")
_K8S_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
_LABEL_MAX = 63


@dataclass(frozen=True)
class CloudMetadata:
    """Metadata in one cloud's form: ``tags`` (AWS, Azure) or ``labels`` + ``annotations``."""

    tags: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


def _digest(*parts: str, n: int = 8) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:n]


def function_key(project: str, stack: str, name: str) -> str:
    """The ``function-name`` value: unique per project and stack, a DNS label of at most 63 characters.

    ``<project>-<stack>-<name>`` when that is already lowercase ``[a-z0-9-]`` and fits; otherwise its
    sanitised form cut to 54 characters plus an 8-character hash of the three parts (design contract 1).
    """
    raw = f"{project}-{stack}-{name}"
    safe = re.sub(r"[^a-z0-9-]", "-", raw.lower())
    if safe == raw and len(raw) <= 63:
        return raw
    digest = hashlib.sha256(f"{project}\0{stack}\0{name}".encode()).hexdigest()[:8]
    return f"{safe[:54].rstrip('-')}-{digest}"


def scoped_name(
    project: str,
    stack: str,
    name: str,
    *,
    max_len: int,
    suffix: str = "",
    bad: str = r"[^a-z0-9-]",
    lower: bool = True,
) -> str:
    """A physical name ``<project>-<stack>-<name><suffix>`` in a cloud's charset and length limit.

    When the plain form contains a character outside the charset (``bad`` matches it) or is too long,
    the stem is sanitised and cut, and an 8-character hash of (project, stack, name, suffix) keeps two
    names apart that only differ in the cut-off tail or the replaced characters; the ``suffix`` stays
    readable at the end. The result never ends in ``-`` before the suffix.
    """
    stem = f"{project}-{stack}-{name}"
    plain = f"{stem}{suffix}"
    cased = plain.lower() if lower else plain
    if cased == plain and not re.search(bad, plain) and len(plain) <= max_len:
        return plain
    digest = _digest(project, stack, name, suffix)
    room = max_len - len(suffix) - len(digest) - 1
    if room < 1:
        raise ValueError(f"suffix {suffix!r} does not fit a {max_len}-character name")
    head = re.sub(bad, "-", stem.lower() if lower else stem)[:room].rstrip("-")
    return f"{head}-{digest}{suffix}" if head else f"{digest}{suffix}"


def truncate_with_hash(text: str, max_len: int, *, key: str | None = None) -> str:
    """``text`` if it fits, else its first characters, ``-`` and an 8-character hash of ``key or text``."""
    if len(text) <= max_len:
        return text
    digest = _digest(key if key is not None else text)
    return f"{text[: max_len - len(digest) - 1].rstrip('-_.')}-{digest}"


def gcp_label_value(value: str) -> str:
    """The one label-safe form of ``value`` for GCP labels: lowercase ``[a-z0-9_-]``, at most 63.

    A value already valid is kept; any other is lowercased, other characters become ``-``, and a
    value changed or cut this way gets a short hash of the original, so ``RecSys-Ranker-XL`` and
    ``recsys-ranker-xl`` stay distinct labels.
    """
    if _GCP_LABEL.fullmatch(value):
        return value
    safe = re.sub(r"[^a-z0-9_-]", "-", value.lower()).strip("-")
    digest = _digest(value)
    return f"{safe[: _LABEL_MAX - len(digest) - 1].rstrip('-')}-{digest}".lstrip("-")


def k8s_label_value(value: str) -> str:
    """The one label-safe form of ``value`` for Kubernetes labels (alphanumeric ends, ``-_.``, at most 63).

    Kubernetes label values keep upper case, so only characters outside the charset and the length
    change; a changed value gets a short hash of the original.
    """
    if _K8S_LABEL_VALUE.fullmatch(value):
        return value
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", value).strip("-_.")
    digest = _digest(value)
    head = safe[: _LABEL_MAX - len(digest) - 1].rstrip("-_.")
    return f"{head}-{digest}" if head else digest


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def logical_metadata(fn: FunctionSpec, *, stack: str, project: str = PROJECT) -> dict[str, str]:
    """The design contract's keys and their values for one function of ``stack``, cloud-neutral."""
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
        STACK_KEY: stack,
        FUNCTION_KEY: function_key(project, stack, fn.name),
    }
    if m.approval_ref:
        meta["approval-ref"] = m.approval_ref
    if fn.retraining is not None:
        meta["retraining-requested-at"] = fn.retraining.requested_at
        meta["retraining-report-digest"] = fn.retraining.report_digest.removeprefix("sha256:")[:16]
    return dict(sorted(meta.items()))


def cloud_metadata(
    fn: FunctionSpec, platform: Platform | None = None, *, stack: str, project: str = PROJECT
) -> CloudMetadata:
    """Metadata for ``fn`` of ``stack`` in the form ``platform`` (default: the function's own) accepts."""
    meta = logical_metadata(fn, stack=stack, project=project)
    platform = platform or fn.platform
    if platform == "aws":
        return CloudMetadata(tags={k: _AWS_VALUE_BAD.sub("_", v)[:256] for k, v in meta.items()})
    if platform == "azure":
        meta = dict(sorted({**meta, MEMORY_KEY: str(fn.runtime.memory_mb)}.items()))
        return CloudMetadata(tags={_AZURE_NAME_BAD.sub("-", k): v[:256] for k, v in meta.items()})
    if platform == "gcp":
        labels = {
            k: gcp_label_value(v) if k in SAFE_FORM_KEYS else v
            for k, v in meta.items()
            if k in SAFE_FORM_KEYS or _GCP_LABEL.fullmatch(v)
        }
        # The original beside its label-safe form: same key, in annotations.
        return CloudMetadata(labels=labels, annotations={k: v for k, v in meta.items() if labels.get(k) != v})
    return CloudMetadata(
        labels={
            K8S_PREFIX + k: k8s_label_value(v) if k in SAFE_FORM_KEYS else v
            for k, v in meta.items()
            if k in SAFE_FORM_KEYS or _K8S_LABEL_VALUE.fullmatch(v)
        },
        annotations={K8S_PREFIX + k: v for k, v in meta.items()},
    )


def gcp_labels_only(meta: CloudMetadata) -> dict[str, str]:
    """Labels for a GCP resource with neither annotations nor a description (a GCS bucket).

    Every key is a label: the label-safe form (:func:`gcp_label_value`) stands in for a value that
    only fits an annotation (an owner's e-mail address, a URL), so the cost-allocation keys are all
    present; the original values stay on the function's service.
    """
    return {**{k: gcp_label_value(v) for k, v in meta.annotations.items()}, **meta.labels}
