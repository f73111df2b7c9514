"""GCP inference function: a Cloud Run v2 service (the runtime of Cloud Functions 2nd gen).

One :class:`GcpInferenceFunction` per function declares:

* a dedicated service account (the revision's identity) that may only read the model artifact
  (``roles/storage.objectViewer`` on the artifact bucket, narrowed by an IAM condition to the model's
  prefix, so both the canary and the stable revision can load their artifacts);
* the Cloud Run service, with revisions named after the model version, a canary as a traffic split
  between two named revisions, labels plus annotations, request-based billing and no public invoker
  unless ``endpoint.public`` is set;
* an ``roles/run.invoker`` grant to ``allUsers`` only for public endpoints;
* without ``runtime.image``: an Artifact Registry Docker repository (in the function's region, with
  cleanup policies that delete old untagged digests but keep what a canary's stable side needs), the
  build and push of ``functions/Dockerfile`` to it (:mod:`components.image`), and the service
  deploying the image by digest (pulled by the Cloud Run service agent, which needs no grant on a
  repository of its own project);
* with ``capture.enabled``: a Cloud Logging sink of the capture records to a private GCS bucket
  with a lifecycle rule (or to ``capture.destination``), its writer identity may only create objects,
  and (unless ``capture.keepInLogs``) an exclusion of the same records from the ``_Default`` sink;
* a billing budget on ``inferops:gcpBillingAccount`` filtered by the stack-scoped ``function-name``
  label that only this function's service of this stack carries and by the stack's GCP project, with
  one threshold rule per alert threshold and one e-mail notification channel per
  ``inferops:budgetAlertEmails`` address (channels carry the metadata in ``userLabels``).

The service and its service account are named from project, stack and function
(:func:`components.tags.scoped_name`), so two stacks share a GCP project without "already exists".
A canary (or a stopped one) routes to the stable revision only when that revision exists: on a fresh
stack every request goes to the candidate with a warning, and the export says 0 %.

Cloud Run revisions are immutable and a revision name reused with a different configuration is
rejected (HTTP 409), so a revision is named ``<service>-<version>-<shape hash>``: the hash covers
everything in the revision template except the version-specific parts (model URI and version), so
changing the image, CPU, memory or timeout of a version yields a new revision, while the stable
revision of a canary keeps a name this program can derive from ``model.stableVersion``.
See docs/components-gcp.md.
"""

from __future__ import annotations

import hashlib
import json
import re

import pulumi
import pulumi_docker_build as docker_build
import pulumi_gcp as gcp
from pulumi import ResourceOptions

from components.image import IMAGE_NAME, RegistryLogin, build_image, digest_ref
from components.spec import CaptureSpec, FunctionSpec, StackSpec, default_cpu
from components.tags import (
    FUNCTION_KEY,
    MANAGED_BY,
    STACK_KEY,
    CloudMetadata,
    cloud_metadata,
    function_key,
    gcp_labels_only,
    scoped_name,
    truncate_with_hash,
)

#: Labels also set on the revision template. Only keys whose value does not change while a model
#: version is deployed: any template change needs a new revision name (see the module docstring).
TEMPLATE_LABEL_KEYS = (FUNCTION_KEY, STACK_KEY, "managed-by", "model-id")
#: A budget notifies at most this many monitoring channels (Cloud Billing Budget API limit).
MAX_BUDGET_CHANNELS = 5
CANARY_TAG = "canary"
STABLE_TAG = "stable"
REVISION_TRAFFIC = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"

