"""Azure data capture (issue 13): diagnostic setting (FunctionAppLogs) -> storage account -> drift reader.

Under Pulumi's mocks (the whole program, edited copies of the dev stack, a stateful history) and
against Azurite for the reader. Every Azure rule the component relies on is stated where it is
checked, with its source.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import uuid
from collections.abc import Callable
from typing import Any

import pulumi_azure_native as azure_native
import pytest

from components.azure import (
    CAPTURE_CATEGORY,
    CAPTURE_CONTAINER,
    CAPTURE_POLICY_NAME,
    SLOT_STICKY_SETTINGS,
    capture_account_name,
    capture_destination_account,
    capture_prefix,
    capture_uri,
    function_app_name,
    storage_account_name,
)
from components.spec import CaptureSpec
from inferops.computed.azure import SUBSCRIPTION
from inferops.harness import ProgramError, ProgramRun, RecordingMocks, RegisteredResource, run_program
from tests.conftest import DEV_STACK, function_config
from tests.history import Step, run_history
from tests.test_component_azure import (
    APP,
    DIAGNOSTICS,
    LIFECYCLE,
    NAME,
    SLOT,
    STICKY,
    STORAGE,
    ExistingApp,
    children,
    flex,
    host_storage,
    one,
    only_azure,
    settings,
    spec_of,
    start_canary,
)

RunEdited = Callable[[Callable[[dict[str, Any]], None]], ProgramRun]
RG_NAME = f"inferops-dev-{NAME}-rg"


@pytest.fixture(scope="module")
def canary_run(dev_config: dict[str, Any]) -> ProgramRun:
    """A 25 % canary on a stack whose app exists already (the slot is created before the rule)."""
    config = copy.deepcopy(dev_config)
    start_canary(25)(config)
    return run_program(DEV_STACK, config=config, stack="dev", mocks=ExistingApp())


def capture_account(run: ProgramRun) -> RegisteredResource:
    found = [r for r in children(run) if r.type == STORAGE and r.name == f"{NAME}-capture"]
    assert len(found) == 1
    return found[0]


def diagnostics(run: ProgramRun) -> list[RegisteredResource]:
    return [r for r in children(run) if r.type == DIAGNOSTICS]


def capture(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def edit(config: dict[str, Any]) -> None:
        only_azure(config)
        function_config(config, NAME).setdefault("capture", {}).update(fields)

    return edit


# --- the path the component declares ---------------------------------------------------------------


def test_capture_account_is_private_entra_only_and_beside_the_app(dev_run: ProgramRun) -> None:
    account = capture_account(dev_run).inputs
    assert account["accountName"] == capture_account_name(NAME, "inferops", "dev")
    # A separate account: "Don't use an existing storage account that has other, nonmonitoring data
    # stored in it" (MicrosoftDocs/azure-monitor-docs, articles/azure-monitor/essentials/
    # diagnostic-settings.md, "Destination limitations"), and the host account keeps its own policy.
    assert account["accountName"] != host_storage(dev_run).inputs["accountName"]
    # "The storage account needs to be in the same region as the resource being monitored if the
    # resource is regional" (same section).
    assert account["location"] == one(dev_run, APP).inputs["location"] == "eastus"
    # "Azure Premium LRS ... storage accounts aren't supported as a log or metric destination" (same
    # section); Data Lake Storage Gen2 (hierarchical namespace) accounts "are not currently supported
    # as a destination" (MicrosoftDocs/azure-docs, articles/azure-monitor/platform/resource-logs-collect-storage.md).
    assert account["sku"] == {"name": "Standard_LRS"} and account["kind"] == "StorageV2"
    assert account["isHnsEnabled"] is False
    assert account["minimumTlsVersion"] == "TLS1_2" and account["enableHttpsTrafficOnly"] is True
    assert account["allowBlobPublicAccess"] is False
    assert account["allowSharedKeyAccess"] is False and account["defaultToOAuthAuthentication"] is True
    # No firewall: a network rule set would need "Allow trusted Microsoft services" for Azure Monitor
    # (diagnostic-settings.md, "Destination limitations"); the component sets none.
    assert "networkRuleSet" not in account


def test_diagnostic_setting_sends_function_app_logs_of_the_app_to_the_capture_account(dev_run: ProgramRun) -> None:
    (setting,) = diagnostics(dev_run)
    app = one(dev_run, APP)
    assert setting.inputs["resourceUri"] == app.outputs["id"]
    assert setting.inputs["storageAccountId"] == capture_account(dev_run).outputs["id"]
    # FunctionAppLogs is a resource log category of Microsoft.Web/sites (MicrosoftDocs/azure-reference-other,
    # azure-monitor-ref/supported-logs/includes/microsoft-web-sites-logs-include.md): the host's and
    # worker's logs, where the handler's logging lines land. Only that category: no metrics, no retention
    # (retention on the setting is deprecated: essentials/migrate-to-azure-storage-lifecycle-policy.md).
    assert setting.inputs["logs"] == [{"category": "FunctionAppLogs", "enabled": True}]
    assert "metrics" not in setting.inputs and "workspaceId" not in setting.inputs
    assert CAPTURE_CATEGORY == "FunctionAppLogs"


def test_diagnostic_setting_type_and_inputs_exist_in_the_installed_sdk() -> None:
    """azure-native v3 declares DiagnosticSetting in ``monitor`` (``insights`` is an alias of the old
    type): pulumi-azure-native 3.29.0, pulumi_azure_native/monitor/diagnostic_setting.py; the Registry's
    v3 docs list it as azure-native.monitor (REST API 2021-05-01-preview:
    www.pulumi.com/registry/packages/azure-native/api-docs/monitor/getdiagnosticsetting)."""
    params = inspect.signature(azure_native.monitor.DiagnosticSettingArgs.__init__).parameters
    assert {"resource_uri", "storage_account_id", "logs", "name"} <= set(params)
    log = inspect.signature(azure_native.monitor.DiagnosticsLogSettingsArgs.__init__).parameters
    assert {"category", "enabled"} <= set(log)


def test_one_lifecycle_policy_named_default_on_the_capture_account_only(dev_run: ProgramRun) -> None:
    # "The name of the Storage Account Management Policy. It should always be 'default'" (the installed
    # SDK's ManagementPolicyArgs, the Registry docs of azure-native.storage.ManagementPolicy and the
    # ARM reference): one policy per account, so a second one on the same account would overwrite the
    # first. Checked against the SDK text so an SDK that changes the rule fails here.
    doc = inspect.getdoc(azure_native.storage.ManagementPolicyArgs.__init__) or ""
    assert "It should always be 'default'" in doc
    policies = [r for r in dev_run.resources if r.type == LIFECYCLE]
    by_account = [p.inputs["accountName"] for p in policies]
    assert len(by_account) == len(set(by_account)), "two management policies on one account"
    (policy,) = diagnostics_owner_policies(dev_run)
    assert policy.inputs["managementPolicyName"] == CAPTURE_POLICY_NAME == "default"
    assert policy.inputs["accountName"] == capture_account(dev_run).inputs["accountName"]
    assert host_storage(dev_run).inputs["accountName"] not in by_account, "the host account's policy is not ours"


def diagnostics_owner_policies(run: ProgramRun) -> list[RegisteredResource]:
    return [r for r in children(run) if r.type == LIFECYCLE]


def test_lifecycle_rule_deletes_the_capture_append_blobs_after_retention_days(
    dev_run: ProgramRun, dev_config: dict[str, Any]
) -> None:
    (policy,) = diagnostics_owner_policies(dev_run)
    (rule,) = policy.inputs["policy"]["rules"]
    assert rule["enabled"] is True and rule["type"] == "Lifecycle"
    filters = rule["definition"]["filters"]
    # Azure Monitor appends to PT1H.json; a retention rule for diagnostic logs selects "Append Blobs"
    # (essentials/migrate-to-azure-storage-lifecycle-policy.md), and "Only delete actions are supported
    # for appendBlob" (the SDK's ManagementPolicyFilterArgs.blob_types): the rule only deletes.
    assert "appendBlob" in filters["blobTypes"]
    assert set(rule["definition"]["actions"]) == {"baseBlob"} and set(rule["definition"]["actions"]["baseBlob"]) == {
        "delete"
    }
    assert filters["prefixMatch"] == [f"{CAPTURE_CONTAINER}/"]
    days = rule["definition"]["actions"]["baseBlob"]["delete"]["daysAfterModificationGreaterThan"]
    assert days == spec_of(dev_config).capture.retention_days == 30


def test_lifecycle_filter_uses_values_the_storage_api_accepts(dev_run: ProgramRun) -> None:
    """The policy is a typed mapping the provider sends as it is, so its values are checked here against
    the API: ``blobTypes`` is "either blockBlob or appendBlob" and "Only the Delete action is supported
    for appendBlob blob type"; a prefix "must start with a container name" and a rule has at most 10
    (MicrosoftDocs/azure-docs, articles/storage/blobs/lifecycle-management-overview.md, "Rule filters";
    the Bicep/ARM reference of Microsoft.Storage/storageAccounts/managementPolicies lists
    ``actions.baseBlob.delete.daysAfterModificationGreaterThan``)."""
    (policy,) = diagnostics_owner_policies(dev_run)
    (rule,) = policy.inputs["policy"]["rules"]
    filters, actions = rule["definition"]["filters"], rule["definition"]["actions"]
    assert filters["blobTypes"] and set(filters["blobTypes"]) <= {"blockBlob", "appendBlob"}
    if "appendBlob" in filters["blobTypes"]:
        assert set(actions) == {"baseBlob"} and set(actions["baseBlob"]) == {"delete"}
    assert 1 <= len(filters["prefixMatch"]) <= 10
    for prefix in filters["prefixMatch"]:
        container = prefix.split("/", 1)[0]
        # The container Azure Monitor writes to: insights-logs-{category}, lower case.
        assert container == CAPTURE_CONTAINER == f"insights-logs-{CAPTURE_CATEGORY.lower()}"
    assert set(actions["baseBlob"]["delete"]) == {"daysAfterModificationGreaterThan"}
    assert actions["baseBlob"]["delete"]["daysAfterModificationGreaterThan"] >= 0


def test_retention_days_edit_changes_the_rule_only(run_edited: RunEdited, dev_run: ProgramRun) -> None:
    run = run_edited(capture(retentionDays=7))
    (policy,) = diagnostics_owner_policies(run)
    rule = policy.inputs["policy"]["rules"][0]
    assert rule["definition"]["actions"]["baseBlob"]["delete"]["daysAfterModificationGreaterThan"] == 7
    assert capture_account(run).inputs == capture_account(dev_run).inputs


def test_capture_uri_is_exported_and_names_the_account_container_and_app(dev_run: ProgramRun) -> None:
    account = capture_account(dev_run).inputs["accountName"]
    app = function_app_name(NAME, "inferops", "dev")
    uri = dev_run.exports[NAME]["captureUri"]
    # The blob layout: insights-logs-{category}/resourceId=/SUBSCRIPTIONS/{id}/RESOURCEGROUPS/{rg}/
    # PROVIDERS/{provider}/{type}/{name}/y=/m=/d=/h=/m=00/PT1H.json, the resource id upper case as in
    # the example (azure-monitor-docs, essentials/resource-logs.md, "Send to Azure Storage").
    assert uri == (
        f"az://insights-logs-functionapplogs@{account}.blob.core.windows.net/resourceId=/SUBSCRIPTIONS/"
        f"{SUBSCRIPTION}/RESOURCEGROUPS/{RG_NAME.upper()}/PROVIDERS/MICROSOFT.WEB/SITES/{app.upper()}"
    )


def test_capture_uri_selects_the_account_in_adlfs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The URI alone tells the reader which account to open (no AZURE_STORAGE_ACCOUNT_NAME needed):
    adlfs takes ``account_name`` from ``<container>@<account>.blob.core.windows.net``
    (adlfs.spec.AzureBlobFileSystem._get_kwargs_from_urls)."""
    import fsspec.core

    for var in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AZURE_STORAGE_ANON", "true")  # no credential lookup: only the parsing is under test
    uri = capture_uri("churnpredictcapabcd1234", SUBSCRIPTION, RG_NAME, "churn-predictor-1a2b3c4d")
    fs, path = fsspec.core.url_to_fs(uri)
    assert fs.account_name == "churnpredictcapabcd1234"
    assert path == f"{CAPTURE_CONTAINER}/{capture_prefix(SUBSCRIPTION, RG_NAME, 'churn-predictor-1a2b3c4d')}"


