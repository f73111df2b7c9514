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

from inferops.harness import ProgramRun, RecordingMocks, RegisteredResource, run_program
from tests.conftest import DEV_STACK, function_config

COMPONENT = "inferops:kubernetes:InferenceFunction"
NAMESPACE = "kubernetes:core/v1:Namespace"
QUOTA = "kubernetes:core/v1:ResourceQuota"
KSVC = "kubernetes:serving.knative.dev/v1:Service"
MARKER = "kubernetes:core/v1:ConfigMap"
IMAGE = "docker-build:index:Image"
FN = "sentiment"
NS = "inferops-dev-sentiment"
#: The revision an earlier deploy created for 0.9.0 (recorded by its marker ConfigMap).
PRIOR_STABLE = "sentiment-0-9-0-0ld0000"

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
    "function-name": "inferops-dev-sentiment",
    "stack": "dev",
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
        if r.type == MARKER or not r.type.startswith("kubernetes:"):
            continue  # one marker per model version in use; the image build is no cluster object
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
    return run_program(DEV_STACK, config=config, stack="dev", mocks=PriorRevision())


class PriorRevision(RecordingMocks):
    """The engine's state after a deploy of 0.9.0 alone: a frozen (``ignore_changes``) marker keeps
    the revision that deploy recorded."""

    def outputs_for(self, args: Any) -> tuple[str, dict[str, Any]]:
        rid, out = super().outputs_for(args)
        if args.typ == MARKER and "data" in self.ignore_changes and out["data"]["version"] == "0.9.0":
            out = {**out, "data": {"version": "0.9.0", "revision": PRIOR_STABLE}}
        return rid, out


