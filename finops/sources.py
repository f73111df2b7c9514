"""Locating input files: local paths and object-store URIs, one file, a directory, or a glob.

Object stores go through fsspec exactly as the drift readers do (:func:`drift.readers.resolve`):
``s3://`` (s3fs), ``gs://`` (gcsfs) and ``az://``/``abfs://`` (adlfs, optional packages), with the S3
endpoint redirectable by ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (MinIO, moto, LocalStack).
Billing exports are usually a directory of parts (AWS Data Exports writes
``<prefix>/data/BILLING_PERIOD=2026-11/<name>-00001.snappy.parquet`` next to a manifest JSON; Azure
writes ``part_0_0001.csv.gz`` parts), so a directory or a glob expands to every data file in it and
anything else (manifests) is skipped.
"""

from __future__ import annotations

import glob as _glob
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any, Literal

import numpy as np
import pyarrow as pa

from drift.readers import DataError, azure_blob_location, one_line, resolve

Format = Literal["csv", "parquet", "jsonl"]

_MAGIC = ("*", "?", "[")


def file_format(uri: str, allowed: Iterable[Format] = ("csv", "parquet")) -> Format | None:
    """The data format of a file name (``.csv``, ``.csv.gz``, ``.parquet``, ``.snappy.parquet``, ...)."""
    name = uri.split("?", 1)[0].lower()
    for comp in (".gz", ".gzip", ".bz2", ".zst"):
        if name.endswith(comp):
            name = name[: -len(comp)]
            break
    found: Format | None = None
    if name.endswith((".parquet", ".pq")):
        found = "parquet"
    elif name.endswith(".csv"):
        found = "csv"
    elif name.endswith((".jsonl", ".ndjson", ".json")):
        found = "jsonl"
    return found if found in tuple(allowed) else None


def compression(uri: str) -> str | None:
    """The stream compression a file name says (``gzip`` for ``.csv.gz``); Parquet compresses inside."""
    name = uri.lower()
    if name.endswith((".gz", ".gzip")):
        return "gzip"
    if name.endswith(".bz2"):
        return "bz2"
    if name.endswith(".zst"):
        return "zstd"
    return None


@dataclass(frozen=True)
class InputFile:
    """One data file to read: the URI to name it by in messages, its filesystem (None: local) and path."""

    uri: str
    fs: Any
    path: str
    fmt: Format

    def open(self) -> IO[bytes]:
        """A binary stream of the file, decompressed when its name says so."""
        raw: Any = open(self.path, "rb") if self.fs is None else self.fs.open(self.path, "rb")  # noqa: SIM115
        comp = compression(self.uri)
        if comp and self.fmt != "parquet":
            return pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), comp)
        return raw


def _scheme_prefix(uri: str) -> str:
    return uri.split("://", 1)[0] + "://" if "://" in uri else ""


def expand(uri: str, allowed: Iterable[Format] = ("csv", "parquet")) -> list[InputFile]:
    """Every data file ``uri`` names (a file, a directory, or a glob), sorted; raises :class:`DataError`."""
    allowed = tuple(allowed)
    fs, path = resolve(uri)
    prefix = _scheme_prefix(uri)
    azure = azure_blob_location(uri)
    if azure is not None:
        # adlfs paths are <container>/<path>: named in the project's az://<account>/<container>/<path>
        # (the scheme alone would give adlfs's container-first az://<container>/..., without the account).
        prefix = f"az://{azure.account}/"
    try:
        if any(m in path for m in _MAGIC):
            paths = sorted(fs.glob(path) if fs is not None else _glob.glob(path))
            if fs is None:
                paths = [p for p in paths if os.path.isfile(p)]
        else:
            is_dir = fs.isdir(path) if fs is not None else os.path.isdir(path)
            if is_dir:
                if fs is not None:
                    paths = sorted(fs.find(path))
                else:
                    paths = sorted(os.path.join(root, f) for root, _dirs, files in os.walk(path) for f in files)
            else:
                exists = fs.exists(path) if fs is not None else os.path.isfile(path)
                if not exists:
                    raise DataError(uri, "no such file")
                fmt = file_format(uri, allowed)
                if fmt is None:
                    raise DataError(uri, f"cannot tell the format from the file name (expected {', '.join(allowed)})")
                return [InputFile(uri, fs, path, fmt)]
    except DataError:
        raise
    except PermissionError as exc:
        raise DataError(uri, f"permission denied: {one_line(exc)}") from None
    except OSError as exc:
        raise DataError(uri, f"cannot list: {one_line(exc)}") from None
    out = []
    for p in paths:
        shown = p if fs is None else (p if "://" in p else prefix + p)
        fmt = file_format(shown, allowed)
        if fmt is not None:
            out.append(InputFile(shown, fs, p, fmt))
    if not out:
        raise DataError(uri, f"no {' or '.join(allowed)} files found")
    return out


