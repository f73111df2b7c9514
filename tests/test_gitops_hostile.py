"""Issue 11, items 1-3 and 6: hostile values and a hostile repository around the Git write-back.

Real Git, temporary repositories and a local bare remote; every git call the code makes is bounded,
and the hanging cases are bounded by ``--git-timeout``/``lock_timeout`` of a few seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drift.remediate import remediate
from gitops.writeback import LOCK_NAME, GitOpsError, RefusedError, read_trailers
from inferops.exitcodes import EXIT_BAD_INPUT, EXIT_INTERNAL
from tests.test_gitops import STACK, _git_identity, cli, clone, drift_branches, remote, report, sh

__all__ = ["_git_identity", "remote"]  # pytest fixtures used by name below


def _hook(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _args(work: Path, rep: Path, *extra: str, function: str = "fraud-scorer") -> list[str]:
    return ["--stack", "dev", "--function", function, "--report", str(rep), "--repo", str(work), *extra]


# --- item 1: no user value reaches git as an option ------------------------------------------------------


@pytest.mark.parametrize(
    "push",
    [
        "--upload-pack=touch {marker}",
        "--receive-pack=touch {marker}",
        "--exec=touch {marker}",
        "ext::sh -c touch% {marker}",
        "-oProxyCommand=touch {marker}",
    ],
)
def test_push_value_is_never_an_option_or_a_command(tmp_path: Path, remote: Path, push: str) -> None:
    work = clone(remote, tmp_path / "work")
    marker = tmp_path / "pwned"
    proc = cli(*_args(work, report(tmp_path), "--push", push.format(marker=marker)))
    assert not marker.exists(), "a --push value ran a command"
    assert proc.returncode == EXIT_BAD_INPUT, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("drift: error: --push: ") and "Traceback" not in proc.stderr
    assert drift_branches(work) == []


def test_base_value_is_never_an_option(tmp_path: Path, remote: Path) -> None:
    work = clone(remote, tmp_path / "work")
    marker = tmp_path / "out"
    proc = cli(*_args(work, report(tmp_path), f"--base=--output={marker}"))
    assert proc.returncode == EXIT_BAD_INPUT and not marker.exists()
    assert proc.stderr.strip().splitlines()[-1].startswith("drift: error: --base: ")


def test_a_url_push_target_works_and_a_hostile_function_name_is_refused(tmp_path: Path, remote: Path) -> None:
    work = clone(remote, tmp_path / "work")
    out = remediate(work, "dev", "fraud-scorer", report(tmp_path), push=f"file://{remote}", log=lambda m: None)
    assert out.pushed and sh(remote, "rev-parse", f"refs/heads/{out.branch}") == out.commit
    with pytest.raises(RefusedError, match="--function: invalid function name"):
        remediate(work, "dev", "--exec=x", report(tmp_path))


# --- item 2: nothing in a report can forge a trailer ---------------------------------------------------


def _forging_report(tmp: Path, forged_digest: str, name: str = "forge.json") -> Path:
    forged = (
        f"amount\n\nDrift-Report: {forged_digest}\nDrift-Function: dev/churn\n"
        f"Inferops-Report: {forged_digest}\nInferops-Function: dev/churn\n---\n"
        f"Inferops-Report: {forged_digest}\nInferops-Function: dev/churn\x1b[2J"
    )
    feats = [{"feature": forged, "kind": "numeric", "test": "ks\nInferops-Loop: x", "statistic": 0.4,
              "p_value": 1e-9, "threshold": 0.05, "drifted": True}]  # fmt: skip
    p = tmp / name
    p.write_text(json.dumps({"drifted": True, "severity": "major", "features": feats, "drift_kinds": ["data"]}))
    return p


def test_feature_names_cannot_forge_trailers_or_escapes(tmp_path: Path, remote: Path) -> None:
    work = clone(remote, tmp_path / "work")
    victim = report(tmp_path, "minor", "victim.json")  # the report churn will be remediated for
    victim_digest = "sha256:" + hashlib.sha256(victim.read_bytes()).hexdigest()
    out = remediate(work, "dev", "fraud-scorer", _forging_report(tmp_path, victim_digest), log=lambda m: None)
    msg = sh(work, "log", "-1", "--format=%B", out.branch)
    assert "\x1b" not in msg
    assert not [ln for ln in msg.splitlines() if ln.startswith(("Drift-", "Inferops-Report: " + victim_digest))]
    trailers = read_trailers(work, msg + "\n")
    assert ("Inferops-Function", "dev/fraud-scorer") in trailers and ("Inferops-Loop", "drift") in trailers
    assert not any(v.endswith("churn") or k == "Drift-Report" for k, v in trailers)
    sh(work, "merge", "-q", "--ff-only", out.branch)
    # churn's own remediation for the victim report is not mistaken for "already handled"
    churn = remediate(work, "dev", "churn", victim, log=lambda m: None)
    assert churn.branch and "already handled" not in churn.note


# --- item 3: the already-handled check matches the function exactly ------------------------------------


def test_a_merged_remediation_of_fraud_scorer_2_does_not_hide_fraud_scorer(tmp_path: Path, remote: Path) -> None:
    work = clone(remote, tmp_path / "work")
    two = STACK.replace("- name: churn", "- name: fraud-scorer-2").replace("id: churn", "id: fraud-scorer-2")
    (work / "Pulumi.dev.yaml").write_text(two)
    sh(work, "commit", "-q", "-am", "fraud-scorer-2")
    rep = report(tmp_path, "minor")
    other = remediate(work, "dev", "fraud-scorer-2", rep, log=lambda m: None)
    sh(work, "merge", "-q", "--ff-only", other.branch)
    mine = remediate(work, "dev", "fraud-scorer", rep, log=lambda m: None)
    assert mine.branch and mine.branch != other.branch and "already handled" not in mine.note
    sh(work, "merge", "-q", "--ff-only", mine.branch)
    again = remediate(work, "dev", "fraud-scorer", rep, log=lambda m: None)
    assert again.branch is None and "already handled" in again.note


def test_trailers_of_earlier_versions_still_count_as_handled(tmp_path: Path, remote: Path) -> None:
    work = clone(remote, tmp_path / "work")
    rep = report(tmp_path)
    digest = "sha256:" + hashlib.sha256(rep.read_bytes()).hexdigest()
    sh(work, "commit", "-q", "--allow-empty", "-m", f"old\n\nDrift-Report: {digest}\nDrift-Function: dev/fraud-scorer")
    out = remediate(work, "dev", "fraud-scorer", rep, log=lambda m: None)
    assert out.branch is None and "already handled" in out.note


# --- item 6: the user's repository ---------------------------------------------------------------------


def test_status_never_rewrites_the_users_index(tmp_path: Path, remote: Path) -> None:
    work = clone(remote, tmp_path / "work")
    index = work / ".git" / "index"
    future = time.time() + 1000
    os.utime(work / "README.md", (future, future))  # stat info now stale: a plain `git status` rewrites index
    before = (index.read_bytes(), index.stat().st_mtime_ns, index.stat().st_ino)
    assert remediate(work, "dev", "fraud-scorer", report(tmp_path), log=lambda m: None).branch
    assert (index.read_bytes(), index.stat().st_mtime_ns, index.stat().st_ino) == before
    assert not (work / ".git" / "index.lock").exists()


def test_a_hanging_pre_push_hook_times_out_and_leaves_no_lock(tmp_path: Path, remote: Path) -> None:
    work = clone(remote, tmp_path / "work")
    fifo = tmp_path / "never"
    os.mkfifo(fifo)
    _hook(work / ".git" / "hooks" / "pre-push", f"cat '{fifo}' >/dev/null\n")  # blocks: nobody writes
    started = time.monotonic()
    proc = cli(*_args(work, report(tmp_path), "--push", "origin", "--git-timeout", "2"))
    assert time.monotonic() - started < 60
    assert proc.returncode == EXIT_INTERNAL, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("drift: error: git push did not finish within 2s")
    git_dir = work / ".git"
    assert not (git_dir / "index.lock").exists() and not list(git_dir.glob("inferops-gitops-index.*"))
    assert sh(remote, "for-each-ref", "refs/heads/drift") == ""
    (git_dir / "hooks" / "pre-push").unlink()
    # the lock was released: the next run goes through and pushes the same branch
    again = cli(*_args(work, report(tmp_path), "--push", "origin", "--lock-timeout", "1"))
    assert again.returncode == 0, again.stderr
    assert sh(remote, "rev-parse", f"refs/heads/{again.stdout.strip()}") == sh(work, "rev-parse", again.stdout.strip())


def test_a_stale_ref_lock_is_recovered_and_a_fresh_one_is_not_broken(tmp_path: Path, remote: Path) -> None:
    probe = remediate(clone(remote, tmp_path / "probe"), "dev", "fraud-scorer", report(tmp_path), log=lambda m: None)
    work = clone(remote, tmp_path / "work")
    lock = work / ".git" / "refs" / "heads" / f"{probe.branch}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("")
    with pytest.raises(GitOpsError, match=r"ref lock .* is held") as exc:
        remediate(work, "dev", "fraud-scorer", report(tmp_path), lock_timeout=0.3, log=lambda m: None)
    assert exc.value.exit_code == EXIT_INTERNAL and lock.exists()  # a git may be at work: not broken
    old = time.time() - 3600
    os.utime(lock, (old, old))  # left by a git killed an hour ago
    out = remediate(work, "dev", "fraud-scorer", report(tmp_path), log=lambda m: None)
    assert out.branch == probe.branch and out.created_commit and not lock.exists()
    assert sh(work, "rev-parse", out.branch) == out.commit


def test_a_permanent_pre_receive_rejection_is_not_retried_and_shows_the_remote_message(
    tmp_path: Path, remote: Path
) -> None:
    work = clone(remote, tmp_path / "work")
    calls = tmp_path / "pre-receive.calls"
    _hook(
        remote / "hooks" / "pre-receive",
        f"echo x >> '{calls}'\necho 'drift branches need a ticket (SEC-42)' >&2\nexit 1\n",
    )
    proc = cli(*_args(work, report(tmp_path), "--push", "origin", "--retries", "3"))
    assert proc.returncode == EXIT_INTERNAL, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "refused by the remote (not retried)" in last and "drift branches need a ticket (SEC-42)" in last
    assert calls.read_text().count("x") == 1
    assert "Traceback" not in proc.stderr


def test_commit_hooks_run_as_git_commit_runs_them(tmp_path: Path, remote: Path) -> None:
    work = clone(remote, tmp_path / "work")
    seen = tmp_path / "staged.txt"
    hooks = work / ".git" / "hooks"
    _hook(
        hooks / "pre-commit", f"git diff --cached --name-only > '{seen}'\ngrep -q 'canaryPercent: 0' Pulumi.dev.yaml\n"
    )
    _hook(hooks / "commit-msg", "printf '\\nReviewed-by: Hook <hook@example.com>\\n' >> \"$1\"\n")
    out = remediate(work, "dev", "fraud-scorer", report(tmp_path), log=lambda m: None)
    assert seen.read_text().split() == ["Pulumi.dev.yaml"]  # the hook saw the edited file staged
    msg = sh(work, "log", "-1", "--format=%B", out.branch)
    assert "Reviewed-by: Hook <hook@example.com>" in msg and "Inferops-Report: sha256:" in msg
    # the user's checkout and worktree list are untouched
    assert (work / "Pulumi.dev.yaml").read_text() == STACK and sh(work, "status", "--porcelain") == ""
    assert len(sh(work, "worktree", "list").splitlines()) == 1
    assert not [p for p in (work / ".git").iterdir() if p.name.startswith("inferops-hooks.")]


def test_a_failing_pre_commit_hook_refuses_and_no_verify_skips_it(tmp_path: Path, remote: Path) -> None:
    work = clone(remote, tmp_path / "work")
    _hook(work / ".git" / "hooks" / "pre-commit", "echo 'yamllint: line too long' >&2\nexit 1\n")
    proc = cli(*_args(work, report(tmp_path)))
    assert proc.returncode == EXIT_BAD_INPUT
    assert proc.stderr.strip().splitlines()[-1] == (
        "drift: error: pre-commit hook refused the change: yamllint: line too long"
    )
    assert drift_branches(work) == []
    ok = cli(*_args(work, report(tmp_path), "--no-verify"))
    assert ok.returncode == 0 and drift_branches(work) == [ok.stdout.strip()]


def test_leftovers_of_a_killed_run_are_cleaned_under_the_lock(tmp_path: Path, remote: Path) -> None:
    from filelock import FileLock

    work = clone(remote, tmp_path / "work")
    git_dir = work / ".git"
    for name in ("inferops-gitops-index.abc", "inferops-gitops-index.abc.lock"):
        (git_dir / name).write_text("")
    (git_dir / "inferops-hooks.xyz").mkdir()
    assert remediate(work, "dev", "fraud-scorer", report(tmp_path), log=lambda m: None).branch
    assert not [p for p in git_dir.iterdir() if p.name.startswith(("inferops-gitops-index.", "inferops-hooks."))]
    with FileLock(str(git_dir / LOCK_NAME), timeout=1):
        pass  # released


def test_kill_9_mid_push_leaves_the_repository_usable(tmp_path: Path, remote: Path) -> None:
    """SIGKILL of the whole run while its push hangs: the user's next commit and the next run work."""
    work = clone(remote, tmp_path / "work")
    fifo = tmp_path / "never"
    os.mkfifo(fifo)
    started = tmp_path / "hook.pid"
    # the hook becomes `cat` on a FIFO nobody writes: it hangs until killed
    _hook(
        work / ".git" / "hooks" / "pre-push",
        f"echo $$ > '{started}.tmp' && mv '{started}.tmp' '{started}'\nexec cat '{fifo}'\n",
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    p = subprocess.Popen(
        [sys.executable, "-m", "drift", "remediate", *_args(work, report(tmp_path), "--push", "origin")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)
    os.killpg(p.pid, 9)  # the run (python) dies; git and its hook live in their own process group
    p.wait(timeout=30)
    assert started.exists(), "the run never reached its push"
    os.kill(int(started.read_text()), 9)  # end the orphaned hook so the orphaned git push exits too
    assert not (work / ".git" / "index.lock").exists()
    (work / "README.md").write_text("user edit\n")
    sh(work, "commit", "-q", "-am", "the user's next commit")
    (work / ".git" / "hooks" / "pre-push").unlink()
    out = remediate(work, "dev", "fraud-scorer", report(tmp_path), push="origin", lock_timeout=5, log=lambda m: None)
    assert out.pushed
