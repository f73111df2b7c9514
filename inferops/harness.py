"""Run the Pulumi program for a stack file under Pulumi's own mocks, with no CLI and no cloud.

:func:`run_program` reads ``Pulumi.<stack>.yaml``, replaces ``secure:`` values by a placeholder (they
are never decrypted, and the placeholder is marked secret), installs a recording
:class:`pulumi.runtime.Mocks`, runs ``__main__.py`` the way the Pulumi language host would (project
directory as working directory and on ``sys.path``) and returns every resource it registered with
its inputs (engine camelCase names) and the stack exports.

The mocks echo the inputs back as outputs plus the few computed fields the components read (ARNs,
URLs, ids); they invent nothing else, so a test sees exactly what the program asked for. The reads
the components make of live cloud objects (does the Azure app exist, which Cloud Run revision serves
the stable model) answer "not found" by default: a run is the first ``pulumi up`` of a fresh stack.
Pass ``mocks=`` (a :class:`RecordingMocks` subclass that remembers an earlier run) to run a later one.
"""

from __future__ import annotations

import json
import logging
import os
import runpy
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime
from pulumi.runtime import settings as _settings
from pulumi.runtime.mocks import MockMonitor

from inferops import safeload
from inferops.computed import ACCOUNT as _ACCOUNT
from inferops.computed import computed as computed_outputs
from inferops.computed.azure import SUBSCRIPTION as _SUBSCRIPTION

PROJECT = "inferops"
PROJECT_DIR = Path(__file__).resolve().parent.parent
#: What a ``secure:`` value becomes: the program sees a (secret) string, never the ciphertext.
SECRET_PLACEHOLDER = "[secret]"


def _not_found(token: str, args: Mapping[str, Any]) -> str:
    """The provider's error text for a read of a missing object, so the program's check meets the real one.

    azure-native: ``request failed <resource id>: Status=404 Code="ResourceNotFound" Message="..."``
    (provider/pkg/provider/provider.go ``Invoke``, provider/pkg/azure/client_azcore.go
    ``PulumiAzcoreResponseError``). Cloud Run v2: ``"<id> not found"`` for
    ``projects/<project>/locations/<location>/services/<name>`` (hashicorp/terraform-provider-google
    data_source_google_cloud_run_v2_service.go), the project being the provider's (``example-project``
    here, as ``getClientConfig`` answers).
    """
    name = args.get("name")
    if token == "gcp:cloudrunv2/getService:getService":
        project = args.get("project") or "example-project"
        return f"projects/{project}/locations/{args.get('location')}/services/{name} not found"
    if token == "azure-native:web:getWebApp":
        group = args.get("resourceGroupName")
        rid = f"/subscriptions/{_SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.Web/sites/{name}"
        return (
            f'request failed {rid}: Status=404 Code="ResourceNotFound" Message="The Resource '
            f"'Microsoft.Web/sites/{name}' under resource group '{group}' was not found. For more details "
            'please go to https://aka.ms/ARMResourceNotFoundFix"'
        )
    return f"{name}: resource not found (HTTP 404)"


class StackFileError(ValueError):
    """A stack file that cannot be read; the message names the file."""


class ProgramError(RuntimeError):
    """The program failed (for example its stack config did not validate)."""


@dataclass
class RegisteredResource:
    """One resource the program registered, as the engine (and a policy pack) would see it."""

    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    custom: bool
    parent: str | None = None
    provider: str | None = None
    #: URNs this resource waits for (``depends_on`` and the resources its inputs come from).
    dependencies: list[str] = field(default_factory=list)


@dataclass
class ProgramRun:
    """What a program run registered and exported."""

    stack: str
    resources: list[RegisteredResource] = field(default_factory=list)
    exports: dict[str, Any] = field(default_factory=dict)
    #: What the program logged at warning level or above (``pulumi.log.warn``), as ``pulumi up`` shows it.
    warnings: list[str] = field(default_factory=list)

    def of_type(self, typ: str) -> list[RegisteredResource]:
        """Resources of one engine type token, in registration order."""
        return [r for r in self.resources if r.type == typ]

    def children_of(self, urn: str) -> list[RegisteredResource]:
        """Direct and indirect children of a component."""
        out: list[RegisteredResource] = []
        frontier = {urn}
        for r in self.resources:  # registration order: parents come before children
            if r.parent in frontier:
                out.append(r)
                frontier.add(r.urn)
        return out


#: The GCP project number the mocks report (``gcp.organizations.getProject``).
GCP_PROJECT_NUMBER = "123456789012"
#: The access token the mocks report for ``gcp.organizations.getClientConfig`` (never a real one).
MOCK_ACCESS_TOKEN = "mock-access-token"


