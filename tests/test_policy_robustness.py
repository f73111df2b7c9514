"""Findings of issue 10 on hostile and half-known input, and on stacks the pack did not build.

Each test states the input that broke (or misjudged) the pack before and the verdict expected now:
a policy never raises, a malformed value is a clear violation or "cannot judge", and an unknown
value never causes a violation on its own.
"""

from __future__ import annotations

import copy
import json

import pytest
from pulumi_policy import PolicyProviderResource, PolicyResource, ResourceValidationArgs, StackValidationArgs
from pulumi_policy.proxy import unknown_checking_proxy

from tests.test_policy_support import (
    UNKNOWN,
    _opts,
    aws_budget,
    azure_budget,
    cloud_run,
    compliant_stack,
    finops,
    gcp_budget,
    knative,
    lambda_fn,
    responsible_ai,
    run_resource,
    run_stack,
    security,
    urn,
)

LAMBDA = "aws:lambda/function:Function"
KNATIVE = "kubernetes:serving.knative.dev/v1:Service"


def replace(stack, name, props):
    return [(t, n, props if n == name else p) for t, n, p in stack]


def messages(found):
    return [m for m, _u in found]


def deep(levels: int):
    value: dict = {"leaf": 1}
    for _ in range(levels):
        value = {"a": value}
    return value


# --------------------------------------------------------------------------- 1. nothing raises


def test_unparseable_url_is_a_violation_not_an_error():
    # urlparse("https://[") raises ValueError ("Invalid IPv6 URL").
    props = lambda_fn(**{"model-card-url": "https://["})
    assert run_resource(responsible_ai.rai_metadata_validator, LAMBDA, props, name="fraud-scorer") == [
        "'fraud-scorer' has model-card-url='https://[', which is not an https URL: link the published model card "
        "over https."
    ]


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "1e400", 10**400, float("nan")])
def test_non_finite_duration_cannot_be_priced(bad):
    stack = replace(compliant_stack(), "fraud-scorer", lambda_fn(**{"avg-duration-ms": bad}))
    for validator in (
        finops.cost_within_budget_validator,
        finops.cost_per_1k_validator,
        finops.stack_ceiling_validator,
    ):
        assert run_stack(validator, stack) == []
    [message] = messages(run_stack(finops.coverage_validator, stack))
    assert message.startswith("'fraud-scorer' cannot be priced: avg-duration-ms is not a finite number (")


def test_huge_finite_usage_cannot_be_priced():
    props = lambda_fn(**{"expected-monthly-requests": "1e300", "avg-duration-ms": "1e300"})
    stack = replace(compliant_stack(), "fraud-scorer", props)
    assert messages(run_stack(finops.coverage_validator, stack)) == [
        "'fraud-scorer' cannot be priced: the inputs are too large to give a finite estimate; set it so the FinOps "
        "policies can check the function."
    ]
    assert run_stack(finops.cost_within_budget_validator, stack) == []


def test_negative_sizes_cannot_be_priced():
    stack = replace(compliant_stack(), "fraud-scorer", lambda_fn(**{"avg-duration-ms": "-5"}))
    assert messages(run_stack(finops.coverage_validator, stack)) == [
        "'fraud-scorer' cannot be priced: avg-duration-ms is negative (-5); set it so the FinOps policies can check "
        "the function."
    ]


@pytest.mark.parametrize("entry", [["arn:aws:iam::aws:policy/AdministratorAccess"], {"arn": "x"}, 5])
def test_non_string_policy_arns_do_not_raise(entry):
    # A list or dict in `arn in denied_set` raised TypeError (unhashable).
    role = {"assumeRolePolicy": "{}", "managedPolicyArns": [entry]}
    assert run_resource(security.iam_wildcards_validator, "aws:iam/role:Role", role) == []
    attachment = {"role": "r", "policyArn": entry}
    assert (
        run_resource(security.iam_wildcards_validator, "aws:iam/rolePolicyAttachment:RolePolicyAttachment", attachment)
        == []
    )