# --- the handler's settings ------------------------------------------------------------------------


def test_production_captures_as_stable_with_the_spec_sampling(run_edited: RunEdited) -> None:
    run = run_edited(capture(samplePercent=12.5))
    s = settings(one(run, APP))
    assert s["INFEROPS_CAPTURE_ENABLED"] == "true"
    assert s["INFEROPS_CAPTURE_SAMPLE_PERCENT"] == "12.5"
    assert s["INFEROPS_VARIANT"] == "stable"
    # The platform's log pipeline is the capture path: the in-process writer would lose records when
    # the worker is frozen or recycled (functions/README.md).
    assert "INFEROPS_CAPTURE_URI" not in s


def test_canary_slot_captures_as_canary_with_a_setting_of_its_own(canary_run: ProgramRun) -> None:
    slot = one(canary_run, SLOT)
    assert settings(slot)["INFEROPS_VARIANT"] == "canary"
    assert settings(one(canary_run, APP))["INFEROPS_VARIANT"] == "stable"
    # A slot setting stays with its slot on a swap (learn.microsoft.com/azure/app-service/
    # deploy-staging-slots#which-settings-are-swapped): a swap must not relabel the stable traffic.
    assert "INFEROPS_VARIANT" in one(canary_run, STICKY).inputs["appSettingNames"]
    assert "INFEROPS_VARIANT" in SLOT_STICKY_SETTINGS
    # "Each Azure resource requires its own diagnostic setting" (diagnostic-settings.md); a slot is a
    # resource of its own (Microsoft.Web/sites/slots, which has FunctionAppLogs: azure-reference-other,
    # azure-monitor-ref/supported-logs/Microsoft-Web-sites-slots-logs.md).
    by_site = {d.inputs["resourceUri"]: d for d in diagnostics(canary_run)}
    assert set(by_site) == {one(canary_run, APP).outputs["id"], slot.outputs["id"]}
    assert {d.inputs["storageAccountId"] for d in by_site.values()} == {capture_account(canary_run).outputs["id"]}
    # The slot's records land below the app's prefix (.../SITES/<APP>/SLOTS/CANARY/...), so the one
    # captureUri holds both variants.
    assert slot.outputs["id"] != one(canary_run, APP).outputs["id"]


