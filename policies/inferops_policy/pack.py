"""The pack's policies, built as plain objects (no server): ``policies/__main__.py`` wraps them in a
``PolicyPack`` and tests call the validators directly."""

from __future__ import annotations

import math
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ResourceValidationPolicy,
    Severity,
    StackValidationPolicy,
)

from . import finops, responsible_ai, security

PACK_NAME = "inferops-guardrails"


def build_policies() -> list[Policy]:
    """Every policy of the pack with its default enforcement level and config schema."""
    mandatory, advisory = EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY
    return [
        ResourceValidationPolicy(
            name="responsible-ai-metadata",
            description="Inference functions declare model-id, model-version, https model-card-url and "
            "data-lineage-url, a risk-tier (minimal|limited|high) and a fairness-score in [0, 1].",
            validate=responsible_ai.rai_metadata_validator,
            enforcement_level=mandatory,
            config_schema=responsible_ai.METADATA_SCHEMA,
            severity=Severity.HIGH,
            remediation_steps="Fill the function's model block in the stack config (id, version, cardUrl, "
            "lineageUrl, riskTier, fairnessScore); hand-written resources add the same keys as "
            "tags, labels/annotations or inferops.dev/ annotations.",
            tags=["responsible-ai"],
        ),
        ResourceValidationPolicy(
            name="responsible-ai-fairness-floor",
            description="An inference function's fairness-score is at or above the floor for its risk tier.",
            validate=responsible_ai.rai_fairness_floor_validator,
            enforcement_level=mandatory,
            config_schema=responsible_ai.FAIRNESS_SCHEMA,
            severity=Severity.HIGH,
            remediation_steps="Mitigate or retrain the model and record the new evaluation's score; do not lower "
            "the risk tier without a review.",
            tags=["responsible-ai"],
        ),
        ResourceValidationPolicy(
            name="responsible-ai-high-risk-approval",
            description="A high-risk inference function links its human review in an https approval-ref.",
            validate=responsible_ai.rai_high_risk_approval_validator,
            enforcement_level=mandatory,
            config_schema=responsible_ai.APPROVAL_SCHEMA,
            severity=Severity.CRITICAL,
            remediation_steps="Have the model reviewed and set model.approvalRef to the review's link.",
            tags=["responsible-ai"],
        ),
        ResourceValidationPolicy(
            name="finops-cost-allocation-tags",
            description="Taggable resources carry cost-center, owner, environment and monthly-budget-usd.",
            validate=finops.tags_validator,
            enforcement_level=mandatory,
            config_schema=finops.TAGS_SCHEMA,
            severity=Severity.MEDIUM,
            remediation_steps="Set finops (or inferops:defaults) in the stack config; hand-written resources add "
            "the keys as tags/labels/annotations.",
            tags=["finops"],
        ),
        StackValidationPolicy(
            name="finops-budget-per-function",
            description="Each cloud inference function has a budget resource whose amount equals its "
            "monthly-budget-usd and whose first alert is at most 100%.",
            validate=finops.budget_coverage_validator,
            enforcement_level=mandatory,
            config_schema=finops.BUDGET_SCHEMA,
            severity=Severity.MEDIUM,
            remediation_steps="Declare an AWS/Azure/GCP budget filtered on the function-name key, with the "
            "function's monthly-budget-usd and alert thresholds such as 50, 80, 100%.",
            tags=["finops"],
        ),
        StackValidationPolicy(
            name="finops-cost-within-budget",
            description="Each inference function's estimated monthly cost, canary and always-on capacity "
            "included, stays within its budget minus the headroom.",
            validate=finops.cost_within_budget_validator,
            enforcement_level=mandatory,
            config_schema=finops.WITHIN_BUDGET_SCHEMA,
            severity=Severity.HIGH,
            remediation_steps="Raise finops.monthlyBudgetUsd after approval, or reduce memory, duration, minimum "
            "instances, provisioned concurrency or expected traffic.",
            tags=["finops"],
        ),
        StackValidationPolicy(
            name="finops-cost-per-1k-inferences",
            description="No inference function costs more per 1,000 inferences than the configured ceiling.",
            validate=finops.cost_per_1k_validator,
            enforcement_level=mandatory,
            config_schema=finops.PER_1K_SCHEMA,
            severity=Severity.MEDIUM,
            remediation_steps="Reduce memory, duration or always-on capacity, or raise maxUsdPer1kInferences.",
            tags=["finops"],
        ),
        StackValidationPolicy(
            name="finops-stack-monthly-ceiling",
            description="The stack's inference functions together stay under a monthly ceiling.",
            validate=finops.stack_ceiling_validator,
            enforcement_level=mandatory,
            config_schema=finops.STACK_CEILING_SCHEMA,
            severity=Severity.HIGH,
            remediation_steps="Shrink or remove functions, or raise maxMonthlyUsd after approval.",
            tags=["finops"],
        ),
        StackValidationPolicy(
            name="finops-cost-estimate-coverage",
            description="Warns when a function's cost can only be estimated from a fallback price (region not "
            "in the price table) or not at all (usage keys or sizes missing).",
            validate=finops.coverage_validator,
            enforcement_level=advisory,
            config_schema=finops.COVERAGE_SCHEMA,
            severity=Severity.LOW,
            remediation_steps="Add the region to policies/inferops_policy/prices.json with its source and date, "
            "or set expected-monthly-requests, avg-duration-ms and resource sizes.",
            tags=["finops"],
        ),
        ResourceValidationPolicy(
            name="security-no-public-endpoint",
            description="No unauthenticated public endpoint (Lambda URL auth NONE, Cloud Run allUsers invoker, "
            "anonymous Azure auth, Knative route not cluster-local) unless the pack config allows it.",
            validate=security.public_endpoint_validator,
            enforcement_level=mandatory,
            config_schema=security.PUBLIC_SCHEMA,
            severity=Severity.CRITICAL,
            remediation_steps="Require IAM/function-key auth or an authenticating gateway; if a public endpoint is "
            "intended, list the function in allowedPublicFunctions.",
            tags=["security"],
        ),
        ResourceValidationPolicy(
            name="security-no-plaintext-secrets",
            description="Environment variables and app settings hold no plaintext secret-looking values.",
            validate=security.plaintext_secrets_validator,
            enforcement_level=mandatory,
            config_schema=security.SECRETS_SCHEMA,
            severity=Severity.CRITICAL,
            remediation_steps="Move the value to Secrets Manager, Key Vault, Secret Manager or a Kubernetes Secret "
            "and reference it, or use a managed identity.",
            tags=["security"],
        ),
        ResourceValidationPolicy(
            name="security-iam-least-privilege",
            description="IAM policies grant no wildcard actions or resources and roles attach no admin policies.",
            validate=security.iam_wildcards_validator,
            enforcement_level=mandatory,
            config_schema=security.IAM_SCHEMA,
            severity=Severity.HIGH,
            remediation_steps="List exact actions and scope Resource to the function's log group, model bucket "
            "and key ARNs.",
            tags=["security"],
        ),
        ResourceValidationPolicy(
            name="security-azure-https-tls",
            description="Azure function apps and storage accounts accept HTTPS only, with TLS 1.2 or later.",
            validate=security.azure_https_tls_validator,
            enforcement_level=mandatory,
            config_schema=security.TLS_SCHEMA,
            severity=Severity.HIGH,
            remediation_steps="Set httpsOnly: true and siteConfig.minTlsVersion: '1.2' (storage: "
            "enableHttpsTrafficOnly, minimumTlsVersion TLS1_2).",
            tags=["security"],
        ),
        ResourceValidationPolicy(
            name="security-log-retention",
            description="Log groups, workspaces and log buckets set a retention period.",
            validate=security.log_retention_validator,
            enforcement_level=mandatory,
            config_schema=security.RETENTION_SCHEMA,
            severity=Severity.MEDIUM,
            remediation_steps="Set retentionInDays (AWS, Azure) or retentionDays (GCP), e.g. 30.",
            tags=["security"],
        ),
    ]