def run_deployed(config: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> ProgramRun:
    config = copy.deepcopy(config)
    edit(config)
    return run_program(DEV_STACK, config=config, stack="dev", mocks=PriorRevision())


def _template_name(run: ProgramRun) -> str:
    return str(_ksvc(run)["spec"]["template"]["metadata"]["name"])


# --- resource types and key inputs ----------------------------------------------------------------


def test_component_registers_namespace_quota_and_knative_service(dev_run: ProgramRun) -> None:
    kids = _children(dev_run)
    assert set(kids) == {NAMESPACE, QUOTA, KSVC}
    assert all(r.custom for r in kids.values())
    assert all(r.parent == _component(dev_run).urn for r in kids.values())
    ns = kids[NAMESPACE].inputs["metadata"]["name"]
    assert ns == NS  # project, stack and function: two stacks share a cluster
    assert kids[QUOTA].inputs["metadata"]["namespace"] == ns
    assert kids[KSVC].inputs["metadata"]["namespace"] == ns
    assert kids[KSVC].inputs["apiVersion"] == "serving.knative.dev/v1"
    assert kids[KSVC].inputs["kind"] == "Service"
    # Child names derive from the component name.
    assert {r.name for r in kids.values()} == {"sentiment-ns", "sentiment-quota", "sentiment-service"}
    # Without runtime.image the only other child is the build of functions/Dockerfile.
    others = [r for r in dev_run.children_of(_component(dev_run).urn) if not r.type.startswith("kubernetes:")]
    assert [(r.type, r.name) for r in others] == [(IMAGE, "sentiment-image")]


def test_knative_template_matches_spec(dev_run: ProgramRun) -> None:
    svc = _ksvc(dev_run)
    assert svc["metadata"]["name"] == "sentiment"
    template = svc["spec"]["template"]
    assert re.fullmatch(r"sentiment-0-9-0-[0-9a-f]{7}", template["metadata"]["name"])
    ann = template["metadata"]["annotations"]
    assert ann["autoscaling.knative.dev/min-scale"] == "1"
    assert ann["autoscaling.knative.dev/max-scale"] == "4"
    pod = template["spec"]
    assert pod["timeoutSeconds"] == 30
    assert pod["containerConcurrency"] == 5  # 10 per vCPU x 0.5 vCPU
    (container,) = pod["containers"]
    # Built (no runtime.image in the dev stack): the pushed image by digest, never by tag.
    (image,) = [r for r in dev_run.children_of(_component(dev_run).urn) if r.type == IMAGE]
    assert container["image"] == f"ghcr.io/example/inferops-http-handler@{image.outputs['digest']}"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {
        "MODEL_URI": "https://models.example.com/sentiment/0.9.0/model.json",
        "MODEL_ID": "sentiment",
        "MODEL_VERSION": "0.9.0",
        # capture (functions/README.md): the pod's writer to the stack's destination
        "INFEROPS_CAPTURE_ENABLED": "true",
        "INFEROPS_CAPTURE_SAMPLE_PERCENT": "100",
        "INFEROPS_CAPTURE_URI": "s3://example-inferops-captures/sentiment",
        "INFEROPS_VARIANT": "stable",
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
    template = blocks.pop("revision template")
    assert len(blocks) == 3
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
    # the template carries only what never changes while its revision exists
    assert set(template["labels"]) == {
        f"inferops.dev/{k}" for k in ("function-name", "stack", "managed-by", "model-id", "model-version")
    }
    assert not [k for k in template["annotations"] if k.startswith("inferops.dev/")]


@pytest.mark.parametrize(
    "edit",
    [
        lambda fn: fn["finops"].update(monthlyBudgetUsd=95, alertThresholdsPercent=[60, 90]),
        lambda fn: fn["model"].update(fairnessScore=0.9),
        lambda fn: fn.update(
            retraining={"reason": "minor drift", "reportDigest": "sha256:" + "cd" * 32, "requestedAt": "2026-12-01"}
        ),
        lambda fn: fn["finops"].update(costCenter="CC-1234-EU", owner="Team@Example.com"),
    ],
    ids=["budget", "fairness", "request-retraining", "owner"],
)
def test_metadata_edits_keep_the_revision_template(dev_run: ProgramRun, run_edited: RunEdited, edit: Any) -> None:
    """VerifyNameChange (knative/serving pkg/apis/serving/v1/revision_validation.go) rejects a changed
    template that keeps its name: the edits users and the drift loop make must not touch it."""
    run = run_edited(_only_kubernetes(lambda c: edit(function_config(c, FN))))
    assert _ksvc(run)["spec"]["template"] == _ksvc(dev_run)["spec"]["template"]


def test_template_edits_name_a_new_revision(dev_run: ProgramRun, run_edited: RunEdited) -> None:
    """The other half of VerifyNameChange: a changed template gets a new name."""
    for edit in (
        lambda fn: fn["scaling"].update(maxInstances=6),
        lambda fn: fn["runtime"].update(memoryMb=1024),
        lambda fn: fn["runtime"].update(image="ghcr.io/example/inferops-http-handler:0.2.0"),
        # capture variables are in the template: sampling and destination edits are new revisions
        lambda fn: fn["capture"].update(samplePercent=5),
        lambda fn: fn["capture"].update(destination="gs://lake/sentiment"),
        lambda fn: fn["capture"].update(enabled=False),
    ):
        run = run_edited(_only_kubernetes(lambda c, e=edit: e(function_config(c, FN))))
        assert _template_name(run) != _template_name(dev_run)


def _env(run: ProgramRun) -> dict[str, str]:
    (container,) = _ksvc(run)["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


def test_capture_variant_is_canary_on_the_candidate_and_stable_after_promotion(run_edited: RunEdited) -> None:
    canary = run_edited(_canary(25))
    assert _env(canary)["INFEROPS_VARIANT"] == "canary"
    promoted = run_edited(_canary(0, version="1.0.0", stable="1.0.0"))
    assert _env(promoted)["INFEROPS_VARIANT"] == "stable"
    # Promotion changes the template, so the revision name changes too (VerifyNameChange).
    assert _template_name(promoted) != _template_name(canary)


def test_capture_disabled_sets_no_writer(run_edited: RunEdited) -> None:
    run = run_edited(_only_kubernetes(lambda c: function_config(c, FN).update(capture={"enabled": False})))
    env = _env(run)
    assert env["INFEROPS_CAPTURE_ENABLED"] == "false" and "INFEROPS_CAPTURE_URI" not in env


def test_capture_to_azure_blob_names_the_account(run_edited: RunEdited) -> None:
    dest = "az://lakeacct/captures/sentiment"
    run = run_edited(_only_kubernetes(lambda c: function_config(c, FN).update(capture={"destination": dest})))
    env = _env(run)
    # The handler's az:// is <container>/<prefix> with the account in AZURE_STORAGE_ACCOUNT_NAME.
    assert env["INFEROPS_CAPTURE_URI"] == "az://captures/sentiment"
    assert env["AZURE_STORAGE_ACCOUNT_NAME"] == "lakeacct"


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
    blocks = _metadata_blocks(run)
    blocks.pop("revision template")
    for where, meta in blocks.items():
        ann = meta["annotations"]
        assert ann["inferops.dev/approval-ref"] == "https://github.com/example/models/pull/7", where
        assert ann["inferops.dev/retraining-requested-at"] == "2026-03-01", where
        assert ann["inferops.dev/retraining-report-digest"] == "ab" * 8, where
        assert "inferops.dev/approval-ref" not in meta["labels"]  # a URL is no label value


# --- budget and quota --------------------------------------------------------------------------------


def test_budget_is_recorded_as_annotation_with_thresholds(dev_run: ProgramRun) -> None:
    blocks = _metadata_blocks(dev_run)
    blocks.pop("revision template")
    for where, meta in blocks.items():
        ann = meta["annotations"]
        assert ann["inferops.dev/monthly-budget-usd"] == "80", where
        assert ann["inferops.dev/budget-alert-thresholds-percent"] == "50,80,100", where
        assert ann["inferops.dev/budget-alert-emails"] == "ml-platform-alerts@example.com", where
    assert dev_run.exports[FN]["budgetId"] == f"{NS}/sentiment#inferops.dev/monthly-budget-usd"


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


def test_no_canary_routes_everything_to_the_template_revision(dev_run: ProgramRun) -> None:
    assert _ksvc(dev_run)["spec"]["traffic"] == [{"revisionName": _template_name(dev_run), "percent": 100}]
    assert dev_run.exports[FN]["canaryPercent"] == 0


def test_fresh_stack_canary_never_names_a_missing_revision(run_edited: RunEdited) -> None:
    """A traffic target naming a revision that does not exist leaves the Service not Ready
    (knative/serving pkg/reconciler/route: RevisionMissing). Fresh stack: the candidate serves."""
    run = run_edited(_canary(25))
    assert _ksvc(run)["spec"]["traffic"] == [{"revisionName": _template_name(run), "percent": 100}]
    assert run.exports[FN]["canaryPercent"] == 0
    assert any("no revision of the stable model 0.9.0" in w for w in run.warnings)


def test_canary_splits_traffic_between_named_revisions(canary_run: ProgramRun) -> None:
    svc = _ksvc(canary_run)
    assert re.fullmatch(r"sentiment-1-0-0-[0-9a-f]{7}", _template_name(canary_run))
    env = {e["name"]: e["value"] for e in svc["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODEL_VERSION"] == "1.0.0"
    assert env["MODEL_URI"] == "https://models.example.com/sentiment/1.0.0/model.json"
    assert svc["spec"]["traffic"] == [
        {"revisionName": PRIOR_STABLE, "percent": 75},
        {"revisionName": _template_name(canary_run), "percent": 25, "tag": "canary"},
    ]
    assert canary_run.exports[FN]["canaryPercent"] == 25


def test_rollback_canary_percent_zero_sends_everything_to_stable(
    dev_config: dict[str, Any], canary_run: ProgramRun
) -> None:
    run = run_deployed(dev_config, _canary(0))
    svc = _ksvc(run)
    assert svc["spec"]["traffic"] == [
        {"revisionName": PRIOR_STABLE, "percent": 100},
        {"revisionName": _template_name(canary_run), "percent": 0, "tag": "canary"},
    ]
    # The candidate stays declared (no traffic), so re-enabling the canary needs no new revision.
    assert _template_name(run) == _template_name(canary_run)
    assert _children(run)[QUOTA].inputs["spec"]["hard"]["pods"] == "5"


def test_rollback_version_to_stable_removes_canary(run_edited: RunEdited) -> None:
    run = run_edited(_canary(0, version="0.9.0", stable="0.9.0"))
    svc = _ksvc(run)
    assert _template_name(run).startswith("sentiment-0-9-0-")
    # A {version} artifact template follows the version back to the stable model.
    env = {e["name"]: e["value"] for e in svc["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODEL_URI"] == "https://models.example.com/sentiment/0.9.0/model.json"
    assert svc["spec"]["traffic"] == [{"revisionName": _template_name(run), "percent": 100}]
    assert run.exports[FN]["canaryPercent"] == 0


def test_versions_that_share_a_slug_get_distinct_revisions(run_edited: RunEdited) -> None:
    # "1.0" and "1-0" share a slug; the template hash (it covers MODEL_VERSION) keeps them apart.
    a = _template_name(run_edited(_canary(0, version="1.0", stable="1.0")))
    b = _template_name(run_edited(_canary(0, version="1-0", stable="1-0")))
    assert a != b


@pytest.mark.parametrize("name", ["a", "sentiment", "fraud-scorer-realtime-transactions-euw1", "x" * 62 + "z"])
def test_names_fit_at_the_limits(name: str) -> None:
    """Namespaces and revision names are DNS labels of at most 63 characters (RFC 1123;
    kubernetes.io/docs/concepts/overview/working-with-objects/names/#dns-label-names)."""
    from components.kubernetes import namespace_name, revision_name, service_name

    label = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
    ns = namespace_name("inferops", "dev", name)
    assert len(ns) <= 63 and label.fullmatch(ns) and ns != namespace_name("inferops", "prod", name)
    svc = service_name(name)
    for version in ("2.0.0+RC1", "1." + "9" * 60):
        rev = revision_name(svc, version, "abcdef0")
        # Revision names are DNS-1035 labels (a letter first) with the prefix "<service>-"
        # (validateRevisionName, knative/serving pkg/apis/serving/v1/revision_validation.go).
        assert len(rev) <= 63 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", rev) and rev.startswith(f"{svc}-")


# --- exposure ----------------------------------------------------------------------------------------


def test_endpoint_is_cluster_local_by_default(dev_run: ProgramRun) -> None:
    labels = _ksvc(dev_run)["metadata"]["labels"]
    assert labels["networking.knative.dev/visibility"] == "cluster-local"
    assert dev_run.exports[FN]["endpoint"] == f"http://sentiment.{NS}.svc.cluster.local"


def test_public_endpoint_when_spec_says_so(run_edited: RunEdited) -> None:
    run = run_edited(_only_kubernetes(lambda c: function_config(c, FN).update(endpoint={"public": True})))
    assert "networking.knative.dev/visibility" not in _ksvc(run)["metadata"]["labels"]
    endpoint = run.exports[FN]["endpoint"]
    assert endpoint.startswith(f"http://sentiment.{NS}.") and "cluster.local" not in endpoint


def test_no_rbac_objects_so_no_wildcard_permissions(dev_run: ProgramRun) -> None:
    # The component creates no Role/ClusterRole/binding: the pods run with the namespace's default
    # service account, which has no RBAC rights; nothing can grant a "*" verb or resource.
    types = {r.type for r in dev_run.children_of(_component(dev_run).urn)}
    assert not {t for t in types if "rbac.authorization.k8s.io" in t}
    for r in dev_run.children_of(_component(dev_run).urn):
        assert "rules" not in r.inputs
