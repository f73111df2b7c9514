"""Responsible-AI policies: one compliant fixture per platform, one mutation per violation path."""

from __future__ import annotations

import pytest

from tests.test_policy_support import cloud_run, knative, lambda_fn, run_resource, webapp
from tests.test_policy_support import responsible_ai as rai

LAMBDA = "aws:lambda/function:Function"
PLATFORMS = [
    (LAMBDA, lambda_fn),
    ("azure-native:web:WebApp", webapp),
    ("gcp:cloudrunv2/service:Service", cloud_run),
    ("kubernetes:serving.knative.dev/v1:Service", knative),
]
VALIDATORS = (rai.rai_metadata_validator, rai.rai_fairness_floor_validator, rai.rai_high_risk_approval_validator)


@pytest.mark.parametrize(("rtype", "make"), PLATFORMS)
def test_compliant_function_passes_every_rai_policy(rtype, make):
    for validator in VALIDATORS:
        assert run_resource(validator, rtype, make()) == []


@pytest.mark.parametrize(("rtype", "make"), PLATFORMS)
@pytest.mark.parametrize(
    ("key", "field"),
    [
        ("model-id", "model.id"),
        ("model-version", "model.version"),
        ("model-card-url", "model.cardUrl"),
        ("data-lineage-url", "model.lineageUrl"),
        ("risk-tier", "model.riskTier"),
        ("fairness-score", "model.fairnessScore"),
    ],
)
def test_missing_key_is_named(rtype, make, key, field):
    props = make(drop=(key,))
    name = props.get("name") or props["metadata"]["name"]
    assert run_resource(rai.rai_metadata_validator, rtype, props) == [
        f"'{name}' has no '{key}' metadata key: set {field} in the stack config "
        f"(or add the '{key}' tag/label/annotation to a hand-written resource)."
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"model-card-url": "http://models.example.com/card"},
            "'fraud-scorer' has model-card-url='http://models.example.com/card', which is not an https URL: link the "
            "published model card over https.",
        ),
        (
            {"data-lineage-url": "lineage-42"},
            "'fraud-scorer' has data-lineage-url='lineage-42', which is not an https URL: link the published data "
            "lineage record over https.",
        ),
        ({"risk-tier": "critical"}, "'fraud-scorer' has risk-tier='critical': use one of minimal, limited, high."),
        (
            {"fairness-score": "1.2"},
            "'fraud-scorer' has fairness-score='1.2', which is not a number in [0, 1]: record the score from the "
            "model's fairness evaluation.",
        ),
        (
            {"fairness-score": "good"},
            "'fraud-scorer' has fairness-score='good', which is not a number in [0, 1]: record the score from the "
            "model's fairness evaluation.",
        ),
    ],
)
def test_malformed_values(overrides, message):
    assert run_resource(rai.rai_metadata_validator, LAMBDA, lambda_fn(**overrides)) == [message]


@pytest.mark.parametrize(
    ("tier", "score", "config", "expected_floor"),
    [
        ("high", "0.85", None, "0.9"),
        ("limited", "0.79", None, "0.8"),
        ("minimal", "0.5", None, "0.8"),
        ("high", "0.93", {"highRiskFairnessFloor": 0.95}, "0.95"),
        ("limited", "0.85", {"fairnessFloor": 0.9}, "0.9"),
    ],
)
def test_fairness_below_floor(tier, score, config, expected_floor):
    props = lambda_fn(**{"risk-tier": tier, "fairness-score": score})
    assert run_resource(rai.rai_fairness_floor_validator, LAMBDA, props, config=config) == [
        f"'fraud-scorer' has fairness-score {float(score):g}, below the floor {expected_floor} for risk tier "
        f"'{tier}': mitigate or retrain the model and record the new evaluation before deploying."
    ]


@pytest.mark.parametrize(("tier", "score"), [("high", "0.9"), ("limited", "0.8"), ("minimal", "0.85")])
def test_fairness_at_floor_passes(tier, score):
    props = lambda_fn(**{"risk-tier": tier, "fairness-score": score})
    assert run_resource(rai.rai_fairness_floor_validator, LAMBDA, props) == []


def test_high_risk_needs_approval_ref():
    assert run_resource(rai.rai_high_risk_approval_validator, LAMBDA, lambda_fn(drop=("approval-ref",))) == [
        "'fraud-scorer' is high risk but has no 'approval-ref': get a human review and set model.approvalRef to "
        "its link (e.g. the approved pull request)."
    ]
    assert run_resource(rai.rai_high_risk_approval_validator, LAMBDA, lambda_fn(**{"approval-ref": "PR 42"})) == [
        "'fraud-scorer' has approval-ref='PR 42', which is not an https link: point it at the human review record."
    ]
    limited = lambda_fn(drop=("approval-ref",), **{"risk-tier": "limited"})
    assert run_resource(rai.rai_high_risk_approval_validator, LAMBDA, limited) == []


def test_hand_written_function_without_metadata_is_judged():
    bare = {"name": "legacy", "memorySize": 512, "role": "arn:aws:iam::1:role/x"}
    messages = run_resource(rai.rai_metadata_validator, LAMBDA, bare, name="legacy")
    assert len(messages) == 6 and all(m.startswith("'legacy' has no '") for m in messages)


def test_non_function_resources_are_ignored():
    assert run_resource(rai.rai_metadata_validator, "aws:iam/role:Role", {"name": "r"}) == []
    site = webapp()
    site["kind"] = "app,linux"  # a web site, not a function app
    assert run_resource(rai.rai_metadata_validator, "azure-native:web:WebApp", site) == []
