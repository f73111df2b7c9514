"""AwsInferenceFunction under Pulumi's mocks: resources, metadata, budget, canary and rollback, IAM, endpoint.

The dev stack runs once (``dev_run``); edited configs keep only the AWS function so that a run takes
about a second. Prior deployments are simulated where a behaviour depends on state the engine keeps
(a pinned alias that ignores changes keeps the version it had): the test says which value it injects.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pulumi_aws as aws
import pytest

import inferops.harness as harness
from components.aws import (
    LIVE_ALIAS,
    alias_name_for,
    alias_routing,
    artifact_names_other_version,
    artifact_read_arn,
    budget_notifications,
    build_label,
    partition_of,
    physical_name,
)
from components.spec import parse_stack_config
from components.tags import logical_metadata
from inferops.harness import ProgramError, ProgramRun, RegisteredResource
from tests.conftest import function_config

FN = "fraud-scorer"
COMPONENT = "inferops:aws:InferenceFunction"
ROLE, POLICY = "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"
LOGS = "aws:cloudwatch/logGroup:LogGroup"
FUNCTION, ALIAS = "aws:lambda/function:Function", "aws:lambda/alias:Alias"
URL, PERMISSION = "aws:lambda/functionUrl:FunctionUrl", "aws:lambda/permission:Permission"
PROVISIONED = "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig"
BUDGET = "aws:budgets/budget:Budget"
BUCKET, STREAM = "aws:s3/bucket:Bucket", "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
FILTER = "aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter"
#: What capture (on by default) adds: bucket and its settings, two roles with a policy each, stream, filter.
CAPTURE_TYPES = [BUCKET, PAB, SSE, LIFECYCLE, ROLE, POLICY, STREAM, ROLE, POLICY, FILTER]
#: Engine type -> SDK class, to ask the SDK (not this test) which resources take tags.
SDK_CLASSES: dict[str, Any] = {
    ROLE: aws.iam.Role,
    POLICY: aws.iam.RolePolicy,
    LOGS: aws.cloudwatch.LogGroup,
    FUNCTION: aws.lambda_.Function,
    ALIAS: aws.lambda_.Alias,
    URL: aws.lambda_.FunctionUrl,
    PERMISSION: aws.lambda_.Permission,
    PROVISIONED: aws.lambda_.ProvisionedConcurrencyConfig,
    BUDGET: aws.budgets.Budget,
    BUCKET: aws.s3.Bucket,
    PAB: aws.s3.BucketPublicAccessBlock,
    SSE: aws.s3.BucketServerSideEncryptionConfiguration,
    LIFECYCLE: aws.s3.BucketLifecycleConfiguration,
    STREAM: aws.kinesis.FirehoseDeliveryStream,
    FILTER: aws.cloudwatch.LogSubscriptionFilter,
}
AWS_TAG_VALUE = re.compile(r"^[\w .:/=+\-@]{0,256}$", re.ASCII)
#: What the provider reports for the stable pinned alias of a stack that served 2.1.0 as version 7.
PRIOR_STABLE_BUILD = "7"


# --- helpers -------------------------------------------------------------------------------------


def component(run: ProgramRun, name: str = FN) -> RegisteredResource:
    [c] = [r for r in run.of_type(COMPONENT) if r.name == name]
    return c


def children(run: ProgramRun, name: str = FN) -> list[RegisteredResource]:
    return run.children_of(component(run, name).urn)


def one(run: ProgramRun, typ: str, name: str | None = None) -> RegisteredResource:
    found = [r for r in children(run) if r.type == typ and (name is None or r.name == name)]
    assert len(found) == 1, f"expected one {typ} {name or ''}, got {[r.name for r in found]}"
    return found[0]


def of(run: ProgramRun, typ: str) -> list[RegisteredResource]:
    return [r for r in children(run) if r.type == typ]


def live_alias(run: ProgramRun) -> RegisteredResource:
    return one(run, ALIAS, f"{FN}-{LIVE_ALIAS}")


def pinned_alias(run: ProgramRun, version: str) -> RegisteredResource:
    return one(run, ALIAS, f"{FN}-{alias_name_for(version)}")


def weights(alias: RegisteredResource) -> dict[str, float]:
    routing = alias.inputs.get("routingConfig") or {}
    return dict(routing.get("additionalVersionWeights") or {})


def aws_only(edit: Callable[[dict[str, Any]], None] | None = None) -> Callable[[dict[str, Any]], None]:
    """An edit that keeps only the AWS function, then applies ``edit`` to it."""

    def _edit(config: dict[str, Any]) -> None:
        config["inferops:functions"] = [f for f in config["inferops:functions"] if f["name"] == FN]
        if edit is not None:
            edit(function_config(config, FN))

    return _edit


@pytest.fixture
def prior_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the mocks report the stable (2.1.0) pinned alias as a previous deployment left it.

    With ``ignore_changes`` the engine keeps that alias's old version and description; a stateless mock
    cannot know them, so this fixture says them: 2.1.0 was published as Lambda version 7.
    """
    real = harness.computed_outputs
    stable_alias = f"{FN}-{alias_name_for('2.1.0')}"

    def computed(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        out = dict(real(typ, name, inputs))
        if typ == ALIAS and name == stable_alias:
            out.update(functionVersion=PRIOR_STABLE_BUILD, description=build_label(FN, "2.1.0"))
        return out

    monkeypatch.setattr(harness, "computed_outputs", computed)


@pytest.fixture
def ignore_changes(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[str]]]:
    """Record each registration's ``ignoreChanges`` option (the mocks do not pass options on)."""
    seen: dict[str, list[str]] = {}
    real = harness._Monitor.RegisterResource

    def register(self: Any, request: Any) -> Any:
        seen[request.name] = list(request.ignoreChanges)
        return real(self, request)

    monkeypatch.setattr(harness._Monitor, "RegisterResource", register)
    yield seen


