"""AWS Lambda inference function: role, log group, function, pinned versions, live alias, URL, budget.

One :class:`AwsInferenceFunction` per function of platform ``aws``. What it declares, and why:

* an execution role trusted only by ``lambda.amazonaws.com`` from this account, with one inline policy
  of explicit actions: write to its own log group, read the model's artifact prefix in S3;
* the log group ``/aws/lambda/<function>`` with a retention, created before the function so no log
  line is lost and the role needs no ``logs:CreateLogGroup``;
* the Lambda function (``publish=True``): every change of code or configuration publishes a new
  immutable version that snapshots the model id, version and artifact URI held in its environment;
* one *pinned* alias per model version in use (``v<version>``). The alias of ``model.version`` follows
  each new publish; the alias of ``model.stableVersion`` (while it differs) ignores changes to its
  version, so it keeps the last build published while that model was serving: the rollback target;
* the ``live`` alias, which every caller uses: it points at the stable pinned build and, while a
  canary runs, routes ``canaryPercent`` % of requests to the candidate build
  (``routingConfig.additionalVersionWeights``). AWS does not allow provisioned concurrency on an alias
  with a routing configuration, so ``scaling.minInstances`` is provisioned on the pinned aliases: the
  stable one always, the candidate one while it takes a share (both sides of a split, priced as
  such); ``scaling.maxInstances`` is the function's reserved concurrency;
* a function URL on the live alias, ``AWS_IAM`` auth unless ``endpoint.public`` is set explicitly;
* with ``capture.enabled``: a subscription filter on the log group (the handler's capture lines only)
  to a Firehose delivery stream that decompresses the CloudWatch Logs envelope, extracts each message
  and writes gzip JSON Lines to S3 under ``model_version=/year=/month=/day=/hour=`` (dynamic
  partitioning on the record's ``model_version``): a private, encrypted bucket with
  lifecycle expiry it declares, or ``capture.destination``; one least-privilege role per hop. The
  handler's ``INFEROPS_VARIANT`` is derived from the config each version is published from
  (:func:`capture_variant`); see docs/components-aws.md;
* a monthly AWS Budgets cost budget filtered on the stack-scoped ``function-name`` tag that only this
  function's resources of this stack carry, with a notification per alert threshold (plus a forecast
  one at 100 %).

Physical names are stack-scoped: the Lambda function is named by its ``function-name`` value
(:func:`components.tags.function_key`, at most 63 of Lambda's 64 characters), the role, the log group
and the budget derive from it.

Rollback is a config change: ``canaryPercent: 0`` sends every request to the pinned stable build;
``version: <stableVersion>`` makes the stable pinned alias the only one and removes the split.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pulumi
import pulumi_aws as aws
from pulumi import ResourceOptions

from components.spec import FunctionSpec, StackSpec
from components.tags import (
    FUNCTION_KEY,
    STACK_KEY,
    cloud_metadata,
    function_key,
    scoped_name,
    truncate_with_hash,
)

TYPE = "inferops:aws:InferenceFunction"
#: The alias every caller (and the function URL) uses.
LIVE_ALIAS = "live"
RUNTIME = "python3.12"
#: ``functions/`` is the code root on Lambda; ``aws_lambda.py`` then imports ``core`` as a top-level module.
HANDLER = "aws_lambda.handler"
LOG_RETENTION_DAYS = 30
#: The handler's source directory, resolved from this file so the program works from any cwd.
FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"

# Service limits (docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html,
# API_budgets_Notification.html): function names 64 characters, budget names 100 characters without
# ':' or '\', at most 10 notifications per budget and 10 e-mail subscribers per notification; IAM
# role names 64 characters of [\w+=,.@-] (docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html).
_LAMBDA_NAME_MAX = 64
_ROLE_NAME_MAX = 64
_BUDGET_NAME_MAX = 100
_MAX_NOTIFICATIONS = 10
_MAX_EMAIL_SUBSCRIBERS = 10
_VERSION_SEGMENT = re.compile(r"^v?\d+(\.\d+)+([-+_.][0-9A-Za-z.]+)?$")


# --- pure helpers (unit-tested directly) ---------------------------------------------------------


def _short_hash(text: str, n: int = 7) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def physical_name(parts: list[str], max_len: int, allowed: str = r"[^A-Za-z0-9_-]") -> str:
    """``parts`` joined by ``-`` in a cloud's charset, cut to ``max_len`` with a short hash if needed.

    The hash is of the unsanitised joined name, so two names that only differ in dropped characters
    or in the cut-off tail still get different physical names.
    """
    joined = "-".join(parts)
    clean = re.sub(allowed, "-", joined)
    if clean == joined and len(clean) <= max_len:
        return clean
    suffix = _short_hash(joined, 8)
    return f"{clean[: max_len - len(suffix) - 1].rstrip('-')}-{suffix}"


def alias_name_for(model_version: str) -> str:
    """Lambda alias name (``[a-zA-Z0-9-_]+``, not all digits, at most 128) of a model version."""
    slug = re.sub(r"[^A-Za-z0-9-_]", "-", model_version)
    name = f"v{slug}"
    if slug != model_version:  # '2.1.0' and '2-1-0' must not share an alias
        name = f"{name}-{_short_hash(model_version, 6)}"
    return name[:128]


def build_label(model_id: str, model_version: str) -> str:
    """Description of a pinned alias: which model the Lambda version it points at was built with."""
    return f"inferops build of model {model_id} {model_version}"


def partition_of(region: str) -> str:
    """The ARN partition of a region name."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("us-iso-"):
        return "aws-iso"
    if region.startswith("us-isob-"):
        return "aws-iso-b"
    return "aws"


