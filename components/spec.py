"""Cloud-neutral, validated spec of the inference functions declared in stack config.

The stack file (``Pulumi.<stack>.yaml``) carries two keys in the ``inferops`` namespace:
``inferops:defaults`` (FinOps fields merged under every function's ``finops`` block) and
``inferops:functions`` (a list of functions). :func:`parse_stack_config` turns that mapping into a
:class:`StackSpec` or raises :class:`SpecError` with a one-line message naming the function and the
field, before the program registers any resource.

Limits are the platforms' own (checked late 2026):

* AWS Lambda: 128-10240 MB memory, timeout up to 900 s, ``x86_64`` or ``arm64``.
* Azure Functions Consumption (Linux): up to 1536 MB per instance, timeout up to 600 s, x86_64 only,
  no always-ready instances, at most 200 instances. Flex Consumption: instance memory 512, 2048 or
  4096 MB, timeout up to 14400 s here (the platform allows unbounded HTTP-triggered runs, but the
  front end cuts HTTP requests at 230 s), 1-1000 instances.
* Cloud Run (the runtime of Cloud Functions 2nd gen): memory 128 MiB-32 GiB, CPU 0.08-1 (fractions,
  only with memory up to 512 MiB), 1, 2, 4, 6 or 8 vCPU with the documented memory ranges, timeout
  up to 3600 s, x86_64 only.
* Kubernetes/Knative: memory 64 MiB-64 GiB, CPU 0.05-64 cores, timeout up to 600 s (Knative's default
  ``max-revision-timeout-seconds``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

Platform = Literal["aws", "azure", "gcp", "kubernetes"]
RiskTier = Literal["minimal", "limited", "high"]
RemediationAction = Literal["stop-canary", "rollback", "request-retraining", "none"]

NAMESPACE = "inferops"
#: Stack config keys the program reads, without the namespace.
CONFIG_KEYS = (
    "defaults",
    "functions",
    "budgetAlertEmails",
    "gcpBillingAccount",
    "kubernetesNodePrice",
    "awsActivateCostAllocationTags",
    "containerRegistry",
    "imagePullSecret",
)

# A DNS label (RFC 1123, at most 63 characters) starting with a letter. Physical names are derived
# from it per cloud (components/tags.py: truncation plus a short stable hash where a limit is shorter).
_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,62}$")
# Free text as users have it (``meta-llama/Llama-3.1-8B-Instruct``), within the AWS tag value charset
# so every tag cloud keeps it unchanged; label clouds get a label-safe form (components/tags.py).
_MODEL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/=+@-]{0,127}$")
# Cost centers and environments (``CC-1234-EU``): case kept, AWS tag value charset, at most 63.
_PLAIN_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9 _.:/=+@-]{0,61}[A-Za-z0-9])?$")
# registry host[:port]/path[:tag|@digest]; a tag or digest is required so deploys are reproducible.
_IMAGE_RE = r"^[a-z0-9][a-z0-9.-]*(:[0-9]+)?(/[a-z0-9._-]+)+(:[\w.-]{1,128}|@sha256:[0-9a-f]{64})$"
#: Where built images are pushed (``inferops:containerRegistry``): a registry host (a dot or a port, or
#: ``localhost``, so it is never read as a Docker Hub namespace) and an optional path, no tag or digest.
#: Path components follow the distribution reference grammar (github.com/distribution/reference,
#: ``path-component``: ``[a-z0-9]+`` joined by ``.``, ``_``, ``__`` or dashes).
_REGISTRY_RE = (
    r"^(([a-z0-9-]+(\.[a-z0-9-]+)+|localhost)(:[0-9]{1,5})?|[a-z0-9-]+:[0-9]{1,5})"
    r"(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$"
)
#: A Secret's name: a DNS subdomain, lowercase alphanumerics, '-' and '.', starting and ending
#: alphanumeric, at most 253 characters ("The name of a Secret object must be a valid DNS subdomain
#: name", kubernetes.io/docs/concepts/configuration/secret; the subdomain rule of
#: kubernetes.io/docs/concepts/overview/working-with-objects/names#dns-subdomain-names).
_SECRET_NAME_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_SECRET_NAME_MAX = 253
_DATA_URI_RE = r"^(s3|gs|az|abfs|https)://[^\s/]+/\S+$"  # an object (or prefix) the drift job reads
_EMAIL_RE = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+")
_REGION_RE: dict[str, re.Pattern[str]] = {
    "aws": re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$"),
    "azure": re.compile(r"^[a-z][a-z0-9]{2,30}$"),
    "gcp": re.compile(r"^[a-z]+-[a-z]+\d$"),
    "kubernetes": re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"),
}
_ARTIFACT_SCHEMES: dict[str, tuple[str, ...]] = {
    "aws": ("s3://",),
    "azure": ("az://", "https://"),
    "gcp": ("gs://",),
    "kubernetes": ("s3://", "gs://", "az://", "https://"),
}


#: Longest URL or URI accepted (browsers and the clouds' tag values are far below 10 MB).
MAX_URL_LENGTH = 2048
#: Largest request volume a month an estimate is made for (about 385,000 requests a second).
MAX_MONTHLY_REQUESTS = 10**12
# Control characters (C0, DEL, C1) and the Unicode line and paragraph separators: never in a value.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class SpecError(ValueError):
    """Stack config that cannot be deployed; the message is one line naming the field."""


def _escape(text: object) -> str:
    """``text`` with control characters escaped, so an error message cannot carry a terminal escape."""
    return _CONTROL_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", str(text))


class _Model(BaseModel):
    """Strict camelCase model: unknown keys and wrong types are errors, not coercions."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        allow_inf_nan=False,  # the engine hands config over as JSON, whose parsers accept Infinity
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, v: Any) -> Any:
        for item in v if isinstance(v, list) else [v]:
            if isinstance(item, str) and _CONTROL_RE.search(item):
                raise ValueError("must not contain control characters or line breaks")
        return v