_REVISION_MAX = 63
_ACCOUNT_ID_MAX = 30
#: A traffic tag and the service name together are at most 46 characters: they form the tag URL's
#: DNS label. The Cloud Run Admin API rejects more ("traffic[].tag: traffic tag ... and service name
#: ... together are too long. Combined traffic tag and service name cannot exceed 46 characters", the
#: control plane's validation error, which gcloud only relays), and Google's own Firebase CLI sizes
#: its Cloud Run function ids by it (firebase/firebase-tools src/frameworks/index.ts: "Combined
#: traffic tag (19 chars) and functionId cannot exceed 46 characters"). The longest tag here is 6
#: characters ("canary", "stable"),
#: so service names are at most 40, which also leaves every revision name (service, '-', version
#: slug, '-', shape hash; at most 63) room for a readable version.
_SERVICE_MAX = 46 - max(len("canary"), len("stable"))
#: Bucket names: 3-63 characters of lowercase letters, digits, '-', '_' and '.', starting and ending
#: with a letter or digit (cloud.google.com/storage/docs/buckets#naming).
_BUCKET_MAX = 63
#: Cloud Run sends a container's stdout to this log; a single-line JSON object becomes the entry's
#: ``jsonPayload`` (cloud.google.com/run/docs/logging#container-logs, structured logging).
STDOUT_LOG = "run.googleapis.com%2Fstdout"
#: Artifact Registry repository ids: lowercase letters, digits and hyphens, starting with a letter and
#: ending with a letter or digit, at most 63 characters (the repository id rule of
#: cloud.google.com/artifact-registry/docs/repositories/create-repos; scoped names also fit it).
_REPOSITORY_MAX = 63
#: Artifact Registry's Docker login for an OAuth 2.0 access token: user ``oauth2accesstoken``, the
#: token as password (cloud.google.com/artifact-registry/docs/docker/authentication#token).
ACCESS_TOKEN_USER = "oauth2accesstoken"
#: Cleanup of the image repository (cloud.google.com/artifact-registry/docs/repositories/cleanup-policy):
#: every deploy that changes functions/ pushes a new digest and moves the one stack-scoped tag (and
#: the ``buildcache`` tag) to it, so older digests become untagged and, without a policy, stay and
#: are billed forever. Three policies (at most 10 per repository):
#:
#: * KEEP every tagged version: the digest the stack's tag points at (what the service deploys now)
#:   and the current build cache survive however old they are (a function not redeployed for months);
#: * KEEP the ``IMAGE_KEEP_VERSIONS`` most recent versions, whatever their age;
#: * DELETE untagged versions older than ``IMAGE_DELETE_AFTER_DAYS``.
#:
#: A version matching a keep and a delete policy is kept ("If an artifact version matches criteria
#: in both a delete policy and a keep policy, Artifact Registry applies the keep policy"), and a keep
#: policy alone deletes nothing, hence the delete policy.
#:
#: The count: the image a revision runs must stay pullable while the revision may start instances
#: (scale from zero). During a canary that is the stable revision's image, which is untagged as soon
#: as the candidate's build moved the tag, and its age is its push time, possibly months before the
#: canary, so the age rule alone would delete it: only the count protects it. One build adds up to 4
#: versions to the package (the image index, its linux/amd64 manifest, BuildKit's provenance
#: attestation manifest, and the cache manifest; counted as if Artifact Registry listed each manifest
#: as a version, the worst case), so 20 versions are the last 5 builds: the current one, the stable
#: revision's, and 3 more candidate builds of functions/ during one canary. A rollback to the stable
#: revision (``canaryPercent: 0`` or ``model.version`` back to ``stableVersion``) is within those;
#: a canary whose candidate is rebuilt more than 3 times while its stable image is older than the
#: age limit can lose the stable image (docs/components-gcp.md says so and what to do). Shared
#: layers are stored once, so the 20 cost little more than their changed layers.
IMAGE_KEEP_VERSIONS = 20
#: Untagged versions younger than this are kept whatever the count: a day's burst of builds is
#: never cut below a month of history.
IMAGE_DELETE_AFTER_DAYS = 30


def artifact_repository_id(project: str, stack: str, name: str) -> str:
    """The Artifact Registry repository the component declares: ``<project>-<stack>-<name>``, at most 63."""
    return scoped_name(project, stack, name, max_len=_REPOSITORY_MAX)