def artifact_read_arn(artifact_uri: str, model_version: str, partition: str = "aws") -> str:
    """The S3 object ARN pattern the role may read: the model's prefix above its version directory.

    The role is shared by every published version of the function, so the stable build (reading
    ``.../2.1.0/model.json``) and the candidate (``.../2.2.0/model.json``) must both be readable:
    ``s3://b/fraud-scorer/2.2.0/model.json`` (or ``s3://b/fraud-scorer/{version}/model.json``) gives
    ``arn:aws:s3:::b/fraud-scorer/*``. Without a version directory the object's own directory is used;
    an object at the bucket root gives that object only.
    """
    parsed = urlparse(artifact_uri)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise ValueError(f"model.artifactUri: {artifact_uri!r} is not an s3://bucket/key URI")
    bucket, segments = parsed.netloc, parsed.path.strip("/").split("/")
    dirs = segments[:-1]
    for i, seg in enumerate(dirs):
        if "{version}" in seg or seg in (model_version, f"v{model_version}") or _VERSION_SEGMENT.match(seg):
            dirs = dirs[:i]
            break
    if not dirs:
        if len(segments) == 1 and "{version}" not in segments[0]:
            return f"arn:{partition}:s3:::{bucket}/{segments[0]}"
        return f"arn:{partition}:s3:::{bucket}/*"
    return f"arn:{partition}:s3:::{bucket}/{'/'.join(dirs)}/*"


def artifact_names_other_version(artifact_uri: str, model_version: str) -> str | None:
    """A version-like directory of ``artifact_uri`` that is not ``model_version``, if any.

    The drift loop's rollback sets ``model.version`` back to ``stableVersion`` without touching
    ``artifactUri``; publishing that config would serve the candidate's artifact under the stable
    version's name. Such a URI is detected here and the component keeps the pinned stable build.
    """
    path = urlparse(artifact_uri).path.strip("/").split("/")[:-1]
    versions = [s for s in path if _VERSION_SEGMENT.match(s) or s in (model_version, f"v{model_version}")]
    if not versions or model_version in versions or f"v{model_version}" in versions:
        return None
    return versions[0]


def alias_routing(
    stable_build: str, stable_label: str, expected_stable_label: str, candidate_build: str | None, percent: int
) -> tuple[str, dict[str, float], str | None]:
    """The live alias's primary version, its additional version weights, and a warning (or None).

    ``stable_build``/``stable_label`` are the stable pinned alias's version and description as the
    provider reports them; ``candidate_build`` is the version of ``model.version`` (None without a
    canary). A stable alias whose label is not ``expected_stable_label`` was created on a stack that
    never served the stable model (its build is the candidate's), so there is nothing to split with.
    """
    if candidate_build is None or percent <= 0:
        return stable_build, {}, None
    if stable_label != expected_stable_label or stable_build == candidate_build:
        warning = (
            f"no published build of the stable model exists on this stack ({stable_label!r} instead of "
            f"{expected_stable_label!r}); every request goes to the candidate. Deploy the stable version "
            "alone first (model.version = model.stableVersion), then start the canary"
        )
        return candidate_build, {}, warning
    if percent >= 100:
        return candidate_build, {}, None
    return stable_build, {candidate_build: round(percent / 100, 4)}, None