class RecordingMocks(pulumi.runtime.Mocks):
    """Echo inputs back as outputs plus the computed fields the components read; record everything.

    ``ignore_changes`` of the resource being registered is in :attr:`ignore_changes` (per thread) while
    :meth:`new_resource` runs, for subclasses that emulate the engine's handling of it.
    """

    def __init__(self) -> None:
        self.registered: list[tuple[str, str, dict[str, Any], dict[str, Any], bool, str | None]] = []
        self._local = threading.local()

    @property
    def ignore_changes(self) -> list[str]:
        """The ``ignore_changes`` paths of the registration in progress on this thread."""
        return list(getattr(self._local, "ignore_changes", []))

    def outputs_for(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        """The id and outputs of a resource: its inputs plus the computed fields."""
        computed = computed_outputs(args.typ, args.name, args.inputs)
        return str(computed.get("id") or f"{args.name}-id"), {**args.inputs, **computed}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        resource_id, outputs = self.outputs_for(args)
        self.registered.append((args.typ, args.name, dict(args.inputs), outputs, bool(args.custom), args.provider))
        return resource_id, outputs

    def read_cloud(self, token: str, args: dict[str, Any]) -> dict[str, Any] | None:
        """A read of a live cloud object (an invoke): its properties, or None when it does not exist.

        A fresh stack has none. The program sees None as the provider's failed read ("not found"),
        which the SDK raises to the caller of the invoke.
        """
        return None

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token in ("azure-native:web:getWebApp", "gcp:cloudrunv2/getService:getService"):
            found = self.read_cloud(args.token, dict(args.args))
            if found is None:
                return {}, [("name", _not_found(args.token, dict(args.args)))]
            return found, []
        if args.token == "gcp:organizations/getClientConfig:getClientConfig":
            # The provider's own access token (the registry password of the image push).
            return {"accessToken": MOCK_ACCESS_TOKEN, "project": "example-project", "id": "mock"}, []
        if args.token == "gcp:organizations/getProject:getProject":
            return {"number": GCP_PROJECT_NUMBER, "projectId": "example-project"}, []
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": _ACCOUNT, "arn": f"arn:aws:iam::{_ACCOUNT}:user/mock", "userId": "mock"}, []
        if args.token in ("aws:index/getPartition:getPartition",):
            return {"partition": "aws", "dnsSuffix": "amazonaws.com"}, []
        if args.token == "azure-native:authorization:getClientConfig":
            return {
                "subscriptionId": "00000000-0000-0000-0000-000000000000",
                "tenantId": "t",
                "clientId": "c",
                "objectId": "o",
            }, []
        return dict(args.args), []


class _Monitor(MockMonitor):
    """Keeps the registration request's parent, which the base monitor drops."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.mocks: RecordingMocks = mocks
        self.parents: dict[str, str | None] = {}
        self.dependencies: dict[str, list[str]] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        self.mocks._local.ignore_changes = list(request.ignoreChanges)
        try:
            response = super().RegisterResource(request)
        finally:
            self.mocks._local.ignore_changes = []
        self.parents[response.urn] = request.parent or None
        deps = set(request.dependencies)
        for urns in request.propertyDependencies.values():
            deps.update(urns.urns)
        self.dependencies[response.urn] = sorted(deps)
        return response


class _Collect(logging.Handler):
    """Collects the program's engine log messages at warning level and above."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


# --- stack files ---------------------------------------------------------------------------------


def load_stack_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``config:`` mapping of a stack file as plain Python values; one-line error on bad input.

    Read through :mod:`inferops.safeload`: bounded size, UTF-8, bounded aliases and nesting, and only
    JSON-expressible values (the engine hands config to the program as strings and JSON).
    """
    p = Path(path)
    try:
        doc = safeload.load_yaml(p, what="stack file")
    except safeload.LoadError as exc:
        raise StackFileError(str(exc)) from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise StackFileError(f"{safeload.escape(str(p))}: a stack file must be a mapping with a 'config' key")
    config = doc.get("config") or {}
    if not isinstance(config, dict):
        raise StackFileError(f"{safeload.escape(str(p))}: config must be a mapping")
    return config


def stack_name_of(path: str | os.PathLike[str]) -> str:
    """``Pulumi.dev.yaml`` -> ``dev``."""
    stem = Path(path).name
    if stem.startswith("Pulumi.") and stem.endswith((".yaml", ".yml")):
        return stem[len("Pulumi.") :].rsplit(".", 1)[0]
    return Path(path).stem


def engine_config(config: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Config as the engine hands it to a program: strings (JSON for structures), secure keys masked."""
    values: dict[str, str] = {}
    secret_keys: list[str] = []

    def mask(v: Any) -> tuple[Any, bool]:
        if isinstance(v, dict):
            if set(v) == {"secure"}:
                return SECRET_PLACEHOLDER, True
            pairs = {k: mask(x) for k, x in v.items()}
            return {k: p[0] for k, p in pairs.items()}, any(p[1] for p in pairs.values())
        if isinstance(v, list):
            items = [mask(x) for x in v]
            return [i[0] for i in items], any(i[1] for i in items)
        return v, False

    for key, value in config.items():
        masked, secret = mask(value)
        values[key] = masked if isinstance(masked, str) else json.dumps(masked)
        if secret:
            secret_keys.append(key)
    return values, secret_keys


# --- running -------------------------------------------------------------------------------------


def _finish_leftover_tasks() -> None:
    """Let what a failed run left on the event loop finish, inside that run.

    ``pulumi.runtime.stack.wait_for_rpcs`` re-raises the first failed RPC without awaiting the others,
    so registrations queued before the failure stay scheduled and would run inside the next program
    run in this process (seen as a later run "registering" another stack's resources before its own
    spec error). Awaited here, they reach the failed run's own mocks.
    """
    import asyncio

    loop = asyncio.get_event_loop()
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if pending:
        # Pumped the way the SDK pumps its loop (not run_until_complete, which the SDK's manual pumping
        # and CPython 3.11's AST recursion counter do not survive: a later compile raises SystemError).
        from pulumi.runtime.sync_await import _sync_await

        _sync_await(asyncio.gather(*pending, return_exceptions=True))


def run_program(
    stack_file: str | os.PathLike[str],
    *,
    project_dir: str | os.PathLike[str] = PROJECT_DIR,
    config: Mapping[str, Any] | None = None,
    stack: str | None = None,
    preview: bool = False,
    mocks: RecordingMocks | None = None,
) -> ProgramRun:
    """Run ``__main__.py`` of ``project_dir`` under mocks with the config of ``stack_file``.

    ``config`` (already-parsed ``config:`` mapping) replaces the file's content when given, which lets
    tests run edited configs without writing files. Raises :class:`StackFileError` for an unreadable
    file and :class:`ProgramError` when the program fails.
    """
    project = Path(project_dir).resolve()
    raw = dict(config) if config is not None else load_stack_file(stack_file)
    stack = stack or stack_name_of(stack_file)
    values, secret_keys = engine_config(raw)

    mocks = mocks if mocks is not None else RecordingMocks()
    mocks.registered = []
    monitor = _Monitor(mocks)
    collect = _Collect()
    logger = logging.getLogger(f"inferops.program.{id(collect)}")
    logger.propagate = False
    logger.addHandler(collect)
    _settings.ROOT.set(None)  # a fresh root Stack per run
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor, logger=logger)
    pulumi.runtime.set_all_config(values, secret_keys)

    exports: dict[str, Any] = {}
    real_export = pulumi.export

    def capture(name: str, value: Any) -> None:
        exports[name] = value
        real_export(name, value)

    resolved: dict[str, Any] = {}

    @pulumi.runtime.test
    def _program() -> Any:
        runpy.run_path(str(project / "__main__.py"), run_name="__main__")
        return pulumi.Output.from_input(exports).apply(resolved.update)

    old_cwd, old_path = os.getcwd(), list(sys.path)
    pulumi.export = capture
    try:
        os.chdir(project)
        if str(project) not in sys.path:
            sys.path.insert(0, str(project))
        _program()
    except pulumi.RunError as exc:
        _finish_leftover_tasks()
        raise ProgramError(str(exc)) from None
    except BaseException:
        _finish_leftover_tasks()
        raise
    finally:
        pulumi.export = real_export
        os.chdir(old_cwd)
        sys.path[:] = old_path

    logger.removeHandler(collect)
    run = ProgramRun(stack=stack, exports=resolved, warnings=collect.messages)
    urns = monitor.get_registered_resources()
    by_key = {(u.split("::")[-2].split("$")[-1], u.split("::")[-1]): u for u in urns}
    for typ, name, inputs, outputs, custom, provider in mocks.registered:
        urn = by_key.get((typ, name), "")
        run.resources.append(
            RegisteredResource(
                type=typ,
                name=name,
                urn=urn,
                inputs=inputs,
                outputs=outputs,
                custom=custom,
                parent=monitor.parents.get(urn),
                provider=provider or None,
                dependencies=monitor.dependencies.get(urn, []),
            )
        )
    return run
