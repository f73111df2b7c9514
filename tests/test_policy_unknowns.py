"""Preview semantics at the validator level: an unknown property means "cannot judge yet", so the
compliant fixtures stay free of violations (and of exceptions) whichever of their inputs is unknown."""

from __future__ import annotations

import copy

import pytest

from tests.test_policy_support import (
    UNKNOWN,
    compliant_stack,
    finops,
    responsible_ai,
    run_resource,
    run_stack,
    security,
)

RESOURCE_VALIDATORS = [
    responsible_ai.rai_metadata_validator,
    responsible_ai.rai_fairness_floor_validator,
    responsible_ai.rai_high_risk_approval_validator,
    finops.tags_validator,
    security.public_endpoint_validator,
    security.plaintext_secrets_validator,
    security.iam_wildcards_validator,
    security.azure_https_tls_validator,
    security.log_retention_validator,
]
STACK_VALIDATORS = [
    finops.budget_coverage_validator,
    finops.cost_within_budget_validator,
    finops.cost_per_1k_validator,
    finops.stack_ceiling_validator,
    finops.coverage_validator,
]


def _paths(value, prefix=()):
    """Every path to a value inside nested dicts/lists."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _set_unknown(props, path):
    mutated = copy.deepcopy(props)
    target = mutated
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = UNKNOWN
    return mutated


@pytest.mark.parametrize(("rtype", "name", "props"), compliant_stack(), ids=[r[1] for r in compliant_stack()])
def test_any_unknown_input_gives_no_violation(rtype, name, props):
    for path in _paths(props):
        if not path:
            continue
        mutated = _set_unknown(props, path)
        for validator in RESOURCE_VALIDATORS:
            assert run_resource(validator, rtype, mutated, name=name) == [], (validator.__name__, path)
        stack = [(t, n, mutated if n == name else p) for t, n, p in compliant_stack()]
        for validator in STACK_VALIDATORS:
            assert run_stack(validator, stack) == [], (validator.__name__, path)


def test_unknown_policy_document_is_not_judged():
    assert (
        run_resource(
            security.iam_wildcards_validator, "aws:iam/rolePolicy:RolePolicy", {"role": "r", "policy": UNKNOWN}
        )
        == []
    )
    assert (
        run_resource(security.log_retention_validator, "aws:cloudwatch/logGroup:LogGroup", {"retentionInDays": UNKNOWN})
        == []
    )
