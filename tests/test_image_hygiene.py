"""Hygiene of the handler images ``pulumi up`` builds (issue 13 §1 follow-ups).

* the Artifact Registry repository deletes old digests (cleanup policies) but never the images a
  revision that may still start instances needs: the stable side of a canary, a rollback;
* a preview builds nothing, so a pull request's preview writes no build cache to the production
  registry, and preview and update register the same image inputs (the provider diffs them);
* Knative revisions can pull a private image with ``inferops:imagePullSecret``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest

from components.gcp import IMAGE_DELETE_AFTER_DAYS, IMAGE_KEEP_VERSIONS
from components.spec import SpecError, parse_stack_config
from inferops.harness import ProgramError, ProgramRun, run_program
from tests.conftest import DEV_STACK, function_config
from tests.test_image_build import (
    GCP_FN,
    GIVEN_K8S_REVISION,
    IMAGE,
    K8S_FN,
    KSVC,
    REPOSITORY,
    deploy,
    knative_template,
    one,
    with_images,
)
from tests.test_transitions import check_kubernetes, history

DAY = 86400

# --- 1. Artifact Registry cleanup ----------------------------------------------------------------


def test_repository_declares_keep_and_delete_cleanup_policies(dev_run: ProgramRun) -> None:
    """Argument names as the pinned SDK (pulumi-gcp 10.2.0) registers them and the Registry docs of
    ``gcp.artifactregistry.Repository`` show: ``cleanupPolicies[]`` with ``id``, ``action``
    (``DELETE`` | ``KEEP``), ``condition.tagState`` (``TAGGED`` | ``UNTAGGED`` | ``ANY``),
    ``condition.olderThan``, ``mostRecentVersions.keepCount``; ``cleanupPolicyDryRun`` false, or
    nothing is ever deleted. Rules (cloud.google.com/artifact-registry/docs/repositories/cleanup-policy):
    at most 10 policies per repository; a most-recent-versions keep policy has no condition."""
    repo = one(dev_run, GCP_FN, REPOSITORY).inputs
    assert repo["cleanupPolicyDryRun"] is False
    policies = {p["id"]: p for p in repo["cleanupPolicies"]}
    assert len(policies) == len(repo["cleanupPolicies"]) <= 10  # ids unique, within the limit
    assert all(len(i) < 128 for i in policies)  # "under 128 characters" (the SDK's docs)
    assert policies["keep-tagged"] == {"id": "keep-tagged", "action": "KEEP", "condition": {"tagState": "TAGGED"}}
    assert policies["keep-recent"] == {
        "id": "keep-recent",
        "action": "KEEP",
        "mostRecentVersions": {"keepCount": IMAGE_KEEP_VERSIONS},
    }
    assert policies["delete-untagged"] == {
        "id": "delete-untagged",
        "action": "DELETE",
        # google.protobuf.Duration in JSON: seconds with an "s" suffix, as Google's example of the
        # resource has it (terraform-google-modules/docs-examples artifact_registry_repository_cleanup).
        "condition": {"tagState": "UNTAGGED", "olderThan": f"{IMAGE_DELETE_AFTER_DAYS * DAY}s"},
    }


def test_a_given_image_declares_no_repository_and_so_no_policies(dev_config: dict[str, Any]) -> None:
    run = run_program(DEV_STACK, config=with_images(dev_config), stack="dev")
    assert not [r for r in run.resources if r.type == REPOSITORY]


@dataclass(frozen=True)
class Version:
    """One version (manifest digest) of the image package in the repository."""

    name: str
    pushed_day: float
    tagged: bool


def surviving(versions: list[Version], policies: list[dict[str, Any]], today: float) -> set[str]:
    """The versions Artifact Registry's cleanup keeps, as its documentation states the rules.

    cloud.google.com/artifact-registry/docs/repositories/cleanup-policy-overview: a version is deleted
    when it matches a delete policy and no keep policy ("If an artifact version matches criteria in
    both a delete policy and a keep policy, Artifact Registry applies the keep policy"); a keep
    policy alone deletes nothing; "Keep most recent versions" keeps the newest ``keepCount`` versions
    of the package; ``olderThan`` is the age since the version was pushed.
    """

    def matches(p: dict[str, Any], v: Version, rank: int) -> bool:
        if "mostRecentVersions" in p:
            return rank < p["mostRecentVersions"]["keepCount"]
        cond = p["condition"]
        state = cond.get("tagState", "ANY")
        if state != "ANY" and (state == "TAGGED") != v.tagged:
            return False
        older = cond.get("olderThan")
        return older is None or (today - v.pushed_day) * DAY > int(older.removesuffix("s"))

    newest_first = sorted(versions, key=lambda v: v.pushed_day, reverse=True)
    kept = set()
    for rank, v in enumerate(newest_first):
        keep = any(p["action"] == "KEEP" and matches(p, v, rank) for p in policies)
        delete = any(p["action"] == "DELETE" and matches(p, v, rank) for p in policies)
        if keep or not delete:
            kept.add(v.name)
    return kept


#: What one build of functions/ adds to the package, the worst case counted in components/gcp.py:
#: the image index, its linux/amd64 manifest, the provenance attestation, the cache manifest.
PER_BUILD = ("index", "amd64", "attestation", "cache")


def builds(days: list[float]) -> list[Version]:
    """The versions of successive builds pushed on ``days``: the last build's carry the tags."""
    out = []
    for i, day in enumerate(days):
        last = i == len(days) - 1
        for part in PER_BUILD:
            # The tag and the buildcache tag sit on the last build's index and cache manifest; its
            # child manifests are untagged (only the index carries the tag).
            out.append(Version(f"build{i}-{part}", day, tagged=last and part in ("index", "cache")))
    return out


def test_the_stable_image_survives_a_canary_however_old_it_is(dev_run: ProgramRun) -> None:
    """The stable revision was built 200 days ago (untagged as soon as the canary's build moved the
    tag): the age rule alone would delete it, the count keeps it through 3 more candidate builds."""
    policies = one(dev_run, GCP_FN, REPOSITORY).inputs["cleanupPolicies"]
    today = 400.0
    # Old history, the stable build (day 200), then a canary whose candidate is built 4 times.
    history_days = [10.0, 50.0, 100.0, 200.0, 396.0, 397.0, 398.0, 399.0]
    versions = builds(history_days)
    kept = surviving(versions, policies, today)
    stable = {f"build3-{p}" for p in PER_BUILD}
    assert stable <= kept, "the stable revision's image (and its children) must survive the canary"
    current = {f"build7-{p}" for p in PER_BUILD}
    assert current <= kept
    # And storage is bounded: the builds before the stable one, untagged and old, are deleted.
    assert not kept & {f"build{i}-{p}" for i in range(3) for p in PER_BUILD}


def test_the_count_is_what_bounds_the_canary_and_the_age_rule_alone_would_not() -> None:
    """The same history under a delete-older-than policy without the count loses the stable image:
    the count is the protection, and one more candidate build than it covers is the documented limit."""
    age_only = [
        {"id": "keep-tagged", "action": "KEEP", "condition": {"tagState": "TAGGED"}},
        {
            "id": "delete-untagged",
            "action": "DELETE",
            "condition": {"tagState": "UNTAGGED", "olderThan": f"{IMAGE_DELETE_AFTER_DAYS * DAY}s"},
        },
    ]
    versions = builds([10.0, 50.0, 100.0, 200.0, 396.0, 397.0, 398.0, 399.0])
    assert "build3-index" not in surviving(versions, age_only, 400.0)
    with_count = [*age_only, {"id": "keep-recent", "action": "KEEP", "mostRecentVersions": {"keepCount": 20}}]
    assert "build3-index" in surviving(versions, with_count, 400.0)
    one_more = builds([10.0, 50.0, 100.0, 200.0, 395.0, 396.0, 397.0, 398.0, 399.0])
    assert "build3-index" not in surviving(one_more, with_count, 400.0)  # docs/components-gcp.md states it


def test_a_function_not_redeployed_for_months_keeps_its_image(dev_run: ProgramRun) -> None:
    """The tagged digest (what the service runs) and the current cache are kept at any age."""
    policies = one(dev_run, GCP_FN, REPOSITORY).inputs["cleanupPolicies"]
    kept = surviving(builds([1.0, 2.0]), policies, today=900.0)
    assert {"build1-index", "build1-cache"} <= kept


# --- 2. previews build nothing and register the same inputs --------------------------------------


@pytest.fixture(scope="module")
def preview_and_update() -> tuple[ProgramRun, ProgramRun]:
    return (
        run_program(DEV_STACK, stack="dev", preview=True),
        run_program(DEV_STACK, stack="dev", preview=False),
    )


@pytest.mark.parametrize("fn", [GCP_FN, K8S_FN])
def test_a_preview_builds_nothing_so_writes_no_cache(
    preview_and_update: tuple[ProgramRun, ProgramRun], fn: str
) -> None:
    """pulumi/pulumi-docker-build provider/internal/image.go, ``Create``: ``if req.DryRun &&
    !input.shouldBuildOnPreview()`` returns before ``cli.Build``, so with ``buildOnPreview: false``
    a preview neither pushes nor exports ``cacheTo`` (a preview build otherwise still exports cache
    manifests: the SDK's ``build_on_preview`` docs). The update still writes the cache."""
    preview, update = preview_and_update
    assert one(preview, fn, IMAGE).inputs["buildOnPreview"] is False
    assert one(update, fn, IMAGE).inputs["cacheTo"][0]["registry"]["ref"].endswith(":buildcache")


@pytest.mark.parametrize("fn", [GCP_FN, K8S_FN])
def test_preview_and_update_register_identical_image_inputs(
    preview_and_update: tuple[ProgramRun, ProgramRun], fn: str
) -> None:
    """``Diff`` (provider/internal/image.go) compares every input but registry passwords with
    ``reflect.DeepEqual`` against the last update's state, ``cacheTo`` included: an input that
    differed on a preview (``cacheTo`` dropped, say) would show the image as changed, and rebuild
    it, on every preview, including the one ``pulumi up`` runs first."""
    preview, update = preview_and_update
    assert one(preview, fn, IMAGE).inputs == one(update, fn, IMAGE).inputs


# --- 3. Kubernetes pull secret -------------------------------------------------------------------


def with_secret(config: dict[str, Any], name: str | None) -> dict[str, Any]:
    config = copy.deepcopy(config)
    if name is None:
        config.pop("inferops:imagePullSecret", None)
    else:
        config["inferops:imagePullSecret"] = name
    return config


def test_the_pull_secret_is_in_the_revision_template_and_names_a_new_revision(dev_config: dict[str, Any]) -> None:
    """Knative allows ``imagePullSecrets`` in the revision template (knative/serving
    pkg/apis/serving/fieldmask.go ``PodSpecMask``: an always allowed field;
    knative.dev/docs/serving/deploying-from-private-registry: "add those secrets to ... the Revision
    template for a single Service"); a template change needs a new revision name (VerifyNameChange)."""
    plain = run_program(DEV_STACK, config=with_images(dev_config), stack="dev")
    secret = run_program(DEV_STACK, config=with_secret(with_images(dev_config), "regcred"), stack="dev")
    renamed = run_program(DEV_STACK, config=with_secret(with_images(dev_config), "regcred-2"), stack="dev")
    assert "imagePullSecrets" not in knative_template(plain)["spec"]
    assert knative_template(plain)["metadata"]["name"] == GIVEN_K8S_REVISION  # no key: names unchanged
    assert knative_template(secret)["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    names = {knative_template(r)["metadata"]["name"] for r in (plain, secret, renamed)}
    assert len(names) == 3
    # Only Knative: nothing else of the stack changes with the key.
    for r in (plain, secret):
        assert "imagePullSecrets" not in str(one(r, GCP_FN, "gcp:cloudrunv2/service:Service").inputs)


def test_a_canary_keeps_routing_to_the_stable_revision_when_the_secret_changes(dev_config: dict[str, Any]) -> None:
    configs = dict(history(dev_config, long_names=False))
    steps = deploy(
        [
            ("stable, regcred", "code-1", with_secret(configs["stable first"], "regcred")),
            ("canary, regcred", "code-1", with_secret(configs["canary"], "regcred")),
            ("canary, secret renamed", "code-1", with_secret(configs["canary"], "regcred-2")),
        ]
    )
    for step in steps:
        check_kubernetes(step)  # VerifyNameChange and every routed revision exists
    stable = knative_template(steps[0].run)["metadata"]["name"]
    before, after = (knative_template(s.run)["metadata"]["name"] for s in steps[1:])
    assert before != after  # the candidate's template changed: a new revision
    traffic = {t["revisionName"]: t["percent"] for t in one(steps[2].run, K8S_FN, KSVC).inputs["spec"]["traffic"]}
    assert traffic == {stable: 90, after: 10}  # the stable revision keeps the secret it was made with
    assert steps[2].run.exports[K8S_FN]["canaryPercent"] == 10


@pytest.mark.parametrize("bad", ["RegCred", "-regcred", "reg_cred", "regcred.", "a" * 254])
def test_a_bad_secret_name_is_one_line_naming_the_key(dev_config: dict[str, Any], bad: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_stack_config(with_secret(dev_config, bad))
    message = str(err.value)
    assert message.startswith("inferops:imagePullSecret: must be the name of a Secret") and "\n" not in message


def test_a_bad_secret_name_stops_the_program_with_that_line(dev_config: dict[str, Any]) -> None:
    with pytest.raises(ProgramError) as err:
        run_program(DEV_STACK, config=with_secret(dev_config, "Reg Cred"), stack="dev")
    assert str(err.value).startswith("inferops:imagePullSecret: ") and "\n" not in str(err.value)


def test_a_valid_secret_name_parses(dev_config: dict[str, Any]) -> None:
    assert parse_stack_config(with_secret(dev_config, "ghcr.pull-1")).image_pull_secret == "ghcr.pull-1"
    assert function_config(dev_config, K8S_FN)  # the dev stack has a kubernetes function
