"""``python -m finops remediate``: a report's proposals for one function become a reviewed Git change.

::

    python -m finops remediate --stack STACK --function NAME --report REPORT.json
        [--repo DIR] [--base BRANCH] [--push REMOTE] [--open-pr] [--json]

Built on :func:`gitops.writeback.write_back` with the guarantees of drift remediation: round-trip
bytes, validation with the program's spec, atomic replace, deterministic branch
``finops/<stack>/<function>-<hash>``, no commit when the bytes do not change, bounded retry, never a
force push. Prints the branch on stdout (nothing when there is no change). Exit codes: 0 done or no
change; 2 bad input or a repository we must not touch; Git failures exit with
:attr:`gitops.writeback.GitOpsError.exit_code`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from finops.decide import ReportError, load_report, plan_change
from gitops.writeback import GitOpsError, open_pull_request, outcome_json, write_back
from inferops.exitcodes import EXIT_BAD_INPUT, EXIT_OK


def _retries(text: str) -> int:
    if not text.isdigit() or int(text) > 20:
        raise argparse.ArgumentTypeError(f"expected an integer 0-20, got {text!r}")
    return int(text)


def add_remediate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``remediate`` on the ``finops`` subparsers."""
    p = subparsers.add_parser(
        "remediate",
        help="apply a report's proposals for one function and commit them on a finops/ branch",
        description="Apply the rightsizing and estimate proposals of a finops report to Pulumi.STACK.yaml and "
        "commit them on finops/<stack>/<function>-<hash>. Exit 0: done or no change; 2: bad input.",
    )
    p.add_argument("--stack", required=True, help="stack name: edits Pulumi.STACK.yaml in --repo")
    p.add_argument("--function", required=True, metavar="NAME", help="function name in inferops:functions")
    p.add_argument("--report", required=True, metavar="REPORT.json", help="JSON report of `finops report`")
    p.add_argument("--repo", default=".", metavar="DIR", help="the Pulumi project directory (default .)")
    p.add_argument("--base", metavar="BRANCH", help="branch to start from (default: the checked-out branch)")
    p.add_argument("--push", metavar="REMOTE", help="push the branch to REMOTE (retries on rejection, never forces)")
    p.add_argument("--open-pr", action="store_true", help="open a pull request with the GitHub CLI (gh)")
    p.add_argument("--retries", type=_retries, default=3, help="push retries after a rejection (default 3)")
    p.add_argument("--lock-timeout", type=float, default=120.0, metavar="SECONDS",
                   help="wait this long for another run on the same repository (default 120)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of the branch name")
    return p


def run_remediate(args: argparse.Namespace) -> int:
    """Run the subcommand; errors are one line on stderr."""

    def say(msg: str) -> None:
        print(f"finops: {msg}", file=sys.stderr)

    try:
        report = load_report(args.report)
        if report.stack != args.stack:
            raise ReportError(f"{args.report}: stack: the report is for {report.stack!r}, not {args.stack!r}")
        if args.function not in report.functions:
            raise ReportError(f"{args.report}: functions: no entry for {args.function!r}")
    except ReportError as exc:
        sys.stderr.write(f"finops: error: {' '.join(str(exc).split())}\n")
        return EXIT_BAD_INPUT
    try:
        outcome = write_back(
            args.repo, args.stack, args.function,
            lambda fn: plan_change(report, args.stack, args.function, fn),
            base=args.base, push=args.push, retries=args.retries, lock_timeout=args.lock_timeout, log=say,
        )  # fmt: skip
    except ReportError as exc:
        sys.stderr.write(f"finops: error: {' '.join(str(exc).split())}\n")
        return EXIT_BAD_INPUT
    except GitOpsError as exc:
        sys.stderr.write(f"finops: error: {' '.join(str(exc).split())}\n")
        return exc.exit_code
    if outcome.note:
        say(outcome.note)
    if outcome.branch and outcome.created_commit:
        pushed = f", pushed to {args.push}" if outcome.pushed else ""
        say(f"committed {outcome.commit[:12] if outcome.commit else ''} on {outcome.branch}{pushed}")
    if args.json:
        print(outcome_json(outcome, report=report.digest))
    elif outcome.branch:
        print(outcome.branch)
    if args.open_pr:
        return open_pull_request(args.repo, outcome, args.push, say)
    return EXIT_OK
