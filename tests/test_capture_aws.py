"""AWS data capture under the mocks: log group -> subscription filter -> Firehose -> S3 (issue 13)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from components.aws import (
    CAPTURE_BUFFER_MIB,
    CAPTURE_BUFFER_SECONDS,
    CAPTURE_ERROR_PREFIX,
    CAPTURE_FILTER_PATTERN,
    CAPTURE_PARTITION_QUERY,
    CAPTURE_PREFIX,
    CAPTURE_TIME_PREFIX,
    capture_destination,
    capture_variant,
)
from drift.capture import segment_parts, segment_version
from inferops import harness
from inferops.harness import ProgramError, ProgramRun
from tests.test_component_aws import (
    BUCKET,
    FILTER,
    FN,
    FUNCTION,
    LIFECYCLE,
    LOGS,
    PAB,
    POLICY,
    ROLE,
    SSE,
    STREAM,
    aws_only,
    children,
    function_config_spec,
    one,
)

ACCOUNT_SCOPED = "inferops-dev-fraud-scorer-cap-"


def statements(policy: str) -> list[dict[str, Any]]:
    return list(json.loads(policy)["Statement"])


def edited(run_edited: Callable[..., ProgramRun], **capture: Any) -> ProgramRun:
    def edit(fn: dict[str, Any]) -> None:
        fn["capture"] = {**(fn.get("capture") or {}), **capture}

    return run_edited(aws_only(edit))


# --- the handler's environment ---------------------------------------------------------------------


def test_function_environment_carries_the_capture_settings(dev_run: ProgramRun, dev_config: dict[str, Any]) -> None:
    env = one(dev_run, FUNCTION).inputs["environment"]["variables"]
    spec = function_config_spec(dev_config)
    assert env["INFEROPS_CAPTURE_ENABLED"] == "true"
    assert float(env["INFEROPS_CAPTURE_SAMPLE_PERCENT"]) == spec.capture.sample_percent
    # dev serves candidate 2.2.0 beside stable 2.1.0: this publish is the candidate's build.
    assert spec.model.version != spec.stable_version
    assert env["INFEROPS_VARIANT"] == "canary"


def test_sample_percent_and_disable_reach_the_handler(run_edited: Callable[..., ProgramRun]) -> None:
    env = one(edited(run_edited, samplePercent=12.5), FUNCTION).inputs["environment"]["variables"]
    assert env["INFEROPS_CAPTURE_SAMPLE_PERCENT"] == "12.5"
    env = one(edited(run_edited, enabled=False), FUNCTION).inputs["environment"]["variables"]
    assert env["INFEROPS_CAPTURE_ENABLED"] == "false"


def test_variant_is_stable_for_a_build_published_from_the_stable_config(
    run_edited: Callable[..., ProgramRun],
) -> None:
    # Lambda versions snapshot the function's environment at publish
    # (docs.aws.amazon.com/lambda/latest/dg/configuration-versions.html): the stable pinned alias keeps
    # the version published while model.version == stableVersion, whose snapshot says "stable".
    def stable_only(fn: dict[str, Any]) -> None:
        fn["model"]["version"] = fn["model"]["stableVersion"]
        fn["model"]["artifactUri"] = fn["model"]["artifactUri"].replace("2.2.0", fn["model"]["stableVersion"])
        fn["traffic"] = {"canaryPercent": 0}

    run = run_edited(aws_only(stable_only))
    assert one(run, FUNCTION).inputs["environment"]["variables"]["INFEROPS_VARIANT"] == "stable"


def test_capture_variant_is_a_function_of_the_published_config(dev_config: dict[str, Any]) -> None:
    spec = function_config_spec(dev_config)
    assert capture_variant(spec) == "canary"
    promoted = spec.model_copy(update={"model": spec.model.model_copy(update={"version": spec.stable_version})})
    assert capture_variant(promoted) == "stable"


# --- resources and wiring ---------------------------------------------------------------------------


def test_bucket_is_private_encrypted_and_expires_at_retention(dev_run: ProgramRun, dev_config: dict[str, Any]) -> None:
    bucket = one(dev_run, BUCKET)
    name = bucket.inputs["bucket"]
    # S3 bucket names: 3-63 characters of lowercase letters, digits, '.', '-'; global across accounts
    # (docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).
    assert name.startswith(ACCOUNT_SCOPED) and len(name) <= 63 and name == name.lower()
    pab = one(dev_run, PAB).inputs
    assert pab["bucket"] == bucket.outputs["id"]
    assert all(pab[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    [rule] = one(dev_run, SSE).inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    [life] = one(dev_run, LIFECYCLE).inputs["rules"]
    retention = function_config_spec(dev_config).capture.retention_days
    assert life["status"] == "Enabled" and life["expiration"]["days"] == retention
    # The whole bucket (it holds this function's captures only): an empty filter, as the Registry docs of
    # aws.s3.BucketLifecycleConfiguration write "applies to all objects".
    assert life["filter"] == {}


def test_retention_days_follow_the_spec(run_edited: Callable[..., ProgramRun]) -> None:
    [life] = one(edited(run_edited, retentionDays=7), LIFECYCLE).inputs["rules"]
    assert life["expiration"]["days"] == 7


def test_stream_delivers_to_the_bucket_with_cwl_processing(dev_run: ProgramRun) -> None:
    stream = one(dev_run, STREAM).inputs
    s3 = stream["extendedS3Configuration"]
    assert stream["destination"] == "extended_s3"
    assert s3["bucketArn"] == one(dev_run, BUCKET).outputs["arn"]
    assert s3["roleArn"] == one(dev_run, ROLE, f"{FN}-firehose-role").outputs["arn"]
    assert s3["compressionFormat"] == "GZIP"
    # Firehose's CloudWatch Logs decompression and message extraction
    # (docs.aws.amazon.com/firehose/latest/dev/Message_extraction.html): Decompression with
    # CompressionFormat=GZIP, then CloudWatchLogProcessing with DataMessageExtraction=true.
    processing = s3["processingConfiguration"]
    assert processing["enabled"] is True
    kinds = [p["type"] for p in processing["processors"]]
    # Decompression first: CloudWatchLogProcessing reads the envelope it produces (CDK's
    # CloudWatchLogProcessor "must be used with DecompressionProcessor", aws-cdk-lib/aws-kinesisfirehose).
    # The partition key is read from the extracted message, so MetadataExtraction comes after message
    # extraction (the order of a practitioner's Decompression/CloudWatchLogProcessing/MetadataExtraction
    # stream; AWS documents no order for these three, see docs/components-aws.md "not verified").
    assert kinds == ["Decompression", "CloudWatchLogProcessing", "MetadataExtraction", "AppendDelimiterToRecord"]
    params = {
        p["type"]: {q["parameterName"]: q["parameterValue"] for q in p.get("parameters") or []}
        for p in processing["processors"]
    }
    assert params["Decompression"] == {"CompressionFormat": "GZIP"}
    assert params["CloudWatchLogProcessing"] == {"DataMessageExtraction": "true"}
    # A custom prefix with !{timestamp} requires an error prefix with !{firehose:error-output-type}
    # (docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html).
    assert s3["prefix"] == CAPTURE_PREFIX and "!{firehose:error-output-type}" in s3["errorOutputPrefix"]


def stream_s3(run: ProgramRun) -> dict[str, Any]:
    return dict(one(run, STREAM).inputs["extendedS3Configuration"])


def test_stream_partitions_by_model_version_with_inline_jq(dev_run: ProgramRun) -> None:
    s3 = stream_s3(dev_run)
    # Dynamic partitioning is enabled in dynamic_partitioning_configuration, and inline parsing is a
    # MetadataExtraction processor with JsonParsingEngine=JQ-1.6 and a MetadataExtractionQuery naming
    # the keys (Registry docs of aws.kinesis.FirehoseDeliveryStream, "Extended S3 Destination with
    # dynamic partitioning"; parameter names: ProcessorParameter in the pulumi-aws 7.51.1 SDK;
    # "Currently, we only support jq 1.6": docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning-partitioning-keys.html).
    assert s3["dynamicPartitioningConfiguration"] == {"enabled": True}
    [extract] = [p for p in s3["processingConfiguration"]["processors"] if p["type"] == "MetadataExtraction"]
    params = {q["parameterName"]: q["parameterValue"] for q in extract["parameters"]}
    assert params == {"JsonParsingEngine": "JQ-1.6", "MetadataExtractionQuery": CAPTURE_PARTITION_QUERY}
    # The prefix uses exactly the keys the query yields, as !{partitionKeyFromQuery:<key>}
    # (dynamic-partitioning-s3bucketprefix: inline parsing keys are referenced that way).
    query_keys = re.findall(r"([A-Za-z_]+):\.([A-Za-z_]+)", CAPTURE_PARTITION_QUERY)
    prefix_keys = re.findall(r"!\{partitionKeyFromQuery:([A-Za-z_]+)\}", s3["prefix"])
    assert [k for k, _ in query_keys] == prefix_keys == ["model_version"]
    # ... read from the record's own model_version, which every record the subscription filter passes
    # carries (the filter tests $.model_version exists): a record without one never reaches the stream.
    assert [f for _, f in query_keys] == ["model_version"] and '$.model_version = "*"' in CAPTURE_FILTER_PATTERN
    # A version is one path segment: the spec's charset has no '/' (components/spec.py _VERSION_RE).
    from components.spec import _VERSION_RE

    assert _VERSION_RE.fullmatch("2.2.0") and not _VERSION_RE.fullmatch("2/2")


def test_dynamic_partitioning_buffers_at_least_64_mib_and_60_seconds(dev_run: ProgramRun) -> None:
    # CreateDeliveryStream fails with "BufferingHints.SizeInMBs must be at least 64 when Dynamic
    # Partitioning is enabled" (and IntervalInSeconds below 60 likewise): aws/aws-cdk
    # packages/aws-cdk-lib/aws-kinesisfirehose/lib/private/helpers.ts createBufferingHints, and the
    # Registry example sets buffering_size 64. The API's ranges: SizeInMBs 1-128, IntervalInSeconds
    # 0-900 (docs.aws.amazon.com/firehose/latest/APIReference/API_BufferingHints.html). The provider's
    # own default size is 5, which would fail the create: it must be set.
    s3 = stream_s3(dev_run)
    assert s3["bufferingSize"] == CAPTURE_BUFFER_MIB and 64 <= CAPTURE_BUFFER_MIB <= 128
    assert s3["bufferingInterval"] == CAPTURE_BUFFER_SECONDS and 60 <= CAPTURE_BUFFER_SECONDS <= 900


def test_error_prefix_takes_the_records_without_a_partition_key(dev_run: ProgramRun) -> None:
    s3 = stream_s3(dev_run)
    # "You MUST specify an S3 error bucket prefix ... if you want to enable dynamic partitioning";
    # records whose keys cannot be extracted are delivered there (dynamic-partitioning.html, "Dynamic
    # Partitioning Error Handling"). It must contain !{firehose:error-output-type} (s3-prefixes.html)
    # and cannot use a partition key: the records it takes are those without one.
    error = s3["errorOutputPrefix"]
    assert error == CAPTURE_ERROR_PREFIX and "!{firehose:error-output-type}" in error
    assert "partitionKeyFromQuery" not in error
    # "Prefix can't contain !{firehose:error-output-type}" (s3-prefixes.html, Semantic rules).
    assert "error-output-type" not in s3["prefix"]
    # Neither prefix may exceed 512 characters evaluated: the version is at most 63 characters.
    assert len(s3["prefix"].replace("!{partitionKeyFromQuery:model_version}", "v" * 63)) < 512


def _firehose_key(prefix: str, version: str) -> str:
    key = prefix.replace("!{partitionKeyFromQuery:model_version}", version)
    key = key.replace("!{timestamp:yyyy}", "2026").replace("!{timestamp:MM}", "01")
    return key.replace("!{timestamp:dd}", "12").replace("!{timestamp:HH}", "05")


def test_prefix_is_the_layout_the_drift_reader_prunes() -> None:
    # What Firehose writes for version 2.2.0 at 2026-01-12 05h with this prefix, read by drift/capture.py:
    # the version directory, then the date parts.
    segments = _firehose_key(CAPTURE_PREFIX, "2.2.0").strip("/").split("/")
    assert segment_version(segments[0]) == "2.2.0"
    assert segment_parts(segments) == {"y": 2026, "m": 1, "d": 12, "h": 5}
    # The layout stacks deployed before partitioning left under the same captureUri: date parts only.
    assert segment_parts(_firehose_key(CAPTURE_TIME_PREFIX, "").strip("/").split("/")) == segment_parts(segments)
    assert CAPTURE_ERROR_PREFIX.split("/")[0] == "error"  # a directory drift/capture.py skips


def test_stack_deployed_before_partitioning_replaces_its_stream_delete_first(
    run_edited: Callable[..., ProgramRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transition from main's stream (no dynamic partitioning) to this one, as the engine runs it.

    Rules: dynamic partitioning "can be enabled only when you create a new Firehose stream" and "cannot
    be disabled" (docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning.html, "How to enable");
    the provider marks dynamic_partitioning_configuration and its enabled ForceNew
    (hashicorp/terraform-provider-aws internal/service/firehose/delivery_stream.go; the Registry note
    "the provider will recreate the resource whenever dynamic partitioning is enabled or disabled"), so
    the stream is replaced. Its name is fixed and stream names are unique per account and region
    (CreateDeliveryStream: ResourceInUseException), so Pulumi's default create-before-delete would fail
    `pulumi up`; the registration must ask for delete-before-replace. The name, hence the ARN the
    subscription filter and the logs role's policy point at, stays the same.
    """
    asked: dict[str, bool] = {}
    register = harness._Monitor.RegisterResource

    def recording(self: Any, request: Any) -> Any:
        asked[request.name] = bool(request.deleteBeforeReplace)
        return register(self, request)

    monkeypatch.setattr(harness._Monitor, "RegisterResource", recording)
    run = run_edited(aws_only())
    new = one(run, STREAM).inputs
    # What main declared (the stream as it is in an existing stack's state).
    old = json.loads(json.dumps(new))
    del old["extendedS3Configuration"]["dynamicPartitioningConfiguration"]
    old["extendedS3Configuration"]["prefix"] = CAPTURE_TIME_PREFIX
    old["extendedS3Configuration"]["processingConfiguration"]["processors"] = [
        p
        for p in new["extendedS3Configuration"]["processingConfiguration"]["processors"]
        if p["type"] != "MetadataExtraction"
    ]

    def forced_new(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
        # The ForceNew paths of aws_kinesis_firehose_delivery_stream this component sets.
        paths = [("name",), ("destination",), ("extendedS3Configuration", "dynamicPartitioningConfiguration")]
        changed = []
        for path in paths:
            a, b = before, after
            for part in path:
                a, b = (a or {}).get(part), (b or {}).get(part)
            if a != b:
                changed.append(".".join(path))
        return changed

    assert forced_new(old, new) == ["extendedS3Configuration.dynamicPartitioningConfiguration"]
    assert asked[f"{FN}-capture-stream"] is True and old["name"] == new["name"]
    # Nothing else the component declares is replaced by delete-first (their names would not need it).
    assert [n for n, dbr in asked.items() if dbr] == [f"{FN}-capture-stream"]
    # The next `pulumi up` of the same config replaces nothing: the stream is not recreated every deploy.
    again = one(run_edited(aws_only()), STREAM).inputs
    assert forced_new(new, again) == []


def test_subscription_filter_sends_capture_records_of_this_log_group_to_the_stream(dev_run: ProgramRun) -> None:
    flt = one(dev_run, FILTER).inputs
    assert flt["logGroup"] == one(dev_run, LOGS).inputs["name"]
    assert flt["destinationArn"] == one(dev_run, STREAM).outputs["arn"]
    assert flt["roleArn"] == one(dev_run, ROLE, f"{FN}-logs-role").outputs["arn"]
    # A JSON filter's existence test is `$.key = "*"` (what CDK's FilterPattern.exists renders,
    # aws-cdk-lib/aws-logs/lib/pattern.ts), conditions joined with && inside one { } (CloudWatch Logs
    # FilterAndPatternSyntax docs); an empty pattern would ship every log line.
    assert flt["filterPattern"] == CAPTURE_FILTER_PATTERN
    assert CAPTURE_FILTER_PATTERN.startswith("{ ") and CAPTURE_FILTER_PATTERN.endswith(" }")
    assert all(c.strip().endswith('= "*"') for c in CAPTURE_FILTER_PATTERN.strip("{} ").split("&&"))
    # The handler's record keys (functions/capture.py, design.md capture record) are what it tests.
    for key in ("request_id", "model_version", "variant"):
        assert f"$.{key}" in CAPTURE_FILTER_PATTERN


def test_export_names_where_the_records_land(dev_run: ProgramRun) -> None:
    bucket = one(dev_run, BUCKET).inputs["bucket"]
    assert dict(dev_run.exports[FN])["captureUri"] == f"s3://{bucket}/"


# --- least privilege -----------------------------------------------------------------------------------


def test_logs_role_may_put_records_on_this_stream_only(dev_run: ProgramRun) -> None:
    role = one(dev_run, ROLE, f"{FN}-logs-role")
    [trust] = statements(role.inputs["assumeRolePolicy"])
    # CloudWatch Logs assumes the role as the regional service principal, scoped by aws:SourceArn
    # (docs.aws.amazon.com/AmazonCloudWatch/latest/logs/SubscriptionFilters.html#FirehoseExample).
    assert trust["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    assert trust["Condition"]["StringLike"]["aws:SourceArn"].startswith("arn:aws:logs:us-east-1:")
    policy = one(dev_run, POLICY, f"{FN}-logs-policy")
    assert policy.inputs["role"] == role.outputs.get("id", f"{role.name}-id")
    [stmt] = statements(policy.inputs["policy"])
    assert sorted(stmt["Action"]) == ["firehose:PutRecord", "firehose:PutRecordBatch"]
    assert stmt["Resource"] == [one(dev_run, STREAM).outputs["arn"]]


def test_firehose_role_may_write_to_the_bucket_only(dev_run: ProgramRun) -> None:
    role = one(dev_run, ROLE, f"{FN}-firehose-role")
    [trust] = statements(role.inputs["assumeRolePolicy"])
    assert trust["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert "sts:ExternalId" in trust["Condition"]["StringEquals"]
    bucket_arn = one(dev_run, BUCKET).outputs["arn"]
    policy = one(dev_run, POLICY, f"{FN}-firehose-policy")
    assert policy.inputs["role"] == role.outputs.get("id", f"{role.name}-id")
    stmts = statements(policy.inputs["policy"])
    resources = sorted(r for s in stmts for r in s["Resource"])
    assert resources == [bucket_arn, f"{bucket_arn}/*"]
    actions = {a for s in stmts for a in s["Action"]}
    assert "*" not in "".join(actions) and "s3:PutObject" in actions and "s3:DeleteObject" not in actions


# --- switches ------------------------------------------------------------------------------------------


CAPTURE_RESOURCES = {BUCKET, PAB, SSE, LIFECYCLE, STREAM, FILTER}


def test_capture_disabled_declares_none_of_it(run_edited: Callable[..., ProgramRun]) -> None:
    run = edited(run_edited, enabled=False)
    kids = children(run)
    assert not {r.type for r in kids} & CAPTURE_RESOURCES
    assert [r.name for r in kids if r.type == ROLE] == [f"{FN}-role"]
    assert dict(run.exports[FN])["captureUri"] is None


def test_destination_given_delivers_there_without_a_bucket(run_edited: Callable[..., ProgramRun]) -> None:
    run = edited(run_edited, destination="s3://lake-bucket/captures")
    kids = children(run)
    assert not {r.type for r in kids} & {BUCKET, PAB, SSE, LIFECYCLE}
    s3 = one(run, STREAM).inputs["extendedS3Configuration"]
    assert s3["bucketArn"] == "arn:aws:s3:::lake-bucket"
    own = "captures/inferops-dev-fraud-scorer/"
    assert s3["prefix"] == own + CAPTURE_PREFIX and s3["errorOutputPrefix"].startswith(own)
    stmts = statements(one(run, POLICY, f"{FN}-firehose-policy").inputs["policy"])
    # Objects only under this function's own prefix of the shared bucket.
    assert sorted(r for s in stmts for r in s["Resource"]) == [
        "arn:aws:s3:::lake-bucket",
        f"arn:aws:s3:::lake-bucket/{own}*",
    ]
    assert dict(run.exports[FN])["captureUri"] == f"s3://lake-bucket/{own}"


def test_non_s3_destination_fails_with_the_field_named(run_edited: Callable[..., ProgramRun]) -> None:
    with pytest.raises(ProgramError, match=r"inferops:functions\[fraud-scorer\]\.capture\.destination"):
        edited(run_edited, destination="gs://lake-bucket/captures")


def test_capture_destination_helper() -> None:
    assert capture_destination(None, "b", "fn") == ("b", "")
    assert capture_destination("s3://lake", "", "fn") == ("lake", "fn/")
    assert capture_destination("s3://lake/a/b/", "", "fn") == ("lake", "a/b/fn/")
    with pytest.raises(ValueError, match=r"capture\.destination"):
        capture_destination("az://c/p", "", "fn")


def test_handler_configured_by_this_environment_prints_lines_the_filter_selects(
    dev_run: ProgramRun, capsys: pytest.CaptureFixture[str]
) -> None:
    from functions import capture

    env = dict(one(dev_run, FUNCTION).inputs["environment"]["variables"])
    cap = capture.Capture.from_env(env)
    assert cap.config.enabled and cap.config.variant == "canary" and cap.writer is None  # the stdout path
    cap.emit({"request_id": "r-1", "model_id": "m", "model_version": "2.2.0", "variant": "canary", "prediction": 1})
    [line] = capsys.readouterr().out.splitlines()
    record = json.loads(line)  # one JSON object per log event: what the JSON filter pattern tests
    keys = [c.strip().split(" ")[0].removeprefix("$.") for c in CAPTURE_FILTER_PATTERN.strip("{} ").split("&&")]
    assert keys == ["request_id", "model_version", "variant"]
    assert all(isinstance(record[k], str) and record[k] for k in keys)


def test_physical_names_of_a_long_function_name_fit_the_service_limits(run_edited: Callable[..., ProgramRun]) -> None:
    # S3 bucket names: 3-63 lowercase letters, digits, '.', '-' (docs.aws.amazon.com/AmazonS3/latest/
    # userguide/bucketnamingrules.html); Firehose stream names: 1-64 of [a-zA-Z0-9_.-]
    # (docs.aws.amazon.com/firehose/latest/APIReference/API_CreateDeliveryStream.html); IAM role names:
    # 64 of [\w+=,.@-] (docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html).
    long_name = "fraud-scorer-" + "x" * 50

    def rename(fn: dict[str, Any]) -> None:
        fn["name"] = long_name

    run = run_edited(aws_only(rename))
    [bucket] = run.of_type(BUCKET)
    assert re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket.inputs["bucket"])
    [stream] = run.of_type(STREAM)
    assert re.fullmatch(r"[a-zA-Z0-9_.-]{1,64}", stream.inputs["name"])
    roles = [r.inputs["name"] for r in run.of_type(ROLE)]
    assert len(roles) == 3 and len(set(roles)) == 3
    assert all(re.fullmatch(r"[\w+=,.@-]{1,64}", n) for n in roles)
