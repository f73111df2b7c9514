"""A stack's history, deployed run after run under stateful mocks, checked against the clouds' update rules.

Mocks accept anything; the clouds do not, and most of their rules are about *changes*: a name reused
with another configuration, a route to something not created yet, a setting that one state allows
and the next forbids. Each step below is what a user or the drift/FinOps loops do to a stack file
(stable first, canary, canary percent edit, stop canary, rollback by version, retraining record,
budget and threshold edits, promotion), on all four platforms at once, for the dev stack and for
function names at the 63-character limit. Every rule checked cites where the cloud states it.
"""

from __future__ import annotations

import copy
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components import package
from components.tags import function_key
from inferops.harness import ProgramRun, RegisteredResource, run_program
from tests.conftest import DEV_STACK
from tests.history import State, StatefulMocks, Step, run_history

PROJECT, STACK = "inferops", "dev"
#: Per platform: (stable version, candidate version, artifact URI with the version as a path segment).
VERSIONS = {
    "aws": ("2.1.0", "2.2.0"),
    "azure": ("1.4.0", "1.5.0"),
    "gcp": ("3.0.0", "3.0.1"),
    "kubernetes": ("0.9.0", "1.0.0"),
}
LIMIT_NAMES = {
    "aws": "fraud-scorer-realtime-transactions-euw1-" + "a" * 22 + "z",
    "azure": "fraud-scorer-realtime-transactions-euw1-" + "b" * 22 + "z",
    "gcp": "fraud-scorer-realtime-transactions-euw1-" + "c" * 22 + "z",
    "kubernetes": "fraud-scorer-realtime-transactions-euw1-" + "d" * 22 + "z",
}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

Edit = Callable[[dict[str, Any]], None]


# --- the history -----------------------------------------------------------------------------------


def _each(config: dict[str, Any], edit: Callable[[dict[str, Any], str, str], None]) -> dict[str, Any]:
    out = copy.deepcopy(config)
    for fn in out["inferops:functions"]:
        stable, candidate = VERSIONS[fn["platform"]]
        edit(fn, stable, candidate)
    return out


def _serve(version: str, stable: str, percent: int) -> Callable[[dict[str, Any], str, str], None]:
    def edit(fn: dict[str, Any], s: str, c: str) -> None:
        v = {"stable": s, "candidate": c}
        fn["model"]["version"] = v[version]
        fn["model"]["stableVersion"] = v[stable]
        uri = fn["model"]["artifactUri"]
        if "{version}" not in uri:
            uri = uri.replace(f"/{s}/", "/{version}/").replace(f"/{c}/", "/{version}/")
        fn["model"]["artifactUri"] = uri
        fn["traffic"] = {"canaryPercent": percent}

    return edit


def _base(dev_config: dict[str, Any], long_names: bool) -> dict[str, Any]:
    config = copy.deepcopy(dev_config)
    for fn in config["inferops:functions"]:
        if fn["platform"] == "kubernetes":
            fn["model"]["artifactUri"] = "https://models.example.com/sentiment/{version}/model.json"
        if long_names:
            fn["name"] = LIMIT_NAMES[fn["platform"]]
    return config


def history(dev_config: dict[str, Any], long_names: bool) -> list[tuple[str, dict[str, Any]]]:
    """The stack files of one history, in deploy order."""
    base = _base(dev_config, long_names)

    def retraining(fn: dict[str, Any], s: str, c: str) -> None:
        _serve("stable", "stable", 0)(fn, s, c)
        fn["retraining"] = {"reason": "minor drift", "reportDigest": "sha256:" + "ab" * 32, "requestedAt": "2026-12-01"}

    def budgets(fn: dict[str, Any], s: str, c: str) -> None:
        retraining(fn, s, c)
        fn.setdefault("finops", {}).update(monthlyBudgetUsd=321.5, alertThresholdsPercent=[40, 75, 90, 100])
        fn["model"]["fairnessScore"] = 0.95

    steps: list[tuple[str, Edit | Callable[[dict[str, Any], str, str], None]]] = [
        ("stable first", _serve("stable", "stable", 0)),
        ("canary", _serve("candidate", "stable", 10)),
        ("canary percent edit", _serve("candidate", "stable", 25)),
        ("stop canary", _serve("candidate", "stable", 0)),
        ("rollback by version", _serve("stable", "stable", 0)),
        ("retraining record", retraining),
        ("budget and threshold edits", budgets),
        ("canary again", lambda fn, s, c: (budgets(fn, s, c), _serve("candidate", "stable", 10)(fn, s, c))),
        ("promotion", lambda fn, s, c: (budgets(fn, s, c), _serve("candidate", "candidate", 0)(fn, s, c))),
    ]
    return [(label, _each(base, edit)) for label, edit in steps]  # type: ignore[arg-type]