def role_policy_document(log_group_arn: str, artifact_arn: str) -> str:
    """The execution role's inline policy: explicit actions on explicit resources only."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "WriteOwnLogs",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": [f"{log_group_arn}:log-stream:*"],
                },
                {
                    "Sid": "ReadModelArtifacts",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject"],
                    "Resource": [artifact_arn],
                },
            ],
        },
        sort_keys=True,
    )


def service_trust(service: str, condition: dict[str, dict[str, str]]) -> str:
    """A trust policy letting one AWS service principal assume the role, under ``condition``.

    Every role of the component trusts exactly one service, always with a condition that ties it to
    this account (the confused-deputy guard IAM recommends).
    """
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                    "Condition": condition,
                }
            ],
        },
        sort_keys=True,
    )


def trust_policy_document(account_id: str) -> str:
    """Only the Lambda service, acting for this account, may assume the role."""
    return service_trust("lambda.amazonaws.com", {"StringEquals": {"aws:SourceAccount": account_id}})


def budget_notifications(thresholds: list[int], emails: list[str]) -> list[aws.budgets.BudgetNotificationArgs]:
    """One ACTUAL notification per threshold, and a FORECASTED one at 100 % when room is left."""
    if not emails:
        return []
    notes = [
        aws.budgets.BudgetNotificationArgs(
            comparison_operator="GREATER_THAN",
            notification_type="ACTUAL",
            threshold=float(t),
            threshold_type="PERCENTAGE",
            subscriber_email_addresses=list(emails),
        )
        for t in thresholds
    ]
    if len(notes) < _MAX_NOTIFICATIONS:
        notes.append(
            aws.budgets.BudgetNotificationArgs(
                comparison_operator="GREATER_THAN",
                notification_type="FORECASTED",
                threshold=100.0,
                threshold_type="PERCENTAGE",
                subscriber_email_addresses=list(emails),
            )
        )
    return notes


def code_archive() -> pulumi.AssetArchive:
    """The handler package: the Python sources of ``functions/`` at the root of the zip.

    Only top-level ``*.py`` modules: caches, sample models and the container build files stay out.
    The core needs only the standard library and boto3, which the Lambda runtime provides.
    """
    files = sorted(p for p in FUNCTIONS_DIR.glob("*.py") if p.name != "__init__.py") if FUNCTIONS_DIR.is_dir() else []
    return pulumi.AssetArchive({p.name: pulumi.FileAsset(str(p)) for p in files})


def _check_limits(fn: FunctionSpec, stack: StackSpec) -> None:
    where = f"inferops:functions[{fn.name}]"
    if len(fn.finops.alert_thresholds_percent) > _MAX_NOTIFICATIONS:
        raise pulumi.RunError(
            f"{where}.finops.alertThresholdsPercent: AWS Budgets allows at most {_MAX_NOTIFICATIONS} "
            f"notifications per budget (got {len(fn.finops.alert_thresholds_percent)})"
        )
    if len(stack.budget_alert_emails) > _MAX_EMAIL_SUBSCRIBERS:
        raise pulumi.RunError(
            f"inferops:budgetAlertEmails: AWS Budgets allows at most {_MAX_EMAIL_SUBSCRIBERS} e-mail "
            f"subscribers per notification (got {len(stack.budget_alert_emails)})"
        )
    # Provisioned concurrency sits on both pinned builds during a canary, and the sum of a function's
    # provisioned concurrency cannot exceed its reserved concurrency (maxInstances here):
    # docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html.
    sides = 2 if fn.canary_percent else 1
    if fn.scaling.min_instances * sides > fn.scaling.max_instances:
        raise pulumi.RunError(
            f"{where}.scaling.minInstances: {fn.scaling.min_instances} provisioned instances on each of "
            f"{sides} serving build(s) exceed maxInstances {fn.scaling.max_instances} (the reserved concurrency)"
        )
    try:
        artifact_read_arn(fn.model.artifact_uri, fn.model.version)
    except ValueError as exc:
        raise pulumi.RunError(f"{where}.{exc}") from None


def cost_allocation_tags() -> list[aws.costexplorer.CostAllocationTag]:
    """Activate the user tags the budgets filter on (``function-name``) and billing groups by (``stack``).

    AWS Budgets and Cost Explorer ignore a user-defined tag until it is activated as a cost-allocation
    tag (docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/activating-tags.html), so a budget's
    ``TagKeyValue`` filter sees $0 until then. Activation is account-wide (the management account of
    an organization), works only once the key appears in billing data (up to 24 hours after the first
    tagged resource), and is kept on ``pulumi destroy`` (``retain_on_delete``) because other stacks
    rely on it: hence opt-in per stack (``inferops:awsActivateCostAllocationTags``).
    """
    return [
        aws.costexplorer.CostAllocationTag(
            f"cost-allocation-tag-{key}",
            tag_key=key,
            status="Active",
            opts=ResourceOptions(retain_on_delete=True),
        )
        for key in (FUNCTION_KEY, STACK_KEY)
    ]


# --- data capture (issue 13): log group -> subscription filter -> Firehose -> S3 ------------------

#: Only the handler's capture lines reach the stream. They are the JSON objects ``functions/capture.py``
#: writes to stdout, which Lambda sends as plain text even with the JSON log format ("if your function
#: outputs logs using Python print statements, Lambda can only send log outputs to CloudWatch Logs in
#: plain text format": docs.aws.amazon.com/lambda/latest/dg/python-logging.html), so the event *is* the
#: record. ``{ $.key = "*" }`` matches when the key exists: CDK's ``FilterPattern.exists`` renders
#: exactly that (aws-cdk-lib/aws-logs/lib/pattern.ts, ``JSONStringPattern(jsonField, '=', '*')``,
#: quoted), and ``&&`` joins JSON conditions
#: (docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html).
CAPTURE_FILTER_PATTERN = '{ $.request_id = "*" && $.model_version = "*" && $.variant = "*" }'
#: Hive-style hour partitions by arrival time, which ``drift/capture.py`` reads (year=/month=/day=/hour=).
CAPTURE_TIME_PREFIX = "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"
#: Dynamic partitioning by inline parsing: Firehose's jq (JQ-1.6, the only engine) evaluates this on each
#: record and names the keys ``!{partitionKeyFromQuery:<key>}`` uses in the prefix
#: (docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning.html, "Creating partitioning keys with
#: inline parsing"). The record is the handler's capture line once CloudWatch Logs decompression and
#: message extraction have run; the subscription filter only passes lines that carry ``model_version``.
CAPTURE_PARTITION_QUERY = "{model_version:.model_version}"
CAPTURE_JQ_ENGINE = "JQ-1.6"
#: One partition per model version, then the arrival hour: ``model_version=<v>/year=/month=/day=/hour=/``,
#: the Hive layout the Kubernetes writer uses too, so a version's records are one prefix to read.
CAPTURE_PREFIX = f"model_version=!{{partitionKeyFromQuery:model_version}}/{CAPTURE_TIME_PREFIX}"
#: Dynamic partitioning needs a buffer of at least 64 MiB and 60 s ("BufferingHints.SizeInMBs must be at
#: least 64 when Dynamic Partitioning is enabled", the CreateDeliveryStream error CDK checks for in
#: aws-cdk-lib/aws-kinesisfirehose/lib/private/helpers.ts ``createBufferingHints``); 900 s is the API's
#: ceiling (API_BufferingHints). 300 s is Firehose's default interval: capture volumes are small, so the
#: interval is what flushes, and objects land within 1.5 x 300 s (multi-stage buffering with dynamic
#: partitioning, dynamic-partitioning.html "Data buffering"), inside the reader's ARRIVAL_SLACK.
CAPTURE_BUFFER_MIB = 64
CAPTURE_BUFFER_SECONDS = 300
#: A custom prefix with ``!{timestamp}`` needs an error prefix with ``!{firehose:error-output-type}``
#: (docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html), and dynamic partitioning needs one at all:
#: records whose keys cannot be extracted go there (dynamic-partitioning.html, "Dynamic Partitioning Error
#: Handling"), so it names no partition key. drift/capture.py skips an ``error`` directory.
CAPTURE_ERROR_PREFIX = (
    "error/!{firehose:error-output-type}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
)
_BUCKET_NAME_MAX = 63
_FIREHOSE_NAME_MAX = 64
_FILTER_NAME_MAX = 512


def capture_variant(fn: FunctionSpec) -> str:
    """``INFEROPS_VARIANT`` of the build published from this config: ``canary`` for a candidate build.

    Lambda's environment belongs to the function, and each published version snapshots it
    (docs.aws.amazon.com/lambda/latest/dg/configuration-versions.html). The stable pinned alias keeps
    the version published while ``model.version`` was the stable version (so that snapshot says
    ``stable``), and the candidate's build is published from a config whose ``model.version`` differs
    from ``stableVersion``: the variant is a function of the config a version was published from.
    """
    return "canary" if fn.model.version != fn.stable_version else "stable"


def capture_environment(fn: FunctionSpec) -> dict[str, str]:
    """The handler's capture variables (functions/README.md) from ``fn.capture``."""
    return {
        "INFEROPS_CAPTURE_ENABLED": "true" if fn.capture.enabled else "false",
        "INFEROPS_CAPTURE_SAMPLE_PERCENT": f"{fn.capture.sample_percent:g}",
        "INFEROPS_VARIANT": capture_variant(fn),
    }


