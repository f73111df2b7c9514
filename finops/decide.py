"""FinOps decisions: a report's proposals for one function -> the config edits, as a gitops ``Change``.

Pure: :func:`plan_change` reads only the report and the function's config (and ``inferops:defaults``)
as it is at the commit being edited. An edit is planned only where the config still holds the value the
report saw (``from``): a value someone changed since is theirs, and an edit already applied (a re-run,
or the other writer's branch after a rejected push) plans nothing, which is what makes write-back
idempotent.

The report's values are the function's effective config: a key the function does not carry is
inherited, ``finops.*`` from ``inferops:defaults`` and ``scaling.*`` from the program's defaults
(:class:`components.spec.ScalingSpec`). Changing one means writing it into the function's own block
(editing the defaults would change every other function), after which later edits of the defaults no
longer reach this function. That is what the change needs, but it is not what a reviewer sees in a
diff that adds one line, so every such key is said in ``changes``, the commit body and the pull
request ("sets it on fn; was inherited from inferops:defaults: 120"); a key whose inherited value is
already the target is not written at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.spec import ScalingSpec
from gitops.configedit import Edit
from gitops.writeback import Change

SCHEMA = "finops.report/v1"
#: Fields a proposal may edit; anything else in a report is refused (a report is evidence, not a script).
EDITABLE = {
    "runtime.memoryMb",
    "scaling.minInstances",
    "scaling.maxInstances",
    "finops.expectedMonthlyRequests",
    "finops.avgDurationMs",
}


class ReportError(ValueError):
    """A report that cannot be acted on; one line naming the file and field."""


@dataclass(frozen=True)
class Report:
    """The parts of a ``finops.report/v1`` that remediation uses."""

    path: str
    digest: str
    stack: str
    month: str
    as_of: str
    functions: Mapping[str, Mapping[str, Any]]


def parse_report(raw: bytes, path: str = "report") -> Report:
    """Validate a report's bytes; raises :class:`ReportError`."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ReportError(f"{path}: not JSON: {' '.join(str(exc).split())}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ReportError(f"{path}: schema: expected {SCHEMA} (python -m finops report --format json)")
    functions = doc.get("functions")
    if not isinstance(functions, list):
        raise ReportError(f"{path}: functions: expected a list")
    by_name: dict[str, Mapping[str, Any]] = {}
    for i, f in enumerate(functions):
        if not isinstance(f, dict) or not isinstance(f.get("name"), str):
            raise ReportError(f"{path}: functions[{i}].name: expected a string")
        proposals = f.get("proposals", [])
        if not isinstance(proposals, list):
            raise ReportError(f"{path}: functions[{f['name']}].proposals: expected a list")
        for j, p in enumerate(proposals):
            where = f"functions[{f['name']}].proposals[{j}]"
            if not isinstance(p, dict) or not isinstance(p.get("action"), str) or not isinstance(p.get("edits"), list):
                raise ReportError(f"{path}: {where}: expected an object with action and edits")
            for k, e in enumerate(p["edits"]):
                if not isinstance(e, dict) or e.get("path") not in EDITABLE:
                    raise ReportError(f"{path}: {where}.edits[{k}].path: must be one of {', '.join(sorted(EDITABLE))}")
                to = e.get("to")
                if isinstance(to, bool) or not isinstance(to, int | float) or to < 0:
                    raise ReportError(f"{path}: {where}.edits[{k}].to: expected a non-negative number")
        by_name[f["name"]] = f
    return Report(
        path=path,
        digest="sha256:" + hashlib.sha256(raw).hexdigest(),
        stack=str(doc.get("stack", "")),
        month=str(doc.get("month", "")),
        as_of=str(doc.get("as_of", "")),
        functions=by_name,
    )


