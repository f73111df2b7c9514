"""Where each platform keeps the inferops metadata keys, and which resources are inference functions.

The logical keys are those of design.md. AWS and Azure carry them as ``tags``; GCP splits them between
``labels`` and ``annotations`` (a reader takes the union); Kubernetes prefixes them ``inferops.dev/`` in
``metadata.annotations`` (and ``metadata.labels`` where the value is a valid label).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from .props import MISSING, UNKNOWN, get, plain

K8S_PREFIX = "inferops.dev/"
_DESCRIPTION_LINE = re.compile(r"^([a-z][a-z0-9-]*)=(\S.*)$")

AWS_LAMBDA = "aws:lambda/function:Function"
AWS_FUNCTION_URL = "aws:lambda/functionUrl:FunctionUrl"
AWS_PERMISSION = "aws:lambda/permission:Permission"
AWS_PROVISIONED = "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig"
AWS_ALIAS = "aws:lambda/alias:Alias"
AWS_BUDGET = "aws:budgets/budget:Budget"
AZURE_WEBAPP = "azure-native:web:WebApp"
AZURE_SLOT = "azure-native:web:WebAppSlot"
AZURE_PLAN = "azure-native:web:AppServicePlan"
AZURE_BUDGET = "azure-native:consumption:Budget"
GCP_RUN = "gcp:cloudrunv2/service:Service"
GCP_RUN_IAM = ("gcp:cloudrunv2/serviceIamMember:ServiceIamMember", "gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding")
GCP_BUDGET = "gcp:billing/budget:Budget"
KNATIVE = "kubernetes:serving.knative.dev/v1:Service"

FUNCTION_TYPES = (AWS_LAMBDA, AZURE_WEBAPP, GCP_RUN, KNATIVE)
PLATFORM_OF = {AWS_LAMBDA: "aws", AZURE_WEBAPP: "azure", AZURE_SLOT: "azure", GCP_RUN: "gcp", KNATIVE: "kubernetes"}


def is_azure_function_app(props: dict[str, Any]) -> Any:
    """An azure-native WebApp/WebAppSlot is a function app when its ``kind`` says so.

    An unknown kind gives :data:`UNKNOWN` (falsy): the app cannot be judged as a function yet, and
    the real ``kind`` is checked again when the engine knows it (``pulumi up`` runs the pack on the
    final inputs). Counting it as a function app would hold any web app to the function rules.
    """
    kind = get(props, "kind")
    if kind is UNKNOWN:
        return UNKNOWN
    return isinstance(kind, str) and "functionapp" in kind.lower()


def is_function(resource_type: str, props: dict[str, Any]) -> Any:
    """True for the inference function resources the pack judges (any stack, hand-written or ours);
    :data:`UNKNOWN` (falsy) when that depends on a value not known yet."""
    if resource_type == AZURE_WEBAPP:
        return is_azure_function_app(props)
    return resource_type in FUNCTION_TYPES


def _string_map(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if isinstance(k, str)}
    return {}


def _json_object(value: Any) -> Any:
    """Provider inputs reach the pack JSON-encoded (``"{\"tags\": ...}"``) or as objects."""
    if isinstance(value, str):
        try:
            return plain(json.loads(value))
        except (ValueError, RecursionError):
            return MISSING
    return value


def provider_defaults(resource_type: str, provider: Any) -> dict[str, Any]:
    """Tags/labels the resource's provider adds to every resource it manages.

    AWS: the provider's ``defaultTags.tags`` (config ``aws:defaultTags`` for the default provider);
    GCP: ``defaultLabels`` (config ``gcp:defaultLabels``). The provider merges them into every
    resource's tags/labels, the resource's own value winning on a shared key (pulumi-aws
    ``default_tags``, pulumi-gcp ``default_labels``), so they count as the resource's own.
    An unknown map gives ``{"*": UNKNOWN}``: missing keys cannot be judged yet.
    """
    if provider is None:
        return {}
    try:
        props = plain(getattr(provider, "props", provider))
    except Exception:
        return {}
    if not isinstance(props, dict):
        return {}
    if resource_type.startswith("aws:"):
        raw = _json_object(get(props, "defaultTags"))
        raw = UNKNOWN if raw is UNKNOWN else _json_object(get(raw, "tags"))
    elif resource_type.startswith("gcp:"):
        raw = _json_object(get(props, "defaultLabels"))
    else:
        return {}
    if raw is UNKNOWN:
        return {"*": UNKNOWN}
    return _string_map(raw)


# GCP types whose ``labels`` are not resource labels (a notification channel's ``labels`` are its
# delivery settings, e.g. the e-mail address); their resource labels live elsewhere.
_GCP_LABEL_FIELDS = {
    "gcp:monitoring/notificationChannel:NotificationChannel": ("userLabels",),
}


def read_metadata(resource_type: str, props: dict[str, Any], defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the logical metadata keys of a resource (values may be :data:`UNKNOWN`).

    When the whole tag map is unknown, the key ``"*"`` maps to :data:`UNKNOWN` so callers can tell
    "cannot judge" from "absent". ``defaults`` (see :func:`provider_defaults`) fill keys the
    resource does not set itself.
    """
    result = _own_metadata(resource_type, props)
    for key, value in (defaults or {}).items():
        result.setdefault(key, value)  # the resource's own value wins, as the providers merge them
    return result