def test_azure_budget_with_malformed_and_filter():
    # {"and": 5} was iterated (TypeError); it filters on nothing the pack reads, so it is not a
    # function's budget and the function has none.
    budget = azure_budget()
    budget["filter"] = {"and": 5}
    stack = replace(compliant_stack(), "churn-predictor-budget", budget)
    assert messages(run_stack(finops.budget_coverage_validator, stack)) == [
        "'churn-predictor' has no budget resource filtering on function-name=churn-predictor: add a "
        "azure-native:consumption:Budget for it with the function's monthly-budget-usd as its amount."
    ]


def test_deeply_nested_policy_document_is_a_violation():
    nested = '{"a": ' * 1000 + "1" + "}" * 1000  # 1000-deep JSON, written out (json.dumps would recurse)
    document = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Condition": ' + nested + "}]}"
    assert run_resource(
        security.iam_wildcards_validator, "aws:iam/rolePolicy:RolePolicy", {"policy": document}, name="p"
    ) == [
        "policy 'p' is nested too deeply to be checked: an IAM policy document is a few levels deep (Statement, "
        "Action, Resource, Condition); write it flat."
    ]
    text = "[" * 100_000 + "]" * 100_000  # beyond the json module's recursion limit
    assert run_resource(
        security.iam_wildcards_validator, "aws:iam/rolePolicy:RolePolicy", {"policy": text}, name="p"
    ) == [
        "policy 'p' is nested too deeply to be checked: an IAM policy document is a few levels deep (Statement, "
        "Action, Resource, Condition); write it flat."
    ]


def test_deeply_nested_properties_do_not_raise():
    props = lambda_fn()
    props["environment"] = deep(300)  # beyond the pack's depth limit (what the test harness can deep-copy)
    for validator in (
        security.plaintext_secrets_validator,
        finops.tags_validator,
        responsible_ai.rai_metadata_validator,
    ):
        assert run_resource(validator, LAMBDA, props, name="fraud-scorer") == []
    assert run_stack(finops.coverage_validator, replace(compliant_stack(), "fraud-scorer", props)) == []


# --------------------------------------------------------------------------- 3. unknowns never convict


def test_unknown_kind_is_not_judged_as_a_function_app():
    # A plain web app (no inference metadata) whose kind is unknown was held to the function rules.
    props = {"name": "portal", "kind": UNKNOWN, "httpsOnly": True, "siteConfig": {"minTlsVersion": "1.2"}}
    for validator in (responsible_ai.rai_metadata_validator, security.public_endpoint_validator):
        assert run_resource(validator, "azure-native:web:WebApp", props, name="portal") == []
    stack = [("azure-native:web:WebApp", "portal", props)]
    for validator in (finops.budget_coverage_validator, finops.coverage_validator):
        assert run_stack(validator, stack) == []


