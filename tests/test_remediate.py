"""Remediation policy: report + function state -> action, and the edits each action makes."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from drift.remediate import (
    Action,
    FunctionState,
    Policy,
    RemediationError,
    commit_body,
    decide,
    describe_edits,
    load_report,
    markdown_body,
    parse_report,
    plan_edits,
)
from gitops.configedit import Edit

TODAY = date(2026, 11, 25)


def report_dict(severity: str = "major", kinds: tuple[str, ...] = ("data",), perf: bool = False) -> dict:
    drifted = severity != "none"
    feats = [
        {"feature": "amount", "kind": "numeric", "test": "ks", "statistic": 0.41, "p_value": 1e-9,
         "threshold": 0.05, "drifted": drifted},
        {"feature": "country", "kind": "categorical", "test": "chi2", "statistic": 88.0, "p_value": 1e-5,
         "threshold": 0.05, "drifted": drifted and severity == "major"},
        {"feature": "hour", "kind": "numeric", "test": "wasserstein", "statistic": 0.01, "p_value": None,
         "threshold": 0.1, "drifted": False},
    ]  # fmt: skip
    d = {"drifted": drifted, "severity": severity, "n_reference": 1000, "n_current": 800, "features": feats,
         "drift_kinds": list(kinds) if drifted else [], "performance": None, "change_points": []}  # fmt: skip
    if perf:
        d["performance"] = {"metric": "accuracy", "reference": 0.91, "current": 0.84, "delta": -0.07,
                            "test": "z", "p_value": 0.001, "threshold": 0.02, "drifted": True}  # fmt: skip
    return d


def rep(**kw):
    return parse_report(json.dumps(report_dict(**kw)).encode(), "r.json")


CANARY = FunctionState("f", version="2.2.0", stable_version="2.1.0", canary_percent=10)
NO_CANARY_STABLE = FunctionState("f", version="2.2.0", stable_version="2.1.0", canary_percent=0)
NO_STABLE = FunctionState("f", version="2.2.0", stable_version=None, canary_percent=0)
SAME_STABLE = FunctionState("f", version="2.1.0", stable_version="2.1.0", canary_percent=10)


@pytest.mark.parametrize(
    ("severity", "state", "expected"),
    [
        ("major", CANARY, Action.STOP_CANARY),
        ("major", NO_CANARY_STABLE, Action.ROLLBACK),
        ("major", NO_STABLE, Action.REQUEST_RETRAINING),  # rollback impossible -> retraining
        ("major", SAME_STABLE, Action.REQUEST_RETRAINING),  # percent > 0 but no different version: no canary
        ("minor", CANARY, Action.REQUEST_RETRAINING),
        ("minor", NO_STABLE, Action.REQUEST_RETRAINING),
        ("none", CANARY, Action.NONE),
    ],
)
def test_default_rules(severity: str, state: FunctionState, expected: Action) -> None:
    assert decide(rep(severity=severity), state, Policy()).action is expected


def test_fallback_notes_explain_the_chain() -> None:
    d = decide(rep(), NO_STABLE, Policy(on_major=Action.STOP_CANARY))
    assert d.action is Action.REQUEST_RETRAINING
    assert d.rule == "onMajor"
    assert [n.split(":")[0] for n in d.notes] == ["stop-canary", "rollback"]


def test_on_performance_overrides_severity_rules_only_for_performance_drift() -> None:
    policy = Policy.from_config({"onPerformance": "rollback"})
    assert decide(rep(kinds=("data", "performance"), perf=True), CANARY, policy).action is Action.ROLLBACK
    assert decide(rep(kinds=("data",)), CANARY, policy).action is Action.STOP_CANARY
    assert Policy.from_config({"onPerformance": None}) == Policy()


def test_policy_keys_configure_every_rule() -> None:
    policy = Policy.from_config({"onMajorDuringCanary": "rollback", "onMajor": "none", "onMinor": "none"})
    assert decide(rep(), CANARY, policy).action is Action.ROLLBACK
    assert decide(rep(), NO_CANARY_STABLE, policy).action is Action.NONE
    assert decide(rep(severity="minor"), CANARY, policy).action is Action.NONE


@pytest.mark.parametrize(
    ("cfg", "needle"),
    [({"onMajor": "delete-everything"}, "onMajor"), ({"onMayor": "none"}, "onMayor"), ("rollback", "mapping")],
)
def test_bad_policy_names_the_key(cfg: object, needle: str) -> None:
    with pytest.raises(RemediationError, match=needle):
        Policy.from_config(cfg, "remediation")


def test_function_state_from_config() -> None:
    fn = {"name": "f", "model": {"version": "2.2.0", "stableVersion": "2.1.0"}, "traffic": {"canaryPercent": 10}}
    st = FunctionState.from_config(fn)
    assert st.canary_running and st.can_roll_back
    assert not FunctionState.from_config({"name": "f", "model": {"version": "1"}}).canary_running
    with pytest.raises(RemediationError, match=r"model\.version"):
        FunctionState.from_config({"name": "f", "model": {"version": 2}}, "fn")


# --- edits ---------------------------------------------------------------------------------------------


def fn_config(**traffic: int) -> dict:
    return {"name": "f", "model": {"version": "2.2.0", "stableVersion": "2.1.0"}, "traffic": dict(traffic)}


def test_stop_canary_and_rollback_edits() -> None:
    r = rep()
    assert plan_edits(Action.STOP_CANARY, fn_config(canaryPercent=10), r, TODAY) == [
        Edit(("traffic", "canaryPercent"), 0)
    ]
    assert plan_edits(Action.ROLLBACK, fn_config(canaryPercent=10), r, TODAY) == [
        Edit(("model", "version"), "2.1.0"),
        Edit(("traffic", "canaryPercent"), 0),
    ]
    assert plan_edits(Action.NONE, fn_config(canaryPercent=10), r, TODAY) == []


def test_replanning_on_an_applied_config_is_empty() -> None:
    r = rep()
    done = {"name": "f", "model": {"version": "2.1.0", "stableVersion": "2.1.0"}, "traffic": {"canaryPercent": 0}}
    assert plan_edits(Action.ROLLBACK, done, r, TODAY) == []
    assert plan_edits(Action.STOP_CANARY, done, r, TODAY) == []
    recorded = {**done, "retraining": {"reason": "x", "reportDigest": r.digest, "requestedAt": "2026-01-01"}}
    assert plan_edits(Action.REQUEST_RETRAINING, recorded, r, TODAY) == []


def test_retraining_record() -> None:
    r = rep()
    (edit,) = plan_edits(Action.REQUEST_RETRAINING, fn_config(), r, TODAY)
    assert edit.path == ("retraining",)
    assert edit.value["reason"] == "major data drift: 2 of 3 features (amount, country)"
    assert edit.value["reportDigest"] == r.digest and r.digest.startswith("sha256:") and len(r.digest) == 71
    assert edit.value["requestedAt"] == "2026-11-25"
    other = {**fn_config(), "retraining": {"reason": "old", "reportDigest": "sha256:" + "0" * 64}}
    assert len(plan_edits(Action.REQUEST_RETRAINING, other, r, TODAY)) == 1


def test_performance_reason() -> None:
    r = rep(severity="minor", kinds=("performance",), perf=True)
    assert r.summary() == "minor performance drift: accuracy 0.91 -> 0.84"


# --- the report ---------------------------------------------------------------------------------------


def test_digest_is_sha256_of_file_bytes(tmp_path: Path) -> None:
    import hashlib

    raw = json.dumps(report_dict()).encode()
    (tmp_path / "r.json").write_bytes(raw)
    r = load_report(tmp_path / "r.json")
    assert r.digest == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert [f.feature for f in r.features] == ["amount", "country"]
    assert r.n_features == 3


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.pop("severity"), "'severity'"),
        (lambda d: d.update(severity="huge"), "'severity'"),
        (lambda d: d.update(drifted="yes"), "'drifted'"),
        (lambda d: d.update(features={}), "'features'"),
        (lambda d: d["features"][0].pop("statistic"), r"features\[0\].*'statistic'"),
        (lambda d: d["features"][1].update(p_value="low"), r"features\[1\].*'p_value'"),
        (lambda d: d.update(drift_kinds=["vibes"]), "'drift_kinds'"),
        (lambda d: d.update(performance=[1]), "performance"),
    ],
)
def test_bad_report_names_file_and_field(tmp_path: Path, mutate, needle: str) -> None:
    d = report_dict()
    mutate(d)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    with pytest.raises(RemediationError, match=needle) as exc:
        load_report(p)
    assert str(p) in str(exc.value) and "\n" not in str(exc.value)


def test_unreadable_and_non_json_reports(tmp_path: Path) -> None:
    with pytest.raises(RemediationError, match="cannot read"):
        load_report(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(RemediationError, match="not valid JSON"):
        load_report(tmp_path / "x.json")


def test_report_from_the_drift_model_round_trips() -> None:
    model = pytest.importorskip("drift.model")
    d = report_dict(kinds=("data", "performance"), perf=True)
    rebuilt = model.DriftReport.from_dict(d).to_dict()
    r = parse_report(json.dumps(rebuilt).encode())
    assert r.severity == "major" and r.drift_kinds == ("data", "performance")
    assert r.performance is not None and r.performance["metric"] == "accuracy"


def test_commit_message_and_markdown_list_the_evidence() -> None:
    r = rep(kinds=("data", "performance"), perf=True)
    decision = decide(r, CANARY, Policy())
    fn = fn_config(canaryPercent=10)
    changes = describe_edits(plan_edits(decision.action, fn, r, TODAY), fn)
    assert changes == ["traffic.canaryPercent: 10 -> 0"]
    msg = commit_body(decision.action, "f", "dev", r, decision, changes)
    body = msg.splitlines()
    assert body[0] == f"Report {r.digest} (major data/performance drift)."
    assert "- amount: ks statistic=0.41 p=1e-09 (threshold 0.05)" in body
    assert not any(line.startswith(("Drift-", "Inferops-")) for line in body)  # trailers are gitops' job
    assert "Performance: accuracy 0.91 -> 0.84" in msg
    md = markdown_body(decision.action, "f", "dev", r, decision, changes)
    assert "| amount | ks | 0.41 | 1e-09 | 0.05 |" in md and r.digest in md
