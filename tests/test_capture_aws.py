"""AWS data capture under the mocks: log group -> subscription filter -> Firehose -> S3 (issue 13)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from components.aws import (
    CAPTURE_ERROR_PREFIX,
    CAPTURE_FILTER_PATTERN,
    CAPTURE_TIME_PREFIX,
    capture_destination,
    capture_variant,
)
from drift.capture import segment_parts
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
    assert kinds == ["Decompression", "CloudWatchLogProcessing", "AppendDelimiterToRecord"]
    params = {
        p["type"]: {q["parameterName"]: q["parameterValue"] for q in p.get("parameters") or []}
        for p in processing["processors"]
    }
    assert params["Decompression"] == {"CompressionFormat": "GZIP"}
    assert params["CloudWatchLogProcessing"] == {"DataMessageExtraction": "true"}
    # A custom prefix with !{timestamp} requires an error prefix with !{firehose:error-output-type}
    # (docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html).
    assert s3["prefix"] == CAPTURE_TIME_PREFIX and "!{firehose:error-output-type}" in s3["errorOutputPrefix"]


def test_prefix_is_the_layout_the_drift_reader_prunes() -> None:
    # What Firehose writes for 2026-01-12 05h with this prefix, read back by drift/capture.py.
    key = CAPTURE_TIME_PREFIX.replace("!{timestamp:yyyy}", "2026").replace("!{timestamp:MM}", "01")
    key = key.replace("!{timestamp:dd}", "12").replace("!{timestamp:HH}", "05")
    parts = segment_parts(key.strip("/").split("/"))
    assert parts == {"y": 2026, "m": 1, "d": 12, "h": 5}
    assert CAPTURE_ERROR_PREFIX.split("/")[0] == "error"  # a directory drift/capture.py skips


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
    assert s3["prefix"] == own + CAPTURE_TIME_PREFIX and s3["errorOutputPrefix"].startswith(own)
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
