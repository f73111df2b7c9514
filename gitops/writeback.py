"""Git write-back of one loop's change: branch, commit, push with bounded retry, optional pull request.

A loop (``drift``, ``finops``) owns its decision and hands :func:`write_back` a ``plan`` callable that
turns the function's parsed config into a :class:`Change`. This module owns everything Git: the commit
is built with plumbing (``hash-object``, a private index, ``commit-tree``, ``update-ref``) from the base
commit's tree, so the user's checkout, index and working tree are never touched, and the branch ref is
moved with a compare-and-swap. A file lock inside ``.git`` keeps two runs on one repository from
interleaving. Pushes never force: on a rejected push the branch is fetched, ``plan`` is called again on
the fetched file (usually a no-op, because the other writer made the same change) and the push is
retried a bounded number of times.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from gitops.configedit import (
    ConfigEditError,
    Edit,
    Validator,
    apply_edits,
    default_validator,
    read_function,
    stack_file_name,
)
from inferops.exitcodes import EXIT_BAD_INPUT, EXIT_FINDING, EXIT_OK

LOCK_NAME = "inferops-gitops.lock"
_ZERO = "0" * 40
_REJECTED = re.compile(
    r"\[rejected\]|\[remote rejected\]|non-fast-forward|fetch first|cannot lock ref|failed to update ref"
)

#: Trailer keys written on every commit; the "already handled" check reads them back.
TRAILER_REPORT = "Inferops-Report"
TRAILER_FUNCTION = "Inferops-Function"
TRAILER_LOOP = "Inferops-Loop"
TRAILER_ACTION = "Inferops-Action"
#: Trailers the drift loop wrote before the move to ``gitops``; still honoured by the handled check.
_LEGACY_TRAILERS = {"drift": ("Drift-Report", "Drift-Function")}


class GitOpsError(RuntimeError):
    """The write-back failed for an operational reason (Git, lock, remote); ``exit_code`` says how to exit."""

    exit_code = EXIT_FINDING


class RefusedError(GitOpsError):
    """Bad input or a repository state we must not work on (dirty tree, detached HEAD, missing file)."""

    exit_code = EXIT_BAD_INPUT


@dataclass(frozen=True)
class Change:
    """What one loop wants done to one function's config, planned on one version of the file."""

    loop: str  # "drift" | "finops": branch prefix `<loop>/<stack>/<function>-<hash>` and trailers
    action: str  # e.g. "stop-canary", "rightsize": title, branch hash
    edits: list[Edit]
    title: str  # commit subject and PR title, e.g. "chore(finops): rightsize fn on dev"
    body: str  # commit body (gitops sanitises it; no trailers in it)
    pr_body: str  # Markdown for the pull request
    evidence_digest: str  # the report's digest: trailer `Inferops-Report`, for the already-handled check
    changes: list[str] = field(default_factory=list)  # human-readable lines of what changed
    hash_mask: tuple[str, ...] = ()  # substrings (e.g. today's date) masked before hashing the branch name


Plan = Callable[[Mapping[str, Any]], Change | None]


@dataclass
class Outcome:
    """What a write-back run did."""

    stack: str
    function: str
    base: str
    path: str = ""  # the stack file, relative to the repository top level
    loop: str = ""
    action: str = ""
    evidence_digest: str = ""
    branch: str | None = None  # None: nothing to change
    commit: str | None = None
    created_commit: bool = False
    pushed: bool = False
    changes: list[str] = field(default_factory=list)
    title: str = ""
    pr_body: str = ""
    note: str = ""
    planned: bool = False  # False when ``plan`` returned None at the base ("nothing to do")

    @property
    def changed(self) -> bool:
        """True when a branch carries a change for review (new or from an earlier run)."""
        return self.branch is not None

    def to_json(self) -> dict[str, Any]:
        """Machine-readable summary (for workflows)."""
        return {
            "stack": self.stack,
            "function": self.function,
            "loop": self.loop,
            "action": self.action,
            "branch": self.branch,
            "commit": self.commit,
            "created_commit": self.created_commit,
            "pushed": self.pushed,
            "report_digest": self.evidence_digest,
            "changes": self.changes,
            "note": self.note,
        }


# --- git plumbing --------------------------------------------------------------------------------------


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"})
    if extra:
        env.update(extra)
    return env


