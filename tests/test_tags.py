"""components/tags.py: every design key, in each cloud's charset, from one pure function."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from components.spec import FunctionSpec, parse_stack_config
from components.tags import K8S_PREFIX, cloud_metadata, logical_metadata
from tests.conftest import DESIGN_KEYS

AWS_CHARSET = re.compile(r"^[\w .:/=+\-@]{0,256}$", re.ASCII)
GCP_LABEL = re.compile(r"^[a-z0-9_-]{0,63}$")
K8S_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")


@pytest.fixture
def functions(dev_config: dict[str, Any]) -> list[FunctionSpec]:
    return parse_stack_config(dev_config).functions


def test_logical_metadata_has_every_design_key(functions: list[FunctionSpec]) -> None:
    fraud = functions[0]
    meta = logical_metadata(fraud)
    assert DESIGN_KEYS | {"approval-ref", "function-name"} == set(meta)
    assert meta["fairness-score"] == "0.93"
    assert meta["monthly-budget-usd"] == "400"
    assert meta["model-version"] == "2.2.0"
    # approval-ref only when set
    assert "approval-ref" not in logical_metadata(functions[1])


@pytest.mark.parametrize("platform", ["aws", "azure"])
def test_tag_clouds_keep_keys_and_charset(functions: list[FunctionSpec], platform: str) -> None:
    for fn in functions:
        md = cloud_metadata(fn, platform)  # type: ignore[arg-type]
        assert set(md.tags) >= DESIGN_KEYS
        assert md.labels == {} and md.annotations == {}
        for key, value in md.tags.items():
            if platform == "aws":
                assert AWS_CHARSET.match(value), (key, value)
            else:
                assert not set(key) & set("<>%&\\?/") and len(value) <= 256


def test_aws_replaces_forbidden_characters(dev_config: dict[str, Any]) -> None:
    config = copy.deepcopy(dev_config)
    config["inferops:functions"][0]["model"]["cardUrl"] = "https://models.example.com/card?id=1&v=2#top"
    fn = parse_stack_config(config).functions[0]
    assert cloud_metadata(fn).tags["model-card-url"] == "https://models.example.com/card_id=1_v=2_top"


def test_gcp_labels_are_label_safe_and_the_rest_are_annotations(functions: list[FunctionSpec]) -> None:
    md = cloud_metadata(functions[2])
    assert functions[2].platform == "gcp"
    assert set(md.labels) | set(md.annotations) >= DESIGN_KEYS
    assert not set(md.labels) & set(md.annotations)
    for key, value in md.labels.items():
        assert GCP_LABEL.match(key) and GCP_LABEL.match(value), (key, value)
    # URLs, e-mail addresses, dotted versions and decimals cannot be label values
    for key in ("model-card-url", "data-lineage-url", "owner", "model-version", "fairness-score"):
        assert key in md.annotations and key not in md.labels
    assert md.labels["risk-tier"] == "limited"
    assert md.labels["function-name"] == "doc-classifier"


def test_kubernetes_keys_are_prefixed(functions: list[FunctionSpec]) -> None:
    md = cloud_metadata(functions[3])
    assert {K8S_PREFIX + k for k in DESIGN_KEYS} <= set(md.annotations)
    for key, value in md.labels.items():
        assert key.startswith(K8S_PREFIX) and K8S_LABEL_VALUE.match(value), (key, value)
    assert md.labels[K8S_PREFIX + "model-version"] == "0.9.0"
    assert K8S_PREFIX + "model-card-url" not in md.labels


def test_retraining_request_is_carried(dev_config: dict[str, Any]) -> None:
    config = copy.deepcopy(dev_config)
    config["inferops:functions"][0]["retraining"] = {
        "reason": "minor data drift",
        "reportDigest": "sha256:" + "ab" * 32,
        "requestedAt": "2026-11-25",
    }
    meta = logical_metadata(parse_stack_config(config).functions[0])
    assert meta["retraining-requested-at"] == "2026-11-25"
    assert meta["retraining-report-digest"] == "ab" * 8