def image_cleanup_policies() -> list[gcp.artifactregistry.RepositoryCleanupPolicyArgs]:
    """The image repository's cleanup policies (see ``IMAGE_KEEP_VERSIONS``).

    Durations are the API's seconds form (``google.protobuf.Duration`` in JSON), as Google's own
    example of this resource writes them (terraform-google-modules/docs-examples
    ``artifact_registry_repository_cleanup/main.tf``: ``older_than = "2592000s"``).
    Deletion is a background job ("Changes take effect within approximately one day"), so nothing
    here is deleted during the ``pulumi up`` that sets the policies.
    """
    return [
        gcp.artifactregistry.RepositoryCleanupPolicyArgs(
            id="keep-tagged",
            action="KEEP",
            condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(tag_state="TAGGED"),
        ),
        gcp.artifactregistry.RepositoryCleanupPolicyArgs(
            id="keep-recent",
            action="KEEP",
            # A most-recent-versions keep policy cannot also carry a condition (the cleanup policy
            # overview), hence a policy of its own.
            most_recent_versions=gcp.artifactregistry.RepositoryCleanupPolicyMostRecentVersionsArgs(
                keep_count=IMAGE_KEEP_VERSIONS
            ),
        ),
        gcp.artifactregistry.RepositoryCleanupPolicyArgs(
            id="delete-untagged",
            action="DELETE",
            condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                tag_state="UNTAGGED", older_than=f"{IMAGE_DELETE_AFTER_DAYS * 86400}s"
            ),
        ),
    ]


def registry_host(region: str) -> str:
    """The Docker host of a regional Artifact Registry repository: ``<region>-docker.pkg.dev``
    (cloud.google.com/artifact-registry/docs/docker/names)."""
    return f"{region}-docker.pkg.dev"


def capture_bucket_name(project: str, stack: str, name: str) -> str:
    """The capture bucket the component declares: ``<project>-<stack>-<name>-capture``, at most 63."""
    return scoped_name(project, stack, name, max_len=_BUCKET_MAX, suffix="-capture")


def capture_destination_bucket(capture: CaptureSpec) -> str | None:
    """The bucket of ``capture.destination`` (None: the component declares one).

    A Cloud Logging sink writes to a bucket's root (``storage.googleapis.com/[BUCKET]``, Registry docs
    of ``gcp.logging.ProjectSink.destination``), so a ``gs://`` URI with a path cannot be honoured.
    """
    if capture.destination is None:
        return None
    uri = capture.destination
    bucket, _, path = uri.removeprefix("gs://").partition("/")
    if not uri.startswith("gs://") or path.strip("/"):
        raise ValueError(
            f"capture.destination: {uri!r} must be gs://<bucket> on GCP (a logging sink writes to a bucket's root)"
        )
    return bucket


def capture_filter(service: str, model_id: str) -> str:
    """The sink's filter: this service's stdout entries that are capture records (design.md fields)."""
    return " AND ".join(
        [
            'resource.type="cloud_run_revision"',
            f'resource.labels.service_name="{service}"',
            f'logName:"/logs/{STDOUT_LOG}"',
            f'jsonPayload.model_id="{model_id}"',
            "jsonPayload.request_id:*",
            "jsonPayload.variant:*",
            "jsonPayload.prediction:*",
        ]
    )


def capture_exclusion_name(service: str) -> str:
    """The ``_Default`` sink's exclusion of the service's capture records: ``<service>-capture``.

    Exclusion ids: at most 100 letters, digits, ``_``, ``-`` and ``.``, starting alphanumeric (the
    Logging API's ``LogExclusion.name``); a scoped service name is at most 40 such characters.
    """
    return truncate_with_hash(f"{service}-capture", 100)


def capture_env(fn: FunctionSpec) -> list[tuple[str, str]]:
    """The handler's capture variables for the revision serving ``model.version`` (functions/README.md).

    The candidate of a canary (``stableVersion`` differs) is ``canary``, whatever its share, so its
    records stay apart from the stable revision's. ``INFEROPS_CAPTURE_URI`` stays unset: stdout is
    the capture path on Cloud Run, exported by the sink.
    """
    c = fn.capture
    variant = "canary" if fn.stable_version != fn.model.version else "stable"
    return [
        ("INFEROPS_CAPTURE_ENABLED", "true" if c.enabled else "false"),
        ("INFEROPS_CAPTURE_SAMPLE_PERCENT", f"{c.sample_percent:g}"),
        ("INFEROPS_VARIANT", variant),
    ]


