"""Issue 11's standing harness, the remediation part: generated and hostile stack files and reports
through the real ``drift remediate`` command against a real bare remote, also in parallel.

Every run is a subprocess bounded by a timeout. Each asserts: exit 0 or 2 (bad input is 2 with one
error line and no traceback), nothing written outside the repository (HOME, TMPDIR and the working
directory are fresh, empty directories checked afterwards), the user's checkout untouched, and in
every branch pushed, every other function's parsed config unchanged.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.test_gitops import GIT_ENV, STACK, _git_identity, clone, report, sh

__all__ = ["_git_identity"]

ROOT = Path(__file__).resolve().parents[1]
FNS = "inferops:functions"


def _functions(raw: bytes) -> dict[str, dict]:
    data = YAML(typ="safe", pure=True).load(raw.decode("utf-8"))
    return {f["name"]: f for f in data["config"][FNS]}


class Sandbox:
    """A bare remote, a clone, and empty HOME/TMPDIR/cwd that must stay empty."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.bare = tmp / "remote.git"
        sh(tmp, "init", "-q", "--bare", "-b", "main", str(self.bare))
        self.seed = tmp / "seed"
        sh(tmp, "clone", "-q", str(self.bare), str(self.seed))
        self.home, self.tmpdir, self.cwd = tmp / "home", tmp / "tmpdir", tmp / "cwd"
        for d in (self.home, self.tmpdir, self.cwd):
            d.mkdir()

    def publish(self, name: str, data: bytes) -> None:
        (self.seed / name).write_bytes(data)
        sh(self.seed, "add", "-A")
        sh(self.seed, "commit", "-q", "--allow-empty", "-m", f"publish {name}")
        sh(self.seed, "push", "-q", "origin", "main")

    def run(self, work: Path, *args: str, function: str = "fraud-scorer") -> subprocess.Popen[str]:
        env = {**os.environ, **GIT_ENV, "PYTHONPATH": str(ROOT), "HOME": str(self.home), "TMPDIR": str(self.tmpdir)}
        env.pop("GH_TOKEN", None)
        env.pop("GITHUB_TOKEN", None)
        cmd = [sys.executable, "-m", "drift", "remediate", "--stack", "dev", "--function", function,
               "--repo", str(work), "--push", "origin", "--git-timeout", "60", "--lock-timeout", "60", *args]  # fmt: skip
        return subprocess.Popen(cmd, cwd=self.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def check_clean(self) -> None:
        for d in (self.home, self.tmpdir, self.cwd):
            assert list(d.iterdir()) == [], f"{d.name} written: {list(d.iterdir())}"


def finish(p: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=180)
    assert "Traceback" not in err, err
    assert p.returncode in (0, 2), (p.returncode, err)
    if p.returncode == 2:
        errors = [ln for ln in err.splitlines() if ln.startswith("drift: error: ")]
        assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
        assert out == ""
    return p.returncode, out, err


def check_branch(sb: Sandbox, work: Path, branch: str, function: str) -> None:
    base = sh(sb.bare, "show", "main:Pulumi.dev.yaml").encode() + b"\n"
    before = _functions(sh(work, "cat-file", "blob", "main:Pulumi.dev.yaml").encode())
    tip = sh(sb.bare, "rev-parse", f"refs/heads/{branch}")
    after_raw = subprocess.run(["git", "cat-file", "blob", f"{tip}:Pulumi.dev.yaml"], cwd=sb.bare,
                               capture_output=True, check=True).stdout  # fmt: skip
    after = _functions(after_raw)
    assert base and set(after) == set(before)
    for name in before:
        if name != function:
            assert after[name] == before[name], name
    assert after[function] != before[function]
    changed = sh(sb.bare, "diff", "--name-only", "main", tip).split()
    assert changed == ["Pulumi.dev.yaml"]


# --- generated stack files ---------------------------------------------------------------------------


def generated_stack(rng: random.Random) -> tuple[bytes, list[str]]:
    """A valid stack file in one of many hand-written layouts, functions possibly sharing anchors."""
    eol = rng.choice(["\n", "\r\n"])
    ind = rng.choice([2, 4])
    sp = " " * ind
    names = rng.sample(["fraud-scorer", "churn", "fraud-scorer-2", "ranker"], rng.randint(2, 4))
    lines = ["# generated", "config:", f"{sp}aws:region: us-east-1", f"{sp}vendor:key:",
             f"{sp}{sp}secure: AAABAGZha2Utc2VjdXJlLXZhbHVl", f"{sp}inferops:defaults:",
             f"{sp}{sp}costCenter: ml", f"{sp}{sp}owner: ml@example.com", f"{sp}{sp}environment: dev",
             f"{sp}{FNS}:"]  # fmt: skip
    item, body = f"{sp}  - ", f"{sp}    "
    anchored = False
    for name in names:
        c = rng.choice(["", "   # note", "  # a: b"])
        lines.append(f"{item}name: {name}{c}")
        lines += [f"{body}platform: aws", f"{body}region: us-east-1", f"{body}model:",
                  f"{body}  id: {name}", f'{body}  version: "2.2.0"{rng.choice(["", "   # cand"])}',
                  f"{body}  stableVersion: '2.1.0'", f"{body}  artifactUri: s3://m/{name}/model.json",
                  f"{body}  cardUrl: https://m.example.com/{name}", f"{body}  lineageUrl: https://l.example.com/{name}",
                  f"{body}  fairnessScore: 0.93", f"{body}  riskTier: limited"]  # fmt: skip
        kind = rng.choice(["flow", "block", "anchor", "alias"] if anchored else ["flow", "block", "anchor"])
        if kind == "flow":
            lines.append(f"{body}traffic: {{canaryPercent: {rng.randint(1, 50)}}}{c}")
        elif kind == "block":
            lines += [f"{body}traffic:", f"{body}  canaryPercent: {rng.randint(1, 50)}{c}"]
        elif kind == "anchor" and not anchored:
            anchored = True
            lines.append(f"{body}traffic: &tr {{canaryPercent: 10}}{c}")
        else:
            lines.append(f"{body}traffic: *tr" if anchored else f"{body}traffic: {{canaryPercent: 5}}")
        lines += [f"{body}runtime: {{memoryMb: 1024, timeoutSeconds: 30, architecture: arm64}}",
                  f"{body}finops:", f"{body}  monthlyBudgetUsd: 400", f"{body}  expectedMonthlyRequests: 3000000",
                  f"{body}  avgDurationMs: 120"]  # fmt: skip
        if rng.random() < 0.5:
            lines.append("")
    return (eol.join(lines) + eol).encode(), names


def test_generated_stacks_and_reports_through_remediate(tmp_path: Path) -> None:
    pytest.importorskip("components.spec")
    rng = random.Random(11)
    for i in range(6):
        case = tmp_path / f"case{i}"
        case.mkdir()
        sb = Sandbox(case)
        stack, names = generated_stack(rng)
        sb.publish("Pulumi.dev.yaml", stack)
        work = clone(sb.bare, case / "work")
        function = rng.choice(names)
        rep = report(case, rng.choice(["major", "minor", "none"]))
        code, out, err = finish(sb.run(work, "--report", str(rep), function=function))
        sb.check_clean()
        assert sh(work, "status", "--porcelain") == "" and (work / "Pulumi.dev.yaml").read_bytes() == stack
        if code == 0 and out.strip():
            check_branch(sb, work, out.strip(), function)
        elif code == 2:
            assert any(w in err for w in ("alias", "anchor", "by hand")), err


# --- hostile stack files and reports -----------------------------------------------------------------

_LAUGHS = (
    "config:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"  {chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8))
    + f"  {FNS}:\n    - name: fraud-scorer\n      model: {{version: '1'}}\n"
)

