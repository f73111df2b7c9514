"""Azure Functions inference function: resource group, storage, plan, function app, canary slot, budget.

One :class:`AzureInferenceFunction` per function of platform ``azure``. What it declares, and why:

* a resource group of its own, so the Cost Management budget can be scoped to exactly this function;
* a storage account (TLS 1.2, HTTPS only, no public blobs) that the Functions host reaches through
  the app's managed identity (``AzureWebJobsStorage__accountName``) and a private ``deployments``
  container: no connection string, no key in app settings;
* the code package (``components/package.py``) built from ``functions/`` at every run and uploaded
  as a blob named by its content hash: Consumption runs from it (``WEBSITE_RUN_FROM_PACKAGE``, read
  with the managed identity), Flex Consumption deploys it with one deploy;
* a Linux Consumption (``Y1``) or Flex Consumption (``FC1``) plan;
* the function app (system-assigned identity, HTTPS only, TLS 1.2, FTP off) with the model in its
  app settings. Production serves ``fn.stable_version``;
* while a canary runs, a ``canary`` deployment slot serving ``model.version`` and a ramp-up rule on
  the production app that reroutes ``canaryPercent`` % of requests to the slot;
* a monthly Cost Management budget on the resource group, filtered on the ``function-name`` tag,
  with one notification per alert threshold;
* with ``capture.enabled``: a diagnostic setting (category ``FunctionAppLogs``) on the app and on the
  canary slot, to a capture storage account of its own with a lifecycle rule (or to the existing
  account ``capture.destination`` names); the handler logs each capture record through ``logging``,
  which lands in ``properties.message`` of those log records (see :meth:`_capture`).

Rollback is a config change: ``canaryPercent: 0`` or ``version == stableVersion`` removes the slot and
the ramp-up rule, and production keeps serving ``stableVersion``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

import pulumi
import pulumi_azure_native as azure_native
from pulumi import ResourceOptions

from components import package as code_package
from components.spec import CaptureSpec, FunctionSpec, StackSpec, handler_model_uri
from components.tags import FUNCTION_KEY, cloud_metadata, scoped_name

TYPE = "inferops:azure:InferenceFunction"
#: Deployment slot that serves the candidate version while a canary runs.
CANARY_SLOT = "canary"
#: Private blob container that holds the function app's code package.
DEPLOYMENT_CONTAINER = "deployments"
#: azure-native's ``storage.Blob`` writes with a shared-key credential built from the account's
#: listKeys (provider source provider/pkg/resources/customresources/custom_storage_azidentity.go:
#: ``newBlockBlobClient`` -> ``blobClientDependencies`` -> ``newSharedKeyCredential``;
#: pulumi/pulumi-azure-native#2015 "Cannot create a blob in storage account with SharedAccessKey
#: disabled" is open), so the account that receives the package must allow shared keys.
SHARED_KEY_FOR_PACKAGE_UPLOAD = True
#: ``Microsoft.Web/sites/extensions`` named ``onedeploy``: Flex Consumption's only code deployment
#: (learn.microsoft.com/azure/azure-functions/functions-infrastructure-as-code, pivot
#: flex-consumption-plan, "Deployment sources": "You must use one deploy ... If you choose to instead
#: directly upload your package to the container, the package doesn't get automatically deployed").
ONEDEPLOY_API_VERSION = "2024-04-01"
#: The inputs of a package blob that a pinned (frozen) package keeps: which blob, with what bytes.
_PACKAGE_CONTENT = ("blobName", "source", "contentMd5", "metadata")
#: HTTP route of the inference handler (``functions/``), under the Functions ``api`` prefix.
PREDICT_PATH = "/api/predict"
PYTHON_VERSION = "3.11"
#: Built-in role "Storage Blob Data Owner": what the Functions host needs on its own storage account
#: with identity-based connections (leases, blobs), scoped to that one account.
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
#: App setting the inference handler reads to pick its HTTP auth level (``function`` or ``anonymous``);
#: Azure Functions declares the auth level in code, so the infrastructure passes the decision down.
AUTH_LEVEL_SETTING = "INFEROPS_AUTH_LEVEL"
#: The Functions host's ID, set explicitly per site (see :func:`host_id`).
HOST_ID_SETTING = "AzureFunctionsWebHost__hostId"
#: Settings that belong to a slot, not to the code: a swap must not move a model version (or a host
#: ID) between slots.
SLOT_STICKY_SETTINGS = ("MODEL_URI", "MODEL_VERSION", "INFEROPS_SLOT", "INFEROPS_VARIANT", HOST_ID_SETTING)
#: Cost Management budgets hold at most five notifications
#: (learn.microsoft.com/rest/api/consumption/budgets/create-or-update: "Budget can have up to five
#: notifications"); components/spec.py refuses more thresholds on azure.
MAX_BUDGET_NOTIFICATIONS = 5
#: App names are 2-60 characters (learn.microsoft.com/azure/azure-resource-manager/management/
#: resource-name-rules#microsoftweb). The slot's host name does not constrain it: Azure forms it from
#: the site name cut at 40 characters (deploy-staging-slots, "Add a slot"), and the ramp-up rule routes
#: to the slot's reported defaultHostName. 52, not 60, because a new cap would rename, and so replace,
#: every deployed app whose name it cuts.
_APP_NAME_MAX = 52
_APP_STEM_MAX = _APP_NAME_MAX - 9
#: The host ID is at most 32 characters of lowercase letters, digits and dashes
#: (learn.microsoft.com/azure/azure-functions/storage-considerations#host-id-considerations).
_HOST_ID_MAX = 32
#: App Service plan names: 1-40 characters; resource groups: 1-90.
_PLAN_NAME_MAX = 40
_RG_NAME_MAX = 90


# --- data capture (issue 13): diagnostic setting -> storage account --------------------------------

#: The resource log category of the Functions host and worker logs, where the handler's ``logging``
#: lines land (``properties.message``). Both resource types the component declares have it:
#: Microsoft.Web/sites and Microsoft.Web/sites/slots (MicrosoftDocs/azure-reference-other,
#: azure-monitor-ref/supported-logs/Microsoft-Web-sites-slots-logs.md and
#: includes/microsoft-web-sites-logs-include.md).
CAPTURE_CATEGORY = "FunctionAppLogs"
#: Azure Monitor names the container itself, ``insights-logs-{log category name}``, and writes
#: ``resourceId=<RESOURCE ID>/y=/m=/d=/h=/m=00/PT1H.json`` below it, appending to the hour's blob
#: (MicrosoftDocs/azure-monitor-docs, articles/azure-monitor/essentials/resource-logs.md,
#: "Send to Azure Storage").
CAPTURE_CONTAINER = "insights-logs-functionapplogs"
#: Name of the diagnostic setting on each site (a resource holds at most five: diagnostic-settings.md).
CAPTURE_SETTING_NAME = "inferops-capture"
#: "The name of the Storage Account Management Policy. It should always be 'default'" (pulumi-azure-native
#: 3.29.0, storage.ManagementPolicyArgs.management_policy_name; Registry docs of
#: azure-native.storage.ManagementPolicy): one lifecycle policy per account, so the component declares
#: it only on the capture account it owns, never on the host account or an existing destination.
CAPTURE_POLICY_NAME = "default"
CAPTURE_RULE_NAME = "capture-retention"
#: Azure Monitor appends to ``PT1H.json`` (append blobs); a lifecycle rule for diagnostic logs selects
#: "Append Blobs" (azure-monitor-docs, essentials/migrate-to-azure-storage-lifecycle-policy.md), and
#: "Only delete actions are supported for appendBlob" (storage.ManagementPolicyFilterArgs.blob_types).
CAPTURE_BLOB_TYPES = ("appendBlob", "blockBlob")
#: A resource group name: ``^[-\w\._\(\)]+[^\.]$``, 1-90 characters (learn.microsoft.com/rest/api/
#: appservice/web-apps/update-slot, "resourceGroupName ... Regex pattern").
_RG_NAME_RE = re.compile(r"[-\w._()]{0,89}[-\w_()]")
#: Storage account names: 3-24 lowercase letters and digits.
_ACCOUNT_RE = re.compile(r"[a-z0-9]{3,24}")


def capture_account_name(name: str, project: str, stack: str) -> str:
    """The capture account the component declares: 3-24 lowercase alphanumerics, globally unique.

    Not the host account: "Don't use an existing storage account that has other, nonmonitoring data
    stored in it" (azure-monitor-docs, essentials/diagnostic-settings.md, "Destination limitations"),
    and an account holds one lifecycle policy, which the capture retention needs for itself.
    """
    stem = re.sub(r"[^a-z0-9]", "", name.lower())[:13]
    return f"{stem}cap{_digest(project, stack, name, 'capture')}"


def capture_destination_account(capture: CaptureSpec) -> tuple[str, str] | None:
    """``(account, resource group)`` of ``capture.destination`` (None: the component declares one).

    A diagnostic setting targets a storage account by its resource id (``storageAccountId``) and names
    its containers itself, so on Azure a destination is an account and its resource group, in the
    deploying subscription: ``az://<storage account>/<resource group>``. A container or a prefix could
    not be honoured.
    """
    if capture.destination is None:
        return None
    uri = capture.destination
    account, _, group = uri.removeprefix("az://").partition("/")
    group = group.rstrip("/")
    if not uri.startswith("az://") or not _ACCOUNT_RE.fullmatch(account) or not _RG_NAME_RE.fullmatch(group):
        raise ValueError(
            f"capture.destination: {uri!r} must be az://<storage account>/<resource group> on Azure "
            "(a diagnostic setting writes to a storage account, in containers it names itself)"
        )
    return account, group


def capture_settings(fn: FunctionSpec, slot: str) -> list[tuple[str, str]]:
    """The handler's capture variables (functions/README.md) for one site.

    The variant is the site's: ``canary`` on the canary slot (a sticky setting, so a swap never moves
    it), ``stable`` on production, which always serves ``stableVersion``. ``INFEROPS_CAPTURE_URI``
    stays unset: the worker is frozen or recycled between invocations, so the platform's log pipeline
    is the capture path.
    """
    c = fn.capture
    return [
        ("INFEROPS_CAPTURE_ENABLED", "true" if c.enabled else "false"),
        ("INFEROPS_CAPTURE_SAMPLE_PERCENT", f"{c.sample_percent:g}"),
        ("INFEROPS_VARIANT", "canary" if slot == CANARY_SLOT else "stable"),
    ]


def capture_prefix(subscription: str, resource_group: str, app_name: str) -> str:
    """The app's directory in the capture container: its resource id, upper case, as Azure Monitor writes it.

    The canary slot's records are below it (``.../SITES/<APP>/SLOTS/CANARY/y=...``), so one prefix
    holds both variants; each record carries its ``variant``.
    """
    rid = f"/SUBSCRIPTIONS/{subscription}/RESOURCEGROUPS/{resource_group}/PROVIDERS/MICROSOFT.WEB/SITES/{app_name}"
    return f"resourceId={rid.upper()}"


def capture_uri(account: str, subscription: str, resource_group: str, app_name: str) -> str:
    """``captureUri``: ``az://insights-logs-functionapplogs@<account>.blob.core.windows.net/resourceId=...``.

    The account is in the URI, so a reader needs nothing else to find it: this is adlfs's
    account-qualified form (``AzureBlobFileSystem._get_kwargs_from_urls`` takes ``account_name`` from
    ``<container>@<account>.blob.core.windows.net``), which ``drift check --capture`` reads as it is.
    """
    return (
        f"az://{CAPTURE_CONTAINER}@{account}.blob.core.windows.net/"
        f"{capture_prefix(subscription, resource_group, app_name)}"
    )


def capture_lifecycle(retention_days: int) -> azure_native.storage.ManagementPolicySchemaArgs:
    """One rule: delete the capture container's blobs ``retention_days`` after their last append."""
    s = azure_native.storage
    return s.ManagementPolicySchemaArgs(
        rules=[
            s.ManagementPolicyRuleArgs(
                name=CAPTURE_RULE_NAME,
                enabled=True,
                type="Lifecycle",
                definition=s.ManagementPolicyDefinitionArgs(
                    filters=s.ManagementPolicyFilterArgs(
                        blob_types=list(CAPTURE_BLOB_TYPES), prefix_match=[f"{CAPTURE_CONTAINER}/"]
                    ),
                    actions=s.ManagementPolicyActionArgs(
                        base_blob=s.ManagementPolicyBaseBlobArgs(
                            delete=s.DateAfterModificationArgs(days_after_modification_greater_than=retention_days)
                        )
                    ),
                ),
            )
        ]
    )