def _https(value: str, field: str) -> str:
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"{field} must be at most {MAX_URL_LENGTH} characters")
    if not re.fullmatch(r"https://[^\s/]+\.[^\s/]+(/\S*)?", value):
        raise ValueError(f"{field} must be an https:// URL")
    return value


class ModelSpec(_Model):
    """The model a function serves, and the responsible-AI metadata that travels with it."""

    id: str
    version: str
    stable_version: str | None = None
    artifact_uri: str
    card_url: str
    lineage_url: str
    fairness_score: Annotated[float, Field(ge=0.0, le=1.0)]
    risk_tier: RiskTier
    approval_ref: str | None = None
    #: The drift baseline: a training-data snapshot or a captured window of the stable version.
    reference_uri: Annotated[str, Field(pattern=_DATA_URI_RE, max_length=MAX_URL_LENGTH)] | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _MODEL_ID_RE.fullmatch(v):
            raise ValueError("must be 1-128 letters, digits or '_ . : / = + @ -', starting with a letter or digit")
        return v

    @field_validator("version", "stable_version")
    @classmethod
    def _version(cls, v: str | None) -> str | None:
        if v is not None and not _VERSION_RE.fullmatch(v):
            raise ValueError("must be 1-63 characters of letters, digits, '.', '_', '+' or '-' (quote it)")
        return v

    @field_validator("card_url")
    @classmethod
    def _card(cls, v: str) -> str:
        return _https(v, "cardUrl")

    @field_validator("lineage_url")
    @classmethod
    def _lineage(cls, v: str) -> str:
        return _https(v, "lineageUrl")

    @field_validator("approval_ref")
    @classmethod
    def _approval(cls, v: str | None) -> str | None:
        return None if v is None else _https(v, "approvalRef")

    @field_validator("artifact_uri")
    @classmethod
    def _artifact(cls, v: str) -> str:
        if re.search(r"\{(?!version\})[^}]*\}", v) or re.search(r"\s", v):
            raise ValueError("the only placeholder allowed is {version}, and no spaces")
        if len(v) > MAX_URL_LENGTH:
            raise ValueError(f"must be at most {MAX_URL_LENGTH} characters")
        return v

    def artifact_for(self, version: str) -> str:
        """The artifact URI of ``version``: ``{version}`` in ``artifactUri`` is replaced by it.

        Templated URIs let the stable side of a canary (and a rollback) load the stable model
        without a second config key.
        """
        return self.artifact_uri.replace("{version}", version)

    @model_validator(mode="after")
    def _high_risk_needs_review(self) -> ModelSpec:
        if self.risk_tier == "high" and not self.approval_ref:
            raise ValueError("approvalRef: a high-risk model needs a link to its human review")
        return self


