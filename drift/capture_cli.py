"""``drift check --capture URI``: the check over a captured window (options, reference lookup, report).

::

    python -m drift check --capture URI (--since T --until T | --window 24h)
        [--reference REF | --stack STACK --function NAME [--repo DIR]]
        [--labels URI [--label-grace 7d]] [--compare-variants] [--model-version V ...]
        [the usual check options]

The window's records are read by :mod:`drift.capture` into JSON Lines files in a temporary directory
and checked by the ordinary ``check`` code; the report gains a ``capture`` object (where, which
window, how many files/records, skipped lines, duplicates, and with ``--labels`` the join counts).
Without ``--reference``, the reference is ``model.referenceUri`` of the function in
``Pulumi.<stack>.yaml``. ``--compare-variants`` takes the window's ``stable`` records as the reference
and its ``canary`` records as the current window. ``--model-version`` (repeatable) keeps only those
versions' records; where the layout has ``model_version=<v>`` partitions (AWS Firehose, the
Kubernetes writer) the other versions' partitions are not even listed.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path
from typing import Any

from drift import capture, readers
from drift.readers import DataError

_STACK_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


def add_capture_arguments(p: argparse.ArgumentParser) -> None:
    """The ``--capture`` options of ``drift check``."""
    g = p.add_argument_group("captured window (instead of --current)")
    g.add_argument("--capture", metavar="URI", help="a function's captureUri: s3://, gs://, az:// prefix or a path")
    g.add_argument("--since", metavar="T", help="window start, ISO 8601 (UTC unless an offset is given)")
    g.add_argument("--until", metavar="T", help="window end (exclusive), ISO 8601")
    g.add_argument("--window", metavar="DURATION", help="the last DURATION (24h, 7d) up to the start of this hour")
    g.add_argument("--labels", metavar="URI", help="delayed labels (request_id, label[, timestamp]) to join")
    g.add_argument(
        "--label-grace",
        default="7d",
        metavar="DURATION",
        help="a label recorded later than this after its prediction is late: counted, not used (default 7d)",
    )
    g.add_argument(
        "--compare-variants",
        action="store_true",
        help="compare the window's canary records against its stable records",
    )
    g.add_argument(
        "--model-version",
        action="append",
        metavar="V",
        help="only records of this model version (repeatable); other versions' model_version= partitions "
        "are not listed",
    )
    g.add_argument("--stack", metavar="STACK", help="find the reference in Pulumi.STACK.yaml (model.referenceUri)")
    g.add_argument("--function", metavar="NAME", help="the function of --stack whose reference to use")
    g.add_argument("--repo", default=".", metavar="DIR", help="where Pulumi.STACK.yaml lives (default .)")


def stack_reference(repo: str, stack: str, function: str) -> str:
    """``model.referenceUri`` of ``function`` in ``<repo>/Pulumi.<stack>.yaml``; DataError naming the field."""
    if not _STACK_RE.match(stack) or stack in (".", ".."):
        raise DataError("--stack", f"invalid stack name {stack!r}")
    path = Path(repo) / f"Pulumi.{stack}.yaml"
    from ruamel.yaml import YAML, YAMLError

    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(str(path), "no such file") from None
    except (OSError, YAMLError) as exc:
        raise DataError(str(path), f"cannot read: {readers.one_line(exc)}") from None
    functions = ((data or {}).get("config") or {}).get("inferops:functions")
    for fn in functions if isinstance(functions, list) else []:
        if isinstance(fn, dict) and fn.get("name") == function:
            uri = (fn.get("model") or {}).get("referenceUri")
            if not isinstance(uri, str) or not uri:
                raise DataError(str(path), f"inferops:functions[{function}].model.referenceUri: not set")
            return uri
    raise DataError(str(path), f"inferops:functions: no function named {function!r}")


def _is_prefix(uri: str) -> bool:
    """A reference without a data-file suffix is a capture location (a captured window)."""
    try:
        readers.infer_format(uri)
    except DataError:
        return True
    return False


def prepare(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Read the window into ``workdir``; point ``args.reference``/``args.current`` at the files.

    Returns the report's ``capture`` object. Raises :class:`DataError` (exit 2) for bad options, an
    unreadable location, or a window without records.
    """
    if args.current:
        raise DataError("--current", "give either --current or --capture, not both")
    window = capture.Window.resolve(args.since, args.until, args.window)
    grace = capture.parse_duration(args.label_grace, "--label-grace")
    labels = capture.read_labels(args.labels) if args.labels else None
    reference_label = args.reference
    if args.compare_variants:
        if args.reference or args.stack:
            raise DataError("--compare-variants", "the reference is the window's stable records: drop --reference")
    elif not args.reference:
        if not (args.stack and args.function):
            raise DataError("--reference", "give --reference, or --stack and --function to use model.referenceUri")
        args.reference = reference_label = stack_reference(args.repo, args.stack, args.function)

    versions = model_versions(args)
    exported = capture.export_window(
        args.capture,
        window,
        workdir,
        split_variants=args.compare_variants,
        labels=labels,
        label_grace=grace,
        versions=versions,
    )
    span = f"[{window.since:%Y-%m-%dT%H:%M:%SZ}, {window.until:%Y-%m-%dT%H:%M:%SZ})"
    sides = ("canary", "stable") if args.compare_variants else ("current",)
    for side in sides:
        if exported.rows[side] == 0:
            what = f"{side} records" if args.compare_variants else "capture records"
            found = f"{exported.stats.files} file(s), {exported.stats.records_read} record(s) read"
            if versions is not None:
                what += f" of model version(s) {', '.join(sorted(versions))}"
            raise DataError(args.capture, f"no {what} in {span} ({found})")
    if args.compare_variants:
        args.reference = str(exported.paths["stable"])
        args.current = str(exported.paths["canary"])
        reference_label = f"{args.capture} (stable)"
    else:
        if _is_prefix(args.reference):
            # A captured window of the stable version, exported under its own prefix: read it whole.
            ref = capture.export_window(args.reference, None, workdir / "reference")
            if ref.rows["current"] == 0:
                raise DataError(args.reference, "no capture records")
            args.reference = str(ref.paths["current"])
        args.current = str(exported.paths["current"])
    _align_columns(args)
    stats = exported.stats
    summary: dict[str, Any] = {
        "uri": args.capture,
        "since": f"{window.since:%Y-%m-%dT%H:%M:%SZ}",
        "until": f"{window.until:%Y-%m-%dT%H:%M:%SZ}",
        "files": stats.files,
        "records": stats.in_window,
        "records_outside_window": stats.out_of_window,
        "skipped_lines": stats.skipped_lines,
        "duplicates": stats.duplicates,
        "layouts": dict(sorted(stats.layouts.items())),
    }
    if stats.error_objects:
        # Firehose's error prefixes hold records it could not process or partition: lost to this check.
        summary["error_objects"] = stats.error_objects
    if versions is not None:
        summary["model_versions"] = sorted(versions)
        summary["records_of_other_versions"] = stats.other_versions
        summary["partitions_pruned"] = stats.partitions_pruned
    if args.compare_variants:
        summary["variants"] = {"stable": exported.rows["stable"], "canary": exported.rows["canary"]}
    if labels is not None:
        summary["labels"] = labels.summary(grace)
    args.display_reference = reference_label
    args.display_current = f"{args.capture} {span}"
    return {"capture": summary}


