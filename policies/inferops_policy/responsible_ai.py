"""Responsible-AI policies: model identity, documentation links, risk tier, fairness, human approval.

They apply to every inference function resource (Lambda function, Azure function app, Cloud Run
service, Knative Service), whoever declared it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from pulumi_policy import PolicyConfigSchema, ReportViolation, ResourceValidationArgs

from .common import config_value, defaults_of, fmt_num, label, shown
from .metadata import is_function, metadata_value, read_metadata
from .props import MISSING, UNKNOWN, as_number, plain

RISK_TIERS = ("minimal", "limited", "high")
DEFAULT_FAIRNESS_FLOOR = 0.8
DEFAULT_HIGH_RISK_FAIRNESS_FLOOR = 0.9

# Which stack-config field feeds each key, so a message can say where to fix it.
_FIELD_OF = {
    "model-id": "model.id",
    "model-version": "model.version",
    "model-card-url": "model.cardUrl",
    "data-lineage-url": "model.lineageUrl",
    "risk-tier": "model.riskTier",
    "fairness-score": "model.fairnessScore",
    "approval-ref": "model.approvalRef",
}

METADATA_SCHEMA = PolicyConfigSchema(properties={})
FAIRNESS_SCHEMA = PolicyConfigSchema(
    properties={
        "fairnessFloor": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": DEFAULT_FAIRNESS_FLOOR,
            "description": "Lowest acceptable fairness-score for minimal and limited risk functions.",
        },
        "highRiskFairnessFloor": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": DEFAULT_HIGH_RISK_FAIRNESS_FLOOR,
            "description": "Lowest acceptable fairness-score for high risk functions.",
        },
    }
)
APPROVAL_SCHEMA = PolicyConfigSchema(properties={})


def is_https_url(value: Any) -> bool:
    """True for an absolute https URL with a host."""
    if not isinstance(value, str):
        return False
    try:
        parsed = urlparse(value)
        host = parsed.hostname  # parses the netloc: raises on e.g. an unclosed IPv6 bracket
    except ValueError:
        return False  # "https://[" is not a URL: reported as "not an https URL"
    return parsed.scheme == "https" and bool(host)


def parse_fairness(value: Any) -> Any:
    """The fairness score as a float in [0, 1], ``None`` when invalid, or UNKNOWN/MISSING."""
    number = as_number(value)
    if number is UNKNOWN or number is MISSING:
        return number
    if number is None or not 0.0 <= number <= 1.0:
        return None
    return number


def _missing(fn: str, key: str) -> str:
    return (
        f"'{fn}' has no '{key}' metadata key: set {_FIELD_OF[key]} in the stack config "
        f"(or add the '{key}' tag/label/annotation to a hand-written resource)."
    )


def rai_metadata_validator(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Model identity, https links to the model card and data lineage, a valid risk tier and fairness score."""
    props = plain(args.props)
    if not is_function(args.resource_type, props):
        return
    fn = label(args.resource_type, props, args.name)
    meta = read_metadata(args.resource_type, props, defaults_of(args))

    for key in ("model-id", "model-version", "model-card-url", "data-lineage-url", "risk-tier", "fairness-score"):
        value = metadata_value(meta, key)
        if value is MISSING:
            report_violation(_missing(fn, key), None)
            continue
        if value is UNKNOWN:
            continue
        if key in ("model-card-url", "data-lineage-url") and not is_https_url(value):
            report_violation(
                f"'{fn}' has {key}='{shown(value)}', which is not an https URL: link the published "
                f"{'model card' if key == 'model-card-url' else 'data lineage record'} over https.",
                None,
            )
        if key == "risk-tier" and not (isinstance(value, str) and value in RISK_TIERS):
            report_violation(f"'{fn}' has risk-tier='{shown(value)}': use one of {', '.join(RISK_TIERS)}.", None)
        if key == "fairness-score" and parse_fairness(value) is None:
            report_violation(
                f"'{fn}' has fairness-score='{shown(value)}', which is not a number in [0, 1]: record the "
                "score from the model's fairness evaluation.",
                None,
            )


def rai_fairness_floor_validator(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """The fairness score is at or above the floor for the function's risk tier."""
    props = plain(args.props)
    if not is_function(args.resource_type, props):
        return
    meta = read_metadata(args.resource_type, props, defaults_of(args))
    tier = metadata_value(meta, "risk-tier")
    score = parse_fairness(metadata_value(meta, "fairness-score"))
    # Malformed or absent values are the metadata policy's to report; here they mean "cannot judge".
    if not isinstance(tier, str) or tier not in RISK_TIERS or not isinstance(score, float):
        return
    if tier == "high":
        floor = float(config_value(args, "highRiskFairnessFloor", DEFAULT_HIGH_RISK_FAIRNESS_FLOOR))
    else:
        floor = float(config_value(args, "fairnessFloor", DEFAULT_FAIRNESS_FLOOR))
    if score < floor:
        fn = label(args.resource_type, props, args.name)
        report_violation(
            f"'{fn}' has fairness-score {fmt_num(score)}, below the floor {fmt_num(floor)} for risk tier "
            f"'{tier}': mitigate or retrain the model and record the new evaluation before deploying.",
            None,
        )


def rai_high_risk_approval_validator(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """A high-risk function links the human review that approved it (an https ``approval-ref``)."""
    props = plain(args.props)
    if not is_function(args.resource_type, props):
        return
    meta = read_metadata(args.resource_type, props, defaults_of(args))
    if metadata_value(meta, "risk-tier") != "high":
        return
    fn = label(args.resource_type, props, args.name)
    ref = metadata_value(meta, "approval-ref")
    if ref is MISSING:
        report_violation(
            f"'{fn}' is high risk but has no 'approval-ref': get a human review and set model.approvalRef "
            "to its link (e.g. the approved pull request).",
            None,
        )
    elif ref is not UNKNOWN and not is_https_url(ref):
        report_violation(
            f"'{fn}' has approval-ref='{shown(ref)}', which is not an https link: point it at the human review record.",
            None,
        )