# --- resources and their key inputs --------------------------------------------------------------


def test_registers_the_expected_resources_under_the_component(dev_run: ProgramRun) -> None:
    kids = children(dev_run)
    assert sorted(r.type for r in kids) == sorted(
        [ROLE, POLICY, LOGS, FUNCTION, ALIAS, ALIAS, ALIAS, URL, BUDGET, *CAPTURE_TYPES]
    )
    assert all(r.parent == component(dev_run).urn for r in kids)
    assert all(r.urn.startswith(f"urn:pulumi:dev::inferops::{COMPONENT}$") for r in kids)
    assert all(r.name.startswith(f"{FN}-") for r in kids)


def test_function_inputs_follow_the_spec(dev_run: ProgramRun, dev_config: dict[str, Any]) -> None:
    spec = function_config(dev_config, FN)
    fn = one(dev_run, FUNCTION).inputs
    assert fn["publish"] is True
    assert fn["runtime"].startswith("python3.1")
    assert fn["architectures"] == [spec["runtime"]["architecture"]]
    assert fn["memorySize"] == spec["runtime"]["memoryMb"]
    assert fn["timeout"] == spec["runtime"]["timeoutSeconds"]
    assert fn["reservedConcurrentExecutions"] == spec["scaling"]["maxInstances"]
    assert fn["environment"]["variables"]["MODEL_URI"] == spec["model"]["artifactUri"].replace(
        "{version}", spec["model"]["version"]
    )
    assert fn["environment"]["variables"]["MODEL_VERSION"] == spec["model"]["version"]
    assert fn["environment"]["variables"]["MODEL_ID"] == spec["model"]["id"]
    assert fn["role"] == one(dev_run, ROLE, f"{FN}-role").outputs["arn"]
    logs = one(dev_run, LOGS).inputs
    assert logs["name"] == f"/aws/lambda/{fn['name']}"
    assert logs["retentionInDays"] > 0
    assert fn["loggingConfig"]["logGroup"] == logs["name"]
    for r in children(dev_run):
        if "region" in inspect.signature(SDK_CLASSES[r.type]._internal_init).parameters:
            assert r.inputs.get("region") == spec["region"], r.name


def test_code_package_holds_the_handler_module(dev_run: ProgramRun) -> None:
    fn = one(dev_run, FUNCTION).inputs
    module, _, func = fn["handler"].rpartition(".")
    assets = fn["code"].assets
    assert f"{module.replace('.', '/')}.py" in assets, f"handler module {module} not in {sorted(assets)}"
    assert func == "handler"
    assert "core.py" in assets  # the shared core the adapter imports


# --- metadata ------------------------------------------------------------------------------------


