"""Remediation policy: a drift report and a function's state -> one action and the config edits it needs.

Actions (the values of the per-function ``remediation`` keys):

``stop-canary``
    ``traffic.canaryPercent`` to 0: all traffic back on ``model.stableVersion``.
``rollback``
    ``model.version`` to ``model.stableVersion`` and ``traffic.canaryPercent`` to 0 (the ``traffic`` key is
    kept, so the spec and the diff stay explicit).
``request-retraining``
    a ``retraining`` record (reason, report digest, date) in the function's config; the deployed resources
    carry it as metadata.
``none``
    nothing.

Rules (defaults in brackets): no drift -> none; performance drift with ``onPerformance`` set -> that
action; major drift while a canary runs -> ``onMajorDuringCanary`` [stop-canary]; major drift otherwise
-> ``onMajor`` [rollback]; minor drift -> ``onMinor`` [request-retraining]. An action that cannot apply
falls back: ``stop-canary`` without a running canary becomes ``rollback``; ``rollback`` without a
different stable version becomes ``request-retraining``. A canary runs when ``traffic.canaryPercent > 0``
and ``model.version != model.stableVersion``.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from gitops.configedit import Edit, Validator, default_validator
from gitops.writeback import GIT_TIMEOUT, Change, Outcome, RefusedError, one_line, outcome_json, write_back

SEVERITIES = ("none", "minor", "major")
DRIFT_KINDS = ("data", "performance")


class RemediationError(ValueError):
    """Bad report or function config; the message is one line naming the file and field."""


class Action(StrEnum):
    """What remediation does to a function's config."""

    STOP_CANARY = "stop-canary"
    ROLLBACK = "rollback"
    REQUEST_RETRAINING = "request-retraining"
    NONE = "none"


# --- the report ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureDrift:
    """One drifted feature as the report states it."""

    feature: str
    test: str
    statistic: float
    p_value: float | None
    threshold: float

    def describe(self) -> str:
        """``amount: ks statistic=0.41 p=1.2e-08 (threshold 0.05)``."""
        p = "" if self.p_value is None else f" p={_num(self.p_value)}"
        name, test = one_line(self.feature), one_line(self.test)
        return f"{name}: {test} statistic={_num(self.statistic)}{p} (threshold {_num(self.threshold)})"


@dataclass(frozen=True)
class Report:
    """The fields of a drift report (``python -m drift check --format json``) that remediation uses."""

    path: str
    digest: str  # "sha256:<hex>" of the file bytes
    drifted: bool
    severity: str
    drift_kinds: tuple[str, ...]
    n_features: int
    features: tuple[FeatureDrift, ...]  # drifted ones, in report order
    performance: Mapping[str, Any] | None = None  # only when it drifted

    @property
    def short_digest(self) -> str:
        """First 12 hex digits, for messages."""
        return self.digest.removeprefix("sha256:")[:12]

    @property
    def performance_drifted(self) -> bool:
        """True when the report flags model-quality drift."""
        return "performance" in self.drift_kinds or self.performance is not None

    def summary(self) -> str:
        """``major data drift: 3 of 12 features (amount, country, hour)`` (used as the retraining reason)."""
        kinds = [k for k in DRIFT_KINDS if k in self.drift_kinds] or ["data"]
        parts = []
        if "data" in kinds:
            names = ", ".join(one_line(f.feature) for f in self.features[:8]) + (
                ", ..." if len(self.features) > 8 else ""
            )
            parts.append(f"{len(self.features)} of {self.n_features} features" + (f" ({names})" if names else ""))
        if self.performance is not None:
            p = self.performance
            parts.append(f"{p['metric']} {_num(p['reference'])} -> {_num(p['current'])}")
        text = f"{self.severity} {' and '.join(kinds)} drift"
        return f"{text}: {'; '.join(parts)}" if parts else text


def _num(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _field(
    d: Mapping[str, Any], key: str, types: type | tuple[type, ...], where: str, *, nullable: bool = False
) -> Any:
    if key not in d:
        raise RemediationError(f"{where}: missing field '{key}'")
    v = d[key]
    if v is None and nullable:
        return None
    bad_bool = isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,))
    if not isinstance(v, types) or bad_bool:
        raise RemediationError(f"{where}: field '{key}' has the wrong type ({type(v).__name__})")
    if isinstance(v, float) and not math.isfinite(v):
        raise RemediationError(f"{where}: field '{key}' is not a finite number")
    return v


