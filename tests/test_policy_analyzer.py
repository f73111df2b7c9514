"""The pack through the real Analyzer protocol: started as the engine starts it
(``python -u -m pulumi.policy <engine> policies``), configured through ``Configure`` the way
``--policy-pack-config`` is passed, and fed the resources the program registers under Pulumi's mocks."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from inferops.analyzer import (
    UNKNOWN,
    PolicyConfigError,
    PolicyPackError,
    PolicyPackProcess,
    load_policy_pack_config,
)
from tests.test_policy_support import PACK_DIR, compliant_stack, urn
from tests.test_policy_support import pack as pack_module

ROOT = Path(__file__).resolve().parent.parent
STACKS = Path(__file__).resolve().parent / "stacks"
PACK_CONFIG = STACKS / "policy-pack-config.json"


@pytest.fixture(scope="module")
def pack():
    with PolicyPackProcess(PACK_DIR, config=load_policy_pack_config(PACK_CONFIG)) as process:
        yield process


def _run(stack_file: Path):
    from inferops.harness import run_program

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return run_program(stack_file)


@pytest.fixture(scope="module")
def dev_run():
    return _run(ROOT / "Pulumi.dev.yaml")


@pytest.fixture(scope="module")
def noncompliant_run():
    return _run(STACKS / "Pulumi.noncompliant.yaml")


def verdicts(pack, resources):
    """Every diagnostic for a stack, as (policy, level, resource name, message without the description)."""
    custom = [r for r in resources if r.custom]
    diagnostics = [d for r in custom for d in pack.analyze(r)] + pack.analyze_stack(custom)
    return sorted(
        (d.policy_name, d.enforcement_level, d.urn.rsplit("::", 1)[-1] if d.urn else "", d.detail) for d in diagnostics
    )


# --------------------------------------------------------------------------- the pack as a plugin


def test_analyzer_info_lists_every_policy_with_its_schema(pack):
    info = pack.info()
    assert info["name"] == pack_module.PACK_NAME and info["supports_config"]
    expected = {p.name: p for p in pack_module.build_policies()}
    assert [p["name"] for p in info["policies"]] == list(expected)
    for policy in info["policies"]:
        source = expected[policy["name"]]
        assert policy["description"] == source.description
        assert policy["enforcement_level"] == source.enforcement_level.value
        assert policy["remediation_steps"]
        assert policy["config_schema"]["properties"] == (source.config_schema.properties or {})
        for prop in policy["config_schema"]["properties"].values():
            assert "default" in prop and prop["description"]
    levels = {p["name"]: p["enforcement_level"] for p in info["policies"]}
    assert levels["finops-cost-estimate-coverage"] == "advisory"
    assert {lvl for name, lvl in levels.items() if name != "finops-cost-estimate-coverage"} == {"mandatory"}
    assert pack.plugin_version()


def test_pack_config_file_reaches_the_policies(pack):
    effective = pack.effective_config()
    assert effective["finops-cost-per-1k-inferences"] == (
        "advisory",
        {
            "maxUsdPer1kInferences": 0.1,
            "kubernetesVcpuHourUsd": 0.0316,
            "kubernetesGibHourUsd": 0.0042,
            "azureConsumptionMemoryMb": 1536.0,
        },
    )
    assert effective["security-log-retention"] == ("mandatory", {"maxRetentionDays": 400})
    log_group = SimpleNamespace(
        type="aws:cloudwatch/logGroup:LogGroup",
        name="lg",
        urn=urn("aws:cloudwatch/logGroup:LogGroup", "lg"),
        inputs={
            "retentionInDays": 3653,
            "tags": {"cost-center": "a", "owner": "b", "environment": "c", "monthly-budget-usd": "1"},
        },
    )
    [diagnostic] = pack.analyze(log_group)
    assert (diagnostic.policy_name, diagnostic.enforcement_level, diagnostic.urn, diagnostic.detail) == (
        "security-log-retention",
        "mandatory",
        log_group.urn,
        "'lg' keeps logs 3653 days, above the 400-day maximum: lower retentionInDays.",
    )


def test_enforcement_levels_from_config():
    config = {"all": "advisory", "security-log-retention": "disabled"}
    bare = SimpleNamespace(type="aws:cloudwatch/logGroup:LogGroup", name="lg", urn="urn:lg", inputs={})
    with PolicyPackProcess(PACK_DIR, config=config) as process:
        found = {(d.policy_name, d.enforcement_level) for d in process.analyze(bare)}
    assert found == {("finops-cost-allocation-tags", "advisory")}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON (line 1: Expecting property name enclosed in double quotes)"),
        ("[]", "the policy pack config must be a JSON object of policy names"),
        (
            '{"security-log-retention": "strict"}',
            "policy 'security-log-retention': enforcementLevel 'strict' is not one of advisory, mandatory, remediate, "
            "disabled",
        ),
        (
            '{"security-log-retention": 3}',
            "policy 'security-log-retention': expected an enforcement level or an object",
        ),
    ],
)
def test_bad_pack_config_file(tmp_path, content, message):
    path = tmp_path / "pack.json"
    path.write_text(content)
    with pytest.raises(PolicyConfigError) as error:
        load_policy_pack_config(path)
    assert str(error.value) == f"{path}: {message}"
    with pytest.raises(PolicyConfigError, match="cannot read policy pack config"):
        load_policy_pack_config(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"no-such-policy": "advisory"}, "policy pack config names unknown policy 'no-such-policy'"),
        (
            {"finops-cost-within-budget": {"headroomPercent": "ten"}},
            "policy 'finops-cost-within-budget': headroomPercent: 'ten' is not of type 'number'",
        ),
        (
            {"responsible-ai-fairness-floor": {"fairnessFloor": 1.5}},
            "policy 'responsible-ai-fairness-floor': fairnessFloor: 1.5 is greater than the maximum of 1.0",
        ),
    ],
)
def test_config_is_validated_against_the_schema(config, message):
    with pytest.raises(PolicyConfigError) as error, PolicyPackProcess(PACK_DIR, config=config):
        pass
    assert str(error.value) == message


def test_not_a_pack(tmp_path):
    with pytest.raises(PolicyPackError, match="not a policy pack"):
        PolicyPackProcess(tmp_path).start()


# --------------------------------------------------------------------------- the program's stacks


def test_dev_stack_has_no_violation(pack, dev_run):
    types = {r.type for r in dev_run.resources}
    assert {
        "aws:lambda/function:Function",
        "azure-native:web:WebApp",
        "gcp:cloudrunv2/service:Service",
        "kubernetes:serving.knative.dev/v1:Service",
    } <= types
    assert verdicts(pack, dev_run.resources) == []


# The pack names a function by the stack-scoped function-name its resources carry (design contract 1).
NONCOMPLIANT = sorted(
    [
        (
            "responsible-ai-fairness-floor",
            "mandatory",
            "biased-ranker-service",
            "'inferops-noncompliant-biased-ranker' has fairness-score 0.72, below the floor 0.8 for risk tier 'limited': mitigate or retrain the "
            "model and record the new evaluation before deploying.",
        ),
        (
            "responsible-ai-fairness-floor",
            "mandatory",
            "pricey-scorer-function",
            "'inferops-noncompliant-pricey-scorer' has fairness-score 0.85, below the floor 0.9 for risk tier 'high': mitigate or retrain the "
            "model and record the new evaluation before deploying.",
        ),
        (
            "security-no-public-endpoint",
            "mandatory",
            "open-sentiment-service",
            "'open-sentiment' is exposed outside the cluster: label it networking.knative.dev/visibility=cluster-local and "
            "reach it through an authenticating gateway (or list it in allowedPublicFunctions).",
        ),
        (
            "security-no-public-endpoint",
            "mandatory",
            "biased-ranker-public-invoker",
            "'inferops-noncompliant-biased-ranker' grants roles/run.invoker to allUsers: grant it to the calling service accounts instead (or "
            "list it in allowedPublicFunctions).",
        ),
        (
            "security-no-public-endpoint",
            "mandatory",
            "pricey-scorer-url",
            "'inferops-noncompliant-pricey-scorer' is a Lambda function URL with authorizationType NONE: use AWS_IAM (callers sign "
            "requests) or put an authenticating API in front (or list it in allowedPublicFunctions).",
        ),
        # Issue 10, item 6: principal '*' on any invoking action is public, not only InvokeFunctionUrl.
        (
            "security-no-public-endpoint",
            "mandatory",
            "pricey-scorer-public-invoke",
            "'inferops-noncompliant-pricey-scorer' grants lambda:InvokeFunction to everyone (principal '*'): name the calling "
            "account or service as principal, or scope it with sourceArn/sourceAccount/principalOrgId (or list it in "
            "allowedPublicFunctions).",
        ),
        (
            "security-no-public-endpoint",
            "mandatory",
            "pricey-scorer-public-url",
            "'inferops-noncompliant-pricey-scorer' grants lambda:InvokeFunctionUrl to everyone (principal '*', auth NONE): restrict "
            "the principal and use AWS_IAM auth (or list it in allowedPublicFunctions).",
        ),
        # 20M x 0.8 s x 10 GB = 160M GB-s x $0.0000166667 + 20M x $0.20/M = $2,670.67
        (
            "finops-cost-within-budget",
            "mandatory",
            "pricey-scorer-function",
            "'inferops-noncompliant-pricey-scorer' is estimated at $2,670.67/month (aws-lambda us-east-1, 20,000,000 requests x 800 ms, no free "
            "tier assumed), above its budget $100.00 minus 10% headroom ($90.00): raise finops.monthlyBudgetUsd, or lower "
            "memory, duration, minimum instances or expected traffic.",
        ),
        (
            "finops-cost-per-1k-inferences",
            "advisory",
            "pricey-scorer-function",
            "'inferops-noncompliant-pricey-scorer' costs an estimated $0.1335 per 1,000 inferences (aws-lambda us-east-1, 20,000,000 requests x "
            "800 ms), above the ceiling $0.1000: reduce memory, duration or always-on capacity, or raise "
            "maxUsdPer1kInferences in the pack config.",
        ),
        (
            "finops-stack-monthly-ceiling",
            "mandatory",
            "",
            "the stack's 3 functions are estimated at $2,663.82/month (free tiers applied once), above the stack ceiling "
            "$1,000.00: remove or shrink functions, or raise maxMonthlyUsd in the pack config.",
        ),
    ]
)


def test_noncompliant_stack_has_exactly_the_expected_violations(pack, noncompliant_run):
    assert verdicts(pack, noncompliant_run.resources) == NONCOMPLIANT


# --------------------------------------------------------------------------- preview: unknown values


#: Pulumi's secret envelope (``{SIG: SECRET_SIG, "value": ...}``): an unknown inside a secret stays
#: inside the envelope, as the engine marshals it (the registry password of an image build).
SECRET_SIG = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")


def _all_unknown(value):
    if isinstance(value, dict) and value.get(SECRET_SIG[0]) == SECRET_SIG[1]:
        return {SECRET_SIG[0]: SECRET_SIG[1], "value": _all_unknown(value.get("value"))}
    if isinstance(value, dict):
        return {k: _all_unknown(v) for k, v in value.items()}
    if isinstance(value, list):
        return UNKNOWN
    return UNKNOWN


def test_unknown_values_give_no_violation_and_no_error(pack, dev_run):
    """Each top-level input unknown in turn, then every leaf unknown, then whole maps unknown: the dev
    stack still has no diagnostic at all (no violation, no "can't run policy during preview")."""
    custom = [r for r in dev_run.resources if r.custom]
    for resource in custom:
        for key in resource.inputs:
            mutated = copy.deepcopy(resource)
            mutated.inputs[key] = UNKNOWN
            assert pack.analyze(mutated) == [], (resource.name, key)
        leaves = copy.deepcopy(resource)
        leaves.inputs = _all_unknown(leaves.inputs)
        assert pack.analyze(leaves) == [], resource.name
    stack = []
    for resource in custom:
        mutated = copy.deepcopy(resource)
        mutated.inputs = {k: UNKNOWN for k in mutated.inputs}
        mutated.outputs = {}
        stack.append(mutated)
    assert pack.analyze_stack(stack) == []


def test_unknowns_in_hand_built_functions(pack):
    """The compliant fixtures of every platform with their sizes, tags and budgets unknown."""
    resources = []
    for rtype, name, props in compliant_stack():
        mutated = json.loads(json.dumps(props))
        for key in (
            "tags",
            "labels",
            "annotations",
            "memorySize",
            "template",
            "amount",
            "limitAmount",
            "budgetFilter",
            "filter",
            "costFilters",
            "spec",
            "siteConfig",
            "httpsOnly",
        ):
            if key in mutated:
                mutated[key] = UNKNOWN
        if rtype.startswith("kubernetes:"):
            mutated["metadata"]["labels"] = UNKNOWN
            mutated["metadata"]["annotations"] = UNKNOWN
        resource = SimpleNamespace(type=rtype, name=name, urn=urn(rtype, name), inputs=mutated, outputs={})
        assert pack.analyze(resource) == [], name
        resources.append(resource)
    assert pack.analyze_stack(resources) == []


def test_estimate_costs_for_the_dev_stack(dev_run, dev_config):
    from components.spec import parse_stack_config
    from inferops.costs import estimate_functions

    estimates = estimate_functions(dev_run, parse_stack_config(dev_config), load_policy_pack_config(PACK_CONFIG))
    # fraud-scorer: Lambda arm64 1 GB, 3M x 120 ms; churn-predictor: Consumption at its declared 512 MB
    # (the component's memory-mb tag), 1M x 200 ms;
    # doc-classifier: Cloud Run 1 vCPU/1 GiB, 500k x 350 ms billed 400 ms; sentiment: one 0.5 vCPU/0.5 GiB pod
    # all month at the config's node price ($0.0316/vCPU-h, $0.0042/GiB-h) plus busy time.
    assert {name: round(e.monthly_usd, 2) for name, e in estimates.functions.items()} == {
        "fraud-scorer": 5.40,
        "churn-predictor": 1.80,
        "doc-classifier": 5.50,
        "sentiment": 13.08,
    }
    assert estimates.unpriced == {} and all(not e.warnings for e in estimates.functions.values())


def test_pack_is_self_contained():
    for source in PACK_DIR.rglob("*.py"):
        text = source.read_text()
        assert "import components" not in text and "from components" not in text, source
        assert "from inferops." not in text and "import inferops\n" not in text, source
    assert (PACK_DIR / "PulumiPolicy.yaml").is_file() and (PACK_DIR / "requirements.txt").is_file()