def test_first_deploy_canary_slot_is_captured_too(run_edited: RunEdited) -> None:
    run = run_edited(start_canary(20))  # the app does not exist yet: the slot is created after it
    slot = one(run, SLOT)
    assert {d.inputs["resourceUri"] for d in diagnostics(run)} == {one(run, APP).outputs["id"], slot.outputs["id"]}
    assert settings(slot)["INFEROPS_VARIANT"] == "canary"


def test_capture_disabled_declares_nothing_and_tells_the_handler(run_edited: RunEdited) -> None:
    run = run_edited(capture(enabled=False))
    assert not diagnostics(run) and not diagnostics_owner_policies(run)
    assert [r.name for r in children(run) if r.type == STORAGE] == [f"{NAME}-storage"]
    assert settings(one(run, APP))["INFEROPS_CAPTURE_ENABLED"] == "false"
    assert run.exports[NAME]["captureUri"] is None


def test_flex_consumption_is_captured_with_the_same_settings(run_edited: RunEdited) -> None:
    """Flex Consumption apps send resource logs through diagnostic settings too: the host adds its Azure
    Monitor logger there and lets every message through, ignoring the log-level filters
    (Azure/azure-functions-host#11434, "Diagnostic Settings in Flex consumption ignores all the log
    filters": ``IsConsumptionOnLegion`` -> ``AzureMonitorDiagnosticLoggerProvider``). So FunctionAppLogs
    carries the capture records on Flex, with all other log lines beside them."""
    run = run_edited(flex)
    s = settings(one(run, APP))
    # Flex rejects FUNCTIONS_WORKER_RUNTIME and friends as app settings, not settings of the app's own.
    assert s["INFEROPS_CAPTURE_ENABLED"] == "true" and s["INFEROPS_VARIANT"] == "stable"
    (setting,) = diagnostics(run)
    assert setting.inputs["resourceUri"] == one(run, APP).outputs["id"]


