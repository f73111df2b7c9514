"""FinOps decisions: a report's proposals for one function -> the config edits, as a gitops ``Change``.

Pure: :func:`plan_change` reads only the report and the function's config as it is at the commit being
edited. An edit is planned only where the config still holds the value the report saw (``from``): a
value someone changed since is theirs, and an edit already applied (a re-run, or the other writer's
branch after a rejected push) plans nothing, which is what makes write-back idempotent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def plan_change(report: Report, stack: str, function: str, fn: Mapping[str, Any]) -> Change | None:
    """The change carrying out the report's proposals for ``function`` on config ``fn``; None if nothing to do."""
    entry = report.functions.get(function)
    if entry is None:
        raise ReportError(f"{report.path}: functions: no entry for {function!r}")
    edits: list[Edit] = []
    new_blocks: dict[str, dict[str, Any]] = {}
    changes: list[str] = []
    skipped: list[str] = []
    actions: list[str] = []
    reasons: list[str] = []
    for proposal in entry.get("proposals", []):
        applied = False
        for e in proposal["edits"]:
            path = tuple(e["path"].split("."))
            current = _get(fn, path)
            target = _number(e["to"])
            if current is not None and current == target:
                continue
            expected = e.get("from")
            if current is not None and expected is not None and current != expected:
                skipped.append(f"{e['path']} is {current} now, the report saw {expected}: left alone")
                continue
            if isinstance(fn.get(path[0]), Mapping):
                edits.append(Edit(path, target))
            else:
                new_blocks.setdefault(path[0], {})[path[1]] = target
            changes.append(f"{e['path']}: {current} -> {target}")
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
    if skipped:
        body_lines += ["", "Not changed:"] + [f"- {s}" for s in skipped]
    md = [f"## FinOps: `{action}` for `{function}` on `{stack}`", ""]
    md.append(f"- Report: `{report.digest}` ({report.month}, data to {report.as_of})")
    fc = entry.get("forecast_usd")
    if fc is not None:
        md.append(f"- Forecast ${fc:,.2f} against a ${entry.get('budget_usd', 0):,.2f} budget")
    md += ["", "### Config change", ""] + [f"- `{c}`" for c in changes]
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