def test_every_taggable_resource_carries_every_metadata_key(dev_run: ProgramRun, dev_config: dict[str, Any]) -> None:
    expected = logical_metadata(function_config_spec(dev_config), stack="dev")
    taggable = [
        r for r in children(dev_run) if "tags" in inspect.signature(SDK_CLASSES[r.type]._internal_init).parameters
    ]
    assert {r.type for r in taggable} == {ROLE, LOGS, FUNCTION, BUDGET, BUCKET, STREAM}
    for r in taggable:
        tags = r.inputs["tags"]
        assert set(tags) == set(expected), r.name
        assert tags["function-name"] == f"inferops-dev-{FN}" and tags["stack"] == "dev"
        for key, value in tags.items():
            assert AWS_TAG_VALUE.match(value), f"{r.name}: {key}={value!r} outside the AWS tag charset"
        # values that already fit the charset are kept verbatim
        assert tags["model-card-url"] == expected["model-card-url"]
        assert tags["owner"] == expected["owner"]


def function_config_spec(config: dict[str, Any]) -> Any:
    return next(f for f in parse_stack_config(config).functions if f.name == FN)


# --- budget --------------------------------------------------------------------------------------


def test_budget_equals_the_spec(dev_run: ProgramRun, dev_config: dict[str, Any]) -> None:
    spec = function_config(dev_config, FN)["finops"]
    budget = one(dev_run, BUDGET).inputs
    assert float(budget["limitAmount"]) == spec["monthlyBudgetUsd"]
    assert (budget["limitUnit"], budget["timeUnit"], budget["budgetType"]) == ("USD", "MONTHLY", "COST")
    # Stack-scoped: the value the resources carry, so dev and prod in one account never add up.
    assert budget["costFilters"] == [{"name": "TagKeyValue", "values": [f"user:function-name$inferops-dev-{FN}"]}]
    notes = budget["notifications"]
    actual = [n for n in notes if n["notificationType"] == "ACTUAL"]
    assert [n["threshold"] for n in actual] == spec["alertThresholdsPercent"]
    assert all(n["thresholdType"] == "PERCENTAGE" and n["comparisonOperator"] == "GREATER_THAN" for n in notes)
    assert all(n["subscriberEmailAddresses"] == dev_config["inferops:budgetAlertEmails"] for n in notes)
    assert len(notes) <= 10
    assert component_export(dev_run)["budgetId"] == one(dev_run, BUDGET).outputs.get("id", f"{FN}-budget-id")


def component_export(run: ProgramRun) -> dict[str, Any]:
    return dict(run.exports[FN])


def test_budget_filter_tag_is_carried_by_this_function_only(dev_run: ProgramRun) -> None:
    mine = {r.urn for r in children(dev_run)}
    for r in dev_run.resources:
        raw = r.inputs.get("tags")
        tags: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if r.urn not in mine:
            assert tags.get("function-name") != FN, f"{r.name} would be counted in {FN}'s budget"


def test_budget_amount_and_thresholds_follow_edits(run_edited: Callable[..., ProgramRun]) -> None:
    def edit(fn: dict[str, Any]) -> None:
        fn["finops"].update(monthlyBudgetUsd=1234.5, alertThresholdsPercent=[25, 90])

    budget = one(run_edited(aws_only(edit)), BUDGET).inputs
    assert budget["limitAmount"] == "1234.5"
    assert [n["threshold"] for n in budget["notifications"] if n["notificationType"] == "ACTUAL"] == [25, 90]


def test_too_many_thresholds_fail_with_the_field_named(run_edited: Callable[..., ProgramRun]) -> None:
    def edit(fn: dict[str, Any]) -> None:
        fn["finops"]["alertThresholdsPercent"] = list(range(10, 120, 10))

    with pytest.raises(ProgramError, match=r"fraud-scorer\]\.finops\.alertThresholdsPercent"):
        run_edited(aws_only(edit))


# --- IAM -----------------------------------------------------------------------------------------


def test_role_policy_has_explicit_actions_on_own_resources(dev_run: ProgramRun) -> None:
    doc = json.loads(one(dev_run, POLICY, f"{FN}-policy").inputs["policy"])
    log_arn = one(dev_run, LOGS).outputs["arn"]
    actions: set[str] = set()
    for stmt in doc["Statement"]:
        assert stmt["Effect"] == "Allow"
        stmt_actions = [stmt["Action"]] if isinstance(stmt["Action"], str) else stmt["Action"]
        resources = [stmt["Resource"]] if isinstance(stmt["Resource"], str) else stmt["Resource"]
        assert all("*" not in a for a in stmt_actions), stmt_actions
        assert all(r != "*" and not r.endswith(":*:*") for r in resources), resources
        actions.update(stmt_actions)
        for resource in resources:
            assert resource.startswith(f"{log_arn}:") or resource == "arn:aws:s3:::example-models/fraud-scorer/*"
    assert actions == {"logs:CreateLogStream", "logs:PutLogEvents", "s3:GetObject"}
    assert one(dev_run, POLICY, f"{FN}-policy").inputs["role"] == one(dev_run, ROLE, f"{FN}-role").outputs.get(
        "id", f"{FN}-role-id"
    )


