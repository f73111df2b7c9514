"""The Azure component, through the whole program under Pulumi's mocks (dev stack and edited copies)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import inspect
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pulumi_azure_native as azure_native
import pytest

from components import package
from components.azure import (
    STORAGE_BLOB_DATA_OWNER,
    artifact_uri_for,
    budget_start_date,
    function_app_name,
    host_id,
    storage_account_name,
)
from components.spec import FunctionSpec, parse_stack_config
from inferops.harness import ProgramError, ProgramRun, RecordingMocks, RegisteredResource
from tests.conftest import DESIGN_KEYS, FUNCTION_KEY, function_config

NAME = "churn-predictor"
COMPONENT = "inferops:azure:InferenceFunction"
RG = "azure-native:resources:ResourceGroup"
STORAGE = "azure-native:storage:StorageAccount"
CONTAINER = "azure-native:storage:BlobContainer"
BLOB = "azure-native:storage:Blob"
ONEDEPLOY = "azure-native:resources:Resource"
PLAN = "azure-native:web:AppServicePlan"
APP = "azure-native:web:WebApp"
SLOT = "azure-native:web:WebAppSlot"
STICKY = "azure-native:web:WebAppSlotConfigurationNames"
ROLE = "azure-native:authorization:RoleAssignment"
BUDGET = "azure-native:consumption:Budget"
DIAGNOSTICS = "azure-native:monitor:DiagnosticSetting"
LIFECYCLE = "azure-native:storage:ManagementPolicy"

#: The design contract's keys (plus function-name and stack), written out here so a regression in
#: tags.py shows.
REQUIRED_KEYS = DESIGN_KEYS | {FUNCTION_KEY, "stack"}
#: Built-in roles far broader than a function needs.
BROAD_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",  # Owner
    "b24988ac-6180-42a0-ab88-20f7382dd24c",  # Contributor
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",  # User Access Administrator
}
RunEdited = Callable[[Callable[[dict[str, Any]], None]], ProgramRun]


# --- helpers ---------------------------------------------------------------------------------------


def component(run: ProgramRun, name: str = NAME) -> RegisteredResource:
    found = [r for r in run.resources if r.type == COMPONENT and r.name == name]
    assert len(found) == 1, f"expected one {COMPONENT} named {name}"
    return found[0]


def children(run: ProgramRun, name: str = NAME) -> list[RegisteredResource]:
    return run.children_of(component(run, name).urn)


def one(run: ProgramRun, typ: str, name: str = NAME) -> RegisteredResource:
    found = [r for r in children(run, name) if r.type == typ]
    assert len(found) == 1, f"expected one {typ}, got {[r.name for r in found]}"
    return found[0]


def host_storage(run: ProgramRun, name: str = NAME) -> RegisteredResource:
    """The host storage account (the capture account is another StorageAccount child)."""
    found = [r for r in children(run, name) if r.type == STORAGE and r.name == f"{name}-storage"]
    assert len(found) == 1
    return found[0]


def settings(site: RegisteredResource) -> dict[str, str]:
    pairs = site.inputs["siteConfig"]["appSettings"]
    out = {p["name"]: p["value"] for p in pairs}
    assert len(out) == len(pairs), "duplicate app setting names"
    return out


def only_azure(config: dict[str, Any]) -> None:
    """Keep the azure functions only: edited runs stay fast and independent of other platforms."""
    config["inferops:functions"] = [f for f in config["inferops:functions"] if f["platform"] == "azure"]


def start_canary(percent: int) -> Callable[[dict[str, Any]], None]:
    def edit(config: dict[str, Any]) -> None:
        only_azure(config)
        model = function_config(config, NAME)["model"]
        model["version"] = "1.5.0"
        model["artifactUri"] = model["artifactUri"].replace("/1.4.0/", "/1.5.0/")
        function_config(config, NAME)["traffic"] = {"canaryPercent": percent}

    return edit


def spec_of(config: dict[str, Any], name: str = NAME) -> FunctionSpec:
    return next(f for f in parse_stack_config(config).functions if f.name == name)


@pytest.fixture(scope="module")
def canary_run(dev_config: dict[str, Any]) -> ProgramRun:
    import copy

    from inferops.harness import run_program
    from tests.conftest import DEV_STACK

    config = copy.deepcopy(dev_config)
    start_canary(25)(config)
    return run_program(DEV_STACK, config=config, stack="dev", mocks=ExistingApp())


class ExistingApp(RecordingMocks):
    """A stack whose function app exists already (deployed stable first): Azure finds it."""

    def read_cloud(self, token: str, args: dict[str, Any]) -> dict[str, Any] | None:
        return {"name": args.get("name"), "resourceGroup": args.get("resourceGroupName")}


# --- resources and key inputs ----------------------------------------------------------------------


def test_dev_stack_registers_the_azure_resources(dev_run: ProgramRun) -> None:
    types = sorted(r.type for r in children(dev_run))
    # No canary in the dev stack (version == stableVersion): no slot, no sticky settings. Capture is
    # on by default: a capture account, its lifecycle policy and the app's diagnostic setting.
    assert types == sorted([RG, STORAGE, CONTAINER, BLOB, PLAN, APP, ROLE, BUDGET, STORAGE, LIFECYCLE, DIAGNOSTICS])
    comp = component(dev_run)
    assert all(r.parent == comp.urn for r in children(dev_run)), "every child is parented to the component"
    assert all(r.name.startswith(f"{NAME}-") for r in children(dev_run)), "child names derive from the name"


def test_dev_stack_consumption_plan_and_app(dev_run: ProgramRun, dev_config: dict[str, Any]) -> None:
    fn = spec_of(dev_config)
    plan = one(dev_run, PLAN)
    assert plan.inputs["sku"] == {"name": "Y1", "tier": "Dynamic"}
    assert plan.inputs["reserved"] is True and plan.inputs["kind"] == "functionapp"
    app = one(dev_run, APP)
    assert app.inputs["kind"] == "functionapp,linux"
    assert app.inputs["serverFarmId"] == plan.outputs["id"]
    assert app.inputs["identity"] == {"type": "SystemAssigned"}
    assert app.inputs["httpsOnly"] is True
    site = app.inputs["siteConfig"]
    assert site["minTlsVersion"] == "1.2" and site["ftpsState"] == "Disabled"
    assert site["linuxFxVersion"] == "Python|3.11"
    assert site["functionAppScaleLimit"] == fn.scaling.max_instances
    assert "functionAppConfig" not in app.inputs
    s = settings(app)
    assert s["FUNCTIONS_EXTENSION_VERSION"] == "~4" and s["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert s["MODEL_ID"] == fn.model.id
    assert s["MODEL_VERSION"] == fn.model.version == "1.4.0"
    assert s["MODEL_URI"] == fn.model.artifact_for(fn.model.version)
    assert s["AzureFunctionsJobHost__functionTimeout"] == "00:01:00"  # timeoutSeconds: 60


def test_every_resource_is_in_the_functions_region(dev_run: ProgramRun) -> None:
    located = [r for r in children(dev_run) if "location" in r.inputs]
    assert {r.type for r in located} >= {RG, STORAGE, PLAN, APP}
    assert {r.inputs["location"] for r in located} == {"eastus"}


def test_storage_is_private_and_reached_by_identity(dev_run: ProgramRun) -> None:
    storage = host_storage(dev_run)
    i = storage.inputs
    assert re.fullmatch(r"[a-z0-9]{3,24}", i["accountName"])
    assert i["minimumTlsVersion"] == "TLS1_2"
    assert i["enableHttpsTrafficOnly"] is True
    assert i["allowBlobPublicAccess"] is False
    # Shared keys stay on for azure-native's Blob upload only, which signs with the account key
    # (provider source custom_storage_azidentity.go: newBlockBlobClient -> newSharedKeyCredential;
    # pulumi/pulumi-azure-native#2015 open). Every other client uses Entra ID: OAuth by default, no key
    # in any app setting (below).
    assert i["allowSharedKeyAccess"] is True
    assert i["defaultToOAuthAuthentication"] is True
    container = one(dev_run, CONTAINER)
    assert container.inputs["publicAccess"] == "None"
    assert container.inputs["accountName"] == i["accountName"]
    s = settings(one(dev_run, APP))
    assert s["AzureWebJobsStorage__accountName"] == i["accountName"]
    assert "AzureWebJobsStorage" not in s, "no connection string with an account key"
    assert s["WEBSITE_RUN_FROM_PACKAGE"].startswith(f"https://{i['accountName']}.blob.core.windows.net/deployments/")
    for name, value in s.items():
        assert not re.search(r"AccountKey=|SharedAccessSignature=|[?&]sig=", value), f"{name} holds a secret"


def test_metadata_on_every_taggable_resource(dev_run: ProgramRun, dev_config: dict[str, Any]) -> None:
    fn = spec_of(dev_config)
    tagged = 0
    for r in children(dev_run):
        module, cls = r.type.split(":")[1:]
        args_cls = getattr(getattr(azure_native, module), f"{cls}Args")
        if "tags" not in inspect.signature(args_cls.__init__).parameters:
            assert "tags" not in r.inputs
            continue
        tagged += 1
        tags = r.inputs.get("tags")
        assert isinstance(tags, dict), f"{r.type} {r.name} carries no tags"
        assert set(tags) == REQUIRED_KEYS | {"memory-mb"}, f"{r.type} {r.name}: {set(tags) ^ REQUIRED_KEYS}"
        for key, value in tags.items():
            assert not re.search(r"[<>%&\\?/]", key) and len(key) <= 512
            assert isinstance(value, str) and len(value) <= 256
        assert tags["function-name"] == f"inferops-dev-{NAME}" and tags["stack"] == "dev"
        assert tags["managed-by"] == "inferops"
        assert tags["model-version"] == fn.model.version
        assert tags["fairness-score"] == "0.88"
        assert tags["monthly-budget-usd"] == "150"
        assert tags["expected-monthly-requests"] == "1000000"
        assert tags["avg-duration-ms"] == "200"
        assert tags["cost-center"] == "ml-platform" and tags["risk-tier"] == "limited"
        assert tags["model-card-url"] == fn.model.card_url
        # The Consumption plan has no memory setting: the pack reads the declared memory from this tag
        # (policies/inferops_policy/finops.py) and otherwise prices the 1,536 MB maximum.
        assert tags["memory-mb"] == str(fn.runtime.memory_mb) == "512"
    assert tagged == 5  # resource group, storage and capture accounts, plan, app


def test_memory_tag_follows_the_declared_memory(run_edited: RunEdited) -> None:
    def edit(config: dict[str, Any]) -> None:
        only_azure(config)
        function_config(config, NAME)["runtime"]["memoryMb"] = 200

    run = run_edited(edit)
    tagged = [r for r in children(run) if r.type in (RG, STORAGE, PLAN, APP)]
    assert len(tagged) == 5  # the capture account carries the tag too
    for r in tagged:
        assert r.inputs["tags"]["memory-mb"] == "200"


def test_approval_ref_is_tagged_when_set(run_edited: RunEdited) -> None:
    def edit(config: dict[str, Any]) -> None:
        only_azure(config)
        function_config(config, NAME)["model"]["approvalRef"] = "https://github.com/example/models/pull/7"

    run = run_edited(edit)
    tagged = [r for r in children(run) if r.type in (RG, STORAGE, PLAN, APP)]
    assert len(tagged) == 5  # the capture account too
    for r in tagged:
        assert r.inputs["tags"]["approval-ref"] == "https://github.com/example/models/pull/7"


# --- budget ----------------------------------------------------------------------------------------


def test_budget_equals_the_spec(dev_run: ProgramRun, dev_config: dict[str, Any]) -> None:
    fn = spec_of(dev_config)
    budget = one(dev_run, BUDGET)
    i = budget.inputs
    assert i["amount"] == fn.finops.monthly_budget_usd == 150
    assert i["scope"] == one(dev_run, RG).outputs["id"]
    assert i["category"] == "Cost" and i["timeGrain"] == "Monthly"
    assert re.fullmatch(r"\d{4}-\d{2}-01T00:00:00Z", i["timePeriod"]["startDate"])
    # Stack-scoped: the value the resources carry (design contract 1).
    assert i["filter"] == {"tags": {"name": "function-name", "operator": "In", "values": [f"inferops-dev-{NAME}"]}}
    notes = i["notifications"]
    thresholds = sorted(n["threshold"] for n in notes.values())
    assert thresholds == fn.finops.alert_thresholds_percent == [50, 80, 100]
    for n in notes.values():
        assert n["enabled"] is True and n["operator"] == "GreaterThan" and n["thresholdType"] == "Actual"
        assert n["contactEmails"] == ["ml-platform-alerts@example.com", "ml-platform@example.com"]
    assert dev_run.exports[NAME]["budgetId"] == budget.outputs["id"]


def test_budget_follows_edited_amount_and_thresholds(run_edited: RunEdited) -> None:
    def edit(config: dict[str, Any]) -> None:
        only_azure(config)
        config["inferops:budgetAlertEmails"] = []
        finops = function_config(config, NAME)["finops"]
        finops.update(monthlyBudgetUsd=275.5, alertThresholdsPercent=[75, 120])

    budget = one(run_edited(edit), BUDGET)
    assert budget.inputs["amount"] == 275.5
    notes = budget.inputs["notifications"].values()
    assert sorted(n["threshold"] for n in notes) == [75, 120]
    # With no stack-wide subscribers, the owner still hears about the budget.
    assert all(n["contactEmails"] == ["ml-platform@example.com"] for n in notes)


def test_budget_start_date_is_first_of_the_current_month() -> None:
    assert budget_start_date(dt.date(2027, 3, 17)) == "2027-03-01T00:00:00Z"
    assert budget_start_date(dt.date(2026, 12, 1)) == "2026-12-01T00:00:00Z"
    today = dt.datetime.now(dt.UTC).date()
    assert budget_start_date() == f"{today:%Y-%m}-01T00:00:00Z"


# --- canary and rollback ---------------------------------------------------------------------------


def test_canary_slot_and_routing_equal_the_spec(canary_run: ProgramRun) -> None:
    app = one(canary_run, APP)
    slot = one(canary_run, SLOT)
    assert slot.inputs["slot"] == "canary"
    assert slot.inputs["name"] == app.inputs["name"]
    assert slot.inputs["serverFarmId"] == app.inputs["serverFarmId"]
    assert slot.inputs["httpsOnly"] is True and slot.inputs["siteConfig"]["minTlsVersion"] == "1.2"
    assert slot.inputs["identity"] == {"type": "SystemAssigned"}
    canary, production = settings(slot), settings(app)
    assert canary["MODEL_VERSION"] == "1.5.0" and "/1.5.0/" in canary["MODEL_URI"]
    assert production["MODEL_VERSION"] == "1.4.0" and "/1.4.0/" in production["MODEL_URI"]
    assert canary["MODEL_ID"] == production["MODEL_ID"]
    rules = app.inputs["siteConfig"]["experiments"]["rampUpRules"]
    host = slot.outputs["defaultHostName"]
    assert rules == [{"name": "canary", "actionHostName": host, "reroutePercentage": 25}]
    sticky = one(canary_run, STICKY)
    assert sticky.inputs["name"] == app.inputs["name"]
    assert {"MODEL_VERSION", "MODEL_URI"} <= set(sticky.inputs["appSettingNames"])
    # The slot reaches the host storage with its own identity.
    roles = [r for r in children(canary_run) if r.type == ROLE]
    assert sorted(r.inputs["principalId"] for r in roles) == sorted(
        [app.outputs["identity"]["principalId"], slot.outputs["identity"]["principalId"]]
    )
    assert canary_run.exports[NAME]["canaryPercent"] == 25


def test_canary_rule_is_applied_after_the_slot_can_serve(canary_run: ProgramRun, run_edited: RunEdited) -> None:
    """Azure sends ``reroutePercentage`` of requests to ``actionHostName`` as soon as the app's site
    config has the rule (learn.microsoft.com/azure/app-service/deploy-staging-slots#route-traffic):
    the slot, its identity's role assignment and its sticky settings must exist first."""
    app, slot = one(canary_run, APP), one(canary_run, SLOT)
    slot_access = next(r for r in children(canary_run) if r.type == ROLE and r.name.endswith("-canary-storage-access"))
    assert {slot.urn, slot_access.urn, one(canary_run, STICKY).urn} <= set(app.dependencies)
    assert app.urn not in slot.dependencies  # the slot names the existing app by its name
    # A fresh stack: the app must be created before its slot, so nothing is routed yet.
    fresh = run_edited(start_canary(25))
    assert one(fresh, APP).inputs["siteConfig"]["experiments"] == {"rampUpRules": []}
    assert one(fresh, APP).urn in one(fresh, SLOT).dependencies
    assert fresh.exports[NAME]["canaryPercent"] == 0
    assert any("next deploy starts the 25% canary" in w for w in fresh.warnings)


def test_canary_slot_is_tagged(canary_run: ProgramRun) -> None:
    tags = one(canary_run, SLOT).inputs["tags"]
    assert set(tags) == REQUIRED_KEYS | {"memory-mb"} and tags["model-version"] == "1.5.0"
    assert tags["memory-mb"] == "512"


def assert_serves_stable_only(run: ProgramRun) -> None:
    assert [r for r in children(run) if r.type in (SLOT, STICKY)] == []
    app = one(run, APP)
    s = settings(app)
    assert s["MODEL_VERSION"] == "1.4.0" and "/1.4.0/" in s["MODEL_URI"]
    # An explicit empty list, so the update clears the canary's rule on Azure.
    assert app.inputs["siteConfig"]["experiments"] == {"rampUpRules": []}
    assert len([r for r in children(run) if r.type == ROLE]) == 1


def test_rollback_by_setting_canary_percent_to_zero(run_edited: RunEdited) -> None:
    def edit(config: dict[str, Any]) -> None:
        start_canary(25)(config)
        function_config(config, NAME)["traffic"]["canaryPercent"] = 0

    assert_serves_stable_only(run_edited(edit))


def test_rollback_by_setting_version_to_stable_version(run_edited: RunEdited) -> None:
    def edit(config: dict[str, Any]) -> None:
        start_canary(25)(config)
        model = function_config(config, NAME)["model"]
        model["version"] = model["stableVersion"]
        model["artifactUri"] = model["artifactUri"].replace("/1.5.0/", "/1.4.0/")
        function_config(config, NAME)["traffic"]["canaryPercent"] = 0  # the drift loop sets both

    assert_serves_stable_only(run_edited(edit))


def test_stable_artifact_must_be_derivable(run_edited: RunEdited) -> None:
    def edit(config: dict[str, Any]) -> None:
        start_canary(10)(config)
        function_config(config, NAME)["model"]["artifactUri"] = "https://m.blob.core.windows.net/models/latest.json"

    with pytest.raises(ProgramError, match=r"functions\[churn-predictor\]\.model\.artifactUri"):
        run_edited(edit)


def test_artifact_uri_for_replaces_the_version_segment(dev_config: dict[str, Any]) -> None:
    import copy

    config = copy.deepcopy(dev_config)
    function_config(config, NAME)["model"]["artifactUri"] = (
        "https://examplemodels.blob.core.windows.net/models/churn-predictor/1.4.0/model.json"
    )
    start_canary(10)(config)
    fn = spec_of(config)
    assert artifact_uri_for(fn, "1.5.0") == fn.model.artifact_uri
    assert artifact_uri_for(fn, "1.4.0") == (
        "https://examplemodels.blob.core.windows.net/models/churn-predictor/1.4.0/model.json"
    )


def test_templated_artifact_uri_serves_each_version_its_artifact(run_edited: RunEdited) -> None:
    template = "https://examplemodels.blob.core.windows.net/models/churn-predictor/{version}/model.json"

    def edit(config: dict[str, Any]) -> None:
        start_canary(30)(config)
        function_config(config, NAME)["model"]["artifactUri"] = template

    run = run_edited(edit)
    assert settings(one(run, SLOT))["MODEL_URI"] == template.format(version="1.5.0")
    assert settings(one(run, APP))["MODEL_URI"] == template.format(version="1.4.0")


def test_templated_artifact_uri_without_canary(run_edited: RunEdited) -> None:
    def edit(config: dict[str, Any]) -> None:
        only_azure(config)
        model = function_config(config, NAME)["model"]
        model["artifactUri"] = model["artifactUri"].replace("/1.4.0/", "/{version}/")

    uri = settings(one(run_edited(edit), APP))["MODEL_URI"]
    assert uri == "https://examplemodels.blob.core.windows.net/models/churn-predictor/1.4.0/model.json"


# --- access ----------------------------------------------------------------------------------------


def test_endpoint_requires_a_function_key_by_default(dev_run: ProgramRun) -> None:
    app = one(dev_run, APP)
    assert settings(app)["INFEROPS_AUTH_LEVEL"] == "function"
    assert not [r for r in dev_run.resources if r.type.startswith("azure-native:web:WebAppAuthSettings")]
    assert dev_run.exports[NAME]["endpoint"] == f"https://{app.outputs['defaultHostName']}/api/predict"
    assert app.outputs["defaultHostName"] == f"{app.inputs['name']}.azurewebsites.net"


def test_canary_slot_requires_a_function_key_too(canary_run: ProgramRun) -> None:
    assert settings(one(canary_run, SLOT))["INFEROPS_AUTH_LEVEL"] == "function"


def test_public_endpoint_when_the_spec_says_so(run_edited: RunEdited) -> None:
    def edit(config: dict[str, Any]) -> None:
        start_canary(10)(config)
        function_config(config, NAME)["endpoint"] = {"public": True}

    run = run_edited(edit)
    assert settings(one(run, APP))["INFEROPS_AUTH_LEVEL"] == "anonymous"
    assert settings(one(run, SLOT))["INFEROPS_AUTH_LEVEL"] == "anonymous"


def test_disabled_endpoint_closes_public_network_access(run_edited: RunEdited) -> None:
    def edit(config: dict[str, Any]) -> None:
        only_azure(config)
        function_config(config, NAME)["endpoint"] = {"enabled": False}

    run = run_edited(edit)
    assert one(run, APP).inputs["publicNetworkAccess"] == "Disabled"
    assert run.exports[NAME]["endpoint"] == ""


def test_role_assignments_are_narrow(canary_run: ProgramRun) -> None:
    storage = host_storage(canary_run)
    roles = [r for r in children(canary_run) if r.type == ROLE]
    assert roles
    for role in roles:
        guid = role.inputs["roleDefinitionId"].rsplit("/", 1)[-1]
        assert guid == STORAGE_BLOB_DATA_OWNER and guid not in BROAD_ROLES
        assert role.inputs["scope"] == storage.outputs["id"], "scoped to the storage account only"
        assert role.inputs["principalType"] == "ServicePrincipal"
    # No custom role definitions (and so no wildcard actions) anywhere in the component.
    assert not [r for r in children(canary_run) if r.type == "azure-native:authorization:RoleDefinition"]


# --- Flex Consumption ------------------------------------------------------------------------------


def flex(config: dict[str, Any]) -> None:
    only_azure(config)
    fn = function_config(config, NAME)
    fn["runtime"] = {"memoryMb": 2048, "timeoutSeconds": 900, "azurePlan": "flexConsumption"}
    fn["scaling"] = {"minInstances": 2, "maxInstances": 150}


def test_flex_consumption_plan_and_function_app_config(run_edited: RunEdited) -> None:
    run = run_edited(flex)
    assert one(run, PLAN).inputs["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    app = one(run, APP)
    config = app.inputs["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    scale = config["scaleAndConcurrency"]
    assert scale["instanceMemoryMB"] == 2048 and scale["maximumInstanceCount"] == 150
    assert scale["alwaysReady"] == [{"name": "http", "instanceCount": 2}]
    storage = config["deployment"]["storage"]
    account = host_storage(run).inputs["accountName"]
    assert storage["type"] == "blobContainer"
    assert storage["value"] == f"https://{account}.blob.core.windows.net/deployments"
    assert storage["authentication"] == {"type": "SystemAssignedIdentity"}
    s = settings(app)
    # Flex Consumption rejects these settings; its runtime lives in functionAppConfig.
    rejected = {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE"}
    assert not rejected & set(s)
    assert "linuxFxVersion" not in app.inputs["siteConfig"]
    assert s["AzureFunctionsJobHost__functionTimeout"] == "00:15:00"


def test_flex_site_config_sends_neither_net_framework_version_nor_ftps_state(run_edited: RunEdited) -> None:
    """Flex Consumption rejects siteConfig.netFrameworkVersion (which azure-native's SiteConfigArgs
    fills in as "v4.6", pulumi/pulumi-azure-native#4168) and ftpsState (Azure/azure-cli#31414); FTP is
    switched off through the basic-publishing-credentials policy instead."""
    run = run_edited(flex)
    site = one(run, APP).inputs["siteConfig"]
    assert "netFrameworkVersion" not in site and "ftpsState" not in site
    ftp = one(run, "azure-native:web:WebAppFtpAllowed")
    assert ftp.inputs["allow"] is False and ftp.inputs["name"] == one(run, APP).inputs["name"]
    # The SDK default this avoids is real: SiteConfigArgs() does send v4.6.
    assert azure_native.web.SiteConfigArgs().net_framework_version == "v4.6"


def test_consumption_sites_keep_ftps_disabled(canary_run: ProgramRun) -> None:
    for site in (one(canary_run, APP), one(canary_run, SLOT)):
        assert site.inputs["siteConfig"]["ftpsState"] == "Disabled"


def test_every_site_has_its_own_host_id_within_32_characters(canary_run: ProgramRun) -> None:
    """Linux Consumption derives the host ID from the site name cut to 32 characters, so production
    and its slot collide and the second host stops: set AzureFunctionsWebHost__hostId, distinct per
    site, at most 32 (learn.microsoft.com/azure/azure-functions/storage-considerations#host-id-considerations)."""
    ids = [settings(one(canary_run, t))["AzureFunctionsWebHost__hostId"] for t in (APP, SLOT)]
    assert ids[0] != ids[1]
    for host in ids:
        assert re.fullmatch(r"[a-z0-9](-?[a-z0-9])*", host) and len(host) <= 32
    assert "AzureFunctionsWebHost__hostId" in one(canary_run, STICKY).inputs["appSettingNames"]


@pytest.mark.parametrize("name", ["a", "churn-predictor", "fraud-scorer-realtime-transactions-euw1", "x" * 62 + "z"])
def test_host_ids_are_distinct_per_site_and_stack(name: str) -> None:
    ids = {host_id(name, "inferops", st, slot) for st in ("dev", "prod") for slot in ("production", "canary")}
    assert len(ids) == 4
    assert all(len(i) <= 32 and re.fullmatch(r"[a-z0-9](-?[a-z0-9])*", i) for i in ids)


def test_flex_consumption_refuses_a_canary(run_edited: RunEdited) -> None:
    def edit(config: dict[str, Any]) -> None:
        start_canary(10)(config)
        flex(config)

    with pytest.raises(ProgramError, match=r"functions\[churn-predictor\]\.traffic\.canaryPercent"):
        run_edited(edit)


# --- physical names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["a", "churn-predictor", "a-very-long-function-name-x30c", "fraud-scorer-realtime-transactions-euw1", "x" * 63],
)
def test_physical_names_fit_azure_limits(name: str) -> None:
    account = storage_account_name(name, "inferops", "dev")
    assert re.fullmatch(r"[a-z0-9]{3,24}", account)
    assert storage_account_name(name, "inferops", "prod") != account, "stacks must not collide"
    app = function_app_name(name, "inferops", "dev")
    # Microsoft.Web/sites: 2-60 characters, alphanumerics and hyphens, not starting or ending with a
    # hyphen (learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules#microsoftweb).
    # Nothing more: the slot's host name cuts the site name at 40 characters itself (deploy-staging-slots,
    # "Add a slot"), and the ramp-up rule routes to the host name Azure reports for the slot (below).
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{0,58}[a-z0-9]", app)
    assert len(app) <= 52, "a cap that cuts shorter would rename (replace) deployed apps"


# --- az:// model URIs reach the deployed handler ---------------------------------------------------


def test_az_model_uri_works_in_the_deployed_handler(run_edited: RunEdited, monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler cannot read ``az://`` without an account name, so the component hands it the blob's
    https URL, which the handler reads with the app's managed identity (a bearer token for
    https://storage.azure.com/, learn.microsoft.com/rest/api/storageservices/authorize-with-azure-active-directory).
    Called here through the Azure adapter with exactly the app settings the component produces."""
    import io
    import json
    from pathlib import Path

    func = pytest.importorskip("azure.functions")
    import sys
    import types

    from functions import core, function_app

    def edit(config: dict[str, Any]) -> None:
        only_azure(config)
        function_config(config, NAME)["model"]["artifactUri"] = "az://examplemodels/models/churn/{version}/model.json"

    app_settings = settings(one(run_edited(edit), APP))
    assert app_settings["MODEL_URI"] == "https://examplemodels.blob.core.windows.net/models/churn/1.4.0/model.json"
    model = (Path(core.__file__).parent / "models" / "example-linear.json").read_bytes()
    seen: list[tuple[str, str | None]] = []

    def urlopen(req: Any, timeout: float) -> io.BytesIO:
        seen.append((req.full_url, req.get_header("Authorization")))
        return io.BytesIO(model)

    class Credential:
        def get_token(self, scope: str) -> Any:
            assert scope == "https://storage.azure.com/.default"
            return type("Token", (), {"token": "mi-token"})()

    monkeypatch.setattr(core.urllib.request, "urlopen", urlopen)
    # azure-identity is a dependency of the deployed handler (functions/requirements.txt), not of the
    # test environment: the managed identity is stood in for by its one call the handler makes.
    monkeypatch.setitem(sys.modules, "azure.identity", types.SimpleNamespace(DefaultAzureCredential=Credential))
    for key, value in app_settings.items():
        monkeypatch.setenv(key, str(value))
    core.clear_cache()
    try:
        body = {"amount": 20, "age": 30, "country": "US", "device": "ios"}
        resp = function_app.predict(func.HttpRequest(method="POST", url="/api/predict", body=json.dumps(body).encode()))
    finally:
        core.clear_cache()
    assert resp.status_code == 200, resp.get_body()
    assert json.loads(resp.get_body())["model_version"] == "1.4.0"
    assert seen == [(app_settings["MODEL_URI"], "Bearer mi-token")]


# --- code package ----------------------------------------------------------------------------------


def blob_url(run: ProgramRun, blob: RegisteredResource) -> str:
    return (
        f"https://{host_storage(run).inputs['accountName']}.blob.core.windows.net/deployments/{blob.inputs['blobName']}"
    )


def test_code_package_is_a_blob_named_by_its_content_hash(dev_run: ProgramRun) -> None:
    """The program builds the package and uploads it as a blob it declares; the URL Consumption runs
    from names that blob, and the app waits for it."""
    built = package.build_package()
    blob = one(dev_run, BLOB)
    assert blob.name == f"{NAME}-package-1.4.0", "the package pinned for the version production serves"
    i = blob.inputs
    assert i["containerName"] == "deployments" == one(dev_run, CONTAINER).inputs["containerName"]
    assert i["accountName"] == host_storage(dev_run).inputs["accountName"]
    assert i["blobName"] == f"{NAME}-{built.sha256[:12]}.zip"
    # azure-native storage.Blob (pulumi.com/registry/packages/azure-native/api-docs/storage/blob):
    # `type` Block or Append, `source` an asset (not for Append), `contentMd5` the base64 MD5 of the
    # contents, which the service checks the upload against.
    assert i["type"] == "Block"
    assert i["contentType"] == "application/zip"
    assert i["contentMd5"] == base64.b64encode(hashlib.md5(built.data).digest()).decode()
    source = i["source"]
    assert isinstance(source, pulumi.FileAsset)
    assert Path(str(source.path)).read_bytes() == built.data, "the asset is the package built from functions/"
    assert i["metadata"] == {"sha256": built.sha256}
    app = one(dev_run, APP)
    s = settings(app)
    assert s["WEBSITE_RUN_FROM_PACKAGE"] == blob_url(dev_run, blob)
    # Consumption reads the URL with the app's identity (run-functions-from-deployment-package: "use a
    # managed identity to enable the Functions runtime to access the package").
    assert s["WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID"] == "SystemAssigned"
    assert blob.urn in app.dependencies


def test_package_blob_name_follows_the_sources(
    run_edited: RunEdited, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A byte changed in the handler gives a new blob name and URL; untouched sources keep them."""
    src = tmp_path / "functions"
    shutil.copytree(package.FUNCTIONS_DIR, src)
    monkeypatch.setattr(package, "FUNCTIONS_DIR", src)
    first = run_edited(only_azure)
    again = run_edited(only_azure)
    assert one(first, BLOB).inputs["blobName"] == one(again, BLOB).inputs["blobName"]
    (src / "core.py").write_bytes((src / "core.py").read_bytes() + b"\n# changed\n")
    changed = run_edited(only_azure)
    old, new = one(first, BLOB).inputs["blobName"], one(changed, BLOB).inputs["blobName"]
    assert old != new and re.fullmatch(rf"{NAME}-[0-9a-f]{{12}}\.zip", new)
    assert settings(one(changed, APP))["WEBSITE_RUN_FROM_PACKAGE"].endswith(f"/deployments/{new}")


def test_missing_handler_file_fails_the_run_in_one_line(
    run_edited: RunEdited, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "functions"
    shutil.copytree(package.FUNCTIONS_DIR, src)
    (src / "host.json").unlink()
    monkeypatch.setattr(package, "FUNCTIONS_DIR", src)
    with pytest.raises(ProgramError) as err:
        run_edited(only_azure)
    assert f"inferops:functions[{NAME}]: code package: {src / 'host.json'}: cannot read" in str(err.value)


def test_canary_sites_each_run_the_package_pinned_for_their_version(canary_run: ProgramRun) -> None:
    """Like AWS's pinned builds: one package blob per model version in use; production names the
    stable version's, the slot the candidate's, and each site waits for its own."""
    blobs = {b.name: b for b in children(canary_run) if b.type == BLOB}
    assert set(blobs) == {f"{NAME}-package-1.4.0", f"{NAME}-package-1.5.0"}
    stable, candidate = blobs[f"{NAME}-package-1.4.0"], blobs[f"{NAME}-package-1.5.0"]
    slot, app = one(canary_run, SLOT), one(canary_run, APP)
    assert settings(app)["WEBSITE_RUN_FROM_PACKAGE"] == blob_url(canary_run, stable)
    assert settings(slot)["WEBSITE_RUN_FROM_PACKAGE"] == blob_url(canary_run, candidate)
    assert stable.urn in app.dependencies and candidate.urn in slot.dependencies
    # Same sources in one run: the same content, so the same blob name.
    assert stable.inputs["blobName"] == candidate.inputs["blobName"]


def test_flex_deploys_the_package_with_one_deploy(run_edited: RunEdited) -> None:
    """Flex Consumption: "You must use one deploy to publish your code package to the deployment
    container ... If you choose to instead directly upload your package to the container, the package
    doesn't get automatically deployed", and the package file "must be released-package.zip"
    (learn.microsoft.com/azure/azure-functions/functions-infrastructure-as-code, pivot
    flex-consumption-plan, "Deployment sources" / "Deployment package")."""
    run = run_edited(flex)
    built = package.build_package()
    blob = one(run, BLOB)
    assert blob.inputs["blobName"] == f"{NAME}-{built.sha256[:12]}/released-package.zip"
    deploy = one(run, ONEDEPLOY)
    i = deploy.inputs
    assert (i["resourceProviderNamespace"], i["resourceType"], i["resourceName"]) == (
        "Microsoft.Web",
        "extensions",
        "onedeploy",
    )
    app = one(run, APP)
    assert i["parentResourcePath"] == f"sites/{app.inputs['name']}"
    assert i["resourceGroupName"] == one(run, RG).inputs["resourceGroupName"]
    assert i["properties"] == {"packageUri": blob_url(run, blob), "remoteBuild": False}
    # The package is pulled after the app exists and its identity holds the storage role.
    access = [r for r in children(run) if r.type == ROLE and r.name == f"{NAME}-storage-access"]
    assert {app.urn, blob.urn, access[0].urn} <= set(deploy.dependencies)
    # The deployment container the platform deploys into is the one the blob is in.
    container = app.inputs["functionAppConfig"]["deployment"]["storage"]["value"]
    assert blob_url(run, blob).startswith(container + "/")


def test_consumption_declares_no_one_deploy(dev_run: ProgramRun) -> None:
    assert not [r for r in children(dev_run) if r.type == ONEDEPLOY]


def test_package_blobs_are_kept_and_the_stable_one_is_frozen_during_a_canary(
    run_edited: RunEdited, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every package blob is kept when replaced (retain_on_delete): a site may still name it. While
    model.version differs from stableVersion the stable version's package ignores changes of its
    name and content, so production keeps the code it runs; the candidate's takes the current build."""
    seen: dict[str, pulumi.ResourceOptions | None] = {}
    real = azure_native.storage.Blob

    class Spy(real):  # type: ignore[misc, valid-type]
        def __init__(self, resource_name: str, *args: Any, opts: pulumi.ResourceOptions | None = None, **kwargs: Any):
            seen[resource_name] = opts
            super().__init__(resource_name, *args, opts=opts, **kwargs)

    monkeypatch.setattr(azure_native.storage, "Blob", Spy)
    run_edited(only_azure)
    ((name, opts),) = seen.items()
    assert name == f"{NAME}-package-1.4.0" and opts is not None
    assert opts.retain_on_delete is True and not opts.ignore_changes
    seen.clear()
    run_edited(start_canary(10))
    stable, candidate = seen[f"{NAME}-package-1.4.0"], seen[f"{NAME}-package-1.5.0"]
    assert stable is not None and candidate is not None
    assert stable.retain_on_delete is True and candidate.retain_on_delete is True
    assert set(stable.ignore_changes or []) == {"blobName", "source", "contentMd5", "metadata"}
    assert not candidate.ignore_changes
    seen.clear()
    stopped = start_canary(0)
    run_edited(stopped)
    # A stopped canary (version != stableVersion, 0 %): no slot, no candidate package, production pinned.
    ((name, opts),) = seen.items()
    assert name == f"{NAME}-package-1.4.0" and opts is not None and opts.ignore_changes


# --- the ramp-up rule's target and the app read ----------------------------------------------------

LONG = "fraud-scorer-realtime-transactions-euw1-primary"  # its app name is 52 characters


class AzureSlotHostNames(ExistingApp):
    """Azure's slot host names: "the site name is truncated at 40 characters, the slot name is truncated
    at 19 characters, and 4 extra random characters are appended" (learn.microsoft.com/azure/app-service/
    deploy-staging-slots, "Add a slot"; MicrosoftDocs/azure-docs articles/app-service/deploy-staging-slots.md).
    Seen in the field: the 49-character app ``our-123-dev-sevener-applic-application-service-as`` got the slot
    host ``our-123-dev-sevener-applic-application-s-staging.azurewebsites.net`` (Azure/webapps-deploy#423)."""

    def outputs_for(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        rid, outputs = super().outputs_for(args)
        if args.typ == SLOT:
            site, slot = args.inputs["name"], args.inputs["slot"]
            outputs["defaultHostName"] = f"{site[:40]}-{slot[:19]}x7k2.azurewebsites.net"
        return rid, outputs


def test_ramp_up_rule_routes_to_the_host_name_azure_gave_the_slot(dev_config: dict[str, Any]) -> None:
    """``actionHostName`` must be the slot's real host name, or the rerouted share of requests goes to a
    host that does not exist; ``<app>-canary`` is not it once the site name is cut (Azure/azure-cli#30743
    fixed ``az webapp traffic-routing set`` for this)."""
    import copy

    from inferops.harness import run_program
    from tests.conftest import DEV_STACK

    config = copy.deepcopy(dev_config)
    start_canary(30)(config)
    function_config(config, NAME)["name"] = LONG
    run = run_program(DEV_STACK, config=config, stack="dev", mocks=AzureSlotHostNames())
    app, slot = one(run, APP, LONG), one(run, SLOT, LONG)
    assert len(app.inputs["name"]) == 52
    (rule,) = app.inputs["siteConfig"]["experiments"]["rampUpRules"]
    assert rule["actionHostName"] == slot.outputs["defaultHostName"]
    assert rule["actionHostName"] != f"{app.inputs['name']}-canary.azurewebsites.net"
    assert rule["reroutePercentage"] == 30
    # The rule is set only after the slot Azure named exists (its host name is the slot's output).
    assert slot.urn in app.dependencies


NOT_FOUND_APP = (
    "invoke of azure-native:web:getWebApp failed: request failed /subscriptions/{sub}/resourceGroups/rg/"
    'providers/Microsoft.Web/sites/app: Status=404 Code="ResourceNotFound" Message="The Resource '
    "'Microsoft.Web/sites/app' under resource group 'rg' was not found.\""
)
#: A subscription id that contains "404", as about one in seventy do.
SUB_404 = "1c404e2a-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    ("error", "exists"),
    [
        (NOT_FOUND_APP.format(sub=SUB_404), False),
        # A missing resource group (the stack's first deploy) is a 404 too.
        (
            f"request failed /subscriptions/{SUB_404}/resourceGroups/rg/providers/Microsoft.Web/sites/app: "
            'Status=404 Code="ResourceGroupNotFound" Message="Resource group \'rg\' could not be found."',
            False,
        ),
        # The autorest backend's text has the same status field.
        ('autorest/azure: Service returned an error. Status=404 Code="ResourceNotFound" Message="..."', False),
        # Not "absent": a 403 whose resource id holds "404", a 500 about an app named *notfound*.
        (
            f"request failed /subscriptions/{SUB_404}/resourceGroups/rg/providers/Microsoft.Web/sites/app: "
            'Status=403 Code="AuthorizationFailed" Message="The client does not have authorization to perform '
            f"action 'Microsoft.Web/sites/read' over scope '/subscriptions/{SUB_404}/resourceGroups/rg'\"",
            None,
        ),
        (
            "request failed /subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/notfound-detector-1a2b: "
            'Status=500 Code="InternalServerError" Message="Could not be found in cache, retry"',
            None,
        ),
    ],
)
def test_only_the_providers_404_means_the_app_does_not_exist(
    error: str, exists: bool | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """azure-native reports a failed invoke as ``request failed <id>: Status=<code> Code=... Message=...``
    (pulumi/pulumi-azure-native provider/pkg/provider/provider.go ``Invoke``; provider/pkg/azure/
    client_azcore.go ``PulumiAzcoreResponseError.Error``). Any other failure is raised, not read as a fresh
    stack: that would silently start a canary without routing to it."""
    from components import azure as component

    def get_web_app(**_: Any) -> None:
        raise Exception(error)

    monkeypatch.setattr(component.azure_native.web, "get_web_app", get_web_app)
    if exists is None:
        with pytest.raises(Exception, match=r"Status=(403|500) "):
            component._site_exists("app", "rg")
    else:
        assert component._site_exists("app", "rg") is exists


def test_the_mocks_answer_a_missing_app_as_the_provider_does() -> None:
    """The harness's "not found" has the provider's text, so every fresh-stack run under mocks (e.g.
    test_canary_rule_is_applied_after_the_slot_can_serve) goes through the real check."""
    from inferops.harness import _not_found

    text = _not_found("azure-native:web:getWebApp", {"name": "app", "resourceGroupName": "rg"})
    assert re.search(r"^request failed /subscriptions/[^ ]+/Microsoft\.Web/sites/app: Status=404 Code=", text)


# --- one deploy and the package blob against the provider and the REST API -----------------------------


def test_one_deploy_is_a_put_of_the_2024_04_01_api_and_is_never_deleted(
    run_edited: RunEdited, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sites/<app>/extensions/onedeploy`` has a GET (WebApps_GetOneDeployStatus) and a PUT
    (WebApps_CreateOneDeployOperation, "Invoke the OneDeploy publish web app extension") and no DELETE
    in Microsoft.Web's REST API (Azure/azure-rest-api-specs, specification/web/resource-manager/
    Microsoft.Web/stable/2024-04-01/WebApps.json, whose operation list stackql's azure provider docs
    reproduce). The PUT has no body schema ("The swagger models no request body"), so the SDK checks
    nothing: the body is the one of Microsoft's Bicep (``packageUri``, ``remoteBuild``; Bicep warns
    BCP187 on it). azure-native's generic Resource would send a DELETE when the resource goes (a
    destroy, a switch to Consumption), so it is kept instead; the deployed code goes with the app."""
    from components.azure import ONEDEPLOY_API_VERSION

    seen: dict[str, pulumi.ResourceOptions | None] = {}
    real = azure_native.resources.Resource

    class Spy(real):  # type: ignore[misc, valid-type]
        def __init__(self, resource_name: str, *args: Any, opts: pulumi.ResourceOptions | None = None, **kwargs: Any):
            seen[resource_name] = opts
            super().__init__(resource_name, *args, opts=opts, **kwargs)

    monkeypatch.setattr(azure_native.resources, "Resource", Spy)
    run = run_edited(flex)
    ((name, opts),) = seen.items()
    assert name == f"{NAME}-onedeploy" and opts is not None and opts.retain_on_delete is True
    deploy = one(run, ONEDEPLOY).inputs
    assert deploy["apiVersion"] == ONEDEPLOY_API_VERSION == "2024-04-01"
    assert set(deploy["properties"]) == {"packageUri", "remoteBuild"}


#: Inputs of azure-native's storage.Blob that force a replacement: ``WillReplaceOnChanges`` in its
#: schema (pulumi/pulumi-azure-native provider/pkg/resources/customresources/
#: custom_storage_azidentity.go, ``getBlobSchema``; ``ForceNew`` on contentMd5, source and type in
#: ``getBlobMetadata``). ``update`` only sets content type, metadata and tier, never the bytes.
BLOB_REPLACE_ON_CHANGES = {
    "accountName",
    "blobName",
    "containerName",
    "contentMd5",
    "resourceGroupName",
    "source",
    "type",
}


def test_a_frozen_package_ignores_every_input_a_new_build_changes(
    run_edited: RunEdited, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new build changes the package blob's name, bytes and MD5, all three of which replace the blob:
    the frozen stable package ignores each of them (and the metadata), so production keeps its blob."""
    from components.azure import _PACKAGE_CONTENT

    src = tmp_path / "functions"
    shutil.copytree(package.FUNCTIONS_DIR, src)
    monkeypatch.setattr(package, "FUNCTIONS_DIR", src)
    before = one(run_edited(only_azure), BLOB).inputs
    (src / "core.py").write_bytes((src / "core.py").read_bytes() + b"\n# changed\n")
    after = one(run_edited(only_azure), BLOB).inputs

    def differs(key: str) -> bool:
        a, b = before.get(key), after.get(key)
        if isinstance(a, pulumi.FileAsset) and isinstance(b, pulumi.FileAsset):
            return Path(str(a.path)).read_bytes() != Path(str(b.path)).read_bytes()
        return bool(a != b)

    changed = {k for k in before.keys() | after.keys() if differs(k)}
    assert {"blobName", "source", "contentMd5"} <= changed
    assert changed <= set(_PACKAGE_CONTENT), "a frozen package would take part of the new build"
    assert changed & BLOB_REPLACE_ON_CHANGES <= set(_PACKAGE_CONTENT)
    # Block blobs only take a source and an MD5 ("Cannot be defined if blob type is Append", same schema).
    assert after["type"] == "Block"