def load_report(path: str | Path) -> Report:
    """Read and validate a report file."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_report(raw, str(path))


def _get(fn: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = fn
    for k in path:
        if not isinstance(node, Mapping) or k not in node:
            return None
        node = node[k]
    return node


def _number(v: Any) -> int | float:
    return int(v) if float(v).is_integer() else float(v)


#: Where a key the function does not carry comes from, by its block.
_PROGRAM_DEFAULTS = {
    ("scaling", "minInstances"): ScalingSpec.model_fields["min_instances"].default,
    ("scaling", "maxInstances"): ScalingSpec.model_fields["max_instances"].default,
}


def _inherited(path: tuple[str, ...], defaults: Mapping[str, Any] | None) -> tuple[Any, str]:
    """(value, source) the function gets for ``path`` when it does not carry it; value None if unknown."""
    if path[0] == "finops" and len(path) == 2:
        return (defaults.get(path[1]) if defaults is not None else None), "inferops:defaults"
    if path in _PROGRAM_DEFAULTS:
        return _PROGRAM_DEFAULTS[path], "the program's default"
    return None, "nowhere"


def plan_change(
    report: Report, stack: str, function: str, fn: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
) -> Change | None:
    """The change carrying out the report's proposals for ``function`` on config ``fn``; None if nothing to do.

    ``defaults``: the stack's ``inferops:defaults``, what ``fn`` inherits; None when not known, and
    then a ``finops`` key ``fn`` does not carry is taken to hold what the report saw.
    """
    entry = report.functions.get(function)
    if entry is None:
        raise ReportError(f"{report.path}: functions: no entry for {function!r}")
    edits: list[Edit] = []
    new_blocks: dict[str, dict[str, Any]] = {}
    changes: list[str] = []
    skipped: list[str] = []
    inherited_keys: list[str] = []
    actions: list[str] = []
    reasons: list[str] = []
    for proposal in entry.get("proposals", []):
        applied = False
        for e in proposal["edits"]:
            path = tuple(e["path"].split("."))
            target = _number(e["to"])
            expected = e.get("from")
            own = _get(fn, path)
            source = "its own"
            current = own
            if own is None:
                current, source = _inherited(path, defaults)
                if current is None and defaults is None and path[0] == "finops":
                    current = expected  # inherited from defaults we were not given: what the report saw
            if current is not None and current == target:
                continue  # already so, own or inherited: nothing to write
            if current is not None and expected is not None and current != expected:
                where = "" if own is not None else f" (inherited from {source})"
                skipped.append(f"{e['path']} is {current} now{where}, the report saw {expected}: left alone")
                continue
            if isinstance(fn.get(path[0]), Mapping):
                edits.append(Edit(path, target))
            else:
                new_blocks.setdefault(path[0], {})[path[1]] = target
            was = "unset" if current is None else current
            if own is None and current is None:
                changes.append(f"{e['path']}: unset -> {target} (sets it on {function})")
            elif own is None:
                changes.append(
                    f"{e['path']}: {was} -> {target} (sets it on {function}; was inherited from {source}: {was})"
                )
                inherited_keys.append(f"{e['path']} (was {was}, from {source})")
            else:
                changes.append(f"{e['path']}: {was} -> {target}")
            applied = True
        if applied:
            actions.append(proposal["action"])
            reasons += [str(r) for r in proposal.get("reasons", [])]
    edits += [Edit((block,), values) for block, values in new_blocks.items()]
    if not edits:
        return None
    action = "+".join(dict.fromkeys(actions))
    body_lines = [f"FinOps report {report.digest} ({report.month}, data to {report.as_of}).", "", "Changes:"]
    body_lines += [f"- {c}" for c in changes]
    if reasons:
        body_lines += ["", "Why:"] + [f"- {r}" for r in reasons]
    inherit_note = (
        f"{function} did not carry these keys and inherited them; it carries its own value now, so later "
        "edits of inferops:defaults or of the program's defaults no longer change them for it:"
    )
    if inherited_keys:
        body_lines += ["", "Now set on the function:", inherit_note] + [f"- {k}" for k in inherited_keys]
    if skipped:
        body_lines += ["", "Not changed:"] + [f"- {s}" for s in skipped]
    md = [f"## FinOps: `{action}` for `{function}` on `{stack}`", ""]
    md.append(f"- Report: `{report.digest}` ({report.month}, data to {report.as_of})")
    fc = entry.get("forecast_usd")
    if fc is not None:
        md.append(f"- Forecast ${fc:,.2f} against a ${entry.get('budget_usd', 0):,.2f} budget")
    md += ["", "### Config change", ""] + [f"- `{c}`" for c in changes]
    if inherited_keys:
        md += ["", "### Now set on the function", "", inherit_note, ""]
        md += [f"- `{k.split(' ', 1)[0]}` {k.split(' ', 1)[1]}" for k in inherited_keys]
    if reasons:
        md += ["", "### Why", ""] + [f"- {r}" for r in reasons]
    rs = entry.get("rightsizing") or {}
    if rs.get("assumptions"):
        md += ["", "### Assumptions", ""] + [f"- {a}" for a in rs["assumptions"]]
    if skipped:
        md += ["", "### Not changed", ""] + [f"- {s}" for s in skipped]
    md += ["", "`pulumi preview` on this pull request shows the resulting infrastructure change."]
    return Change(
        loop="finops",
        action=action,
        edits=edits,
        title=f"chore(finops): {action} {function} on {stack}",
        body="\n".join(body_lines),
        pr_body="\n".join(md) + "\n",
        evidence_digest=report.digest,
        changes=changes,
    )