# --- capture.destination ---------------------------------------------------------------------------


def test_destination_is_an_existing_account_and_gets_no_policy(run_edited: RunEdited) -> None:
    run = run_edited(capture(destination="az://corpcaptures/monitoring-rg"))
    assert [r.name for r in children(run) if r.type == STORAGE] == [f"{NAME}-storage"]
    # The existing account's one 'default' policy belongs to its owner: declaring ours would replace it.
    assert not [r for r in run.resources if r.type == LIFECYCLE]
    (setting,) = diagnostics(run)
    assert setting.inputs["storageAccountId"] == (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/monitoring-rg/providers/Microsoft.Storage/"
        "storageAccounts/corpcaptures"
    )
    assert run.exports[NAME]["captureUri"].startswith(f"az://{CAPTURE_CONTAINER}@corpcaptures.blob.core.windows.net/")
    assert [w for w in run.warnings if "retentionDays" in w and "corpcaptures" in w]


@pytest.mark.parametrize(
    "destination",
    [
        "s3://bucket/prefix",
        "gs://bucket",
        "az://corpcaptures",  # no resource group: the account's resource id cannot be formed
        "az://corpcaptures/monitoring-rg/container",  # a container/prefix cannot be honoured
        "az://corp-captures/monitoring-rg",  # not a storage account name (3-24 of [a-z0-9])
        "az://corpcaptures/monitoring-rg.",  # a resource group name does not end with '.'
    ],
)
def test_destination_that_a_diagnostic_setting_cannot_target_fails_naming_the_field(destination: str) -> None:
    with pytest.raises(ValueError, match=r"^capture\.destination: .* must be az://<storage account>/<resource group>"):
        capture_destination_account(CaptureSpec(destination=destination))


