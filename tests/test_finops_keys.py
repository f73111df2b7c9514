"""The stack-scoped function key (brief contract 1): finops computes the value the resources carry."""

from __future__ import annotations

import re

import pytest

from finops.keys import function_key


@pytest.mark.parametrize(
    ("stack", "name", "expected"),
    [
        ("dev", "fraud-scorer", "inferops-dev-fraud-scorer"),  # already a short label: unchanged
        ("staging", "churn-predictor", "inferops-staging-churn-predictor"),
        # upper case and '_' are not label-safe: safe form plus the first 8 hex of sha256("inferops\0Prod_EU\0...")
        ("Prod_EU", "fraud-scorer", "inferops-prod-eu-fraud-scorer-4b6c58ec"),
        # "Fraud.Scorer" and "fraud-scorer" must not collide on one stack
        ("dev", "Fraud.Scorer", "inferops-dev-fraud-scorer-830434d2"),
        # longer than 63: cut to 54, trailing '-' stripped, hash appended
        (
            "a-very-long-stack-name-for-tests",
            "recommendation-ranker-xl-v2",
            "inferops-a-very-long-stack-name-for-tests-recommendati-069b9dc2",
        ),
    ],
)
def test_function_key_is_pinned(stack: str, name: str, expected: str) -> None:
    assert function_key("inferops", stack, name) == expected


def test_every_key_is_a_label_value() -> None:
    # GCP and Kubernetes labels: at most 63 characters of [a-z0-9-]
    for stack in ("dev", "Prod_EU", "x" * 60):
        for name in ("fraud-scorer", "a" * 30, "Fraud.Scorer"):
            assert re.fullmatch(r"[a-z0-9-]{1,63}", function_key("inferops", stack, name))


def test_matches_the_components_implementation_once_it_exists() -> None:
    tags = pytest.importorskip("components.tags")
    impl = getattr(tags, "function_key", None)
    if impl is None:
        pytest.skip("components.tags.function_key lands with issue 9")
    for stack, name in (("dev", "fraud-scorer"), ("Prod_EU", "fraud-scorer"), ("dev", "Fraud.Scorer")):
        assert impl("inferops", stack, name) == function_key("inferops", stack, name)