@pytest.fixture(scope="module", params=[False, True], ids=["dev", "names-at-limit"])
def steps(request: pytest.FixtureRequest, dev_config: dict[str, Any]) -> list[Step]:
    return run_history(DEV_STACK, STACK, history(dev_config, request.param))


# --- helpers ---------------------------------------------------------------------------------------


def of(run: ProgramRun, typ: str) -> list[RegisteredResource]:
    return [r for r in run.resources if r.type == typ]


def prior(state: State, typ: str) -> list[dict[str, Any]]:
    return state.of_type(typ)


def configured(step: Step, platform: str) -> tuple[str, dict[str, Any]]:
    for name, export in step.run.exports.items():
        if export["platform"] == platform:
            return name, export
    raise KeyError(platform)


# --- the rules -------------------------------------------------------------------------------------


def check_aws(step: Step) -> None:
    functions = {r.inputs["name"]: r for r in of(step.run, "aws:lambda/function:Function")}
    for alias in of(step.run, "aws:lambda/alias:Alias"):
        fn = functions[alias.inputs["functionName"]]
        latest = int(fn.outputs["version"])
        primary = alias.inputs["functionVersion"]
        # An alias points at a published version, never $LATEST when it routes
        # (docs.aws.amazon.com/lambda/latest/api/API_CreateAlias.html, RoutingConfig).
        assert primary.isdigit() and 1 <= int(primary) <= latest, (step.label, alias.name, primary)
        weights = ((alias.inputs.get("routingConfig") or {}).get("additionalVersionWeights")) or {}
        for version, weight in weights.items():
            # "You can point an alias a maximum of two Lambda function versions", the second one with
            # a weight in [0, 1), distinct from the primary (docs.aws.amazon.com/lambda/latest/dg/
            # configuring-alias-routing.html).
            assert version != primary and version.isdigit() and int(version) <= latest, (step.label, weights)
            assert 0 <= weight < 1
        assert len(weights) <= 1
    routed = {a.inputs["name"] for a in of(step.run, "aws:lambda/alias:Alias") if (a.inputs.get("routingConfig") or {})}
    for pc in of(step.run, "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig"):
        # "you can't manage provisioned concurrency settings on the alias while the routing
        # configuration is in place" (docs.aws.amazon.com/lambda/latest/dg/configuring-alias-routing.html).
        assert pc.inputs["qualifier"] not in routed, step.label
    for fn in functions.values():
        # Function names: at most 64 of [a-zA-Z0-9-_] (docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html).
        assert len(fn.inputs["name"]) <= 64 and re.fullmatch(r"[A-Za-z0-9_-]+", fn.inputs["name"])
    for role in of(step.run, "aws:iam/role:Role"):
        # Role names: at most 64 (docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html).
        assert len(role.inputs["name"]) <= 64 and re.fullmatch(r"[\w+=,.@-]+", role.inputs["name"])