def test_bad_destination_fails_the_program_with_one_line_before_any_resource(dev_config: dict[str, Any]) -> None:
    config = copy.deepcopy(dev_config)
    capture(destination="az://corpcaptures/rg/insights")(config)
    mocks = RecordingMocks()
    with pytest.raises(ProgramError, match=r"functions\[churn-predictor\]\.capture\.destination") as err:
        run_program(DEV_STACK, config=config, stack="dev", mocks=mocks)
    assert "\n" not in str(err.value).strip()
    # Nothing of the function is created by a deploy that cannot finish.
    assert not [t for t in mocks.registered if t[0].startswith("azure-native:")]


def test_destination_parts(dev_run: ProgramRun) -> None:
    assert capture_destination_account(CaptureSpec(destination="az://corpcaptures/Monitoring_RG(1)/")) == (
        "corpcaptures",
        "Monitoring_RG(1)",
    )
    assert capture_destination_account(CaptureSpec()) is None


# --- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "churn-predictor", "x" * 63, "fraud-scorer-realtime-transactions-euw1"])
def test_capture_account_names_fit_and_differ_from_the_host_account(name: str) -> None:
    cap = capture_account_name(name, "inferops", "dev")
    # 3-24 lowercase letters and digits (learn.microsoft.com/azure/azure-resource-manager/management/
    # resource-name-rules#microsoftstorage), distinct per stack and from the host account.
    assert 3 <= len(cap) <= 24 and cap.isalnum() and cap == cap.lower()
    assert cap != storage_account_name(name, "inferops", "dev")
    assert cap != capture_account_name(name, "inferops", "prod")


# --- history: enabling capture on a deployed stack, retention edits, canary, disabling ----------------


