# TEMPORARY (deleted before reporting): runs the GCP tests on a gcp-only dev config while other
# platforms' components are not written yet.
import copy

import pytest

from inferops.harness import load_stack_file, run_program
from tests.conftest import DEV_STACK
from tests.test_component_gcp import *  # noqa: F403


@pytest.fixture(scope="session")
def dev_config():
    cfg = copy.deepcopy(load_stack_file(DEV_STACK))
    cfg["inferops:functions"] = [f for f in cfg["inferops:functions"] if f["platform"] == "gcp"]
    return cfg


@pytest.fixture(scope="session")
def dev_run(dev_config):
    return run_program(DEV_STACK, config=dev_config, stack="dev")
