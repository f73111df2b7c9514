"""Command line of the drift loop: ``python -m drift check`` (and ``remediate`` when installed).

``check`` compares a current window of inference logs with a reference and writes a report::

    python -m drift check --reference REF --current CUR [--format json|markdown] [--out FILE]
    python -m drift check --capture URI (--since T --until T | --window 24h) [--reference REF]
        [--labels URI] [--compare-variants]     # a captured window: drift.capture_cli

Exit codes (:mod:`inferops.exitcodes`): 0 no drift, 1 drift found, 2 bad input or usage, 3 an
internal error (never 1). Every error is one line on stderr, ``drift: error: <file or field>: <what>``,
and no output file is left half-written.

Inputs larger than ``--memory-budget`` (or with ``--chunked``) are streamed in chunks into binned
sketches (:mod:`drift.sketch`); KS is then computed on binned CDFs, whose error bound is reported per
feature (``error_bound``) and documented in ``docs/drift.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from drift import readers
from drift.readers import DataError, Source, one_line
from inferops.exitcodes import EXIT_BAD_INPUT, EXIT_FINDING, EXIT_OK, run_guarded
from inferops.safeload import LoadError

EXIT_DRIFT = EXIT_FINDING
EXIT_USAGE = EXIT_BAD_INPUT


class UsageError(Exception):
    """A usage error (bad option value); printed as one line and exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``drift: error: <message>`` and exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"drift: error: {one_line(message)} (see --help)\n")
        raise SystemExit(EXIT_USAGE)


def _csv_list(text: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list of column names")
    return items


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def default_memory_budget() -> int:
    """A quarter of physical memory: inputs above it are streamed in chunks."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return 2 << 30


def add_check_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``check`` subcommand."""
    p = subparsers.add_parser(
        "check",
        help="compare a current window with a reference and report drift",
        description="Compare current inference logs with a reference. Exit 0: no drift, 1: drift, "
        "2: bad input or usage, 3: internal error.",
    )
    p.add_argument(
        "--reference",
        metavar="REF",
        help="reference (baseline) logs: .jsonl, .csv or .parquet; local path or s3://, gs://, az:// "
        "(with --capture: optional, default model.referenceUri of --stack/--function)",
    )
    p.add_argument("--current", metavar="CUR", help="current window, same formats as --reference (or --capture)")
    p.add_argument("--format", choices=("json", "markdown"), default="json", help="report format (default json)")
    p.add_argument("--out", metavar="FILE", help="write the report here (atomically) instead of stdout")
    p.add_argument(
        "--config",
        metavar="OVERRIDES",
        help="YAML or JSON file of detection overrides (tests, thresholds, per-feature settings)",
    )
    p.add_argument("--plots", metavar="DIR", help="write one PNG per drifted feature into DIR")
    p.add_argument(
        "--columns",
        type=_csv_list,
        metavar="A,B,...",
        help="feature columns to compare (default: every column but timestamp, model_id and model_version)",
    )
    p.add_argument(
        "--categorical",
        type=_csv_list,
        default=[],
        metavar="A,B,...",
        help="treat these numeric-looking columns (codes, ids) as categorical",
    )
    p.add_argument(
        "--input-format",
        choices=("jsonl", "csv", "parquet"),
        help="format of both inputs (default: from the file suffix)",
    )
    p.add_argument(
        "--chunked", action="store_true", help="stream the inputs in chunks into binned sketches (bounded memory)"
    )
    p.add_argument(
        "--chunk-rows",
        type=_positive_int,
        default=readers.DEFAULT_BATCH_ROWS,
        metavar="N",
        help=f"rows per chunk when streaming (default {readers.DEFAULT_BATCH_ROWS})",
    )
    p.add_argument(
        "--memory-budget",
        type=_positive_int,
        metavar="MB",
        help="stream in chunks when the inputs' estimated size exceeds this many MiB "
        "(default: a quarter of physical memory)",
    )
    p.add_argument(
        "--engine",
        choices=("local", "spark"),
        default="local",
        help="local: this process (default); spark: summaries computed by Spark, read through it "
        "(directories, globs, the cluster's URIs; docs/drift-spark.md)",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: only when stderr is a terminal)",
    )
    from drift.capture_cli import add_capture_arguments

    add_capture_arguments(p)  # --capture URI --since/--until/--window, --labels, --compare-variants
    p.set_defaults(handler=run_check)
    return p