def git(
    cwd: Path, *args: str, input: bytes | None = None, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git`` in ``cwd``; on failure (``check``) raise :class:`GitOpsError` with git's first error line."""
    proc = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True, env=_env(env), check=False)
    if check and proc.returncode != 0:
        raise GitOpsError(f"git {args[0]} failed: {_first_line(proc.stderr or proc.stdout)}")
    return proc


def _first_line(raw: bytes) -> str:
    for line in raw.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line and not line.startswith("hint:"):
            return line
    return "no output"


def _out(proc: subprocess.CompletedProcess[bytes]) -> str:
    return proc.stdout.decode("utf-8", "replace").strip()


def _rev(cwd: Path, rev: str) -> str | None:
    p = git(cwd, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    return _out(p) if p.returncode == 0 else None


def _is_ancestor(cwd: Path, a: str, b: str) -> bool:
    return git(cwd, "merge-base", "--is-ancestor", a, b, check=False).returncode == 0


def _show(cwd: Path, commit: str, path: str) -> bytes | None:
    p = git(cwd, "show", f"{commit}:{path}", check=False)
    return p.stdout if p.returncode == 0 else None


def _fetch_branch(cwd: Path, remote: str, branch: str) -> str | None:
    """Fetch ``branch`` from ``remote``; its tip, or None when the remote has no such branch."""
    ls = git(cwd, "ls-remote", "--exit-code", remote, f"refs/heads/{branch}", check=False)
    if ls.returncode == 2:
        return None
    if ls.returncode != 0:
        raise GitOpsError(f"cannot reach remote {remote!r}: {_first_line(ls.stderr)}")
    git(cwd, "fetch", "--no-tags", "--quiet", remote, f"refs/heads/{branch}")
    return _out(git(cwd, "rev-parse", "FETCH_HEAD^{commit}"))


# --- commit messages -------------------------------------------------------------------------------------


def commit_message(change: Change, stack: str, function: str) -> str:
    """Subject, body and the trailers gitops owns (``Inferops-Report`` etc.)."""
    parts = [change.title.strip(), "", change.body.rstrip("\n"), ""]
    parts += [
        f"{TRAILER_LOOP}: {change.loop}",
        f"{TRAILER_ACTION}: {change.action}",
        f"{TRAILER_FUNCTION}: {stack}/{function}",
        f"{TRAILER_REPORT}: {change.evidence_digest}",
    ]
    return "\n".join(parts) + "\n"


# --- the run -------------------------------------------------------------------------------------------


@dataclass
class _Ctx:
    repo: Path
    git_dir: Path
    path: str  # stack file path relative to the repository top level
    stack: str
    function: str
    plan: Plan
    validate: Validator | None


def _plan_on(ctx: _Ctx, commit: str, planned: Change | None = None) -> tuple[bytes, bytes, Change | None]:
    """(old bytes, new bytes, the change) of ``plan`` applied to the file at ``commit``.

    ``planned``: the change ``plan`` already returned for this commit (not planned twice).
    """
    raw = _show(ctx.repo, commit, ctx.path)
    if raw is None:
        raise GitOpsError(f"{ctx.path} does not exist at {commit[:12]}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RefusedError(f"{ctx.path}: not UTF-8") from None
    try:
        change = planned or ctx.plan(read_function(text, ctx.function, ctx.path))
        if change is None:
            return raw, raw, None
        new = apply_edits(text, ctx.function, change.edits, where=ctx.path, validate=ctx.validate)
    except ConfigEditError as exc:
        raise RefusedError(str(exc)) from None
    return raw, new.encode("utf-8"), change


def _commit_onto(ctx: _Ctx, parent: str) -> tuple[str, bool, Change | None]:
    """A commit on ``parent`` with the plan applied; ``(parent, False, _)`` when it changes no byte."""
    old, new, change = _plan_on(ctx, parent)
    if new == old or change is None:
        return parent, False, change
    blob = _out(git(ctx.repo, "hash-object", "-w", "--stdin", input=new))
    mode = _out(git(ctx.repo, "ls-tree", parent, "--", ctx.path)).split(" ", 1)[0] or "100644"
    fd, index = tempfile.mkstemp(prefix="inferops-gitops-index.", dir=ctx.git_dir)
    os.close(fd)
    os.unlink(index)  # read-tree wants to create it
    try:
        env = {"GIT_INDEX_FILE": index}
        git(ctx.repo, "read-tree", parent, env=env)
        git(ctx.repo, "update-index", "--cacheinfo", f"{mode},{blob},{ctx.path}", env=env)
        tree = _out(git(ctx.repo, "write-tree", env=env))
    finally:
        if os.path.exists(index):
            os.unlink(index)
    message = commit_message(change, ctx.stack, ctx.function)
    proc = git(ctx.repo, "commit-tree", tree, "-p", parent, "-F", "-", input=message.encode(), check=False)
    if proc.returncode != 0:
        raise GitOpsError(
            f"git commit-tree failed: {_first_line(proc.stderr)} (set user.name/user.email or GIT_AUTHOR_*)"
        )
    return _out(proc), True, change


def _set_ref(repo: Path, branch: str, new: str, old: str | None, loop: str) -> None:
    """Move ``refs/heads/<branch>`` from ``old`` (None: must not exist) to ``new``, atomically."""
    if new == old:
        return
    proc = git(repo, "update-ref", "-m", f"{loop} remediate", f"refs/heads/{branch}", new, old or _ZERO, check=False)
    if proc.returncode != 0:
        raise GitOpsError(f"branch {branch} moved while we worked ({_first_line(proc.stderr)}); run again")


def branch_name(stack: str, function: str, path: str, change: Change, old: bytes, new: bytes) -> str:
    """``<loop>/<stack>/<function>-<10 hex>``: hash of the change, stable across days for the same evidence.

    ``change.hash_mask`` substrings (a date) are masked before hashing so a re-run on another day finds
    the same branch.
    """
    new_masked = new
    for mask in change.hash_mask:
        new_masked = new_masked.replace(mask.encode(), b'"<date>"')
    h = hashlib.sha256()
    for part in (stack.encode(), function.encode(), path.encode(), change.action.encode(), old, new_masked):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return f"{change.loop}/{stack}/{function}-{h.hexdigest()[:10]}"


def _already_handled(ctx: _Ctx, change: Change, base_commit: str) -> str | None:
    """A commit in the base's history that carries this evidence's trailers for this function."""
    keys = [(TRAILER_REPORT, TRAILER_FUNCTION)]
    if change.loop in _LEGACY_TRAILERS:
        keys.append(_LEGACY_TRAILERS[change.loop])
    for report_key, function_key in keys:
        proc = git(
            ctx.repo, "log", "-1", "--format=%H", "--fixed-strings", "--all-match",
            f"--grep={report_key}: {change.evidence_digest}", f"--grep={function_key}: {ctx.stack}/{ctx.function}",
            base_commit, check=False,
        )  # fmt: skip
        if _out(proc):
            return _out(proc)
    return None


def write_back(
    repo: str | Path,
    stack: str,
    function: str,
    plan: Plan,
    *,
    base: str | None = None,
    push: str | None = None,
    retries: int = 3,
    lock_timeout: float = 120.0,
    validate: Validator | None = default_validator,
    log: Callable[[str], None] | None = None,
) -> Outcome:
    """Commit ``plan``'s change of ``Pulumi.<stack>.yaml`` on its own branch (and push it).

    ``plan`` is called with the function's parsed config (plain dicts) at the base commit, and again on
    the fetched remote version after a rejected push; ``None`` means "nothing to do". Raises
    :class:`RefusedError` for bad input or repository state and :class:`GitOpsError` when Git fails
    (lock timeout, push rejected ``retries + 1`` times, unreachable remote).
    """
    say = log or (lambda msg: print(msg, file=sys.stderr))
    try:
        file_name = stack_file_name(stack)
    except ConfigEditError as exc:
        raise RefusedError(str(exc)) from None
    repo_dir = Path(repo).resolve()
    if not repo_dir.is_dir():
        raise RefusedError(f"--repo: {repo} is not a directory")
    top = git(repo_dir, "rev-parse", "--show-toplevel", check=False)
    if top.returncode != 0:
        raise RefusedError(f"--repo: {repo} is not inside a Git repository")
    git_dir = (repo_dir / _out(git(repo_dir, "rev-parse", "--git-common-dir"))).resolve()
    prefix = _out(git(repo_dir, "rev-parse", "--show-prefix"))
    path = f"{prefix}{file_name}"
    top_dir = Path(_out(top))

    try:
        lock = FileLock(str(git_dir / LOCK_NAME), timeout=lock_timeout)
        lock.acquire()
    except Timeout:
        raise GitOpsError(f"another remediation holds {git_dir / LOCK_NAME} (waited {lock_timeout:g}s)") from None
    try:
        ctx = _Ctx(top_dir, git_dir, path, stack, function, plan, validate)
        return _write_back_locked(ctx, base, push, retries, say)
    finally:
        lock.release()


def _write_back_locked(
    ctx: _Ctx, base: str | None, push: str | None, retries: int, say: Callable[[str], None]
) -> Outcome:
    repo, path = ctx.repo, ctx.path
    head = git(repo, "symbolic-ref", "-q", "--short", "HEAD", check=False)
    if base is None:
        if head.returncode != 0:
            raise RefusedError("HEAD is detached: check out the base branch or pass --base")
        base = _out(head)
    dirty = _out(git(repo, "status", "--porcelain", "--untracked-files=no"))
    if dirty:
        n = len(dirty.splitlines())
        raise RefusedError(f"working tree has uncommitted changes to {n} tracked file(s): commit or stash them first")
    base_commit = _rev(repo, base)
    if base_commit is None:
        raise RefusedError(f"--base: {base!r} is not a commit in this repository")
    raw = _show(repo, base_commit, path)
    if raw is None:
        raise RefusedError(f"stack file {path} not found in {base}")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RefusedError(f"{path}: not UTF-8") from None
    outcome = Outcome(ctx.stack, ctx.function, base, path=path)
    # The first plan: with nothing to do, stop before looking at history.
    try:
        text = raw.decode("utf-8")
        fn = read_function(text, ctx.function, path)
    except ConfigEditError as exc:
        raise RefusedError(str(exc)) from None
    first = ctx.plan(fn)
    if first is None:
        outcome.note = "no change: nothing to do"
        return outcome
    outcome.planned = True
    outcome.loop, outcome.action, outcome.evidence_digest = first.loop, first.action, first.evidence_digest
    handled = _already_handled(ctx, first, base_commit)
    if handled:
        short = first.evidence_digest.removeprefix("sha256:")[:12]
        outcome.note = f"no change: report {short} already handled by {handled[:12]} in {base}"
        return outcome
    old, new, change = _plan_on(ctx, base_commit, first)
    if change is None or new == old:
        outcome.note = f"no change: {path} already reflects {first.action}"
        return outcome

    branch = branch_name(ctx.stack, ctx.function, path, change, old, new)
    if git(repo, "check-ref-format", "--branch", branch, check=False).returncode != 0:
        raise RefusedError(f"cannot build a valid branch name from stack {ctx.stack!r} and function {ctx.function!r}")
    outcome.branch, outcome.changes, outcome.title = branch, list(change.changes), change.title
    outcome.pr_body = change.pr_body

    local = _rev(repo, f"refs/heads/{branch}")
    remote_tip = _fetch_branch(repo, push, branch) if push else None
    start = _pick_start(repo, branch, base_commit, local, remote_tip, push)
    commit, made, _ = _commit_onto(ctx, start)
    _set_ref(repo, branch, commit, local, change.loop)
    outcome.commit, outcome.created_commit = commit, made

    if push:
        attempt = 0
        while remote_tip != commit:
            proc = git(repo, "push", "--porcelain", push, f"refs/heads/{branch}:refs/heads/{branch}", check=False)
            if proc.returncode == 0:
                outcome.pushed = True
                break
            text_out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
            if not _REJECTED.search(text_out):
                raise GitOpsError(f"push to {push} failed: {_first_line(proc.stderr or proc.stdout)}")
            attempt += 1
            if attempt > retries:
                raise GitOpsError(f"push of {branch} to {push} rejected {attempt} times; run again later")
            say(f"push rejected (attempt {attempt}); fetching {branch} and re-applying")
            time.sleep(min(0.2 * 2**attempt, 5.0))
            remote_tip = _fetch_branch(repo, push, branch)
            prev = commit
            commit, made, _ = _commit_onto(ctx, remote_tip or base_commit)
            # Our unpublished commit is replaced by the same change re-applied onto what the remote has;
            # nothing published is discarded, and the remote only ever sees fast-forwards.
            _set_ref(repo, branch, commit, prev, change.loop)
            outcome.commit = commit
            outcome.created_commit = made
    if not outcome.created_commit:
        outcome.note = f"branch {branch} already carries this change"
    return outcome


def _pick_start(
    repo: Path, branch: str, base_commit: str, local: str | None, remote_tip: str | None, remote: str | None
) -> str:
    if local is None:
        return remote_tip or base_commit
    if remote_tip is None or remote_tip == local or _is_ancestor(repo, remote_tip, local):
        return local
    if _is_ancestor(repo, local, remote_tip):
        return remote_tip
    raise GitOpsError(f"local branch {branch} and {remote}/{branch} have diverged; reconcile them by hand")


# --- pull requests -------------------------------------------------------------------------------------


def _compare_url(repo: Path, remote: str | None, base: str, branch: str) -> str | None:
    if not remote:
        return None
    proc = git(repo, "remote", "get-url", remote, check=False)
    m = re.search(r"github\.com[:/]([^/\s]+)/([^/\s]+?)(?:\.git)?/?$", _out(proc)) if proc.returncode == 0 else None
    if not m:
        return None
    return f"https://github.com/{m.group(1)}/{m.group(2)}/compare/{base}...{branch}?expand=1"


def open_pull_request(
    repo: str | Path, outcome: Outcome, remote: str | None, say: Callable[[str], None] | None = None
) -> int:
    """Open a PR for the outcome's branch with ``gh``; returns an exit code.

    No PR for an empty change. Without ``gh`` or a token (``GH_TOKEN``/``GITHUB_TOKEN``), or when the
    branch was not pushed, prints how to open it by hand and returns 0: the write-back itself succeeded.
    """
    say = say or (lambda msg: print(msg, file=sys.stderr))
    repo_dir = Path(repo).resolve()
    if not outcome.changed or outcome.branch is None:
        say("no pull request: the change is empty")
        return EXIT_OK
    manual = f"gh pr create --base {outcome.base} --head {outcome.branch} --title '{outcome.title}'"
    url = _compare_url(repo_dir, remote, outcome.base, outcome.branch)
    hint = f"open it at {url} or run: {manual}" if url else f"push the branch and run: {manual}"
    if not remote:
        say(f"no pull request: the branch was not pushed (use --push REMOTE); {hint}")
        return EXIT_OK
    gh = shutil.which("gh")
    token = os.environ.get("GH_TOKEN") or os.environ.get("GITHUB_TOKEN")
    if gh is None or not token:
        missing = "the GitHub CLI (gh) is not installed" if gh is None else "GH_TOKEN/GITHUB_TOKEN is not set"
        say(f"no pull request: {missing}; {hint}")
        return EXIT_OK
    existing = subprocess.run(
        [gh, "pr", "list", "--head", outcome.branch, "--state", "open", "--json", "url", "--jq", ".[0].url"],
        cwd=repo_dir, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if existing.returncode == 0 and existing.stdout.strip():
        say(f"pull request already open: {existing.stdout.strip()}")
        return EXIT_OK
    with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False, encoding="utf-8") as fh:
        fh.write(outcome.pr_body)
        body_file = fh.name
    try:
        proc = subprocess.run(
            [gh, "pr", "create", "--base", outcome.base, "--head", outcome.branch,
             "--title", outcome.title, "--body-file", body_file],
            cwd=repo_dir, capture_output=True, text=True, check=False,
        )  # fmt: skip
    finally:
        os.unlink(body_file)
    if proc.returncode != 0:
        first = (proc.stderr or proc.stdout).strip().splitlines()
        say(f"gh pr create failed: {first[0] if first else 'no output'}; {hint}")
        return GitOpsError.exit_code
    say(f"pull request: {proc.stdout.strip()}")
    return EXIT_OK


def outcome_json(outcome: Outcome, **extra: Any) -> str:
    """One JSON line: :meth:`Outcome.to_json` plus the loop's own fields."""
    return json.dumps({**outcome.to_json(), **extra}, sort_keys=True)