class RuntimeSpec(_Model):
    """Compute shape. ``cpu`` and ``image`` apply to Cloud Run and Kubernetes; ``azurePlan`` to Azure.

    ``image`` is optional: unset, the component builds ``functions/Dockerfile`` and pushes it (to an
    Artifact Registry repository it declares on GCP, to ``inferops:containerRegistry`` on
    Kubernetes) and deploys it by digest; set, that image is deployed as given.
    """

    memory_mb: Annotated[int, Field(gt=0, le=1_048_576)]
    timeout_seconds: Annotated[int, Field(gt=0, le=86_400)]
    architecture: Literal["x86_64", "arm64"] = "x86_64"
    cpu: Annotated[float, Field(gt=0, le=64)] | None = None
    image: Annotated[str, Field(pattern=_IMAGE_RE, max_length=MAX_URL_LENGTH)] | None = None
    azure_plan: Literal["consumption", "flexConsumption"] | None = None


class ScalingSpec(_Model):
    """Instance bounds: Lambda provisioned/reserved concurrency, Azure/GCP/Knative scale bounds."""

    min_instances: Annotated[int, Field(ge=0, le=1000)] = 0
    max_instances: Annotated[int, Field(ge=1, le=1000)] = 10

    @model_validator(mode="after")
    def _ordered(self) -> ScalingSpec:
        if self.min_instances > self.max_instances:
            raise ValueError("minInstances must not exceed maxInstances")
        return self


class TrafficSpec(_Model):
    """Canary split: ``canaryPercent`` of requests go to ``model.version``, the rest to the stable one."""

    canary_percent: Annotated[int, Field(ge=0, le=100)] = 0


class EndpointSpec(_Model):
    """The function's HTTP endpoint. Authenticated unless ``public`` is set explicitly."""

    enabled: bool = True
    public: bool = False


class FinOpsSpec(_Model):
    """Cost ownership, the monthly budget and the usage the cost estimate is based on."""

    cost_center: str
    owner: str
    environment: str
    monthly_budget_usd: Annotated[float, Field(gt=0, le=10_000_000)]
    alert_thresholds_percent: Annotated[list[Annotated[int, Field(ge=1, le=1000)]], Field(min_length=1)] = [
        50,
        80,
        100,
    ]
    expected_monthly_requests: Annotated[int, Field(ge=0, le=MAX_MONTHLY_REQUESTS)]
    avg_duration_ms: Annotated[float, Field(gt=0, le=3_600_000)]
    #: The latency objective FinOps rightsizing keeps (p95 of the captured ``latency_ms``); optional.
    latency_slo_ms: Annotated[float, Field(gt=0, le=3_600_000)] | None = None

    @field_validator("monthly_budget_usd")
    @classmethod
    def _at_least_a_cent(cls, v: float) -> float:
        # A budget of 5e-324 made "budget used" overflow to Infinity in the JSON plan.
        if v < 0.01:
            raise ValueError("must be at least 0.01 (USD)")
        return v

    @field_validator("cost_center", "environment")
    @classmethod
    def _plain(cls, v: str) -> str:
        if not _PLAIN_RE.fullmatch(v):
            raise ValueError(
                "must be 1-63 letters, digits, spaces or '_ . : / = + @ -', letters or digits at both ends"
            )
        return v

    @field_validator("owner")
    @classmethod
    def _owner(cls, v: str) -> str:
        if len(v) > 254 or not _EMAIL_RE.fullmatch(v):
            raise ValueError("must be an e-mail address")
        return v

    @field_validator("alert_thresholds_percent")
    @classmethod
    def _thresholds(cls, v: list[int]) -> list[int]:
        if v != sorted(set(v)):
            raise ValueError("must be strictly increasing")
        return v


class RemediationSpec(_Model):
    """What the drift loop does to this function's config for each kind of drift."""

    on_major_during_canary: RemediationAction = "stop-canary"
    on_major: RemediationAction = "rollback"
    on_minor: RemediationAction = "request-retraining"
    on_performance: RemediationAction | None = None