def _hash(text: str, n: int = 4) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _slug(text: str) -> str:
    """Lowercase letters, digits and single hyphens: the charset of Cloud Run resource names."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", text.lower())).strip("-")


def service_name(project: str, stack: str, name: str) -> str:
    """The Cloud Run service name: ``<project>-<stack>-<name>``, at most 40 characters."""
    return scoped_name(project, stack, name, max_len=_SERVICE_MAX)


def service_account_id(project: str, stack: str, name: str) -> str:
    """Service account id (6-30 characters, ``[a-z][-a-z0-9]{4,28}[a-z0-9]``, unique in the GCP
    project: cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts/create)."""
    return scoped_name(project, stack, name, max_len=_ACCOUNT_ID_MAX)


def revision_name(service: str, version: str, shape: str) -> str:
    """Revision name ``<service>-<version slug>-<shape>``, at most 63 characters.

    Cloud Run requires revision names to start with the service name. A version whose slug does not
    fit is shortened and suffixed with a hash of the full version, so distinct versions stay distinct.
    """
    room = _REVISION_MAX - len(service) - len(shape) - 2
    vslug = _slug(version) or "v"
    if len(vslug) > room:
        vslug = f"{vslug[: room - 5].rstrip('-')}-{_hash(version)}"
    return f"{service}-{vslug}-{shape}"


def artifact_grant(uri: str, versions: tuple[str, ...]) -> tuple[str, str]:
    """``(bucket, object prefix)`` the runtime may read for a ``gs://`` artifact URI.

    When a path segment equals one of ``versions`` the prefix stops before it (``models/x/`` for
    ``gs://b/models/x/2.0.0/model.json``), so the stable and the canary revision can both load their
    artifacts; otherwise it is the artifact's directory (or the object itself at the bucket root).
    """
    if not uri.startswith("gs://"):
        raise ValueError(f"model.artifactUri: {uri!r} is not a gs:// URI")
    bucket, _, path = uri.removeprefix("gs://").partition("/")
    if not bucket:
        raise ValueError(f"model.artifactUri: {uri!r} has no bucket")
    parts = path.split("/")
    for i, part in enumerate(parts[:-1]):
        if part in versions:
            return bucket, "/".join(parts[:i]) + ("/" if i else "")
    if len(parts) > 1:
        return bucket, "/".join(parts[:-1]) + "/"
    return bucket, path


def _describe(summary: str, annotations: dict[str, str], limit: int = 1024) -> str:
    """A description carrying the metadata that cannot be labels, one ``key=value`` per line."""
    text = "\n".join([summary, *(f"{k}={v}" for k, v in annotations.items())])
    if len(text) > limit:
        raise ValueError(f"metadata of {summary!r} does not fit a {limit}-character description")
    return text


def _cpu_quantity(cpu: float) -> str:
    return str(int(cpu)) if float(cpu).is_integer() else f"{round(cpu * 1000)}m"


class GcpInferenceFunction(pulumi.ComponentResource):
    """An inference function on Cloud Run with its identity, invoker policy and billing budget.

    Attributes:
        endpoint: the service URL (authenticated unless ``endpoint.public``).
        budget_id: the budget's resource name ``billingAccounts/<account>/budgets/<id>``.
        revision: the revision serving ``model.version``.
        stable_revision: the revision serving ``model.stableVersion`` (equal to ``revision`` without
            a stable version).
    """

    endpoint: pulumi.Output[str]
    budget_id: pulumi.Output[str]

    def __init__(self, name: str, fn: FunctionSpec, stack: StackSpec, opts: ResourceOptions | None = None):
        super().__init__("inferops:gcp:InferenceFunction", name, {}, opts)
        child = ResourceOptions(parent=self)
        if not stack.gcp_billing_account:
            raise ValueError(f"inferops:gcpBillingAccount: required by gcp function {fn.name}")
        if len(stack.budget_alert_emails) > MAX_BUDGET_CHANNELS:
            raise ValueError(
                f"inferops:budgetAlertEmails: a GCP budget notifies at most {MAX_BUDGET_CHANNELS} "
                f"channels ({len(stack.budget_alert_emails)} given, function {fn.name})"
            )

        project, stack_name = pulumi.get_project(), pulumi.get_stack()
        meta = cloud_metadata(fn, "gcp", stack=stack_name, project=project)
        labels = meta.labels
        template_labels = {k: v for k, v in labels.items() if k in TEMPLATE_LABEL_KEYS}
        svc_name = service_name(project, stack_name, fn.name)  # explicit: revision names start with it
        account_id = service_account_id(project, stack_name, fn.name)
        cpu = default_cpu(fn)
        capture_bucket = capture_destination_bucket(fn.capture) if fn.capture.enabled else None
        env = [
            ("MODEL_URI", fn.model.artifact_for(fn.model.version)),
            ("MODEL_ID", fn.model.id),
            ("MODEL_VERSION", fn.model.version),
            *capture_env(fn),
        ]
        # Cloud Run requires one request at a time below 1 vCPU; 80 is its default otherwise.
        concurrency = 1 if cpu < 1 else 80

        self.account = gcp.serviceaccount.Account(
            f"{name}-sa",
            account_id=account_id,
            display_name=f"inferops {fn.name} runtime",
            description=f"Runtime identity of the inferops inference function {fn.name}",
            opts=child,
        )

        bucket, prefix = artifact_grant(fn.model.artifact_for(fn.model.version), (fn.model.version, fn.stable_version))
        self.artifact_reader = gcp.storage.BucketIAMMember(
            f"{name}-model-read",
            bucket=bucket,
            role="roles/storage.objectViewer",
            member=self.account.member,
            condition=gcp.storage.BucketIAMMemberConditionArgs(
                title=f"inferops-{fn.name}-model-read",
                description=f"Read of the {fn.model.id} model artifacts only",
                expression=f'resource.name.startsWith("projects/_/buckets/{bucket}/objects/{prefix}")',
            ),
            opts=child,
        )

        self.image_repository: gcp.artifactregistry.Repository | None = None
        self.image: docker_build.Image | None = None
        image: pulumi.Input[str]
        if fn.runtime.image is not None:
            image = fn.runtime.image  # deployed as given
        else:
            image = self._build_image(name, fn, meta, project, stack_name)

        limits = {"cpu": _cpu_quantity(cpu), "memory": f"{fn.runtime.memory_mb}Mi"}
        timeout = f"{fn.runtime.timeout_seconds}s"
        # Everything in the template but the version-specific parts: the stable revision shares it.
        # A built image enters as its digest reference, so a new digest names a new revision.
        shape_of = {
            "limits": limits,
            "timeout": timeout,
            "concurrency": concurrency,
            "account": account_id,
            "labels": template_labels,
            # The capture variables are in the template: a sampling edit or a promotion
            # (variant canary -> stable) is a new revision, never a reused name (HTTP 409).
            "capture": capture_env(fn),
        }
        shape = pulumi.Output.from_input(image).apply(
            lambda img: _hash(json.dumps({**shape_of, "image": img}, sort_keys=True))
        )
        self.revision: pulumi.Output[str] = shape.apply(lambda h: revision_name(svc_name, fn.model.version, h))
        self.stable_revision: pulumi.Input[str] | None = shape.apply(
            lambda h: revision_name(svc_name, fn.stable_version, h)
        )
        self.routed_percent = fn.canary_percent
        if fn.stable_version != fn.model.version:
            existing = _existing_stable_revision(svc_name, fn.region, svc_name + "-" + _slug(fn.stable_version) + "-")
            if existing is None:
                # Never name a revision that does not exist: Cloud Run rejects the traffic block.
                pulumi.log.warn(
                    f"{fn.name}: no revision of the stable model {fn.stable_version} exists on this stack; "
                    f"every request goes to {fn.model.version}. Deploy the stable version alone first "
                    "(model.version = model.stableVersion), then start the canary",
                    resource=self,
                )
                self.stable_revision = None
                self.routed_percent = 0
            else:
                # The revision actually serving it (its shape may predate an image or limits edit).
                self.stable_revision = existing

        self.service = gcp.cloudrunv2.Service(
            f"{name}-service",
            name=svc_name,
            location=fn.region,
            description=f"inferops inference function {fn.name} (model {fn.model.id})",
            # Reachable from anywhere but every request needs an identity with roles/run.invoker
            # unless the endpoint is public; callers outside the VPC (other clouds, CI) keep working.
            ingress="INGRESS_TRAFFIC_ALL",
            invoker_iam_disabled=False,
            # Stateless: a replacement or `pulumi destroy` must not be blocked.
            deletion_protection=False,
            labels=labels,
            annotations=meta.annotations,
            # Service-level bounds are shared by all revisions receiving traffic and live outside
            # the revision template, so a scaling edit never needs a new revision.
            scaling=gcp.cloudrunv2.ServiceScalingArgs(
                scaling_mode="AUTOMATIC",
                min_instance_count=fn.scaling.min_instances,
                max_instance_count=fn.scaling.max_instances,
            ),
            template=gcp.cloudrunv2.ServiceTemplateArgs(
                revision=self.revision,
                service_account=self.account.email,
                timeout=timeout,
                max_instance_request_concurrency=concurrency,
                labels=template_labels,
                containers=[
                    gcp.cloudrunv2.ServiceTemplateContainerArgs(
                        image=image,
                        envs=[gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(name=k, value=v) for k, v in env],
                        resources=gcp.cloudrunv2.ServiceTemplateContainerResourcesArgs(
                            limits=limits,
                            cpu_idle=True,  # request-based billing: CPU only while serving
                        ),
                    )
                ],
            ),
            traffics=self._traffic(fn),
            opts=ResourceOptions(
                parent=self,
                # The revision's identity may read the model before the revision starts.
                depends_on=[self.artifact_reader],
            ),
        )

        if fn.endpoint.public:
            self.public_invoker: gcp.cloudrunv2.ServiceIamMember | None = gcp.cloudrunv2.ServiceIamMember(
                f"{name}-public-invoker",
                name=self.service.name,
                location=self.service.location,
                project=self.service.project,
                role="roles/run.invoker",
                member="allUsers",
                opts=child,
            )
        else:
            self.public_invoker = None

        self.alert_channels = [
            gcp.monitoring.NotificationChannel(
                f"{name}-alert-{_hash(email, 8)}",
                type="email",
                display_name=f"inferops {fn.name} budget: {email}"[:512],
                # User labels cannot hold URLs or e-mail addresses: those keys go to the description.
                description=_describe(f"Budget alerts of the {MANAGED_BY} function {fn.name}.", meta.annotations),
                labels={"email_address": email},
                user_labels=labels,
                opts=child,
            )
            for email in stack.budget_alert_emails
        ]

        # Budgets filter on the GCP project too: another project on the billing account with the
        # same label never counts (budgetFilter.projects takes "projects/<number>").
        project_number = gcp.organizations.get_project_output().number
        budget_usd = fn.finops.monthly_budget_usd
        units = int(budget_usd)
        nanos = round((budget_usd - units) * 1e9)
        self.budget = gcp.billing.Budget(
            f"{name}-budget",
            billing_account=stack.gcp_billing_account,
            display_name=labels[FUNCTION_KEY],
            budget_filter=gcp.billing.BudgetBudgetFilterArgs(
                labels={FUNCTION_KEY: labels[FUNCTION_KEY]},
                projects=[pulumi.Output.concat("projects/", project_number)],
                calendar_period="MONTH",
            ),
            amount=gcp.billing.BudgetAmountArgs(
                specified_amount=gcp.billing.BudgetAmountSpecifiedAmountArgs(
                    currency_code="USD",
                    units=str(units),
                    nanos=nanos or None,
                ),
            ),
            threshold_rules=[
                gcp.billing.BudgetThresholdRuleArgs(threshold_percent=p / 100, spend_basis="CURRENT_SPEND")
                for p in fn.finops.alert_thresholds_percent
            ],
            all_updates_rule=(
                gcp.billing.BudgetAllUpdatesRuleArgs(
                    monitoring_notification_channels=[c.name for c in self.alert_channels],
                    disable_default_iam_recipients=False,
                )
                if self.alert_channels
                else None
            ),
            opts=child,
        )

        self._capture(name, fn, svc_name, gcp_labels_only(meta), capture_bucket, project, stack_name)

        self.endpoint = self.service.uri
        self.budget_id = self.budget.name
        self.canary_percent = pulumi.Output.from_input(self.routed_percent)
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "budgetId": self.budget_id,
                "canaryPercent": self.canary_percent,
                "serviceAccount": self.account.email,
                "revision": self.revision,
                "stableRevision": self.stable_revision,
                "captureUri": self.capture_uri,
            }
        )

    def _build_image(
        self,
        name: str,
        fn: FunctionSpec,
        meta: CloudMetadata,
        project: str,
        stack_name: str,
    ) -> pulumi.Output[str]:
        """Artifact Registry repository + build and push of functions/Dockerfile; the digest reference."""
        child = ResourceOptions(parent=self)
        self.image_repository = gcp.artifactregistry.Repository(
            f"{name}-images",
            repository_id=artifact_repository_id(project, stack_name, fn.name),
            location=fn.region,  # the service's region: pulls stay in-region
            format="DOCKER",
            description=_describe(f"Handler images of the {MANAGED_BY} function {fn.name}.", {}),
            labels=gcp_labels_only(meta),
            cleanup_policies=image_cleanup_policies(),
            # Policies that delete: dry run only reports (cleanupPolicyDryRun, Registry docs of
            # gcp.artifactregistry.Repository: "If true, the cleanup pipeline is prevented from
            # deleting versions in this repository").
            cleanup_policy_dry_run=False,
            opts=child,
        )
        # registryUri is <region>-docker.pkg.dev/<project>/<repository id>.
        repository = pulumi.Output.concat(self.image_repository.registry_uri, "/", IMAGE_NAME)
        # The credentials of `pulumi up` itself (a CI runner's workload identity or key): a short-lived
        # access token of the provider's identity, so the runner needs no docker login or gcloud helper.
        token = gcp.organizations.get_client_config_output().access_token
        tag = function_key(project, stack_name, fn.name)
        self.image = build_image(
            f"{name}-image",
            repository,
            tag,
            login=RegistryLogin(address=registry_host(fn.region), username=ACCESS_TOKEN_USER, password=token),
            parent=self,
            depends_on=[self.image_repository],
        )
        # No grant for the revision's identity: Cloud Run pulls the image with its service agent, not
        # with the revision's service account (the control plane's error names it: "Google Cloud Run
        # Service Agent <account> must have permission to read the image", the message
        # GoogleCloudPlatform/gcpdiag gcpdiag/runbook/cloudrun/service_deployment.py matches), and
        # runtimes are preconfigured with access to repositories in the same project
        # (cloud.google.com/artifact-registry/docs/deploy), which this one always is (one provider).
        return digest_ref(repository, tag, self.image)

    def _capture(
        self,
        name: str,
        fn: FunctionSpec,
        svc_name: str,
        labels: dict[str, str],
        destination: str | None,
        project: str,
        stack_name: str,
    ) -> None:
        """Cloud Logging sink of the capture records -> a GCS bucket with lifecycle (issue 13)."""
        child = ResourceOptions(parent=self)
        self.capture_bucket: gcp.storage.Bucket | None = None
        self.capture_sink: gcp.logging.ProjectSink | None = None
        self.capture_writer: gcp.storage.BucketIAMMember | None = None
        self.capture_exclusion: gcp.logging.ProjectExclusion | None = None
        if not fn.capture.enabled:
            self.capture_uri: pulumi.Output[str] | None = None
            return
        if destination is None:
            self.capture_bucket = gcp.storage.Bucket(
                f"{name}-capture",
                name=capture_bucket_name(project, stack_name, fn.name),
                location=fn.region,
                # IAM only (no ACLs) and never public: the records hold features and predictions.
                uniform_bucket_level_access=True,
                public_access_prevention="enforced",
                lifecycle_rules=[
                    gcp.storage.BucketLifecycleRuleArgs(
                        action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                        condition=gcp.storage.BucketLifecycleRuleConditionArgs(age=fn.capture.retention_days),
                    )
                ],
                # A stack's captures go with it; an existing destination is never declared here.
                force_destroy=True,
                labels=labels,
                opts=child,
            )
            bucket: pulumi.Input[str] = self.capture_bucket.name
        else:
            bucket = destination
        records = capture_filter(svc_name, fn.model.id)
        self.capture_sink = gcp.logging.ProjectSink(
            f"{name}-capture-sink",
            name=truncate_with_hash(f"{svc_name}-capture", 100),
            description=_describe(f"Capture records of the {MANAGED_BY} function {fn.name}.", {}),
            destination=pulumi.Output.concat("storage.googleapis.com/", bucket),
            filter=records,
            # A service agent of its own instead of the shared cloud-logs account, so the grant
            # below names exactly the writer of this sink.
            unique_writer_identity=True,
            opts=child,
        )
        self.capture_writer = gcp.storage.BucketIAMMember(
            f"{name}-capture-write",
            bucket=bucket,
            # Create only: the sink never reads, overwrites or deletes exported objects.
            role="roles/storage.objectCreator",
            member=self.capture_sink.writer_identity,
            opts=child,
        )
        if not fn.capture.keep_in_logs:
            # The _Default sink would also store every record in the _Default log bucket, billed as
            # Logging storage: a project exclusion is an exclusion filter of the _Default sink only
            # (Logging API projects.exclusions.create: "Creates a new exclusion in the _Default
            # sink"), and each sink evaluates an entry independently, so the capture sink still
            # exports it. The filter is exactly the sink's: nothing else leaves _Default. Created
            # after the sink and its write grant (and deleted before them), so a record is not in
            # neither place while the sink cannot write yet.
            self.capture_exclusion = gcp.logging.ProjectExclusion(
                f"{name}-capture-exclusion",
                name=capture_exclusion_name(svc_name),
                description=_describe(
                    f"Capture records of the {MANAGED_BY} function {fn.name}: exported by its capture "
                    "sink, not stored in _Default.",
                    {},
                ),
                filter=records,
                opts=ResourceOptions(parent=self, depends_on=[self.capture_sink, self.capture_writer]),
            )
        self.capture_uri = pulumi.Output.concat("gs://", bucket, "/", STDOUT_LOG.replace("%2F", "/"))

    def _traffic(self, fn: FunctionSpec) -> list[gcp.cloudrunv2.ServiceTrafficArgs]:
        """Traffic by revision name: never LATEST, which would follow whatever revision was created last."""
        if fn.stable_version == fn.model.version or self.stable_revision is None:
            return [gcp.cloudrunv2.ServiceTrafficArgs(type=REVISION_TRAFFIC, revision=self.revision, percent=100)]
        # A stable version differs: the candidate stays reachable at its tag URL even at 0 %
        # (canary stopped), and the stable revision takes the rest.
        return [
            gcp.cloudrunv2.ServiceTrafficArgs(
                type=REVISION_TRAFFIC,
                revision=self.stable_revision,
                percent=100 - fn.canary_percent,
                tag=STABLE_TAG,
            ),
            gcp.cloudrunv2.ServiceTrafficArgs(
                type=REVISION_TRAFFIC, revision=self.revision, percent=fn.canary_percent, tag=CANARY_TAG
            ),
        ]


def service_not_found(error: str, service: str) -> bool:
    """Whether an error of the ``gcp:cloudrunv2/getService`` invoke says the service does not exist.

    The data source reads the service through the resource's read, which turns the API's 404 into an
    empty id, and then fails with ``"<id> not found"`` for the id
    ``projects/<project>/locations/<location>/services/<name>``
    (hashicorp/terraform-provider-google google/services/cloudrunv2/data_source_google_cloud_run_v2_service.go,
    ``dataSourceGoogleCloudRunV2ServiceRead``): that sentence for this service, and nothing looser. A
    permission or disabled-API error (HTTP 403) must fail the deploy, even when its text happens to
    contain "404" (a project number) or "not found".
    """
    return f"/services/{service} not found" in error


def _existing_stable_revision(service: str, location: str, prefix: str) -> str | None:
    """The revision of the stable model that the service serves now (a read of the live service).

    The stable revision is the one this program routed the stable model to on an earlier deploy:
    tagged ``stable``, or taking all traffic, with a name that starts ``<service>-<stable slug>-``.
    None when the service or such a revision does not exist (a fresh stack).
    """
    try:
        current = gcp.cloudrunv2.get_service(name=service, location=location)
    except Exception as exc:  # the provider's invoke error: only its "not found" means "does not exist"
        if service_not_found(str(exc), service):
            return None
        raise
    for status in current.traffic_statuses or []:
        revision = status.revision or ""
        if revision.startswith(prefix) and (status.tag == STABLE_TAG or status.percent > 0):
            return revision
    return None
