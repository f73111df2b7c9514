"""Security policies: no anonymous public endpoints, no plaintext secrets, least-privilege IAM,
HTTPS/TLS on Azure, log retention."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from pulumi_policy import PolicyConfigSchema, ReportViolation, ResourceValidationArgs

from .common import config_value, defaults_of, label, shown
from .metadata import (
    AWS_FUNCTION_URL,
    AWS_PERMISSION,
    AZURE_SLOT,
    AZURE_WEBAPP,
    GCP_RUN,
    GCP_RUN_IAM,
    KNATIVE,
    is_azure_function_app,
    metadata_value,
    names_an_entry,
    read_metadata,
    urn_stack_project,
)
from .props import MISSING, UNKNOWN, as_number, contains_too_deep, get, is_absent, plain

PUBLIC_SCHEMA = PolicyConfigSchema(
    properties={
        "allowPublicEndpoints": {
            "type": "boolean",
            "default": False,
            "description": "Allow unauthenticated public endpoints for every function.",
        },
        "allowedPublicFunctions": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Function names (or resource names) allowed to have an unauthenticated public endpoint.",
        },
    }
)
DEFAULT_SECRET_NAME_PATTERN = (
    r"(?i)(password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential"
    r"|connection[_-]?string|sas)"
)
SECRETS_SCHEMA = PolicyConfigSchema(
    properties={
        "secretNamePattern": {
            "type": "string",
            "default": DEFAULT_SECRET_NAME_PATTERN,
            "description": "Regular expression for variable names that hold secrets.",
        },
        "allowedNames": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Variable names exempt from the check.",
        },
    }
)
DEFAULT_WILDCARD_RESOURCE_ACTIONS = ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "cloudwatch:PutMetricData"]
DEFAULT_DENIED_MANAGED_POLICIES = [
    "arn:aws:iam::aws:policy/AdministratorAccess",
    "arn:aws:iam::aws:policy/PowerUserAccess",
    "arn:aws:iam::aws:policy/IAMFullAccess",
]
IAM_SCHEMA = PolicyConfigSchema(
    properties={
        "actionsAllowedOnAnyResource": {
            "type": "array",
            "items": {"type": "string"},
            "default": DEFAULT_WILDCARD_RESOURCE_ACTIONS,
            "description": 'Actions AWS only grants on Resource "*" (they cannot be scoped).',
        },
        "deniedManagedPolicyArns": {
            "type": "array",
            "items": {"type": "string"},
            "default": DEFAULT_DENIED_MANAGED_POLICIES,
            "description": "Managed policies that must not be attached to a role.",
        },
    }
)
TLS_SCHEMA = PolicyConfigSchema(
    properties={
        "minTlsVersion": {
            "type": "string",
            "enum": ["1.2", "1.3"],
            "default": "1.2",
            "description": "Lowest TLS version an Azure function app or storage account may accept.",
        },
    }
)
DEFAULT_MIN_RETENTION_DAYS = 1
RETENTION_SCHEMA = PolicyConfigSchema(
    properties={
        "maxRetentionDays": {
            "type": "integer",
            "minimum": 0,
            "default": 0,
            "description": "Longest retention allowed in days (0: no upper bound). Retention must always be set.",
        },
    }
)

# A secret store reference is not a secret: Key Vault references, Secrets Manager/SSM ARNs.
_REFERENCE = re.compile(r"^(@Microsoft\.KeyVault\(|arn:aws:(secretsmanager|ssm):|projects/[^/]+/secrets/)")
# Values that are secrets whatever their name.
_SECRET_VALUE = re.compile(
    r"(AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----|AccountKey=[^;]{8,}"
    r"|SharedAccessKey=[^;]{8,}|sig=[A-Za-z0-9%]{16,})"
)


def _lambda_function_part(ref: Any) -> Any:
    """The function name inside a Lambda reference: a name, or an ARN with an optional qualifier."""
    if isinstance(ref, str) and ":function:" in ref:
        return ref.split(":function:", 1)[1].split(":", 1)[0]
    return ref


def _allowed_public(args: Any, props: dict[str, Any], names: list[Any]) -> bool | None:
    """True when config allows this endpoint, None when that depends on a name not known yet.

    An allow-list entry is a function's config name; it matches the endpoint when it equals the
    ``function-name`` value, the deployed resource name, or the name embedded after the
    ``<project>-<stack>-`` prefix of those (:func:`names_an_entry`), whatever the platform.
    """
    if config_value(args, "allowPublicEndpoints", False) is True:
        return True
    allowed = [e for e in config_value(args, "allowedPublicFunctions", []) if isinstance(e, str) and e]
    if not allowed:
        return False
    meta = read_metadata(args.resource_type, props, defaults_of(args))
    tagged = metadata_value(meta, "function-name")
    candidates = [*names, tagged, label(args.resource_type, props, args.name)]
    if any(n is UNKNOWN for n in candidates):
        return None
    urn_stack, project = urn_stack_project(getattr(args, "urn", None))
    stack = metadata_value(meta, "stack")
    stack = stack if isinstance(stack, str) and stack else urn_stack
    return any(names_an_entry(n, entry, project, stack) for n in candidates for entry in allowed)


# Actions that invoke a Lambda function (Permission.action is one action, case-insensitive).
_INVOKE_ACTIONS = {"lambda:invokefunction", "lambda:invokefunctionurl", "lambda:*", "*"}
# A Permission restricted by one of these is not open to everyone (AWS evaluates them as conditions).
_PERMISSION_SCOPES = ("sourceArn", "sourceAccount", "principalOrgId")


def public_endpoint_validator(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """No unauthenticated public endpoint unless the pack config allows it."""
    props = plain(args.props)
    rtype = args.resource_type
    finding: str | None = None
    names: list[Any] = []
    if rtype == AWS_FUNCTION_URL:
        if get(props, "authorizationType") == "NONE":
            names = [_lambda_function_part(get(props, "functionName"))]
            finding = (
                "is a Lambda function URL with authorizationType NONE: use AWS_IAM (callers sign "
                "requests) or put an authenticating API in front"
            )
    elif rtype == AWS_PERMISSION:
        action = get(props, "action")
        scoped = [get(props, key) for key in _PERMISSION_SCOPES]
        if (
            get(props, "principal") == "*"
            and isinstance(action, str)
            and action.lower() in _INVOKE_ACTIONS
            and all(value is MISSING for value in scoped)
        ):
            names = [_lambda_function_part(get(props, "function"))]
            if get(props, "functionUrlAuthType") == "NONE":
                finding = (
                    "grants lambda:InvokeFunctionUrl to everyone (principal '*', auth NONE): restrict the "
                    "principal and use AWS_IAM auth"
                )
            else:
                finding = (
                    f"grants {action} to everyone (principal '*'): name the calling account or service as "
                    "principal, or scope it with sourceArn/sourceAccount/principalOrgId"
                )
    elif rtype in GCP_RUN_IAM:
        members = [get(props, "member")] if rtype.endswith("ServiceIamMember") else get(props, "members")
        members = members if isinstance(members, list) else []
        public = [m for m in members if isinstance(m, str) and m in ("allUsers", "allAuthenticatedUsers")]
        if get(props, "role") == "roles/run.invoker" and public:
            names = [get(props, "name")]
            finding = f"grants roles/run.invoker to {public[0]}: grant it to the calling service accounts instead"
    elif rtype == GCP_RUN:
        if get(props, "invokerIamDisabled") is True:
            names = [get(props, "name")]
            finding = (
                "disables the Cloud Run invoker IAM check (invokerIamDisabled): keep IAM on and grant "
                "roles/run.invoker to the callers"
            )
    elif rtype in (AZURE_WEBAPP, AZURE_SLOT):
        finding = _azure_anonymous(props)
        names = [get(props, "name")]
    elif rtype == "azure-native:web:WebAppAuthSettingsV2":
        action = get(props, "globalValidation.unauthenticatedClientAction")
        if get(props, "globalValidation.requireAuthentication") is False or action == "AllowAnonymous":
            names = [get(props, "name")]
            finding = (
                "lets anonymous callers through App Service authentication: set "
                "globalValidation.requireAuthentication true"
            )
    elif rtype == KNATIVE:
        labels = get(props, "metadata.labels")
        if labels is UNKNOWN:
            return
        visibility = labels.get("networking.knative.dev/visibility") if isinstance(labels, dict) else None
        if visibility is UNKNOWN:
            return
        if visibility != "cluster-local":
            names = [get(props, "metadata.name")]
            finding = (
                "is exposed outside the cluster: label it networking.knative.dev/visibility=cluster-local "
                "and reach it through an authenticating gateway"
            )
    if finding is None:
        return
    allowed = _allowed_public(args, props, names)
    if allowed is False:
        who = next((n for n in names if isinstance(n, str) and n), None) or label(rtype, props, args.name)
        report_violation(f"'{shown(who)}' {finding} (or list it in allowedPublicFunctions).", None)


def _azure_anonymous(props: dict[str, Any]) -> str | None:
    """An Azure function app whose functions accept anonymous calls, as the resource can state it."""
    if not is_azure_function_app(props):
        return None
    settings = get(props, "siteConfig.appSettings")
    if isinstance(settings, list):
        for item in settings:
            name, value = get(item, "name"), get(item, "value")
            if (
                isinstance(name, str)
                and name.upper() in ("AUTH_LEVEL", "FUNCTIONS_AUTH_LEVEL", "INFEROPS_AUTH_LEVEL")
                and isinstance(value, str)
                and value.lower() == "anonymous"
            ):
                return (
                    f"declares anonymous function auth ({name}=anonymous): use the 'function' auth level "
                    "or App Service authentication"
                )
    return None


def _variables(rtype: str, props: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, literal value) pairs of a function's environment variables or app settings."""
    pairs: list[tuple[str, Any]] = []
    if rtype == "aws:lambda/function:Function":
        variables = get(props, "environment.variables")
        if isinstance(variables, dict):
            pairs.extend(variables.items())
    elif rtype in (AZURE_WEBAPP, AZURE_SLOT):
        settings = get(props, "siteConfig.appSettings")
        for item in settings if isinstance(settings, list) else []:
            pairs.append((get(item, "name"), get(item, "value")))
    elif rtype in ("azure-native:web:WebAppApplicationSettings", "azure-native:web:WebAppApplicationSettingsSlot"):
        props_map = get(props, "properties")
        if isinstance(props_map, dict):
            pairs.extend(props_map.items())
    elif rtype == GCP_RUN:
        containers = get(props, "template.containers")
        for container in containers if isinstance(containers, list) else []:
            envs = get(container, "envs")
            for env in envs if isinstance(envs, list) else []:
                pairs.append((get(env, "name"), get(env, "value")))
    elif rtype == KNATIVE:
        containers = get(props, "spec.template.spec.containers")
        for container in containers if isinstance(containers, list) else []:
            envs = get(container, "env")
            for env in envs if isinstance(envs, list) else []:
                pairs.append((get(env, "name"), get(env, "value")))
    return pairs