def parse_report(raw: bytes, path: str = "report") -> Report:
    """Parse report bytes; raises :class:`RemediationError` naming ``path`` and the bad field."""
    try:
        d = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RemediationError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(d, Mapping):
        raise RemediationError(f"{path}: the report must be a JSON object")
    drifted = _field(d, "drifted", bool, path)
    severity = _field(d, "severity", str, path)
    if severity not in SEVERITIES:
        raise RemediationError(f"{path}: field 'severity' must be one of {', '.join(SEVERITIES)} (got {severity!r})")
    feats_raw = _field(d, "features", list, path)
    features = []
    num = (int, float)
    for i, f in enumerate(feats_raw):
        where = f"{path}: features[{i}]"
        if not isinstance(f, Mapping):
            raise RemediationError(f"{where} must be an object")
        if not _field(f, "drifted", bool, where):
            continue
        features.append(
            FeatureDrift(
                feature=_field(f, "feature", str, where),
                test=_field(f, "test", str, where),
                statistic=_field(f, "statistic", num, where),
                p_value=_field(f, "p_value", num, where, nullable=True),
                threshold=_field(f, "threshold", num, where),
            )
        )
    kinds_raw = d.get("drift_kinds")
    if kinds_raw is None:
        kinds_raw = ["data"] if features else []
    if not isinstance(kinds_raw, list) or any(k not in DRIFT_KINDS for k in kinds_raw):
        raise RemediationError(f"{path}: field 'drift_kinds' must be a list of {', '.join(DRIFT_KINDS)}")
    perf = d.get("performance")
    performance = None
    if perf is not None:
        where = f"{path}: performance"
        if not isinstance(perf, Mapping):
            raise RemediationError(f"{where} must be an object or null")
        if _field(perf, "drifted", bool, where):
            performance = {
                "metric": _field(perf, "metric", str, where),
                "reference": _field(perf, "reference", num, where),
                "current": _field(perf, "current", num, where),
                "delta": perf.get("delta"),
                "test": perf.get("test"),
                "p_value": perf.get("p_value"),
                "threshold": perf.get("threshold"),
            }
    kinds = tuple(k for k in DRIFT_KINDS if k in kinds_raw or (k == "performance" and performance is not None))
    if drifted and severity == "none":
        raise RemediationError(f"{path}: field 'severity' is 'none' but 'drifted' is true")
    return Report(
        path=path,
        digest="sha256:" + hashlib.sha256(raw).hexdigest(),
        drifted=drifted,
        severity=severity if drifted else "none",
        drift_kinds=kinds if drifted else (),
        n_features=len(feats_raw),
        features=tuple(features),
        performance=performance,
    )


def load_report(path: str | Path) -> Report:
    """Read and parse a report file (digest over its exact bytes)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise RemediationError(f"{path}: cannot read report ({exc.strerror})") from None
    return parse_report(raw, str(path))


# --- policy and state ------------------------------------------------------------------------------------


_POLICY_KEYS = {
    "onMajorDuringCanary": "on_major_during_canary",
    "onMajor": "on_major",
    "onMinor": "on_minor",
    "onPerformance": "on_performance",
}


@dataclass(frozen=True)
class Policy:
    """The per-function ``remediation`` keys; defaults match components/spec.py."""

    on_major_during_canary: Action = Action.STOP_CANARY
    on_major: Action = Action.ROLLBACK
    on_minor: Action = Action.REQUEST_RETRAINING
    on_performance: Action | None = None

    @classmethod
    def from_config(cls, remediation: Any, where: str = "remediation") -> Policy:
        """Build from the function's ``remediation`` mapping (missing keys take the defaults)."""
        if remediation is None:
            return cls()
        if not isinstance(remediation, Mapping):
            raise RemediationError(f"{where}: must be a mapping")
        kwargs: dict[str, Any] = {}
        for key, value in remediation.items():
            if key not in _POLICY_KEYS:
                raise RemediationError(f"{where}.{key}: unknown key (known: {', '.join(_POLICY_KEYS)})")
            if value is None and key == "onPerformance":
                continue
            try:
                kwargs[_POLICY_KEYS[key]] = Action(value)
            except ValueError:
                choices = ", ".join(a.value for a in Action)
                raise RemediationError(f"{where}.{key}: must be one of {choices} (got {value!r})") from None
        return cls(**kwargs)


