"""Command line of the FinOps loop (``python -m finops``).

::

    python -m finops report --stack STACK --focus URI... [--capture [NAME=]URI...] [--opencost URI...]
        [--repo DIR] [--plan PLAN.json] [--format json|markdown] [--out FILE] [--as-of YYYY-MM-DD]
    python -m finops remediate --stack STACK --function NAME --report REPORT.json [--repo DIR]
        [--push REMOTE] [--open-pr]

``report`` exits 0 when nothing needs attention, 1 on a mandatory finding (a forecast over budget, an
anomaly in the last ``--anomaly-lookback`` days, and with ``--proposals-are-findings`` a proposed config
change), 2 on bad input with one line naming the file and the column or field, 3 on an internal error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from inferops.exitcodes import EXIT_BAD_INPUT, EXIT_FINDING, EXIT_OK, run_guarded

PROG = "finops"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{PROG}: error: {' '.join(message.split())} (see --help)\n")
        raise SystemExit(EXIT_BAD_INPUT)


def _date(text: str) -> np.datetime64:
    try:
        return np.datetime64(text, "D")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from None


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1000:
        raise argparse.ArgumentTypeError(f"expected a percentage above 0, got {text!r}")
    return value / 100.0


def _lookback(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 31:
        raise argparse.ArgumentTypeError(f"expected 1-31 days, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """The ``finops`` argument parser."""
    parser = _Parser(prog=PROG, description="FinOps loop: billing actuals per function, anomalies, rightsizing.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("report", help="actuals vs budget and plan, anomalies and proposals for one stack")
    r.add_argument("--stack", required=True, help="stack name: reads Pulumi.STACK.yaml in --repo")
    r.add_argument("--focus", required=True, nargs="+", action="extend", metavar="URI",
                   help="FOCUS exports: files, dirs, globs (CSV, CSV.gz, Parquet; local or s3, gs, az)")  # fmt: skip
    r.add_argument("--capture", nargs="+", action="extend", default=[], metavar="[NAME=]URI",
                   help="capture records (JSONL, CSV, Parquet); NAME= binds a file to one function")  # fmt: skip
    r.add_argument("--opencost", nargs="+", action="extend", default=[], metavar="URI",
                   help="OpenCost /allocation responses (JSON, step=1d) for Kubernetes functions")  # fmt: skip
    r.add_argument("--repo", default=".", metavar="DIR", help="the Pulumi project directory (default .)")
    r.add_argument("--plan", metavar="PLAN.json", help="an `inferops plan --format json` to compare with "
                   "(default: run the program offline for the stack)")  # fmt: skip
    r.add_argument("--format", choices=("json", "markdown"), default="json")
    r.add_argument("--out", metavar="FILE", help="write the report here (atomically) instead of stdout")
    r.add_argument("--as-of", type=_date, metavar="YYYY-MM-DD", help="last day of data to use (default: the latest)")
    r.add_argument("--anomaly-lookback", type=_lookback, default=3, metavar="DAYS",
                   help="anomalies this recent are findings (default 3 days)")  # fmt: skip
    r.add_argument("--estimate-threshold", type=_percent, default=0.25, metavar="PERCENT",
                   help="propose new finops estimates when actuals differ by more (default 25)")  # fmt: skip
    r.add_argument("--proposals-are-findings", action="store_true",
                   help="exit 1 when a rightsizing or estimate change is proposed (the workflow)")  # fmt: skip
    try:
        from finops.remediate import add_remediate_parser
    except ImportError:  # gitops not present: remediate is unavailable, report still works
        pass
    else:
        add_remediate_parser(sub)
    return parser


def _plan_estimates(args: argparse.Namespace, stack_file: Path, config: Any, stack: Any) -> tuple[dict[str, Any], str]:
    from finops.report import plan_estimates_from_file

    if args.plan:
        path = Path(args.plan)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: cannot read the plan: {' '.join(str(exc).split())}") from None
        return plan_estimates_from_file(path, data), str(path)
    from inferops import costs
    from inferops.harness import run_program

    run = run_program(stack_file, config=config, stack=args.stack)
    estimates = costs.estimate_functions(run, stack)
    return {name: e.monthly_usd for name, e in estimates.functions.items()}, "program"


def run_report(args: argparse.Namespace) -> int:
    """``finops report``."""
    from components.spec import SpecError, parse_stack_config
    from drift.readers import DataError
    from finops.focus import read_focus
    from finops.pricing import pricing_module
    from finops.report import Options, build_report, render_markdown
    from finops.rightsizing import pack_pricer
    from finops.usage import read_capture, read_opencost
    from inferops.atomic import write_atomic
    from inferops.harness import ProgramError, StackFileError, load_stack_file

    stack_file = Path(args.repo) / f"Pulumi.{args.stack}.yaml"
    try:
        config = load_stack_file(stack_file)
        try:
            stack = parse_stack_config(config)
        except SpecError as exc:
            raise ValueError(f"{stack_file}: {exc}") from None
        raw_functions = config.get("inferops:functions") or []
        sample = {
            str(f.get("name")): float((f.get("capture") or {}).get("samplePercent", 100))
            for f in raw_functions
            if isinstance(f, dict) and isinstance(f.get("capture"), dict)
        }
        charges = read_focus(args.focus)
        if charges.currency not in (None, "USD"):
            raise DataError(charges.files[0], f"column 'BillingCurrency': {charges.currency}; budgets are in USD")
        capture = read_capture(args.capture, {fn.name: fn.model.id for fn in stack.functions}, sample)
        allocations = read_opencost(args.opencost) if args.opencost else None
        plan, plan_source = _plan_estimates(args, stack_file, config, stack)
        node = stack.kubernetes_node_price
        report = build_report(
            args.stack,
            stack,
            charges,
            capture=capture,
            allocations=allocations,
            plan_estimates=plan,
            pricer=pack_pricer((node.vcpu_hour_usd, node.gib_hour_usd)),
            hours_per_month=float(pricing_module().load_price_table()["hours_per_month"]),
            options=Options(
                as_of=args.as_of,
                anomaly_lookback_days=args.anomaly_lookback,
                estimate_threshold=args.estimate_threshold,
                proposals_are_findings=args.proposals_are_findings,
                inputs={
                    "focus": charges.files,
                    "capture": list(args.capture),
                    "opencost": list(args.opencost),
                    "plan": plan_source,
                },
            ),
        )
    except (DataError, StackFileError, ProgramError, ValueError) as exc:
        sys.stderr.write(f"{PROG}: error: {' '.join(str(exc).split())}\n")
        return EXIT_BAD_INPUT
    text = json.dumps(report, indent=2, sort_keys=False) + "\n" if args.format == "json" else render_markdown(report)
    if args.out:
        write_atomic(Path(args.out), text, make_parents=True)
    else:
        sys.stdout.write(text)
    return EXIT_FINDING if report["summary"]["mandatory"] else EXIT_OK


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "report":
        return run_report(args)
    from finops.remediate import run_remediate

    return run_remediate(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; unexpected exceptions exit 3, never 1."""
    return run_guarded(PROG, lambda: _main(argv))