def check_azure(step: Step) -> None:
    prior_slots = {
        (s["inputs"]["name"], s["inputs"]["slot"]) for s in prior(step.before, "azure-native:web:WebAppSlot")
    }
    slots = {r.urn: r for r in of(step.run, "azure-native:web:WebAppSlot")}
    for app in of(step.run, "azure-native:web:WebApp"):
        site = app.inputs["siteConfig"]
        rules = (site.get("experiments") or {}).get("rampUpRules") or []
        for rule in rules:
            # Azure routes reroutePercentage to actionHostName as soon as the rule is set
            # (learn.microsoft.com/azure/app-service/deploy-staging-slots#route-production-traffic-automatically):
            # the slot must exist before this deploy, or be applied (with its role) before the app.
            slot_name = rule["actionHostName"].split(".")[0].removeprefix(app.inputs["name"] + "-")
            before = (app.inputs["name"], slot_name) in prior_slots
            ordered = any(urn in app.dependencies for urn in slots)
            assert before or ordered, (step.label, rule)
            assert 0 < rule["reroutePercentage"] <= 100
        # App names: at most 60 (learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules#microsoftweb).
        assert len(app.inputs["name"]) <= 60 and DNS_LABEL.match(app.inputs["name"])
    hosts = []
    for site in of(step.run, "azure-native:web:WebApp") + list(slots.values()):
        settings = {p["name"]: p["value"] for p in site.inputs["siteConfig"]["appSettings"]}
        # Host IDs: at most 32 characters, distinct per site sharing a storage account
        # (learn.microsoft.com/azure/azure-functions/storage-considerations#host-id-considerations).
        hosts.append(settings["AzureFunctionsWebHost__hostId"])
        assert len(hosts[-1]) <= 32
        # A site runs from a package URL only once the blob is there: Linux Consumption "Only <URL> is
        # supported" (learn.microsoft.com/azure/azure-functions/run-functions-from-deployment-package);
        # the URL names a blob this deploy declares, uploaded before the site is updated.
        url = settings.get("WEBSITE_RUN_FROM_PACKAGE")
        if url is not None:
            account = next(
                a.inputs["accountName"]
                for a in of(step.run, "azure-native:storage:StorageAccount")
                if url.startswith(f"https://{a.inputs['accountName']}.")
            )
            # Two versions' packages may name the same blob (same code): one of them is the site's.
            named = [
                b.urn
                for b in of(step.run, "azure-native:storage:Blob")
                if b.inputs["accountName"] == account
                and url == f"https://{account}.blob.core.windows.net/{b.inputs['containerName']}/{b.inputs['blobName']}"
            ]
            assert named, (step.label, url)
            assert set(named) & set(site.dependencies), (step.label, site.name)
    assert len(hosts) == len(set(hosts)), step.label
    for budget in of(step.run, "azure-native:consumption:Budget"):
        # "Budget can have up to five notifications" (learn.microsoft.com/rest/api/consumption/budgets/create-or-update).
        assert len(budget.inputs["notifications"]) <= 5


def check_gcp(step: Step) -> None:
    for svc in of(step.run, "gcp:cloudrunv2/service:Service"):
        name, template = svc.inputs["name"], svc.inputs["template"]
        # Revision names start with "<service>-", at most 63 (cloud.google.com/run/docs/reference/
        # rest/v2/projects.locations.services); a traffic tag plus the service name is at most 46
        # (gcloud: "Combined traffic tag and service name cannot exceed 46 characters",
        # PolicyEngine/policyengine-api#3729).
        assert template["revision"].startswith(name + "-") and len(template["revision"]) <= 63
        for target in svc.inputs["traffics"]:
            assert len(name) + len(target.get("tag") or "") <= 46, (step.label, target)
        known: dict[str, Any] = {}
        for old in prior(step.before, "gcp:cloudrunv2/service:Service"):
            if old["inputs"]["name"] == name:
                known.update(old.get("revisions", {}))
                known[old["inputs"]["template"]["revision"]] = old["inputs"]["template"]
        # A revision name reused with another template is rejected (HTTP 409: revisions are immutable,
        # cloud.google.com/run/docs/managing/revisions).
        if template["revision"] in known:
            assert known[template["revision"]] == template, (step.label, template["revision"])
        known[template["revision"]] = template
        for target in svc.inputs["traffics"]:
            # Every traffic target by revision names a revision that exists (TrafficTarget.revision).
            assert target["revision"] in known, (step.label, target)
        assert sum(t.get("percent", 0) for t in svc.inputs["traffics"]) == 100
        step.after.resources[("gcp:cloudrunv2/service:Service", svc.name)]["revisions"] = known