def build_parser(with_remediate: bool = True) -> argparse.ArgumentParser:
    """The ``drift`` argument parser with its subcommands.

    ``with_remediate=False`` leaves out ``remediate``, whose Git and YAML imports cost start-up time
    that ``check`` does not need.
    """
    parser = _Parser(prog="drift", description="Drift detection and remediation for inferops.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    add_check_parser(subparsers)
    from drift.window_size import add_window_parsers

    add_window_parsers(subparsers)  # window-size, stage-window (the workflow's engine choice)
    if not with_remediate:
        return parser
    try:
        # The remediate subcommand lives in its own module (GitOps write-back).
        from drift.remediate_cli import add_remediate_parser, run_remediate
    except ModuleNotFoundError as exc:
        if exc.name != "drift.remediate_cli":
            raise
    else:
        add_remediate_parser(subparsers).set_defaults(handler=run_remediate)
    return parser


@contextmanager
def _progress(enabled: bool, label: str, total: int | None):
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(total=total, desc=label, unit="rows", unit_scale=True, file=sys.stderr, leave=False)
    try:
        yield bar.update
    finally:
        bar.close()


def _parquet_rows(src: Source) -> int | None:
    return readers.parquet_rows(src) if src.fmt == "parquet" else None


def _read(src: Source, plan: readers.ColumnPlan, args: argparse.Namespace, progress: bool) -> readers.Dataset:
    with _progress(progress, f"reading {os.path.basename(src.path)}", _parquet_rows(src) if progress else None) as tick:
        return readers.read_dataset(src, plan, batch_rows=args.chunk_rows, on_rows=tick, categorical_arrow=True)


def _detect_in_memory(
    ref_src: Source, cur_src: Source, plan: readers.ColumnPlan, config: Any, args: argparse.Namespace, progress: bool
) -> tuple[Any, dict[str, Any]]:
    from drift.detect import detect

    if not progress and all(s.fmt == "parquet" and readers._is_local(s.fs) for s in (ref_src, cur_src)):
        # Local Parquet: detect() reads each column when its test runs and drops it after, in its
        # thread pool, so decoding overlaps with sorting and memory holds a few columns, not the files.
        ref_cols = readers.ParquetColumns(ref_src, plan)
        cur_cols = readers.ParquetColumns(cur_src, plan)
        # The reference's chunks (performance thresholds) are cut in its time order too, as on Spark.
        report = detect(
            ref_cols,
            cur_cols,
            kinds=plan.kinds,
            config=config,
            timestamps=cur_cols.timestamps(),
            reference_timestamps=ref_cols.timestamps(),
        )
        report.n_reference, report.n_current = ref_cols.n_rows, cur_cols.n_rows
        return report, {"reference": ref_cols, "current": cur_cols}  # plots read their columns again
    ref = _read(ref_src, plan, args, progress)
    cur = _read(cur_src, plan, args, progress)
    report = detect(
        ref.features,
        cur.features,
        kinds=plan.kinds,
        config=config,
        timestamps=cur.timestamps,
        reference_timestamps=ref.timestamps,
    )
    # detect() counts rows from the arrays it saw; the files' row counts include rows whose values were
    # null in some column, which is what a reader of the report expects.
    report.n_reference, report.n_current = ref.n_rows, cur.n_rows
    return report, {"reference": ref.features, "current": cur.features}


def _detect_chunked(
    ref_src: Source, cur_src: Source, plan: readers.ColumnPlan, config: Any, args: argparse.Namespace, progress: bool
) -> tuple[Any, dict[str, Any]]:
    """Stream both files once into binned sketches; memory is bounded by the chunk size.

    Numeric bin edges are the quantiles of the reference's first chunk (``--chunk-rows`` rows), so a
    reference whose first rows are unrepresentative gets coarser bins; the error bound of each binned
    statistic is in the report (``error_bound``). Performance and change points need paired per-record
    data and are not computed in this mode.
    """
    from drift.sketch import CategoricalCounts, NumericSketch, detect_from_sketches

    def stream(src: Source, sketches: dict[str, Any]) -> int:
        rows = 0
        total = _parquet_rows(src) if progress else None
        with _progress(progress, f"reading {os.path.basename(src.path)}", total) as tick:
            for chunk in readers.iter_chunks(
                src, plan, batch_rows=args.chunk_rows, on_rows=tick, categorical_arrow=True
            ):
                rows += chunk.rows
                for name, values in chunk.features.items():
                    if name not in sketches:
                        if plan.kinds[name] == "numeric":
                            if len(values) == 0:
                                continue  # wait for a chunk with values to place the bin edges
                            sketches[name] = NumericSketch.from_reference(values)
                        else:
                            sketches[name] = CategoricalCounts()
                    sketches[name].update(values)
        return rows

    ref: dict[str, Any] = {}
    n_ref = stream(ref_src, ref)
    readers.check_not_null(ref_src.uri, {name: ref[name].n if name in ref else 0 for name in plan.features}, n_ref)
    cur: dict[str, Any] = {
        name: s.empty_like() if isinstance(s, NumericSketch) else CategoricalCounts() for name, s in ref.items()
    }
    n_cur = stream(cur_src, cur)
    readers.check_not_null(cur_src.uri, {name: cur[name].n for name in plan.features}, n_cur)
    report = detect_from_sketches(ref, cur, config=config, n_rows=(n_ref, n_cur), columns=plan.features)
    report.n_reference, report.n_current = n_ref, n_cur
    return report, {"binned": {name: _plot_bins(ref[name], cur[name]) for name in ref}}


def _plot_bins(ref: Any, cur: Any, groups: int = 50) -> tuple[Any, Any, Any]:
    """Sketch counts merged into about ``groups`` bins for a plot (edges None for categorical)."""
    import numpy as np

    if not hasattr(ref, "edges"):
        return None, ref.counts, cur.counts
    lo, hi = min(ref.min, cur.min), max(ref.max, cur.max)
    bounds = np.concatenate(([lo], np.clip(ref.edges, lo, hi), [hi]))
    step = max(1, -(-ref.counts.size // groups))
    starts = np.arange(0, ref.counts.size, step)
    edges = np.concatenate((bounds[starts], [bounds[-1]]))
    return edges, np.add.reduceat(ref.counts, starts), np.add.reduceat(cur.counts, starts)


def run_check(args: argparse.Namespace) -> int:
    """Run ``drift check``; returns the exit code."""
    if getattr(args, "capture", None):
        from drift import capture_cli

        return capture_cli.run(args, run_check)  # reads the window, then comes back here with files
    if not args.reference or not args.current:
        raise UsageError("--reference and --current are required (or --capture URI with a window)")
    config = None
    if args.config:
        from drift.detect import load_detect_config

        try:
            config = load_detect_config(args.config)
        except FileNotFoundError:
            raise UsageError(f"{args.config}: no such file") from None
        except (ValueError, OSError) as exc:
            message = one_line(exc)
            raise UsageError(message if args.config in message else f"{args.config}: {message}") from None

    if getattr(args, "engine", "local") == "spark":
        from drift.spark import run_spark_check

        report, data = run_spark_check(args, config)
    else:
        report, data = _detect_local(args, config)
    return _finish(args, report, data)


def _detect_local(args: argparse.Namespace, config: Any) -> tuple[Any, dict[str, Any]]:
    """The local engine: read with pyarrow, in memory or in chunks."""
    ref_src = Source.open(args.reference, args.input_format)
    cur_src = Source.open(args.current, args.input_format)
    # Kinds forced in the config file decide how the columns are decoded, like --categorical.
    categorical = list(args.categorical) + [
        name for name, override in getattr(config, "features", {}).items() if override.kind == "categorical"
    ]
    plan = readers.plan_columns(
        readers.read_schema(ref_src), ref_src.uri, columns=args.columns, categorical=categorical
    )
    progress = sys.stderr.isatty() if args.progress is None else bool(args.progress)
    budget = (args.memory_budget << 20) if args.memory_budget else default_memory_budget()
    chunked = args.chunked or (ref_src.in_memory_bytes() + cur_src.in_memory_bytes() > budget)
    runner: Callable[..., tuple[Any, dict[str, Any]]] = _detect_chunked if chunked else _detect_in_memory
    return runner(ref_src, cur_src, plan, config, args, progress)


def _finish(args: argparse.Namespace, report: Any, data: dict[str, Any]) -> int:
    """Plots, the report in its format, the exit code."""
    from drift.render import atomic_write_text, render_json, render_markdown, write_plots

    plots: dict[str, str] = {}
    if args.plots:
        try:
            written = write_plots(
                report,
                args.plots,
                reference=data.get("reference"),
                current=data.get("current"),
                binned=data.get("binned"),
            )
        except OSError as exc:
            raise UsageError(f"{args.plots}: cannot write plots: {one_line(exc)}") from None
        plots = {
            name: os.path.relpath(path, os.path.dirname(os.path.abspath(args.out))) if args.out else str(path)
            for name, path in written.items()
        }

    extra = getattr(args, "report_extra", None)  # the capture summary of a --capture check
    if args.format == "markdown":
        ref_name = getattr(args, "display_reference", None) or args.reference
        cur_name = getattr(args, "display_current", None) or args.current
        text = render_markdown(report, reference=ref_name, current=cur_name, plots=plots)
        if extra:
            from drift.capture_cli import markdown_section

            text += markdown_section(extra)
    else:
        text = render_json({**report.to_dict(), **extra} if extra else report)
    if args.out:
        try:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(args.out, text)
        except OSError as exc:
            raise UsageError(f"{args.out}: cannot write: {one_line(exc)}") from None
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return EXIT_DRIFT if report.drifted else EXIT_OK


def _run(argv: list[str]) -> int:
    parser = build_parser(with_remediate=not argv or argv[0] != "check")
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except (DataError, UsageError, LoadError) as exc:
        sys.stderr.write(f"drift: error: {one_line(exc)}\n")
        return EXIT_USAGE
    except ValueError as exc:
        from drift.detect import ConfigMismatchError  # loaded already whenever detection ran

        if not isinstance(exc, ConfigMismatchError):
            raise  # a bug: run_guarded makes it exit 3
        sys.stderr.write(f"drift: error: {one_line(exc)}\n")
        return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m drift`` (``check`` and ``remediate``); returns the process exit code.

    An exception nothing expected (a bug, a failing environment) is exit 3 with one line
    (:func:`inferops.exitcodes.run_guarded`), never 1, which the workflow reads as "drift found".
    """
    args = list(sys.argv[1:] if argv is None else argv)
    return run_guarded("drift", lambda: _run(args))