class RetrainingSpec(_Model):
    """A retraining request recorded by the drift loop; resources carry it as metadata."""

    reason: Annotated[str, Field(min_length=1, max_length=500)]
    report_digest: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]
    requested_at: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class CaptureSpec(_Model):
    """Data capture of the function's predictions (design.md capture record)."""

    enabled: bool = True
    sample_percent: Annotated[float, Field(ge=0, le=100)] = 100.0
    retention_days: Annotated[int, Field(ge=1, le=3650)] = 30
    #: An existing bucket/container to write to; default: one the component declares.
    destination: Annotated[str, Field(pattern=r"^(s3|gs|az)://[a-z0-9][a-z0-9._-]{1,254}(/\S*)?$")] | None = None
    #: GCP: also keep the capture entries in the project's ``_Default`` log bucket (Logs Explorer), at
    #: Cloud Logging's storage price; default: excluded there, the capture bucket holds them. Other
    #: platforms: no effect (their capture path reads the platform's logs).
    keep_in_logs: bool = False


class FunctionSpec(_Model):
    """One inference function: where it runs, what it serves, how it scales, what it may cost."""

    name: str
    platform: Platform
    region: str
    model: ModelSpec
    runtime: RuntimeSpec
    scaling: ScalingSpec = ScalingSpec()
    traffic: TrafficSpec = TrafficSpec()
    endpoint: EndpointSpec = EndpointSpec()
    finops: FinOpsSpec
    remediation: RemediationSpec = RemediationSpec()
    retraining: RetrainingSpec | None = None
    capture: CaptureSpec = CaptureSpec()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.fullmatch(v):
            raise ValueError(
                "must be a DNS label: lowercase letters, digits and '-', starting with a letter, at most 63 characters"
            )
        return v

    @property
    def canary_active(self) -> bool:
        """True when traffic is split between ``model.version`` and ``model.stableVersion``."""
        m = self.model
        return self.traffic.canary_percent > 0 and m.stable_version is not None and m.stable_version != m.version

    @property
    def canary_percent(self) -> int:
        """Share of requests on the candidate version; 0 when no canary is running."""
        return self.traffic.canary_percent if self.canary_active else 0

    @property
    def stable_version(self) -> str:
        """The version that takes the non-canary share (``model.version`` when there is none)."""
        return self.model.stable_version or self.model.version


class NodePrice(_Model):
    """Kubernetes node price used for cost estimates (USD per vCPU-hour and per GiB-hour)."""

    vcpu_hour_usd: Annotated[float, Field(ge=0, le=1000)]
    gib_hour_usd: Annotated[float, Field(ge=0, le=1000)]


class StackSpec(_Model):
    """Everything the program reads from a stack's config."""

    functions: list[FunctionSpec]
    budget_alert_emails: list[str] = []
    gcp_billing_account: str | None = None
    kubernetes_node_price: NodePrice = NodePrice(vcpu_hour_usd=0.0316, gib_hour_usd=0.0042)
    #: Declare the activation of the ``function-name`` and ``stack`` cost-allocation tags (AWS Budgets
    #: filter on user tags only once they are active). Off by default: see docs/components-aws.md.
    aws_activate_cost_allocation_tags: bool = False
    #: Where the Kubernetes components push the image they build (``ghcr.io/example``): needed by a
    #: kubernetes function without ``runtime.image``. Credentials: the runner's own ``docker login``.
    container_registry: str | None = None
    #: The ``kubernetes.io/dockerconfigjson`` Secret the cluster pulls a private image with: the name of
    #: an existing Secret in each kubernetes function's namespace (never its content: stack config
    #: holds no credentials). Unset: the node's own registry identity (or a public image).
    image_pull_secret: str | None = None

    @field_validator("budget_alert_emails")
    @classmethod
    def _emails(cls, v: list[str]) -> list[str]:
        for e in v:
            if len(e) > 254 or not _EMAIL_RE.fullmatch(e):
                raise ValueError(f"{e!r} is not an e-mail address")
        return v

    @field_validator("container_registry")
    @classmethod
    def _registry(cls, v: str | None) -> str | None:
        if v is not None and (len(v) > 255 or not re.fullmatch(_REGISTRY_RE, v)):
            raise ValueError(
                "must be a registry host[:port] with an optional path and no tag or digest (ghcr.io/example, "
                "registry.example.com:5000/ml)"
            )
        return v

    @field_validator("image_pull_secret")
    @classmethod
    def _pull_secret(cls, v: str | None) -> str | None:
        if v is not None and (len(v) > _SECRET_NAME_MAX or not re.fullmatch(_SECRET_NAME_RE, v)):
            raise ValueError(
                "must be the name of a Secret in the function's namespace: lowercase letters, digits, '-' and "
                "'.', starting and ending with a letter or digit, at most 253 characters (regcred)"
            )
        return v

    @field_validator("gcp_billing_account")
    @classmethod
    def _billing(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}", v):
            raise ValueError("must look like 012345-6789AB-CDEF01")
        return v


