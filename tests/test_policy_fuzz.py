"""Property-based fuzz of the pack through the real Analyzer protocol (issue 10, item 2).

A seeded generator builds a few hundred stacks (more than 10,000 resources in all) from every
resource type the pack knows and some it does not, then breaks them: values missing, of the wrong
type, huge, non-finite, deeply nested, secret, asset-shaped, or long. Each stack goes through
``AnalyzeStack`` once and each resource through ``Analyze``, exactly as the engine sends them.

Two properties hold for every stack:

* no internal error: every call answers (a policy that raises fails the RPC, which blocks every
  preview of the organisation);
* unknowns never convict: the stack with some values replaced by the engine's unknown sentinel
  has no (policy, resource) verdict that the fully known stack does not have. The known stack is
  one of the values the unknowns can take, so a verdict only the unknown version has was caused by
  the unknowns alone.

The generator is seeded (reproducible failures); the run is bounded by its fixed size.
"""

from __future__ import annotations

import copy
import random
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import grpc
import pytest

from inferops.analyzer import UNKNOWN, PolicyPackProcess
from tests.test_policy_support import PACK_DIR, compliant_stack

SEED = 20261201
STACKS = 320
RESOURCES_PER_STACK = 32  # 10,240 resources

SECRET_SIG = "4dabf18193072939515e22adb298388d"
SECRET = "1b47061264138c4ac30d75fd1eb44270"
ASSET = "c44067f5952c0a294b673a41bacd8c17"

_KNOWN_EXTRA: list[tuple[str, dict[str, Any]]] = [
    ("aws:lambda/functionUrl:FunctionUrl", {"functionName": "fraud-scorer", "authorizationType": "AWS_IAM"}),
    (
        "aws:lambda/permission:Permission",
        {"action": "lambda:InvokeFunction", "function": "fraud-scorer", "principal": "apigateway.amazonaws.com"},
    ),
    (
        "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig",
        {"functionName": "fraud-scorer", "qualifier": "live", "provisionedConcurrentExecutions": 1},
    ),
    ("aws:lambda/alias:Alias", {"functionName": "fraud-scorer", "name": "live", "functionVersion": "1"}),
    (
        "aws:iam/role:Role",
        {
            "assumeRolePolicy": '{"Version": "2012-10-17", "Statement": []}',
            "managedPolicyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
            "tags": {"cost-center": "a", "owner": "b", "environment": "c", "monthly-budget-usd": "1"},
        },
    ),
    (
        "aws:iam/rolePolicy:RolePolicy",
        {
            "role": "r",
            "policy": '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], '
            '"Resource": ["arn:aws:s3:::models/*"]}]}',
        },
    ),
    ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", {"role": "r", "policyArn": "arn:aws:iam::aws:policy/X"}),
    (
        "aws:cloudwatch/logGroup:LogGroup",
        {
            "retentionInDays": 30,
            "tags": {"cost-center": "a", "owner": "b", "environment": "c", "monthly-budget-usd": "1"},
        },
    ),
    (
        "azure-native:web:WebAppSlot",
        {"name": "churn-predictor", "slot": "canary", "kind": "functionapp", "httpsOnly": True, "tags": {}},
    ),
    ("azure-native:web:AppServicePlan", {"sku": {"name": "Y1"}, "tags": {}}),
    (
        "azure-native:storage:StorageAccount",
        {"enableHttpsTrafficOnly": True, "minimumTlsVersion": "TLS1_2", "tags": {}},
    ),
    ("azure-native:web:WebAppApplicationSettings", {"name": "churn-predictor", "properties": {"A": "b"}}),
    (
        "azure-native:web:WebAppAuthSettingsV2",
        {"name": "churn-predictor", "globalValidation": {"requireAuthentication": True}},
    ),
    ("azure-native:operationalinsights:Workspace", {"retentionInDays": 30, "tags": {}}),
    (
        "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
        {"name": "image-tagger", "role": "roles/run.invoker", "member": "serviceAccount:a@b.iam.gserviceaccount.com"},
    ),
    (
        "gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding",
        {"name": "image-tagger", "role": "roles/run.invoker", "members": []},
    ),
    ("gcp:logging/projectBucketConfig:ProjectBucketConfig", {"retentionDays": 30}),
    ("gcp:monitoring/notificationChannel:NotificationChannel", {"type": "email", "labels": {"email_address": "a@b"}}),
    ("kubernetes:core/v1:Namespace", {"metadata": {"name": "inference", "labels": {}}}),
    ("kubernetes:core/v1:ResourceQuota", {"metadata": {"name": "q"}, "spec": {"hard": {"cpu": "4"}}}),
    ("aws:s3/bucket:Bucket", {"bucket": "models", "tags": {"owner": "x"}}),
    ("random:index/randomId:RandomId", {"byteLength": 4}),
    ("custom:module:Thing", {"labels": {"a": "b"}, "spec": {"x": [1, 2, 3]}}),
    ("pulumi:providers:aws", {"region": "us-east-1", "defaultTags": '{"tags": {"owner": "x"}}'}),
]


