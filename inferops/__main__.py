"""``python -m inferops``: the offline plan command."""

from __future__ import annotations

import argparse
import math
import sys


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage (got {text!r})") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a percentage of 0 or more (got {text!r})")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m inferops``."""
    parser = argparse.ArgumentParser(prog="inferops", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser(
        "plan",
        help="resources, monthly cost against budgets and policy verdicts for a stack, offline",
        description="Run the program under Pulumi's mocks and the policy pack over its resources, with no cloud "
        "account and no Pulumi CLI. Exit 0: no mandatory violation, 1: a mandatory violation, 2: bad input or "
        "usage, 3: internal error.",
    )
    where = plan.add_mutually_exclusive_group()
    where.add_argument("--stack", default="dev", help="stack name: reads Pulumi.<stack>.yaml (default: dev)")
    where.add_argument("--stack-file", help="path of a stack file to plan instead")
    plan.add_argument("--policy-pack-config", help="JSON file in the format of `pulumi preview --policy-pack-config`")
    plan.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    plan.add_argument("--out", help="write the plan to this file (atomically) instead of stdout")
    plan.add_argument("--compare", metavar="PREVIOUS.json", help="show cost and verdict changes against a JSON plan")
    plan.add_argument(
        "--max-capture-share",
        type=_share,
        metavar="PERCENT",
        help="warn when a function's data capture costs more than this share of its inference cost (default: 20)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (:mod:`inferops.exitcodes`, never 1 for a crash)."""
    from inferops.exitcodes import run_guarded

    def run() -> int:
        args = build_parser().parse_args(argv)
        from inferops.plan import main_plan

        return main_plan(args)

    return run_guarded("inferops", run)


if __name__ == "__main__":
    sys.exit(main())
