"""Git write-back with real Git: temporary repositories and a local bare remote (no network)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from drift.remediate import remediate
from gitops.writeback import GitOpsError, RefusedError
from inferops.exitcodes import EXIT_BAD_INPUT as EXIT_REFUSED

EXIT_FAILED = GitOpsError.exit_code

ROOT = Path(__file__).resolve().parents[1]
SECURE = "AAABAGZha2Utc2VjdXJlLXZhbHVlLWZvci10ZXN0cy1vbmx5LWl0LWlzLW5vdC1hLXJlYWwtc2VjcmV0LTAxMjM0NTY3ODk="

STACK = f"""\
# test stack: comments and the secure value must survive
config:
  aws:region: us-east-1
  vendor:apiKey:
    secure: {SECURE}
  inferops:defaults:
    costCenter: ml-platform
    owner: ml-platform@example.com
    environment: dev
  inferops:functions:
    - name: fraud-scorer             # the canary under watch
      platform: aws
      region: us-east-1
      model:
        id: fraud-scorer
        version: "2.2.0"
        stableVersion: "2.1.0"
        artifactUri: s3://example-models/fraud-scorer/2.2.0/model.json
        cardUrl: https://models.example.com/fraud-scorer/card
        lineageUrl: https://lineage.example.com/fraud-scorer
        fairnessScore: 0.93
        riskTier: limited
      runtime: {{memoryMb: 1024, timeoutSeconds: 30, architecture: arm64}}
      traffic: {{canaryPercent: 10}}   # 10% on the candidate
      finops:
        monthlyBudgetUsd: 400
        expectedMonthlyRequests: 3000000
        avgDurationMs: 120

    - name: churn
      platform: aws
      region: us-east-1
      model:
        id: churn
        version: "1.4.0"
        artifactUri: s3://example-models/churn/1.4.0/model.json
        cardUrl: https://models.example.com/churn/card
        lineageUrl: https://lineage.example.com/churn
        fairnessScore: 0.88
        riskTier: minimal
      runtime: {{memoryMb: 512, timeoutSeconds: 60, architecture: x86_64}}
      finops:
        monthlyBudgetUsd: 150
        expectedMonthlyRequests: 1000000
        avgDurationMs: 200
