"""Kubernetes/Knative inference function: a namespace, a Knative Service with named revisions, a quota.

One function becomes:

* a ``Namespace`` ``<project>-<stack>-<name>`` (its own, so the quota and the cost attribution are per
  function and two stacks share a cluster);
* a Knative ``serving.knative.dev/v1`` ``Service`` whose template is the revision
  ``<service>-<version slug>-<hash of the whole template>``. Knative rejects any template change that
  keeps the revision name (``VerifyNameChange``, knative/serving
  ``pkg/apis/serving/v1/revision_validation.go``), so the name changes whenever the template does, and
  the metadata that users and the drift loop edit (budget, thresholds, alert e-mails, node price,
  fairness, ``retraining-*``) lives on the Service, the namespace and the quota, never on the template;
* one ``ConfigMap`` per model version in use that records the revision a deploy created for it
  (``ignore_changes`` while that version is the stable side, like the pinned Lambda aliases): during a
  canary the traffic block splits requests between that recorded stable revision and the candidate,
  tagged ``canary``. A stack that never served the stable version (no recorded revision) sends every
  request to the candidate with a warning, and the export says 0 %;
* without ``runtime.image``: the build and push of ``functions/Dockerfile`` to
  ``<inferops:containerRegistry>/inferops-http-handler`` (:mod:`components.image`), deployed by
  digest, so a new build is a new template and so a new revision name;
* with ``inferops:imagePullSecret``: the revision template's ``imagePullSecrets`` names that existing
  ``kubernetes.io/dockerconfigjson`` Secret of the function's namespace, so the kubelet can pull a
  private image (built or given);
* a ``ResourceQuota`` sized from the per-pod requests/limits times the maximum scale of every revision
  that may run at once.

Kubernetes has no budget resource: the monthly budget is the annotation
``inferops.dev/monthly-budget-usd`` that every object carries (see ``components/tags.py``), and
``budget_id`` names the object and annotation that hold it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

import pulumi
import pulumi_docker_build as docker_build
from pulumi import ResourceOptions
from pulumi_kubernetes.apiextensions import CustomResource
from pulumi_kubernetes.apiextensions.CustomResource import CustomResourceArgs
from pulumi_kubernetes.core.v1 import ConfigMap, Namespace, ResourceQuota, ResourceQuotaSpecArgs
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from components.image import IMAGE_NAME, build_image, digest_ref
from components.spec import FunctionSpec, StackSpec, default_cpu, handler_model_uri
from components.tags import (
    FUNCTION_KEY,
    K8S_PREFIX,
    STACK_KEY,
    cloud_metadata,
    function_key,
    scoped_name,
    truncate_with_hash,
)

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
#: The Knative Service name: short enough that ``<service>-<version>-<hash>`` stays a DNS label.
_SERVICE_MAX = 40
_HASH_LEN = 7
#: Labels on the revision template: values that never change while a revision exists.
TEMPLATE_LABEL_KEYS = tuple(
    K8S_PREFIX + k for k in (FUNCTION_KEY, STACK_KEY, "managed-by", "model-id", "model-version")
)
#: Data key of a revision marker: the revision a deploy created for that model version ("" if none).
MARKER_REVISION = "revision"


def version_slug(version: str) -> str:
    """A model version as part of a DNS label: ``2.2.0`` -> ``2-2-0``, ``1.0+RC1`` -> ``1-0-rc1``."""
    return re.sub(r"[^a-z0-9]+", "-", version.lower()).strip("-") or "v"


def revision_name(service: str, version: str, template_hash: str) -> str:
    """The Knative revision name: ``<service>-<version slug>-<template hash>``, at most 63 characters.

    Knative requires the service name as prefix (``<service>-``). The hash covers the whole template,
    so any template edit gets a new name, as ``VerifyNameChange`` demands; a slug too long to fit is cut.
    """
    room = _DNS_LABEL_MAX - len(service) - len(template_hash) - 2
    slug = version_slug(version)
    if len(slug) > room:
        slug = slug[: max(1, room)].strip("-") or "v"
    return f"{service}-{slug}-{template_hash}"


def service_name(name: str) -> str:
    """The Knative Service's name in its own namespace: the function name, cut with a hash past 40."""
    return truncate_with_hash(name, _SERVICE_MAX)