@lru_cache(maxsize=16)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def secret_name_pattern(pattern: Any) -> re.Pattern[str]:
    """The compiled ``secretNamePattern``; ``ValueError`` naming the key when it is not a valid regex
    (``Configure`` rejects such a config, so validators only ever see valid ones)."""
    if not isinstance(pattern, str):
        raise ValueError(f"secretNamePattern must be a string, not {type(pattern).__name__}")
    try:
        return _compile(pattern)
    except re.error as exc:
        raise ValueError(f"secretNamePattern is not a valid regular expression: {exc}") from None


def plaintext_secrets_validator(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """No secret-looking literal values in environment variables or app settings."""
    props = plain(args.props)
    pattern = secret_name_pattern(config_value(args, "secretNamePattern", DEFAULT_SECRET_NAME_PATTERN))
    allowed = {n for n in config_value(args, "allowedNames", []) if isinstance(n, str)}
    who = label(args.resource_type, props, args.name)
    for name, value in _variables(args.resource_type, props):
        if not isinstance(name, str) or name in allowed or is_absent(value):
            continue
        if not isinstance(value, str) or not value or _REFERENCE.match(value):
            continue
        if pattern.search(name) or _SECRET_VALUE.search(value):
            report_violation(
                f"'{who}' sets {name} to a plaintext secret-looking value: store it in the platform's secret "
                "store (Secrets Manager, Key Vault reference, Secret Manager secretKeyRef, Kubernetes Secret) "
                "and reference it, or use an identity instead of a key.",
                None,
            )


class _TooDeepError(Exception):
    """A policy document nested deeper than the pack reads (IAM's grammar is a few levels deep)."""


def _statements(document: Any) -> list[dict[str, Any]] | None:
    if isinstance(document, str):
        try:
            document = plain(json.loads(document))
        except RecursionError:
            raise _TooDeepError from None
        except ValueError:
            return None
    if contains_too_deep(document):
        raise _TooDeepError
    if not isinstance(document, dict):
        return None
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    return [s for s in statements if isinstance(s, dict)] if isinstance(statements, list) else None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def iam_wildcards_validator(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """No wildcard actions or resources in IAM policies, and no broad managed policies on roles."""
    props = plain(args.props)
    rtype = args.resource_type
    documents: list[tuple[str, Any]] = []
    if rtype in ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"):
        documents.append((args.name, get(props, "policy")))
    elif rtype == "aws:iam/role:Role":
        inline = get(props, "inlinePolicies")
        for item in inline if isinstance(inline, list) else []:
            documents.append((f"{args.name}/{get(item, 'name')}", get(item, "policy")))
        denied = set(config_value(args, "deniedManagedPolicyArns", DEFAULT_DENIED_MANAGED_POLICIES))
        arns = get(props, "managedPolicyArns")
        for arn in arns if isinstance(arns, list) else []:
            if isinstance(arn, str) and arn in denied:
                report_violation(f"role '{args.name}' attaches {arn}: grant only the actions the function needs.", None)
    elif rtype == "aws:iam/rolePolicyAttachment:RolePolicyAttachment":
        denied = set(config_value(args, "deniedManagedPolicyArns", DEFAULT_DENIED_MANAGED_POLICIES))
        arn = get(props, "policyArn")
        if isinstance(arn, str) and arn in denied:
            report_violation(
                f"'{args.name}' attaches {get(props, 'policyArn')}: grant only the actions the function needs.", None
            )
    unscopable = set(config_value(args, "actionsAllowedOnAnyResource", DEFAULT_WILDCARD_RESOURCE_ACTIONS))
    for where, document in documents:
        if is_absent(document):
            continue
        try:
            statements = _statements(document)
        except _TooDeepError:
            report_violation(
                f"policy '{where}' is nested too deeply to be checked: an IAM policy document is a few levels "
                "deep (Statement, Action, Resource, Condition); write it flat.",
                None,
            )
            continue
        if statements is None:
            continue  # not JSON yet (e.g. built from unknown outputs): cannot judge
        for statement in statements:
            if statement.get("Effect", "Allow") != "Allow":
                continue
            actions = [a for a in _as_list(statement.get("Action", [])) if isinstance(a, str)]
            resources = [r for r in _as_list(statement.get("Resource", [])) if isinstance(r, str)]
            wild_actions = [a for a in actions if a == "*" or a.endswith(":*")]
            if wild_actions:
                report_violation(
                    f"policy '{where}' allows wildcard action {wild_actions[0]}: list the exact "
                    "actions the function needs.",
                    None,
                )
            if "*" in resources and any(a not in unscopable for a in actions):
                report_violation(
                    f"policy '{where}' allows {', '.join(sorted(set(actions) - unscopable))} on "
                    'Resource "*": scope it to the function\'s own ARNs.',
                    None,
                )


_TLS_ORDER = {"1.0": 0, "1.1": 1, "1.2": 2, "1.3": 3, "TLS1_0": 0, "TLS1_1": 1, "TLS1_2": 2, "TLS1_3": 3}


def azure_https_tls_validator(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Azure function apps and storage accounts accept HTTPS only, at TLS 1.2 or later."""
    props = plain(args.props)
    rtype = args.resource_type
    minimum = str(config_value(args, "minTlsVersion", "1.2"))
    minimum = minimum if minimum in _TLS_ORDER else "1.2"  # Configure rejects others
    who = label(rtype, props, args.name)
    if rtype in (AZURE_WEBAPP, AZURE_SLOT):
        https_only = get(props, "httpsOnly")
        # Azure's default for httpsOnly is false, so an absent flag is a real gap; unknown waits.
        if https_only is not UNKNOWN and https_only is not True:
            report_violation(f"'{who}' does not set httpsOnly: true: set it so plain HTTP is redirected.", None)
        tls = get(props, "siteConfig.minTlsVersion")
        if isinstance(tls, str) and _TLS_ORDER.get(tls, 99) < _TLS_ORDER[minimum]:
            report_violation(f"'{who}' accepts TLS {tls}: set siteConfig.minTlsVersion to {minimum} or later.", None)
    elif rtype == "azure-native:storage:StorageAccount":
        if get(props, "enableHttpsTrafficOnly") is False:
            report_violation(f"'{who}' allows plain HTTP: set enableHttpsTrafficOnly: true.", None)
        tls = get(props, "minimumTlsVersion")
        if isinstance(tls, str) and _TLS_ORDER.get(tls, 99) < _TLS_ORDER[minimum]:
            report_violation(f"'{who}' accepts {tls}: set minimumTlsVersion to TLS{minimum.replace('.', '_')}.", None)


_RETENTION = {
    "aws:cloudwatch/logGroup:LogGroup": "retentionInDays",
    "azure-native:operationalinsights:Workspace": "retentionInDays",
    "gcp:logging/projectBucketConfig:ProjectBucketConfig": "retentionDays",
}


def log_retention_validator(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Log groups/workspaces/buckets set a retention period (and stay under the configured maximum)."""
    field = _RETENTION.get(args.resource_type)
    if field is None:
        return
    props = plain(args.props)
    value = get(props, field)
    if value is UNKNOWN:
        return
    days = as_number(value)
    if value is MISSING or not isinstance(days, float) or days <= 0:
        report_violation(
            f"'{args.name}' keeps logs forever ({field} not set): set {field} (e.g. 30) so inference logs expire.", None
        )
        return
    maximum = as_number(config_value(args, "maxRetentionDays", 0))
    maximum = int(maximum) if isinstance(maximum, float) else 0
    if maximum and days > maximum:
        report_violation(
            f"'{args.name}' keeps logs {days:g} days, above the {maximum}-day maximum: lower {field}.", None
        )
