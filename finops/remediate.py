"""``python -m finops remediate``: a report's proposals for one function become a reviewed Git change.

::

    python -m finops remediate --stack STACK --function NAME --report REPORT.json
        [--repo DIR] [--base BRANCH] [--push REMOTE] [--open-pr] [--git-timeout S] [--no-verify] [--json]

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
from gitops.cli import add_writeback_arguments, finish_writeback
from gitops.configedit import read_function_and_defaults
from gitops.writeback import GitOpsError, outcome_json, write_back
from inferops.exitcodes import EXIT_BAD_INPUT


def add_remediate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``remediate`` on the ``finops`` subparsers."""
    p = subparsers.add_parser(
        "remediate",
        help="apply a report's proposals for one function and commit them on a finops/ branch",
        description="Apply the rightsizing and estimate proposals of a finops report to Pulumi.STACK.yaml and "
        "commit them on finops/<stack>/<function>-<hash>. Exit 0: done or no change; "
        "2: bad input or repository state; 3: Git failed (never 1).",
    )
    p.add_argument("--stack", required=True, help="stack name: edits Pulumi.STACK.yaml in --repo")
    p.add_argument("--function", required=True, metavar="NAME", help="function name in inferops:functions")
    p.add_argument("--report", required=True, metavar="REPORT.json", help="JSON report of `finops report`")
    add_writeback_arguments(p)
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
            lambda view: plan_change(report, args.stack, args.function, view["function"], view["defaults"]),
            base=args.base, push=args.push, retries=args.retries, lock_timeout=args.lock_timeout, log=say,
            git_timeout=args.git_timeout, verify=not args.no_verify, read=read_function_and_defaults,
        )  # fmt: skip
    except ReportError as exc:
        sys.stderr.write(f"finops: error: {' '.join(str(exc).split())}\n")
        return EXIT_BAD_INPUT
    except GitOpsError as exc:
        sys.stderr.write(f"finops: error: {' '.join(str(exc).split())}\n")
        return exc.exit_code
    return finish_writeback(args, outcome, outcome_json(outcome, report=report.digest), say)