def namespace_name(project: str, stack: str, name: str) -> str:
    """The function's namespace, ``<project>-<stack>-<name>`` as a DNS label of at most 63 characters.

    Prefixed so a function called ``default`` cannot take over one, stack-scoped so dev and prod of
    one project can share a cluster.
    """
    return scoped_name(project, stack, name, max_len=_DNS_LABEL_MAX)


def marker_name(version: str) -> str:
    """The ConfigMap that records the revision created for ``version``."""
    return f"inferops-revision-{truncate_with_hash(version_slug(version), 40, key=version)}"


def capture_env(fn: FunctionSpec) -> list[dict[str, str]]:
    """The handler's capture variables (functions/README.md) for the candidate's revision.

    They are part of the template, so ``template_hash`` covers them: a sampling edit, a new
    destination or a promotion (variant ``canary`` -> ``stable``) is a new revision name, as
    ``VerifyNameChange`` requires. The pod's batched writer sends records to ``capture.destination``
    with the pod's own identity; ``az://<account>/<container>/<prefix>`` becomes the handler's
    ``az://<container>/<prefix>`` plus ``AZURE_STORAGE_ACCOUNT_NAME``.
    """
    c = fn.capture
    env = [
        {"name": "INFEROPS_CAPTURE_ENABLED", "value": "true" if c.enabled else "false"},
        {"name": "INFEROPS_CAPTURE_SAMPLE_PERCENT", "value": f"{c.sample_percent:g}"},
        {"name": "INFEROPS_VARIANT", "value": "canary" if fn.stable_version != fn.model.version else "stable"},
    ]
    if c.enabled and c.destination:
        uri = c.destination
        if uri.startswith("az://"):
            account, _, rest = uri.removeprefix("az://").partition("/")
            env.append({"name": "AZURE_STORAGE_ACCOUNT_NAME", "value": account})
            uri = f"az://{rest}"
        env.append({"name": "INFEROPS_CAPTURE_URI", "value": uri})
    return env


def image_repository(registry: str) -> str:
    """Where a built image goes: ``<inferops:containerRegistry>/inferops-http-handler``."""
    return f"{registry.rstrip('/')}/{IMAGE_NAME}"


def template_hash(template: dict[str, Any]) -> str:
    """A short hash of a revision template (without its name)."""
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:_HASH_LEN]


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