HOSTILE_STACKS = {
    "not-utf8": b"config:\n  \xff\xfe: 1\n",
    "utf16": STACK.encode("utf-16"),
    "billion-laughs": _LAUGHS.encode(),
    "recursive-alias": f"config:\n  {FNS}:\n    - &f\n      name: fraud-scorer\n      model: {{version: '2', stableVersion: '1'}}\n      self: *f\n".encode(),
    "deep": b"config:\n  x: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "binary": f"config:\n  x: !!binary aGVsbG8=\n  {FNS}:\n    - name: fraud-scorer\n      model: {{version: '1'}}\n".encode(),
    "no-functions": b"config:\n  aws:region: us-east-1\n",
    "config-list": b"config: [1, 2]\n",
    "shared-anchor": STACK.replace("traffic: {canaryPercent: 10}", "traffic: &tr {canaryPercent: 10}")
    .replace(
        "      finops:\n        monthlyBudgetUsd: 150",
        "      traffic: *tr\n      finops:\n        monthlyBudgetUsd: 150",
    )
    .encode(),
    "merge-key": STACK.replace("traffic: {canaryPercent: 10}", "traffic:\n        <<: {canaryPercent: 10}").encode(),
}

STACK_REASONS = {
    "not-utf8": "not UTF-8",
    "utf16": "not UTF-8",
    "billion-laughs": "expands to more than 1,000,000 values",
    "recursive-alias": "an anchored node other entries alias",  # ruamel reads the recursive alias as null
    "deep": "nested too deeply",
    "binary": "holds a bytes value",
    "no-functions": "is not a list",
    "config-list": "no 'config:' mapping",
    "shared-anchor": "shared through a YAML anchor/alias",
    "merge-key": "merged in with '<<:'",
}