@dataclass(frozen=True)
class FunctionState:
    """What the policy needs to know about a function's current config."""

    name: str
    version: str
    stable_version: str | None
    canary_percent: int

    @property
    def canary_running(self) -> bool:
        """``canaryPercent > 0`` and a stable version different from the serving one."""
        return self.canary_percent > 0 and self.stable_version is not None and self.version != self.stable_version

    @property
    def can_roll_back(self) -> bool:
        """A different stable version exists to go back to."""
        return self.stable_version is not None and self.stable_version != self.version

    @classmethod
    def from_config(cls, fn: Mapping[str, Any], where: str = "function") -> FunctionState:
        """Read name, model.version, model.stableVersion and traffic.canaryPercent."""
        model = fn.get("model")
        if not isinstance(model, Mapping) or not isinstance(model.get("version"), str):
            raise RemediationError(f"{where}.model.version: missing or not a string")
        stable = model.get("stableVersion")
        if stable is not None and not isinstance(stable, str):
            raise RemediationError(f"{where}.model.stableVersion: must be a string")
        traffic = fn.get("traffic") or {}
        pct = traffic.get("canaryPercent", 0) if isinstance(traffic, Mapping) else 0
        if isinstance(pct, bool) or not isinstance(pct, int):
            raise RemediationError(f"{where}.traffic.canaryPercent: must be an integer")
        return cls(name=str(fn.get("name")), version=model["version"], stable_version=stable, canary_percent=pct)


@dataclass(frozen=True)
class Decision:
    """The chosen action, the rule that chose it, and any fallbacks taken on the way."""

    action: Action
    rule: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def explain(self) -> str:
        """One line: ``rollback (onMajor; stop-canary: no canary running)``."""
        extra = "; ".join(self.notes)
        return f"{self.action.value} ({self.rule}{'; ' + extra if extra else ''})"


def decide(report: Report, state: FunctionState, policy: Policy) -> Decision:
    """Apply the policy rules and fallbacks (see the module docstring)."""
    if not report.drifted or report.severity == "none":
        return Decision(Action.NONE, "no drift")
    if report.performance_drifted and policy.on_performance is not None:
        action, rule = policy.on_performance, "onPerformance"
    elif report.severity == "major" and state.canary_running:
        action, rule = policy.on_major_during_canary, "onMajorDuringCanary"
    elif report.severity == "major":
        action, rule = policy.on_major, "onMajor"
    else:
        action, rule = policy.on_minor, "onMinor"
    notes: list[str] = []
    if action is Action.STOP_CANARY and not state.canary_running:
        notes.append("stop-canary: no canary running")
        action = Action.ROLLBACK
    if action is Action.ROLLBACK and not state.can_roll_back:
        notes.append("rollback: no stable version different from the serving one")
        action = Action.REQUEST_RETRAINING
    return Decision(action, rule, tuple(notes))


def plan_edits(action: Action, fn: Mapping[str, Any], report: Report, today: date) -> list[Edit]:
    """The config edits that carry out ``action`` on ``fn`` as it is now; empty when already done.

    Re-planning the same action on a config it was already applied to yields no edits, which is what
    makes re-runs and re-applying onto a fetched branch idempotent. A retraining record that already
    names this report's digest is left alone (its date included).
    """
    edits: list[Edit] = []
    model = fn.get("model") or {}
    traffic = fn.get("traffic")
    canary_on = isinstance(traffic, Mapping) and traffic.get("canaryPercent", 0) != 0
    if action in (Action.STOP_CANARY, Action.ROLLBACK) and canary_on:
        edits.append(Edit(("traffic", "canaryPercent"), 0))
    if action is Action.ROLLBACK:
        stable = model.get("stableVersion")
        if stable is not None and stable != model.get("version"):
            edits.insert(0, Edit(("model", "version"), stable))
    if action is Action.REQUEST_RETRAINING:
        current = fn.get("retraining")
        if not (isinstance(current, Mapping) and current.get("reportDigest") == report.digest):
            record = {
                "reason": report.summary()[:500],
                "reportDigest": report.digest,
                # quoted: a bare date would load as a YAML timestamp, and the spec wants a string
                "requestedAt": DoubleQuotedScalarString(today.isoformat()),
            }
            edits.append(Edit(("retraining",), record))
    return edits