def test_trust_policy_admits_only_lambda_from_this_account(dev_run: ProgramRun) -> None:
    doc = json.loads(one(dev_run, ROLE, f"{FN}-role").inputs["assumeRolePolicy"])
    [stmt] = doc["Statement"]
    assert stmt["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert stmt["Action"] == "sts:AssumeRole"
    assert stmt["Condition"] == {"StringEquals": {"aws:SourceAccount": harness._ACCOUNT}}


# --- endpoint ------------------------------------------------------------------------------------


def test_endpoint_is_authenticated_by_default(dev_run: ProgramRun) -> None:
    url = one(dev_run, URL)
    assert url.inputs["authorizationType"] == "AWS_IAM"
    assert url.inputs["qualifier"] == LIVE_ALIAS
    assert not [r for r in children(dev_run) if r.type == PERMISSION]
    assert component_export(dev_run)["endpoint"] == url.outputs["functionUrl"]


def test_explicitly_public_endpoint_gets_both_url_permissions(run_edited: Callable[..., ProgramRun]) -> None:
    run = run_edited(aws_only(lambda fn: fn.update(endpoint={"public": True})))
    assert one(run, URL).inputs["authorizationType"] == "NONE"
    perms = {p.inputs["action"]: p.inputs for p in children(run) if p.type == PERMISSION}
    assert set(perms) == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}
    assert perms["lambda:InvokeFunctionUrl"]["functionUrlAuthType"] == "NONE"
    assert perms["lambda:InvokeFunction"]["invokedViaFunctionUrl"] is True
    assert all(p["qualifier"] == LIVE_ALIAS and p["principal"] == "*" for p in perms.values())


def test_disabled_endpoint_exports_the_live_alias_invoke_arn(run_edited: Callable[..., ProgramRun]) -> None:
    run = run_edited(aws_only(lambda fn: fn.update(endpoint={"enabled": False})))
    assert not [r for r in children(run) if r.type in (URL, PERMISSION)]
    assert component_export(run)["endpoint"] == live_alias(run).outputs["invokeArn"]


# --- canary and rollback -------------------------------------------------------------------------


def test_fresh_stack_pins_both_versions_but_cannot_split(dev_run: ProgramRun) -> None:
    # On a stack that never served 2.1.0 there is no build of it: no weights, all on the candidate.
    stable, candidate = pinned_alias(dev_run, "2.1.0"), pinned_alias(dev_run, "2.2.0")
    assert stable.inputs["name"] == alias_name_for("2.1.0") and candidate.inputs["name"] == alias_name_for("2.2.0")
    live = live_alias(dev_run)
    assert live.inputs["functionVersion"] == candidate.outputs["functionVersion"]
    assert weights(live) == {}


def test_canary_routes_the_spec_percent_to_the_candidate(
    prior_state: None, ignore_changes: dict[str, list[str]], run_edited: Callable[..., ProgramRun]
) -> None:
    run = run_edited(aws_only())
    candidate = pinned_alias(run, "2.2.0")
    live = live_alias(run)
    assert live.inputs["functionVersion"] == PRIOR_STABLE_BUILD
    assert weights(live) == {candidate.outputs["functionVersion"]: pytest.approx(0.10)}
    assert candidate.outputs["functionVersion"] == one(run, FUNCTION).outputs["version"]
    # the stable build is frozen by the engine; the candidate follows every publish
    assert set(ignore_changes[f"{FN}-{alias_name_for('2.1.0')}"]) == {"functionVersion", "description"}
    assert ignore_changes[f"{FN}-{alias_name_for('2.2.0')}"] == []
    assert ignore_changes[f"{FN}-{LIVE_ALIAS}"] == []


def test_canary_percent_edit_changes_the_weight(prior_state: None, run_edited: Callable[..., ProgramRun]) -> None:
    run = run_edited(aws_only(lambda fn: fn.update(traffic={"canaryPercent": 35})))
    assert list(weights(live_alias(run)).values()) == [pytest.approx(0.35)]