def _history(dev_config: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    base = copy.deepcopy(dev_config)
    only_azure(base)

    def step(edit: Callable[[dict[str, Any]], None] | None = None, **fields: Any) -> dict[str, Any]:
        config = copy.deepcopy(base)
        function_config(config, NAME)["capture"] = dict(fields)
        if edit is not None:
            edit(config)
            function_config(config, NAME)["capture"] = dict(fields)
        return config

    return [
        ("deployed without capture", step(enabled=False)),
        ("capture enabled", step()),
        ("retention edit", step(retentionDays=90)),
        ("canary", step(start_canary(10), retentionDays=90)),
        ("stop canary", step(start_canary(0), retentionDays=90)),
        ("capture disabled", step(enabled=False)),
    ]


@pytest.fixture(scope="module")
def steps(dev_config: dict[str, Any]) -> list[Step]:
    return run_history(DEV_STACK, "dev", _history(dev_config))


def test_every_capture_transition_meets_azures_rules(steps: list[Step]) -> None:
    for s in steps:
        sites = {r.outputs["id"] for r in s.run.resources if r.type in (APP, SLOT)}
        per_site: dict[str, int] = {}
        for d in (r for r in s.run.resources if r.type == DIAGNOSTICS):
            # A setting names a site this deploy keeps: the slot's setting goes with the slot ("first
            # delete its diagnostic settings", diagnostic-settings.md), never left on a deleted resource.
            assert d.inputs["resourceUri"] in sites, (s.label, d.name)
            per_site[d.inputs["resourceUri"]] = per_site.get(d.inputs["resourceUri"], 0) + 1
        # "Each resource can have up to five diagnostic settings" (diagnostic-settings.md): one is ours.
        assert all(n == 1 for n in per_site.values()), s.label
        accounts = [r.inputs["accountName"] for r in s.run.resources if r.type == LIFECYCLE]
        assert len(accounts) == len(set(accounts)), (s.label, "two management policies on one account")


def test_enabling_capture_adds_the_path_without_touching_the_deployed_app(steps: list[Step]) -> None:
    before, enabled = steps[0], steps[1]
    assert before.run.exports[NAME]["captureUri"] is None
    assert enabled.run.exports[NAME]["captureUri"].startswith(f"az://{CAPTURE_CONTAINER}@")
    new = {k for k in enabled.after.resources if k not in before.after.resources}
    assert new == {
        (STORAGE, f"{NAME}-capture"),
        (LIFECYCLE, f"{NAME}-capture-lifecycle"),
        (DIAGNOSTICS, f"{NAME}-capture-logs"),
    }
    old_app = before.after.resources[(APP, f"{NAME}-app")]["inputs"]
    new_app = enabled.after.resources[(APP, f"{NAME}-app")]["inputs"]
    # Only the handler's capture switch changes on the app: same name, plan and identity (no replacement).
    assert {k for k in old_app if old_app[k] != new_app.get(k)} == {"siteConfig"}
    assert settings_of(new_app)["INFEROPS_CAPTURE_ENABLED"] == "true"
    assert settings_of(old_app)["INFEROPS_CAPTURE_ENABLED"] == "false"
    assert {k for k in settings_of(old_app) if settings_of(old_app)[k] != settings_of(new_app)[k]} == {
        "INFEROPS_CAPTURE_ENABLED"
    }


def settings_of(inputs: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in inputs["siteConfig"]["appSettings"]}


def test_retention_edit_and_canary_keep_the_capture_account(steps: list[Step]) -> None:
    enabled, retention, canary, stopped, disabled = steps[1:]
    key = (STORAGE, f"{NAME}-capture")
    assert enabled.after.resources[key]["inputs"] == retention.after.resources[key]["inputs"]
    policy = retention.after.resources[(LIFECYCLE, f"{NAME}-capture-lifecycle")]["inputs"]
    assert policy["policy"]["rules"][0]["definition"]["actions"]["baseBlob"]["delete"] == {
        "daysAfterModificationGreaterThan": 90
    }
    assert (DIAGNOSTICS, f"{NAME}-canary-capture-logs") in canary.after.resources
    assert (DIAGNOSTICS, f"{NAME}-canary-capture-logs") not in stopped.after.resources
    assert canary.run.exports[NAME]["captureUri"] == enabled.run.exports[NAME]["captureUri"]
    assert not [k for k in disabled.after.resources if k[0] in (DIAGNOSTICS, LIFECYCLE)]


# --- the reader: the exported URI on Azurite --------------------------------------------------------


def _pt1h(resource_id: str, records: list[dict[str, Any]]) -> bytes:
    """A PT1H.json of FunctionAppLogs records: one JSON record per line, the handler's logging line in
    properties.message (learn.microsoft.com/azure/azure-monitor/essentials/resource-logs-blob-format),
    and one of the host's own lines, which is not a capture record."""

    def entry(message: str, time: str) -> str:
        props = {"message": message, "category": "Function.predict.User", "level": "Information"}
        return json.dumps(
            {
                "time": time,
                "resourceId": resource_id,
                "category": "FunctionAppLogs",
                "operationName": "Microsoft.Web/sites/functions/log",
                "properties": props,
            }
        )

    lines = [entry("Executed 'Functions.predict' (Succeeded)", "2026-01-12T05:00:01Z")]
    lines += [entry(json.dumps(r, separators=(",", ":")), r["timestamp"]) for r in records]
    return ("\n".join(lines) + "\n").encode()


def _upload_site_logs(app: str, stable: list[dict[str, Any]], canary: list[dict[str, Any]]) -> str:
    """Production's and the canary slot's hour-05 blobs (and an hour-09 blob) where Azure Monitor puts
    them; returns the captureUri the component exports for that app."""
    import os

    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobServiceClient

    from tests.emulators import AZURITE_ACCOUNT

    prefix = capture_prefix(SUBSCRIPTION, RG_NAME, app)
    app_id = prefix.removeprefix("resourceId=")
    client = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])
    with contextlib.suppress(ResourceExistsError):
        client.create_container(CAPTURE_CONTAINER)
    container = client.get_container_client(CAPTURE_CONTAINER)
    hour = "y=2026/m=01/d=12/h=05/m=00/PT1H.json"
    blobs = {
        f"{prefix}/{hour}": _pt1h(app_id, stable),
        # The slot is a resource of its own, below the app's id.
        f"{prefix}/SLOTS/CANARY/{hour}": _pt1h(f"{app_id}/SLOTS/CANARY", canary),
        # Outside the window: pruned by its partition, never read.
        f"{prefix}/y=2026/m=01/d=12/h=09/m=00/PT1H.json": b"not json: reading this blob would be counted",
    }
    for key, data in blobs.items():
        container.upload_blob(key, data, blob_type="AppendBlob")
    return capture_uri(AZURITE_ACCOUNT, SUBSCRIPTION, RG_NAME, app)