def capture_destination(destination: str | None, bucket: str, lambda_name: str) -> tuple[str, str]:
    """(bucket, key prefix) records land under: the declared bucket's root, or ``<destination>/<function>/``.

    A given destination may be shared by several functions and stacks, so each function writes below
    its own stack-scoped name there.
    """
    if destination is None:
        return bucket, ""
    parsed = urlparse(destination)
    if parsed.scheme != "s3":
        raise ValueError(f"capture.destination: {destination!r} is not an s3:// URI (platform aws)")
    base = parsed.path.strip("/")
    return parsed.netloc, f"{base}/{lambda_name}/" if base else f"{lambda_name}/"


def firehose_processors() -> list[
    aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationProcessingConfigurationProcessorArgs
]:
    """Decompress the CloudWatch Logs envelope, extract each log event's message, partition it by model
    version, one record a line.

    Decompression (``CompressionFormat=GZIP``) then ``CloudWatchLogProcessing`` with
    ``DataMessageExtraction=true`` (docs.aws.amazon.com/firehose/latest/dev/Message_extraction.html;
    CDK's CloudWatchLogProcessor "must be used with DecompressionProcessor"); decompression is what makes
    CloudWatch Logs data partitionable ("use ... Dynamic partitioning. You must enable decompression",
    docs.aws.amazon.com/firehose/latest/dev/writing-with-cloudwatch-logs.html). ``MetadataExtraction``
    with ``MetadataExtractionQuery`` and ``JsonParsingEngine`` (the parameter names of the Registry docs
    of aws.kinesis.FirehoseDeliveryStream, "Extended S3 Destination with dynamic partitioning") yields
    the partition key; ``AppendDelimiterToRecord`` puts a newline after each record
    (docs.aws.amazon.com/firehose/latest/APIReference/API_Processor.html).
    """
    proc = aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationProcessingConfigurationProcessorArgs
    param = aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationProcessingConfigurationProcessorParameterArgs
    return [
        proc(type="Decompression", parameters=[param(parameter_name="CompressionFormat", parameter_value="GZIP")]),
        proc(
            type="CloudWatchLogProcessing",
            parameters=[param(parameter_name="DataMessageExtraction", parameter_value="true")],
        ),
        proc(
            type="MetadataExtraction",
            parameters=[
                param(parameter_name="JsonParsingEngine", parameter_value=CAPTURE_JQ_ENGINE),
                param(parameter_name="MetadataExtractionQuery", parameter_value=CAPTURE_PARTITION_QUERY),
            ],
        ),
        proc(type="AppendDelimiterToRecord"),
    ]