def test_rollback_by_canary_zero_sends_everything_to_the_stable_build(
    prior_state: None, run_edited: Callable[..., ProgramRun]
) -> None:
    run = run_edited(aws_only(lambda fn: fn.update(traffic={"canaryPercent": 0})))
    live = live_alias(run)
    assert live.inputs["functionVersion"] == PRIOR_STABLE_BUILD
    assert weights(live) == {}
    assert "routingConfig" not in live.inputs or not live.inputs["routingConfig"]


def test_rollback_by_version_keeps_the_pinned_stable_build(
    prior_state: None, ignore_changes: dict[str, list[str]], run_edited: Callable[..., ProgramRun]
) -> None:
    # version := stableVersion, canary 0, with a literal artifactUri that still names 2.2.0.
    def edit(fn: dict[str, Any]) -> None:
        fn["model"]["artifactUri"] = "s3://example-models/fraud-scorer/2.2.0/model.json"
        fn["model"]["version"] = fn["model"]["stableVersion"]
        fn["traffic"]["canaryPercent"] = 0

    run = run_edited(aws_only(edit))
    aliases = [r for r in children(run) if r.type == ALIAS]
    assert sorted(a.name for a in aliases) == sorted([f"{FN}-{alias_name_for('2.1.0')}", f"{FN}-{LIVE_ALIAS}"])
    live = live_alias(run)
    assert live.inputs["functionVersion"] == PRIOR_STABLE_BUILD
    assert weights(live) == {}
    # the artifact URI still names 2.2.0, so the new publish must not replace the known-good build
    assert "functionVersion" in ignore_changes[f"{FN}-{alias_name_for('2.1.0')}"]


def test_rollback_by_version_with_matching_artifact_follows_new_builds(
    ignore_changes: dict[str, list[str]], run_edited: Callable[..., ProgramRun]
) -> None:
    def edit(fn: dict[str, Any]) -> None:
        fn["model"]["version"] = "2.1.0"
        fn["model"]["artifactUri"] = "s3://example-models/fraud-scorer/2.1.0/model.json"
        fn["traffic"]["canaryPercent"] = 0  # the drift loop's rollback sets both

    run = run_edited(aws_only(edit))
    assert ignore_changes[f"{FN}-{alias_name_for('2.1.0')}"] == []
    assert live_alias(run).inputs["functionVersion"] == one(run, FUNCTION).outputs["version"]
    assert weights(live_alias(run)) == {}


def test_templated_artifact_resolves_per_version_and_lets_rollback_follow_new_builds(
    ignore_changes: dict[str, list[str]], run_edited: Callable[..., ProgramRun]
) -> None:
    # With {version} in artifactUri the drift loop's rollback (version := stableVersion) stays consistent.
    def edit(fn: dict[str, Any]) -> None:
        fn["model"]["artifactUri"] = "s3://example-models/fraud-scorer/{version}/model.json"
        fn["model"]["version"] = "2.1.0"
        fn["traffic"]["canaryPercent"] = 0

    run = run_edited(aws_only(edit))
    env = one(run, FUNCTION).inputs["environment"]["variables"]
    assert env["MODEL_URI"] == "s3://example-models/fraud-scorer/2.1.0/model.json"
    assert ignore_changes[f"{FN}-{alias_name_for('2.1.0')}"] == []
    policy = json.loads(one(run, POLICY, f"{FN}-policy").inputs["policy"])
    assert ["arn:aws:s3:::example-models/fraud-scorer/*"] in [st["Resource"] for st in policy["Statement"]]


