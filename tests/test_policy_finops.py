"""FinOps policies: cost-allocation keys, a budget per function, estimated cost against budget."""

from __future__ import annotations

import pytest

from tests.test_policy_support import (
    aws_budget,
    azure_budget,
    cloud_run,
    compliant_stack,
    finops,
    gcp_budget,
    knative,
    lambda_fn,
    run_resource,
    run_stack,
    urn,
)

LAMBDA = "aws:lambda/function:Function"
RUN = "gcp:cloudrunv2/service:Service"
STACK_VALIDATORS = (
    finops.budget_coverage_validator,
    finops.cost_within_budget_validator,
    finops.cost_per_1k_validator,
    finops.stack_ceiling_validator,
    finops.coverage_validator,
)


def replace(stack, name, props):
    return [(t, n, props if n == name else p) for t, n, p in stack]


def costs_by_name(stack, **config):
    """Per-function estimates (no free tier), as the cost policies compute them."""
    found = {}
    from pulumi_policy.proxy import unknown_checking_proxy

    from tests.test_policy_support import PolicyResource, StackValidationArgs, _opts

    args = StackValidationArgs(
        [PolicyResource(t, unknown_checking_proxy(p), urn(t, n), n, _opts(), None, None, [], {}) for t, n, p in stack],
        config,
    )
    for fn, _usages, cost in finops._function_costs(args, free_tier=False):
        found[fn.label] = round(cost, 2)
    return found


def test_compliant_stack_passes_every_finops_policy():
    for validator in STACK_VALIDATORS:
        assert run_stack(validator, compliant_stack()) == []
    for rtype, name, props in compliant_stack():
        if not rtype.endswith(":Budget"):
            assert run_resource(finops.tags_validator, rtype, props, name=name) == []


def test_estimates_of_the_compliant_stack():
    # Lambda arm64 1 GB: 360,000 GB-s x $0.0000133334 + 3M x $0.20/M; Azure Consumption at the 1,536 MB upper
    # bound: 540,000 GB-s x $0.000016 + $0.60; Cloud Run 1 vCPU/1 GiB billed 200 ms: 600,000 x ($0.000024 +
    # $0.0000025) + 3M x $0.40/M; Knative 0.5 vCPU/1 GiB, 10 concurrent: 10 pod-hours x $0.0271725.
    assert costs_by_name(compliant_stack()) == {
        "fraud-scorer": 5.40,
        "churn-predictor": 9.24,
        "image-tagger": 17.10,
        "text-classifier": 0.27,
    }


# --------------------------------------------------------------------------- tags


def test_untagged_resource_reports_each_missing_key():
    messages = run_resource(finops.tags_validator, "aws:iam/role:Role", {"name": "exec"}, name="exec")
    assert messages == [
        "'exec' (aws:iam/role:Role) has no 'cost-center' cost-allocation key: set finops.costCenter (or "
        "inferops:defaults.costCenter) in the stack config, or add the tag/label/annotation to a hand-written "
        "resource.",
        "'exec' (aws:iam/role:Role) has no 'owner' cost-allocation key: set finops.owner (or "
        "inferops:defaults.owner) in the stack config, or add the tag/label/annotation to a hand-written resource.",
        "'exec' (aws:iam/role:Role) has no 'environment' cost-allocation key: set finops.environment (or "
        "inferops:defaults.environment) in the stack config, or add the tag/label/annotation to a hand-written "
        "resource.",
        "'exec' (aws:iam/role:Role) has no 'monthly-budget-usd' cost-allocation key: set finops.monthlyBudgetUsd "
        "in the stack config, or add the tag/label/annotation to a hand-written resource.",
    ]


@pytest.mark.parametrize("key", ["cost-center", "owner", "environment", "monthly-budget-usd"])
def test_one_missing_key_on_a_gcp_service(key):
    assert run_resource(finops.tags_validator, RUN, cloud_run(drop=(key,)), name="image-tagger") == [
        f"'image-tagger' ({RUN}) has no '{key}' cost-allocation key: set {finops._FIELD_OF[key]} in the stack "
        "config, or add the tag/label/annotation to a hand-written resource."
    ]


def test_tag_config_and_untaggable_types():
    assert (
        run_resource(
            finops.tags_validator,
            "aws:iam/role:Role",
            {"name": "exec"},
            config={"exemptResourceTypes": ["aws:iam/role:Role"]},
        )
        == []
    )
    assert run_resource(finops.tags_validator, "aws:lambda/alias:Alias", {"name": "live"}) == []
    assert (
        run_resource(
            finops.tags_validator,
            "aws:iam/role:Role",
            {"tags": {"owner": "a@b.c"}},
            name="r",
            config={"requiredKeys": ["owner"]},
        )
        == []
    )
    # A hand-written resource that declares tags shows it is taggable, so it is judged.
    assert len(run_resource(finops.tags_validator, "aws:s3/bucketV2:BucketV2", {"tags": {}})) == 4


