"""Stack config: the per-function ``capture`` block, its defaults in ``inferops:defaults``, and
``model.referenceUri`` (design.md); schema/stack-config.schema.json carries them."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from components.spec import SpecError, parse_stack_config
from tests.conftest import function_config

ROOT = Path(__file__).resolve().parent.parent


def test_capture_defaults_when_the_stack_says_nothing(dev_config: dict[str, Any]) -> None:
    for fn in parse_stack_config(dev_config).functions:
        c = fn.capture
        # Kubernetes needs a destination (the pod's writer): the dev stack names one for sentiment.
        own = "s3://example-inferops-captures/sentiment" if fn.platform == "kubernetes" else None
        assert (c.enabled, c.sample_percent, c.retention_days, c.destination) == (True, 100.0, 30, own)
        assert c.keep_in_logs is False  # GCP: capture entries leave the _Default log bucket
        assert fn.model.reference_uri is None


def test_capture_defaults_merge_under_each_function(dev_config: dict[str, Any]) -> None:
    config = copy.deepcopy(dev_config)
    config["inferops:defaults"]["capture"] = {"samplePercent": 5, "retentionDays": 14}
    function_config(config, "fraud-scorer")["capture"] = {"samplePercent": 0.5, "destination": "s3://lake/cap"}
    function_config(config, "fraud-scorer")["model"]["referenceUri"] = "s3://lake/ref/fraud.parquet"
    by = {f.name: f for f in parse_stack_config(config).functions}
    own, other = by["fraud-scorer"].capture, by["sentiment"].capture
    assert (own.sample_percent, own.retention_days, own.destination) == (0.5, 14, "s3://lake/cap")
    assert (other.sample_percent, other.retention_days) == (5.0, 14)
    assert other.destination == "s3://example-inferops-captures/sentiment"  # its own, from the stack
    assert by["fraud-scorer"].model.reference_uri == "s3://lake/ref/fraud.parquet"
    assert all(f.finops.cost_center for f in by.values())  # finops defaults still merge


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("capture.samplePercent", 101, "capture.samplePercent: Input should be less than or equal to 100"),
        ("capture.samplePercent", -1, "capture.samplePercent: Input should be greater than or equal to 0"),
        ("capture.retentionDays", 0, "capture.retentionDays: Input should be greater than or equal to 1"),
        ("capture.destination", "https://lake/cap", "capture.destination: String should match pattern"),
        ("capture.enabled", "yes", "capture.enabled: Input should be a valid boolean"),
        ("capture.keepInLogs", "no", "capture.keepInLogs: Input should be a valid boolean"),
        ("capture.every", 1, "capture.every: unknown key"),
        ("model.referenceUri", "ftp://x/ref.parquet", "model.referenceUri: String should match pattern"),
    ],
)
def test_bad_capture_settings_name_the_field(dev_config: dict[str, Any], path: str, value: Any, message: str) -> None:
    config = copy.deepcopy(dev_config)
    node = function_config(config, "fraud-scorer")
    *parents, leaf = path.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    with pytest.raises(SpecError, match=r"^inferops:functions\[fraud-scorer\]\." + re.escape(message)):
        parse_stack_config(config)


def test_defaults_capture_must_be_a_mapping(dev_config: dict[str, Any]) -> None:
    config = copy.deepcopy(dev_config)
    config["inferops:defaults"]["capture"] = 50
    with pytest.raises(SpecError, match=r"^inferops:defaults\.capture: must be a mapping"):
        parse_stack_config(config)


def test_the_schema_file_carries_capture_and_reference_uri() -> None:
    text = (ROOT / "schema" / "stack-config.schema.json").read_text()
    schema = json.loads(text)
    assert "CaptureSpec" in json.dumps(schema) and "referenceUri" in text and "samplePercent" in text
    assert schema["$defs"]["CaptureSpec"]["properties"]["keepInLogs"]["default"] is False


def test_kubernetes_capture_needs_a_destination(dev_config: dict[str, Any]) -> None:
    """The pod's batched writer is the capture path on Kubernetes: it needs somewhere to write."""
    config = copy.deepcopy(dev_config)
    function_config(config, "sentiment").pop("capture", None)
    with pytest.raises(SpecError, match=r"capture\.destination: required on Kubernetes"):
        parse_stack_config(config)
    function_config(config, "sentiment")["capture"] = {"enabled": False}
    assert not {f.name: f for f in parse_stack_config(config).functions}["sentiment"].capture.enabled
    function_config(config, "sentiment")["capture"] = {"destination": "az://container-only"}
    with pytest.raises(SpecError, match=r"capture\.destination: must be az://<storage account>"):
        parse_stack_config(config)