def test_min_instances_are_provisioned_on_the_pinned_builds_never_on_the_weighted_alias(
    run_edited: Callable[..., ProgramRun],
) -> None:
    """AWS: "you can't manage provisioned concurrency settings on the alias while the routing
    configuration is in place" (docs.aws.amazon.com/lambda/latest/dg/configuration-aliases.html), so
    during a canary both pinned builds get ``minInstances``; the sum stays within the reserved
    concurrency (docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html)."""
    run = run_edited(aws_only(lambda fn: fn.update(scaling={"minInstances": 3, "maxInstances": 8})))
    pcs = {r.inputs["qualifier"]: r.inputs["provisionedConcurrentExecutions"] for r in of(run, PROVISIONED)}
    assert pcs == {alias_name_for("2.1.0"): 3, alias_name_for("2.2.0"): 3}
    assert LIVE_ALIAS not in pcs
    assert one(run, FUNCTION).inputs["reservedConcurrentExecutions"] == 8

    # canary stopped: only the stable build serves, so only it is provisioned
    def stopped(fn: dict[str, Any]) -> None:
        fn.update(scaling={"minInstances": 3, "maxInstances": 8})
        fn["traffic"]["canaryPercent"] = 0

    run = run_edited(aws_only(stopped))
    assert [r.inputs["qualifier"] for r in of(run, PROVISIONED)] == [alias_name_for("2.1.0")]

    with pytest.raises(ProgramError, match=r"scaling\.minInstances: 5 provisioned instances on each of 2"):
        run_edited(aws_only(lambda fn: fn.update(scaling={"minInstances": 5, "maxInstances": 8})))


def test_region_of_the_function_is_used_for_names_and_arns(run_edited: Callable[..., ProgramRun]) -> None:
    run = run_edited(aws_only(lambda fn: fn.update(region="eu-west-1")))
    assert one(run, FUNCTION).inputs["region"] == "eu-west-1"
    assert one(run, URL).outputs["functionUrl"].endswith(".lambda-url.eu-west-1.on.aws/")
    assert "BudgetRegion" not in json.dumps(one(run, BUDGET).inputs)


# --- pure helpers --------------------------------------------------------------------------------


def test_alias_routing_splits_only_between_distinct_real_builds() -> None:
    label_ok, label_bad = build_label("m", "1.0"), build_label("m", "2.0")
    assert alias_routing("7", label_ok, label_ok, "9", 10) == ("7", {"9": 0.1}, None)
    assert alias_routing("7", label_ok, label_ok, "9", 0) == ("7", {}, None)
    assert alias_routing("7", label_ok, label_ok, None, 10) == ("7", {}, None)
    assert alias_routing("7", label_ok, label_ok, "9", 100) == ("9", {}, None)
    primary, split, warning = alias_routing("9", label_bad, label_ok, "9", 10)
    assert (primary, split) == ("9", {}) and warning and "stable" in warning
    # a correct label but the same build (both aliases created together) is no split either
    assert alias_routing("9", label_ok, label_ok, "9", 10)[1] == {}


def test_alias_names_are_valid_and_distinct() -> None:
    names = {alias_name_for(v) for v in ("2.1.0", "2-1-0", "2_1_0", "2.1.0+build.7", "10")}
    assert len(names) == 5
    for n in names:
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,128}", n) and not n.isdigit()


def test_physical_names_fit_the_limit_and_stay_distinct() -> None:
    assert physical_name(["fraud-scorer", "dev"], 64) == "fraud-scorer-dev"
    long_a = physical_name(["fraud-scorer", "x" * 80 + "a"], 64)
    long_b = physical_name(["fraud-scorer", "x" * 80 + "b"], 64)
    assert len(long_a) <= 64 and len(long_b) <= 64 and long_a != long_b
    assert re.fullmatch(r"[A-Za-z0-9_-]+", physical_name(["f", "org.stack"], 64))
    assert physical_name(["f", "org.stack"], 64) != physical_name(["f", "org-stack"], 64)


@pytest.mark.parametrize(
    ("uri", "version", "expected"),
    [
        ("s3://b/fraud-scorer/2.2.0/model.json", "2.2.0", "arn:aws:s3:::b/fraud-scorer/*"),
        ("s3://b/models/fraud/v3.1/weights.bin", "3.1", "arn:aws:s3:::b/models/fraud/*"),
        ("s3://b/fraud/model.json", "1.0.0", "arn:aws:s3:::b/fraud/*"),
        ("s3://b/model.json", "1.0.0", "arn:aws:s3:::b/model.json"),
        ("s3://b/2.0.0/model.json", "2.0.0", "arn:aws:s3:::b/*"),
        ("s3://b/fraud-scorer/{version}/model.json", "2.2.0", "arn:aws:s3:::b/fraud-scorer/*"),
        ("s3://b/fraud-scorer/model-{version}.json", "2.2.0", "arn:aws:s3:::b/fraud-scorer/*"),
        ("s3://b/model-{version}.json", "2.2.0", "arn:aws:s3:::b/*"),
    ],
)
def test_artifact_read_arn(uri: str, version: str, expected: str) -> None:
    assert artifact_read_arn(uri, version) == expected