def _own_metadata(resource_type: str, props: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if resource_type.startswith("kubernetes:"):
        for where in ("metadata.labels", "metadata.annotations"):
            raw = get(props, where)
            if raw is UNKNOWN:
                result["*"] = UNKNOWN
            for key, value in _string_map(raw).items():
                if key.startswith(K8S_PREFIX) and len(key) > len(K8S_PREFIX):
                    result[key[len(K8S_PREFIX) :]] = value
        return result
    if resource_type.startswith("gcp:"):
        for where in _GCP_LABEL_FIELDS.get(resource_type, ("labels", "annotations")):
            raw = get(props, where)
            if raw is UNKNOWN:
                result["*"] = UNKNOWN
            result.update(_string_map(raw))
        # Resources without annotations keep the keys that cannot be labels in their description,
        # one ``key=value`` per line (design.md: "annotations or the resource description").
        description = get(props, "description")
        if description is UNKNOWN:
            result["*"] = UNKNOWN
        if isinstance(description, str):
            for line in description.splitlines():
                match = _DESCRIPTION_LINE.match(line.strip())
                if match:
                    result.setdefault(match.group(1), match.group(2))
        return result
    tags = get(props, "tags")
    if tags is UNKNOWN:
        result["*"] = UNKNOWN
    result.update(_string_map(tags))
    if not resource_type.startswith(("aws:", "azure-native:")):
        # Other providers name the map ``labels`` (is_taggable counts it): read it too.
        labels = get(props, "labels")
        if labels is UNKNOWN:
            result["*"] = UNKNOWN
        for key, value in _string_map(labels).items():
            result.setdefault(key, value)
    elif get(props, "labels") is UNKNOWN and tags is MISSING:
        result["*"] = UNKNOWN  # a ``labels`` map made it taggable; unknown, it may hold the keys
    if resource_type.startswith("aws:"):
        # tagsAll is the provider's merge with default tags; it only fills gaps.
        for key, value in _string_map(get(props, "tagsAll")).items():
            result.setdefault(key, value)
    return result


def metadata_value(meta: dict[str, Any], key: str) -> Any:
    """One key from :func:`read_metadata`: the value, :data:`UNKNOWN`, or :data:`MISSING`."""
    if key in meta:
        value = meta[key]
        return MISSING if value is None or value == "" else value
    if meta.get("*") is UNKNOWN:
        return UNKNOWN
    return MISSING


def is_taggable(resource_type: str, props: dict[str, Any]) -> bool:
    """Whether the resource can carry the metadata keys.

    The function types and a fixed list of supporting types always can; any other resource counts
    when it declares a tag/label map, which is how a hand-written resource shows it is taggable.
    """
    if resource_type in TAGGABLE_TYPES:
        return True
    if resource_type.startswith("pulumi:") or not resource_type.count(":") >= 2:
        return False
    if resource_type.startswith("kubernetes:"):
        return get(props, "metadata") is not MISSING
    if resource_type in _GCP_LABEL_FIELDS:
        return any(get(props, f) is not MISSING for f in _GCP_LABEL_FIELDS[resource_type])
    # A list under ``tags`` is no tag map: it is the image references of a ``docker-build:index:Image``.
    return any(v is not MISSING and not isinstance(v, list) for v in (get(props, "tags"), get(props, "labels")))


TAGGABLE_TYPES = frozenset(
    {
        AWS_LAMBDA,
        "aws:iam/role:Role",
        "aws:cloudwatch/logGroup:LogGroup",
        AZURE_WEBAPP,
        AZURE_SLOT,
        AZURE_PLAN,
        "azure-native:resources:ResourceGroup",
        "azure-native:storage:StorageAccount",
        GCP_RUN,
        KNATIVE,
        "kubernetes:core/v1:Namespace",
        "kubernetes:core/v1:ResourceQuota",
    }
)


def function_name(resource_type: str, props: dict[str, Any], logical_name: str) -> Any:
    """The function's name: the ``function-name`` key, else the platform's own name, else the logical name."""
    meta = read_metadata(resource_type, props)
    name = metadata_value(meta, "function-name")
    if name is not MISSING:
        return name
    own = get(props, "metadata.name" if resource_type.startswith("kubernetes:") else "name")
    if own is UNKNOWN:
        return UNKNOWN
    return own if isinstance(own, str) and own else logical_name


def function_key(project: str, stack: str, name: str) -> str:
    """The stack-scoped ``function-name`` value of the design contract (``components/tags.py``).

    Kept here verbatim because the pack is self-contained (it never imports the program); the
    pack only uses it to recognise a config name inside a physical name, never to judge one.
    """
    raw = f"{project}-{stack}-{name}"
    safe = re.sub(r"[^a-z0-9-]", "-", raw.lower())
    if safe == raw and len(raw) <= 63:
        return raw
    digest = hashlib.sha256(f"{project}\0{stack}\0{name}".encode()).hexdigest()[:8]
    return f"{safe[:54].rstrip('-')}-{digest}"


def urn_stack_project(urn: Any) -> tuple[str | None, str | None]:
    """(stack, project) of a Pulumi URN ``urn:pulumi:<stack>::<project>::<type>::<name>``."""
    if not isinstance(urn, str) or not urn.startswith("urn:pulumi:"):
        return None, None
    parts = urn[len("urn:pulumi:") :].split("::")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        return None, None
    return parts[0], parts[1]


def names_an_entry(candidate: Any, entry: str, project: str | None, stack: str | None) -> bool:
    """Whether a name found on a resource designates the function ``entry`` of an allow-list.

    The rule, the same on every platform: ``candidate`` (a ``function-name`` value, a deployed
    resource name, or the function part of a Lambda ARN) equals ``entry``, or equals the
    stack-scoped key of ``entry`` for the resource's project and stack, i.e.
    ``<project>-<stack>-<entry>`` or its hashed form when that is not a valid name
    (:func:`function_key`).
    """
    if not isinstance(candidate, str) or not candidate:
        return False
    if candidate == entry:
        return True
    if project and stack:
        return candidate in (f"{project}-{stack}-{entry}", function_key(project, stack, entry))
    return False