def _templates() -> list[tuple[str, dict[str, Any]]]:
    return [(t, p) for t, _n, p in compliant_stack()] + _KNOWN_EXTRA


def _nested(rng: random.Random, depth: int) -> Any:
    value: Any = rng.choice([1, "x", None, []])
    for _ in range(depth):
        value = {"k": value} if rng.random() < 0.5 else [value]
    return value


def hostile(rng: random.Random) -> Any:
    """One value of the kinds that broke the pack, or that a hand-written stack may hold."""
    choice = rng.randrange(22)
    return [
        lambda: None,
        lambda: rng.choice([True, False]),
        lambda: rng.choice([0, -1, 1, 2**53, -(2**53)]),
        lambda: rng.choice([1e308, -1e308, 5e-324, 0.5, -0.0]),
        # NaN and infinities on the wire: the SDK's MessageToDict raises on them unless the pack's
        # request sanitizer (inferops_policy.pack.install_request_sanitizer) turns them into strings.
        lambda: rng.choice([float("nan"), float("inf"), float("-inf"), 1e-300]),
        lambda: rng.choice(["nan", "inf", "-inf", "1e400", "-5", "0", "1e300", "12abc", " 7 "]),
        lambda: rng.choice(["https://[", "http://x", "https://", "ftp://a/b", "https://ok.example.com/card"]),
        lambda: "",
        lambda: "x" * rng.choice([300, 5000, 100_000]),
        lambda: "AKIA" + "A" * 16,
        lambda: rng.choice(["\u00e9\u4e2d\U0001f600", "\x00\x01", "a\nb=c\nfunction-name=x", "*", "lambda:*"]),
        lambda: [hostile(rng) for _ in range(rng.randrange(4))],
        lambda: {
            rng.choice(["a", "name", "values", "and", "tags", "*"]): hostile(rng) for _ in range(rng.randrange(4))
        },
        lambda: _nested(rng, rng.randrange(5, 25)),
        lambda: {SECRET_SIG: SECRET, "value": rng.choice(["s3cr3t", 5, {"a": 1}])},
        lambda: {SECRET_SIG: ASSET, "text": "data", "hash": "", "path": "", "uri": ""},
        lambda: ["arn:aws:iam::aws:policy/AdministratorAccess", ["nested"], {"d": 1}],
        lambda: {"and": rng.choice([5, "x", [5], [{"tags": 5}], None])},
        lambda: {"Statement": rng.choice([5, "x", [5], [{"Action": {"a": 1}, "Resource": 7}]])},
        lambda: '{"a": ' * 200 + "1" + "}" * 200,
        lambda: rng.choice(["allUsers", "allAuthenticatedUsers", "NONE", "ABSOLUTE_VALUE", "functionapp"]),
        lambda: rng.choice(["TagKeyValue", "user:function-name$fraud-scorer", "user:model-id$", "user:$"]),
    ][choice]()


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Paths to mutate. A secret/asset object is a leaf: the engine writes its signature, so its
    inside is never malformed on the wire (the SDK rejects such objects before any policy runs)."""
    out = [prefix]
    if isinstance(value, dict) and SECRET_SIG in value:
        return out
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.extend(_paths(item, (*prefix, index)))
    return out


def _set(props: dict[str, Any], path: tuple, value: Any, *, delete: bool = False) -> None:
    target: Any = props
    for part in path[:-1]:
        target = target[part]
    if delete and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = value


def _mutate(rng: random.Random, props: dict[str, Any]) -> dict[str, Any]:
    props = copy.deepcopy(props)
    for _ in range(rng.randrange(0, 4)):
        paths = [p for p in _paths(props) if p]
        if not paths:
            props[rng.choice(["tags", "name", "labels", "metadata"])] = hostile(rng)
            continue
        path = rng.choice(paths)
        _set(props, path, hostile(rng), delete=rng.random() < 0.2)
    if rng.random() < 0.1:
        props[rng.choice(["tags", "labels", "kind", "region", "location", "spec"])] = hostile(rng)
    return props


def _with_unknowns(rng: random.Random, props: dict[str, Any]) -> dict[str, Any]:
    props = copy.deepcopy(props)
    paths = [p for p in _paths(props) if p]
    for path in rng.sample(paths, min(len(paths), rng.randrange(1, 4))):
        try:
            _set(props, path, UNKNOWN)
        except (KeyError, IndexError, TypeError):
            continue  # a parent was replaced by an earlier unknown
    return props


def generate_stacks(seed: int = SEED) -> list[list[SimpleNamespace]]:
    """The fuzz stacks: each resource a ``SimpleNamespace(type, name, urn, inputs, outputs)``."""
    rng = random.Random(seed)
    templates = _templates()
    stacks = []
    for s in range(STACKS):
        resources = []
        for i in range(RESOURCES_PER_STACK):
            rtype, props = rng.choice(templates)
            if rng.random() < 0.05:
                rtype = rng.choice(["custom:module:Thing", "aws:ec2/instance:Instance", rtype + "x"])
            name = f"r{i}"
            resources.append(
                SimpleNamespace(
                    type=rtype,
                    name=name,
                    urn=f"urn:pulumi:fuzz{s}::inferops::{rtype}::{name}",
                    inputs=_mutate(rng, props) if rng.random() < 0.85 else copy.deepcopy(props),
                    outputs={},
                )
            )
        stacks.append(resources)
    return stacks


def _key(d) -> tuple[str, str]:
    return (d.policy_name, d.urn)


@pytest.fixture(scope="module")
def fuzz_pack():
    with PolicyPackProcess(PACK_DIR) as process:
        yield process


def test_fuzz_through_the_analyzer_protocol(fuzz_pack):
    stacks = generate_stacks()
    rng = random.Random(SEED + 1)
    assert len(stacks) >= 300 and sum(len(s) for s in stacks) >= 10_000
    errors: list[str] = []
    convicted_by_unknowns: list[str] = []
    resource_count = 0

    def analyze(resource):
        try:
            return fuzz_pack.analyze(resource)
        except grpc.RpcError as exc:
            errors.append(f"Analyze {resource.type} {resource.inputs!r:.300}: {exc.details()}")
            return []

    def analyze_stack(resources):
        try:
            return fuzz_pack.analyze_stack(resources)
        except grpc.RpcError as exc:
            errors.append(f"AnalyzeStack {[r.type for r in resources]}: {exc.details()}")
            return []

    # The pack serves four calls at a time, as it does for the engine's parallel steps.
    with ThreadPoolExecutor(max_workers=4) as pool:
        for known in stacks:
            unknown = []
            for resource in known:
                if rng.random() < 0.3:
                    unknown.append(
                        SimpleNamespace(**{**vars(resource), "inputs": _with_unknowns(rng, resource.inputs)})
                    )
                else:
                    unknown.append(resource)
            changed = [(k, u) for k, u in zip(known, unknown, strict=True) if u is not k]
            resource_count += len(known)
            known_results = list(pool.map(analyze, known))
            unknown_results = list(pool.map(analyze, [u for _k, u in changed]))
            before = {_key(d) for result in known_results for d in result}
            before |= {_key(d) for d in analyze_stack(known)}
            after = {_key(d) for result in unknown_results for d in result}
            after |= {_key(d) for d in analyze_stack(unknown)}
            for policy, urn in sorted(after - before):
                convicted_by_unknowns.append(f"{policy} on {urn or 'the stack'}")
    assert resource_count >= 10_000
    assert errors == []
    assert convicted_by_unknowns == []


def test_nan_on_the_wire_is_a_finding_not_an_error(fuzz_pack):
    """A NaN memory size in the Struct the engine sends: the SDK alone fails the call
    (json_format cannot render NaN); the pack reports it as an input it cannot price."""
    from tests.test_policy_support import lambda_fn

    props = lambda_fn()
    props["memorySize"] = float("nan")
    resource = SimpleNamespace(
        type="aws:lambda/function:Function",
        name="fraud-scorer",
        urn="urn:pulumi:dev::inferops::aws:lambda/function:Function::fraud-scorer",
        inputs=props,
        outputs={},
    )
    assert fuzz_pack.analyze(resource) == []
    found = [d.detail for d in fuzz_pack.analyze_stack([resource])]
    assert found == [
        "'fraud-scorer' has no budget resource filtering on function-name=fraud-scorer: add a "
        "aws:budgets/budget:Budget for it with the function's monthly-budget-usd as its amount.",
        (
            "'fraud-scorer' cannot be priced: memorySize is not a finite number (NaN); set it so the FinOps policies "
            "can check the function."
        ),
    ]