def test_artifact_read_arn_rejects_non_s3() -> None:
    with pytest.raises(ValueError, match="artifactUri"):
        artifact_read_arn("gs://b/m.json", "1.0")


def test_stale_artifact_uri_detection() -> None:
    assert artifact_names_other_version("s3://b/m/2.2.0/model.json", "2.1.0") == "2.2.0"
    assert artifact_names_other_version("s3://b/m/2.1.0/model.json", "2.1.0") is None
    assert artifact_names_other_version("s3://b/m/latest/model.json", "2.1.0") is None


def test_budget_notifications_respect_aws_limits() -> None:
    assert budget_notifications([50, 80], []) == []
    notes = budget_notifications(list(range(10, 110, 10)), ["a@example.com"])
    assert len(notes) == 10 and all(n.notification_type == "ACTUAL" for n in notes)
    notes = budget_notifications([50], ["a@example.com"])
    assert [(n.notification_type, n.threshold) for n in notes] == [("ACTUAL", 50.0), ("FORECASTED", 100.0)]


def test_partition_of_region() -> None:
    assert [partition_of(r) for r in ("us-east-1", "cn-north-1", "us-gov-west-1")] == ["aws", "aws-cn", "aws-us-gov"]


def test_exported_canary_percent_is_the_deployed_split(
    prior_state: None, dev_run: ProgramRun, run_edited: Callable[..., ProgramRun]
) -> None:
    """On a fresh stack (dev_run) no stable build exists, so nothing is split; with one, the spec's 10%."""
    assert dev_run.exports[FN]["canaryPercent"] == 0
    assert run_edited(aws_only()).exports[FN]["canaryPercent"] == 10


# --- cost-allocation tags ----------------------------------------------------------------------------


def test_cost_allocation_tags_are_activated_only_when_the_stack_says_so(
    dev_run: ProgramRun, run_edited: Callable[..., ProgramRun]
) -> None:
    """AWS Budgets filter on a user tag only once it is an active cost-allocation tag
    (docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/activating-tags.html); the activation is
    account-wide, so it is opt-in and survives the stack's destroy."""
    tag = "aws:costexplorer/costAllocationTag:CostAllocationTag"
    assert dev_run.of_type(tag) == []
    run = run_edited(lambda c: c.update({"inferops:awsActivateCostAllocationTags": True}))
    tags = run.of_type(tag)
    assert sorted((t.inputs["tagKey"], t.inputs["status"]) for t in tags) == [
        ("function-name", "Active"),
        ("stack", "Active"),
    ]


def test_provisioned_concurrency_on_both_sides_of_a_canary_is_priced(run_edited: Callable[..., ProgramRun]) -> None:
    """Provisioned concurrency is billed per configured version whether or not it serves
    (aws.amazon.com/lambda/pricing, "Provisioned Concurrency"): a canary with minInstances pays for
    both pinned builds, and the cost estimate (the policy pack's model) says so."""
    from inferops.costs import estimate_functions

    def cost(min_instances: int, percent: int) -> float:
        def edit(fn: dict[str, Any]) -> None:
            fn.update(scaling={"minInstances": min_instances, "maxInstances": 8})
            fn["traffic"]["canaryPercent"] = percent

        config_edit = aws_only(edit)
        run = run_edited(config_edit)
        from inferops.harness import load_stack_file
        from tests.conftest import DEV_STACK

        config = load_stack_file(DEV_STACK)
        config_edit(config)
        return estimate_functions(run, parse_stack_config(config)).functions[FN].monthly_usd

    none, stable_only, both = cost(0, 0), cost(3, 0), cost(3, 10)
    assert stable_only > none
    # Requests served by provisioned concurrency are billed at its lower duration rate, so the first
    # pinned build costs less than its capacity charge; the canary's second pinned build adds exactly
    # one more capacity charge: 3 instances x 1 GiB (fraud-scorer's 1024 MB, arm64) x the billing
    # month at the published arm64 "provisioned concurrency" price per GB-s (prices.json).
    from inferops_policy.pricing import load_price_table, month_seconds

    table = load_price_table()["aws-lambda"]
    rate = table["price_sets"][table["regions"]["us-east-1"]]["arm64"]
    capacity = 3 * 1.0 * month_seconds() * rate["provisioned_gb_second"]
    assert both - stable_only == pytest.approx(capacity, rel=1e-6)
    assert stable_only - none < capacity