def expand_all(uris: Iterable[str], allowed: Iterable[Format] = ("csv", "parquet")) -> list[InputFile]:
    """:func:`expand` over many URIs; a file named twice is read once."""
    seen: set[str] = set()
    out: list[InputFile] = []
    for uri in uris:
        for f in expand(uri, allowed):
            if f.uri not in seen:
                seen.add(f.uri)
                out.append(f)
    return out


def read_table(f: InputFile, *, csv_strings: Iterable[str] = ()) -> pa.Table:
    """Read a whole CSV, JSON Lines or Parquet file as an Arrow table; columns in ``csv_strings`` stay text."""
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    try:
        with f.open() as handle:
            if f.fmt == "parquet":
                return pq.read_table(handle)
            if f.fmt == "jsonl":
                return pajson.read_json(handle)
            convert = pacsv.ConvertOptions(
                column_types={c: pa.string() for c in csv_strings},
                strings_can_be_null=True,
            )
            return pacsv.read_csv(handle, convert_options=convert)
    except FileNotFoundError:
        raise DataError(f.uri, "no such file") from None
    except (pa.ArrowInvalid, OSError, ValueError) as exc:
        raise DataError(f.uri, f"cannot read as {f.fmt}: {one_line(exc)}") from None


def utc_times(col: pa.ChunkedArray, uri: str, name: str) -> np.ndarray:
    """A timestamp column (Arrow timestamps, dates, or ISO 8601 text, UTC when no zone) as ``datetime64[ms]``.

    Raises :class:`DataError` naming the file and column for an empty or unparseable value.
    """
    import pyarrow.compute as pc

    t = col.type
    out: Any = None
    if pa.types.is_timestamp(t):
        ts = col if t.tz is None else pc.cast(col, pa.timestamp(t.unit, tz="UTC"))
        out = pc.cast(pc.cast(ts, pa.timestamp(t.unit)), pa.timestamp("ms"))
    elif pa.types.is_date(t):
        out = pc.cast(pc.cast(col, pa.date32()), pa.timestamp("ms"))
    else:
        text = pc.cast(col, pa.string())
        attempts = (
            lambda: pc.cast(pc.cast(text, pa.timestamp("ms", tz="UTC")), pa.timestamp("ms")),
            lambda: pc.cast(text, pa.timestamp("ms")),
            lambda: pc.cast(
                pc.replace_substring(pc.replace_substring_regex(text, r"(\.\d+)?(Z|[+-]00:?00)$", ""), " ", "T"),
                pa.timestamp("ms"),
            ),
            lambda: pc.cast(pc.cast(text, pa.date32()), pa.timestamp("ms")),
        )
        for attempt in attempts:
            try:
                out = attempt()
                break
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
        if out is None:
            first = next((v for v in text.to_pylist() if v), "")
            raise DataError(uri, f"column '{name}': not an ISO 8601 date-time (e.g. {first[:40]!r})")
    if out.null_count:
        raise DataError(uri, f"column '{name}': empty value")
    return np.asarray(out.to_numpy(zero_copy_only=False), dtype="datetime64[ms]")