def logs_to_firehose_trust(region: str, account_id: str, partition: str = "aws") -> str:
    """CloudWatch Logs of this region, for this account's log groups only, may assume the role.

    docs.aws.amazon.com/AmazonCloudWatch/latest/logs/SubscriptionFilters.html#FirehoseExample.
    """
    source = f"arn:{partition}:logs:{region}:{account_id}:*"
    return service_trust(f"logs.{region}.amazonaws.com", {"StringLike": {"aws:SourceArn": source}})


def logs_to_firehose_policy(stream_arn: str) -> str:
    """Put records on this one delivery stream, nothing else."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PutCaptureRecords",
                    "Effect": "Allow",
                    "Action": ["firehose:PutRecord", "firehose:PutRecordBatch"],
                    "Resource": [stream_arn],
                }
            ],
        },
        sort_keys=True,
    )


def firehose_trust(account_id: str) -> str:
    """Only Firehose acting for this account may assume the delivery role (confused-deputy guard)."""
    return service_trust("firehose.amazonaws.com", {"StringEquals": {"sts:ExternalId": account_id}})


def firehose_to_s3_policy(bucket: str, prefix: str, partition: str = "aws") -> str:
    """The S3 actions Firehose needs to deliver (docs.aws.amazon.com/firehose/latest/dev/controlling-access.html
    #using-iam-s3), on this bucket and, for objects, only under the function's prefix."""
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DeliveryBucket",
                    "Effect": "Allow",
                    "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                    "Resource": [bucket_arn],
                },
                {
                    "Sid": "DeliveryObjects",
                    "Effect": "Allow",
                    "Action": ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
                    "Resource": [f"{bucket_arn}/{prefix}*"],
                },
            ],
        },
        sort_keys=True,
    )


# --- the component -------------------------------------------------------------------------------


