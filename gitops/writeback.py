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

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unicodedata
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
from inferops.exitcodes import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK

LOCK_NAME = "inferops-gitops.lock"
_ZERO = "0" * 40
#: A rejection another writer caused: fetch, re-apply and retry.
_RACE = re.compile(
    r"\[rejected\]|non-fast-forward|fetch first|stale info|cannot lock ref|failed to update ref|incorrect old value"
)

#: Trailer keys written on every commit; the "already handled" check reads them back.
TRAILER_REPORT = "Inferops-Report"
TRAILER_FUNCTION = "Inferops-Function"
TRAILER_LOOP = "Inferops-Loop"
TRAILER_ACTION = "Inferops-Action"
#: Trailers the drift loop wrote before the move to ``gitops``; still honoured by the handled check.
_LEGACY_TRAILERS = {"drift": ("Drift-Report", "Drift-Function")}


class GitOpsError(RuntimeError):
    """The write-back failed for an operational reason (Git, a lock, the remote, a timeout).

    ``exit_code`` is 3 (:data:`inferops.exitcodes.EXIT_INTERNAL`, "a failing environment"): a
    remediation has no verdict, and workflows read 1 as a finding, so an operational failure is never 1.
    """

    exit_code = EXIT_INTERNAL


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
#: ``(stack file text, function, path) -> what plan is given``; by default the function's own config
#: (:func:`gitops.configedit.read_function`). Raises :class:`gitops.configedit.ConfigEditError`.
Reader = Callable[[str, str, str], Mapping[str, Any]]


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

#: Bound on git calls that only read or write the local object store (they cannot wait on anything).
LOCAL_TIMEOUT = 120.0
#: Default bound on git calls that can wait: the network (ls-remote, fetch, push) and hooks.
GIT_TIMEOUT = 300.0
#: A ref lock (``refs/heads/x.lock``) older than this is left by a killed git; git holds them for milliseconds.
STALE_LOCK_SECONDS = 60.0


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "LC_ALL": "C",
            "GIT_TERMINAL_PROMPT": "0",
            # Never take optional locks: `git status` would otherwise refresh and rewrite the user's
            # .git/index (and leave .git/index.lock behind when killed).
            "GIT_OPTIONAL_LOCKS": "0",
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
        }
    )
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    if extra:
        env.update(extra)
    return env


