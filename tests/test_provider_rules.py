"""Provider and control-plane rules behind today's new cloud resources, each stated and cited.

Mocks accept anything; the clouds do not. These tests pin what the real providers and control planes
do with the image build (pulumi-docker-build, Artifact Registry, Cloud Run), the Cloud Run existence
read, and the Firehose stream replacement, so a change that the mocks would accept but a cloud would
reject (or a provider would handle differently) fails here.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from components.gcp import service_name, service_not_found
from components.tags import function_key
from inferops import harness
from inferops.harness import ProgramRun, RecordingMocks, run_program
from tests.conftest import DEV_STACK
from tests.test_component_aws import FILTER, FN, STREAM, aws_only
from tests.test_image_build import GCP_FN, IMAGE, K8S_FN
from tests.test_image_build import one as image_child

# --- Cloud Run: the existence read of the live service --------------------------------------------

SVC = service_name("inferops", "dev", GCP_FN)
#: What terraform-provider-google's data source returns for a missing service: the resource read turns
#: the API's 404 into an empty id, and dataSourceGoogleCloudRunV2ServiceRead then fails with
#: fmt.Errorf("%s not found", id), id = projects/{{project}}/locations/{{location}}/services/{{name}}
#: (hashicorp/terraform-provider-google google/services/cloudrunv2/data_source_google_cloud_run_v2_service.go).
PROVIDER_NOT_FOUND = f"projects/example-project/locations/us-central1/services/{SVC} not found"


def test_only_the_providers_not_found_sentence_for_this_service_means_absent() -> None:
    invoke = "Invoke of 'gcp:cloudrunv2/getService:getService' failed: "
    assert service_not_found(invoke + PROVIDER_NOT_FOUND, SVC)
    # An HTTP 403 (API disabled, no permission) is not "absent", whatever digits or words it carries:
    # project numbers can contain "404"; the previous predicate ("404" anywhere) took this for absent.
    disabled = (
        "googleapi: Error 403: Cloud Run Admin API has not been used in project 140412345678 before or it is disabled."
    )
    assert not service_not_found(invoke + disabled, SVC)
    denied = f"Error 403: Permission 'run.services.get' denied on resource '{SVC}' (or it may not exist)."
    assert not service_not_found(invoke + denied, SVC)
    # Another service's "not found" is not this one's.
    assert not service_not_found(PROVIDER_NOT_FOUND.replace(SVC, SVC + "-other"), SVC)


def test_the_mocks_answer_a_missing_service_as_the_provider_words_it(dev_run: ProgramRun) -> None:
    """The harness says what the provider says, so the fresh-stack path runs on the real sentence."""
    mocks = RecordingMocks()
    args = pulumi.runtime.MockCallArgs(
        token="gcp:cloudrunv2/getService:getService",
        args={"name": SVC, "location": "us-central1"},
        provider="",
    )
    _, failures = mocks.call(args)
    assert failures and failures[0][1] == PROVIDER_NOT_FOUND
    # ...and a fresh dev stack (a stable version but no revision of it yet) still deploys, warning.
    assert any("no revision of the stable model" in w for w in dev_run.warnings)


class ApiDisabled(RecordingMocks):
    """The Cloud Run Admin API is off in the project: the read fails with HTTP 403."""

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "gcp:cloudrunv2/getService:getService":
            return {}, [("name", "googleapi: Error 403: Cloud Run Admin API has not been used in project 140412345678")]
        return super().call(args)


def test_a_failed_read_that_is_not_not_found_stops_the_deploy(dev_config: dict[str, Any]) -> None:
    # Guessing "absent" would route every request to the candidate (the fresh-stack fallback).
    with pytest.raises(Exception, match="Error 403"):  # the invoke's own error, raised to the program
        run_program(DEV_STACK, config=copy.deepcopy(dev_config), stack="dev", mocks=ApiDisabled())


# --- the image build ------------------------------------------------------------------------------


def test_registry_cache_is_an_oci_image_manifest_that_never_fails_the_deploy(dev_run: ProgramRun) -> None:
    """pulumi-docker-build 0.0.22 CacheToRegistry: ``imageManifest`` "Requires ociMediaTypes to also be
    true" and "Some registries like AWS ECR will not work with caching if this is false"; ``mode``
    "Defaults to min"; ``ignoreError`` ignores "errors caused by failed cache exports". Artifact Registry
    stores OCI image indexes and OCI-format artifacts (cloud.google.com/artifact-registry/docs/
    supported-formats), so this one form fits it and ECR alike."""
    for fn in (GCP_FN, K8S_FN):
        args = image_child(dev_run, fn, IMAGE).inputs
        [to] = args["cacheTo"]
        cache = to["registry"]
        assert cache["imageManifest"] is True and cache["ociMediaTypes"] is True
        assert cache["mode"] == "max" and cache["ignoreError"] is True
        # The cache is read from where it is written, next to the image and never as the image's tag.
        [frm] = args["cacheFrom"]
        assert frm["registry"]["ref"] == cache["ref"]
        assert all(cache["ref"] != tag for tag in args["tags"])


@pytest.mark.parametrize("name", ["doc-classifier", "x" * 63, "Model.V2_eu"])
@pytest.mark.parametrize("stack", ["dev", "Prod.EU_2"])
def test_image_tags_meet_dockers_tag_grammar(name: str, stack: str) -> None:
    """A tag "may contain lowercase and uppercase letters, digits, underscores, periods and hyphens",
    "may not start with a period or a hyphen" and has "a maximum of 128 characters"
    (docs.docker.com/engine/reference/commandline/image_tag/). The component tags with the
    stack-scoped function key."""
    tag = function_key("inferops", stack, name)
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag), tag


# --- Firehose: what a stream replacement takes with it -------------------------------------------


def test_subscription_filter_is_replaced_with_the_stream_and_the_logs_role_is_kept(
    run_edited: Callable[..., ProgramRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream is delete-before-replace (test_capture_aws). Before deleting it, the engine deletes
    the dependents that the provider would replace once the stream's outputs are unknown
    (pulumi/pulumi pkg/resource/deploy/step_generator.go, ``calculateDependentReplacements``: it
    substitutes unknowns for the inputs that depend on the condemned resource and asks the provider's
    Diff). The subscription filter's ``destination_arn`` is ForceNew
    (hashicorp/terraform-provider-aws internal/service/logs/subscription_filter.go), so the filter is
    deleted first and created again on the new stream, which only works if its destinationArn input
    carries the dependency on the stream. The logs role's policy is an in-place update (and the same
    ARN, so no change); the role itself does not depend on the stream at all."""
    urns: dict[str, str] = {}
    prop_deps: dict[str, dict[str, set[str]]] = {}
    register = harness._Monitor.RegisterResource

    def recording(self: Any, request: Any) -> Any:
        response = register(self, request)
        urns[request.name] = response.urn
        prop_deps[request.name] = {k: set(v.urns) for k, v in request.propertyDependencies.items()}
        return response

    monkeypatch.setattr(harness._Monitor, "RegisterResource", recording)
    run_edited(aws_only())
    stream = urns[f"{FN}-capture-stream"]
    assert stream in prop_deps[f"{FN}-capture-filter"]["destinationArn"]
    assert FILTER.endswith("LogSubscriptionFilter") and STREAM.endswith("FirehoseDeliveryStream")
    # The role the filter assumes is not tied to the stream: it survives the replacement.
    assert all(stream not in deps for deps in prop_deps[f"{FN}-logs-role"].values())
    # The role's inline policy names the stream's ARN (the same after the replacement): updated in place.
    assert stream in prop_deps[f"{FN}-logs-policy"]["policy"]