# --- per-platform limits -------------------------------------------------------------------------


#: ``az://<storage account>/<container>/<blob path>``: the account is part of the URI because the
#: deployed handler has no other way to know it (account names: 3-24 lowercase letters and digits,
#: container names: 3-63 of lowercase letters, digits and single '-'; learn.microsoft.com/rest/api/
#: storageservices/naming-and-referencing-containers--blobs--and-metadata).
_AZ_URI_RE = re.compile(r"^az://[a-z0-9]{3,24}/[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]/\S+$")
#: adlfs's account-qualified ``az://<container>@<account>.blob.core.windows.net/<path>`` (the Azure
#: component's captureUri): the drift readers read it as well as the form above (docs/drift-cli.md).
_AZ_QUALIFIED_URI_RE = re.compile(
    r"^az://[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]@[a-z0-9]{3,24}\.(?:blob|dfs)\.core\.windows\.net/\S+$"
)


def handler_model_uri(uri: str) -> str:
    """The model URI the deployed handler is given.

    ``az://<account>/<container>/<blob>`` becomes the blob's https URL, which the handler reads with
    the platform's managed or workload identity; every other URI is unchanged.
    """
    if not uri.startswith("az://"):
        return uri
    account, _, path = uri.removeprefix("az://").partition("/")
    return f"https://{account}.blob.core.windows.net/{path}"


def _check_cloud_run_pair(cpu: float, memory_mb: int) -> str | None:
    """Cloud Run's CPU/memory pairs (cloud.google.com/run/docs/configuring/services/memory-limits)."""
    if cpu < 1:
        if cpu < 0.08:
            return "runtime.cpu: Cloud Run needs at least 0.08 vCPU"
        if memory_mb > 512:
            return "runtime.cpu: Cloud Run allows less than 1 vCPU only with memoryMb <= 512"
        return None
    if cpu not in (1, 2, 4, 6, 8):
        return "runtime.cpu: Cloud Run accepts 1, 2, 4, 6 or 8 vCPU (or a fraction below 1)"
    max_mb = {1: 4096, 2: 8192, 4: 16384, 6: 24576, 8: 32768}[int(cpu)]
    min_mb = {1: 128, 2: 128, 4: 2048, 6: 4096, 8: 4096}[int(cpu)]
    if not min_mb <= memory_mb <= max_mb:
        return f"runtime.memoryMb: Cloud Run with {cpu:g} vCPU needs {min_mb}-{max_mb} MB"
    return None


def default_cpu(fn: FunctionSpec) -> float:
    """vCPU for Cloud Run/Knative when ``runtime.cpu`` is unset: the smallest valid for the memory."""
    if fn.runtime.cpu is not None:
        return fn.runtime.cpu
    mb = fn.runtime.memory_mb
    if fn.platform == "gcp":
        for cpu, max_mb in ((1, 4096), (2, 8192), (4, 16384), (8, 32768)):
            if mb <= max_mb:
                return float(cpu)
    return max(0.1, round(mb / 2048, 2))