# --------------------------------------------------------------------------- Configure-time validation

# Checks the JSON schema cannot express, per config key (the value is already of the schema's type).
_EXTRA_CHECKS = {
    "secretNamePattern": lambda value: security.secret_name_pattern(value) and None,
}


def _schema_error(policy: str, key: str, value: Any, schema: dict[str, Any]) -> str | None:
    """The first way ``value`` breaks ``schema`` (the subset of JSON Schema the pack's schemas use)."""
    expected = schema.get("type")
    kinds = {
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "integer": lambda v: (
            (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
        ),
        "boolean": lambda v: isinstance(v, bool),
        "string": lambda v: isinstance(v, str),
        "array": lambda v: isinstance(v, list),
    }
    if expected in kinds and not kinds[expected](value):
        return f"policy '{policy}': {key}: {value!r} is not of type '{expected}'"
    if expected in ("number", "integer"):
        if not math.isfinite(value):
            return f"policy '{policy}': {key}: {value!r} is not a finite number"
        if "minimum" in schema and value < schema["minimum"]:
            return f"policy '{policy}': {key}: {value!r} is less than the minimum of {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"policy '{policy}': {key}: {value!r} is greater than the maximum of {schema['maximum']}"
    if "enum" in schema and value not in schema["enum"]:
        return f"policy '{policy}': {key}: {value!r} is not one of {schema['enum']}"
    if expected == "array":
        items = schema.get("items", {})
        for index, item in enumerate(value):
            error = _schema_error(policy, f"{key}[{index}]", item, items)
            if error:
                return error
    return None


def validate_policy_config(config: dict[str, dict[str, Any]]) -> list[str]:
    """Errors in a pack config (``{policy: properties}``, as ``Configure`` receives it), one line each.

    Stricter than the engine, which validates types against the schema but cannot reject unknown
    properties (the protocol's schema carries only ``properties`` and ``required``): a misspelt key
    such as ``fairnesFloor`` is an error here instead of a silent no-op, and values the schema
    cannot express (a regular expression that does not compile) fail now, naming the key, instead
    of failing every later ``Analyze``.
    """
    schemas = {p.name: (p.config_schema.properties or {}) if p.config_schema else {} for p in build_policies()}
    errors = []
    for policy, props in config.items():
        if policy not in schemas:
            continue  # the engine passes config of policies a pack does not have; nothing to check
        known = schemas[policy]
        for key, value in (props or {}).items():
            if key not in known:
                hint = f"; known: {', '.join(sorted(known))}" if known else "; it takes no properties"
                errors.append(f"policy '{policy}': unknown property '{key}'{hint}")
                continue
            error = _schema_error(policy, key, value, known[key])
            if error is None and key in _EXTRA_CHECKS:
                try:
                    _EXTRA_CHECKS[key](value)
                except ValueError as exc:
                    error = f"policy '{policy}': {exc}"
            if error:
                errors.append(error)
    return errors


def install_configure_validation() -> None:
    """Make the SDK's ``Configure`` reject an invalid pack config (``INVALID_ARGUMENT``, every error
    listed), so ``pulumi preview`` stops once with a message naming the policy and key.

    The SDK offers no hook for this, so its servicer's ``Configure`` is wrapped; the wrapped method
    is the SDK's own when the config is valid.
    """
    import grpc
    from google.protobuf import json_format
    from pulumi_policy import policy as sdk

    servicer = sdk._PolicyAnalyzerServicer  # private, but the only place Configure can be checked
    original = servicer.Configure
    if getattr(original, "_inferops_validates", False):
        return

    def configure(self: Any, request: Any, context: Any) -> Any:
        config = {k: json_format.MessageToDict(request.policyConfig[k].properties) for k in request.policyConfig}
        errors = validate_policy_config(config)
        if errors:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{PACK_NAME} config: " + "; ".join(errors))
        return original(self, request, context)

    configure._inferops_validates = True  # type: ignore[attr-defined]
    servicer.Configure = configure  # type: ignore[method-assign]


def finite_struct(struct: Any) -> Any:
    """Replace non-finite numbers in a protobuf ``Struct`` (in place) by the strings JSON uses for them.

    The SDK turns each request's properties into a dict with ``json_format.MessageToDict``, which
    raises on a NaN or infinite number before any policy runs; as a string the value reaches the
    policies, which report it as malformed ("not a finite number") instead of failing the call.
    """
    pending = [struct]
    while pending:
        message = pending.pop()
        values = message.fields.values() if hasattr(message, "fields") else message.values
        for value in values:
            kind = value.WhichOneof("kind")
            if kind == "number_value" and not math.isfinite(value.number_value):
                number = value.number_value
                value.string_value = "NaN" if number != number else ("Infinity" if number > 0 else "-Infinity")
            elif kind == "struct_value":
                pending.append(value.struct_value)
            elif kind == "list_value":
                pending.append(value.list_value)
    return struct


def install_request_sanitizer() -> None:
    """Make the SDK's ``Analyze``/``AnalyzeStack`` accept properties with NaN or infinite numbers
    (see :func:`finite_struct`); the wrapped methods are the SDK's own."""
    from pulumi_policy import policy as sdk

    servicer = sdk._PolicyAnalyzerServicer  # private, but the only place a request can be read first
    if getattr(servicer.Analyze, "_inferops_sanitizes", False):
        return
    analyze, analyze_stack = servicer.Analyze, servicer.AnalyzeStack

    def sanitized_analyze(self: Any, request: Any, context: Any) -> Any:
        finite_struct(request.properties)
        if request.HasField("provider"):
            finite_struct(request.provider.properties)
        return analyze(self, request, context)

    def sanitized_analyze_stack(self: Any, request: Any, context: Any) -> Any:
        for resource in request.resources:
            finite_struct(resource.properties)
            if resource.HasField("provider"):
                finite_struct(resource.provider.properties)
        return analyze_stack(self, request, context)

    sanitized_analyze._inferops_sanitizes = True  # type: ignore[attr-defined]
    servicer.Analyze = sanitized_analyze  # type: ignore[method-assign]
    servicer.AnalyzeStack = sanitized_analyze_stack  # type: ignore[method-assign]
