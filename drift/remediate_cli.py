"""``python -m drift remediate``: turn a drift report into a reviewed change of the stack config.

::

    python -m drift remediate --stack STACK --function NAME --report REPORT.json
        [--repo DIR] [--base BRANCH] [--push REMOTE] [--open-pr] [--date YYYY-MM-DD]

Prints the branch that carries the change on stdout (nothing when there is no change). Exit codes:
0 done (including "no change"); 2 bad input or a repository we must not touch (dirty tree, detached HEAD
without --base, missing stack file, invalid report, edited config failing validation, a hook refusing
the commit); 3 Git failed (lock timeout, push rejected after the retries or refused by the remote,
unreachable remote, a git call timing out, gh failed). Never 1: remediation has no finding, and
workflows read 1 as one.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from typing import Any

from drift.remediate import remediate
from gitops.writeback import GIT_TIMEOUT, GitOpsError, open_pull_request
from inferops.exitcodes import EXIT_BAD_INPUT, EXIT_OK


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from None


def _retries(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 20:
        raise argparse.ArgumentTypeError(f"expected an integer 0-20, got {text!r}")
    return value


def add_remediate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``remediate`` subcommand on an argparse subparsers object and return its parser."""
    p = subparsers.add_parser(
        "remediate",
        help="apply the remediation policy to a stack file and commit it on a drift/ branch",
        description="Apply the function's remediation policy to Pulumi.STACK.yaml for a drift report and "
        "commit the change on drift/<stack>/<function>-<hash>. Exit 0: done or no change; "
        "2: bad input or repository state; 3: Git failed (never 1).",
    )
    p.add_argument("--stack", required=True, help="stack name: edits Pulumi.STACK.yaml in --repo")
    p.add_argument("--function", required=True, metavar="NAME", help="function name in inferops:functions")
    p.add_argument("--report", required=True, metavar="REPORT.json", help="JSON report of `drift check`")
    p.add_argument("--repo", default=".", metavar="DIR", help="the Pulumi project directory (default .)")
    p.add_argument("--base", metavar="BRANCH", help="branch to start from (default: the checked-out branch)")
    p.add_argument("--push", metavar="REMOTE", help="push the branch to REMOTE (retries on rejection, never forces)")
    p.add_argument("--open-pr", action="store_true", help="open a pull request with the GitHub CLI (gh)")
    p.add_argument("--date", type=_iso_date, metavar="YYYY-MM-DD", help="retraining request date (default today, UTC)")
    p.add_argument("--retries", type=_retries, default=3, help="push retries after a rejection (default 3)")
    p.add_argument(
        "--lock-timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="wait this long for another run on the same repository (default 120)",
    )
    p.add_argument(
        "--git-timeout",
        type=float,
        default=GIT_TIMEOUT,
        metavar="SECONDS",
        help=f"bound on every git call that can wait: network and hooks (default {GIT_TIMEOUT:g})",
    )
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="do not run the repository's pre-commit and commit-msg hooks (like git commit --no-verify)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of the branch name")
    return p


def run_remediate(args: argparse.Namespace) -> int:
    """Run the subcommand; returns the exit code. Errors are one line on stderr."""

    def say(msg: str) -> None:
        print(f"drift: {msg}", file=sys.stderr)

    try:
        outcome = remediate(
            args.repo, args.stack, args.function, args.report,
            base=args.base, push=args.push, today=args.date, retries=args.retries,
            lock_timeout=args.lock_timeout, log=say, git_timeout=args.git_timeout, verify=not args.no_verify,
        )  # fmt: skip
    except GitOpsError as exc:
        sys.stderr.write(f"drift: error: {' '.join(str(exc).split())}\n")
        return exc.exit_code
    if outcome.note:
        say(outcome.note)
    if outcome.branch and outcome.created_commit:
        pushed = f", pushed to {args.push}" if outcome.pushed else ""
        say(f"committed {outcome.commit[:12] if outcome.commit else ''} on {outcome.branch}{pushed}")
    if args.json:
        print(outcome.to_json())
    elif outcome.branch:
        print(outcome.branch)
    if args.open_pr:
        return open_pull_request(args.repo, outcome.outcome, args.push, say)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry (``python -m drift.remediate_cli``) for when ``drift.cli`` is not at hand."""
    parser = argparse.ArgumentParser(prog="drift")
    sub = parser.add_subparsers(dest="command", required=True)
    add_remediate_parser(sub)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) and EXIT_BAD_INPUT
    return run_remediate(args)


if __name__ == "__main__":
    sys.exit(main())