def _platform_errors(fn: FunctionSpec) -> list[str]:
    """Limits that depend on the platform; returns field-prefixed messages."""
    errs: list[str] = []
    rt, p = fn.runtime, fn.platform
    if not _REGION_RE[p].fullmatch(fn.region):
        errs.append(f"region: {fn.region!r} is not a {p} region name")
    if not fn.model.artifact_uri.startswith(_ARTIFACT_SCHEMES[p]):
        errs.append(f"model.artifactUri: must start with {' or '.join(_ARTIFACT_SCHEMES[p])} on {p}")
    if fn.model.artifact_uri.startswith("az://") and not _AZ_URI_RE.fullmatch(fn.model.artifact_uri):
        errs.append("model.artifactUri: an az:// URI is az://<storage account>/<container>/<blob path>")
    ref = fn.model.reference_uri or ""
    if ref.startswith("az://") and not (_AZ_URI_RE.fullmatch(ref) or _AZ_QUALIFIED_URI_RE.fullmatch(ref)):
        errs.append(
            "model.referenceUri: an az:// URI is az://<storage account>/<container>/<path> "
            "(or az://<container>@<account>.blob.core.windows.net/<path>)"
        )
    if rt.azure_plan is not None and p != "azure":
        errs.append("runtime.azurePlan: only applies to platform azure")
    if rt.cpu is not None and p not in ("gcp", "kubernetes"):
        errs.append("runtime.cpu: only applies to platforms gcp and kubernetes")
    if rt.image is not None and p not in ("gcp", "kubernetes"):
        errs.append("runtime.image: only applies to platforms gcp and kubernetes")
    if p == "aws":
        if not 128 <= rt.memory_mb <= 10240:
            errs.append(f"runtime.memoryMb: must be 128-10240 on AWS Lambda (got {rt.memory_mb})")
        if rt.timeout_seconds > 900:
            errs.append(f"runtime.timeoutSeconds: must be at most 900 on AWS Lambda (got {rt.timeout_seconds})")
        if len(fn.finops.alert_thresholds_percent) > 10:
            errs.append("finops.alertThresholdsPercent: AWS Budgets allows at most 10 notifications per budget")
    elif p == "azure":
        # "Budget can have up to five notifications" (learn.microsoft.com/rest/api/consumption/budgets/
        # create-or-update, property notifications).
        if len(fn.finops.alert_thresholds_percent) > 5:
            errs.append("finops.alertThresholdsPercent: Azure budgets allow at most 5 notifications; list at most 5")
        if rt.architecture != "x86_64":
            errs.append("runtime.architecture: Azure Functions runs x86_64 only")
        if (rt.azure_plan or "consumption") == "consumption":
            if rt.memory_mb > 1536:
                errs.append(f"runtime.memoryMb: Azure Consumption allows at most 1536 (got {rt.memory_mb})")
            if rt.timeout_seconds > 600:
                errs.append(f"runtime.timeoutSeconds: Azure Consumption allows at most 600 (got {rt.timeout_seconds})")
            if fn.scaling.min_instances:
                errs.append("scaling.minInstances: Azure Consumption has no always-ready instances; use 0")
            if fn.scaling.max_instances > 200:
                errs.append("scaling.maxInstances: Azure Consumption scales to at most 200 instances")
        else:
            if fn.canary_active:
                errs.append(
                    "traffic.canaryPercent: Flex Consumption has no deployment slots; run canaries on "
                    "runtime.azurePlan consumption or set canaryPercent to 0"
                )
            if rt.memory_mb not in (512, 2048, 4096):
                errs.append(f"runtime.memoryMb: Flex Consumption instances have 512, 2048 or 4096 (got {rt.memory_mb})")
            if rt.timeout_seconds > 14400:
                errs.append(f"runtime.timeoutSeconds: at most 14400 on Flex Consumption (got {rt.timeout_seconds})")
    elif p == "gcp":
        if rt.architecture != "x86_64":
            errs.append("runtime.architecture: Cloud Run runs x86_64 only")
        if not 128 <= rt.memory_mb <= 32768:
            errs.append(f"runtime.memoryMb: must be 128-32768 on Cloud Run (got {rt.memory_mb})")
        elif (pair := _check_cloud_run_pair(default_cpu(fn), rt.memory_mb)) is not None:
            errs.append(pair)
        if rt.timeout_seconds > 3600:
            errs.append(f"runtime.timeoutSeconds: must be at most 3600 on Cloud Run (got {rt.timeout_seconds})")
    else:
        if not 64 <= rt.memory_mb <= 65536:
            errs.append(f"runtime.memoryMb: must be 64-65536 on Kubernetes (got {rt.memory_mb})")
        if rt.cpu is not None and not 0.05 <= rt.cpu <= 64:
            errs.append(f"runtime.cpu: must be 0.05-64 cores on Kubernetes (got {rt.cpu:g})")
        if rt.timeout_seconds > 600:
            errs.append(
                f"runtime.timeoutSeconds: Knative's max-revision-timeout-seconds is 600 (got {rt.timeout_seconds})"
            )
    if p == "kubernetes" and fn.capture.enabled and fn.capture.destination is None:
        errs.append("capture.destination: required on Kubernetes while capture is enabled (the pod's writer target)")
    if p == "kubernetes" and (d := fn.capture.destination or "").startswith("az://") and not _AZ_URI_RE.fullmatch(d):
        errs.append("capture.destination: must be az://<storage account>/<container>/<prefix> on Kubernetes")
    if fn.traffic.canary_percent > 0 and fn.model.stable_version is None:
        errs.append("traffic.canaryPercent: a canary needs model.stableVersion (the rollback target)")
    elif fn.traffic.canary_percent > 0 and fn.model.stable_version == fn.model.version:
        errs.append(
            "traffic.canaryPercent: model.stableVersion equals model.version, so there is no candidate to "
            "send a canary share to; set canaryPercent to 0 or version to the candidate"
        )
    if fn.finops.monthly_budget_usd <= 0:
        errs.append("finops.monthlyBudgetUsd: must be positive")
    return errs


