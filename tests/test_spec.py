"""Stack config validation: the dev stack parses; each invalid config fails naming its field."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from components.spec import SpecError, default_cpu, parse_stack_config
from inferops.harness import ProgramError
from tests.conftest import function_config

Edit = Callable[[dict[str, Any]], None]


def _fn(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda c: function_config(c, name)


aws, azure, gcp, k8s = _fn("fraud-scorer"), _fn("churn-predictor"), _fn("doc-classifier"), _fn("sentiment")


def _set(getter: Callable[[dict[str, Any]], dict[str, Any]], path: str, value: Any) -> Edit:
    def edit(c: dict[str, Any]) -> None:
        node = getter(c)
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value

    return edit


REGISTRY_MESSAGE = (
    "must be a registry host[:port] with an optional path and no tag or digest (ghcr.io/example, "
    "registry.example.com:5000/ml)"
)


def _delete(getter: Callable[[dict[str, Any]], dict[str, Any]], path: str) -> Edit:
    def edit(c: dict[str, Any]) -> None:
        node = getter(c)
        *parents, leaf = path.split(".")
        for p in parents:
            node = node[p]
        del node[leaf]

    return edit


def _duplicate(c: dict[str, Any]) -> None:
    c["inferops:functions"].append(copy.deepcopy(aws(c)))


INVALID: list[tuple[str, Edit, str]] = [
    ("unknown key", _set(aws, "modle", {}), "inferops:functions[fraud-scorer].modle: unknown key"),
    (
        "unknown nested key",
        _set(aws, "runtime.memory", 512),
        "inferops:functions[fraud-scorer].runtime.memory: unknown key",
    ),
    (
        "wrong type",
        _set(aws, "runtime.memoryMb", "1024"),
        "inferops:functions[fraud-scorer].runtime.memoryMb: Input should be a valid integer (got '1024')",
    ),
    (
        "unquoted version",
        _set(aws, "model.version", 2.2),
        "inferops:functions[fraud-scorer].model.version: Input should be a valid string (got 2.2)",
    ),
    (
        "lambda memory",
        _set(aws, "runtime.memoryMb", 10241),
        "inferops:functions[fraud-scorer].runtime.memoryMb: must be 128-10240 on AWS Lambda (got 10241)",
    ),
    (
        "lambda timeout",
        _set(aws, "runtime.timeoutSeconds", 901),
        "inferops:functions[fraud-scorer].runtime.timeoutSeconds: must be at most 900 on AWS Lambda (got 901)",
    ),
    (
        "azure consumption memory",
        _set(azure, "runtime.memoryMb", 2048),
        "inferops:functions[churn-predictor].runtime.memoryMb: Azure Consumption allows at most 1536 (got 2048)",
    ),
    (
        "azure flex memory",
        _set(azure, "runtime", {"memoryMb": 1024, "timeoutSeconds": 60, "azurePlan": "flexConsumption"}),
        "inferops:functions[churn-predictor].runtime.memoryMb: Flex Consumption instances have 512, 2048 or 4096"
        " (got 1024)",
    ),
    (
        "azure arm",
        _set(azure, "runtime.architecture", "arm64"),
        "inferops:functions[churn-predictor].runtime.architecture: Azure Functions runs x86_64 only",
    ),
    (
        "cloud run pair",
        _set(gcp, "runtime.memoryMb", 8192),
        "inferops:functions[doc-classifier].runtime.memoryMb: Cloud Run with 1 vCPU needs 128-4096 MB",
    ),
    (
        "cloud run timeout",
        _set(gcp, "runtime.timeoutSeconds", 3601),
        "inferops:functions[doc-classifier].runtime.timeoutSeconds: must be at most 3600 on Cloud Run (got 3601)",
    ),
    (
        # runtime.image is optional on kubernetes only where the image has somewhere to go.
        "kubernetes build without a registry",
        lambda c: c.pop("inferops:containerRegistry"),
        "inferops:containerRegistry: required when a kubernetes function has no runtime.image"
        " (functions[sentiment]): the registry the image built from functions/Dockerfile is pushed to;"
        " or set that function's runtime.image",
    ),
    (
        "registry with a tag",
        lambda c: c.update({"inferops:containerRegistry": "ghcr.io/example:latest"}),
        f"inferops:containerRegistry: {REGISTRY_MESSAGE} (got 'ghcr.io/example:latest')",
    ),
    (
        "registry that is a Docker Hub namespace",
        lambda c: c.update({"inferops:containerRegistry": "example"}),
        f"inferops:containerRegistry: {REGISTRY_MESSAGE} (got 'example')",
    ),
    (
        "knative timeout",
        _set(k8s, "runtime.timeoutSeconds", 900),
        "inferops:functions[sentiment].runtime.timeoutSeconds: Knative's max-revision-timeout-seconds is 600 (got 900)",
    ),
    (
        "canary percent range",
        _set(aws, "traffic.canaryPercent", 101),
        "inferops:functions[fraud-scorer].traffic.canaryPercent: Input should be less than or equal to 100 (got 101)",
    ),
    (
        "canary without stable",
        _delete(aws, "model.stableVersion"),
        "inferops:functions[fraud-scorer].traffic.canaryPercent: a canary needs model.stableVersion (the rollback"
        " target)",
    ),
    (
        "fairness range",
        _set(gcp, "model.fairnessScore", 1.2),
        "inferops:functions[doc-classifier].model.fairnessScore: Input should be less than or equal to 1 (got 1.2)",
    ),
    (
        "risk tier",
        _set(gcp, "model.riskTier", "severe"),
        "inferops:functions[doc-classifier].model.riskTier: Input should be 'minimal', 'limited' or 'high'"
        " (got 'severe')",
    ),
    (
        "high risk without approval",
        _delete(aws, "model.approvalRef"),
        "inferops:functions[fraud-scorer].model: approvalRef: a high-risk model needs a link to its human review",
    ),
    (
        "card url not https",
        _set(k8s, "model.cardUrl", "http://models.example.com/card"),
        "inferops:functions[sentiment].model.cardUrl: cardUrl must be an https:// URL"
        " (got 'http://models.example.com/card')",
    ),
    (
        "budget zero",
        _set(aws, "finops.monthlyBudgetUsd", 0),
        "inferops:functions[fraud-scorer].finops.monthlyBudgetUsd: Input should be greater than 0 (got 0)",
    ),
    (
        "thresholds unordered",
        _set(aws, "finops.alertThresholdsPercent", [80, 50]),
        "inferops:functions[fraud-scorer].finops.alertThresholdsPercent: must be strictly increasing",
    ),
    (
        "missing finops field",
        _delete(azure, "finops.expectedMonthlyRequests"),
        "inferops:functions[churn-predictor].finops.expectedMonthlyRequests: Field required",
    ),
    (
        "bad name",
        _set(k8s, "name", "Sentiment_Model"),
        "inferops:functions[Sentiment_Model].name: must be a DNS label: lowercase letters, digits and '-', starting"
        " with a letter, at most 63 characters (got 'Sentiment_Model')",
    ),
    ("duplicate name", _duplicate, "inferops:functions[fraud-scorer].name: duplicate function name 'fraud-scorer'"),
    (
        "wrong platform",
        _set(k8s, "platform", "heroku"),
        "inferops:functions[sentiment].platform: Input should be 'aws', 'azure', 'gcp' or 'kubernetes' (got 'heroku')",
    ),
    (
        "aws region",
        _set(aws, "region", "eastus"),
        "inferops:functions[fraud-scorer].region: 'eastus' is not a aws region name",
    ),
    (
        "artifact scheme",
        _set(aws, "model.artifactUri", "gs://bucket/model.json"),
        "inferops:functions[fraud-scorer].model.artifactUri: must start with s3:// on aws",
    ),
    (
        "scaling order",
        _set(k8s, "scaling", {"minInstances": 5, "maxInstances": 2}),
        "inferops:functions[sentiment].scaling: minInstances must not exceed maxInstances",
    ),
    (
        "unknown default",
        lambda c: c["inferops:defaults"].update(costCentre="x"),
        "inferops:defaults.costCentre: unknown key (defaults hold finops fields)",
    ),
    (
        "unknown project key",
        lambda c: c.update({"inferops:function": []}),
        "inferops:function: unknown inferops config key (known: defaults, functions, budgetAlertEmails,"
        " gcpBillingAccount, kubernetesNodePrice, awsActivateCostAllocationTags, containerRegistry, imagePullSecret)",
    ),
    (
        "gcp without billing account",
        lambda c: c.pop("inferops:gcpBillingAccount"),
        "inferops:gcpBillingAccount: required when a function runs on gcp (its budget needs it)",
    ),
    (
        "bad alert email",
        lambda c: c.update({"inferops:budgetAlertEmails": ["not-an-address"]}),
        "inferops:budgetAlertEmails: 'not-an-address' is not an e-mail address",
    ),
]


def _flex_canary(c: dict[str, Any]) -> None:
    fn = azure(c)
    fn["runtime"] = {"memoryMb": 2048, "timeoutSeconds": 60, "azurePlan": "flexConsumption"}
    fn["traffic"] = {"canaryPercent": 10}
    fn["model"]["version"] = "1.5.0"


INVALID += [
    (
        "flex canary",
        _flex_canary,
        "inferops:functions[churn-predictor].traffic.canaryPercent: Flex Consumption has no deployment slots; run"
        " canaries on runtime.azurePlan consumption or set canaryPercent to 0",
    ),
    (
        "aws notification limit",
        _set(aws, "finops.alertThresholdsPercent", list(range(10, 120, 10))),
        "inferops:functions[fraud-scorer].finops.alertThresholdsPercent: AWS Budgets allows at most 10 notifications"
        " per budget",
    ),
    (
        "gcp channel limit",
        lambda c: c.update({"inferops:budgetAlertEmails": [f"a{i}@example.com" for i in range(6)]}),
        "inferops:budgetAlertEmails: a GCP budget notifies at most 5 channels; list at most 5",
    ),
    (
        "artifact placeholder",
        _set(aws, "model.artifactUri", "s3://example-models/{model}/{version}/model.json"),
        "inferops:functions[fraud-scorer].model.artifactUri: the only placeholder allowed is {version}, and no spaces"
        " (got 's3://example-models/{model}/{version}/model.json')",
    ),
]


def test_artifact_template_resolves_per_version(dev_config: dict[str, Any]) -> None:
    fn = parse_stack_config(dev_config).functions[0]
    assert fn.model.artifact_uri == "s3://example-models/fraud-scorer/{version}/model.json"
    assert fn.model.artifact_for("2.1.0") == "s3://example-models/fraud-scorer/2.1.0/model.json"


def test_dev_stack_parses(dev_config: dict[str, Any]) -> None:
    stack = parse_stack_config(dev_config)
    assert [f.platform for f in stack.functions] == ["aws", "azure", "gcp", "kubernetes"]
    fraud = stack.functions[0]
    assert fraud.canary_active and fraud.canary_percent == 10
    # defaults merge under the function's own finops block, the function's keys win
    assert fraud.finops.cost_center == "fraud-analytics"
    assert stack.functions[1].finops.cost_center == "ml-platform"
    assert stack.functions[1].finops.owner == "ml-platform@example.com"


@pytest.mark.parametrize(("case", "edit", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_config_names_the_field(dev_config: dict[str, Any], case: str, edit: Edit, message: str) -> None:
    config = copy.deepcopy(dev_config)
    edit(config)
    with pytest.raises(SpecError) as err:
        parse_stack_config(config)
    assert str(err.value) == message
    assert "\n" not in str(err.value)


def test_rollback_edits_validate(dev_config: dict[str, Any]) -> None:
    stopped = copy.deepcopy(dev_config)
    aws(stopped)["traffic"]["canaryPercent"] = 0
    assert parse_stack_config(stopped).functions[0].canary_percent == 0

    # The drift loop's rollback sets both (drift/remediate.py).
    rolled = copy.deepcopy(dev_config)
    aws(rolled)["model"]["version"] = aws(rolled)["model"]["stableVersion"]
    aws(rolled)["traffic"]["canaryPercent"] = 0
    fn = parse_stack_config(rolled).functions[0]
    assert not fn.canary_active and fn.canary_percent == 0 and fn.model.version == "2.1.0"


def test_secret_inferops_value_is_refused(dev_config: dict[str, Any]) -> None:
    config = copy.deepcopy(dev_config)
    config["inferops:gcpBillingAccount"] = {"secure": "AAABAx"}
    with pytest.raises(SpecError, match=r"^inferops:gcpBillingAccount: must not be a secret"):
        parse_stack_config(config)


def test_other_namespaces_and_secrets_are_ignored(dev_config: dict[str, Any]) -> None:
    config = copy.deepcopy(dev_config)
    config["aws:secretKey"] = {"secure": "AAABAx"}
    assert len(parse_stack_config(config).functions) == 4


def test_default_cpu_is_a_valid_cloud_run_pair(dev_config: dict[str, Any]) -> None:
    config = copy.deepcopy(dev_config)
    del gcp(config)["runtime"]["cpu"]
    gcp(config)["runtime"]["memoryMb"] = 6144
    assert default_cpu(parse_stack_config(config).functions[2]) == 2.0


def test_invalid_config_registers_no_resource(run_edited: Any) -> None:
    """The program fails before registering anything when the spec does not validate."""
    from inferops import harness

    seen: list[int] = []
    real = harness.RecordingMocks.new_resource

    def spy(self: Any, args: Any) -> Any:
        seen.append(1)
        return real(self, args)

    harness.RecordingMocks.new_resource = spy  # type: ignore[method-assign]
    try:
        with pytest.raises(ProgramError, match=r"^inferops:functions\[fraud-scorer\]\.runtime\.memoryMb"):
            run_edited(_set(aws, "runtime.memoryMb", 20000))
    finally:
        harness.RecordingMocks.new_resource = real  # type: ignore[method-assign]
    assert seen == []


def test_canary_without_a_candidate_names_canary_percent(dev_config: dict[str, Any]) -> None:
    """``stableVersion == version`` with a canary share has nothing to send the share to."""
    config = copy.deepcopy(dev_config)
    aws(config)["model"]["version"] = aws(config)["model"]["stableVersion"]
    with pytest.raises(SpecError) as err:
        parse_stack_config(config)
    assert str(err.value).startswith("inferops:functions[fraud-scorer].traffic.canaryPercent: model.stableVersion")


@pytest.mark.parametrize(("length", "ok"), [(62, True), (63, True), (64, False)])
def test_function_names_are_dns_labels_up_to_63(dev_config: dict[str, Any], length: int, ok: bool) -> None:
    """RFC 1123 labels: at most 63 characters (design.md: names up to 63 characters must work)."""
    config = copy.deepcopy(dev_config)
    name = ("fraud-scorer-realtime-transactions-euw1-" + "x" * 64)[: length - 1] + "z"
    aws(config)["name"] = name
    if ok:
        assert parse_stack_config(config).functions[0].name == name
    else:
        with pytest.raises(SpecError, match=r"\.name: must be a DNS label"):
            parse_stack_config(config)


def test_free_text_values_keep_their_case(dev_config: dict[str, Any]) -> None:
    """Model ids, cost centers and environments as users have them (design.md, "Names and values")."""
    config = copy.deepcopy(dev_config)
    aws(config)["model"]["id"] = "meta-llama/Llama-3.1-8B-Instruct"
    aws(config)["finops"]["costCenter"] = "CC-1234-EU"
    gcp(config)["model"]["id"] = "RecSys-Ranker-XL"
    config["inferops:defaults"]["environment"] = "Prod EU"
    fns = {f.name: f for f in parse_stack_config(config).functions}
    assert fns["fraud-scorer"].model.id == "meta-llama/Llama-3.1-8B-Instruct"
    assert fns["fraud-scorer"].finops.cost_center == "CC-1234-EU"
    assert fns["doc-classifier"].model.id == "RecSys-Ranker-XL"
    assert fns["sentiment"].finops.environment == "Prod EU"


def test_azure_budget_takes_at_most_five_thresholds(dev_config: dict[str, Any]) -> None:
    """Cost Management: "Budget can have up to five notifications"
    (learn.microsoft.com/rest/api/consumption/budgets/create-or-update, property notifications)."""
    config = copy.deepcopy(dev_config)
    azure(config)["finops"]["alertThresholdsPercent"] = [50, 60, 70, 80, 90]
    parse_stack_config(config)
    azure(config)["finops"]["alertThresholdsPercent"] = [50, 60, 70, 80, 90, 100]
    with pytest.raises(SpecError) as err:
        parse_stack_config(config)
    assert str(err.value) == (
        "inferops:functions[churn-predictor].finops.alertThresholdsPercent: Azure budgets allow at most 5 "
        "notifications; list at most 5"
    )


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        ("az://examplemodels/models/churn/{version}/model.json", True),
        ("az://models/churn/model.json", True),  # account "models", container "churn"
        ("az://models/model.json", False),  # no blob path after the container
        ("az://Example/models/model.json", False),  # account names are lowercase
    ],
)
def test_az_uris_name_the_storage_account(dev_config: dict[str, Any], uri: str, ok: bool) -> None:
    config = copy.deepcopy(dev_config)
    azure(config)["model"]["artifactUri"] = uri
    if ok:
        parse_stack_config(config)
    else:
        with pytest.raises(SpecError, match=r"artifactUri: an az:// URI is az://<storage account>"):
            parse_stack_config(config)