def _digest(*parts: str, length: int = 8) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def storage_account_name(name: str, project: str, stack: str) -> str:
    """A globally unique storage account name: 3-24 lowercase letters and digits.

    The hash covers project, stack and function so that two stacks of the same project (dev, prod)
    deploying the same function in one tenant do not collide.
    """
    stem = re.sub(r"[^a-z0-9]", "", name.lower())[:16]
    return f"{stem}{_digest(project, stack, name)}"


def function_app_name(name: str, project: str, stack: str) -> str:
    """A globally unique app name (it becomes ``<app>.azurewebsites.net``): at most 52 of ``[a-z0-9-]``.

    ``<name>-<hash of project, stack, name>``; a name longer than 43 characters is cut, the hash keeps
    it unique per stack.
    """
    return f"{name[:_APP_STEM_MAX].rstrip('-')}-{_digest(project, stack, name)}"


def host_id(name: str, project: str, stack: str, slot: str) -> str:
    """The Functions host ID of one site (production or a slot): at most 32 characters, distinct per site.

    Without it the host derives its ID from the site name cut to 32 characters, so production and its
    ``canary`` slot share one ID once the app name has 22-24 characters or more, and the host of the
    second stops: "In Functions v4 when this situation is detected an error will be logged, and the
    host will shut down" (github.com/Azure/azure-functions-host/wiki/Host-IDs, which also names the
    ``AzureFunctionsWebHost__hostId`` setting; learn.microsoft.com/azure/azure-functions/
    storage-considerations#host-id-considerations).
    """
    stem = re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", name.lower())).strip("-")
    digest = _digest(project, stack, name, slot)
    room = _HOST_ID_MAX - len(digest) - 1
    return f"{stem[:room].rstrip('-')}-{digest}"


