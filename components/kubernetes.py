"""Kubernetes/Knative inference function: a namespace, a Knative Service with named revisions, a quota.

One function becomes:

* a ``Namespace`` ``inferops-<name>`` (its own, so the quota and the cost attribution are per function);
* a Knative ``serving.knative.dev/v1`` ``Service`` named ``<name>`` whose template is the revision
  ``<name>-<version slug>``; during a canary the traffic block splits requests between the stable
  revision ``<name>-<stable slug>`` (created by an earlier deploy) and the candidate, tagged ``canary``;
* a ``ResourceQuota`` sized from the per-pod requests/limits times the maximum scale of every revision
  that may run at once.

Kubernetes has no budget resource: the monthly budget is the annotation
``inferops.dev/monthly-budget-usd`` that every object carries (see ``components/tags.py``), and
``budget_id`` names the object and annotation that hold it.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

import pulumi
from pulumi import ResourceOptions
from pulumi_kubernetes.apiextensions import CustomResource
from pulumi_kubernetes.apiextensions.CustomResource import CustomResourceArgs
from pulumi_kubernetes.core.v1 import Namespace, ResourceQuota, ResourceQuotaSpecArgs
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from components.spec import FunctionSpec, StackSpec, default_cpu
from components.tags import K8S_PREFIX, cloud_metadata

KNATIVE_API_VERSION = "serving.knative.dev/v1"
#: Knative's label that keeps a Service off the cluster's external ingress.
VISIBILITY_LABEL = "networking.knative.dev/visibility"
BUDGET_ANNOTATION = f"{K8S_PREFIX}monthly-budget-usd"
THRESHOLDS_ANNOTATION = f"{K8S_PREFIX}budget-alert-thresholds-percent"
ALERT_EMAILS_ANNOTATION = f"{K8S_PREFIX}budget-alert-emails"
#: The cluster's price (stack config ``inferops:kubernetesNodePrice``), recorded on the resource so a
#: cost estimate (the policy pack's) prices this function from its own properties.
VCPU_PRICE_ANNOTATION = f"{K8S_PREFIX}node-vcpu-hour-usd"
GIB_PRICE_ANNOTATION = f"{K8S_PREFIX}node-gib-hour-usd"
CANARY_TAG = "canary"
#: The port the HTTP handler listens on (Knative passes it to the container as $PORT).
CONTAINER_PORT = 8080
#: Knative's queue-proxy sidecar runs in every pod. A quota on limits rejects pods whose containers
#: set none, so the sidecar gets explicit resources (within Knative's documented bounds) and the quota
#: counts them.
QUEUE_PROXY_CPU_REQUEST_M = 25
QUEUE_PROXY_CPU_LIMIT_M = 250
QUEUE_PROXY_MEMORY_REQUEST_MI = 50
QUEUE_PROXY_MEMORY_LIMIT_MI = 200
#: In-flight requests per vCPU a replica accepts before Knative queues or scales: the linear model is
#: CPU-bound and fast, so a hard limit proportional to CPU keeps latency flat under load.
REQUESTS_PER_VCPU = 10
#: Knative names: a revision name is a DNS label.
_DNS_LABEL_MAX = 63


def version_slug(version: str) -> str:
    """A model version as part of a DNS label: ``2.2.0`` -> ``2-2-0``, ``1.0+RC1`` -> ``1-0-rc1``."""
    return re.sub(r"[^a-z0-9]+", "-", version.lower()).strip("-") or "v"


def revision_name(name: str, version: str) -> str:
    """The Knative revision name of ``version``: ``<service>-<version slug>``, at most 63 characters.

    Knative requires the service name as prefix. The name is a pure function of (name, version), so a
    later deploy can route to a revision an earlier deploy created. A slug too long to fit is cut and
    completed by a short hash of the exact version.
    """
    candidate = f"{name}-{version_slug(version)}"
    if len(candidate) <= _DNS_LABEL_MAX:
        return candidate
    digest = hashlib.sha256(version.encode()).hexdigest()[:7]
    room = _DNS_LABEL_MAX - len(name) - len(digest) - 2
    return f"{name}-{version_slug(version)[:room].strip('-') or 'v'}-{digest}"


def namespace_name(name: str) -> str:
    """The function's namespace; prefixed so a function called ``default`` cannot take over one."""
    return f"inferops-{name}"


def _millicores(cpu: float) -> int:
    return max(1, round(cpu * 1000))


def pod_resources(fn: FunctionSpec) -> dict[str, dict[str, str]]:
    """Requests and limits of the inference container (limits = requests: a predictable node share)."""
    res = {"cpu": f"{_millicores(default_cpu(fn))}m", "memory": f"{fn.runtime.memory_mb}Mi"}
    return {"requests": dict(res), "limits": dict(res)}


def container_concurrency(fn: FunctionSpec) -> int:
    """Hard limit of in-flight requests per replica, proportional to its CPU."""
    return max(1, math.floor(REQUESTS_PER_VCPU * default_cpu(fn)))