def traffic_targets(fn: FunctionSpec, candidate: str, stable: str | None) -> list[dict[str, Any]]:
    """Knative ``spec.traffic`` for the spec; ``stable`` is the recorded stable revision (None if none).

    * canary running: stable revision ``100 - p`` percent, candidate ``p`` percent tagged ``canary``;
    * ``canaryPercent: 0`` with a different ``stableVersion`` (the first rollback): everything on the
      stable revision; the candidate stays reachable at its ``canary`` tag with 0 %;
    * ``version == stableVersion``, or no revision of the stable version exists: the candidate (the
      template's own revision) takes all. Never a revision that does not exist.
    """
    if fn.stable_version == fn.model.version or not stable:
        return [{"revisionName": candidate, "percent": 100}]
    p = fn.canary_percent
    return [
        {"revisionName": stable, "percent": 100 - p},
        {"revisionName": candidate, "percent": p, "tag": CANARY_TAG},
    ]


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
        super().__init__("inferops:kubernetes:InferenceFunction", name, {}, opts)
        child = ResourceOptions(parent=self)
        project, stack_name = pulumi.get_project(), pulumi.get_stack()
        meta = cloud_metadata(fn, "kubernetes", stack=stack_name, project=project)
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
                name=namespace_name(project, stack_name, fn.name),
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
            metadata=ObjectMetaArgs(name="inferops-quota", namespace=ns_name, labels=labels, annotations=annotations),
            spec=ResourceQuotaSpecArgs(hard=quota_hard(fn)),
            opts=child,
        )

        self.image: docker_build.Image | None = None
        image: pulumi.Input[str]
        if fn.runtime.image is not None:
            image = fn.runtime.image  # deployed as given
        else:
            if not stack.container_registry:  # parse_stack_config already refuses this
                raise ValueError(f"inferops:containerRegistry: required by kubernetes function {fn.name}")
            repository = image_repository(stack.container_registry)
            # Pushed with the runner's own registry login (no credentials in stack config: the
            # provider loads the Docker config's credentials, pulumi-docker-build
            # provider/internal/host.go); the cluster pulls with its node identity or with the
            # Secret named by inferops:imagePullSecret (below).
            tag = function_key(project, stack_name, fn.name)
            self.image = build_image(f"{name}-image", repository, tag, login=None, parent=self)
            image = digest_ref(repository, tag, self.image)

        svc_name = service_name(fn.name)
        service_labels = dict(labels)
        if not (fn.endpoint.enabled and fn.endpoint.public):
            service_labels[VISIBILITY_LABEL] = "cluster-local"
        # Only what never changes while the revision lives, and what shapes the pods: every edit of
        # the template needs a new revision name (VerifyNameChange), so mutable metadata stays off it.
        template_meta = {
            "labels": {k: v for k, v in labels.items() if k in TEMPLATE_LABEL_KEYS},
            "annotations": {
                "autoscaling.knative.dev/min-scale": str(fn.scaling.min_instances),
                "autoscaling.knative.dev/max-scale": str(fn.scaling.max_instances),
                "queue.sidecar.serving.knative.dev/cpu-resource-request": f"{QUEUE_PROXY_CPU_REQUEST_M}m",
                "queue.sidecar.serving.knative.dev/cpu-resource-limit": f"{QUEUE_PROXY_CPU_LIMIT_M}m",
                "queue.sidecar.serving.knative.dev/memory-resource-request": f"{QUEUE_PROXY_MEMORY_REQUEST_MI}Mi",
                "queue.sidecar.serving.knative.dev/memory-resource-limit": f"{QUEUE_PROXY_MEMORY_LIMIT_MI}Mi",
            },
        }
        template_spec: dict[str, Any] = {
            "containerConcurrency": container_concurrency(fn),
            "timeoutSeconds": fn.runtime.timeout_seconds,
            "containers": [
                {
                    "name": "inference",
                    "image": image,
                    "ports": [{"name": "http1", "containerPort": CONTAINER_PORT}],
                    "env": [
                        {"name": "MODEL_URI", "value": handler_model_uri(fn.model.artifact_for(fn.model.version))},
                        {"name": "MODEL_ID", "value": fn.model.id},
                        {"name": "MODEL_VERSION", "value": fn.model.version},
                        *capture_env(fn),
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
        }
        if stack.image_pull_secret:
            # The kubelet pulls with it (Knative allows ``imagePullSecrets`` in the revision template:
            # knative/serving pkg/apis/serving/fieldmask.go, PodSpecMask, among the always allowed
            # fields; knative.dev/docs/serving/deploying-from-private-registry). It is part of the
            # template, so name_for hashes it: setting or renaming it rolls a new revision, while the
            # stable revision of a canary keeps the secret it was created with (revisions are
            # immutable) and stays routable by its recorded name. Only set when configured: stacks
            # without the key keep their revision names.
            template_spec["imagePullSecrets"] = [{"name": stack.image_pull_secret}]

        def name_for(img: str) -> str:
            # The hash covers the template with the image as deployed (a digest reference when built).
            container = {**template_spec["containers"][0], "image": img}
            spec = {**template_spec, "containers": [container]}
            return revision_name(svc_name, fn.model.version, template_hash({**template_meta, "spec": spec}))

        candidate: pulumi.Output[str] = pulumi.Output.from_input(image).apply(name_for)
        self.revision = candidate

        def marker(version: str, revision: pulumi.Input[str], frozen: bool, after: list[pulumi.Resource]) -> ConfigMap:
            # A frozen marker keeps what it recorded when created (the revision an earlier deploy made
            # for this version, or "" when none did); an unfrozen one records this deploy's revision
            # once the Service (and so the revision) has been applied.
            return ConfigMap(
                f"{name}-{marker_name(version)}",
                metadata=ObjectMetaArgs(
                    name=marker_name(version), namespace=ns_name, labels=labels, annotations=annotations
                ),
                data={"version": version, MARKER_REVISION: revision},
                opts=ResourceOptions.merge(
                    child,
                    ResourceOptions(ignore_changes=["data"] if frozen else None, depends_on=after or None),
                ),
            )

        stable_marker = None
        if fn.stable_version != fn.model.version:
            stable_marker = marker(fn.stable_version, "", True, [])

        def route(args: list[Any]) -> tuple[list[dict[str, Any]], int]:
            data, candidate = args
            stable = str((data or {}).get(MARKER_REVISION) or "") if stable_marker is not None else ""
            if stable_marker is not None and not stable:
                pulumi.log.warn(
                    f"{fn.name}: no revision of the stable model {fn.stable_version} exists on this stack; "
                    f"every request goes to {fn.model.version}. Deploy the stable version alone first "
                    "(model.version = model.stableVersion), then start the canary",
                    resource=self,
                )
            targets = traffic_targets(fn, candidate, stable or None)
            return targets, (fn.canary_percent if stable else 0)

        stable_data = stable_marker.data if stable_marker is not None else pulumi.Output.from_input({})
        routing = pulumi.Output.all(stable_data, candidate).apply(route)
        service = _KnativeService(
            f"{name}-service",
            api_version=KNATIVE_API_VERSION,
            kind="Service",
            metadata=ObjectMetaArgs(
                name=svc_name,
                namespace=ns_name,
                labels=service_labels,
                # Without it the provider returns as soon as the object is accepted, before Knative
                # has created the revision and published status.url.
                annotations={**annotations, "pulumi.com/waitFor": "condition=Ready"},
            ),
            spec={
                "template": {"metadata": {"name": candidate, **template_meta}, "spec": template_spec},
                "traffic": routing.apply(lambda r: r[0]),
            },
            # The quota first, so no pod of this function ever runs unbounded.
            opts=ResourceOptions.merge(child, ResourceOptions(depends_on=[quota])),
        )
        marker(fn.model.version, candidate, False, [service])

        self.endpoint = service.status.apply(lambda s: str((s or {}).get("url") or ""))
        self.budget_id = pulumi.Output.all(ns_name, service.metadata).apply(
            lambda args: f"{args[0]}/{_meta_name(args[1])}#{BUDGET_ANNOTATION}"
        )
        self.namespace = ns_name
        self.canary_percent = routing.apply(lambda r: r[1])
        #: Where the pod's writer puts the records (None with capture disabled): the stack's captureUri.
        self.capture_uri: str | None = fn.capture.destination if fn.capture.enabled else None
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "budgetId": self.budget_id,
                "canaryPercent": self.canary_percent,
                "namespace": ns_name,
                "revision": candidate,
                "captureUri": self.capture_uri,
            }
        )


def _meta_name(meta: Any) -> str:
    """``metadata.name`` of an output that may arrive as a dict or as ``ObjectMeta``."""
    if isinstance(meta, dict):
        return str(meta.get("name", ""))
    return str(getattr(meta, "name", ""))
