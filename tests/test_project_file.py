"""Pulumi.yaml is a valid project file, and the stack-config JSON Schema is current and accurate."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from components.spec import CONFIG_KEYS, NAMESPACE, stack_config_json_schema
from tests.conftest import ROOT

SCHEMA_FILE = ROOT / "schema" / "stack-config.schema.json"
# pulumi/pulumi sdk/go/common/workspace/project.json: "simpleConfigType" is one of these; object
# values cannot be declared, which is why the structured keys have the JSON Schema instead.
PULUMI_CONFIG_TYPES = {"string", "integer", "boolean", "array"}


def _check_type(decl: dict[str, Any], where: str) -> None:
    assert decl.get("type") in PULUMI_CONFIG_TYPES, where
    if decl["type"] == "array":
        assert "items" in decl, f"{where}: an array needs items"
        _check_type(decl["items"], f"{where}.items")


def test_project_file_declares_only_types_pulumi_accepts() -> None:
    project = YAML(typ="safe").load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "inferops"
    assert project["runtime"]["name"] == "python"
    for key, decl in project["config"].items():
        namespace, _, short = key.partition(":")
        assert namespace == NAMESPACE and short in CONFIG_KEYS, key
        _check_type(decl, key)
        # Pulumi requires a value in every stack for a declared key without a default
        assert "default" in decl, f"{key}: optional keys need a default"
        assert set(decl) <= {"type", "items", "description", "default", "secret"}, key


def test_schema_file_is_generated_from_the_spec() -> None:
    expected = json.dumps(stack_config_json_schema(), indent=2, sort_keys=True) + "\n"
    assert SCHEMA_FILE.read_text() == expected, "regenerate schema/stack-config.schema.json (see README)"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_dev_and_test_stacks_match_the_schema(validator: jsonschema.Draft202012Validator) -> None:
    for path in [ROOT / "Pulumi.dev.yaml", *sorted((ROOT / "tests" / "stacks").glob("Pulumi.*.yaml"))]:
        config = YAML(typ="safe").load(path.read_text())["config"]
        errors = [e.message for e in validator.iter_errors(config)]
        assert errors == [], path.name


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("runtime", "memry"), 1),
        (("platform",), "heroku"),
        (("model", "fairnessScore"), 1.5),
        (("traffic", "canaryPercent"), "10"),
    ],
)
def test_schema_rejects_what_the_spec_rejects(
    validator: jsonschema.Draft202012Validator, dev_config: dict[str, Any], path: tuple[str, ...], value: Any
) -> None:
    config = copy.deepcopy(dev_config)
    node = config["inferops:functions"][0]
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    assert not validator.is_valid(config)