def quota_pods(fn: FunctionSpec) -> int:
    """Pods the namespace may run: max scale for each serving revision, plus one for a rollout.

    During a canary two revisions serve and each scales up to ``maxInstances`` on its own. A new
    revision needs room for its first pod while the old one still runs at full scale, hence the one
    extra pod; without it a rollout at peak load would wait for the old revision to scale down.
    """
    revisions = 2 if fn.canary_active else 1
    return fn.scaling.max_instances * revisions + 1


def quota_hard(fn: FunctionSpec) -> dict[str, str]:
    """The ResourceQuota's ``hard`` map: per-pod (container + queue-proxy) x :func:`quota_pods`."""
    pods = quota_pods(fn)
    cpu_m = _millicores(default_cpu(fn))
    mem = fn.runtime.memory_mb
    return {
        "pods": str(pods),
        "requests.cpu": f"{pods * (cpu_m + QUEUE_PROXY_CPU_REQUEST_M)}m",
        "limits.cpu": f"{pods * (cpu_m + QUEUE_PROXY_CPU_LIMIT_M)}m",
        "requests.memory": f"{pods * (mem + QUEUE_PROXY_MEMORY_REQUEST_MI)}Mi",
        "limits.memory": f"{pods * (mem + QUEUE_PROXY_MEMORY_LIMIT_MI)}Mi",
    }


def traffic_targets(fn: FunctionSpec) -> list[dict[str, Any]]:
    """Knative ``spec.traffic`` for the spec.

    * canary running: stable revision ``100 - p`` percent, candidate ``p`` percent tagged ``canary``;
    * ``canaryPercent: 0`` with a different ``stableVersion`` (the first rollback): everything on the
      stable revision; the candidate revision still exists but takes no traffic;
    * ``version == stableVersion`` (or no stable version): the latest ready revision takes all.
    """
    name = fn.name
    if fn.canary_active:
        p = fn.canary_percent
        return [
            {"revisionName": revision_name(name, fn.stable_version), "percent": 100 - p},
            {"revisionName": revision_name(name, fn.model.version), "percent": p, "tag": CANARY_TAG},
        ]
    if fn.stable_version != fn.model.version:
        return [{"revisionName": revision_name(name, fn.stable_version), "percent": 100}]
    return [{"latestRevision": True, "percent": 100}]


class _KnativeService(CustomResource):
    """``apiextensions.CustomResource`` that also exposes the object's ``status`` as an output.

    The Python SDK's CustomResource declares no ``status`` output (pulumi/pulumi-kubernetes#1836), so
    the Knative URL could not be read. Declaring ``status`` the way the SDK's generated classes do
    for their own output-only properties keeps the engine type ``kubernetes:<apiVersion>:<kind>``.
    """

    metadata: pulumi.Output[Any]
    status: pulumi.Output[Any]

    def _internal_init(
        self,
        resource_name: str,
        api_version: str,
        kind: str,
        opts: ResourceOptions | None = None,
        metadata: Any = None,
        spec: Any = None,
        __props__: Any = None,
    ) -> None:
        props = CustomResourceArgs.__new__(CustomResourceArgs)
        props.__dict__.update(api_version=api_version, kind=kind, metadata=metadata, spec=spec, status=None)
        pulumi.CustomResource.__init__(
            self,
            f"kubernetes:{api_version}:{kind}",
            resource_name,
            props,  # type: ignore[arg-type]  # a generated *Args class, as the SDK's own resources pass
            opts,
        )


