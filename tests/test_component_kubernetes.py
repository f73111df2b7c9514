"""The Kubernetes/Knative component, run as part of the whole program under Pulumi's mocks.

Expected values are written out from Pulumi.dev.yaml's ``sentiment`` function (memory 512 MB, cpu 0.5,
scale 1-4, budget 80 USD, no canary), not recomputed with the component's own helpers.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest

from inferops.harness import ProgramError, ProgramRun, RegisteredResource, run_program
from tests.conftest import DEV_STACK, function_config

COMPONENT = "inferops:kubernetes:InferenceFunction"
NAMESPACE = "kubernetes:core/v1:Namespace"
QUOTA = "kubernetes:core/v1:ResourceQuota"
KSVC = "kubernetes:serving.knative.dev/v1:Service"
FN = "sentiment"

# The metadata contract (prompts/meta.md), with sentiment's values from Pulumi.dev.yaml + defaults.
EXPECTED_METADATA = {
    "cost-center": "ml-platform",
    "owner": "ml-platform@example.com",
    "environment": "dev",
    "model-id": "sentiment",
    "model-version": "0.9.0",
    "model-card-url": "https://models.example.com/sentiment/card",
    "data-lineage-url": "https://lineage.example.com/sentiment",
    "fairness-score": "0.82",
    "risk-tier": "minimal",
    "monthly-budget-usd": "80",
    "expected-monthly-requests": "200000",
    "avg-duration-ms": "50",
    "managed-by": "inferops",
    "function-name": "sentiment",
}
# Kubernetes label syntax: optional DNS-subdomain prefix, name and value of at most 63 characters.
LABEL_NAME = re.compile(r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")

RunEdited = Callable[[Callable[[dict[str, Any]], None]], ProgramRun]


def _component(run: ProgramRun, name: str = FN) -> RegisteredResource:
    matches = [r for r in run.of_type(COMPONENT) if r.name == name]
    assert len(matches) == 1, f"expected one {COMPONENT} named {name}"
    return matches[0]


def _children(run: ProgramRun, name: str = FN) -> dict[str, RegisteredResource]:
    kids = run.children_of(_component(run, name).urn)
    by_type: dict[str, RegisteredResource] = {}
    for r in kids:
        assert r.type not in by_type, f"two {r.type} in one function"
        by_type[r.type] = r
    return by_type


def _ksvc(run: ProgramRun) -> dict[str, Any]:
    return _children(run)[KSVC].inputs


def _only_kubernetes(edit: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """Apply ``edit`` and drop the other platforms' functions: edited runs exercise this component only."""

    def _apply(config: dict[str, Any]) -> None:
        edit(config)
        functions = config["inferops:functions"]
        config["inferops:functions"] = [f for f in functions if f["platform"] == "kubernetes"]

    return _apply


def _canary(percent: int, version: str = "1.0.0", stable: str = "0.9.0") -> Callable[[dict[str, Any]], None]:
    def edit(config: dict[str, Any]) -> None:
        fn = function_config(config, FN)
        fn["model"]["version"] = version
        fn["model"]["stableVersion"] = stable
        fn["model"]["artifactUri"] = "https://models.example.com/sentiment/{version}/model.json"
        fn["traffic"] = {"canaryPercent": percent}

    return _only_kubernetes(edit)


@pytest.fixture(scope="module")
def canary_run(dev_config: dict[str, Any]) -> ProgramRun:
    """sentiment running 1.0.0 as a 25% canary against 0.9.0 (one run shared by several tests)."""
    config = copy.deepcopy(dev_config)
    _canary(25)(config)
    return run_program(DEV_STACK, config=config, stack="dev")


# --- resource types and key inputs ----------------------------------------------------------------


def test_component_registers_namespace_quota_and_knative_service(dev_run: ProgramRun) -> None:
    kids = _children(dev_run)
    assert set(kids) == {NAMESPACE, QUOTA, KSVC}
    assert all(r.custom for r in kids.values())
    assert all(r.parent == _component(dev_run).urn for r in kids.values())
    ns = kids[NAMESPACE].inputs["metadata"]["name"]
    assert ns == "inferops-sentiment"
    assert kids[QUOTA].inputs["metadata"]["namespace"] == ns
    assert kids[KSVC].inputs["metadata"]["namespace"] == ns
    assert kids[KSVC].inputs["apiVersion"] == "serving.knative.dev/v1"
    assert kids[KSVC].inputs["kind"] == "Service"
    # Child names derive from the component name.
    assert {r.name for r in kids.values()} == {"sentiment-ns", "sentiment-quota", "sentiment-service"}


