"""The price table and cost model against the worked examples the providers publish."""

from __future__ import annotations

import pytest

from tests.test_policy_support import pricing


def cents(amount: float) -> float:
    return round(amount + 1e-9, 2)


def test_table_is_dated_and_sourced():
    table = pricing.load_price_table()
    assert table["version"]
    for product in ("aws-lambda", "azure-functions-consumption", "azure-functions-flex", "gcp-cloud-run"):
        entry = table[product]
        assert entry["source"].startswith("https://") and entry["as_of"].startswith("2026-")
        assert entry["default_region"] in entry["regions"]


def test_aws_lambda_example_1():
    """aws.amazon.com/lambda/pricing, Example 1 (US East, N. Virginia): 512 MB, 3M invocations of 1 s.

    Published: compute 1,100,000 GB-s x $0.00001667 = $18.34, requests 2M x $0.20/M = $0.40, total
    $18.74. The page rounds the rate to $0.00001667; the table keeps the list price $0.0000166667,
    which bills $18.33 for the same GB-seconds, so the example is reproduced at the page's rate and
    the one-cent difference at the list price is asserted too.
    """
    usage = pricing.lambda_usage(
        requests=3_000_000, duration_ms=1000, memory_mb=512, architecture="x86_64", region="us-east-1"
    )
    assert usage.quantities["gb_seconds"] == 1_500_000
    assert cents(pricing.stack_cost([usage])) == 18.73
    usage.prices["gb_second"] = 0.00001667  # the rate as printed in the example
    assert cents(pricing.stack_cost([usage])) == 18.74
    assert cents(usage.cost()) == cents(1_500_000 * 0.00001667 + 0.60)


def test_aws_lambda_example_2():
    """aws.amazon.com/lambda/pricing, Example 2: 128 MB, 30M invocations of 200 ms.

    Published: 750,000 GB-s - 400,000 free = 350,000 x $0.00001667 = $5.83; 29M requests = $5.80;
    total $11.63.
    """
    usage = pricing.lambda_usage(requests=30_000_000, duration_ms=200, memory_mb=128, region="us-east-1")
    assert usage.quantities["gb_seconds"] == 750_000
    assert cents(pricing.stack_cost([usage])) == 11.63


def test_azure_functions_consumption_example():
    """azure.microsoft.com/pricing/details/functions, pricing example: observed memory 512 MB,
    3,000,000 executions of 1 s. Published: 1.5M GB-s - 400,000 free = 1.1M GB-s x $0.000016 = $17.60;
    2M billable executions x $0.20/M = $0.40; total $18.00."""
    usage = pricing.azure_functions_usage(requests=3_000_000, duration_ms=1000, memory_mb=512, region="eastus")
    assert usage.quantities["gb_seconds"] == 1_500_000
    assert cents(pricing.stack_cost([usage])) == 18.00


def test_cloud_run_from_published_unit_prices():
    """cloud.google.com/run/pricing publishes unit prices and free tiers (request-based billing, Tier 1:
    $0.000024/vCPU-s, $0.0000025/GiB-s, $0.40/M requests; free 180,000 vCPU-s, 360,000 GiB-s, 2M
    requests) but no worked example, so this one is derived by hand from those figures:
    10M requests x 200 ms, 1 vCPU, 512 MiB -> 2,000,000 vCPU-s (1,820,000 billable) = $43.68,
    1,000,000 GiB-s (640,000 billable) = $1.60, 8M requests = $3.20; total $48.48."""
    usage = pricing.cloud_run_usage(requests=10_000_000, duration_ms=200, vcpu=1, memory_gib=0.5, region="us-central1")
    assert cents(pricing.stack_cost([usage])) == 48.48
    assert cents(usage.cost()) == cents(48.0 + 2.50 + 4.0)  # no free tier: all 2M vCPU-s, 1M GiB-s, 10M requests