def artifact_uri_for(fn: FunctionSpec, version: str) -> str:
    """The model artifact of ``version``.

    A templated ``model.artifactUri`` (``.../{version}/model.json``) is filled in by the spec. A literal
    URI is the artifact of ``model.version``; the stable version's artifact is then found by replacing
    the one path segment equal to ``model.version`` (``.../churn-predictor/1.4.0/model.json``).
    """
    uri = fn.model.artifact_uri
    if "{version}" in uri:
        return fn.model.artifact_for(version)
    if version == fn.model.version:
        return uri
    scheme, sep, rest = uri.partition("://")
    segments = rest.split("/")
    hits = [i for i, s in enumerate(segments) if s == fn.model.version]
    if not sep or len(hits) != 1 or hits[0] == 0:
        raise pulumi.RunError(
            f"inferops:functions[{fn.name}].model.artifactUri: use a {{version}} placeholder or the version "
            f"{fn.model.version!r} as exactly one path segment, so that the artifact of stableVersion "
            f"{version!r} can be derived"
        )
    segments[hits[0]] = version
    return f"{scheme}://{'/'.join(segments)}"


def budget_start_date(today: dt.date | None = None) -> str:
    """First day of the current UTC month, the start date the Cost Management API accepts on creation.

    The API rejects a start date before the current month ("past start dates should be selected within
    the timegrain period"), so a fixed date would break the first deploy of a later month. The budget
    ignores later changes of ``timePeriod`` so the date is set once, when the budget is created.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    return f"{today.year:04d}-{today.month:02d}-01T00:00:00Z"


def _timeout(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


class AzureInferenceFunction(pulumi.ComponentResource):
    """An inference function on Azure Functions (Linux Consumption or Flex Consumption).

    :param name: the function's name; every child is named after it.
    :param fn: the validated function spec (``fn.platform == "azure"``).
    :param stack: the stack spec (budget alert recipients).

    Outputs: ``endpoint`` (``https://<app>.azurewebsites.net/api/predict``; empty when
    ``endpoint.enabled`` is false), ``budget_id`` (the Cost Management budget's resource id).
    """

    endpoint: pulumi.Output[str]
    budget_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        fn: FunctionSpec,
        stack: StackSpec,
        opts: ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE, name, {}, opts)
        child = ResourceOptions(parent=self)
        flex = fn.runtime.azure_plan == "flexConsumption"
        if flex and fn.canary_active:
            # Flex Consumption has no deployment slots; the spec lets it through, so stop here, before
            # any child is registered.
            raise pulumi.RunError(
                f"inferops:functions[{name}].traffic.canaryPercent: Flex Consumption has no deployment "
                "slots; run canaries on runtime.azurePlan consumption or set canaryPercent to 0"
            )
        # A destination a diagnostic setting cannot target fails here too, before any child exists.
        try:
            destination = capture_destination_account(fn.capture) if fn.capture.enabled else None
        except ValueError as exc:
            raise pulumi.RunError(f"inferops:functions[{fn.name}].{exc}") from None
        stable_uri = handler_model_uri(artifact_uri_for(fn, fn.stable_version))
        candidate_uri = handler_model_uri(artifact_uri_for(fn, fn.model.version))
        project, stack_name = pulumi.get_project(), pulumi.get_stack()
        tags = cloud_metadata(fn, "azure", stack=stack_name, project=project).tags
        app_name = function_app_name(name, project, stack_name)
        rg_name = scoped_name(project, stack_name, fn.name, max_len=_RG_NAME_MAX, suffix="-rg")

        rg = azure_native.resources.ResourceGroup(
            f"{name}-rg", resource_group_name=rg_name, location=fn.region, tags=tags, opts=child
        )

        storage = azure_native.storage.StorageAccount(
            f"{name}-storage",
            account_name=storage_account_name(name, project, stack_name),
            resource_group_name=rg.name,
            location=fn.region,
            kind="StorageV2",
            sku=azure_native.storage.SkuArgs(name="Standard_LRS"),
            minimum_tls_version="TLS1_2",
            enable_https_traffic_only=True,
            allow_blob_public_access=False,
            # The Functions host and the code package's readers authenticate with Entra ID (managed
            # identity; OAuth is the default for the portal too). Shared keys stay enabled for one
            # client only: azure-native's storage.Blob uploads the code package with the account key
            # (see SHARED_KEY_FOR_PACKAGE_UPLOAD).
            allow_shared_key_access=SHARED_KEY_FOR_PACKAGE_UPLOAD,
            default_to_o_auth_authentication=True,
            tags=tags,
            opts=child,
        )
        container = azure_native.storage.BlobContainer(
            f"{name}-deployments",
            account_name=storage.name,
            resource_group_name=rg.name,
            container_name=DEPLOYMENT_CONTAINER,
            public_access=azure_native.storage.PublicAccess.NONE,
            opts=child,
        )
        blob_endpoint = storage.primary_endpoints.apply(lambda e: e.blob)
        packages = self._code_packages(name, fn, flex, storage, rg, container, child)

        if flex:
            sku = azure_native.web.SkuDescriptionArgs(name="FC1", tier="FlexConsumption")
        else:
            sku = azure_native.web.SkuDescriptionArgs(name="Y1", tier="Dynamic")
        plan = azure_native.web.AppServicePlan(
            f"{name}-plan",
            name=scoped_name(project, stack_name, fn.name, max_len=_PLAN_NAME_MAX, suffix="-plan"),
            resource_group_name=rg.name,
            location=fn.region,
            kind="functionapp",
            reserved=True,  # Linux
            sku=sku,
            tags=tags,
            opts=child,
        )

        def app_settings(version: str, uri: str, slot: str) -> list[azure_native.web.NameValuePairArgs]:
            # Each site runs the package pinned for the model version it serves.
            package_url = packages[version].url
            pairs: list[tuple[str, pulumi.Input[str]]] = []
            if not flex:
                # Flex Consumption rejects these two; its runtime is in functionAppConfig.
                pairs += [("FUNCTIONS_EXTENSION_VERSION", "~4"), ("FUNCTIONS_WORKER_RUNTIME", "python")]
                pairs += [
                    ("WEBSITE_RUN_FROM_PACKAGE", package_url),
                    ("WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID", "SystemAssigned"),
                ]
            pairs += [
                ("AzureWebJobsStorage__accountName", storage.name),
                ("AzureFunctionsJobHost__functionTimeout", _timeout(fn.runtime.timeout_seconds)),
                (HOST_ID_SETTING, host_id(name, project, stack_name, slot)),
                ("MODEL_ID", fn.model.id),
                ("MODEL_VERSION", version),
                ("MODEL_URI", uri),
                ("INFEROPS_FUNCTION_NAME", name),
                ("INFEROPS_SLOT", slot),
                (AUTH_LEVEL_SETTING, "anonymous" if fn.endpoint.public else "function"),
            ]
            pairs += capture_settings(fn, slot)
            return [azure_native.web.NameValuePairArgs(name=k, value=v) for k, v in pairs]

        # The ramp-up rule may only route to a slot that can serve: on an app that exists already, the
        # slot, its identity and its role assignment are updated first and the app (with the rule)
        # after them. On a fresh stack the app must exist before its slot can be created, so the rule
        # waits for the next deploy (like AWS without a stable build) and the export says 0.
        app_exists = fn.canary_active and _site_exists(app_name, rg_name)
        routed_percent = fn.canary_percent if app_exists else 0
        if fn.canary_active and not app_exists:
            pulumi.log.warn(
                f"{fn.name}: the function app does not exist yet, so its canary slot is created by this "
                f"deploy and no request is routed to it; the next deploy starts the {fn.canary_percent}% canary",
                resource=self,
            )

        def site_config(version: str, uri: str, slot: str, rules: list[azure_native.web.RampUpRuleArgs] | None) -> Any:
            if flex:
                # A plain mapping, not SiteConfigArgs: the SDK's Args class fills in
                # netFrameworkVersion "v4.6", which None cannot remove, and Flex rejects it as it
                # rejects ftpsState (pulumi/pulumi-azure-native#4168, Azure/azure-cli#31414). FTP is
                # switched off through the basic-publishing-credentials policy below instead.
                return {
                    "appSettings": app_settings(version, uri, slot),
                    "minTlsVersion": "1.2",
                    "scmMinTlsVersion": "1.2",
                    "remoteDebuggingEnabled": False,
                }
            return azure_native.web.SiteConfigArgs(
                app_settings=app_settings(version, uri, slot),
                min_tls_version="1.2",
                scm_min_tls_version="1.2",
                ftps_state="Disabled",
                remote_debugging_enabled=False,
                linux_fx_version=f"Python|{PYTHON_VERSION}",
                function_app_scale_limit=fn.scaling.max_instances,
                # An explicit empty list clears a previous canary's rule on rollback.
                experiments=None if rules is None else azure_native.web.ExperimentsArgs(ramp_up_rules=rules),
            )

        function_app_config = None
        if flex:
            # Always-ready instances for the HTTP trigger group: the spec's minInstances.
            always_ready = None
            if fn.scaling.min_instances:
                always_ready = [
                    azure_native.web.FunctionsAlwaysReadyConfigArgs(
                        name="http", instance_count=fn.scaling.min_instances
                    )
                ]
            function_app_config = azure_native.web.FunctionAppConfigArgs(
                deployment=azure_native.web.FunctionsDeploymentArgs(
                    storage=azure_native.web.FunctionsDeploymentStorageArgs(
                        type="blobContainer",
                        value=pulumi.Output.concat(blob_endpoint, container.name),
                        authentication=azure_native.web.FunctionsDeploymentStorageAuthenticationArgs(
                            type="SystemAssignedIdentity"
                        ),
                    )
                ),
                runtime=azure_native.web.FunctionsRuntimeArgs(name="python", version=PYTHON_VERSION),
                scale_and_concurrency=azure_native.web.FunctionsScaleAndConcurrencyArgs(
                    maximum_instance_count=fn.scaling.max_instances,
                    instance_memory_mb=fn.runtime.memory_mb,
                    always_ready=always_ready,
                ),
            )

        identity = azure_native.web.ManagedServiceIdentityArgs(
            type=azure_native.web.ManagedServiceIdentityType.SYSTEM_ASSIGNED
        )
        # What the production app and its canary slot share: same plan, identity kind and hardening.
        site_args: dict[str, Any] = {
            "resource_group_name": rg.name,
            "location": fn.region,
            "kind": "functionapp,linux",
            "reserved": True,
            "server_farm_id": plan.id,
            "identity": identity,
            "https_only": True,
            "public_network_access": None if fn.endpoint.enabled else "Disabled",
            "tags": tags,
        }

        subscription_id = azure_native.authorization.get_client_config_output().subscription_id
        blob_owner = pulumi.Output.concat(
            "/subscriptions/",
            subscription_id,
            "/providers/Microsoft.Authorization/roleDefinitions/",
            STORAGE_BLOB_DATA_OWNER,
        )

        def storage_access(
            resource_name: str,
            site: azure_native.web.WebApp | azure_native.web.WebAppSlot,
        ) -> azure_native.authorization.RoleAssignment:
            return azure_native.authorization.RoleAssignment(
                resource_name,
                principal_id=site.identity.apply(lambda i: i.principal_id if i else ""),
                principal_type="ServicePrincipal",
                role_definition_id=blob_owner,
                scope=storage.id,
                description=f"inferops: {name} reaches its host storage and code package with its identity",
                opts=child,
            )

        def canary_slot(after: list[pulumi.Resource]) -> list[pulumi.Resource]:
            # ``name`` is the app's name as a plain string, so the slot does not wait for the app's
            # own update when the app exists already (``after`` is then empty).
            slot = azure_native.web.WebAppSlot(
                f"{name}-{CANARY_SLOT}",
                name=app_name,
                slot=CANARY_SLOT,
                site_config=site_config(fn.model.version, candidate_uri, CANARY_SLOT, None),
                **site_args,
                # Its WEBSITE_RUN_FROM_PACKAGE names the package blob, which must exist first.
                opts=ResourceOptions.merge(child, ResourceOptions(depends_on=[*after, packages[fn.model.version]])),
            )
            access = storage_access(f"{name}-{CANARY_SLOT}-storage-access", slot)
            sticky = azure_native.web.WebAppSlotConfigurationNames(
                f"{name}-slot-settings",
                name=app_name,
                resource_group_name=rg.name,
                app_setting_names=list(SLOT_STICKY_SETTINGS),
                opts=ResourceOptions.merge(child, ResourceOptions(depends_on=after or None)),
            )
            return [slot, access, sticky]

        # The slot (and what it needs to serve) before the app whose rule routes to it.
        ready: list[pulumi.Resource] = canary_slot([]) if app_exists else []
        ramp_up_rules = []
        if routed_percent:
            # The host name Azure gave the slot, not ``<app>-canary``: App Service cuts the site name
            # at 40 and the slot name at 19 characters and may append 4 random characters
            # (learn.microsoft.com/azure/app-service/deploy-staging-slots, "Add a slot"), so only the
            # slot's own defaultHostName is sure to route (Azure/azure-cli#30743 fixed the same bug).
            slot_resource = next(r for r in ready if isinstance(r, azure_native.web.WebAppSlot))
            ramp_up_rules.append(
                azure_native.web.RampUpRuleArgs(
                    name=CANARY_SLOT,
                    action_host_name=slot_resource.default_host_name,
                    reroute_percentage=float(routed_percent),
                )
            )
        app = azure_native.web.WebApp(
            f"{name}-app",
            name=app_name,
            site_config=site_config(fn.stable_version, stable_uri, "production", ramp_up_rules),
            function_app_config=function_app_config,
            **site_args,
            # The package it runs from (Consumption) or deploys (Flex) is uploaded first.
            opts=ResourceOptions.merge(child, ResourceOptions(depends_on=[*ready, packages[fn.stable_version]])),
        )
        app_access = storage_access(f"{name}-storage-access", app)
        late = canary_slot([app]) if fn.canary_active and not app_exists else []
        if flex:
            stable_package = packages[fn.stable_version]
            self._one_deploy(name, app, rg, stable_package.url, [stable_package, app_access], child)
            # FTP off on Flex, where siteConfig.ftpsState is rejected: basic publishing credentials
            # for FTP are disallowed instead (learn.microsoft.com/azure/app-service/configure-basic-auth-disable).
            azure_native.web.WebAppFtpAllowed(
                f"{name}-ftp-off",
                name=app.name,
                resource_group_name=rg.name,
                allow=False,
                opts=child,
            )

        slot_site = next((r for r in [*ready, *late] if isinstance(r, azure_native.web.WebAppSlot)), None)
        #: Where the capture records land (None when capture is disabled): the stack's ``captureUri``.
        self.capture_uri = self._capture(
            name, fn, destination, tags, rg, rg_name, app_name, app, slot_site, subscription_id
        )

        recipients = list(dict.fromkeys([*stack.budget_alert_emails, fn.finops.owner]))
        budget = azure_native.consumption.Budget(
            f"{name}-budget",
            scope=rg.id,
            amount=fn.finops.monthly_budget_usd,
            category="Cost",
            time_grain="Monthly",
            time_period=azure_native.consumption.BudgetTimePeriodArgs(start_date=budget_start_date()),
            # The stack-scoped value the resources carry (design contract 1).
            filter=azure_native.consumption.BudgetFilterArgs(
                tags=azure_native.consumption.BudgetComparisonExpressionArgs(
                    name=FUNCTION_KEY, operator="In", values=[tags[FUNCTION_KEY]]
                )
            ),
            notifications={
                f"actual-{pct}-percent": azure_native.consumption.NotificationArgs(
                    enabled=True,
                    operator="GreaterThan",
                    threshold=float(pct),
                    threshold_type="Actual",
                    contact_emails=recipients,
                )
                for pct in fn.finops.alert_thresholds_percent
            },
            opts=ResourceOptions.merge(child, ResourceOptions(ignore_changes=["timePeriod"])),
        )

        if fn.endpoint.enabled:
            self.endpoint = pulumi.Output.concat("https://", app.default_host_name, PREDICT_PATH)
        else:
            self.endpoint = pulumi.Output.from_input("")
        self.budget_id = budget.id
        self.canary_percent = pulumi.Output.from_input(routed_percent)
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "budgetId": self.budget_id,
                "canaryPercent": self.canary_percent,
                "captureUri": self.capture_uri,
            }
        )

    def _capture(
        self,
        name: str,
        fn: FunctionSpec,
        destination: tuple[str, str] | None,
        tags: dict[str, str],
        rg: azure_native.resources.ResourceGroup,
        rg_name: str,
        app_name: str,
        app: azure_native.web.WebApp,
        slot: azure_native.web.WebAppSlot | None,
        subscription_id: pulumi.Output[str],
    ) -> pulumi.Output[str] | None:
        """Diagnostic setting (``FunctionAppLogs``) on each site -> a storage account; the ``captureUri``.

        ``destination`` is ``capture.destination`` as ``(account, resource group)``, None for an account
        of the component's own.

        Azure Monitor, not the handler, writes the records: the handler logs each one through
        ``logging`` (functions/capture.py), the host forwards it as a ``FunctionAppLogs`` record, and the
        diagnostic setting delivers those hourly to ``insights-logs-functionapplogs/`` of the account.
        """
        child = ResourceOptions(parent=self)
        if not fn.capture.enabled:
            return None
        project, stack_name = pulumi.get_project(), pulumi.get_stack()
        if destination is None:
            account = azure_native.storage.StorageAccount(
                f"{name}-capture",
                account_name=capture_account_name(name, project, stack_name),
                resource_group_name=rg.name,
                # "The storage account needs to be in the same region as the resource being monitored"
                # (diagnostic-settings.md, "Destination limitations").
                location=fn.region,
                # Not Premium LRS, not a hierarchical namespace: neither is a supported destination
                # (diagnostic-settings.md; resource-logs-collect-storage.md on Data Lake Storage Gen2).
                kind="StorageV2",
                sku=azure_native.storage.SkuArgs(name="Standard_LRS"),
                is_hns_enabled=False,
                minimum_tls_version="TLS1_2",
                enable_https_traffic_only=True,
                allow_blob_public_access=False,
                # Readers (drift check) authenticate with Entra ID. Azure Monitor writes through its
                # own service path, not with an account key the program hands it: no key leaves Azure.
                allow_shared_key_access=False,
                default_to_o_auth_authentication=True,
                tags=tags,
                opts=child,
            )
            azure_native.storage.ManagementPolicy(
                f"{name}-capture-lifecycle",
                account_name=account.name,
                resource_group_name=rg.name,
                management_policy_name=CAPTURE_POLICY_NAME,
                policy=capture_lifecycle(fn.capture.retention_days),
                opts=child,
            )
            account_name: pulumi.Input[str] = account.name
            account_id: pulumi.Input[str] = account.id
        else:
            given, group = destination
            pulumi.log.warn(
                f"{fn.name}: capture.retentionDays ({fn.capture.retention_days}) is not applied to the existing "
                f"account {given}: an account has one lifecycle policy ('default'), which its owner manages",
                resource=self,
            )
            account_name = given
            account_id = pulumi.Output.concat(
                "/subscriptions/",
                subscription_id,
                f"/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{given}",
            )
        # Each Azure resource needs its own diagnostic setting (diagnostic-settings.md): the slot is a
        # resource of its own (Microsoft.Web/sites/slots), so it gets one too, and Pulumi deletes it
        # before the slot on rollback ("first delete its diagnostic settings").
        sites: list[tuple[str, azure_native.web.WebApp | azure_native.web.WebAppSlot]] = [(f"{name}-capture-logs", app)]
        if slot is not None:
            sites.append((f"{name}-{CANARY_SLOT}-capture-logs", slot))
        for resource_name, site in sites:
            azure_native.monitor.DiagnosticSetting(
                resource_name,
                name=CAPTURE_SETTING_NAME,
                resource_uri=site.id,
                storage_account_id=account_id,
                logs=[azure_native.monitor.DiagnosticsLogSettingsArgs(category=CAPTURE_CATEGORY, enabled=True)],
                opts=child,
            )
        return pulumi.Output.all(account_name, subscription_id).apply(
            lambda a: capture_uri(a[0], a[1], rg_name, app_name)
        )

    def _code_packages(
        self,
        name: str,
        fn: FunctionSpec,
        flex: bool,
        storage: azure_native.storage.StorageAccount,
        rg: azure_native.resources.ResourceGroup,
        container: azure_native.storage.BlobContainer,
        child: ResourceOptions,
    ) -> dict[str, azure_native.storage.Blob]:
        """The code package built from ``functions/``, as one blob per model version in use.

        The blob is named by the package's content hash, so a code change gives a new name, a new
        package URL on the sites and a redeploy, and reverting the code gives the old name back.
        Packages are pinned like AWS's builds: while ``model.version`` differs from
        ``stableVersion`` (a canary, running or stopped), the stable version's package keeps the blob
        it already names (``ignore_changes``), so production keeps its code and only the slot runs
        new code; on creation it takes the current build. Promotion turns the candidate's package into
        the stable one (same resource), rollback by version unfreezes it and it takes the current
        build. Replaced blobs are kept (``retain_on_delete``): a site may still name them, and two
        versions' resources can name the same content. The container holds a few kilobytes per code
        version.
        """
        try:
            built = code_package.build_package(code_package.FUNCTIONS_DIR)
        except code_package.PackageError as exc:
            raise pulumi.RunError(f"inferops:functions[{name}]: code package: {exc}") from None
        path = code_package.write_package(built, code_package.package_cache_dir())

        def pinned(version: str, frozen: bool) -> azure_native.storage.Blob:
            return azure_native.storage.Blob(
                f"{name}-package-{version}",
                account_name=storage.name,
                resource_group_name=rg.name,
                container_name=container.name,
                blob_name=code_package.package_blob_name(name, built, flex=flex),
                type=azure_native.storage.BlobType.BLOCK,
                source=pulumi.FileAsset(str(path)),
                content_type="application/zip",
                # Stored as the blob's Content-MD5 (the provider sends it as x-ms-blob-content-md5:
                # custom_storage_azidentity.go ``create``, ``HTTPHeaders.BlobContentMD5``), which readers
                # can check the bytes against; the service does not validate that header on upload
                # ("this hash is not validated", Azure/azure-rest-api-specs, Microsoft.BlobStorage
                # blob.json, BlobContentMD5). Like source and blobName it forces a replacement.
                content_md5=built.md5_base64,
                metadata={"sha256": built.sha256},
                opts=ResourceOptions.merge(
                    child,
                    ResourceOptions(
                        retain_on_delete=True,
                        ignore_changes=list(_PACKAGE_CONTENT) if frozen else None,
                    ),
                ),
            )

        packages = {fn.stable_version: pinned(fn.stable_version, frozen=fn.stable_version != fn.model.version)}
        if fn.canary_active:
            packages[fn.model.version] = pinned(fn.model.version, frozen=False)
        return packages

    def _one_deploy(
        self,
        name: str,
        app: azure_native.web.WebApp,
        rg: azure_native.resources.ResourceGroup,
        package_url: pulumi.Output[str],
        after: list[pulumi.Resource],
        child: ResourceOptions,
    ) -> azure_native.resources.Resource:
        """Deploy the package to a Flex Consumption app with one deploy (``sites/<app>/extensions/onedeploy``).

        azure-native has no typed resource for it, so the generic ARM resource declares it, as the
        Bicep example of the Functions docs does (``packageUri``, ``remoteBuild: false``: the package
        is complete). Its ``packageUri`` changes with the package hash, which re-runs the deployment.
        """
        return azure_native.resources.Resource(
            f"{name}-onedeploy",
            resource_group_name=rg.name,
            resource_provider_namespace="Microsoft.Web",
            parent_resource_path=app.name.apply(lambda n: f"sites/{n}"),
            resource_type="extensions",
            # The ARM name; the SDK calls it resource_name_ (resource_name is the Pulumi name).
            resource_name_="onedeploy",
            api_version=ONEDEPLOY_API_VERSION,
            properties={"packageUri": package_url, "remoteBuild": False},
            # The app's identity must reach the deployment container before the platform pulls.
            # Kept on delete: the API has GET (WebApps_GetOneDeployStatus) and PUT
            # (WebApps_CreateOneDeployOperation) on this path and no DELETE, and the deployed code goes
            # with the app; a DELETE the provider sent would fail a destroy or a switch to Consumption.
            opts=ResourceOptions.merge(child, ResourceOptions(depends_on=after, retain_on_delete=True)),
        )


#: How azure-native reports an HTTP 404 of an invoke: ``request failed <resource id>: Status=404
#: Code="ResourceNotFound" Message="..."`` (provider/pkg/provider/provider.go ``Invoke`` wraps the error
#: of provider/pkg/azure/client_azcore.go, ``PulumiAzcoreResponseError.Error``: ``Status=%d Code="%s"
#: Message="%s"``); a missing resource group is a 404 too (``ResourceGroupNotFound``). Only the status
#: field counts: the resource id and the message name the subscription, group and app, and a "404" or
#: "notfound" in those must not turn a 403 or a 500 into "absent".
_NOT_FOUND_RE = re.compile(r"\bStatus=404\b")


def _site_exists(app_name: str, resource_group: str) -> bool:
    """Whether the function app exists in Azure (a read; only asked while a canary is configured)."""
    try:
        azure_native.web.get_web_app(name=app_name, resource_group_name=resource_group)
    except Exception as exc:  # the provider's invoke error: only HTTP 404 means "does not exist"
        if _NOT_FOUND_RE.search(str(exc)):
            return False
        raise
    return True