def test_knative_template_matches_spec(dev_run: ProgramRun) -> None:
    svc = _ksvc(dev_run)
    assert svc["metadata"]["name"] == "sentiment"
    template = svc["spec"]["template"]
    assert template["metadata"]["name"] == "sentiment-0-9-0"
    ann = template["metadata"]["annotations"]
    assert ann["autoscaling.knative.dev/min-scale"] == "1"
    assert ann["autoscaling.knative.dev/max-scale"] == "4"
    pod = template["spec"]
    assert pod["timeoutSeconds"] == 30
    assert pod["containerConcurrency"] == 5  # 10 per vCPU x 0.5 vCPU
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/example/inferops-http-handler:0.1.0"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {
        "MODEL_URI": "https://models.example.com/sentiment/0.9.0/model.json",
        "MODEL_ID": "sentiment",
        "MODEL_VERSION": "0.9.0",
    }
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "500m", "memory": "512Mi"},
    }
    assert container["readinessProbe"] == {"httpGet": {"path": "/healthz"}}
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["runAsNonRoot"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert "PORT" not in env  # Knative reserves PORT and rejects a service that sets it


def test_default_cpu_is_used_when_runtime_cpu_is_unset(run_edited: RunEdited) -> None:
    def edit(config: dict[str, Any]) -> None:
        rt = function_config(config, FN)["runtime"]
        del rt["cpu"]
        rt["memoryMb"] = 4096

    run = run_edited(_only_kubernetes(edit))
    (container,) = _ksvc(run)["spec"]["template"]["spec"]["containers"]
    # components.spec.default_cpu: memory / 2048 MB per vCPU -> 2 vCPU for 4096 MB.
    assert container["resources"]["requests"] == {"cpu": "2000m", "memory": "4096Mi"}
    assert _children(run)[QUOTA].inputs["spec"]["hard"]["requests.cpu"] == f"{5 * 2025}m"


# --- metadata ----------------------------------------------------------------------------------------


def _metadata_blocks(run: ProgramRun) -> dict[str, dict[str, Any]]:
    kids = _children(run)
    blocks = {typ: r.inputs["metadata"] for typ, r in kids.items()}
    blocks["revision template"] = kids[KSVC].inputs["spec"]["template"]["metadata"]
    return blocks


def test_every_object_carries_every_metadata_key(dev_run: ProgramRun) -> None:
    blocks = _metadata_blocks(dev_run)
    assert len(blocks) == 4
    for where, meta in blocks.items():
        annotations, labels = meta["annotations"], meta["labels"]
        for key, value in EXPECTED_METADATA.items():
            assert annotations.get(f"inferops.dev/{key}") == value, f"{where}: annotation {key}"
            if LABEL_VALUE.match(value):
                assert labels.get(f"inferops.dev/{key}") == value, f"{where}: label {key}"
            else:
                assert f"inferops.dev/{key}" not in labels, f"{where}: {key} is no label value"
        for k, v in labels.items():
            assert LABEL_NAME.match(k) and LABEL_VALUE.match(v), f"{where}: invalid label {k}={v}"
        assert "inferops.dev/approval-ref" not in annotations  # sentiment has none


def test_approval_and_retraining_metadata_when_set(run_edited: RunEdited) -> None:
    def edit(config: dict[str, Any]) -> None:
        fn = function_config(config, FN)
        fn["model"]["approvalRef"] = "https://github.com/example/models/pull/7"
        fn["retraining"] = {
            "reason": "minor drift on amount",
            "reportDigest": "sha256:" + "ab" * 32,
            "requestedAt": "2026-03-01",
        }

    run = run_edited(_only_kubernetes(edit))
    for where, meta in _metadata_blocks(run).items():
        ann = meta["annotations"]
        assert ann["inferops.dev/approval-ref"] == "https://github.com/example/models/pull/7", where
        assert ann["inferops.dev/retraining-requested-at"] == "2026-03-01", where
        assert ann["inferops.dev/retraining-report-digest"] == "ab" * 8, where
        assert "inferops.dev/approval-ref" not in meta["labels"]  # a URL is no label value


# --- budget and quota --------------------------------------------------------------------------------


def test_budget_is_recorded_as_annotation_with_thresholds(dev_run: ProgramRun) -> None:
    for where, meta in _metadata_blocks(dev_run).items():
        ann = meta["annotations"]
        assert ann["inferops.dev/monthly-budget-usd"] == "80", where
        assert ann["inferops.dev/budget-alert-thresholds-percent"] == "50,80,100", where
        assert ann["inferops.dev/budget-alert-emails"] == "ml-platform-alerts@example.com", where
    assert dev_run.exports[FN]["budgetId"] == "inferops-sentiment/sentiment#inferops.dev/monthly-budget-usd"


def test_budget_edit_changes_annotation(run_edited: RunEdited) -> None:
    def edit(config: dict[str, Any]) -> None:
        function_config(config, FN)["finops"].update(monthlyBudgetUsd=80.5, alertThresholdsPercent=[75, 90])

    run = run_edited(_only_kubernetes(edit))
    ann = _ksvc(run)["metadata"]["annotations"]
    assert ann["inferops.dev/monthly-budget-usd"] == "80.5"
    assert ann["inferops.dev/budget-alert-thresholds-percent"] == "75,90"


def test_quota_is_sized_from_max_scale(dev_run: ProgramRun) -> None:
    hard = _children(dev_run)[QUOTA].inputs["spec"]["hard"]
    # 4 replicas + 1 rollout pod; per pod 500m/512Mi app + queue-proxy 25m/50Mi requests, 250m/200Mi limits.
    assert hard == {
        "pods": "5",
        "requests.cpu": "2625m",
        "limits.cpu": "3750m",
        "requests.memory": "2810Mi",
        "limits.memory": "3560Mi",
    }
    ann = _ksvc(dev_run)["spec"]["template"]["metadata"]["annotations"]
    assert ann["queue.sidecar.serving.knative.dev/cpu-resource-request"] == "25m"
    assert ann["queue.sidecar.serving.knative.dev/memory-resource-limit"] == "200Mi"


def test_quota_doubles_during_canary(canary_run: ProgramRun) -> None:
    hard = _children(canary_run)[QUOTA].inputs["spec"]["hard"]
    assert hard["pods"] == "9"  # two revisions x 4 + 1
    assert hard["requests.cpu"] == f"{9 * 525}m"
    assert hard["limits.memory"] == f"{9 * 712}Mi"


# --- canary and rollback -----------------------------------------------------------------------------


def test_no_canary_routes_everything_to_latest_revision(dev_run: ProgramRun) -> None:
    assert _ksvc(dev_run)["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]
    assert dev_run.exports[FN]["canaryPercent"] == 0


def test_canary_splits_traffic_between_named_revisions(canary_run: ProgramRun) -> None:
    svc = _ksvc(canary_run)
    assert svc["spec"]["template"]["metadata"]["name"] == "sentiment-1-0-0"
    env = {e["name"]: e["value"] for e in svc["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODEL_VERSION"] == "1.0.0"
    assert env["MODEL_URI"] == "https://models.example.com/sentiment/1.0.0/model.json"
    assert svc["spec"]["traffic"] == [
        {"revisionName": "sentiment-0-9-0", "percent": 75},
        {"revisionName": "sentiment-1-0-0", "percent": 25, "tag": "canary"},
    ]
    assert canary_run.exports[FN]["canaryPercent"] == 25


def test_rollback_canary_percent_zero_sends_everything_to_stable(run_edited: RunEdited) -> None:
    run = run_edited(_canary(0))
    svc = _ksvc(run)
    assert svc["spec"]["traffic"] == [{"revisionName": "sentiment-0-9-0", "percent": 100}]
    # The candidate stays declared (no traffic), so re-enabling the canary needs no new revision.
    assert svc["spec"]["template"]["metadata"]["name"] == "sentiment-1-0-0"
    assert _children(run)[QUOTA].inputs["spec"]["hard"]["pods"] == "5"


def test_rollback_version_to_stable_removes_canary(run_edited: RunEdited) -> None:
    run = run_edited(_canary(25, version="0.9.0", stable="0.9.0"))
    svc = _ksvc(run)
    assert svc["spec"]["template"]["metadata"]["name"] == "sentiment-0-9-0"
    # A {version} artifact template follows the version back to the stable model.
    env = {e["name"]: e["value"] for e in svc["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODEL_URI"] == "https://models.example.com/sentiment/0.9.0/model.json"
    assert svc["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]
    assert run.exports[FN]["canaryPercent"] == 0


def test_versions_that_share_a_revision_name_are_rejected(run_edited: RunEdited) -> None:
    with pytest.raises(ProgramError, match=r"functions\[sentiment\]\.model\.stableVersion"):
        run_edited(_canary(10, version="1.0", stable="1-0"))


def test_long_versions_get_a_hashed_dns_label() -> None:
    from components.kubernetes import revision_name

    a = revision_name("a" * 30, "1." + "9" * 60)
    b = revision_name("a" * 30, "1." + "9" * 59 + "8")
    assert len(a) <= 63 and len(b) <= 63 and a != b
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", a)
    assert a.startswith("a" * 30 + "-1-999")
    assert revision_name("sentiment", "2.0.0+RC1") == "sentiment-2-0-0-rc1"


# --- exposure ----------------------------------------------------------------------------------------


def test_endpoint_is_cluster_local_by_default(dev_run: ProgramRun) -> None:
    labels = _ksvc(dev_run)["metadata"]["labels"]
    assert labels["networking.knative.dev/visibility"] == "cluster-local"
    assert dev_run.exports[FN]["endpoint"] == "http://sentiment.inferops-sentiment.svc.cluster.local"


def test_public_endpoint_when_spec_says_so(run_edited: RunEdited) -> None:
    run = run_edited(_only_kubernetes(lambda c: function_config(c, FN).update(endpoint={"public": True})))
    assert "networking.knative.dev/visibility" not in _ksvc(run)["metadata"]["labels"]
    endpoint = run.exports[FN]["endpoint"]
    assert endpoint.startswith("http://sentiment.inferops-sentiment.") and "cluster.local" not in endpoint


def test_no_rbac_objects_so_no_wildcard_permissions(dev_run: ProgramRun) -> None:
    # The component creates no Role/ClusterRole/binding: the pods run with the namespace's default
    # service account, which has no RBAC rights; nothing can grant a "*" verb or resource.
    types = {r.type for r in dev_run.children_of(_component(dev_run).urn)}
    assert not {t for t in types if "rbac.authorization.k8s.io" in t}
    for r in dev_run.children_of(_component(dev_run).urn):
        assert "rules" not in r.inputs