def test_billing_granularity():
    # Cloud Run rounds each request up to 100 ms; Azure Consumption bills at least 100 ms and memory
    # in 128 MB steps; Lambda bills per 1 ms.
    run = pricing.cloud_run_usage(requests=1000, duration_ms=120, vcpu=1, memory_gib=1, region="us-central1")
    assert run.quantities["vcpu_seconds"] == pytest.approx(200.0)
    azure = pricing.azure_functions_usage(requests=1000, duration_ms=50, memory_mb=200, region="eastus")
    assert azure.quantities["gb_seconds"] == pytest.approx(1000 * 0.1 * 0.25)
    aws = pricing.lambda_usage(requests=1000, duration_ms=120.4, memory_mb=1024, region="us-east-1")
    assert aws.quantities["gb_seconds"] == pytest.approx(121.0)


def test_arm64_is_cheaper_and_region_fallback_warns():
    arm = pricing.lambda_usage(requests=1e6, duration_ms=100, memory_mb=1024, architecture="arm64", region="us-east-1")
    x86 = pricing.lambda_usage(requests=1e6, duration_ms=100, memory_mb=1024, region="us-east-1")
    assert arm.cost() < x86.cost() and not arm.warnings
    far = pricing.lambda_usage(requests=1e6, duration_ms=100, memory_mb=1024, region="ap-south-1")
    assert far.region == "us-east-1"
    assert far.warnings == [
        "region 'ap-south-1' is not in the aws-lambda price table "
        f"(version {pricing.load_price_table()['version']}); priced as us-east-1"
    ]


def test_free_tier_applies_once_per_stack():
    a = pricing.lambda_usage(requests=1_000_000, duration_ms=1000, memory_mb=300 * 1024 / 1000, region="us-east-1")
    b = pricing.lambda_usage(requests=1_000_000, duration_ms=1000, memory_mb=300 * 1024 / 1000, region="us-east-1")
    alone = pricing.stack_cost([a])
    together = pricing.stack_cost([a, b])
    # Each alone fits the 400,000 GB-s / 1M request free tier; together 200,000 GB-s and 1M requests are billed.
    assert cents(alone) == 0.0
    assert cents(together) == cents(200_000 * 0.0000166667 + 0.20)
    assert cents(pricing.stack_cost([a, b], apply_free_tiers=False)) == cents(a.cost() + b.cost())


def test_provisioned_concurrency_and_min_instances_cost_all_month():
    pc = pricing.lambda_usage(
        requests=0, duration_ms=100, memory_mb=1024, region="us-east-1", provisioned_concurrency=2
    )
    assert cents(pc.cost()) == cents(2 * 1 * 730 * 3600 * 0.0000041667)
    one = pricing.cloud_run_usage(
        requests=0, duration_ms=0, vcpu=1, memory_gib=1, region="us-central1", min_instances=1, serving_revisions=1
    )
    canary = pricing.cloud_run_usage(
        requests=0, duration_ms=0, vcpu=1, memory_gib=1, region="us-central1", min_instances=1, serving_revisions=2
    )
    assert canary.cost() == pytest.approx(2 * one.cost())


def test_knative_node_share():
    usage = pricing.knative_usage(
        requests=0, duration_ms=0, vcpu=0.5, memory_gib=1, vcpu_hour_usd=0.0445, gib_hour_usd=0.0049225, min_scale=1
    )
    assert cents(usage.cost()) == 19.84  # (0.5 x 0.0445 + 1 x 0.0049225) x 730 h
    busy = pricing.knative_usage(
        requests=3_600_000,
        duration_ms=1000,
        vcpu=1,
        memory_gib=0,
        vcpu_hour_usd=0.04,
        gib_hour_usd=0,
        container_concurrency=10,
    )
    assert cents(busy.cost()) == 4.00  # 3.6M s / 10 concurrent = 100 pod-hours x $0.04


@pytest.mark.parametrize(("raw", "vcpu"), [("1", 1.0), ("500m", 0.5), (2, 2.0), ("x", None), ("", None)])
def test_parse_cpu(raw, vcpu):
    assert pricing.parse_cpu(raw) == vcpu


@pytest.mark.parametrize(
    ("raw", "gib"), [("512Mi", 0.5), ("1Gi", 1.0), ("2G", 2e9 / 1024**3), (1073741824, 1.0), ("lots", None)]
)
def test_parse_memory(raw, gib):
    assert pricing.parse_memory_gib(raw) == (pytest.approx(gib) if gib is not None else None)