def check_kubernetes(step: Step) -> None:
    for ksvc in of(step.run, "kubernetes:serving.knative.dev/v1:Service"):
        template = ksvc.inputs["spec"]["template"]
        name = template["metadata"]["name"]
        known: dict[str, Any] = {}
        for old in prior(step.before, "kubernetes:serving.knative.dev/v1:Service"):
            if old["inputs"]["metadata"]["name"] == ksvc.inputs["metadata"]["name"]:
                known.update(old.get("revisions", {}))
                known[old["inputs"]["spec"]["template"]["metadata"]["name"]] = old["inputs"]["spec"]["template"]
        # VerifyNameChange (knative/serving pkg/apis/serving/v1/revision_validation.go): a template
        # that keeps its revision name must not change ("Saw the following changes without a name change").
        if name in known:
            assert known[name] == template, (step.label, name)
        known[name] = template
        for target in ksvc.inputs["spec"]["traffic"]:
            # A named revision must exist, or the route is not Ready (RevisionMissing).
            assert target.get("revisionName") in known, (step.label, target)
        assert sum(t["percent"] for t in ksvc.inputs["spec"]["traffic"]) == 100
        # Revision names and namespaces are DNS labels (RFC 1123).
        assert DNS_LABEL.match(name) and DNS_LABEL.match(ksvc.inputs["metadata"]["namespace"])
        step.after.resources[("kubernetes:serving.knative.dev/v1:Service", ksvc.name)]["revisions"] = known


def check_budgets(step: Step) -> None:
    """Every budget filters on the function-name the function's own resources carry (design contract 1)."""
    for name in step.run.exports:
        key = function_key(PROJECT, STACK, name)
        assert DNS_LABEL.match(key)
    values = [
        r.inputs["costFilters"][0]["values"][0].split("$", 1)[1] for r in of(step.run, "aws:budgets/budget:Budget")
    ]
    values += [r.inputs["filter"]["tags"]["values"][0] for r in of(step.run, "azure-native:consumption:Budget")]
    values += [r.inputs["budgetFilter"]["labels"]["function-name"] for r in of(step.run, "gcp:billing/budget:Budget")]
    keys = {function_key(PROJECT, STACK, n) for n in step.run.exports}
    assert set(values) <= keys and len(values) == 3


CHECKS = (check_aws, check_azure, check_gcp, check_kubernetes, check_budgets)


# --- the tests -------------------------------------------------------------------------------------


def test_every_transition_meets_the_clouds_update_rules(steps: list[Step]) -> None:
    for step in steps:
        for check in CHECKS:
            check(step)


@pytest.mark.parametrize("platform", ["aws", "azure", "gcp", "kubernetes"])
def test_canary_routes_what_the_stack_file_says_once_stable_exists(steps: list[Step], platform: str) -> None:
    """After a stable-first deploy, every platform splits as configured in one deploy, and the export
    says what is deployed."""
    expected = {
        "stable first": 0,
        "canary": 10,
        "canary percent edit": 25,
        "stop canary": 0,
        "rollback by version": 0,
        "retraining record": 0,
        "budget and threshold edits": 0,
        "canary again": 10,
        "promotion": 0,
    }
    got = {s.label: configured(s, platform)[1]["canaryPercent"] for s in steps}
    assert got == expected
    for s in steps:
        assert not [w for w in s.run.warnings if "no revision" in w or "no published build" in w], s.label


def test_lambda_builds_are_pinned_and_rollback_returns_to_the_stable_build(steps: list[Step]) -> None:
    by_label = {s.label: s for s in steps}

    def live(step: Step) -> dict[str, Any]:
        (alias,) = [a for a in of(step.run, "aws:lambda/alias:Alias") if a.inputs["name"] == "live"]
        return alias.inputs

    stable_build = live(by_label["stable first"])["functionVersion"]
    canary = live(by_label["canary"])
    assert canary["functionVersion"] == stable_build
    ((candidate_build, weight),) = canary["routingConfig"]["additionalVersionWeights"].items()
    assert int(candidate_build) > int(stable_build) and weight == 0.1
    assert live(by_label["stop canary"])["functionVersion"] == stable_build
    assert not live(by_label["stop canary"]).get("routingConfig")


def test_metadata_edits_never_touch_revision_templates(steps: list[Step]) -> None:
    """Budget, threshold, fairness and retraining edits change metadata only: Knative and Cloud Run
    keep their revision (no new revision for a FinOps edit, none rejected by VerifyNameChange)."""
    by_label = {s.label: s for s in steps}

    def templates(step: Step) -> list[Any]:
        k = [r.inputs["spec"]["template"] for r in of(step.run, "kubernetes:serving.knative.dev/v1:Service")]
        g = [r.inputs["template"] for r in of(step.run, "gcp:cloudrunv2/service:Service")]
        return k + g

    rollback = templates(by_label["rollback by version"])
    assert templates(by_label["retraining record"]) == rollback
    assert templates(by_label["budget and threshold edits"]) == rollback


