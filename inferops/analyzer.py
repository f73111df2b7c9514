"""Run a CrossGuard policy pack exactly as the Pulumi engine does and talk to its Analyzer service.

The engine starts a Python pack as ``python -u -m pulumi.policy <engine-address> <pack-dir>`` with the
pack directory as working directory and ``PULUMI_PROJECT``/``PULUMI_STACK``/``PULUMI_DRY_RUN``/
``PULUMI_CONFIG`` in the environment; the pack prints the port of its gRPC Analyzer server on stdout.
:class:`PolicyPackProcess` does the same, serves a loopback Engine service for the pack's log calls,
sends the ``--policy-pack-config`` settings through ``Configure`` (schema defaults filled in, as the
engine does), and sends resources through ``Analyze`` and ``AnalyzeStack`` as protobuf Structs in which
unknown values are the engine's sentinel string.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, engine_pb2_grpc

#: What the engine sends for a value it does not know yet (preview).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
ENFORCEMENT_LEVELS = ("advisory", "mandatory", "remediate", "disabled")
_LEVEL_TO_PROTO = {
    "advisory": analyzer_pb2.ADVISORY,
    "mandatory": analyzer_pb2.MANDATORY,
    "remediate": analyzer_pb2.REMEDIATE,
    "disabled": analyzer_pb2.DISABLED,
}
_PROTO_TO_LEVEL = {v: k for k, v in _LEVEL_TO_PROTO.items()}
_STARTUP_TIMEOUT_S = 60.0
# The engine's gRPC clients accept messages up to 400 MiB (pulumi rpcutil.MaxRPCMessageSize), far
# above gRPC's 4 MiB default: a pack's reply for a large stack must not fail here when it would not
# fail under the engine.
MAX_RPC_MESSAGE_BYTES = 400 * 1024 * 1024
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_RPC_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_RPC_MESSAGE_BYTES),
]


class PolicyPackError(RuntimeError):
    """The pack failed to start or answer; the message says why in one line."""


class PolicyConfigError(ValueError):
    """A ``--policy-pack-config`` file or value that is not valid; the message names the file or policy."""


@dataclass(frozen=True)
class Diagnostic:
    """One policy verdict as the engine receives it."""

    policy_name: str
    message: str
    enforcement_level: str
    urn: str
    description: str = ""
    policy_pack_name: str = ""

    @property
    def detail(self) -> str:
        """The violation message without the policy description the SDK prefixes."""
        prefix = self.description + "\n"
        return self.message[len(prefix) :] if self.description and self.message.startswith(prefix) else self.message


def load_policy_pack_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a ``--policy-pack-config`` JSON file: ``{policy: level}`` or ``{policy: {enforcementLevel, ...}}``.

    Raises :class:`PolicyConfigError` with a one-line message naming the file.
    """
    from inferops import safeload

    file = Path(path)
    try:
        data = safeload.load_json(file, what="policy pack config")
    except safeload.LoadError as exc:
        raise PolicyConfigError(str(exc)) from None
    if not isinstance(data, dict):
        raise PolicyConfigError(f"{file}: the policy pack config must be a JSON object of policy names")
    for name, value in data.items():
        try:
            _split_entry(name, value)
        except PolicyConfigError as exc:
            raise PolicyConfigError(f"{file}: {exc}") from None
    return data


def _split_entry(name: str, value: Any) -> tuple[str | None, dict[str, Any]]:
    """(enforcement level or None, properties) of one config entry."""
    level: str | None
    props: dict[str, Any]
    if isinstance(value, str):
        level, props = value, {}
    elif isinstance(value, dict):
        props = {k: v for k, v in value.items() if k != "enforcementLevel"}
        level = value.get("enforcementLevel")
    else:
        raise PolicyConfigError(f"policy '{name}': expected an enforcement level or an object")
    if level is not None and level not in ENFORCEMENT_LEVELS:
        raise PolicyConfigError(
            f"policy '{name}': enforcementLevel '{level}' is not one of {', '.join(ENFORCEMENT_LEVELS)}"
        )
    if name == "all" and props:
        raise PolicyConfigError("'all' only takes an enforcement level")
    return level, props


