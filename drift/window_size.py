"""``drift window-size`` and ``drift stage-window``: size a captured window without reading it; copy it.

::

    python -m drift window-size --capture URI (--window 24h | --since T --until T)
        [--max-bytes N] [--format json|github]
    python -m drift stage-window --capture URI (--window 24h | --since T --until T) --to DIR

``window-size`` lists the window's objects with the local reader's partition pruning
(:func:`drift.capture.list_window`: only partitions that can hold records of the window are listed,
one request per directory level and thousand objects) and adds up their stored sizes from the listing:
no object is opened. With ``--max-bytes N`` it also says which engine the scheduled workflow runs:
``local`` at or below ``N`` bytes, ``spark`` above. ``--format github`` prints ``key=value`` lines for
``$GITHUB_OUTPUT`` (``since``, ``until``, ``files``, ``bytes``, ``pruned`` and, with ``--max-bytes``,
``engine``): only values this command formats, never the URI.

``stage-window`` copies the same objects under ``DIR`` (their paths relative to the capture prefix, so
the partition pruning finds them again), for ``drift check --engine spark --capture DIR`` in Spark's
local mode: Spark then reads local files and needs no object-store connector, the copy uses the same
credentials as the local engine (fsspec). A ``:`` in a file name (Cloud Logging's hourly sink files,
``08:00:00_08:59:59_S0.json``), which Hadoop cannot open, becomes ``-``; the records are filtered by
their own timestamps, so the hour in the name is not needed any more.

Exit codes (:mod:`inferops.exitcodes`): 0 measured or copied (a size is not a finding), 2 bad input
(one line: the option or the location), 3 an internal error (a store refusing the credentials).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from drift import capture
from drift.readers import DataError, one_line
from inferops.exitcodes import EXIT_OK


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of bytes, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of bytes >= 0, got {text!r}")
    return value


def _window_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--capture", required=True, metavar="URI", help="a function's captureUri (s3://, gs://, az://, path)"
    )
    p.add_argument("--since", metavar="T", help="window start, ISO 8601 (UTC unless an offset is given)")
    p.add_argument("--until", metavar="T", help="window end (exclusive), ISO 8601")
    p.add_argument("--window", metavar="DURATION", help="the last DURATION (24h, 7d) up to the start of this hour")


def add_window_parsers(subparsers: Any) -> None:
    """Register ``window-size`` and ``stage-window``."""
    size = subparsers.add_parser(
        "window-size",
        help="size a captured window from its listing (no object is read)",
        description="List a captured window's objects (partition pruning) and add up their sizes. "
        "Exit 0: measured, 2: bad input or usage, 3: internal error.",
    )
    _window_arguments(size)
    size.add_argument(
        "--max-bytes",
        type=_non_negative,
        metavar="N",
        help="also print engine=local (at most N bytes) or engine=spark (above N)",
    )
    size.add_argument("--format", choices=("json", "github"), default="json", help="json (default) or key=value lines")
    size.set_defaults(handler=run_window_size)
    stage = subparsers.add_parser(
        "stage-window",
        help="copy a captured window's objects into a local folder (for Spark in local mode)",
        description="Copy the objects window-size lists under DIR, keeping their partition paths. "
        "Exit 0: copied, 2: bad input or usage, 3: internal error.",
    )
    _window_arguments(stage)
    stage.add_argument("--to", required=True, metavar="DIR", help="an empty or new local folder")
    stage.set_defaults(handler=run_stage_window)


def measure(uri: str, window: capture.Window, max_bytes: int | None = None) -> dict[str, Any]:
    """The window's size from its listing: files, bytes, pruned partitions, and the engine for ``max_bytes``."""
    _, listing = capture.list_window(uri, window)
    out: dict[str, Any] = {
        "since": f"{window.since:%Y-%m-%dT%H:%M:%SZ}",
        "until": f"{window.until:%Y-%m-%dT%H:%M:%SZ}",
        "files": len(listing.files),
        "bytes": listing.bytes,
        "pruned": listing.pruned,
    }
    if max_bytes is not None:
        out["max_bytes"] = max_bytes
        out["engine"] = "spark" if listing.bytes > max_bytes else "local"
    return out


def run_window_size(args: argparse.Namespace) -> int:
    """``drift window-size``: print the size; exit 0."""
    window = capture.Window.resolve(args.since, args.until, args.window)
    found = measure(args.capture, window, args.max_bytes)
    if args.format == "github":
        sys.stdout.write("".join(f"{k}={v}\n" for k, v in found.items()))
    else:
        sys.stdout.write(json.dumps({"capture": args.capture, **found}) + "\n")
    return EXIT_OK


def _local_name(relative: str) -> str:
    parts = [p for p in relative.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise DataError("--capture", f"{relative}: a listed object outside the capture prefix")
    parts[-1] = parts[-1].replace(":", "-")
    return os.path.join(*parts)


def stage(uri: str, window: capture.Window, dest: str | Path) -> dict[str, Any]:
    """Copy the window's listed objects under ``dest`` (paths relative to the prefix); what was copied."""
    target = Path(dest)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise DataError("--to", f"{target}: not an empty folder")
    fs, listing = capture.list_window(uri, window)
    _, root = capture._filesystem(uri)
    single = len(listing.files) == 1 and listing.files[0] == root
    copied = 0
    for name in listing.files:
        rel = name.rsplit("/", 1)[-1] if single else name[len(root) :].strip("/")
        local = target / _local_name(rel)
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(f".{local.name}.part")
        try:
            fs.get_file(name, str(partial))
        except (OSError, ValueError) as exc:
            raise DataError(uri, f"cannot copy {name}: {one_line(exc)}") from None
        os.replace(partial, local)  # a copy is either whole or absent
        copied += local.stat().st_size
    return {"to": str(target), "files": len(listing.files), "bytes": copied}


def run_stage_window(args: argparse.Namespace) -> int:
    """``drift stage-window``: copy the window; print what was copied; exit 0."""
    window = capture.Window.resolve(args.since, args.until, args.window)
    sys.stdout.write(json.dumps(stage(args.capture, window, args.to)) + "\n")
    return EXIT_OK