"""

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Drift Bot",
    "GIT_AUTHOR_EMAIL": "drift@example.com",
    "GIT_COMMITTER_NAME": "Drift Bot",
    "GIT_COMMITTER_EMAIL": "drift@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
BRANCH_RE = re.compile(r"^drift/dev/fraud-scorer-[0-9a-f]{10}$")


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)


def sh(cwd: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {proc.stderr}")
    return proc.stdout.strip()


def report(tmp: Path, severity: str = "major", name: str = "report.json") -> Path:
    drifted = severity != "none"
    feats = [
        {"feature": "amount", "kind": "numeric", "test": "ks", "statistic": 0.41, "p_value": 1e-9,
         "threshold": 0.05, "drifted": drifted},
        {"feature": "country", "kind": "categorical", "test": "chi2", "statistic": 3.1, "p_value": 0.2,
         "threshold": 0.05, "drifted": False},
    ]  # fmt: skip
    p = tmp / name
    p.write_text(json.dumps({"drifted": drifted, "severity": severity, "n_reference": 1000, "n_current": 900,
                             "features": feats, "drift_kinds": ["data"] if drifted else [],
                             "performance": None, "change_points": []}))  # fmt: skip
    return p


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare remote whose main holds the stack; it logs every ref update (to prove nothing was forced)."""
    bare = tmp_path / "remote.git"
    sh(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    sh(bare, "config", "core.logAllRefUpdates", "always")
    seed = tmp_path / "seed"
    sh(tmp_path, "clone", "-q", str(bare), str(seed))
    (seed / "Pulumi.dev.yaml").write_text(STACK)
    (seed / "Pulumi.prod.yaml").write_text(STACK)
    (seed / "README.md").write_text("hello\n")
    sh(seed, "add", ".")
    sh(seed, "commit", "-q", "-m", "init")
    sh(seed, "push", "-q", "origin", "main")
    return bare


def clone(remote: Path, dest: Path) -> Path:
    sh(remote.parent, "clone", "-q", str(remote), str(dest))
    return dest


def cli(*args: str, path_prefix: str | None = None, extra_env: dict[str, str] | None = None):
    env = {**os.environ, **GIT_ENV, "PYTHONPATH": str(ROOT), **(extra_env or {})}
    if path_prefix:
        env["PATH"] = f"{path_prefix}{os.pathsep}{env['PATH']}"
    return subprocess.run([sys.executable, "-m", "drift", "remediate", *args], cwd=ROOT, capture_output=True,
                          text=True, env=env, timeout=120, check=False)  # fmt: skip


def drift_branches(repo: Path) -> list[str]:
    return sh(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/drift").split()


# --- the whole path ------------------------------------------------------------------------------------


def test_report_to_pushed_branch(tmp_path: Path, remote: Path) -> None:
    work = clone(remote, tmp_path / "work")
    rep = report(tmp_path)
    proc = cli("--stack", "dev", "--function", "fraud-scorer", "--report", str(rep), "--repo", str(work),
               "--push", "origin")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    branch = proc.stdout.strip()
    assert BRANCH_RE.match(branch), proc.stdout
    # the user's checkout is untouched
    assert sh(work, "symbolic-ref", "--short", "HEAD") == "main"
    assert (work / "Pulumi.dev.yaml").read_text() == STACK and sh(work, "status", "--porcelain") == ""
    # the remote has the branch, one commit on top of main
    tip = sh(remote, "rev-parse", f"refs/heads/{branch}")
    assert sh(remote, "rev-parse", f"{tip}^") == sh(remote, "rev-parse", "main")
    msg = sh(remote, "log", "-1", "--format=%B", tip)
    assert msg.splitlines()[0] == "chore(drift): stop-canary fraud-scorer on dev"
    assert "- amount: ks statistic=0.41 p=1e-09 (threshold 0.05)" in msg and "country" not in msg
    digest = "sha256:" + __import__("hashlib").sha256(rep.read_bytes()).hexdigest()
    assert f"Inferops-Report: {digest}" in msg and "Inferops-Function: dev/fraud-scorer" in msg
    diff = sh(remote, "diff", "--stat", "main", tip)
    assert "Pulumi.dev.yaml | 2 +-" in diff and "1 file changed" in diff  # prod stack untouched
    edited = sh(remote, "show", f"{tip}:Pulumi.dev.yaml") + "\n"
    assert edited == STACK.replace("traffic: {canaryPercent: 10}   #", "traffic: {canaryPercent: 0}   #")

    # a re-run with the same report: same branch, no new commit, nothing pushed
    again = cli("--stack", "dev", "--function", "fraud-scorer", "--report", str(rep), "--repo", str(work),
                "--push", "origin")  # fmt: skip
    assert again.returncode == 0 and again.stdout.strip() == branch
    assert "already carries this change" in again.stderr
    assert sh(remote, "rev-parse", f"refs/heads/{branch}") == tip == sh(work, "rev-parse", branch)


def test_same_report_from_a_fresh_clone_reuses_the_pushed_branch(tmp_path: Path, remote: Path) -> None:
    rep = report(tmp_path)
    first = remediate(clone(remote, tmp_path / "a"), "dev", "fraud-scorer", rep, push="origin")
    second = remediate(clone(remote, tmp_path / "b"), "dev", "fraud-scorer", rep, push="origin")
    assert first.branch == second.branch and first.created_commit and not second.created_commit
    assert second.commit == first.commit and not second.pushed


def test_rollback_and_retraining_paths(tmp_path: Path, remote: Path) -> None:
    work = clone(remote, tmp_path / "work")
    out = remediate(work, "dev", "churn", report(tmp_path, "minor"), today=__import__("datetime").date(2026, 1, 2))
    assert out.decision.action.value == "request-retraining" and out.branch
    text = sh(work, "show", f"{out.branch}:Pulumi.dev.yaml")
    assert 'requestedAt: "2026-01-02"' in text and "reason: 'minor data drift: 1 of 2 features (amount)'" in text
    # no canary: major drift rolls back to the stable version (a different one exists)
    text2 = STACK.replace("traffic: {canaryPercent: 10}", "traffic: {canaryPercent: 0}")
    (work / "Pulumi.dev.yaml").write_text(text2)
    sh(work, "commit", "-q", "-am", "canary ended")
    out2 = remediate(work, "dev", "fraud-scorer", report(tmp_path))
    assert out2.decision.action.value == "rollback"
    assert sh(work, "diff", "main", out2.branch, "--", "Pulumi.dev.yaml").count('\n+        version: "2.1.0"') == 1


def test_merged_report_is_not_remediated_twice(tmp_path: Path, remote: Path) -> None:
    work = clone(remote, tmp_path / "work")
    rep = report(tmp_path)
    out = remediate(work, "dev", "fraud-scorer", rep)
    sh(work, "merge", "-q", "--ff-only", out.branch)
    again = remediate(work, "dev", "fraud-scorer", rep)
    assert again.branch is None and "already handled" in again.note
    assert drift_branches(work) == [out.branch]


# --- refusals --------------------------------------------------------------------------------------------


def test_dirty_tree_is_refused(tmp_path: Path, remote: Path) -> None:
    work = clone(remote, tmp_path / "work")
    (work / "README.md").write_text("local edit\n")
    proc = cli("--stack", "dev", "--function", "fraud-scorer", "--report", str(report(tmp_path)),
               "--repo", str(work))  # fmt: skip
    assert proc.returncode == EXIT_REFUSED and proc.stdout == ""
    assert proc.stderr.strip().splitlines()[-1].startswith("drift: error: working tree has uncommitted changes")
    assert drift_branches(work) == [] and (work / "README.md").read_text() == "local edit\n"
    # untracked files (downloaded logs, the report itself) do not make the tree dirty
    (work / "README.md").write_text("hello\n")
    (work / "logs.jsonl").write_text("{}\n")
    assert remediate(work, "dev", "fraud-scorer", report(work)).branch


def test_detached_head_missing_stack_and_bad_inputs_are_refused(tmp_path: Path, remote: Path) -> None:
    work = clone(remote, tmp_path / "work")
    rep = report(tmp_path)
    sh(work, "checkout", "-q", "--detach")
    with pytest.raises(RefusedError, match="HEAD is detached"):
        remediate(work, "dev", "fraud-scorer", rep)
    assert remediate(work, "dev", "fraud-scorer", rep, base="main").branch  # explicit base is fine
    sh(work, "checkout", "-q", "main")
    cases = [
        (("staging", "fraud-scorer", rep), "Pulumi.staging.yaml not found"),
        (("dev", "ghost", rep), "'ghost' not found"),
        (("dev", "fraud-scorer", tmp_path / "nope.json"), "cannot read report"),
        (("../x", "fraud-scorer", rep), "--stack"),
    ]
    for args, needle in cases:
        with pytest.raises(RefusedError, match=re.escape(needle)):
            remediate(work, *args)
    with pytest.raises(RefusedError, match="--base"):
        remediate(work, "dev", "fraud-scorer", rep, base="no-such-branch")
    proc = cli("--stack", "staging", "--function", "x", "--report", str(rep), "--repo", str(work))
    assert proc.returncode == EXIT_REFUSED and len(proc.stderr.strip().splitlines()) == 1


def test_invalid_edited_config_writes_nothing(tmp_path: Path, remote: Path) -> None:
    pytest.importorskip("components.spec")
    work = clone(remote, tmp_path / "work")
    (work / "Pulumi.dev.yaml").write_text(STACK.replace("memoryMb: 512,", "memoryMb: 99999,"))
    sh(work, "commit", "-q", "-am", "oversized churn")
    with pytest.raises(RefusedError, match=r"edited config is invalid: .*memoryMb"):
        remediate(work, "dev", "fraud-scorer", report(tmp_path))
    assert drift_branches(work) == [] and sh(work, "status", "--porcelain") == ""


def test_no_change_means_no_commit_and_no_branch(tmp_path: Path, remote: Path) -> None:
    work = clone(remote, tmp_path / "work")
    head = sh(work, "rev-parse", "HEAD")
    proc = cli("--stack", "dev", "--function", "fraud-scorer", "--report", str(report(tmp_path, "none")),
               "--repo", str(work), "--push", "origin")  # fmt: skip
    assert proc.returncode == 0 and proc.stdout == "" and "no change" in proc.stderr
    # a policy of "none" on a function whose bytes would not change
    (work / "Pulumi.dev.yaml").write_text(STACK.replace("      finops:\n        monthlyBudgetUsd: 150",
                                                        "      remediation: {onMajor: none}\n"
                                                        "      finops:\n        monthlyBudgetUsd: 150"))  # fmt: skip
    sh(work, "commit", "-q", "-am", "policy")
    out = remediate(work, "dev", "churn", report(tmp_path))
    assert out.branch is None and out.decision.action.value == "none"
    assert drift_branches(work) == [] and sh(remote, "for-each-ref", "refs/heads/drift") == ""
    assert sh(work, "rev-list", "--count", f"{head}..HEAD") == "1"


def test_unreachable_remote_fails_with_exit_3_and_unknown_remote_is_refused(tmp_path: Path, remote: Path) -> None:
    work = clone(remote, tmp_path / "work")
    sh(work, "remote", "add", "gone", str(tmp_path / "no-such-remote.git"))
    proc = cli("--stack", "dev", "--function", "fraud-scorer", "--report", str(report(tmp_path)),
               "--repo", str(work), "--push", "gone")  # fmt: skip
    assert proc.returncode == EXIT_FAILED == 3 and "gone" in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("drift: error: cannot reach remote 'gone'")
    # a name that is neither a configured remote nor a URL is bad input, not an operational failure
    proc = cli("--stack", "dev", "--function", "fraud-scorer", "--report", str(report(tmp_path)),
               "--repo", str(work), "--push", "nowhere")  # fmt: skip
    assert proc.returncode == EXIT_REFUSED and "--push: 'nowhere' is neither a remote" in proc.stderr


# --- races -----------------------------------------------------------------------------------------------


def _reflog_is_fast_forward_only(bare: Path, ref: str) -> None:
    log = (bare / "logs" / ref).read_text().splitlines()
    assert log, f"no reflog for {ref}"
    for line in log:
        old, new = line.split()[:2]
        if old != "0" * 40:
            assert subprocess.run(["git", "merge-base", "--is-ancestor", old, new], cwd=bare).returncode == 0, line


def test_two_runs_racing_on_one_repository(tmp_path: Path, remote: Path) -> None:
    work = clone(remote, tmp_path / "work")
    rep = report(tmp_path)
    args = ["--stack", "dev", "--report", str(rep), "--repo", str(work), "--push", "origin"]
    env = {**os.environ, **GIT_ENV, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "drift", "remediate", "--function", fn, *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for fn in ("fraud-scorer", "fraud-scorer", "churn")
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    b1, b2, b3 = (o[0].strip() for o in outs)
    assert b1 == b2 and BRANCH_RE.match(b1) and b3.startswith("drift/dev/churn-")
    for b in (b1, b3):  # exactly one commit each, on top of main, on both sides
        assert sh(work, "rev-list", "--count", f"main..{b}") == "1"
        assert sh(remote, "rev-parse", f"refs/heads/{b}") == sh(work, "rev-parse", b)
    assert sorted(drift_branches(work)) == sorted([b1, b3])
    assert not list((work / ".git").glob("inferops-drift-index.*"))


def test_two_pushes_racing_on_one_remote(tmp_path: Path, remote: Path) -> None:
    rep = report(tmp_path)
    clones = [clone(remote, tmp_path / f"c{i}") for i in range(3)]
    env = {**os.environ, **GIT_ENV, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "drift",
                "remediate",
                "--stack",
                "dev",
                "--function",
                "fraud-scorer",
                "--report",
                str(rep),
                "--repo",
                str(c),
                "--push",
                "origin",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in clones
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    branches = {o[0].strip() for o in outs}
    assert len(branches) == 1
    (branch,) = branches
    tip = sh(remote, "rev-parse", f"refs/heads/{branch}")
    assert sh(remote, "rev-list", "--count", f"main..{tip}") == "1"  # one change, not three
    for c in clones:  # every clone ends on what the remote has
        assert sh(c, "rev-parse", branch) == tip
    _reflog_is_fast_forward_only(remote, f"refs/heads/{branch}")


def test_rejected_push_refetches_and_reapplies_without_force(tmp_path: Path, remote: Path) -> None:
    """A human pushes to the drift branch between our commit and our push: their commit is kept."""
    work = clone(remote, tmp_path / "work")
    human = clone(remote, tmp_path / "human")
    hook = work / ".git" / "hooks" / "pre-push"
    hook.write_text(
        "#!/bin/sh\n"
        "# first push only: someone else pushes to the same branch first\n"
        f"[ -f '{tmp_path}/raced' ] && exit 0\n"
        f"touch '{tmp_path}/raced'\n"
        "read local_ref local_sha remote_ref remote_sha\n"
        "unset GIT_DIR GIT_INDEX_FILE GIT_WORK_TREE GIT_PREFIX\n"
        f"cd '{human}' && git checkout -q -b racer origin/main && echo note > NOTES.md && git add NOTES.md"
        " && git commit -q -m 'human note' && git push -q origin \"racer:$remote_ref\"\n"
    )
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    out = remediate(work, "dev", "fraud-scorer", report(tmp_path), push="origin", log=lambda m: None)
    assert (tmp_path / "raced").exists() and out.pushed
    tip = sh(remote, "rev-parse", f"refs/heads/{out.branch}")
    assert out.commit == tip
    subjects = sh(remote, "log", "--format=%s", f"main..{tip}").splitlines()
    assert subjects == ["chore(drift): stop-canary fraud-scorer on dev", "human note"]  # nothing lost
    assert sh(remote, "show", f"{tip}:NOTES.md") == "note"
    _reflog_is_fast_forward_only(remote, f"refs/heads/{out.branch}")


def test_push_gives_up_after_bounded_retries(tmp_path: Path, remote: Path) -> None:
    work = clone(remote, tmp_path / "work")
    hook = work / ".git" / "hooks" / "pre-push"
    hook.write_text("#!/bin/sh\necho 'simulated: [remote rejected] (failed to update ref)' >&2\nexit 1\n")
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    proc = cli("--stack", "dev", "--function", "fraud-scorer", "--report", str(report(tmp_path)),
               "--repo", str(work), "--push", "origin", "--retries", "1")  # fmt: skip
    assert proc.returncode == EXIT_FAILED and "rejected 2 times" in proc.stderr
    assert sh(remote, "for-each-ref", "refs/heads/drift") == ""


# --- pull requests ------------------------------------------------------------------------------------------


def fake_gh(tmp_path: Path) -> tuple[Path, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "gh.log"
    gh = bin_dir / "gh"
    gh.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        "args = sys.argv[1:]\n"
        "body = ''\n"
        "for a in args:\n"
        "    if a.startswith('--body-file='):\n"
        "        body = open(a.split('=', 1)[1]).read()\n"
        f"with open({str(log)!r}, 'a') as fh:\n"
        "    fh.write(json.dumps({'args': args, 'body': body}) + '\\n')\n"
        "if args[:2] == ['pr', 'create']:\n"
        "    print('https://github.com/example/inferops/pull/7')\n"
    )
    gh.chmod(0o755)
    return bin_dir, log


def test_open_pr_with_gh(tmp_path: Path, remote: Path) -> None:
    work = clone(remote, tmp_path / "work")
    bin_dir, log = fake_gh(tmp_path)
    args = ["--stack", "dev", "--function", "fraud-scorer", "--report", str(report(tmp_path)), "--repo", str(work),
            "--push", "origin", "--open-pr"]  # fmt: skip
    proc = cli(*args, path_prefix=str(bin_dir), extra_env={"GH_TOKEN": "test-token-not-secret"})
    assert proc.returncode == 0, proc.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["args"][:2] for c in calls] == [["pr", "list"], ["pr", "create"]]
    create = calls[1]["args"]
    branch = proc.stdout.strip()
    # every value rides in --opt=value form, so none can be read as an option by gh
    assert f"--head={branch}" in create and "--base=main" in create
    assert "--title=chore(drift): stop-canary fraud-scorer on dev" in create
    assert "| amount | ks | 0.41 | 1e-09 | 0.05 |" in calls[1]["body"]
    assert "pull/7" in proc.stderr and "test-token" not in proc.stderr + proc.stdout

    # an empty change opens no PR
    log.unlink()
    none = cli("--stack", "dev", "--function", "fraud-scorer", "--report", str(report(tmp_path, "none", "n.json")),
               "--repo", str(work), "--push", "origin", "--open-pr", path_prefix=str(bin_dir),
               extra_env={"GH_TOKEN": "x"})  # fmt: skip
    assert none.returncode == 0 and not log.exists() and "no pull request: the change is empty" in none.stderr


def test_open_pr_without_gh_says_how(tmp_path: Path, remote: Path) -> None:
    work = clone(remote, tmp_path / "work")
    sh(work, "remote", "add", "gh", "https://github.com/example/inferops.git")
    empty_bin = tmp_path / "empty"
    empty_bin.mkdir()
    for tool in ("git",):  # a PATH with git but no gh
        os.symlink(subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip(), empty_bin / tool)
    env = {**os.environ, **GIT_ENV, "PYTHONPATH": str(ROOT), "PATH": str(empty_bin)}
    rep = report(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "drift", "remediate", "--stack", "dev", "--function", "fraud-scorer",
                           "--report", str(rep), "--repo", str(work), "--push", "origin", "--open-pr"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "GitHub CLI (gh) is not installed" in proc.stderr and "gh pr create --base main --head drift/" in proc.stderr
    from gitops.writeback import _compare_url

    url = _compare_url(work, "gh", "main", "drift/dev/x-1")
    assert url == "https://github.com/example/inferops/compare/main...drift/dev/x-1?expand=1"


def test_a_held_lock_stops_a_second_run(tmp_path: Path, remote: Path) -> None:
    from filelock import FileLock

    from gitops.writeback import LOCK_NAME

    work = clone(remote, tmp_path / "work")
    with FileLock(str(work / ".git" / LOCK_NAME)), pytest.raises(GitOpsError, match="holds") as exc:
        remediate(work, "dev", "fraud-scorer", report(tmp_path), lock_timeout=0.2)
    assert exc.value.exit_code == EXIT_FAILED and drift_branches(work) == []
    assert remediate(work, "dev", "fraud-scorer", report(tmp_path)).branch  # released: runs again


def test_loop_from_drift_check_to_branch(tmp_path: Path, remote: Path) -> None:
    """The real `drift check` report on seeded, shifted logs drives `drift remediate`."""
    import csv

    import numpy as np

    rng = np.random.default_rng(7)
    for name, shift in (("ref", 0.0), ("cur", 1.5)):
        with (tmp_path / f"{name}.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["timestamp", "model_version", "amount", "prediction"])
            for i in range(400):
                w.writerow([f"2026-11-{1 + i % 20:02d}T00:00:00Z", "2.2.0", rng.normal(shift, 1), rng.random()])
    env = {**os.environ, **GIT_ENV, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "report.json"
    check = subprocess.run(
        [
            sys.executable,
            "-m",
            "drift",
            "check",
            "--reference",
            str(tmp_path / "ref.csv"),
            "--current",
            str(tmp_path / "cur.csv"),
            "--format",
            "json",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 1, check.stderr  # drift found
    work = clone(remote, tmp_path / "work")
    proc = cli(
        "--stack", "dev", "--function", "fraud-scorer", "--report", str(out), "--repo", str(work), "--push", "origin"
    )
    assert proc.returncode == 0, proc.stderr
    branch = proc.stdout.strip()
    msg = sh(remote, "log", "-1", "--format=%B", f"refs/heads/{branch}")
    assert "- amount: " in msg and "canaryPercent: 10 -> 0" in msg