# --- parsing -------------------------------------------------------------------------------------


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + _escape(part)
    return out


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = _loc(tuple(err["loc"]))
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    got = err.get("input")
    if err["type"] not in ("extra_forbidden", "missing") and not isinstance(got, dict | list):
        shown = repr(got)  # repr escapes control characters; a 10 MB value is not echoed whole
        msg += f" (got {shown if len(shown) <= 80 else shown[:76] + '...'})"
    return f"{where}: {msg}" if where else msg


def _merge_finops(defaults: Mapping[str, Any], fn: Mapping[str, Any]) -> dict[str, Any]:
    defaults = dict(defaults)
    capture_defaults = defaults.pop("capture", None)
    merged = dict(fn)
    if isinstance(capture_defaults, Mapping):  # defaults.capture: merged under each function's capture
        own = fn.get("capture")
        merged["capture"] = {**capture_defaults, **own} if isinstance(own, Mapping) else own or dict(capture_defaults)
    finops = fn.get("finops")
    if isinstance(finops, Mapping):
        merged["finops"] = {**defaults, **finops}
    elif finops is None and defaults:
        merged["finops"] = dict(defaults)
    return merged


def _strip_namespace(config: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        ns, _, short = str(key).partition(":")
        if ns != NAMESPACE or not short:
            continue  # other namespaces (aws:region, secrets) are not ours to judge
        if value is None or value == "":
            continue  # declared in Pulumi.yaml with an empty default: not set
        if short not in CONFIG_KEYS:
            raise SpecError(f"{_escape(key)}: unknown inferops config key (known: {', '.join(CONFIG_KEYS)})")
        if isinstance(value, Mapping) and set(value) == {"secure"}:
            raise SpecError(f"{_escape(key)}: must not be a secret; inferops config holds no secrets")
        out[short] = value
    return out


def config_value(config: Any, key: str) -> Any:
    """A value of ``pulumi.Config`` as the stack file wrote it: structures arrive as JSON, strings raw."""
    value = config.get(key)
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def parse_stack_config(config: Mapping[str, Any]) -> StackSpec:
    """Validate the ``config:`` mapping of a ``Pulumi.<stack>.yaml`` file.

    Keys are namespaced (``inferops:functions``); keys of other namespaces are ignored. Raises
    :class:`SpecError` with a one-line message naming the function and the field.
    """
    raw = _strip_namespace(config)
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        raise SpecError("inferops:defaults: must be a mapping of finops fields")
    unknown = set(defaults) - {f.alias for f in FinOpsSpec.model_fields.values() if f.alias} - {"capture"}
    if unknown:
        first = _escape(sorted(map(str, unknown))[0])
        raise SpecError(f"inferops:defaults.{first}: unknown key (defaults hold finops fields)")
    if "capture" in defaults and not isinstance(defaults["capture"], Mapping):
        raise SpecError("inferops:defaults.capture: must be a mapping of capture fields")
    functions_raw = raw.get("functions")
    if not isinstance(functions_raw, list) or not functions_raw:
        raise SpecError("inferops:functions: must be a non-empty list of functions")

    functions: list[FunctionSpec] = []
    seen: set[str] = set()
    for i, fn_raw in enumerate(functions_raw):
        label = f"functions[{i}]"
        if not isinstance(fn_raw, Mapping):
            raise SpecError(f"inferops:{label}: must be a mapping")
        if isinstance(fn_raw.get("name"), str):
            label = f"functions[{_escape(fn_raw['name'])}]"
        try:
            fn = FunctionSpec.model_validate(_merge_finops(defaults, fn_raw))
        except ValidationError as exc:
            raise SpecError(f"inferops:{label}.{_first_error(exc)}") from None
        errs = _platform_errors(fn)
        if errs:
            raise SpecError(f"inferops:{label}.{errs[0]}")
        if fn.name in seen:
            raise SpecError(f"inferops:{label}.name: duplicate function name {fn.name!r}")
        seen.add(fn.name)
        functions.append(fn)

    try:
        stack = StackSpec.model_validate(
            {
                "functions": functions,
                **{
                    k: raw[k]
                    for k in (
                        "budgetAlertEmails",
                        "gcpBillingAccount",
                        "kubernetesNodePrice",
                        "awsActivateCostAllocationTags",
                        "containerRegistry",
                        "imagePullSecret",
                    )
                    if k in raw
                },
            },
            strict=False,  # functions are already-validated models
        )
    except ValidationError as exc:
        raise SpecError(f"inferops:{_first_error(exc)}") from None
    if any(f.platform == "gcp" for f in stack.functions):
        if not stack.gcp_billing_account:
            raise SpecError("inferops:gcpBillingAccount: required when a function runs on gcp (its budget needs it)")
        if len(stack.budget_alert_emails) > 5:
            raise SpecError("inferops:budgetAlertEmails: a GCP budget notifies at most 5 channels; list at most 5")
    unbuilt = [f.name for f in stack.functions if f.platform == "kubernetes" and f.runtime.image is None]
    if unbuilt and not stack.container_registry:
        raise SpecError(
            f"inferops:containerRegistry: required when a kubernetes function has no runtime.image "
            f"(functions[{unbuilt[0]}]): the registry the image built from functions/Dockerfile is pushed "
            "to; or set that function's runtime.image"
        )
    if any(f.platform == "aws" for f in stack.functions) and len(stack.budget_alert_emails) > 10:
        raise SpecError(
            "inferops:budgetAlertEmails: AWS Budgets notifies at most 10 e-mail subscribers; list at most 10"
        )
    return stack


def stack_config_json_schema() -> dict[str, Any]:
    """JSON Schema of the ``inferops:*`` keys of a stack file (``schema/stack-config.schema.json``).

    Pulumi's project file cannot type objects, so this schema, generated from the models above, is
    the machine-readable reference for editors; per-platform limits are checked by
    :func:`parse_stack_config` only.
    """
    models = {
        "defaults": FinOpsSpec.model_json_schema(by_alias=True),
        "function": FunctionSpec.model_json_schema(by_alias=True),
        "nodePrice": NodePrice.model_json_schema(by_alias=True),
    }
    defs: dict[str, Any] = {}
    for schema in models.values():
        defs.update(schema.pop("$defs", {}))
    # A function's finops block is merged over inferops:defaults, so neither requires any field on its
    # own; parse_stack_config checks the merged result.
    defaults = dict(models["defaults"])
    defaults.pop("required", None)
    defs.get("FinOpsSpec", {}).pop("required", None)
    models["function"]["required"] = [k for k in models["function"].get("required", []) if k != "finops"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "inferops stack config (the config: mapping of Pulumi.<stack>.yaml)",
        "type": "object",
        "properties": {
            f"{NAMESPACE}:defaults": defaults,
            f"{NAMESPACE}:functions": {"type": "array", "minItems": 1, "items": models["function"]},
            f"{NAMESPACE}:budgetAlertEmails": {"type": "array", "items": {"type": "string", "format": "email"}},
            f"{NAMESPACE}:gcpBillingAccount": {"type": "string", "pattern": "^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$"},
            f"{NAMESPACE}:kubernetesNodePrice": models["nodePrice"],
            f"{NAMESPACE}:awsActivateCostAllocationTags": {"type": "boolean"},
            f"{NAMESPACE}:containerRegistry": {"type": "string", "pattern": _REGISTRY_RE, "maxLength": 255},
            f"{NAMESPACE}:imagePullSecret": {
                "type": "string",
                "pattern": _SECRET_NAME_RE,
                "maxLength": _SECRET_NAME_MAX,
                "description": "Name of an existing kubernetes.io/dockerconfigjson Secret in each kubernetes "
                "function's namespace; the Knative revisions pull their image with it.",
            },
        },
        "$defs": defs,
    }