def describe_edits(edits: list[Edit], fn: Mapping[str, Any]) -> list[str]:
    """``model.version: 2.2.0 -> 2.1.0`` lines for commit messages and PR bodies."""
    out = []
    for e in edits:
        old: Any = fn
        for k in e.path:
            old = old.get(k) if isinstance(old, Mapping) else None
        if isinstance(e.value, Mapping):
            inner = ", ".join(f"{k}={v}" for k, v in e.value.items())
            out.append(f"{e.describe()}: {inner}")
        else:
            out.append(f"{e.describe()}: {old} -> {e.value}")
    return out


def commit_body(
    action: Action, function: str, stack: str, report: Report, decision: Decision, changes: list[str]
) -> str:
    """The commit body: the evidence and the decision (gitops adds the subject and the trailers).

    The ``Inferops-Report`` and ``Inferops-Function`` trailers gitops appends let a later run find that
    this report was already handled (also after a squash merge, which keeps commit bodies).
    """
    lines = [f"Report {report.digest} ({report.severity} {'/'.join(report.drift_kinds) or 'no'} drift)."]
    lines.append(f"Policy: {decision.explain()}.")
    lines.append("")
    lines.append("Changes:")
    lines.extend(f"- {c}" for c in changes)
    if report.features:
        lines.append("")
        lines.append(f"Drifted features ({len(report.features)} of {report.n_features}):")
        lines.extend(f"- {f.describe()}" for f in report.features)
    if report.performance is not None:
        p = report.performance
        lines.append("")
        pv = "" if p.get("p_value") is None else f", p={_num(p['p_value'])}"
        lines.append(
            f"Performance: {p['metric']} {_num(p['reference'])} -> {_num(p['current'])}"
            f" (test {p.get('test')}{pv}, threshold {_num(p.get('threshold'))})"
        )
    return "\n".join(lines) + "\n"


def title(action: Action, function: str, stack: str) -> str:
    """Commit subject and pull-request title."""
    return f"chore(drift): {action.value} {function} on {stack}"


def _md_cell(text: str) -> str:
    """A report value as one Markdown table cell: one line, pipes and backticks escaped."""
    return one_line(text).replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")


def markdown_body(
    action: Action, function: str, stack: str, report: Report, decision: Decision, changes: list[str]
) -> str:
    """Pull-request body: the decision, the config change and the drift evidence as Markdown."""
    md = [f"## Drift remediation: `{action.value}` for `{function}` on `{stack}`", ""]
    md.append(f"- Report: `{report.digest}` — **{report.severity}** {', '.join(report.drift_kinds)} drift")
    md.append(f"- Policy: {decision.explain()}")
    md.append("")
    md.append("### Config change")
    md.extend(f"- `{c}`" for c in changes)
    if report.features:
        md += ["", f"### Drifted features ({len(report.features)} of {report.n_features})", ""]
        md.append("| feature | test | statistic | p-value | threshold |")
        md.append("|---|---|---|---|---|")
        for f in report.features:
            pv = "" if f.p_value is None else _num(f.p_value)
            cells = [_md_cell(f.feature), _md_cell(f.test), _num(f.statistic), pv, _num(f.threshold)]
            md.append("| " + " | ".join(cells) + " |")
    if report.performance is not None:
        p = report.performance
        md += ["", "### Performance", "", f"{p['metric']}: {_num(p['reference'])} → {_num(p['current'])}"]
    md += ["", "`pulumi preview` on this pull request shows the resulting infrastructure change."]
    return "\n".join(md) + "\n"