@pytest.mark.parametrize(("canary_mean", "expected"), [(28.0, 1), (20.0, 0)])
def test_drift_check_compares_the_variants_of_the_exported_capture_uri(
    tmp_path: Any, azure_env: str, canary_mean: float, expected: int
) -> None:
    """``drift check --capture <captureUri> --compare-variants`` on Azurite: the real handler's records,
    production's and the slot's blobs under the one exported prefix, a shifted and an unshifted canary.
    The no-shift case is one seeded draw (the detector's false-alarm rate is measured in
    test_drift_detect.py)."""
    import numpy as np

    from drift.cli import main
    from tests.test_drift_capture import _rows, handler_records

    rng = np.random.default_rng(11)
    stable = handler_records(5, 20.0, 0, rows=_rows(rng, 900, 20.0))
    canary_rows = _rows(rng, 300, 20.0)
    for row in canary_rows:
        row["amount"] = round(row["amount"] + canary_mean - 20.0, 2)
    canary = handler_records(5, canary_mean, 0, rows=canary_rows, variant="canary", version="2.3.0")
    uri = _upload_site_logs(function_app_name(f"fn{uuid.uuid4().hex[:8]}", "inferops", "dev"), stable, canary)
    out = tmp_path / "report.json"
    argv = ["check", "--capture", uri, "--since", "2026-01-12T05:00Z", "--until", "2026-01-12T06:00Z"]
    code = main([*argv, "--compare-variants", "--out", str(out)])
    report = json.loads(out.read_text())
    assert code == expected, [f for f in report["features"] if f["drifted"]]
    assert report["capture"]["variants"] == {"stable": 900, "canary": 300}
    assert report["capture"]["layouts"] == {"azure-diagnostics": 1200}
    assert report["capture"]["skipped_lines"] == 2  # the host's "Executed" line in each blob read
    assert {f["feature"]: f["drifted"] for f in report["features"]}["amount"] is (expected == 1)
