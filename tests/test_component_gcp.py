"""The GCP component under Pulumi's mocks: Cloud Run service, identity, invoker policy, budget.

The whole program runs for Pulumi.dev.yaml (``dev_run``) and for edited copies of its config
(``run_edited``); assertions read the inputs the program registered, as the engine would see them.
Expected values come from the stack config and the metadata contract, not from the component.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest

from components.gcp import artifact_grant, revision_name, service_account_id, service_name
from inferops.harness import GCP_PROJECT_NUMBER, ProgramRun, RecordingMocks, RegisteredResource, run_program
from tests.conftest import DESIGN_KEYS, DEV_STACK, FUNCTION_KEY, function_config

FN = "doc-classifier"
#: The stack-scoped physical name (project, stack, function) of the service and the function key.
SVC = "inferops-dev-doc-classifier"
#: The stable revision a previous deploy left serving (named with an older template shape).
PRIOR_STABLE = f"{SVC}-3-0-0-0ld0"
COMPONENT = "inferops:gcp:InferenceFunction"
SERVICE = "gcp:cloudrunv2/service:Service"
ACCOUNT = "gcp:serviceaccount/account:Account"
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
INVOKER = "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"
CHANNEL = "gcp:monitoring/notificationChannel:NotificationChannel"
BUDGET = "gcp:billing/budget:Budget"
BUCKET = "gcp:storage/bucket:Bucket"
SINK = "gcp:logging/projectSink:ProjectSink"
EXCLUSION = "gcp:logging/projectExclusion:ProjectExclusion"
REPOSITORY = "gcp:artifactregistry/repository:Repository"
IMAGE = "docker-build:index:Image"
REVISION = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"

#: The design contract's keys (design.md + metadata contract), written out independently of tags.py.
CONTRACT_KEYS = DESIGN_KEYS | {"approval-ref", FUNCTION_KEY, "stack"}
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
# Kubernetes-style annotation name (Cloud Run v2 follows its rules), without a reserved namespace.
ANNOTATION_KEY = re.compile(r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
RESERVED_NS = ("run.googleapis.com", "cloud.googleapis.com", "serving.knative.dev", "autoscaling.knative.dev")
#: Every resource type the component may create; taggable ones are checked for metadata.
GCP_TYPES = {SERVICE, ACCOUNT, BUCKET_MEMBER, INVOKER, CHANNEL, BUDGET, BUCKET, SINK, EXCLUSION, REPOSITORY}

Edit = Callable[[dict[str, Any]], None]
RunEdited = Callable[[Edit], ProgramRun]


# --- helpers -------------------------------------------------------------------------------------


def component(run: ProgramRun, name: str = FN) -> RegisteredResource:
    (comp,) = [r for r in run.of_type(COMPONENT) if r.name == name]
    return comp


def children(run: ProgramRun, typ: str, name: str = FN) -> list[RegisteredResource]:
    return [r for r in run.children_of(component(run, name).urn) if r.type == typ]


def one(run: ProgramRun, typ: str, name: str = FN) -> RegisteredResource:
    found = children(run, typ, name)
    assert len(found) == 1, f"expected one {typ} under {name}, got {[r.name for r in found]}"
    return found[0]


def traffic(run: ProgramRun) -> dict[str, tuple[float, str | None]]:
    """revision -> (percent, tag); every target must be by revision name."""
    out: dict[str, tuple[float, str | None]] = {}
    for t in one(run, SERVICE).inputs["traffics"]:
        assert t["type"] == REVISION, t
        out[t["revision"]] = (t.get("percent", 0), t.get("tag"))
    return out


def expected_metadata(config: dict[str, Any]) -> dict[str, str]:
    """Contract values for the dev gcp function, from its config and the stack defaults."""
    fn = function_config(config, FN)
    defaults = config["inferops:defaults"]
    finops = {**defaults, **fn["finops"]}
    model = fn["model"]
    meta = {
        "cost-center": finops["costCenter"],
        "owner": finops["owner"],
        "environment": finops["environment"],
        "model-id": model["id"],
        "model-version": model["version"],
        "model-card-url": model["cardUrl"],
        "data-lineage-url": model["lineageUrl"],
        "fairness-score": str(model["fairnessScore"]),
        "risk-tier": model["riskTier"],
        "monthly-budget-usd": str(finops["monthlyBudgetUsd"]),
        "expected-monthly-requests": str(finops["expectedMonthlyRequests"]),
        "avg-duration-ms": str(finops["avgDurationMs"]),
        "managed-by": "inferops",
        "function-name": f"inferops-dev-{fn['name']}",
        "stack": "dev",
    }
    if model.get("approvalRef"):
        meta["approval-ref"] = model["approvalRef"]
    return meta


def metadata_of(res: RegisteredResource) -> dict[str, str]:
    """Union of labels and annotations (or the description's key=value lines) of a GCP resource."""
    inputs = res.inputs
    if res.type == SERVICE:
        labels, extra = inputs.get("labels") or {}, inputs.get("annotations") or {}
    else:
        labels = inputs.get("userLabels") or {}
        extra = dict(line.split("=", 1) for line in (inputs.get("description") or "").splitlines() if "=" in line)
    for k, v in labels.items():
        assert LABEL_KEY.match(k) and LABEL_VALUE.match(v), f"{res.name}: label {k}={v!r} not in GCP's charset"
    for k in extra:
        assert ANNOTATION_KEY.match(k) and not k.startswith(RESERVED_NS), f"{res.name}: bad annotation key {k}"
    overlap = set(labels) & set(extra)
    assert not overlap, f"{res.name}: keys both label and annotation: {overlap}"
    return {**extra, **labels}


def set_fn(path: str, value: Any) -> Edit:
    """Edit setting ``a.b.c`` of the gcp function's config."""

    def edit(config: dict[str, Any]) -> None:
        node = function_config(config, FN)
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value

    return edit


def chain(*edits: Edit) -> Edit:
    def edit(config: dict[str, Any]) -> None:
        for e in edits:
            e(config)

    return edit


CANARY_25 = set_fn("traffic.canaryPercent", 25)


@pytest.fixture(scope="module")
def canary_run(dev_config: dict[str, Any]) -> ProgramRun:
    """The dev stack with a 25 % canary of 3.0.1 against 3.0.0."""
    config = copy.deepcopy(dev_config)
    CANARY_25(config)
    return run_program(DEV_STACK, config=config, stack="dev", mocks=StableServing())


class StableServing(RecordingMocks):
    """A stack deployed before with 3.0.0 alone: Cloud Run reports that revision serving everything."""

    def read_cloud(self, token: str, args: dict[str, Any]) -> dict[str, Any] | None:
        if token.startswith("gcp:"):
            status = {"type": REVISION, "revision": PRIOR_STABLE, "percent": 100, "tag": "", "uri": ""}
            return {"name": args.get("name"), "trafficStatuses": [status]}
        return None


def run_deployed(config: dict[str, Any], edit: Edit) -> ProgramRun:
    config = copy.deepcopy(config)
    edit(config)
    return run_program(DEV_STACK, config=config, stack="dev", mocks=StableServing())


# --- resources and key inputs --------------------------------------------------------------------


def test_component_registers_the_expected_resources(dev_run: ProgramRun, dev_config: dict[str, Any]) -> None:
    types = sorted(r.type for r in dev_run.children_of(component(dev_run).urn))
    emails = dev_config["inferops:budgetAlertEmails"]
    capture = [BUCKET, SINK, BUCKET_MEMBER, EXCLUSION]  # capture is on by default
    build = [REPOSITORY, IMAGE]  # the dev stack sets no runtime.image; no grant (test_image_build)
    assert types == sorted([ACCOUNT, BUCKET_MEMBER, SERVICE, BUDGET, *capture, *build] + [CHANNEL] * len(emails))
    assert not [r for r in dev_run.resources if r.type.startswith("gcp:") and r.type not in GCP_TYPES]
    assert all(r.parent == component(dev_run).urn for r in dev_run.children_of(component(dev_run).urn))


def test_service_inputs_follow_the_spec(dev_run: ProgramRun, dev_config: dict[str, Any]) -> None:
    fn = function_config(dev_config, FN)
    svc = one(dev_run, SERVICE).inputs
    assert svc["name"] == SVC and svc["location"] == fn["region"]
    assert svc["deletionProtection"] is False
    assert svc["scaling"]["minInstanceCount"] == fn["scaling"]["minInstances"]
    assert svc["scaling"]["maxInstanceCount"] == fn["scaling"]["maxInstances"]
    tpl = svc["template"]
    assert tpl["timeout"] == f"{fn['runtime']['timeoutSeconds']}s"
    assert tpl["revision"].startswith(f"{SVC}-") and len(tpl["revision"]) <= 63
    assert (
        tpl["serviceAccount"] == f"{one(dev_run, ACCOUNT).inputs['accountId']}@example-project.iam.gserviceaccount.com"
    )
    assert tpl["maxInstanceRequestConcurrency"] == 80
    (container,) = tpl["containers"]
    # No runtime.image: the image built into the component's repository, by digest.
    repo = one(dev_run, REPOSITORY).outputs["registryUri"]
    assert container["image"] == f"{repo}/inferops-http-handler@{one(dev_run, IMAGE).outputs['digest']}"
    assert container["resources"] == {"cpuIdle": True, "limits": {"cpu": "1", "memory": "1024Mi"}}
    env = {e["name"]: e["value"] for e in container["envs"]}
    assert env == {
        "MODEL_URI": fn["model"]["artifactUri"].replace("{version}", fn["model"]["version"]),
        "MODEL_ID": fn["model"]["id"],
        "MODEL_VERSION": fn["model"]["version"],
        "INFEROPS_CAPTURE_ENABLED": "true",
        "INFEROPS_CAPTURE_SAMPLE_PERCENT": "100",
        # dev: 3.0.1 is the candidate of stable 3.0.0, so its records say canary
        "INFEROPS_VARIANT": "canary",
    }
    assert dev_run.exports[FN]["endpoint"] == one(dev_run, SERVICE).outputs["uri"]
    assert dev_run.exports[FN]["endpoint"].startswith("https://")


def test_fractional_cpu_serves_one_request_at_a_time(run_edited: RunEdited) -> None:
    run = run_edited(chain(set_fn("runtime.cpu", 0.5), set_fn("runtime.memoryMb", 512)))
    tpl = one(run, SERVICE).inputs["template"]
    assert tpl["containers"][0]["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}
    assert tpl["maxInstanceRequestConcurrency"] == 1


# --- metadata ------------------------------------------------------------------------------------


def test_every_taggable_resource_carries_every_key(dev_run: ProgramRun, dev_config: dict[str, Any]) -> None:
    expected = expected_metadata(dev_config)
    assert set(expected) <= CONTRACT_KEYS
    taggable = children(dev_run, SERVICE) + children(dev_run, CHANNEL)
    assert len(taggable) == 1 + len(dev_config["inferops:budgetAlertEmails"])
    # A bucket has labels only: every key, the service's labels verbatim and the annotation-only
    # values (e-mail, URLs, dotted numbers) in a label-safe form.
    (bucket,) = children(dev_run, BUCKET)
    labels = bucket.inputs["labels"]
    assert set(labels) == set(expected)
    assert {k: labels[k] for k in one(dev_run, SERVICE).inputs["labels"]} == one(dev_run, SERVICE).inputs["labels"]
    assert all(LABEL_KEY.match(k) and LABEL_VALUE.match(v) for k, v in labels.items()), labels
    for res in taggable:
        assert metadata_of(res) == expected, res.name


def test_urls_and_dotted_values_are_annotations_not_labels(dev_run: ProgramRun) -> None:
    svc = one(dev_run, SERVICE).inputs
    for key in ("model-card-url", "data-lineage-url", "owner", "model-version", "fairness-score"):
        assert key in svc["annotations"] and key not in svc["labels"], key
    assert svc["labels"]["function-name"] == SVC


def test_revision_template_carries_only_version_stable_labels(dev_run: ProgramRun) -> None:
    svc = one(dev_run, SERVICE).inputs
    tpl_labels = svc["template"]["labels"]
    assert tpl_labels["function-name"] == SVC and tpl_labels["managed-by"] == "inferops"
    assert "monthly-budget-usd" not in tpl_labels  # a budget edit must not need a new revision
    assert all(svc["labels"][k] == v for k, v in tpl_labels.items())


def test_budget_edit_keeps_the_revision(dev_run: ProgramRun, run_edited: RunEdited) -> None:
    run = run_edited(set_fn("finops.monthlyBudgetUsd", 999))
    assert one(run, SERVICE).inputs["labels"]["monthly-budget-usd"] == "999"
    assert one(run, SERVICE).inputs["template"]["revision"] == one(dev_run, SERVICE).inputs["template"]["revision"]


def test_runtime_edit_names_a_new_revision(dev_run: ProgramRun, run_edited: RunEdited) -> None:
    run = run_edited(set_fn("runtime.memoryMb", 2048))
    assert one(run, SERVICE).inputs["template"]["revision"] != one(dev_run, SERVICE).inputs["template"]["revision"]


def test_retraining_request_is_recorded(run_edited: RunEdited) -> None:
    digest = "sha256:" + "ab" * 32
    run = run_edited(
        set_fn("retraining", {"reason": "minor drift", "reportDigest": digest, "requestedAt": "2026-11-02"})
    )
    meta = metadata_of(one(run, SERVICE))
    assert meta["retraining-requested-at"] == "2026-11-02"
    assert digest.removeprefix("sha256:").startswith(meta["retraining-report-digest"])


# --- budget --------------------------------------------------------------------------------------


def test_budget_matches_the_spec(dev_run: ProgramRun, dev_config: dict[str, Any]) -> None:
    fn = function_config(dev_config, FN)
    budget = one(dev_run, BUDGET).inputs
    assert budget["billingAccount"] == dev_config["inferops:gcpBillingAccount"]
    assert budget["amount"]["specifiedAmount"] == {
        "currencyCode": "USD",
        "units": str(fn["finops"]["monthlyBudgetUsd"]),
    }
    thresholds = fn["finops"].get("alertThresholdsPercent") or dev_config["inferops:defaults"]["alertThresholdsPercent"]
    assert [r["thresholdPercent"] for r in budget["thresholdRules"]] == pytest.approx([p / 100 for p in thresholds])
    # Scoped to this stack's function key and to this GCP project (design contract 1).
    assert budget["budgetFilter"] == {
        "calendarPeriod": "MONTH",
        "labels": {"function-name": SVC},
        "projects": [f"projects/{GCP_PROJECT_NUMBER}"],
    }
    assert len(budget["displayName"]) <= 60
    channels = {c.outputs["name"] for c in children(dev_run, CHANNEL)}
    assert set(budget["allUpdatesRule"]["monitoringNotificationChannels"]) == channels
    emails = {c.inputs["labels"]["email_address"] for c in children(dev_run, CHANNEL)}
    assert emails == set(dev_config["inferops:budgetAlertEmails"])
    assert all(c.inputs["type"] == "email" for c in children(dev_run, CHANNEL))
    assert dev_run.exports[FN]["budgetId"] == one(dev_run, BUDGET).outputs["name"]


def test_budget_filter_label_is_carried_only_by_this_function(dev_run: ProgramRun) -> None:
    ((key, value),) = one(dev_run, BUDGET).inputs["budgetFilter"]["labels"].items()
    carriers = {
        r.urn
        for r in dev_run.resources
        if r.type.startswith("gcp:")
        and {**(r.inputs.get("labels") or {}), **(r.inputs.get("userLabels") or {})}.get(key) == value
    }
    mine = {r.urn for r in dev_run.children_of(component(dev_run).urn)}
    assert one(dev_run, SERVICE).urn in carriers and carriers <= mine


def test_fractional_budget_and_other_thresholds(run_edited: RunEdited) -> None:
    run = run_edited(
        chain(set_fn("finops.monthlyBudgetUsd", 400.5), set_fn("finops.alertThresholdsPercent", [25, 90, 120]))
    )
    budget = one(run, BUDGET).inputs
    assert budget["amount"]["specifiedAmount"] == {
        "currencyCode": "USD",
        "units": "400",
        "nanos": 500_000_000,
    }
    assert [r["thresholdPercent"] for r in budget["thresholdRules"]] == pytest.approx([0.25, 0.9, 1.2])


def test_no_alert_emails_means_no_channels(run_edited: RunEdited) -> None:
    run = run_edited(lambda c: c.update({"inferops:budgetAlertEmails": []}))
    assert children(run, CHANNEL) == []
    assert "allUpdatesRule" not in one(run, BUDGET).inputs


def test_too_many_alert_emails_fail_with_a_clear_message(run_edited: RunEdited) -> None:
    emails = [f"a{i}@example.com" for i in range(6)]
    with pytest.raises(Exception, match=r"budgetAlertEmails.*at most 5"):
        run_edited(lambda c: c.update({"inferops:budgetAlertEmails": emails}))


# --- canary and rollback -------------------------------------------------------------------------


def test_canary_splits_traffic_between_named_revisions(canary_run: ProgramRun) -> None:
    new = one(canary_run, SERVICE).inputs["template"]["revision"]
    assert new.startswith(f"{SVC}-3-0-1-")
    # the revision that serves the stable model now, as Cloud Run reports it
    assert traffic(canary_run) == {PRIOR_STABLE: (75, "stable"), new: (25, "canary")}
    assert canary_run.exports[FN]["canaryPercent"] == 25


def test_fresh_stack_never_routes_to_a_revision_that_does_not_exist(dev_run: ProgramRun) -> None:
    """Cloud Run rejects a traffic target naming a missing revision (cloud.google.com/run/docs/
    reference/rest/v2/projects.locations.services#TrafficTarget: "revision" must exist). The dev
    stack's first ``pulumi up`` has no 3.0.0 revision: the candidate serves, with a warning."""
    new = one(dev_run, SERVICE).inputs["template"]["revision"]
    assert traffic(dev_run) == {new: (100, None)}
    assert dev_run.exports[FN]["canaryPercent"] == 0
    assert any(w.startswith(f"{FN}: no revision of the stable model 3.0.0") for w in dev_run.warnings)


def test_dev_stack_canary_at_zero_sends_everything_to_stable(
    dev_config: dict[str, Any], canary_run: ProgramRun
) -> None:
    # Pulumi.dev.yaml runs doc-classifier at canaryPercent 0: rollback edit 1 already applied.
    deployed = run_deployed(dev_config, lambda c: None)
    assert one(deployed, SERVICE).inputs["template"] == one(canary_run, SERVICE).inputs["template"]
    split = traffic(canary_run)
    assert traffic(deployed) == {rev: (0 if tag == "canary" else 100, tag) for rev, (_, tag) in split.items()}


def test_rollback_by_percent_sends_everything_to_stable(dev_config: dict[str, Any], canary_run: ProgramRun) -> None:
    run = run_deployed(dev_config, chain(CANARY_25, set_fn("traffic.canaryPercent", 0)))
    split = traffic(run)
    (stable,) = [rev for rev, (_, tag) in traffic(canary_run).items() if tag == "stable"]
    assert split[stable] == (100, "stable")
    assert sum(p for p, _ in split.values()) == 100
    assert one(run, SERVICE).inputs["template"] == one(canary_run, SERVICE).inputs["template"]


def test_rollback_by_version_serves_the_stable_revision(run_edited: RunEdited, canary_run: ProgramRun) -> None:
    run = run_edited(chain(set_fn("traffic.canaryPercent", 0), set_fn("model.version", "3.0.0")))
    stable = one(run, SERVICE).inputs["template"]["revision"]
    # The template names the stable version's revision itself: no other revision is routed to.
    assert stable.startswith(f"{SVC}-3-0-0-")
    assert traffic(run) == {stable: (100, None)}
    assert run.exports[FN]["canaryPercent"] == 0


def test_no_stable_version_serves_the_version(run_edited: RunEdited) -> None:
    run = run_edited(lambda c: function_config(c, FN)["model"].pop("stableVersion"))
    rev = one(run, SERVICE).inputs["template"]["revision"]
    assert traffic(run) == {rev: (100, None)}


# --- access --------------------------------------------------------------------------------------


def test_not_public_by_default(dev_run: ProgramRun) -> None:
    assert children(dev_run, INVOKER) == []
    svc = one(dev_run, SERVICE).inputs
    assert svc["invokerIamDisabled"] is False
    assert svc["ingress"] == "INGRESS_TRAFFIC_ALL"  # reachability; IAM does the authentication
    for r in dev_run.children_of(component(dev_run).urn):
        assert r.inputs.get("member") not in ("allUsers", "allAuthenticatedUsers"), r.name


def test_public_endpoint_grants_invoker_to_all_users(run_edited: RunEdited) -> None:
    run = run_edited(set_fn("endpoint", {"public": True}))
    inv = one(run, INVOKER).inputs
    assert inv["role"] == "roles/run.invoker" and inv["member"] == "allUsers"
    assert inv["name"] == SVC and inv["location"] == one(run, SERVICE).inputs["location"]


def test_no_wildcard_or_broad_iam(dev_run: ProgramRun, dev_config: dict[str, Any]) -> None:
    grants = [r for r in dev_run.children_of(component(dev_run).urn) if "role" in r.inputs]
    assert grants
    for g in grants:
        assert "*" not in g.inputs["role"] and g.inputs["role"] in {
            "roles/storage.objectViewer",
            "roles/storage.objectCreator",
            "roles/run.invoker",
        }
    (read,) = [m for m in children(dev_run, BUCKET_MEMBER) if m.name == f"{FN}-model-read"]
    assert read.inputs["bucket"] == "example-models"
    assert read.inputs["member"] == one(dev_run, ACCOUNT).outputs["member"]
    expr = read.inputs["condition"]["expression"]
    assert expr == 'resource.name.startsWith("projects/_/buckets/example-models/objects/doc-classifier/")'
    artifact = function_config(dev_config, FN)["model"]["artifactUri"].removeprefix("gs://example-models/")
    assert artifact.startswith("doc-classifier/")


# --- data capture (issue 13) ---------------------------------------------------------------------


def test_capture_sink_writes_only_to_its_own_bucket(dev_run: ProgramRun) -> None:
    bucket = one(dev_run, BUCKET)
    sink = one(dev_run, SINK).inputs
    (writer,) = [m for m in children(dev_run, BUCKET_MEMBER) if m.name == f"{FN}-capture-write"]
    name = bucket.inputs["name"]
    assert name == f"{SVC}-capture" and len(name) <= 63
    # Registry docs, gcp.logging.ProjectSink.destination: a Cloud Storage destination is
    # "storage.googleapis.com/[GCS_BUCKET]", and "the writer associated with the sink must have
    # access to write to the above resource".
    assert sink["destination"] == f"storage.googleapis.com/{name}"
    # uniqueWriterIdentity true: a Logging service agent instead of the shared cloud-logs@ account
    # (cloud.google.com/logging/docs/reference/v2/rest/v2/projects.sinks/create#query-parameters).
    assert sink["uniqueWriterIdentity"] is True
    # Least privilege: create objects in that bucket only, granted to the sink's writerIdentity output.
    assert writer.inputs["bucket"] == name and writer.inputs["role"] == "roles/storage.objectCreator"
    assert writer.inputs["member"] == one(dev_run, SINK).outputs["writerIdentity"]
    assert "condition" not in writer.inputs or not writer.inputs["condition"]


def test_capture_sink_filter_selects_this_services_capture_records(dev_run: ProgramRun) -> None:
    clauses = one(dev_run, SINK).inputs["filter"].split(" AND ")
    # Cloud Run logs carry resource.type cloud_run_revision and the label service_name; stdout
    # goes to the log run.googleapis.com/stdout and a one-line JSON object becomes jsonPayload
    # (cloud.google.com/run/docs/logging).
    assert 'resource.type="cloud_run_revision"' in clauses
    assert f'resource.labels.service_name="{SVC}"' in clauses
    assert 'logName:"/logs/run.googleapis.com%2Fstdout"' in clauses
    # The capture record's own fields (design.md), so access and error lines (stderr) never match.
    assert 'jsonPayload.model_id="doc-classifier"' in clauses
    assert {"jsonPayload.request_id:*", "jsonPayload.variant:*", "jsonPayload.prediction:*"} <= set(clauses)


def test_capture_bucket_is_private_with_lifecycle(run_edited: RunEdited) -> None:
    run = run_edited(set_fn("capture", {"retentionDays": 14}))
    b = one(run, BUCKET).inputs
    # Registry docs, gcp.storage.Bucket: uniformBucketLevelAccess (IAM only, no object ACLs) and
    # publicAccessPrevention "enforced" (default "inherited" follows the org policy only).
    assert b["uniformBucketLevelAccess"] is True and b["publicAccessPrevention"] == "enforced"
    # cloud.google.com/storage/docs/lifecycle: action Delete with condition age (days since creation).
    assert b["lifecycleRules"] == [{"action": {"type": "Delete"}, "condition": {"age": 14}}]
    assert b["location"] == one(run, SERVICE).inputs["location"]


def test_capture_disabled_declares_nothing(run_edited: RunEdited) -> None:
    run = run_edited(set_fn("capture", {"enabled": False}))
    assert not children(run, BUCKET) and not children(run, SINK) and not children(run, EXCLUSION)
    assert [m.name for m in children(run, BUCKET_MEMBER)] == [f"{FN}-model-read"]
    env = {e["name"]: e["value"] for e in one(run, SERVICE).inputs["template"]["containers"][0]["envs"]}
    assert env["INFEROPS_CAPTURE_ENABLED"] == "false" and "INFEROPS_CAPTURE_URI" not in env


def test_capture_destination_is_used_without_a_bucket(run_edited: RunEdited) -> None:
    run = run_edited(set_fn("capture", {"destination": "gs://lake-bucket"}))
    assert not children(run, BUCKET)
    assert one(run, SINK).inputs["destination"] == "storage.googleapis.com/lake-bucket"
    (writer,) = [m for m in children(run, BUCKET_MEMBER) if m.name == f"{FN}-capture-write"]
    assert writer.inputs["bucket"] == "lake-bucket"


@pytest.mark.parametrize("uri", ["gs://lake-bucket/prefix", "s3://lake-bucket", "az://acct/container"])
def test_capture_destination_must_be_a_gcs_bucket(run_edited: RunEdited, uri: str) -> None:
    with pytest.raises(Exception, match=r"capture\.destination: "):
        run_edited(set_fn("capture", {"destination": uri}))


def test_sampling_edit_and_promotion_name_a_new_revision(dev_run: ProgramRun, run_edited: RunEdited) -> None:
    """Capture variables live in the revision template: any edit of them needs a new revision name
    (Cloud Run rejects a reused name with another configuration, HTTP 409)."""
    before = one(dev_run, SERVICE).inputs["template"]["revision"]
    sampled = one(run_edited(set_fn("capture", {"samplePercent": 5})), SERVICE).inputs["template"]
    assert sampled["revision"] != before
    env = {e["name"]: e["value"] for e in sampled["containers"][0]["envs"]}
    assert env["INFEROPS_CAPTURE_SAMPLE_PERCENT"] == "5"
    promoted = one(run_edited(set_fn("model.stableVersion", "3.0.1")), SERVICE).inputs["template"]
    env = {e["name"]: e["value"] for e in promoted["containers"][0]["envs"]}
    assert env["INFEROPS_VARIANT"] == "stable"
    assert promoted["revision"].rsplit("-", 1)[0] == before.rsplit("-", 1)[0]  # same version slug
    assert promoted["revision"] != before


# --- naming helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "doc-classifier", "x" * 22, "abcdefghij-abcdefghij-abcdefgh", "a" * 63])
def test_service_account_id_is_valid(name: str) -> None:
    """Service account ids: 6-30 characters, [a-z][-a-z0-9]{4,28}[a-z0-9], unique per GCP project
    (cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts/create)."""
    acct = service_account_id("inferops", "dev", name)
    assert re.fullmatch(r"[a-z][-a-z0-9]{4,28}[a-z0-9]", acct), acct
    assert acct != service_account_id("inferops", "prod", name), "two stacks in one project collide"


def test_long_names_get_distinct_account_ids() -> None:
    a = service_account_id("inferops", "dev", "a" * 62 + "b")
    b = service_account_id("inferops", "dev", "a" * 62 + "c")
    assert a != b and len(a) == len(b) == 30


@pytest.mark.parametrize("name", ["a", "doc-classifier", "fraud-scorer-realtime-transactions-euw1", "a" * 63])
def test_service_names_fit_cloud_run_and_leave_room_for_revisions(name: str) -> None:
    """A traffic tag and the service name together are at most 46 characters (the Cloud Run Admin API's
    validation error "traffic[].tag: ... Combined traffic tag and service name cannot exceed 46
    characters", which gcloud relays; Google's Firebase CLI sizes function ids by it:
    firebase/firebase-tools src/frameworks/index.ts);
    revision names are <service>-..., at most 63 (cloud.google.com/run/docs/reference/rest/v2/
    projects.locations.services)."""
    svc = service_name("inferops", "dev", name)
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", svc)
    assert all(len(svc) + len(tag) <= 46 for tag in ("canary", "stable"))
    assert svc != service_name("inferops", "prod", name)
    rev = revision_name(svc, "1.0.0-rc.1+build.77777777", "abcd")
    assert len(rev) <= 63 and rev.startswith(f"{svc}-")


def test_revision_names_fit_and_stay_distinct() -> None:
    svc = "s" * 30
    long_a, long_b = "1.0.0-rc.1+build." + "7" * 40, "1.0.0-rc.1+build." + "7" * 39 + "8"
    ra, rb = revision_name(svc, long_a, "abcd"), revision_name(svc, long_b, "abcd")
    for r in (ra, rb):
        assert len(r) <= 63 and r.startswith(f"{svc}-") and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", r)
    assert ra != rb
    assert revision_name("svc", "2.1.0", "abcd") == "svc-2-1-0-abcd"
    assert revision_name("svc", "2.1.0", "abcd") != revision_name("svc", "2.1.1", "abcd")


@pytest.mark.parametrize(
    ("uri", "versions", "expected"),
    [
        ("gs://b/models/x/2.0.0/model.json", ("2.0.0", "1.0.0"), ("b", "models/x/")),
        ("gs://b/models/x/1.0.0/model.json", ("2.0.0", "1.0.0"), ("b", "models/x/")),
        ("gs://b/2.0.0/model.json", ("2.0.0",), ("b", "")),
        ("gs://b/models/x/model.json", ("2.0.0",), ("b", "models/x/")),
        ("gs://b/model.json", ("2.0.0",), ("b", "model.json")),
    ],
)
def test_artifact_grant_prefix(uri: str, versions: tuple[str, ...], expected: tuple[str, str]) -> None:
    assert artifact_grant(uri, versions) == expected


@pytest.mark.parametrize("uri", ["s3://b/model.json", "gs:///model.json"])
def test_artifact_grant_rejects_bad_uris(uri: str) -> None:
    with pytest.raises(ValueError, match="artifactUri"):
        artifact_grant(uri, ("1",))
