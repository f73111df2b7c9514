"""Security policies: one compliant fixture per resource kind, one mutation per violation path."""

from __future__ import annotations

import json

import pytest

from tests.test_policy_support import cloud_run, knative, lambda_fn, run_resource, security, webapp

LAMBDA = "aws:lambda/function:Function"
URL = "aws:lambda/functionUrl:FunctionUrl"
PERMISSION = "aws:lambda/permission:Permission"
RUN = "gcp:cloudrunv2/service:Service"
RUN_MEMBER = "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"
WEBAPP = "azure-native:web:WebApp"
KNATIVE = "kubernetes:serving.knative.dev/v1:Service"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


# --------------------------------------------------------------------------- public endpoints

COMPLIANT_ENDPOINTS = [
    (URL, {"functionName": "fraud-scorer", "qualifier": "live", "authorizationType": "AWS_IAM"}),
    (
        PERMISSION,
        {
            "function": "fraud-scorer",
            "action": "lambda:InvokeFunctionUrl",
            "principal": "123456789012",
            "functionUrlAuthType": "AWS_IAM",
        },
    ),
    (
        RUN_MEMBER,
        {
            "name": "image-tagger",
            "location": "us-central1",
            "role": "roles/run.invoker",
            "member": "serviceAccount:caller@example.iam.gserviceaccount.com",
        },
    ),
    (RUN, cloud_run()),
    (WEBAPP, webapp()),
    (KNATIVE, knative()),
]


@pytest.mark.parametrize(("rtype", "props"), COMPLIANT_ENDPOINTS)
def test_authenticated_endpoints_pass(rtype, props):
    assert run_resource(security.public_endpoint_validator, rtype, props) == []


def _public_knative():
    props = knative()
    del props["metadata"]["labels"]["networking.knative.dev/visibility"]
    return props


def _anonymous_webapp():
    props = webapp()
    props["siteConfig"]["appSettings"].append({"name": "AUTH_LEVEL", "value": "anonymous"})
    return props


PUBLIC_CASES = [
    (
        URL,
        {"functionName": "fraud-scorer", "authorizationType": "NONE"},
        "'fraud-scorer' is a Lambda function URL with authorizationType NONE: use AWS_IAM (callers sign requests) or "
        "put an authenticating API in front (or list it in allowedPublicFunctions).",
    ),
    (
        PERMISSION,
        {
            "function": "fraud-scorer",
            "action": "lambda:InvokeFunctionUrl",
            "principal": "*",
            "functionUrlAuthType": "NONE",
        },
        "'fraud-scorer' grants lambda:InvokeFunctionUrl to everyone (principal '*', auth NONE): restrict the principal "
        "and use AWS_IAM auth (or list it in allowedPublicFunctions).",
    ),
    (
        RUN_MEMBER,
        {"name": "image-tagger", "role": "roles/run.invoker", "member": "allUsers"},
        "'image-tagger' grants roles/run.invoker to allUsers: grant it to the calling service accounts instead (or "
        "list it in allowedPublicFunctions).",
    ),
    (
        RUN,
        {**cloud_run(), "invokerIamDisabled": True},
        "'image-tagger' disables the Cloud Run invoker IAM check (invokerIamDisabled): keep IAM on and grant "
        "roles/run.invoker to the callers (or list it in allowedPublicFunctions).",
    ),
    (
        WEBAPP,
        _anonymous_webapp(),
        "'churn-predictor' declares anonymous function auth (AUTH_LEVEL=anonymous): use the 'function' auth level or "
        "App Service authentication (or list it in allowedPublicFunctions).",
    ),
    (
        "azure-native:web:WebAppAuthSettingsV2",
        {"name": "churn-predictor", "globalValidation": {"requireAuthentication": False}},
        "'churn-predictor' lets anonymous callers through App Service authentication: set "
        "globalValidation.requireAuthentication true (or list it in allowedPublicFunctions).",
    ),
    (
        KNATIVE,
        _public_knative(),
        "'text-classifier' is exposed outside the cluster: label it networking.knative.dev/visibility=cluster-local "
        "and reach it through an authenticating gateway (or list it in allowedPublicFunctions).",
    ),
]


