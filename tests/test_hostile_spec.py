"""Issue 11, item 9: values that passed validation and must not.

``re.match(r"^...$")`` matches before a trailing newline, so ``"fraud\\n"`` was a valid name; control
characters reached error messages raw (a terminal escape in CI logs); a budget of ``5e-324`` made the
JSON plan carry ``Infinity``; request volumes and URLs were unbounded.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from components.spec import MAX_URL_LENGTH, SpecError, parse_stack_config
from inferops.harness import load_stack_file

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dev() -> dict[str, Any]:
    return load_stack_file(ROOT / "Pulumi.dev.yaml")


def _fn(c: dict[str, Any], i: int = 0) -> dict[str, Any]:
    fn: dict[str, Any] = c["inferops:functions"][i]
    return fn


def _with(dev: dict[str, Any], path: str, value: Any, fn: int = 0) -> dict[str, Any]:
    """A copy of the dev config with ``path`` (dotted, under function ``fn`` or a top-level key) set."""
    c = copy.deepcopy(dev)
    if path.startswith("inferops:"):
        c[path] = value
        return c
    node = _fn(c, fn)
    *parents, leaf = path.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    return c


# (field path, value with a trailing newline) for every name, region, id, owner and URL
TRAILING_NEWLINE = [
    ("name", "fraud-scorer\n"),
    ("region", "us-east-1\n"),
    ("model.id", "fraud-scorer\n"),
    ("model.version", "2.2.0\n"),
    ("model.stableVersion", "2.1.0\n"),
    ("model.cardUrl", "https://models.example.com/fraud-scorer/card\n"),
    ("model.lineageUrl", "https://lineage.example.com/fraud-scorer\n"),
    ("model.approvalRef", "https://github.com/example/models/pull/42\n"),
    ("finops.costCenter", "fraud-analytics\n"),
    ("finops.owner", "ml-platform@example.com\n"),
    ("finops.environment", "dev\n"),
    ("inferops:gcpBillingAccount", "012345-6789AB-CDEF01\n"),
    ("inferops:budgetAlertEmails", ["ml-platform-alerts@example.com\n"]),
]


@pytest.mark.parametrize(("path", "value"), TRAILING_NEWLINE, ids=[p for p, _ in TRAILING_NEWLINE])
def test_a_trailing_newline_is_rejected(dev: dict[str, Any], path: str, value: Any) -> None:
    with pytest.raises(SpecError) as err:
        parse_stack_config(_with(dev, path, value))
    assert "\n" not in str(err.value)


def test_gcp_region_with_a_trailing_newline_is_rejected(dev: dict[str, Any]) -> None:
    gcp = next(i for i, f in enumerate(dev["inferops:functions"]) if f["platform"] == "gcp")
    region = _fn(dev, gcp)["region"]
    with pytest.raises(SpecError, match="region"):
        parse_stack_config(_with(dev, "region", region + "\n", fn=gcp))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("name", "\x1b[31mred"),
        ("model.artifactUri", "s3://example-models/\x1b[2J/model.json"),
        ("model.cardUrl", "https://models.example.com/\x07card"),
        ("finops.owner", "ml\x1b@example.com"),
        ("model.id", "fraud\u2028scorer"),
        ("retraining", {"reason": "drift\x1b[0m", "reportDigest": "sha256:" + "0" * 64, "requestedAt": "2026-01-01"}),
    ],
)
def test_control_characters_are_rejected_and_never_echoed_raw(dev: dict[str, Any], path: str, value: Any) -> None:
    with pytest.raises(SpecError) as err:
        parse_stack_config(_with(dev, path, value))
    message = str(err.value)
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 or ch in "\u2028\u2029" for ch in message), message


def test_control_characters_in_keys_are_escaped_in_messages(dev: dict[str, Any]) -> None:
    c = copy.deepcopy(dev)
    c["inferops:\x1b[31mevil"] = 1
    with pytest.raises(SpecError) as err:
        parse_stack_config(c)
    assert "\x1b" not in str(err.value) and "\\u001b" in str(err.value)
    c = copy.deepcopy(dev)
    _fn(c)["\x1b]0;title\x07"] = 1
    with pytest.raises(SpecError) as err:
        parse_stack_config(c)
    assert "\x1b" not in str(err.value) and "\x07" not in str(err.value)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("finops.monthlyBudgetUsd", 5e-324),
        ("finops.monthlyBudgetUsd", 0.001),
        ("finops.monthlyBudgetUsd", math.inf),
        ("finops.monthlyBudgetUsd", math.nan),
        ("finops.avgDurationMs", math.nan),
        ("model.fairnessScore", math.nan),
        ("finops.expectedMonthlyRequests", 10**13),
        ("finops.expectedMonthlyRequests", 10**400),
        ("runtime.memoryMb", 10**30),
        ("runtime.timeoutSeconds", 10**30),
        ("scaling.minInstances", 10**30),
    ],
)
def test_numbers_are_finite_and_bounded(dev: dict[str, Any], path: str, value: Any) -> None:
    with pytest.raises(SpecError) as err:
        parse_stack_config(_with(dev, path, value))
    assert path.split(".")[-1] in str(err.value)
    assert len(str(err.value)) < 300


def test_infinity_from_the_engine_json_is_rejected(dev: dict[str, Any]) -> None:
    # Under `pulumi up` config arrives as JSON text, and Python's json accepts Infinity and NaN.
    fns = json.loads(
        json.dumps(dev["inferops:functions"]).replace('"monthlyBudgetUsd": 400', '"monthlyBudgetUsd": Infinity')
    )
    with pytest.raises(SpecError, match="monthlyBudgetUsd"):
        parse_stack_config({**dev, "inferops:functions": fns})


@pytest.mark.parametrize(
    "path",
    ["model.cardUrl", "model.lineageUrl", "model.approvalRef", "model.artifactUri"],
)
def test_urls_are_bounded_and_not_echoed_whole(dev: dict[str, Any], path: str) -> None:
    base = "s3://example-models/" if path == "model.artifactUri" else "https://models.example.com/"
    huge = base + "a" * (10 * 1024 * 1024)
    with pytest.raises(SpecError) as err:
        parse_stack_config(_with(dev, path, huge))
    assert str(MAX_URL_LENGTH) in str(err.value)
    assert len(str(err.value)) < 300
    ok = base + "a" * (MAX_URL_LENGTH - len(base))
    parse_stack_config(_with(dev, path, ok))


def test_the_smallest_accepted_budget_gives_a_finite_plan_value(dev: dict[str, Any]) -> None:
    stack = parse_stack_config(_with(dev, "finops.monthlyBudgetUsd", 0.01))
    fn = stack.functions[0]
    assert fn.finops.monthly_budget_usd == 0.01
    assert math.isfinite(100.0 * 1e7 / fn.finops.monthly_budget_usd)  # budget_used_percent of a costly month


def test_plan_json_never_carries_infinity() -> None:
    from inferops.plan import render

    plan = {"functions": [], "budget_used_percent": math.inf}
    with pytest.raises(ValueError):
        render(plan, "json")
