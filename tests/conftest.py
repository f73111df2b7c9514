"""Shared fixtures: the dev stack's config and the program run under Pulumi's mocks."""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from inferops.harness import ProgramRun, load_stack_file, run_program  # noqa: E402
from tests.emulators import azure_env, azurite_server, gcs_env, gcs_server, s3_env, s3_server  # noqa: E402, F401

DEV_STACK = ROOT / "Pulumi.dev.yaml"

#: The metadata keys of the design contract (shared/design.md), written out independently of
#: components/tags.py so that a regression there shows. ``approval-ref`` is only set for some models.
DESIGN_KEYS = frozenset(
    {
        "cost-center",
        "owner",
        "environment",
        "model-id",
        "model-version",
        "model-card-url",
        "data-lineage-url",
        "fairness-score",
        "risk-tier",
        "monthly-budget-usd",
        "expected-monthly-requests",
        "avg-duration-ms",
        "managed-by",
    }
)
#: The key every budget filters on (only one function's resources carry its value).
FUNCTION_KEY = "function-name"


@pytest.fixture(scope="session")
def dev_config() -> dict[str, Any]:
    """The ``config:`` mapping of Pulumi.dev.yaml (plain Python values). Copy before editing."""
    return load_stack_file(DEV_STACK)


@pytest.fixture(scope="session")
def dev_run() -> ProgramRun:
    """The whole program for the dev stack, run once per session under mocks."""
    return run_program(DEV_STACK)


def function_config(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The mutable entry of function ``name`` in a config mapping."""
    for fn in config["inferops:functions"]:
        if fn["name"] == name:
            return fn  # type: ignore[no-any-return]
    raise KeyError(name)


@pytest.fixture
def run_edited(dev_config: dict[str, Any]) -> Callable[[Callable[[dict[str, Any]], None]], ProgramRun]:
    """Run the program on a deep copy of the dev config after ``edit(config)`` changed it."""

    def _run(edit: Callable[[dict[str, Any]], None]) -> ProgramRun:
        config = copy.deepcopy(dev_config)
        edit(config)
        return run_program(DEV_STACK, config=config, stack="dev")

    return _run
