"""Run a stack's history under Pulumi's mocks the way the engine would, state carried between runs.

:class:`StatefulMocks` remembers what each run left (per resource: the inputs the engine applied and
the outputs the provider reported) and answers the next run from it:

* ``ignore_changes``: the engine replaces an ignored input by its value in the old state before it
  diffs (www.pulumi.com/docs/iac/concepts/options/ignorechanges/), so an ignored path keeps its old
  value, and the resource's outputs follow;
* Lambda ``publish``: every create or change of code or configuration publishes the next version
  number (docs.aws.amazon.com/lambda/latest/dg/configuration-versions.html: "Lambda creates a new
  version ... each time you publish"; version numbers increase, starting at 1); a tag-only change
  publishes nothing;
* reads of live cloud objects (the Azure app, the Cloud Run service's traffic) see what the previous
  run deployed.

:func:`run_history` runs a list of configs in order and returns each :class:`~inferops.harness.ProgramRun`
with the state before it, so a test can check every transition.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from inferops.harness import ProgramRun, RecordingMocks, run_program

Key = tuple[str, str]  # (type, logical name)
LAMBDA = "aws:lambda/function:Function"
#: Inputs whose change does not publish a new Lambda version.
_NO_PUBLISH = {"tags", "tagsAll"}


@dataclass
class State:
    """What the engine knows after a run: per resource, its applied inputs and its outputs."""

    resources: dict[Key, dict[str, Any]] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[dict[str, Any]]:
        """The ``{"inputs", "outputs"}`` records of one type."""
        return [r for (t, _), r in self.resources.items() if t == typ]


class StatefulMocks(RecordingMocks):
    """Mocks that start from ``prior`` (a previous run's :class:`State`) and build the next one."""

    def __init__(self, prior: State | None = None) -> None:
        super().__init__()
        self.prior = prior or State()
        self.state = State()

    def outputs_for(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        key = (args.typ, args.name)
        old = self.prior.resources.get(key)
        inputs = dict(args.inputs)
        if old is not None:
            for path in self.ignore_changes:
                top = path.split(".")[0].split("[")[0]
                if top in old["inputs"]:
                    inputs[top] = copy.deepcopy(old["inputs"][top])
                else:
                    inputs.pop(top, None)
        applied = pulumi.runtime.MockResourceArgs(
            args.typ, args.name, inputs, args.provider, args.resource_id, args.custom
        )
        rid, outputs = super().outputs_for(applied)
        if args.typ == LAMBDA:
            outputs.update(self._published(old, inputs, outputs))
        self.state.resources[key] = {"inputs": inputs, "outputs": outputs}
        return rid, outputs

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        rid, outputs = self.outputs_for(args)
        inputs = self.state.resources[(args.typ, args.name)]["inputs"]
        self.registered.append((args.typ, args.name, dict(inputs), outputs, bool(args.custom), args.provider))
        return rid, outputs

    @staticmethod
    def _published(old: dict[str, Any] | None, inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
        if old is None:
            version = 1
        else:
            before = {k: v for k, v in old["inputs"].items() if k not in _NO_PUBLISH}
            now = {k: v for k, v in inputs.items() if k not in _NO_PUBLISH}
            version = int(old["outputs"]["version"]) + (1 if before != now else 0)
        arn = str(outputs.get("arn", ""))
        return {"version": str(version), "qualifiedArn": f"{arn}:{version}"}

    def read_cloud(self, token: str, args: dict[str, Any]) -> dict[str, Any] | None:
        if token == "azure-native:web:getWebApp":
            for app in self.prior.of_type("azure-native:web:WebApp"):
                if app["inputs"].get("name") == args.get("name"):
                    return {"name": args.get("name"), "resourceGroup": args.get("resourceGroupName")}
            return None
        if token == "gcp:cloudrunv2/getService:getService":
            for svc in self.prior.of_type("gcp:cloudrunv2/service:Service"):
                if svc["inputs"].get("name") == args.get("name"):
                    statuses = [
                        {
                            "type": t.get("type", ""),
                            "revision": t.get("revision", ""),
                            "percent": int(t.get("percent", 0)),
                            "tag": t.get("tag", ""),
                            "uri": "",
                        }
                        for t in svc["inputs"].get("traffics") or []
                    ]
                    return {"name": args.get("name"), "trafficStatuses": statuses}
            return None
        return None


@dataclass
class Step:
    """One deploy of a history: its label, the state before it, the run, the state after it."""

    label: str
    before: State
    run: ProgramRun
    after: State


def run_history(stack_file: Path, stack: str, configs: Sequence[tuple[str, dict[str, Any]]]) -> list[Step]:
    """Deploy ``configs`` (label, ``config:`` mapping) one after another, state carried over."""
    steps: list[Step] = []
    state = State()
    for label, config in configs:
        mocks = StatefulMocks(state)
        run = run_program(stack_file, config=config, stack=stack, mocks=mocks)
        # A resource the program no longer declares is deleted by the engine: it is not in the new state.
        steps.append(Step(label, state, run, mocks.state))
        state = mocks.state
    return steps