def git(
    cwd: Path,
    *args: str,
    input: bytes | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = LOCAL_TIMEOUT,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git`` in ``cwd``, bounded by ``timeout`` seconds.

    On failure (``check``) raises :class:`GitOpsError` with git's first error line. On timeout the whole
    process group (git, its hooks and their children) is killed and :class:`GitOpsError` raised, so a
    hanging hook or remote never holds the run (and its lock) forever.
    """
    with subprocess.Popen(
        ["git", *args],
        cwd=cwd,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(env),
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise GitOpsError(
                f"git {args[0]} did not finish within {timeout:g}s (a hook or the remote did not answer); "
                "nothing was pushed by this call"
            ) from None
    done = subprocess.CompletedProcess(["git", *args], proc.returncode, out, err)
    if check and done.returncode != 0:
        raise GitOpsError(f"git {args[0]} failed: {_first_line(done.stderr or done.stdout)}")
    return done


def _first_line(raw: bytes) -> str:
    for line in raw.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line and not line.startswith("hint:"):
            return one_line(line)
    return "no output"


def _out(proc: subprocess.CompletedProcess[bytes]) -> str:
    return proc.stdout.decode("utf-8", "replace").strip()


def _rev(cwd: Path, rev: str) -> str | None:
    p = git(cwd, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", check=False)
    return _out(p) if p.returncode == 0 else None


def _is_ancestor(cwd: Path, a: str, b: str) -> bool:
    return git(cwd, "merge-base", "--is-ancestor", a, b, check=False).returncode == 0


def _show(cwd: Path, commit: str, path: str) -> bytes | None:
    p = git(cwd, "cat-file", "blob", f"{commit}:{path}", check=False)
    return p.stdout if p.returncode == 0 else None


_URL_RE = re.compile(r"(?:https?|ssh|git|file)://[^\s\x00-\x1f\x7f]+")
_SCP_RE = re.compile(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s\x00-\x1f\x7f-][^\s\x00-\x1f\x7f]*")
_FUNCTION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_DIGEST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9:+/=._-]{0,199}")


def check_remote(repo: Path, remote: str) -> str:
    """``remote`` when it is a remote configured in ``repo`` or a URL; :class:`RefusedError` otherwise.

    Whatever is returned is passed to git after ``--``, so it can never be read as an option
    (``--upload-pack=...``, ``--exec=...``); a URL must use https, ssh, git or file (``ext::`` runs a
    command) or the ``user@host:path`` form.
    """
    names = _out(git(repo, "remote")).split()
    if remote in names:
        return remote
    if len(remote) <= 2048 and (_URL_RE.fullmatch(remote) or _SCP_RE.fullmatch(remote)):
        return remote
    raise RefusedError(
        f"--push: {one_line(remote)!r} is neither a remote of this repository ({', '.join(names) or 'none'}) "
        "nor an https://, ssh://, git://, file:// or user@host:path URL"
    )


def _fetch_branch(cwd: Path, remote: str, branch: str, timeout: float) -> str | None:
    """Fetch ``branch`` from ``remote``; its tip, or None when the remote has no such branch."""
    ls = git(cwd, "ls-remote", "--exit-code", "--", remote, f"refs/heads/{branch}", check=False, timeout=timeout)
    if ls.returncode == 2:
        return None
    if ls.returncode != 0:
        raise GitOpsError(f"cannot reach remote {one_line(remote)!r}: {_first_line(ls.stderr)}")
    git(cwd, "fetch", "--no-tags", "--quiet", "--", remote, f"refs/heads/{branch}", timeout=timeout)
    return _out(git(cwd, "rev-parse", "--verify", "FETCH_HEAD^{commit}"))


# --- commit messages -------------------------------------------------------------------------------------

_TRAILER_LIKE = re.compile(r"(?i)\s*(?:inferops|drift)-[a-z0-9-]*\s*[:=]")


def _escape_char(ch: str) -> str:
    return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"


def _visible(text: str, keep: str = "") -> str:
    """``text`` with control, format and line/paragraph-separator characters escaped (``\\x1b``)."""
    out = []
    for ch in text:
        if ch in keep or not unicodedata.category(ch).startswith(("C", "Z")) or ch == " ":
            out.append(ch)
        else:
            out.append(_escape_char(ch))
    return "".join(out)


def one_line(text: str) -> str:
    """A value fit for one line of a message or a commit subject: no newlines, no escape sequences."""
    return " ".join(_visible(text.replace("\t", " ")).split())


def sanitize_body(text: str) -> str:
    """A commit body that cannot forge trailers or smuggle terminal escapes.

    Control and separator characters other than newline are escaped; a line that looks like one of
    the trailers gitops writes (``Inferops-*:``/``Drift-*:``), or a ``---`` patch divider, is indented so
    no trailer parser reads it as one; the trailers themselves are always a separate last paragraph.
    """
    lines = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = _visible(raw.replace("\t", "    ")).rstrip()
        if _TRAILER_LIKE.match(line) or line.startswith("---"):
            line = "  " + line
        lines.append(line)
    return "\n".join(lines).strip("\n")


def commit_message(change: Change, stack: str, function: str) -> str:
    """Subject, sanitised body and the trailers gitops owns (``Inferops-Report`` etc.)."""
    body = sanitize_body(change.body)
    parts = [one_line(change.title) or f"chore({change.loop}): {change.action}", ""]
    if body:
        parts += [body, ""]
    parts += trailer_lines(change, stack, function)
    return "\n".join(parts) + "\n"


def trailer_lines(change: Change, stack: str, function: str) -> list[str]:
    """The ``Key: value`` trailers gitops writes on every commit (and the handled check reads)."""
    return [
        f"{TRAILER_LOOP}: {one_line(change.loop)}",
        f"{TRAILER_ACTION}: {one_line(change.action)}",
        f"{TRAILER_FUNCTION}: {stack}/{function}",
        f"{TRAILER_REPORT}: {change.evidence_digest}",
    ]


def read_trailers(repo: Path, message: str) -> list[tuple[str, str]]:
    """``(key, value)`` trailers of a commit message, parsed by ``git interpret-trailers``."""
    proc = git(repo, "interpret-trailers", "--parse", "--no-divider", input=message.encode("utf-8"), check=False)
    pairs = []
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            pairs.append((key.strip(), value.strip()))
    return pairs


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
    git_timeout: float = GIT_TIMEOUT
    verify: bool = True
    lock_timeout: float = 120.0
    read: Reader = read_function


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
        change = planned or ctx.plan(ctx.read(text, ctx.function, ctx.path))
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
    message = commit_message(change, ctx.stack, ctx.function)
    hooks = _hooks(ctx) if ctx.verify else []
    if hooks:
        tree, message = _tree_with_hooks(ctx, parent, new, change, message, hooks)
    else:
        tree = _tree_with(ctx, parent, mode, blob)
    proc = git(ctx.repo, "commit-tree", tree, "-p", parent, "-F", "-", input=message.encode(), check=False)
    if proc.returncode != 0:
        raise GitOpsError(
            f"git commit-tree failed: {_first_line(proc.stderr)} (set user.name/user.email or GIT_AUTHOR_*)"
        )
    return _out(proc), True, change


_PRIVATE_PREFIXES = ("inferops-gitops-index.", "inferops-hooks.")


def _tree_with(ctx: _Ctx, parent: str, mode: str, blob: str) -> str:
    """The tree of ``parent`` with the stack file replaced by ``blob``, built in a private index."""
    fd, index = tempfile.mkstemp(prefix=_PRIVATE_PREFIXES[0], dir=ctx.git_dir)
    os.close(fd)
    os.unlink(index)  # read-tree wants to create it
    try:
        env = {"GIT_INDEX_FILE": index}
        git(ctx.repo, "read-tree", parent, env=env)
        git(ctx.repo, "update-index", "--cacheinfo", f"{mode},{blob},{ctx.path}", env=env)
        return _out(git(ctx.repo, "write-tree", env=env))
    finally:
        for leftover in (index, index + ".lock"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)


def _hooks(ctx: _Ctx) -> list[str]:
    """The commit hooks this repository has (``core.hooksPath`` honoured) that ``git commit`` would run."""
    found = []
    for name in ("pre-commit", "commit-msg"):
        rel = _out(git(ctx.repo, "rev-parse", "--git-path", f"hooks/{name}"))
        hook = Path(rel) if os.path.isabs(rel) else ctx.repo / rel
        if hook.is_file() and os.access(hook, os.X_OK):
            found.append(name)
    return found


def _tree_with_hooks(
    ctx: _Ctx, parent: str, new: bytes, change: Change, message: str, hooks: list[str]
) -> tuple[str, str]:
    """Run ``pre-commit``/``commit-msg`` as ``git commit`` would, in a throw-away worktree of ``parent``.

    The user's checkout never sees the change: the hooks run in a detached worktree under ``.git``
    with the edited file staged. A hook that fails refuses the change (its first line is the reason);
    the tree is what the index holds after the hooks (a formatter may re-stage), the message what
    ``commit-msg`` left in the file.
    """
    wt = Path(tempfile.mkdtemp(prefix=_PRIVATE_PREFIXES[1], dir=ctx.git_dir))
    t = ctx.git_timeout
    try:
        # --no-checkout + read-tree -u: no post-checkout hook, which `git commit` would not run either.
        git(ctx.repo, "worktree", "add", "--detach", "--no-checkout", "--quiet", "--", str(wt), parent)
        git(wt, "read-tree", "-u", "--reset", "HEAD")
        target = wt / ctx.path
        target.write_bytes(new)
        git(wt, "add", "--", ctx.path)
        if "pre-commit" in hooks:
            proc = git(wt, "hook", "run", "--ignore-missing", "pre-commit", check=False, timeout=t)
            if proc.returncode != 0:
                raise RefusedError(f"pre-commit hook refused the change: {_first_line(proc.stderr or proc.stdout)}")
        if "commit-msg" in hooks:
            msg_file = wt / ".inferops-COMMIT_EDITMSG"
            msg_file.write_text(message, encoding="utf-8")
            proc = git(wt, "hook", "run", "--ignore-missing", "commit-msg", "--", str(msg_file), check=False, timeout=t)
            if proc.returncode != 0:
                raise RefusedError(f"commit-msg hook refused the change: {_first_line(proc.stderr or proc.stdout)}")
            edited = msg_file.read_text(encoding="utf-8", errors="replace")
            msg_file.unlink()
            # The hook may add lines (a Change-Id, a sign-off, a paragraph): keep them, and put our
            # trailers back into the message's last trailer block, where the handled check reads them.
            ours = trailer_lines(change, ctx.stack, ctx.function)
            rest = "\n".join(ln for ln in edited.splitlines() if ln.strip() not in ours).rstrip() + "\n"
            args = [a for t in ours for a in ("--trailer", t)]
            proc = git(
                wt, "interpret-trailers", "--no-divider", "--if-exists", "addIfDifferent", *args, input=rest.encode()
            )
            message = proc.stdout.decode("utf-8", "replace")
        return _out(git(wt, "write-tree")), message
    finally:
        git(ctx.repo, "worktree", "remove", "--force", "--force", "--", str(wt), check=False)
        shutil.rmtree(wt, ignore_errors=True)
        git(ctx.repo, "worktree", "prune", check=False)


def _clean_leftovers(git_dir: Path) -> None:
    """Remove private indexes and hook worktrees a killed run left (we hold the lock: none is in use)."""
    for entry in git_dir.iterdir():
        if entry.name.startswith(_PRIVATE_PREFIXES):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()


def _ref_lock(ctx: _Ctx, branch: str) -> Path:
    return ctx.git_dir / "refs" / "heads" / f"{branch}.lock"


def _set_ref(ctx: _Ctx, branch: str, new: str, old: str | None, loop: str) -> None:
    """Move ``refs/heads/<branch>`` from ``old`` (None: must not exist) to ``new``, atomically.

    A ref lock left by a killed git (older than :data:`STALE_LOCK_SECONDS`) is removed and the update
    retried; a fresh one (a git at work right now) is waited for, at most ``lock_timeout`` seconds.
    """
    if new == old:
        return
    deadline = time.monotonic() + ctx.lock_timeout
    while True:
        proc = git(
            ctx.repo, "update-ref", "-m", f"{loop} remediate", f"refs/heads/{branch}", new, old or _ZERO, check=False
        )
        if proc.returncode == 0:
            return
        lock = _ref_lock(ctx, branch)
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            age = None
        if age is None or b".lock" not in proc.stderr:
            raise GitOpsError(f"branch {branch} moved while we worked ({_first_line(proc.stderr)}); run again")
        if age > STALE_LOCK_SECONDS:
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            continue
        if time.monotonic() > deadline:
            raise GitOpsError(
                f"ref lock {lock} is held (for {age:.0f}s; waited {ctx.lock_timeout:g}s); "
                f"remove it if no git is running"
            )
        time.sleep(0.05)


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
    """A commit in the base's history whose trailers name exactly this evidence and this function.

    ``git log --grep`` on the digest only narrows the candidates; the decision is an exact match of the
    trailer values parsed by ``git interpret-trailers`` (a substring match would take a merged
    ``fraud-2`` remediation for one of ``fraud``, and a forged line in a body for a trailer).
    """
    keys = [(TRAILER_REPORT, TRAILER_FUNCTION)]
    if change.loop in _LEGACY_TRAILERS:
        keys.append(_LEGACY_TRAILERS[change.loop])
    want_function = f"{ctx.stack}/{ctx.function}"
    proc = git(
        ctx.repo, "log", "-z", "--format=%H%n%B", "--fixed-strings", f"--grep={change.evidence_digest}",
        base_commit, check=False,
    )  # fmt: skip
    for entry in proc.stdout.decode("utf-8", "replace").split("\0"):
        sha, _, message = entry.strip("\n").partition("\n")
        if not sha:
            continue
        trailers = [(k.lower(), v) for k, v in read_trailers(ctx.repo, message)]
        for report_key, function_key in keys:
            if (report_key.lower(), change.evidence_digest) in trailers and (
                function_key.lower(),
                want_function,
            ) in trailers:
                return sha
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
    git_timeout: float = GIT_TIMEOUT,
    verify: bool = True,
    read: Reader = read_function,
) -> Outcome:
    """Commit ``plan``'s change of ``Pulumi.<stack>.yaml`` on its own branch (and push it).

    ``plan`` is called with the function's parsed config (plain dicts) at the base commit, and again on
    the fetched remote version after a rejected push; ``None`` means "nothing to do". ``read`` turns
    the stack file's text into what ``plan`` is given, when a loop needs more than the function's own
    config (:func:`gitops.configedit.read_function_and_defaults`). Every git call
    that can wait (network, hooks) is bounded by ``git_timeout`` seconds. With ``verify`` the
    repository's ``pre-commit`` and ``commit-msg`` hooks run as ``git commit`` would run them
    (``verify=False`` is ``git commit --no-verify``). Raises :class:`RefusedError` for bad input or
    repository state (exit 2) and :class:`GitOpsError` when Git fails (lock timeout, push rejected
    ``retries + 1`` times or refused by the remote, unreachable remote, a timeout; exit 3).
    """
    say = log or (lambda msg: print(msg, file=sys.stderr))
    try:
        file_name = stack_file_name(stack)
    except ConfigEditError as exc:
        raise RefusedError(str(exc)) from None
    if not _FUNCTION_RE.fullmatch(function):
        raise RefusedError(f"--function: invalid function name {one_line(function)!r}")
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
        _clean_leftovers(git_dir)
        ctx = _Ctx(top_dir, git_dir, path, stack, function, plan, validate, git_timeout, verify, lock_timeout, read)
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
    elif base.startswith("-") or not base.strip():
        raise RefusedError(f"--base: {one_line(base)!r} is not a branch or commit")
    if push is not None:
        push = check_remote(repo, push)
    # --no-optional-locks (also GIT_OPTIONAL_LOCKS=0): status must not refresh and rewrite .git/index.
    dirty = _out(git(repo, "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"))
    if dirty:
        n = len(dirty.splitlines())
        raise RefusedError(f"working tree has uncommitted changes to {n} tracked file(s): commit or stash them first")
    base_commit = _rev(repo, base)
    if base_commit is None:
        raise RefusedError(f"--base: {one_line(base)!r} is not a commit in this repository")
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
        fn = ctx.read(text, ctx.function, path)
    except ConfigEditError as exc:
        raise RefusedError(str(exc)) from None
    first = ctx.plan(fn)
    if first is not None and not _DIGEST_RE.fullmatch(first.evidence_digest):
        raise ValueError(f"evidence digest {first.evidence_digest!r} cannot be a trailer value")
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
    t = ctx.git_timeout
    remote_tip = _fetch_branch(repo, push, branch, t) if push else None
    start = _pick_start(repo, branch, base_commit, local, remote_tip, push)
    commit, made, _ = _commit_onto(ctx, start)
    _set_ref(ctx, branch, commit, local, change.loop)
    outcome.commit, outcome.created_commit = commit, made

    if push:
        attempt = 0
        while remote_tip != commit:
            refspec = f"refs/heads/{branch}:refs/heads/{branch}"
            proc = git(repo, "push", "--porcelain", "--", push, refspec, check=False, timeout=t)
            if proc.returncode == 0:
                outcome.pushed = True
                break
            kind, detail = classify_push_failure(proc.stdout, proc.stderr)
            if kind == "permanent":
                raise GitOpsError(f"push of {branch} to {push} refused by the remote (not retried): {detail}")
            if kind != "race":
                raise GitOpsError(f"push to {push} failed: {detail}")
            attempt += 1
            if attempt > retries:
                raise GitOpsError(f"push of {branch} to {push} rejected {attempt} times ({detail}); run again later")
            say(f"push rejected (attempt {attempt}: {detail}); fetching {branch} and re-applying")
            time.sleep(min(0.2 * 2**attempt, 5.0))
            remote_tip = _fetch_branch(repo, push, branch, t)
            prev = commit
            commit, made, _ = _commit_onto(ctx, remote_tip or base_commit)
            # Our unpublished commit is replaced by the same change re-applied onto what the remote has;
            # nothing published is discarded, and the remote only ever sees fast-forwards.
            _set_ref(ctx, branch, commit, prev, change.loop)
            outcome.commit = commit
            outcome.created_commit = made
    if not outcome.created_commit:
        outcome.note = f"branch {branch} already carries this change"
    return outcome


def classify_push_failure(stdout: bytes, stderr: bytes) -> tuple[str, str]:
    """``("race" | "permanent" | "error", detail)`` of a failed ``git push --porcelain``.

    A race (non-fast-forward, a ref lock or update failure on the remote) is worth a re-fetch and a
    retry; ``[remote rejected]`` for any other reason (a pre-receive or update hook, branch protection)
    is the remote's policy and repeats on every try, so it is reported with the remote's own message.
    """
    out = stdout.decode("utf-8", "replace")
    err = stderr.decode("utf-8", "replace")
    status = [ln for ln in out.splitlines() if ln.startswith("!")]
    remote_msg = " | ".join(
        one_line(ln[len("remote:") :]) for ln in err.splitlines() if ln.startswith("remote:") and ln[7:].strip()
    )[:500]
    reason = ""
    for ln in status:
        reason = one_line(ln.split("\t")[-1])
    if any("[remote rejected]" in ln for ln in status) and not _RACE.search(
        " ".join(status).replace("[remote rejected]", "")
    ):
        detail = reason + (f"; remote said: {remote_msg}" if remote_msg else "")
        return "permanent", detail
    if (status and _RACE.search(" ".join(status))) or (not status and _RACE.search(err)):
        return "race", reason or _first_line(stderr)
    return "error", (reason + "; " if reason else "") + (remote_msg or _first_line(stderr or stdout))


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
    proc = git(repo, "remote", "get-url", "--", remote, check=False)
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
    title = one_line(outcome.title)
    manual = f"gh pr create --base {outcome.base} --head {outcome.branch} --title '{title}'"
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
        # --opt=value: no value can be read as an option
        [gh, "pr", "list", f"--head={outcome.branch}", "--state=open", "--json=url", "--jq=.[0].url"],
        cwd=repo_dir, capture_output=True, text=True, check=False, timeout=GIT_TIMEOUT,
    )  # fmt: skip
    if existing.returncode == 0 and existing.stdout.strip():
        say(f"pull request already open: {existing.stdout.strip()}")
        return EXIT_OK
    with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False, encoding="utf-8") as fh:
        fh.write(outcome.pr_body)
        body_file = fh.name
    try:
        proc = subprocess.run(
            [gh, "pr", "create", f"--base={outcome.base}", f"--head={outcome.branch}",
             f"--title={title}", f"--body-file={body_file}"],
            cwd=repo_dir, capture_output=True, text=True, check=False, timeout=GIT_TIMEOUT,
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
