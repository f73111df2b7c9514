"""components/tags.py: every design key, in each cloud's charset, from one pure function."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from components.spec import FunctionSpec, parse_stack_config
from components.tags import (
    K8S_PREFIX,
    MEMORY_KEY,
    cloud_metadata,
    function_key,
    gcp_label_value,
    gcp_labels_only,
    k8s_label_value,
    logical_metadata,
    scoped_name,
)
from tests.conftest import DESIGN_KEYS

AWS_CHARSET = re.compile(r"^[\w .:/=+\-@]{0,256}$", re.ASCII)
GCP_LABEL = re.compile(r"^[a-z0-9_-]{0,63}$")
K8S_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")


@pytest.fixture
def functions(dev_config: dict[str, Any]) -> list[FunctionSpec]:
    return parse_stack_config(dev_config).functions


def test_logical_metadata_has_every_design_key(functions: list[FunctionSpec]) -> None:
    fraud = functions[0]
    meta = logical_metadata(fraud, stack="dev")
    assert DESIGN_KEYS | {"approval-ref", "function-name", "stack"} == set(meta)
    assert meta["stack"] == "dev" and meta["function-name"] == "inferops-dev-fraud-scorer"
    assert meta["fairness-score"] == "0.93"
    assert meta["monthly-budget-usd"] == "400"
    assert meta["model-version"] == "2.2.0"
    # approval-ref only when set
    assert "approval-ref" not in logical_metadata(functions[1], stack="dev")


@pytest.mark.parametrize("platform", ["aws", "azure"])
def test_tag_clouds_keep_keys_and_charset(functions: list[FunctionSpec], platform: str) -> None:
    for fn in functions:
        md = cloud_metadata(fn, platform, stack="dev")  # type: ignore[arg-type]
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
    assert cloud_metadata(fn, stack="dev").tags["model-card-url"] == "https://models.example.com/card_id=1_v=2_top"


def test_gcp_labels_are_label_safe_and_the_rest_are_annotations(functions: list[FunctionSpec]) -> None:
    md = cloud_metadata(functions[2], stack="dev")
    assert functions[2].platform == "gcp"
    assert set(md.labels) | set(md.annotations) >= DESIGN_KEYS
    for key, value in md.labels.items():
        assert GCP_LABEL.match(key) and GCP_LABEL.match(value), (key, value)
    assert not set(md.labels) & set(md.annotations)
    # URLs, e-mail addresses, dotted versions and decimals cannot be label values
    for key in ("model-card-url", "data-lineage-url", "owner", "model-version", "fairness-score"):
        assert key in md.annotations and key not in md.labels
    assert md.labels["risk-tier"] == "limited" and "risk-tier" not in md.annotations
    assert md.labels["function-name"] == "inferops-dev-doc-classifier"


def test_kubernetes_keys_are_prefixed(functions: list[FunctionSpec]) -> None:
    md = cloud_metadata(functions[3], stack="dev")
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
    meta = logical_metadata(parse_stack_config(config).functions[0], stack="dev")
    assert meta["retraining-requested-at"] == "2026-11-25"
    assert meta["retraining-report-digest"] == "ab" * 8


# --- the stack-scoped function key (BRIEF contract 1, written out here independently) -------------


def _contract_key(project: str, stack: str, name: str) -> str:
    import hashlib

    raw = f"{project}-{stack}-{name}"
    safe = re.sub(r"[^a-z0-9-]", "-", raw.lower())
    if safe == raw and len(raw) <= 63:
        return raw
    digest = hashlib.sha256(f"{project}\0{stack}\0{name}".encode()).hexdigest()[:8]
    return f"{safe[:54].rstrip('-')}-{digest}"


NAME_63 = "fraud-scorer-realtime-transactions-euw1-" + "a" * 22 + "z"


@pytest.mark.parametrize(
    ("stack", "name"),
    [
        ("dev", "fraud-scorer"),
        ("prod", "fraud-scorer"),
        ("dev", "fraud-scorer-realtime-transactions-euw1"),
        ("dev", NAME_63),
        ("Prod_EU", "churn"),
        ("dev.blue", "x"),
        ("dev", "a" * 50),  # "inferops-dev-" + 50 = 63: the plain form still fits
        ("dev", "a" * 51),  # 64: hashed
    ],
)
def test_function_key_follows_the_contract(stack: str, name: str) -> None:
    key = function_key("inferops", stack, name)
    assert key == _contract_key("inferops", stack, name)
    # a valid GCP label value and Kubernetes label value, and a DNS label
    assert GCP_LABEL.match(key) and K8S_LABEL_VALUE.match(key) and len(key) <= 63


def test_function_key_is_stack_scoped_and_distinct_at_the_limit() -> None:
    assert function_key("inferops", "dev", "fraud-scorer") == "inferops-dev-fraud-scorer"
    assert function_key("inferops", "dev", "x") != function_key("inferops", "prod", "x")
    # names that only differ after the 54th character stay distinct
    a, b = NAME_63, NAME_63[:-1] + "y"
    assert function_key("inferops", "dev", a) != function_key("inferops", "dev", b)
    assert len(function_key("inferops", "dev", a)) == 63


@pytest.mark.parametrize("max_len", [24, 30, 40, 44, 52, 63, 64, 90])
@pytest.mark.parametrize("name", ["f", "fraud-scorer", NAME_63])
@pytest.mark.parametrize("suffix", ["", "-role", "-plan"])
def test_scoped_names_fit_and_stay_distinct(max_len: int, name: str, suffix: str) -> None:
    got = scoped_name("inferops", "dev", name, max_len=max_len, suffix=suffix)
    assert len(got) <= max_len and re.match(r"^[a-z0-9][a-z0-9-]*$", got) and got.endswith(suffix)
    assert not got.removesuffix(suffix).endswith("-")
    assert got != scoped_name("inferops", "prod", name, max_len=max_len, suffix=suffix)
    assert got != scoped_name("inferops", "dev", name + "x", max_len=max_len, suffix=suffix)
    assert got == scoped_name("inferops", "dev", name, max_len=max_len, suffix=suffix)  # stable


@pytest.mark.parametrize(
    "value", ["RecSys-Ranker-XL", "meta-llama/Llama-3.1-8B-Instruct", "CC-1234-EU", "ml@example.com", "x" * 80, "-a-"]
)
def test_label_safe_forms_are_valid_and_deterministic(value: str) -> None:
    g, k = gcp_label_value(value), k8s_label_value(value)
    assert GCP_LABEL.match(g) and K8S_LABEL_VALUE.match(k), (g, k)
    assert g == gcp_label_value(value) and k == k8s_label_value(value)


def test_case_is_kept_where_the_cloud_allows_it(dev_config: dict[str, Any]) -> None:
    """AWS/Azure tags and annotations keep the user's value; GCP labels get the label-safe form,
    with the original in annotations under the same key; Kubernetes labels keep upper case."""
    config = copy.deepcopy(dev_config)
    for fn in config["inferops:functions"]:
        fn["model"]["id"] = "meta-llama/Llama-3.1-8B-Instruct"
        fn.setdefault("finops", {})["costCenter"] = "CC-1234-EU"
    fns = parse_stack_config(config).functions
    for fn in fns:
        for platform in ("aws", "azure"):
            tags = cloud_metadata(fn, platform, stack="dev").tags  # type: ignore[arg-type]
            assert tags["model-id"] == "meta-llama/Llama-3.1-8B-Instruct" and tags["cost-center"] == "CC-1234-EU"
    gcp_md = cloud_metadata(fns[2], "gcp", stack="dev")
    assert gcp_md.annotations["cost-center"] == "CC-1234-EU"
    assert gcp_md.labels["cost-center"].startswith("cc-1234-eu-")
    assert gcp_md.annotations["model-id"] == "meta-llama/Llama-3.1-8B-Instruct"
    k8s_md = cloud_metadata(fns[3], "kubernetes", stack="dev")
    assert k8s_md.labels[K8S_PREFIX + "cost-center"] == "CC-1234-EU"
    assert k8s_md.annotations[K8S_PREFIX + "model-id"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert K8S_LABEL_VALUE.match(k8s_md.labels[K8S_PREFIX + "model-id"])


def test_gcp_labels_only_keeps_every_key_label_safe(functions: list[FunctionSpec]) -> None:
    """A bucket takes labels only: every logical key, values in GCP's label charset
    (cloud.google.com/resource-manager/docs/labels-overview#requirements), labels unchanged."""
    for fn in functions:
        meta = cloud_metadata(fn, "gcp", stack="dev")
        labels = gcp_labels_only(meta)
        assert set(labels) == set(logical_metadata(fn, stack="dev"))
        assert all(re.fullmatch(r"[a-z0-9_-]{0,63}", v) for v in labels.values()), labels
        assert {k: labels[k] for k in meta.labels} == meta.labels
        assert labels["owner"] != meta.annotations["owner"]  # an e-mail address is not a label value


def test_only_azure_carries_the_declared_memory(functions: list[FunctionSpec]) -> None:
    """Azure Consumption has no memory setting, so the memory the pack prices it at (128 MB steps,
    at most 1,536 MB: azure.microsoft.com/pricing/details/functions) comes from the memory-mb tag;
    AWS and GCP declare memory in the resource (memorySize, the container's memory limit)."""
    for fn in functions:
        azure = cloud_metadata(fn, "azure", stack="dev").tags
        assert azure[MEMORY_KEY] == str(fn.runtime.memory_mb)
        assert MEMORY_KEY not in cloud_metadata(fn, "aws", stack="dev").tags
        gcp = cloud_metadata(fn, "gcp", stack="dev")
        assert MEMORY_KEY not in gcp.labels and MEMORY_KEY not in gcp.annotations
        assert K8S_PREFIX + MEMORY_KEY not in cloud_metadata(fn, "kubernetes", stack="dev").annotations
