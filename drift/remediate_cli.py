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
from gitops.cli import add_writeback_arguments, finish_writeback
from gitops.writeback import GitOpsError
from inferops.exitcodes import EXIT_BAD_INPUT, run_guarded


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from None


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
    p.add_argument("--date", type=_iso_date, metavar="YYYY-MM-DD", help="retraining request date (default today, UTC)")
    add_writeback_arguments(p)
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
    return finish_writeback(args, outcome.outcome, outcome.to_json(), say)


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry (``python -m drift.remediate_cli``) for when ``drift.cli`` is not at hand.

    Guarded like ``python -m drift``: an unexpected exception is exit 3 with one line, never 1.
    """
    return run_guarded("drift", lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
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