@pytest.mark.parametrize(("rtype", "props", "message"), PUBLIC_CASES)
def test_public_endpoints_are_reported(rtype, props, message):
    assert run_resource(security.public_endpoint_validator, rtype, props) == [message]


@pytest.mark.parametrize(("rtype", "props", "message"), PUBLIC_CASES)
def test_public_endpoints_allowed_by_config(rtype, props, message):
    name = message.split("'")[1]
    assert (
        run_resource(security.public_endpoint_validator, rtype, props, config={"allowedPublicFunctions": [name]}) == []
    )
    assert run_resource(security.public_endpoint_validator, rtype, props, config={"allowPublicEndpoints": True}) == []
    assert run_resource(
        security.public_endpoint_validator, rtype, props, config={"allowedPublicFunctions": ["someone-else"]}
    ) == [message]


# --------------------------------------------------------------------------- plaintext secrets


@pytest.mark.parametrize(
    ("rtype", "props"), [(LAMBDA, lambda_fn()), (WEBAPP, webapp()), (RUN, cloud_run()), (KNATIVE, knative())]
)
def test_no_secrets_in_compliant_functions(rtype, props):
    assert run_resource(security.plaintext_secrets_validator, rtype, props) == []


SECRET_MESSAGE = (
    "'{who}' sets {name} to a plaintext secret-looking value: store it in the platform's secret store "
    "(Secrets Manager, Key Vault reference, Secret Manager secretKeyRef, Kubernetes Secret) and "
    "reference it, or use an identity instead of a key."
)


