"""Command-line options every write-back subcommand shares (``drift remediate``, ``finops remediate``).

One definition, so both loops offer the same guarantees under the same names: the repository, the base
branch, the push remote, the pull request, bounded retries and waits, and the commit hooks.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from gitops.writeback import GIT_TIMEOUT, Outcome, open_pull_request
from inferops.exitcodes import EXIT_OK


def retries_type(text: str) -> int:
    """``--retries``: an integer 0-20 (a bound, so a rejecting remote cannot keep a run busy)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 20:
        raise argparse.ArgumentTypeError(f"expected an integer 0-20, got {text!r}")
    return value


def add_writeback_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``--repo --base --push --open-pr --retries --lock-timeout --git-timeout --no-verify --json``."""
    p.add_argument("--repo", default=".", metavar="DIR", help="the Pulumi project directory (default .)")
    p.add_argument("--base", metavar="BRANCH", help="branch to start from (default: the checked-out branch)")
    p.add_argument("--push", metavar="REMOTE", help="push the branch to REMOTE (retries on rejection, never forces)")
    p.add_argument("--open-pr", action="store_true", help="open a pull request with the GitHub CLI (gh)")
    p.add_argument("--retries", type=retries_type, default=3, help="push retries after a rejection (default 3)")
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


def finish_writeback(args: argparse.Namespace, outcome: Outcome, json_text: str, say: Callable[[str], None]) -> int:
    """What every write-back subcommand reports after :func:`gitops.writeback.write_back`; its exit code.

    The outcome's note and commit on stderr (``say``); on stdout ``json_text`` with ``--json``, else the
    branch; then the pull request with ``--open-pr`` (its exit code), otherwise 0.
    """
    if outcome.note:
        say(outcome.note)
    if outcome.branch and outcome.created_commit:
        pushed = f", pushed to {args.push}" if outcome.pushed else ""
        say(f"committed {outcome.commit[:12] if outcome.commit else ''} on {outcome.branch}{pushed}")
    if args.json:
        print(json_text)
    elif outcome.branch:
        print(outcome.branch)
    if args.open_pr:
        return open_pull_request(args.repo, outcome, args.push, say)
    return EXIT_OK