class KubernetesInferenceFunction(pulumi.ComponentResource):
    """An inference function on Kubernetes with Knative Serving.

    Attributes:
        endpoint: the Knative Service URL (``status.url``); cluster-local unless ``endpoint.public``.
        budget_id: ``<namespace>/<service>#inferops.dev/monthly-budget-usd``, the object and annotation
            that record the monthly budget (Kubernetes has no budget resource).
    """

    endpoint: pulumi.Output[str]
    budget_id: pulumi.Output[str]

    def __init__(self, name: str, fn: FunctionSpec, stack: StackSpec, opts: ResourceOptions | None = None) -> None:
        candidate = revision_name(fn.name, fn.model.version)
        if fn.canary_active and revision_name(fn.name, fn.stable_version) == candidate:
            raise pulumi.RunError(
                f"inferops:functions[{fn.name}].model.stableVersion: {fn.stable_version!r} and version "
                f"{fn.model.version!r} give the same Knative revision name {candidate!r}"
            )
        super().__init__("inferops:kubernetes:InferenceFunction", name, {}, opts)
        child = ResourceOptions(parent=self)
        meta = cloud_metadata(fn, "kubernetes")
        labels = dict(meta.labels)
        # Beyond the contract's keys: what a cluster cost tool (OpenCost/Kubecost alerts) needs to
        # alert on the budget, since Kubernetes has no budget resource of its own.
        annotations = {
            **meta.annotations,
            THRESHOLDS_ANNOTATION: ",".join(str(t) for t in fn.finops.alert_thresholds_percent),
            VCPU_PRICE_ANNOTATION: f"{stack.kubernetes_node_price.vcpu_hour_usd:g}",
            GIB_PRICE_ANNOTATION: f"{stack.kubernetes_node_price.gib_hour_usd:g}",
        }
        if stack.budget_alert_emails:
            annotations[ALERT_EMAILS_ANNOTATION] = ",".join(stack.budget_alert_emails)

        namespace = Namespace(
            f"{name}-ns",
            metadata=ObjectMetaArgs(
                name=namespace_name(fn.name),
                labels={
                    **labels,
                    # Knative pods (app + queue-proxy) meet "baseline"; "restricted" only warns because
                    # the queue-proxy's security context depends on the Knative release.
                    "pod-security.kubernetes.io/enforce": "baseline",
                    "pod-security.kubernetes.io/warn": "restricted",
                },
                annotations={**annotations, f"{K8S_PREFIX}region": fn.region},
            ),
            opts=child,
        )
        ns_name = namespace.metadata.apply(lambda m: m.name)

        quota = ResourceQuota(
            f"{name}-quota",
            metadata=ObjectMetaArgs(name=f"{fn.name}-quota", namespace=ns_name, labels=labels, annotations=annotations),
            spec=ResourceQuotaSpecArgs(hard=quota_hard(fn)),
            opts=child,
        )

        service_labels = dict(labels)
        if not (fn.endpoint.enabled and fn.endpoint.public):
            service_labels[VISIBILITY_LABEL] = "cluster-local"
        template_annotations = {
            **annotations,
            "autoscaling.knative.dev/min-scale": str(fn.scaling.min_instances),
            "autoscaling.knative.dev/max-scale": str(fn.scaling.max_instances),
            "queue.sidecar.serving.knative.dev/cpu-resource-request": f"{QUEUE_PROXY_CPU_REQUEST_M}m",
            "queue.sidecar.serving.knative.dev/cpu-resource-limit": f"{QUEUE_PROXY_CPU_LIMIT_M}m",
            "queue.sidecar.serving.knative.dev/memory-resource-request": f"{QUEUE_PROXY_MEMORY_REQUEST_MI}Mi",
            "queue.sidecar.serving.knative.dev/memory-resource-limit": f"{QUEUE_PROXY_MEMORY_LIMIT_MI}Mi",
        }
        spec = {
            "template": {
                "metadata": {"name": candidate, "labels": labels, "annotations": template_annotations},
                "spec": {
                    "containerConcurrency": container_concurrency(fn),
                    "timeoutSeconds": fn.runtime.timeout_seconds,
                    "containers": [
                        {
                            "name": "inference",
                            "image": fn.runtime.image,
                            "ports": [{"name": "http1", "containerPort": CONTAINER_PORT}],
                            "env": [
                                {"name": "MODEL_URI", "value": fn.model.artifact_for(fn.model.version)},
                                {"name": "MODEL_ID", "value": fn.model.id},
                                {"name": "MODEL_VERSION", "value": fn.model.version},
                            ],
                            "resources": pod_resources(fn),
                            "readinessProbe": {"httpGet": {"path": "/healthz"}},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                                "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True,
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                        }
                    ],
                },
            },
            "traffic": traffic_targets(fn),
        }
        service = _KnativeService(
            f"{name}-service",
            api_version=KNATIVE_API_VERSION,
            kind="Service",
            metadata=ObjectMetaArgs(
                name=fn.name,
                namespace=ns_name,
                labels=service_labels,
                # Without it the provider returns as soon as the object is accepted, before Knative
                # has created the revision and published status.url.
                annotations={**annotations, "pulumi.com/waitFor": "condition=Ready"},
            ),
            spec=spec,
            # The quota first, so no pod of this function ever runs unbounded.
            opts=ResourceOptions.merge(child, ResourceOptions(depends_on=[quota])),
        )

        self.endpoint = service.status.apply(lambda s: str((s or {}).get("url") or ""))
        self.budget_id = pulumi.Output.all(ns_name, service.metadata).apply(
            lambda args: f"{args[0]}/{_meta_name(args[1])}#{BUDGET_ANNOTATION}"
        )
        self.namespace = ns_name
        self.canary_percent = pulumi.Output.from_input(fn.canary_percent)
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "budgetId": self.budget_id,
                "canaryPercent": self.canary_percent,
                "namespace": ns_name,
            }
        )


def _meta_name(meta: Any) -> str:
    """``metadata.name`` of an output that may arrive as a dict or as ``ObjectMeta``."""
    if isinstance(meta, dict):
        return str(meta.get("name", ""))
    return str(getattr(meta, "name", ""))