class AwsInferenceFunction(pulumi.ComponentResource):
    """An inference function on AWS Lambda with canary routing, least-privilege IAM and a budget.

    Public outputs: ``endpoint`` (the function URL, or the live alias's invoke ARN when the endpoint is
    disabled), ``budget_id``, ``function_name``, ``live_alias_arn``, ``capture_uri`` (None when capture
    is disabled).
    """

    endpoint: pulumi.Output[str]
    budget_id: pulumi.Output[str]
    function_name: pulumi.Output[str]
    live_alias_arn: pulumi.Output[str]

    def __init__(self, name: str, fn: FunctionSpec, stack: StackSpec, opts: ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, {}, opts)
        child = ResourceOptions(parent=self)
        _check_limits(fn, stack)

        project, stack_name = pulumi.get_project(), pulumi.get_stack()
        tags = cloud_metadata(fn, "aws", stack=stack_name, project=project).tags
        region = fn.region
        partition = partition_of(region)
        model = fn.model
        # ``{version}`` in artifactUri resolves to the serving version: the URI this build loads.
        artifact_uri = model.artifact_for(model.version)
        # The function-name value is a valid Lambda name ([a-z0-9-], at most 63 of 64 characters).
        lambda_name = function_key(project, stack_name, fn.name)
        account_id = aws.get_caller_identity_output().account_id

        # --- identity and logs ---------------------------------------------------------------------
        role = aws.iam.Role(
            f"{name}-role",
            # Explicit: auto-naming appends 8 characters to the logical name and IAM is account-global.
            name=scoped_name(project, stack_name, fn.name, max_len=_ROLE_NAME_MAX, suffix="-role"),
            assume_role_policy=account_id.apply(trust_policy_document),
            description=f"Execution role of the inference function {lambda_name}",
            tags=tags,
            opts=child,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{lambda_name}",
            retention_in_days=LOG_RETENTION_DAYS,
            region=region,
            tags=tags,
            opts=child,
        )
        artifact_arn = artifact_read_arn(model.artifact_uri, model.version, partition)
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=log_group.arn.apply(lambda arn: role_policy_document(arn, artifact_arn)),
            opts=child,
        )

        # --- the function: each publish snapshots the model in its environment ---------------------
        function = aws.lambda_.Function(
            f"{name}-function",
            name=lambda_name,
            role=role.arn,
            runtime=RUNTIME,
            handler=HANDLER,
            code=code_archive(),
            architectures=[fn.runtime.architecture],
            memory_size=fn.runtime.memory_mb,
            timeout=fn.runtime.timeout_seconds,
            reserved_concurrent_executions=fn.scaling.max_instances,
            publish=True,
            description=build_label(model.id, model.version),
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    "INFEROPS_FUNCTION": fn.name,
                    "MODEL_ID": model.id,
                    "MODEL_VERSION": model.version,
                    "MODEL_URI": artifact_uri,
                    **capture_environment(fn),
                }
            ),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="JSON", log_group=log_group.name),
            region=region,
            tags=tags,
            # The role's policy must exist before the first invocation can log or read the model.
            opts=ResourceOptions.merge(child, ResourceOptions(depends_on=[policy])),
        )

        # --- pinned builds: one alias per model version in use -------------------------------------
        stale = artifact_names_other_version(artifact_uri, model.version)
        if stale is not None:
            pulumi.log.warn(
                f"{fn.name}: model.artifactUri names version {stale} but model.version is {model.version}; "
                f"the live alias keeps the build pinned for {model.version} and does not take the new one. "
                "Set artifactUri to the artifact of model.version.",
                resource=self,
            )

        def pinned(version: str, frozen: bool) -> aws.lambda_.Alias:
            # A frozen alias keeps the version it already points at (ignore_changes): the build that was
            # published while that model was serving. On creation it takes the current build.
            return aws.lambda_.Alias(
                f"{name}-{alias_name_for(version)}",
                name=alias_name_for(version),
                function_name=function.name,
                function_version=function.version,
                description=build_label(model.id, model.version),
                region=region,
                opts=ResourceOptions.merge(
                    child,
                    ResourceOptions(ignore_changes=["functionVersion", "description"] if frozen else None),
                ),
            )

        stable = fn.stable_version
        stable_alias = pinned(stable, frozen=stable != model.version or stale is not None)
        candidate_alias = pinned(model.version, frozen=stale is not None) if stable != model.version else None
        percent = fn.canary_percent

        def route(args: list[Any]) -> tuple[str, dict[str, float]]:
            stable_build, stable_label, candidate_build = args
            primary, weights, warning = alias_routing(
                stable_build, stable_label, build_label(model.id, stable), candidate_build, percent
            )
            if warning:
                pulumi.log.warn(f"{fn.name}: {warning}", resource=self)
            return primary, weights

        routing = pulumi.Output.all(
            stable_alias.function_version,
            stable_alias.description,
            candidate_alias.function_version if candidate_alias is not None else None,
        ).apply(route)

        live = aws.lambda_.Alias(
            f"{name}-{LIVE_ALIAS}",
            name=LIVE_ALIAS,
            function_name=function.name,
            function_version=routing.apply(lambda r: r[0]),
            # No routing block at all when nothing is split: the provider then clears any old weights.
            routing_config=routing.apply(
                lambda r: aws.lambda_.AliasRoutingConfigArgs(additional_version_weights=r[1]) if r[1] else None
            ),
            description=(f"Serves {model.id} {stable}" + (f", {percent}% on {model.version}" if percent else "")),
            region=region,
            opts=child,
        )

        # AWS: "you can't manage provisioned concurrency settings on the alias while the routing
        # configuration is in place" (docs.aws.amazon.com/lambda/latest/dg/configuration-aliases.html):
        # never on the live alias, but on each pinned build that takes traffic.
        if fn.scaling.min_instances > 0:
            serving = [(stable, stable_alias)]
            if candidate_alias is not None and percent:
                serving.append((model.version, candidate_alias))
            for version, alias in serving:
                aws.lambda_.ProvisionedConcurrencyConfig(
                    f"{name}-provisioned-{alias_name_for(version)}",
                    function_name=function.name,
                    qualifier=alias.name,
                    provisioned_concurrent_executions=fn.scaling.min_instances,
                    region=region,
                    opts=child,
                )

        # --- endpoint ------------------------------------------------------------------------------
        if fn.endpoint.enabled:
            public = fn.endpoint.public
            url = aws.lambda_.FunctionUrl(
                f"{name}-url",
                function_name=function.name,
                qualifier=live.name,
                authorization_type="NONE" if public else "AWS_IAM",
                region=region,
                opts=child,
            )
            if public:
                # Since October 2025 an unauthenticated URL needs both statements; each is scoped to the
                # live alias and, for InvokeFunction, to calls that arrive through the function URL.
                aws.lambda_.Permission(
                    f"{name}-public-url",
                    action="lambda:InvokeFunctionUrl",
                    function=function.name,
                    qualifier=live.name,
                    principal="*",
                    function_url_auth_type="NONE",
                    region=region,
                    opts=child,
                )
                aws.lambda_.Permission(
                    f"{name}-public-invoke",
                    action="lambda:InvokeFunction",
                    function=function.name,
                    qualifier=live.name,
                    principal="*",
                    invoked_via_function_url=True,
                    region=region,
                    opts=child,
                )
            endpoint: pulumi.Output[str] = url.function_url
        else:
            endpoint = live.invoke_arn

        # --- data capture: the handler's records, log group -> Firehose -> S3 -----------------------
        capture_uri: pulumi.Output[str] | None = None
        if fn.capture.enabled:
            capture_uri = self._capture(name, fn, tags, lambda_name, log_group, account_id, region, partition, child)

        # --- budget --------------------------------------------------------------------------------
        if not stack.budget_alert_emails:
            pulumi.log.warn(
                f"{fn.name}: inferops:budgetAlertEmails is empty; the budget is created without notifications",
                resource=self,
            )
        budget = aws.budgets.Budget(
            f"{name}-budget",
            name=physical_name([tags[FUNCTION_KEY]], _BUDGET_NAME_MAX, r"[^A-Za-z0-9_.-]"),
            budget_type="COST",
            limit_amount=tags["monthly-budget-usd"],
            limit_unit="USD",
            time_unit="MONTHLY",
            cost_filters=[
                # The stack-scoped value the resources carry: dev and prod in one account never add up.
                aws.budgets.BudgetCostFilterArgs(
                    name="TagKeyValue", values=[f"user:{FUNCTION_KEY}${tags[FUNCTION_KEY]}"]
                )
            ],
            notifications=budget_notifications(fn.finops.alert_thresholds_percent, stack.budget_alert_emails),
            tags=tags,
            opts=child,
        )

        self.endpoint = endpoint
        self.budget_id = budget.id
        # What the live alias really splits: 0 while no published stable build exists yet.
        self.canary_percent: pulumi.Output[int] = routing.apply(lambda r: round(100 * sum(r[1].values())))
        self.function_name = function.name
        self.live_alias_arn = live.arn
        #: Where the capture records land (``s3://bucket/prefix/``), None when capture is disabled.
        self.capture_uri = capture_uri
        self.register_outputs(
            {
                "captureUri": self.capture_uri,
                "endpoint": self.endpoint,
                "budgetId": self.budget_id,
                "canaryPercent": self.canary_percent,
                "functionName": self.function_name,
                "liveAliasArn": self.live_alias_arn,
            }
        )

    def _capture(
        self,
        name: str,
        fn: FunctionSpec,
        tags: dict[str, str],
        lambda_name: str,
        log_group: aws.cloudwatch.LogGroup,
        account_id: pulumi.Output[str],
        region: str,
        partition: str,
        child: ResourceOptions,
    ) -> pulumi.Output[str]:
        """Declare the capture path of one function and return its ``captureUri``."""
        project, stack_name = pulumi.get_project(), pulumi.get_stack()
        capture = fn.capture
        if capture.destination is None:
            # Bucket names are global across accounts: the account id keeps two accounts' dev stacks apart.
            bucket_name: pulumi.Input[str] = account_id.apply(
                lambda acct: scoped_name(project, stack_name, fn.name, max_len=_BUCKET_NAME_MAX, suffix=f"-cap-{acct}")
            )
            bucket = aws.s3.Bucket(f"{name}-capture", bucket=bucket_name, tags=tags, region=region, opts=child)
            aws.s3.BucketPublicAccessBlock(
                f"{name}-capture-public-access",
                bucket=bucket.id,
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
                region=region,
                opts=child,
            )
            aws.s3.BucketServerSideEncryptionConfiguration(
                f"{name}-capture-sse",
                bucket=bucket.id,
                rules=[
                    aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                        apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                            sse_algorithm="AES256"
                        ),
                        bucket_key_enabled=True,
                    )
                ],
                region=region,
                opts=child,
            )
            aws.s3.BucketLifecycleConfiguration(
                f"{name}-capture-lifecycle",
                bucket=bucket.id,
                rules=[
                    aws.s3.BucketLifecycleConfigurationRuleArgs(
                        id="capture-retention",
                        status="Enabled",
                        # An empty filter applies the rule to every object (Registry docs of
                        # aws.s3.BucketLifecycleConfiguration, "Specifying an empty filter").
                        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(),
                        expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=capture.retention_days),
                        abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                            days_after_initiation=1
                        ),
                    )
                ],
                region=region,
                opts=child,
            )
            bucket_out: pulumi.Output[str] = bucket.bucket
            prefix = ""
        else:
            try:
                given, prefix = capture_destination(capture.destination, "", lambda_name)
            except ValueError as exc:
                raise pulumi.RunError(f"inferops:functions[{fn.name}].{exc}") from None
            bucket_out = pulumi.Output.from_input(given)

        delivery_role = aws.iam.Role(
            f"{name}-firehose-role",
            name=scoped_name(project, stack_name, fn.name, max_len=_ROLE_NAME_MAX, suffix="-firehose"),
            assume_role_policy=account_id.apply(firehose_trust),
            description=f"Firehose delivery of {lambda_name}'s capture records to S3",
            tags=tags,
            opts=child,
        )
        delivery_policy = aws.iam.RolePolicy(
            f"{name}-firehose-policy",
            role=delivery_role.id,
            policy=bucket_out.apply(lambda b: firehose_to_s3_policy(b, prefix, partition)),
            opts=child,
        )
        stream = aws.kinesis.FirehoseDeliveryStream(
            f"{name}-capture-stream",
            name=scoped_name(
                project, stack_name, fn.name, max_len=_FIREHOSE_NAME_MAX, suffix="-capture", bad=r"[^A-Za-z0-9_.-]"
            ),
            destination="extended_s3",
            extended_s3_configuration=aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationArgs(
                bucket_arn=bucket_out.apply(lambda b: f"arn:{partition}:s3:::{b}"),
                role_arn=delivery_role.arn,
                prefix=f"{prefix}{CAPTURE_PREFIX}",
                error_output_prefix=f"{prefix}{CAPTURE_ERROR_PREFIX}",
                buffering_size=CAPTURE_BUFFER_MIB,
                buffering_interval=CAPTURE_BUFFER_SECONDS,
                compression_format="GZIP",
                file_extension=".jsonl.gz",
                dynamic_partitioning_configuration=aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationDynamicPartitioningConfigurationArgs(
                    enabled=True
                ),
                processing_configuration=aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationProcessingConfigurationArgs(
                    enabled=True, processors=firehose_processors()
                ),
            ),
            region=region,
            tags=tags,
            # Firehose checks the role's access to the bucket when the stream is created. Dynamic
            # partitioning can only be enabled when a stream is created, so the provider replaces the
            # stream when it changes (ForceNew in terraform-provider-aws's firehose delivery_stream.go;
            # the Registry note of dynamic_partitioning_configuration). The stream's name is fixed and
            # unique in the account and region, so the old stream must go first: create-before-delete
            # would fail with ResourceInUseException on a stack deployed before partitioning. The
            # subscription filter (destination_arn ForceNew, depending on stream.arn) is then deleted
            # before the stream and recreated after it by the engine's dependent replacements.
            opts=ResourceOptions.merge(
                child, ResourceOptions(depends_on=[delivery_policy], delete_before_replace=True)
            ),
        )

        subscription_role = aws.iam.Role(
            f"{name}-logs-role",
            name=scoped_name(project, stack_name, fn.name, max_len=_ROLE_NAME_MAX, suffix="-logs-firehose"),
            assume_role_policy=account_id.apply(lambda acct: logs_to_firehose_trust(region, acct, partition)),
            description=f"CloudWatch Logs subscription of {lambda_name} to its capture stream",
            tags=tags,
            opts=child,
        )
        subscription_policy = aws.iam.RolePolicy(
            f"{name}-logs-policy",
            role=subscription_role.id,
            policy=stream.arn.apply(logs_to_firehose_policy),
            opts=child,
        )
        aws.cloudwatch.LogSubscriptionFilter(
            f"{name}-capture-filter",
            name=truncate_with_hash(f"{lambda_name}-capture", _FILTER_NAME_MAX),
            log_group=log_group.name,
            destination_arn=stream.arn,
            role_arn=subscription_role.arn,
            filter_pattern=CAPTURE_FILTER_PATTERN,
            region=region,
            # CloudWatch Logs tests the role when the filter is created (PutSubscriptionFilter).
            opts=ResourceOptions.merge(child, ResourceOptions(depends_on=[subscription_policy])),
        )
        return bucket_out.apply(lambda b: f"s3://{b}/{prefix}")