def test_two_stacks_share_no_physical_name(dev_config: dict[str, Any]) -> None:
    """design.md: two stacks never collide in one account, project or cluster."""
    config = history(dev_config, long_names=True)[1][1]
    dev = run_history(DEV_STACK, "dev", [("canary", config)])[0].run
    prod = run_history(DEV_STACK, "prod", [("canary", config)])[0].run

    def names(run: ProgramRun) -> set[str]:
        out = set()
        for r in run.resources:
            if not r.custom:
                continue
            for key in ("name", "accountId", "accountName", "resourceGroupName"):
                if isinstance(r.inputs.get(key), str) and r.type not in ("aws:lambda/alias:Alias",):
                    out.add(f"{r.type}:{r.inputs[key]}")
            meta = r.inputs.get("metadata")
            if r.type == "kubernetes:core/v1:Namespace" and isinstance(meta, dict):
                out.add(f"{r.type}:{meta['name']}")
        return out

    # Names scoped to a parent that is itself stack-scoped: a container in the stack's account, a
    # diagnostic setting on the stack's site (its name is unique per resource: ARM puts it under the
    # resource, {resourceUri}/providers/Microsoft.Insights/diagnosticSettings/{name}).
    fixed = {
        "azure-native:storage:BlobContainer:deployments",
        "azure-native:monitor:DiagnosticSetting:inferops-capture",
    }
    shared = (names(dev) & names(prod)) - fixed
    assert not [
        n for n in shared if not n.startswith(("azure-native:web:WebAppSlot", "azure-native:web:WebAppSlotConf"))
    ]


def test_code_changes_redeploy_and_canaries_pin_production_code(
    dev_config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Azure: a handler change gives a new package blob and re-points the package URL; during a
    canary production keeps the package it runs and only the slot takes new code (AWS's pinned
    builds); promotion moves production to the candidate's package; a code revert re-points to the
    first name."""
    src = tmp_path / "functions"
    shutil.copytree(package.FUNCTIONS_DIR, src, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(package, "FUNCTIONS_DIR", src)
    code_a = (src / "core.py").read_bytes()
    code_b, code_c = code_a + b"\n# fix b\n", code_a + b"\n# fix c\n"
    base = _base(dev_config, False)
    base["inferops:functions"] = [f for f in base["inferops:functions"] if f["platform"] == "azure"]
    stable = _each(base, _serve("stable", "stable", 0))
    canary = _each(base, _serve("candidate", "stable", 10))
    stopped = _each(base, _serve("candidate", "stable", 0))
    promoted = _each(base, _serve("candidate", "candidate", 0))
    plan = [
        ("stable first", code_a, stable),
        ("code change", code_b, stable),
        ("canary", code_b, canary),
        ("code change during the canary", code_c, canary),
        ("stop canary", code_c, stopped),
        ("canary again", code_c, canary),
        ("promotion", code_c, promoted),
        ("code revert", code_a, promoted),
    ]

    def url(site: RegisteredResource) -> str:
        return next(
            p["value"] for p in site.inputs["siteConfig"]["appSettings"] if p["name"] == "WEBSITE_RUN_FROM_PACKAGE"
        )

    state = State()
    seen: dict[str, tuple[str, str | None]] = {}
    for label, code, config in plan:
        (src / "core.py").write_bytes(code)
        mocks = StatefulMocks(state)
        run = run_program(DEV_STACK, config=config, stack=STACK, mocks=mocks)
        check_azure(Step(label, state, run, mocks.state))
        (app,) = of(run, "azure-native:web:WebApp")
        slots = of(run, "azure-native:web:WebAppSlot")
        seen[label] = (url(app), url(slots[0]) if slots else None)
        state = mocks.state

    def name_of(code: bytes) -> str:
        (src / "core.py").write_bytes(code)
        return "/deployments/" + package.package_blob_name("churn-predictor", package.build_package(src), flex=False)

    a, b, c = name_of(code_a), name_of(code_b), name_of(code_c)
    expected = {
        "stable first": (a, None),
        "code change": (b, None),
        "canary": (b, b),
        "code change during the canary": (b, c),
        "stop canary": (b, None),
        "canary again": (b, c),
        "promotion": (c, None),
        "code revert": (a, None),
    }
    got = {label: (app.split(".net", 1)[1], slot and slot.split(".net", 1)[1]) for label, (app, slot) in seen.items()}
    assert got == expected