# --------------------------------------------------------------------------- budgets


@pytest.mark.parametrize(
    ("budget_type", "budget_name", "props", "message"),
    [
        (
            "aws:budgets/budget:Budget",
            "fraud-scorer-budget",
            aws_budget(amount="300"),
            "budget 'fraud-scorer-budget' for 'fraud-scorer' is $300.00 but the function's monthly-budget-usd is "
            "$400.00: make them equal (set finops.monthlyBudgetUsd once and derive both).",
        ),
        (
            "aws:budgets/budget:Budget",
            "fraud-scorer-budget",
            aws_budget(thresholds=(110, 150)),
            "budget 'fraud-scorer-budget' for 'fraud-scorer' first alerts at 110%, after the 100% limit: add an alert "
            "at or below 100% so owners hear before the budget is spent.",
        ),
        (
            "aws:budgets/budget:Budget",
            "fraud-scorer-budget",
            aws_budget(thresholds=()),
            "budget 'fraud-scorer-budget' for 'fraud-scorer' has no alert threshold: add notifications (e.g. "
            "finops.alertThresholdsPercent [50, 80, 100]).",
        ),
        (
            "azure-native:consumption:Budget",
            "churn-predictor-budget",
            azure_budget(amount=250),
            "budget 'churn-predictor-budget' for 'churn-predictor' is $250.00 but the function's monthly-budget-usd is "
            "$400.00: make them equal (set finops.monthlyBudgetUsd once and derive both).",
        ),
        (
            "gcp:billing/budget:Budget",
            "image-tagger-budget",
            gcp_budget(thresholds=(1.2,)),
            "budget 'image-tagger-budget' for 'image-tagger' first alerts at 120%, after the 100% limit: add an alert at "
            "or below 100% so owners hear before the budget is spent.",
        ),
    ],
)
def test_budget_mutations(budget_type, budget_name, props, message):
    stack = replace(compliant_stack(), budget_name, props)
    assert run_stack(finops.budget_coverage_validator, stack) == [(message, urn(budget_type, budget_name))]


def test_function_without_budget():
    stack = [r for r in compliant_stack() if r[1] != "image-tagger-budget"]
    assert run_stack(finops.budget_coverage_validator, stack) == [
        (
            "'image-tagger' has no budget resource filtering on function-name=image-tagger: add a "
            "gcp:billing/budget:Budget for it with the function's monthly-budget-usd as its amount.",
            urn(RUN, "image-tagger"),
        )
    ]


def test_first_threshold_limit_is_configurable():
    stack = replace(compliant_stack(), "fraud-scorer-budget", aws_budget(thresholds=(90, 100)))
    assert run_stack(finops.budget_coverage_validator, stack) == []
    assert len(run_stack(finops.budget_coverage_validator, stack, config={"maxFirstThresholdPercent": 80})) == 1


# --------------------------------------------------------------------------- cost against budget


def test_cost_above_budget_minus_headroom():
    stack = replace(compliant_stack(), "fraud-scorer", lambda_fn(**{"monthly-budget-usd": "5"}))
    assert run_stack(finops.cost_within_budget_validator, stack) == [
        (
            "'fraud-scorer' is estimated at $5.40/month (aws-lambda us-east-1, 3,000,000 requests x 120 ms, no free "
            "tier assumed), above its budget $5.00 minus 10% headroom ($4.50): raise finops.monthlyBudgetUsd, or lower "
            "memory, duration, minimum instances or expected traffic.",
            urn(LAMBDA, "fraud-scorer"),
        )
    ]
    # Within budget once the headroom is lowered, and the free tier (when assumed) makes it cheaper still.
    assert run_stack(finops.cost_within_budget_validator, stack, config={"headroomPercent": 0}) == [
        (
            "'fraud-scorer' is estimated at $5.40/month (aws-lambda us-east-1, 3,000,000 requests x 120 ms, no free "
            "tier assumed), above its budget $5.00 minus 0% headroom ($5.00): raise finops.monthlyBudgetUsd, or lower "
            "memory, duration, minimum instances or expected traffic.",
            urn(LAMBDA, "fraud-scorer"),
        )
    ]
    assert run_stack(finops.cost_within_budget_validator, stack, config={"assumeFreeTier": True}) == []