def model_versions(args: argparse.Namespace) -> frozenset[str] | None:
    """The ``--model-version`` values, or None for every version; exit 2 on an empty one."""
    given = getattr(args, "model_version", None)
    if not given:
        return None
    if any(not v.strip() for v in given):
        raise DataError("--model-version", "must not be empty")
    return frozenset(v.strip() for v in given)


def _align_columns(args: argparse.Namespace) -> None:
    """Compare the reference's features that the capture has; ``label`` only when both sides have it.

    A training snapshot usually has ``label`` and a fresh window does not (labels arrive later): the
    check then compares features and predictions, and reports performance once labels are joined.
    """
    if args.columns:
        return
    ref_src = readers.Source.open(args.reference, args.input_format)
    cur_src = readers.Source.open(args.current, "jsonl")
    ref_names = readers.read_schema(ref_src).names
    cur_names = set(readers.read_schema(cur_src).names)
    wanted = [c for c in ref_names if c not in readers.NON_FEATURE_COLUMNS]
    if "label" in wanted and "label" not in cur_names:
        wanted.remove("label")
    if wanted:
        args.columns = wanted


def run(args: argparse.Namespace, run_check: Any) -> int:
    """Prepare the window in a temporary directory and run ``run_check`` on it."""
    if getattr(args, "engine", "local") == "spark":
        from drift import spark_capture

        if model_versions(args) is not None:
            # drift.spark_capture reads the listed files whole; it has no per-record version filter yet.
            raise DataError("--model-version", "not supported with --engine spark (use --engine local)")

        spark_capture.prepare(args)  # Spark reads the window itself (drift.spark_capture)
        args.capture = None
        return int(run_check(args))
    with tempfile.TemporaryDirectory(prefix="drift-capture-") as tmp:
        workdir = Path(tmp)
        (workdir / "reference").mkdir()
        args.report_extra = prepare(args, workdir)
        args.capture = None
        args.input_format = None
        return int(run_check(args))


def markdown_section(extra: dict[str, Any]) -> str:
    """The capture summary as a Markdown section appended to the report."""
    c = extra.get("capture") or {}
    lines = [
        "",
        "### Captured window",
        "",
        f"`{c.get('uri')}` from {c.get('since')} to {c.get('until')}: {c.get('records')} record(s) in "
        f"{c.get('files')} file(s); {c.get('skipped_lines')} non-record line(s) skipped, "
        f"{c.get('duplicates')} duplicate(s) dropped.",
    ]
    if c.get("error_objects"):
        lines.append(
            f"{c['error_objects']} object(s) of the window under the delivery stream's error prefix "
            "(records it could not process or partition) were not read."
        )
    if "model_versions" in c:
        lines.append(
            f"Model version(s) {', '.join(c['model_versions'])} only: {c['records_of_other_versions']} record(s) of "
            f"other versions dropped, {c['partitions_pruned']} partition(s) not listed."
        )
    if "variants" in c:
        v = c["variants"]
        lines.append(f"Variants: {v['stable']} stable (reference) and {v['canary']} canary (current) record(s).")
    if "labels" in c:
        lab = c["labels"]
        lines.append(
            f"Labels: {lab['matched']} joined of {lab['total']}; {lab['late']} late "
            f"(over {lab['grace_hours']:g} h after the prediction), {lab['unmatched']} without a record."
        )
    return "\n".join(lines) + "\n"