# --- the loop: decision -> gitops Change ------------------------------------------------------------------


def build_change(
    action: Action, fn: Mapping[str, Any], stack: str, function: str, report: Report, decision: Decision, today: date
) -> Change:
    """The :class:`gitops.writeback.Change` that carries ``action`` out on ``fn`` (edits may be empty)."""
    edits = plan_edits(action, fn, report, today)
    changes = describe_edits(edits, fn)
    return Change(
        loop="drift",
        action=action.value,
        edits=edits,
        title=title(action, function, stack),
        body=commit_body(action, function, stack, report, decision, changes),
        pr_body=markdown_body(action, function, stack, report, decision, changes),
        evidence_digest=report.digest,
        changes=changes,
        hash_mask=(f'"{today.isoformat()}"',),
    )


@dataclass
class Remediation:
    """A remediation run: the report, the decision and what the Git write-back did."""

    report: Report
    outcome: Outcome
    decision: Decision = field(default_factory=lambda: Decision(Action.NONE, "not decided"))

    # The write-back's fields, for callers that read the outcome directly.
    @property
    def branch(self) -> str | None:
        """The branch carrying the change, or None."""
        return self.outcome.branch

    @property
    def commit(self) -> str | None:
        """The branch tip."""
        return self.outcome.commit

    @property
    def created_commit(self) -> bool:
        """True when this run made a new commit."""
        return self.outcome.created_commit

    @property
    def pushed(self) -> bool:
        """True when this run pushed the branch."""
        return self.outcome.pushed

    @property
    def note(self) -> str:
        """Why nothing changed, or that the branch already carried the change."""
        return self.outcome.note

    @property
    def changes(self) -> list[str]:
        """Human-readable config changes."""
        return self.outcome.changes

    def to_json(self) -> str:
        """One JSON line for workflows (``--json``)."""
        return outcome_json(self.outcome, action=self.decision.action.value, report_digest=self.report.digest)


def remediate(
    repo: str | Path,
    stack: str,
    function: str,
    report_path: str | Path,
    *,
    base: str | None = None,
    push: str | None = None,
    today: date | None = None,
    retries: int = 3,
    lock_timeout: float = 120.0,
    validate: Validator | None = default_validator,
    log: Callable[[str], None] | None = None,
    git_timeout: float = GIT_TIMEOUT,
    verify: bool = True,
) -> Remediation:
    """Apply the remediation policy to ``Pulumi.<stack>.yaml`` and commit the change on its own branch.

    The decision is made once, on the base version of the function's config; a re-plan on a fetched
    remote version (after a rejected push) carries out the same action. Raises
    :class:`gitops.writeback.RefusedError` (exit 2) for bad input or repository state and
    :class:`gitops.writeback.GitOpsError` when Git fails.
    """
    say = log or (lambda msg: print(msg, file=sys.stderr))
    day = today or datetime.now(UTC).date()
    try:
        report = load_report(report_path)
    except RemediationError as exc:
        raise RefusedError(str(exc)) from None
    result = Remediation(report, Outcome(stack, function, base or ""))

    def plan(fn: Mapping[str, Any]) -> Change | None:
        try:
            if result.decision.rule == "not decided":
                where = f"Pulumi.{stack}.yaml: function {function!r}"
                policy = Policy.from_config(fn.get("remediation"), f"{where} remediation")
                state = FunctionState.from_config(fn, where)
                result.decision = decide(report, state, policy)
                explain = result.decision.explain()
                say(f"{function} on {stack}: report {report.short_digest} ({report.severity}) -> {explain}")
            if result.decision.action is Action.NONE:
                return None
            return build_change(result.decision.action, fn, stack, function, report, result.decision, day)
        except RemediationError as exc:
            raise RefusedError(str(exc)) from None

    result.outcome = write_back(
        repo, stack, function, plan, base=base, push=push, retries=retries,
        lock_timeout=lock_timeout, validate=validate, log=say, git_timeout=git_timeout, verify=verify,
    )  # fmt: skip
    if result.decision.action is Action.NONE and not result.outcome.planned:
        result.outcome.note = "no change: policy chose none"
    return result