def _always_on_knative(vcpu_price):
    props = knative(**{"monthly-budget-usd": "10"})
    props["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] = "1"
    props["metadata"]["annotations"]["inferops.dev/node-vcpu-hour-usd"] = vcpu_price
    props["metadata"]["annotations"]["inferops.dev/node-gib-hour-usd"] = "0"
    return props


def test_unknown_node_price_is_not_replaced_by_the_default():
    # At the default price ($0.0445/vCPU-h) one 0.5 vCPU pod all month costs $16.24 > $9.00; the
    # stack records its own (unknown) price, so the budget cannot be judged yet.
    stack = [(KNATIVE, "text-classifier", _always_on_knative("0.001"))]
    assert run_stack(finops.cost_within_budget_validator, stack) == []
    stack = [(KNATIVE, "text-classifier", _always_on_knative(UNKNOWN))]
    assert run_stack(finops.cost_within_budget_validator, stack) == []
    assert run_stack(finops.coverage_validator, stack) == []


def test_unknown_gcp_nanos_is_not_dropped():
    budget = gcp_budget(units="10")
    budget["amount"]["specifiedAmount"]["nanos"] = UNKNOWN
    stack = replace(compliant_stack(), "image-tagger-budget", budget)
    stack = replace(stack, "image-tagger", cloud_run(**{"monthly-budget-usd": "10.50"}))
    assert run_stack(finops.budget_coverage_validator, stack) == []
    budget["amount"]["specifiedAmount"]["nanos"] = 500_000_000
    assert run_stack(finops.budget_coverage_validator, replace(stack, "image-tagger-budget", budget)) == []


def test_unknown_aws_amount_with_absolute_thresholds():
    budget = aws_budget()
    budget["limitAmount"] = UNKNOWN
    for note in budget["notifications"]:
        note["thresholdType"] = "ABSOLUTE_VALUE"
    stack = replace(compliant_stack(), "fraud-scorer-budget", budget)
    assert run_stack(finops.budget_coverage_validator, stack) == []


def test_unknown_arn_without_region_is_not_a_fallback():
    props = lambda_fn()
    del props["region"]
    props["arn"] = UNKNOWN
    assert run_stack(finops.coverage_validator, replace(compliant_stack(), "fraud-scorer", props)) == []


# --------------------------------------------------------------------------- 4-7. stacks the pack did not build


def _hand_written_lambda(name="fraud-scorer", **meta):
    """A Lambda written by hand: physical name of its own, the contract's keys with a stack-scoped
    function-name (contract 1) and the stack key."""
    props = lambda_fn(**{"function-name": f"inferops-dev-{name}", "stack": "dev", **meta})
    props["name"] = f"{name}-prod-eu"
    return props


def _model_budget(model="fraud-scorer", version=None):
    budget = aws_budget()
    values = [f"user:model-id${model}"] + ([f"user:model-version${version}"] if version else [])
    budget["costFilters"] = [{"name": "TagKeyValue", "values": values}]
    return budget


def test_budget_linked_by_model_identity():
    stack = [(LAMBDA, "scorer", _hand_written_lambda()), ("aws:budgets/budget:Budget", "b", _model_budget())]
    assert run_stack(finops.budget_coverage_validator, stack) == []
    stack[1] = ("aws:budgets/budget:Budget", "b", _model_budget(version="2.2.0"))
    assert run_stack(finops.budget_coverage_validator, stack) == []


def test_model_identity_shared_by_two_functions_links_neither():
    stack = [
        (LAMBDA, "scorer", _hand_written_lambda()),
        (LAMBDA, "scorer-b", _hand_written_lambda("fraud-scorer-b", **{"model-id": "fraud-scorer"})),
        ("aws:budgets/budget:Budget", "b", _model_budget()),
    ]
    assert messages(run_stack(finops.budget_coverage_validator, stack)) == [
        "'inferops-dev-fraud-scorer' has no budget resource filtering on function-name=inferops-dev-fraud-scorer: "
        "add a aws:budgets/budget:Budget for it with the function's monthly-budget-usd as its amount.",
        "'inferops-dev-fraud-scorer-b' has no budget resource filtering on function-name=inferops-dev-fraud-scorer-b: "
        "add a aws:budgets/budget:Budget for it with the function's monthly-budget-usd as its amount.",
    ]
    # The version tells them apart: the pair is unique, so the budget is the first one's.
    stack[1] = (
        LAMBDA,
        "scorer-b",
        _hand_written_lambda("fraud-scorer-b", **{"model-id": "fraud-scorer", "model-version": "3.0.0"}),
    )
    stack[2] = ("aws:budgets/budget:Budget", "b", _model_budget(version="2.2.0"))
    assert len(run_stack(finops.budget_coverage_validator, stack)) == 1


def test_budget_of_another_cloud_does_not_cover():
    stack = [
        (LAMBDA, "scorer", _hand_written_lambda()),
        ("gcp:billing/budget:Budget", "b", gcp_budget("inferops-dev-fraud-scorer")),
    ]
    assert len(run_stack(finops.budget_coverage_validator, stack)) == 1


def _args_with_provider(rtype, props, provider_props, provider_type):
    provider = PolicyProviderResource(
        provider_type, unknown_checking_proxy(provider_props), f"urn:{provider_type}", "default"
    )
    return ResourceValidationArgs(
        rtype, unknown_checking_proxy(copy.deepcopy(props)), urn(rtype, "res"), "res", _opts(), provider, None
    )


@pytest.mark.parametrize(
    ("rtype", "props", "provider_type", "provider_props"),
    [
        (
            "aws:iam/role:Role",
            {"assumeRolePolicy": "{}"},
            "pulumi:providers:aws",
            # The engine sends provider inputs JSON-encoded.
            {
                "region": "us-east-1",
                "defaultTags": json.dumps(
                    {"tags": {"cost-center": "a", "owner": "b", "environment": "c", "monthly-budget-usd": "1"}}
                ),
            },
        ),
        (
            "aws:iam/role:Role",
            {"assumeRolePolicy": "{}", "tags": {"owner": "me"}},
            "pulumi:providers:aws",
            {"defaultTags": {"tags": {"cost-center": "a", "environment": "c", "monthly-budget-usd": "1"}}},
        ),
        (
            "gcp:storage/bucket:Bucket",
            {"labels": {"owner": "me"}},
            "pulumi:providers:gcp",
            {"defaultLabels": json.dumps({"cost-center": "a", "environment": "c", "monthly-budget-usd": "1"})},
        ),
    ],
)
def test_provider_default_tags_count_as_the_resources_own(rtype, props, provider_type, provider_props):
    found: list[str] = []
    finops.tags_validator(
        _args_with_provider(rtype, props, provider_props, provider_type), lambda m, _u=None: found.append(m)
    )
    assert found == []
    bare: list[str] = []
    finops.tags_validator(_args_with_provider(rtype, props, {}, provider_type), lambda m, _u=None: bare.append(m))
    assert len(bare) >= 3


def test_unknown_provider_default_tags_cannot_be_judged():
    found: list[str] = []
    args = _args_with_provider(
        "aws:iam/role:Role", {"assumeRolePolicy": "{}"}, {"defaultTags": UNKNOWN}, "pulumi:providers:aws"
    )
    finops.tags_validator(args, lambda m, _u=None: found.append(m))
    assert found == []


def test_provider_default_tags_in_stack_policies():
    props = lambda_fn()
    budget_usd = props["tags"].pop("monthly-budget-usd")
    provider = PolicyProviderResource(
        "pulumi:providers:aws",
        unknown_checking_proxy({"defaultTags": {"tags": {"monthly-budget-usd": "1"}}}),
        "urn:p",
        "p",
    )
    resources = [
        PolicyResource(
            LAMBDA,
            unknown_checking_proxy(props),
            urn(LAMBDA, "fraud-scorer"),
            "fraud-scorer",
            _opts(),
            provider,
            None,
            [],
            {},
        ),
    ]
    found: list[str] = []
    finops.cost_within_budget_validator(StackValidationArgs(resources, None), lambda m, _u=None: found.append(m))
    # 3M x 120 ms x 1 GB arm64 = $5.40 against the provider's $1 budget (the function's own was $400).
    assert budget_usd == "400" and len(found) == 1 and "above its budget $1.00" in found[0]


@pytest.mark.parametrize(
    ("props", "public"),
    [
        ({"action": "lambda:InvokeFunction", "function": "fraud-scorer", "principal": "*"}, True),
        (
            {
                "action": "lambda:invokefunction",
                "function": "arn:aws:lambda:us-east-1:1:function:fraud-scorer",
                "principal": "*",
            },
            True,
        ),
        (
            {
                "action": "lambda:InvokeFunctionUrl",
                "function": "fraud-scorer",
                "principal": "*",
                "functionUrlAuthType": "AWS_IAM",
            },
            True,
        ),
        (
            {
                "action": "lambda:InvokeFunction",
                "function": "fraud-scorer",
                "principal": "*",
                "sourceArn": "arn:aws:execute-api:us-east-1:1:abc/*",
            },
            False,
        ),
        (
            {
                "action": "lambda:InvokeFunction",
                "function": "fraud-scorer",
                "principal": "*",
                "sourceAccount": "123456789012",
            },
            False,
        ),
        (
            {"action": "lambda:InvokeFunction", "function": "fraud-scorer", "principal": "apigateway.amazonaws.com"},
            False,
        ),
        ({"action": "lambda:GetFunction", "function": "fraud-scorer", "principal": "*"}, False),
        ({"action": UNKNOWN, "function": "fraud-scorer", "principal": "*"}, False),
    ],
)
def test_permission_open_to_everyone_is_public(props, public):
    found = run_resource(security.public_endpoint_validator, "aws:lambda/permission:Permission", props)
    expected = (
        [
            f"'fraud-scorer' grants {props['action']} to everyone (principal '*'): name the calling account or service "
            "as principal, or scope it with sourceArn/sourceAccount/principalOrgId (or list it in "
            "allowedPublicFunctions)."
        ]
        if public
        else []
    )
    assert found == expected


LONG = "a-very-long-function-name-for-a-team-that-likes-to-be-explicit"


@pytest.mark.parametrize(
    ("rtype", "props"),
    [
        (
            "aws:lambda/functionUrl:FunctionUrl",
            {"functionName": "inferops-dev-fraud-scorer", "authorizationType": "NONE"},
        ),
        (
            "aws:lambda/functionUrl:FunctionUrl",
            {
                "functionName": "arn:aws:lambda:us-east-1:1:function:inferops-dev-fraud-scorer:live",
                "authorizationType": "NONE",
            },
        ),
        (
            "aws:lambda/permission:Permission",
            {"action": "lambda:InvokeFunction", "function": "inferops-dev-fraud-scorer", "principal": "*"},
        ),
        (
            "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
            {"name": "inferops-dev-fraud-scorer", "role": "roles/run.invoker", "member": "allUsers"},
        ),
        ("gcp:cloudrunv2/service:Service", {"name": "inferops-dev-fraud-scorer", "invokerIamDisabled": True}),
        (KNATIVE, {"metadata": {"name": "inferops-dev-fraud-scorer", "labels": {}}}),
        (
            "azure-native:web:WebApp",
            {
                "name": "inferops-dev-fraud-scorer",
                "kind": "functionapp",
                "siteConfig": {"appSettings": [{"name": "AUTH_LEVEL", "value": "anonymous"}]},
            },
        ),
        ("aws:lambda/functionUrl:FunctionUrl", {"functionName": "fraud-scorer", "authorizationType": "NONE"}),
    ],
)
def test_allow_list_uses_the_config_name_on_every_platform(rtype, props):
    found = run_resource(
        security.public_endpoint_validator, rtype, props, config={"allowedPublicFunctions": ["fraud-scorer"]}
    )
    assert found == []
    assert (
        len(
            run_resource(security.public_endpoint_validator, rtype, props, config={"allowedPublicFunctions": ["fraud"]})
        )
        == 1
    )
    assert len(run_resource(security.public_endpoint_validator, rtype, props)) == 1


def test_allow_list_with_a_hashed_physical_name_and_the_stack_key():
    from inferops_policy.metadata import function_key  # importable: test_policy_support put policies/ on sys.path

    hashed = function_key("inferops", "prod", LONG)
    assert hashed != f"inferops-prod-{LONG}"
    props = {"name": hashed, "invokerIamDisabled": True, "labels": {"stack": "prod"}}
    config = {"allowedPublicFunctions": [LONG]}
    assert (
        run_resource(security.public_endpoint_validator, "gcp:cloudrunv2/service:Service", props, config=config) == []
    )
    # Without the stack key the URN's stack (dev) applies, and the prod name is not this function.
    del props["labels"]
    assert (
        len(run_resource(security.public_endpoint_validator, "gcp:cloudrunv2/service:Service", props, config=config))
        == 1
    )