def to_struct(properties: Mapping[str, Any]) -> struct_pb2.Struct:
    """Marshal resource properties the way the engine does: assets/archives/secrets as signature
    objects, unknowns kept as the sentinel string."""
    from pulumi_policy.deserialize import serialize_properties  # the SDK's own wire format

    struct = struct_pb2.Struct()
    struct.update(_jsonable(serialize_properties(_plain_inputs(properties))))
    return struct


def _plain_inputs(value: Any) -> Any:
    # Outputs cannot appear in recorded inputs; anything else unusual becomes its string form so a
    # resource never fails to marshal.
    if isinstance(value, Mapping):
        return {str(k): _plain_inputs(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_inputs(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


class _EngineServicer(engine_pb2_grpc.EngineServicer):
    """A loopback Engine service that records what the pack logs."""

    def __init__(self) -> None:
        self.logs: list[str] = []
        self._lock = threading.Lock()

    def Log(self, request, context):  # noqa: N802 - gRPC method name
        with self._lock:
            self.logs.append(request.message)
        return empty_pb2.Empty()

    def GetRootResource(self, request, context):  # noqa: N802
        from pulumi.runtime.proto import engine_pb2

        return engine_pb2.GetRootResourceResponse()

    def SetRootResource(self, request, context):  # noqa: N802
        from pulumi.runtime.proto import engine_pb2

        return engine_pb2.SetRootResourceResponse()


class PolicyPackProcess:
    """A policy pack started as the engine starts it; use as a context manager.

    ``config`` is the content of a ``--policy-pack-config`` file (see :func:`load_policy_pack_config`);
    it is validated against the pack's config schemas and sent with ``Configure``.
    """

    def __init__(
        self,
        pack_dir: str | os.PathLike[str],
        *,
        config: Mapping[str, Any] | None = None,
        project: str = "inferops",
        stack: str = "dev",
        dry_run: bool = True,
        stack_config: Mapping[str, Any] | None = None,
        python: str | None = None,
    ) -> None:
        self.pack_dir = Path(pack_dir).resolve()
        self.config = dict(config or {})
        self.project, self.stack, self.dry_run = project, stack, dry_run
        self.stack_config = dict(stack_config or {})
        self.python = python or sys.executable
        self._proc: subprocess.Popen[bytes] | None = None
        self._channel: grpc.Channel | None = None
        self._stub: analyzer_pb2_grpc.AnalyzerStub | None = None
        self._engine_server: grpc.Server | None = None
        self._engine = _EngineServicer()
        self._info: dict[str, Any] | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> PolicyPackProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def engine_logs(self) -> list[str]:
        """Messages the pack logged to the engine."""
        return list(self._engine.logs)

    def start(self) -> None:
        """Start the pack, connect, and send the pack configuration."""
        if not (self.pack_dir / "PulumiPolicy.yaml").is_file():
            raise PolicyPackError(f"{self.pack_dir}: not a policy pack (no PulumiPolicy.yaml)")
        self._engine_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        engine_pb2_grpc.add_EngineServicer_to_server(self._engine, self._engine_server)
        engine_port = self._engine_server.add_insecure_port("127.0.0.1:0")
        self._engine_server.start()

        env = dict(os.environ)
        env.update(
            {
                "PULUMI_PROJECT": self.project,
                "PULUMI_STACK": self.stack,
                "PULUMI_DRY_RUN": "true" if self.dry_run else "false",
                "PULUMI_CONFIG": json.dumps(
                    {k: v if isinstance(v, str) else json.dumps(v) for k, v in self.stack_config.items()}
                ),
            }
        )
        self._proc = subprocess.Popen(
            [self.python, "-u", "-m", "pulumi.policy", f"127.0.0.1:{engine_port}", str(self.pack_dir)],
            cwd=self.pack_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        port = self._read_port()
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=_CHANNEL_OPTIONS)
        try:
            grpc.channel_ready_future(self._channel).result(timeout=_STARTUP_TIMEOUT_S)
        except grpc.FutureTimeoutError as exc:
            self.close()
            raise PolicyPackError(f"{self.pack_dir}: analyzer on port {port} did not become ready") from exc
        self._stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        try:
            self._configure()
        except BaseException:
            self.close()  # a context manager's __exit__ does not run when __enter__ fails
            raise

    def _read_port(self) -> int:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        result: list[bytes] = []
        # The pack prints its port and then blocks; read that one line with a deadline.
        reader = threading.Thread(target=lambda: result.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(_STARTUP_TIMEOUT_S)
        line = result[0].strip() if result else b""
        if not line.isdigit():
            stderr = b""
            if self._proc.poll() is not None and self._proc.stderr is not None:
                stderr = self._proc.stderr.read()
            self.close()
            last = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no port printed"]
            raise PolicyPackError(f"{self.pack_dir}: policy pack did not start: {last[0]}")
        return int(line)

    def close(self) -> None:
        """Stop the pack process and the loopback engine."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            for stream in (self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    stream.close()
            self._proc = None
        if self._engine_server is not None:
            self._engine_server.stop(0)
            self._engine_server = None

    @property
    def stub(self) -> analyzer_pb2_grpc.AnalyzerStub:
        """The Analyzer client stub (raises when the pack is not started)."""
        if self._stub is None:
            raise PolicyPackError("policy pack is not running")
        return self._stub

    # ------------------------------------------------------------------ RPCs
    def info(self) -> dict[str, Any]:
        """``GetAnalyzerInfo``: the pack's name, version and policies with level and config schema."""
        if self._info is None:
            reply = self.stub.GetAnalyzerInfo(empty_pb2.Empty())
            policies = []
            for p in reply.policies:
                policies.append(
                    {
                        "name": p.name,
                        "description": p.description,
                        "display_name": p.displayName,
                        "enforcement_level": _PROTO_TO_LEVEL[p.enforcementLevel],
                        "type": {
                            analyzer_pb2.POLICY_TYPE_RESOURCE: "resource",
                            analyzer_pb2.POLICY_TYPE_STACK: "stack",
                        }.get(p.policy_type, "unknown"),
                        "config_schema": {
                            "properties": json_format.MessageToDict(p.configSchema.properties),
                            "required": list(p.configSchema.required),
                        },
                        "remediation_steps": p.remediation_steps,
                        "tags": list(p.tags),
                    }
                )
            initial = {}
            for name in reply.initialConfig:
                entry = reply.initialConfig[name]
                value: dict[str, Any] = dict(json_format.MessageToDict(entry.properties))
                if entry.enforcementLevel != analyzer_pb2.ADVISORY:
                    # proto3 cannot tell "unset" from ADVISORY (0); the SDK sends a level only when set.
                    value["enforcementLevel"] = _PROTO_TO_LEVEL.get(entry.enforcementLevel, "advisory")
                initial[name] = value
            self._info = {
                "initial_config": initial,
                "name": reply.name,
                "version": reply.version,
                "description": reply.description,
                "supports_config": reply.supportsConfig,
                "policies": policies,
            }
        return self._info

    def plugin_version(self) -> str:
        """``GetPluginInfo``: the pulumi-policy SDK version the pack runs."""
        return self.stub.GetPluginInfo(empty_pb2.Empty()).version

    def effective_config(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Per policy: the enforcement level and properties the engine would send, in the engine's
        order (pulumi ``ReconcilePolicyPackConfig``): schema defaults, then the pack's own initial
        config, then the ``--policy-pack-config`` file, each layer's ``all`` level before its
        policies. Raises :class:`PolicyConfigError`."""
        info = self.info()
        policies = {p["name"]: p for p in info["policies"]}
        for name in self.config:
            if name != "all" and name not in policies:
                raise PolicyConfigError(f"policy pack config names unknown policy '{name}'")
        result: dict[str, tuple[str, dict[str, Any]]] = {}
        for name, policy in policies.items():
            schema = policy["config_schema"]
            props = {k: v["default"] for k, v in schema["properties"].items() if isinstance(v, dict) and "default" in v}
            result[name] = (policy["enforcement_level"], props)
        for layer in (info.get("initial_config") or {}, self.config):
            all_level, _ = _split_entry("all", layer["all"]) if "all" in layer else (None, {})
            for name, (level, props) in list(result.items()):
                level = all_level or level
                if name in layer:
                    own_level, own_props = _split_entry(name, layer[name])
                    level = own_level or level
                    props = {**props, **own_props}
                result[name] = (level, props)
        for name, (_level, props) in result.items():
            _validate(name, props, policies[name]["config_schema"])
        return result

    def configure_request(self) -> analyzer_pb2.ConfigureAnalyzerRequest:
        """The ``Configure`` request the engine would send: every policy, each with a properties
        Struct (empty when the policy takes none, as the engine always marshals one)."""
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, (level, props) in self.effective_config().items():
            entry = request.policyConfig[name]
            entry.enforcementLevel = _LEVEL_TO_PROTO[level]
            entry.properties.SetInParent()
            entry.properties.update(props)
        return request

    def _configure(self) -> None:
        try:
            self.stub.Configure(self.configure_request())
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise PolicyConfigError(exc.details() or "the policy pack rejected its config") from None
            raise
        stack_request = analyzer_pb2.AnalyzerStackConfigureRequest(
            stack=self.stack, project=self.project, organization="organization", dry_run=self.dry_run
        )
        try:
            self.stub.ConfigureStack(stack_request)
        except grpc.RpcError as exc:  # older SDKs do not implement it; the engine tolerates that too
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise

    def analyze(self, resource: Any, provider: Any = None) -> list[Diagnostic]:
        """``Analyze`` one resource (an ``inferops.harness.RegisteredResource`` or anything with
        ``type``, ``name``, ``urn``, ``inputs`` and optional ``parent``), its inputs as properties.

        ``provider`` (``type``, ``name``, ``urn``, ``inputs``) is sent as the resource's provider, as
        the engine sends the provider resource that manages it."""
        request = analyzer_pb2.AnalyzeRequest(
            type=resource.type,
            name=resource.name,
            urn=resource.urn,
            properties=to_struct(resource.inputs),
            options=analyzer_pb2.AnalyzerResourceOptions(parent=getattr(resource, "parent", None) or ""),
        )
        if provider is not None:
            request.provider.CopyFrom(
                analyzer_pb2.AnalyzerProviderResource(
                    type=provider.type, name=provider.name, urn=provider.urn, properties=to_struct(provider.inputs)
                )
            )
        # The SDK leaves a resource violation's urn empty; the engine attributes it to the resource.
        return [
            d
            if d.urn
            else Diagnostic(
                d.policy_name, d.message, d.enforcement_level, resource.urn, d.description, d.policy_pack_name
            )
            for d in self._diagnostics(self.stub.Analyze(request))
        ]

    def analyze_stack(self, resources: Iterable[Any]) -> list[Diagnostic]:
        """``AnalyzeStack`` over all resources, each with its inputs merged with its outputs."""
        items = []
        for r in resources:
            props = {**(r.inputs or {}), **(getattr(r, "outputs", None) or {})}
            parent = getattr(r, "parent", None) or ""
            items.append(
                analyzer_pb2.AnalyzerResource(
                    type=r.type,
                    name=r.name,
                    urn=r.urn,
                    properties=to_struct(props),
                    parent=parent,
                    options=analyzer_pb2.AnalyzerResourceOptions(parent=parent),
                )
            )
        return self._diagnostics(self.stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=items)))

    @staticmethod
    def _diagnostics(reply: analyzer_pb2.AnalyzeResponse) -> list[Diagnostic]:
        return [
            Diagnostic(
                policy_name=d.policyName,
                message=d.message,
                enforcement_level=_PROTO_TO_LEVEL.get(d.enforcementLevel, "advisory"),
                urn=d.urn,
                description=d.description,
                policy_pack_name=d.policyPackName,
            )
            for d in reply.diagnostics
        ]


def _validate(policy: str, props: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """Check properties against the policy's JSON schema, as the engine does before ``Configure``."""
    import jsonschema  # the engine validates with JSON Schema too

    full = {"type": "object", "properties": schema.get("properties", {}), "required": schema.get("required", [])}
    errors = sorted(jsonschema.Draft7Validator(full).iter_errors(dict(props)), key=lambda e: list(e.path))
    if errors:
        error = errors[0]
        where = ".".join(str(p) for p in error.path) or "(config)"
        raise PolicyConfigError(f"policy '{policy}': {where}: {error.message}")


__all__ = [
    "UNKNOWN",
    "Diagnostic",
    "PolicyConfigError",
    "PolicyPackError",
    "PolicyPackProcess",
    "load_policy_pack_config",
    "to_struct",
]