def test_canary_keeps_a_second_revision_warm():
    warm = cloud_run(**{"monthly-budget-usd": "44"})
    warm["template"]["scaling"]["minInstanceCount"] = 1
    # Busy: 3M x 200 ms (120 ms billed in 100 ms steps) = 600,000 s of 1 vCPU + 1 GiB = $15.90, plus
    # $1.20 of requests. With the 90/10 canary both revisions keep one min instance: 2 x 730 h =
    # 5,256,000 instance-s, of which the 600,000 busy ones are already billed at the active rate
    # (issue 10, item 13: not double counted); 4,656,000 idle s x $0.000005 = $23.28. Total $40.38 > $39.60.
    stack = replace(compliant_stack(), "image-tagger", warm)
    stack = replace(stack, "image-tagger-budget", gcp_budget(units="44"))
    assert run_stack(finops.cost_within_budget_validator, stack) == [
        (
            "'image-tagger' is estimated at $40.38/month (gcp-cloud-run us-central1, 3,000,000 requests x 120 ms, "
            "including canary and always-on capacity, no free tier assumed), above its budget $44.00 minus 10% "
            "headroom ($39.60): raise finops.monthlyBudgetUsd, or lower memory, duration, minimum instances or "
            "expected traffic.",
            urn(RUN, "image-tagger"),
        )
    ]
    warm["traffics"] = [{"percent": 100, "type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"}]
    assert run_stack(finops.cost_within_budget_validator, replace(stack, "image-tagger", warm)) == []


def test_lambda_provisioned_concurrency_counts():
    stack = [
        *compliant_stack(),
        (
            "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig",
            "pc",
            {"functionName": "fraud-scorer", "qualifier": "live", "provisionedConcurrentExecutions": 20},
        ),
    ]
    # 20 x 1 GB x 730 h at $0.0000033334/GB-s (arm64) = $175.20; the 360,000 GB-s it serves are billed
    # at the provisioned duration rate $0.0000077778 = $2.80 (issue 10, item 10), requests $0.60.
    assert costs_by_name(stack)["fraud-scorer"] == 178.60
    stack = replace(stack, "fraud-scorer", lambda_fn(**{"monthly-budget-usd": "150"}))
    stack = replace(stack, "fraud-scorer-budget", aws_budget(amount="150"))
    [(message, _)] = run_stack(finops.cost_within_budget_validator, stack)
    assert message.startswith(
        "'fraud-scorer' is estimated at $178.60/month (aws-lambda us-east-1, 3,000,000 "
        "requests x 120 ms, including canary and always-on capacity,"
    )


def test_azure_canary_slot_shares_requests():
    from tests.test_policy_support import webapp

    app = webapp()
    app["siteConfig"]["experiments"] = {"rampUpRules": [{"name": "canary", "reroutePercentage": 10}]}
    flex_slot = webapp()
    flex_slot["functionAppConfig"] = {"scaleAndConcurrency": {"instanceMemoryMB": 2048}}
    flex_slot["slot"] = "canary"
    stack = [*replace(compliant_stack(), "churn-predictor", app), ("azure-native:web:WebAppSlot", "canary", flex_slot)]
    # 90% on Consumption (1,536 MB): 486,000 GB-s x $0.000016 + 2.7M x $0.20/M = $8.32; 10% on Flex 2 GB,
    # each 120 ms execution billed the 1,000 ms minimum: 600,000 GB-s x $0.000026 + 0.3M x $0.40/M = $15.72.
    assert costs_by_name(stack)["churn-predictor"] == round(486000 * 0.000016 + 0.54 + 600000 * 0.000026 + 0.12, 2)


def test_cost_per_1k_inferences_ceiling():
    assert run_stack(finops.cost_per_1k_validator, compliant_stack(), config={"maxUsdPer1kInferences": 0.002}) == [
        (
            "'churn-predictor' costs an estimated $0.0031 per 1,000 inferences (azure-functions-consumption eastus, "
            "3,000,000 requests x 120 ms), above the ceiling $0.0020: reduce memory, duration or always-on capacity, "
            "or raise maxUsdPer1kInferences in the pack config.",
            urn("azure-native:web:WebApp", "churn-predictor"),
        ),
        (
            "'image-tagger' costs an estimated $0.0057 per 1,000 inferences (gcp-cloud-run us-central1, 3,000,000 "
            "requests x 120 ms), above the ceiling $0.0020: reduce memory, duration or always-on capacity, or raise "
            "maxUsdPer1kInferences in the pack config.",
            urn(RUN, "image-tagger"),
        ),
    ]