HOSTILE_REPORTS = {
    "not-json": b"{nope",
    "array": b"[]",
    "deep-json": b"[" * 100000 + b"]" * 100000,
    "huge-int": b'{"drifted": true, "severity": "major", "features": [{"feature": "a", "test": "ks", "statistic": '
    + b"9" * 5000
    + b', "p_value": null, "threshold": 0.05, "drifted": true}]}',
    "bad-severity": b'{"drifted": true, "severity": "apocalyptic", "features": []}',
    "nan": b'{"drifted": true, "severity": "major", "features": [{"feature": "a", "test": "ks", "statistic": NaN,'
    b' "p_value": null, "threshold": 0.05, "drifted": true}]}',
    "not-utf8": b'{"drifted": true, "severity": "major", "features": [], "x": "\xff"}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_STACKS))
def test_hostile_stack_files_are_bad_input(tmp_path: Path, name: str) -> None:
    sb = Sandbox(tmp_path)
    sb.publish("Pulumi.dev.yaml", HOSTILE_STACKS[name])
    work = clone(sb.bare, tmp_path / "work")
    code, _, err = finish(sb.run(work, "--report", str(report(tmp_path))))
    assert code == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("drift: error: Pulumi.dev.yaml: ") and STACK_REASONS[name] in last, last
    sb.check_clean()
    assert sh(sb.bare, "for-each-ref", "refs/heads/drift") == ""


@pytest.mark.parametrize("name", sorted(HOSTILE_REPORTS))
def test_hostile_reports_are_bad_input(tmp_path: Path, name: str) -> None:
    sb = Sandbox(tmp_path)
    sb.publish("Pulumi.dev.yaml", STACK.encode())
    work = clone(sb.bare, tmp_path / "work")
    rep = tmp_path / "report.json"
    rep.write_bytes(HOSTILE_REPORTS[name])
    code, _, err = finish(sb.run(work, "--report", str(rep)))
    assert code == 2 and str(rep) in err.strip().splitlines()[-1], err
    sb.check_clean()


def test_an_unbounded_report_is_refused_without_hanging(tmp_path: Path) -> None:
    sb = Sandbox(tmp_path)
    sb.publish("Pulumi.dev.yaml", STACK.encode())
    work = clone(sb.bare, tmp_path / "work")
    code, _, err = finish(sb.run(work, "--report", "/dev/zero"))
    assert code == 2 and "/dev/zero" in err


# --- parallel runs -------------------------------------------------------------------------------------


def test_parallel_runs_on_one_remote_each_touch_only_their_function(tmp_path: Path) -> None:
    pytest.importorskip("components.spec")
    sb = Sandbox(tmp_path)
    sb.publish("Pulumi.dev.yaml", STACK.encode())
    clones = [clone(sb.bare, tmp_path / f"w{i}") for i in range(2)]
    major, minor = report(tmp_path, "major", "major.json"), report(tmp_path, "minor", "minor.json")
    jobs = [
        (clones[0], "fraud-scorer", major),
        (clones[1], "fraud-scorer", major),
        (clones[0], "churn", minor),
        (clones[1], "churn", minor),
    ]
    procs = [(sb.run(w, "--report", str(r), "--json", function=f), w, f) for w, f, r in jobs]
    results = [(finish(p), w, f) for p, w, f in procs]
    branches: dict[str, set[str]] = {}
    for (code, out, err), w, f in results:
        assert code == 0, err
        branch = json.loads(out)["branch"]
        branches.setdefault(f, set()).add(branch)
        check_branch(sb, w, branch, f)
    assert all(len(b) == 1 for b in branches.values()), branches  # same change, same branch, from both clones
    for b in {x for s in branches.values() for x in s}:
        assert sh(sb.bare, "rev-list", "--count", f"main..{b}") == "1"
    sb.check_clean()
