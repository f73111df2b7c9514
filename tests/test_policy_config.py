"""Config that cannot silently misbehave (issue 10, item 8) and an analyzer client that behaves as
the engine does (item 9)."""

from __future__ import annotations

import textwrap
from types import SimpleNamespace

import pytest

from inferops.analyzer import PolicyConfigError, PolicyPackProcess
from tests.test_policy_support import PACK_DIR
from tests.test_policy_support import pack as pack_module


@pytest.mark.parametrize(
    ("config", "error"),
    [
        (
            {"responsible-ai-fairness-floor": {"fairnesFloor": 0.7}},
            "policy 'responsible-ai-fairness-floor': unknown property 'fairnesFloor'; known: fairnessFloor, "
            "highRiskFairnessFloor",
        ),
        (
            {"responsible-ai-metadata": {"strict": True}},
            "policy 'responsible-ai-metadata': unknown property 'strict'; it takes no properties",
        ),
        (
            {"security-no-plaintext-secrets": {"secretNamePattern": "(password"}},
            "policy 'security-no-plaintext-secrets': secretNamePattern is not a valid regular expression: missing ), "
            "unterminated subpattern at position 0",
        ),
        (
            {"security-azure-https-tls": {"minTlsVersion": "1.4"}},
            "policy 'security-azure-https-tls': minTlsVersion: '1.4' is not one of ['1.2', '1.3']",
        ),
        (
            {"finops-cost-within-budget": {"headroomPercent": "10"}},
            "policy 'finops-cost-within-budget': headroomPercent: '10' is not of type 'number'",
        ),
        (
            {"finops-cost-allocation-tags": {"requiredKeys": "owner"}},
            "policy 'finops-cost-allocation-tags': requiredKeys: 'owner' is not of type 'array'",
        ),
        (
            {"finops-cost-allocation-tags": {"requiredKeys": ["owner", 5]}},
            "policy 'finops-cost-allocation-tags': requiredKeys[1]: 5 is not of type 'string'",
        ),
        (
            {"security-log-retention": {"maxRetentionDays": 1.5}},
            "policy 'security-log-retention': maxRetentionDays: 1.5 is not of type 'integer'",
        ),
    ],
)
def test_pack_config_errors_name_the_policy_and_key(config, error):
    assert pack_module.validate_policy_config(config) == [error]


def test_valid_config_has_no_error():
    config = {
        p.name: {k: v["default"] for k, v in (p.config_schema.properties or {}).items()}
        for p in pack_module.build_policies()
    }
    assert pack_module.validate_policy_config(config) == []


def test_configure_fails_on_an_unknown_property():
    # The engine cannot reject it (the protocol's schema has no additionalProperties), so the pack
    # does, at Configure: the preview stops once with the key named, instead of ignoring it.
    with (
        pytest.raises(PolicyConfigError) as error,
        PolicyPackProcess(PACK_DIR, config={"responsible-ai-fairness-floor": {"fairnesFloor": 0.7}}),
    ):
        pass
    assert str(error.value) == (
        "inferops-guardrails config: policy 'responsible-ai-fairness-floor': unknown property 'fairnesFloor'; "
        "known: fairnessFloor, highRiskFairnessFloor"
    )


def test_configure_fails_on_an_invalid_regex():
    with (
        pytest.raises(PolicyConfigError, match="secretNamePattern is not a valid regular expression"),
        PolicyPackProcess(PACK_DIR, config={"security-no-plaintext-secrets": {"secretNamePattern": "[a-"}}),
    ):
        pass


# --------------------------------------------------------------------------- the client as the engine


def test_every_policy_gets_a_properties_struct():
    with PolicyPackProcess(PACK_DIR) as process:
        request = process.configure_request()
    assert set(request.policyConfig) == {p.name for p in pack_module.build_policies()}
    for name in request.policyConfig:
        assert request.policyConfig[name].HasField("properties"), name


TEST_PACK = """
from pulumi_policy import EnforcementLevel, PolicyConfigSchema, PolicyPack, ResourceValidationPolicy


def big(args, report_violation):
    size = args.get_config()["replyBytes"]
    report_violation("x" * int(size), None)  # Struct numbers arrive as floats


def threshold(args, report_violation):
    report_violation(f"threshold={args.get_config()['threshold']:g}", None)


PolicyPack(
    name="engine-semantics",
    enforcement_level=EnforcementLevel.ADVISORY,
    policies=[
        ResourceValidationPolicy(
            name="big-reply",
            description="replies with a large message",
            validate=big,
            config_schema=PolicyConfigSchema(properties={"replyBytes": {"type": "integer", "default": 10}}),
        ),
        ResourceValidationPolicy(
            name="configured",
            description="reports its threshold",
            validate=threshold,
            config_schema=PolicyConfigSchema(properties={"threshold": {"type": "number", "default": 1}}),
        ),
    ],
    initial_config={"configured": {"threshold": 5}, "big-reply": {"replyBytes": 6 * 1024 * 1024}},
)
"""


@pytest.fixture
def engine_pack(tmp_path):
    (tmp_path / "PulumiPolicy.yaml").write_text("runtime: python\nversion: 0.0.1\n")
    (tmp_path / "__main__.py").write_text(textwrap.dedent(TEST_PACK))
    return tmp_path


def test_initial_config_and_large_replies(engine_pack):
    resource = SimpleNamespace(type="custom:a:B", name="r", urn="urn:pulumi:dev::p::custom:a:B::r", inputs={})
    with PolicyPackProcess(engine_pack) as process:
        # Engine order: schema default (1), then the pack's initial config (5).
        assert process.effective_config()["configured"] == ("advisory", {"threshold": 5})
        found = {d.policy_name: d.detail for d in process.analyze(resource)}
    assert found["configured"] == "threshold=5"
    assert len(found["big-reply"]) == 6 * 1024 * 1024  # above gRPC's 4 MiB default
    with PolicyPackProcess(engine_pack, config={"configured": {"threshold": 7}, "big-reply": "disabled"}) as process:
        # The --policy-pack-config file comes last.
        assert {d.policy_name: d.detail for d in process.analyze(resource)} == {"configured": "threshold=7"}