def test_secret_names_and_values_are_reported():
    fn = lambda_fn()
    fn["environment"]["variables"].update({"API_KEY": "abc123", "NOTE": "AKIAABCDEFGHIJKLMNOP", "DB_PASSWORD": ""})
    assert run_resource(security.plaintext_secrets_validator, LAMBDA, fn) == [
        SECRET_MESSAGE.format(who="fraud-scorer", name="API_KEY"),
        SECRET_MESSAGE.format(who="fraud-scorer", name="NOTE"),
    ]
    app = webapp()
    app["siteConfig"]["appSettings"].append(
        {
            "name": "AzureWebJobsStorage",
            "value": "DefaultEndpointsProtocol=https;AccountName=st;AccountKey=c2VjcmV0a2V5",
        }
    )
    app["siteConfig"]["appSettings"].append(
        {"name": "MODEL_TOKEN", "value": "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/t)"}
    )
    assert run_resource(security.plaintext_secrets_validator, WEBAPP, app) == [
        SECRET_MESSAGE.format(who="churn-predictor", name="AzureWebJobsStorage")
    ]
    svc = knative()
    svc["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "HF_TOKEN", "value": "hf_x"})
    svc["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "OTHER_TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
    )
    assert run_resource(security.plaintext_secrets_validator, KNATIVE, svc) == [
        SECRET_MESSAGE.format(who="text-classifier", name="HF_TOKEN")
    ]
    run = cloud_run()
    run["template"]["containers"][0]["envs"].append({"name": "SECRET", "value": "x"})
    assert run_resource(security.plaintext_secrets_validator, RUN, run) == [
        SECRET_MESSAGE.format(who="image-tagger", name="SECRET")
    ]
    assert run_resource(security.plaintext_secrets_validator, RUN, run, config={"allowedNames": ["SECRET"]}) == []


# --------------------------------------------------------------------------- IAM


def _policy(*statements):
    return {"role": "fraud-scorer-role", "policy": json.dumps({"Version": "2012-10-17", "Statement": list(statements)})}


SCOPED = {
    "Effect": "Allow",
    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
    "Resource": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/fraud-scorer:*",
}


def test_scoped_policy_passes():
    xray = {"Effect": "Allow", "Action": ["xray:PutTraceSegments"], "Resource": "*"}
    deny = {"Effect": "Deny", "Action": "*", "Resource": "*"}
    assert run_resource(security.iam_wildcards_validator, ROLE_POLICY, _policy(SCOPED, xray, deny), name="p") == []


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (
            {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::example-models/*"},
            "policy 'p' allows wildcard action s3:*: list the exact actions the function needs.",
        ),
        (
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"},
            "policy 'p' allows s3:GetObject on Resource \"*\": scope it to the function's own ARNs.",
        ),
    ],
)
def test_wildcards_are_reported(statement, message):
    assert run_resource(security.iam_wildcards_validator, ROLE_POLICY, _policy(SCOPED, statement), name="p") == [
        message
    ]


def test_admin_policy_on_role():
    role = {
        "name": "r",
        "managedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"],
        "inlinePolicies": [
            {"name": "all", "policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})}
        ],
    }
    assert run_resource(security.iam_wildcards_validator, "aws:iam/role:Role", role, name="r") == [
        "role 'r' attaches arn:aws:iam::aws:policy/AdministratorAccess: grant only the actions the function needs.",
        "policy 'r/all' allows wildcard action *: list the exact actions the function needs.",
        "policy 'r/all' allows * on Resource \"*\": scope it to the function's own ARNs.",
    ]


# --------------------------------------------------------------------------- Azure HTTPS/TLS


def test_azure_https_and_tls():
    assert run_resource(security.azure_https_tls_validator, WEBAPP, webapp()) == []
    plain_http = webapp()
    plain_http["httpsOnly"] = False
    plain_http["siteConfig"]["minTlsVersion"] = "1.0"
    assert run_resource(security.azure_https_tls_validator, WEBAPP, plain_http) == [
        "'churn-predictor' does not set httpsOnly: true: set it so plain HTTP is redirected.",
        "'churn-predictor' accepts TLS 1.0: set siteConfig.minTlsVersion to 1.2 or later.",
    ]
    unset = webapp()
    del unset["httpsOnly"]
    assert run_resource(security.azure_https_tls_validator, WEBAPP, unset) == [
        "'churn-predictor' does not set httpsOnly: true: set it so plain HTTP is redirected."
    ]
    storage = {"accountName": "st", "enableHttpsTrafficOnly": False, "minimumTlsVersion": "TLS1_1"}
    assert run_resource(
        security.azure_https_tls_validator, "azure-native:storage:StorageAccount", storage, name="st"
    ) == [
        "'st' allows plain HTTP: set enableHttpsTrafficOnly: true.",
        "'st' accepts TLS1_1: set minimumTlsVersion to TLS1_2.",
    ]
    assert (
        run_resource(
            security.azure_https_tls_validator,
            "azure-native:storage:StorageAccount",
            {"minimumTlsVersion": "TLS1_2", "enableHttpsTrafficOnly": True},
        )
        == []
    )


# --------------------------------------------------------------------------- log retention


def test_log_retention():
    log_group = "aws:cloudwatch/logGroup:LogGroup"
    assert run_resource(security.log_retention_validator, log_group, {"retentionInDays": 30}) == []
    assert run_resource(security.log_retention_validator, log_group, {"name": "/aws/lambda/x"}, name="lg") == [
        "'lg' keeps logs forever (retentionInDays not set): set retentionInDays (e.g. 30) so inference logs expire."
    ]
    assert run_resource(
        security.log_retention_validator,
        log_group,
        {"retentionInDays": 3653},
        name="lg",
        config={"maxRetentionDays": 400},
    ) == ["'lg' keeps logs 3653 days, above the 400-day maximum: lower retentionInDays."]
    assert run_resource(
        security.log_retention_validator,
        "gcp:logging/projectBucketConfig:ProjectBucketConfig",
        {"bucketId": "_Default"},
        name="b",
    ) == ["'b' keeps logs forever (retentionDays not set): set retentionDays (e.g. 30) so inference logs expire."]