def test_stack_ceiling_applies_free_tiers_once():
    # Free tiers: Lambda $0.40, Azure $2.64, Cloud Run $11.08, Knative $0.27 -> $14.39.
    assert run_stack(finops.stack_ceiling_validator, compliant_stack(), config={"maxMonthlyUsd": 10}) == [
        (
            "the stack's 4 functions are estimated at $14.39/month (free tiers applied once), above the stack ceiling "
            "$10.00: remove or shrink functions, or raise maxMonthlyUsd in the pack config.",
            None,
        )
    ]
    assert run_stack(finops.stack_ceiling_validator, compliant_stack(), config={"maxMonthlyUsd": 14.4}) == []
    [(message, _)] = run_stack(
        finops.stack_ceiling_validator, compliant_stack(), config={"maxMonthlyUsd": 14.4, "applyFreeTiers": False}
    )
    assert message.startswith("the stack's 4 functions are estimated at $32.01/month (no free tiers)")


def test_kubernetes_node_price_comes_from_config():
    costly = {"kubernetesVcpuHourUsd": 4.45, "kubernetesGibHourUsd": 0.49225}
    assert costs_by_name(compliant_stack(), **costly)["text-classifier"] == 27.17


# --------------------------------------------------------------------------- coverage (advisory)


def test_coverage_warnings():
    far = lambda_fn()
    far["region"] = "ap-southeast-7"
    bare = knative()
    del bare["spec"]["template"]["spec"]["containers"][0]["resources"]
    stack = replace(replace(compliant_stack(), "fraud-scorer", far), "text-classifier", bare)
    stack = replace(stack, "image-tagger", cloud_run(drop=("avg-duration-ms",)))
    version = finops.pricing.load_price_table()["version"]
    assert run_stack(finops.coverage_validator, stack) == [
        (
            f"'fraud-scorer': region 'ap-southeast-7' is not in the aws-lambda price table (version {version}); priced "
            "at the highest listed prices; add the region to prices.json with its source and date.",
            urn(LAMBDA, "fraud-scorer"),
        ),
        (
            "'image-tagger' cannot be priced: avg-duration-ms is not set; set it so the FinOps policies can check the "
            "function.",
            urn(RUN, "image-tagger"),
        ),
        (
            "'text-classifier' cannot be priced: the container declares no CPU/memory requests, so its node share is "
            "unknown; set it so the FinOps policies can check the function.",
            urn("kubernetes:serving.knative.dev/v1:Service", "text-classifier"),
        ),
    ]


# --------------------------------------------------------------------------- issue 10: what the resources declare


def test_cost_inputs_read_from_the_resources():
    from tests.test_policy_support import webapp

    # Azure Consumption at the declared memory-mb (200 MB -> 256 MB), not the 1,536 MB assumption.
    declared = replace(compliant_stack(), "churn-predictor", webapp(**{"memory-mb": "200"}))
    assert costs_by_name(declared)["churn-predictor"] == round(3e6 * 0.12 * 0.25 * 0.000016 + 0.60, 2)
    # Lambda ephemeral storage above 512 MB.
    storage = lambda_fn()
    storage["ephemeralStorage"] = {"size": 10240}
    base = costs_by_name(compliant_stack())["fraud-scorer"]
    priced = costs_by_name(replace(compliant_stack(), "fraud-scorer", storage))["fraud-scorer"]
    assert priced == round(base + 3e6 * 0.12 * 9.5 * 0.0000000309, 2)
    # Cloud Run with CPU always allocated is priced instance-based (no request fee).
    always = cloud_run()
    always["template"]["containers"][0]["resources"]["cpuIdle"] = False
    # 3M x 200 ms = 600,000 instance-s of 1 vCPU + 1 GiB at $0.000018 + $0.000002.
    assert costs_by_name(replace(compliant_stack(), "image-tagger", always))["image-tagger"] == 12.00
    # Flex always-ready instances cost their baseline all month.
    flex = webapp()
    flex["functionAppConfig"] = {
        "scaleAndConcurrency": {"instanceMemoryMB": 2048, "alwaysReady": [{"name": "http", "instanceCount": 1}]}
    }
    cost = costs_by_name(replace(compliant_stack(), "churn-predictor", flex))["churn-predictor"]
    # 3M executions billed 1 s each (the 1,000 ms minimum); one instance serves 2,628,000 s of them at the
    # always-ready rate, the other 372,000 s run on demand; $0.40/M executions on both.
    month_s = 730 * 3600
    expected = month_s * 2 * 0.000004 + month_s * 2 * 0.000016 + (3e6 - month_s) * 2 * 0.000026 + 3 * 0.40
    assert cost == round(expected, 2) == 125.66
