"""Readers for inference logs: JSON Lines, CSV and Parquet, from local paths or object stores.

Every reader streams record batches through pyarrow, so one code path serves both the in-memory
mode (batches are converted and concatenated column by column, peak memory about the data size plus
one column) and the chunked mode for inputs larger than memory (batches feed binned sketches and are
dropped).

Object stores go through fsspec: ``s3://`` (s3fs), ``gs://`` (gcsfs) and ``az://``/``abfs://``
(adlfs; ``az://`` is the project's ``az://<storage account>/<container>/<path>``, translated for adlfs:
:func:`azure_blob_location`). The last two are optional packages, imported only when such a URI is
read. The S3 endpoint can be redirected (MinIO, moto, LocalStack) with ``DRIFT_S3_ENDPOINT_URL`` or
the standard ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``.

All schema problems raise :class:`DataError`, whose message is one line naming the file and the
column: missing columns, non-numeric values in a numeric column, empty files, all-null columns, NaN
and infinities. Nulls in an otherwise valid column are dropped (missing values are not drift
evidence either way); NaN and infinities are rejected because they usually mean a broken feature
pipeline, and a silent drop would hide it.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Kind = Literal["numeric", "categorical"]
Format = Literal["jsonl", "csv", "parquet"]

#: Columns of the log format that are never features. ``timestamp`` is read separately (change points);
#: ``model_id`` and ``model_version`` identify the model that wrote the record (the inference handler,
#: functions/core.py, writes both on every record), so as features they would only add a constant
#: column, or flag every model release as data drift. The capture record's own columns (``request_id``:
#: unique per row; ``variant``; ``probability``: the model's output, judged through ``prediction``;
#: ``latency_ms``: an operational metric) are not features either.
TIMESTAMP_COLUMN = "timestamp"
NON_FEATURE_COLUMNS = (
    "timestamp",
    "model_id",
    "model_version",
    "request_id",
    "variant",
    "probability",
    "latency_ms",
)

#: Columns paired row by row (performance, delayed labels): read with their nulls, one entry per row
#: (numeric ones as numpy masked arrays, categorical ones with Arrow nulls or None), never compacted.
ROW_COLUMNS = ("prediction", "label", "probability", "request_id")

#: Rows per record batch when streaming; about 8 MiB per float64 column.
DEFAULT_BATCH_ROWS = 1 << 20

_SUFFIXES: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zst", ".xz")

# Optional filesystem packages per URI scheme: (module, pip name).
_OPTIONAL_FS = {
    "gs": ("gcsfs", "gcsfs"),
    "gcs": ("gcsfs", "gcsfs"),
    "az": ("adlfs", "adlfs"),
    "abfs": ("adlfs", "adlfs"),
    "abfss": ("adlfs", "adlfs"),
}


class DataError(ValueError):
    """Bad input data. ``str(err)`` is one line: ``<source>: <what is wrong>``."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


def one_line(text: object) -> str:
    """``text`` (an exception, say) on one line: every run of whitespace becomes one space, and control
    characters and lone surrogates are escaped (a file name or a parser message may carry them)."""
    from inferops.safeload import escape

    return escape(" ".join(str(text).split()))


# ---------------------------------------------------------------------------------------------
# Locating and opening files
# ---------------------------------------------------------------------------------------------


def infer_format(uri: str, fmt: str | None = None) -> Format:
    """Return the file format from ``fmt`` or the URI's suffix (a compression suffix is skipped)."""
    if fmt:
        if fmt not in ("jsonl", "csv", "parquet"):
            raise DataError(uri, f"unknown format {fmt!r} (expected jsonl, csv or parquet)")
        return fmt  # type: ignore[return-value]
    name = uri.split("?", 1)[0].lower()
    for comp in _COMPRESSION_SUFFIXES:
        if name.endswith(comp):
            name = name[: -len(comp)]
            break
    for suffix, found in _SUFFIXES.items():
        if name.endswith(suffix):
            return found
    raise DataError(
        uri, "cannot tell the format from the file name (use .jsonl, .csv or .parquet, or pass the format explicitly)"
    )


def _compression(uri: str) -> str | None:
    name = uri.lower()
    return {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".xz": "xz"}.get(os.path.splitext(name)[1])


#: botocore client settings for s3://: an unreachable endpoint fails in seconds, not minutes.
S3_CLIENT_CONFIG: dict[str, Any] = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 2}}
_STORE_ERROR_MODULES = frozenset({"botocore", "aiobotocore", "s3fs", "gcsfs", "adlfs", "azure", "google", "aiohttp"})
_ENDPOINT_VARS = ("DRIFT_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


def s3_storage_options() -> dict[str, Any]:
    """Storage options for s3fs, honouring an endpoint override from the environment.

    The endpoint must be an ``http://`` or ``https://`` URL with a host (botocore otherwise fails deep
    inside the first request); connect and read timeouts and retries are bounded.
    """
    import urllib.parse

    options: dict[str, Any] = {"config_kwargs": dict(S3_CLIENT_CONFIG)}
    var = next((v for v in _ENDPOINT_VARS if os.environ.get(v)), None)
    if var is None:
        return options
    endpoint = os.environ[var]
    try:
        parsed = urllib.parse.urlsplit(endpoint)
        parsed.port  # noqa: B018 (raises ValueError for a port that is not a number)
        ok = parsed.scheme in ("http", "https") and bool(parsed.hostname) and endpoint == endpoint.strip()
    except ValueError:
        ok = False
    if not ok:
        raise DataError(var, f"must be an http:// or https:// URL with a host (got {endpoint[:200]!r})")
    options["client_kwargs"] = {"endpoint_url": endpoint}
    return options


# --- Azure Blob URIs ---------------------------------------------------------------------------------
#
# The project's convention (components/spec.py, model.artifactUri, capture.destination, the Kubernetes
# captureUri, model.referenceUri) is ``az://<storage account>/<container>/<path>``: the account is in the
# URI, so one stack can read captures from several accounts. adlfs reads ``az://X/...`` with X as the
# container and the account from the environment, so the readers translate. The rule, deterministic and
# independent of the environment:
#
# * ``az://<account>/<container>[/<path>]`` (no ``@`` in the first segment): the project form, always.
# * ``az://`` or ``abfs[s]://<container>@<account>.(blob|dfs).core.windows.net/<path>``: adlfs's and
#   Hadoop's account-qualified form, read as adlfs reads it (it takes the account from the host).
# * ``abfs[s]://<container>/<path>`` (no ``@``): adlfs's own meaning, unchanged (the account from
#   ``AZURE_STORAGE_ACCOUNT_NAME`` or a connection string): the escape hatch for adlfs's container form.
#
# Two environment variables could silently send a read elsewhere; both are refused, one line, exit 2:
# ``AZURE_STORAGE_CONNECTION_STRING`` for another account (adlfs connects with a connection string in
# preference to the account it was given: adlfs.spec.AzureBlobFileSystem.do_connect), and, for the
# project form, ``AZURE_STORAGE_ACCOUNT_NAME`` naming another account (the sign of an adlfs habit:
# ``az://<container>/<path>`` meant as container first).

#: A storage account name: 3 to 24 lowercase letters and digits
#: (https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules#microsoftstorage).
_AZ_ACCOUNT_RE = re.compile(r"[a-z0-9]{3,24}")
#: A container name: 3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter
#: or digit; ``$logs``, ``$web`` and ``$root`` are the service's own (https://learn.microsoft.com/rest/api/storageservices/
#: naming-and-referencing-containers--blobs--and-metadata#container-names).
_AZ_CONTAINER_RE = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]|\$logs|\$web|\$root")
#: adlfs's account-qualified authority (adlfs.spec.AzureBlobFileSystem._get_kwargs_from_urls).
_AZ_QUALIFIED_RE = re.compile(r"(?P<container>[^@/]+)@(?P<account>[^./]+)\.(?:blob|dfs)\.core\.windows\.net")
_AZ_FORMS = "az://<storage account>/<container>/<path> or az://<container>@<account>.blob.core.windows.net/<path>"


@dataclass(frozen=True)
class AzureBlobLocation:
    """Where an Azure Blob URI points: account, container and the path in it ('' for the container)."""

    account: str
    container: str
    path: str
    #: The account came from ``<container>@<account>...`` (adlfs's form), not from the first segment.
    qualified: bool = False

    def adlfs_uri(self) -> str:
        """adlfs's account-qualified form, which selects the account by itself."""
        return f"az://{self.container}@{self.account}.blob.core.windows.net/{self.path}"

    def hadoop_uri(self) -> str:
        """The ABFS driver's form (Spark): the Data Lake endpoint, which serves accounts with or without a
        hierarchical namespace (https://learn.microsoft.com/azure/storage/blobs/data-lake-storage-introduction-abfs-uri)."""
        return f"abfss://{self.container}@{self.account}.dfs.core.windows.net/{self.path}"


def azure_blob_location(uri: str) -> AzureBlobLocation | None:
    """The account, container and path of an ``az://`` or account-qualified ``abfs[s]://`` URI (the rule
    above); None for other schemes and for ``abfs[s]://<container>/...`` (the account is not in it).

    Raises :class:`DataError` naming the URI when an ``az://`` URI is neither form.
    """
    scheme, sep, rest = uri.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("az", "abfs", "abfss"):
        return None
    authority, _, path = rest.partition("/")
    qualified = _AZ_QUALIFIED_RE.fullmatch(authority)
    if qualified:
        account, container = qualified.group("account"), qualified.group("container")
    elif scheme != "az":
        return None
    elif "@" in authority:
        raise DataError(uri, f"not an Azure Blob URI: expected {_AZ_FORMS}")
    else:
        account, _, rest = rest.partition("/")
        container, _, path = rest.partition("/")
        if not container:
            raise DataError(uri, f"names no container: az:// URIs are {_AZ_FORMS}")
    if not _AZ_ACCOUNT_RE.fullmatch(account):
        what = "is not a storage account name (3-24 lowercase letters and digits)"
        raise DataError(uri, f"{account!r} {what}: az:// URIs are {_AZ_FORMS}")
    if not _AZ_CONTAINER_RE.fullmatch(container):
        raise DataError(uri, f"{container!r} is not a container name (3-63 lowercase letters, digits and hyphens)")
    return AzureBlobLocation(account, container, path, qualified=bool(qualified))


def _connection_string_account(conn: str) -> str | None:
    """The account a connection string is for: ``AccountName``, else the host of ``BlobEndpoint``."""
    import urllib.parse

    fields = {}
    for part in conn.split(";"):
        key, eq, value = part.partition("=")
        if eq:
            fields[key.strip().lower()] = value.strip()
    if fields.get("accountname"):
        return fields["accountname"]
    host = urllib.parse.urlsplit(fields.get("blobendpoint", "")).hostname or ""
    return host.split(".", 1)[0] if host.endswith(".blob.core.windows.net") else None


def _check_azure_environment(uri: str, loc: AzureBlobLocation) -> None:
    """Refuse the environment variables that would make adlfs read another account than ``loc``'s."""
    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if conn:
        found = _connection_string_account(conn)
        if found != loc.account:
            named = f"is for account {found!r}" if found else "names no account"
            raise DataError(
                uri,
                f"AZURE_STORAGE_CONNECTION_STRING {named}, and adlfs would use it instead of account "
                f"{loc.account!r}: unset it (DefaultAzureCredential) or set one for {loc.account!r}",
            )
    env_account = os.environ.get("AZURE_STORAGE_ACCOUNT_NAME")
    if env_account and env_account != loc.account and not loc.qualified:
        raise DataError(
            uri,
            f"az:// URIs name the account first (az://<storage account>/<container>/<path>) but "
            f"AZURE_STORAGE_ACCOUNT_NAME is {env_account!r}: for container {loc.account!r} of that account "
            f"write az://{loc.account}@{env_account}.blob.core.windows.net/..., else unset AZURE_STORAGE_ACCOUNT_NAME",
        )


def child_uri(uri: str, root: str, path: str) -> str:
    """The URI of ``path`` (a filesystem path under ``root``, the path ``uri`` resolved to) in ``uri``'s own
    form: ``fs.unstrip_protocol`` would drop the account of an Azure URI (adlfs gives ``abfs://<container>/...``)."""
    root = root.rstrip("/")
    if path != root and not path.startswith(root + "/"):
        raise ValueError(f"{path} is not under {root}")
    return uri.rstrip("/") + path[len(root) :]


def hadoop_uri(uri: str) -> str:
    """``uri`` as Spark's Hadoop file systems open it: an Azure Blob URI in the project's or adlfs's form
    becomes ``abfss://<container>@<account>.dfs.core.windows.net/<path>``; anything else is unchanged."""
    loc = azure_blob_location(uri)
    if loc is None:
        if uri.lower().startswith(("abfs://", "abfss://")) and "@" not in uri.split("/")[2]:
            raise DataError(
                uri, "Spark's ABFS driver needs the account: abfss://<container>@<account>.dfs.core.windows.net/<path>"
            )
        return uri
    return loc.hadoop_uri()


def resolve(uri: str, storage_options: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """Return ``(fsspec filesystem, path)`` for an object-store URI, ``(None, path)`` for a local file.

    Local files bypass fsspec so that pyarrow reads them natively (and start-up skips its import).
    Azure Blob URIs follow the rule above (:func:`azure_blob_location`).
    """
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else "file"
    if scheme == "file" and not storage_options:
        return None, uri.split("://", 1)[1] if "://" in uri else uri

    import fsspec.core

    if scheme in _OPTIONAL_FS:
        module, pip_name = _OPTIONAL_FS[scheme]
        try:
            importlib.import_module(module)
        except ImportError:
            raise DataError(
                uri, f"reading {scheme}:// URIs needs the optional package {pip_name} (pip install {pip_name})"
            ) from None
    options = dict(storage_options or {})
    if scheme in ("s3", "s3a") and not options:
        options = s3_storage_options()
    target = uri
    if scheme in ("az", "abfs", "abfss"):
        loc = azure_blob_location(uri)
        if loc is not None:
            if not options:
                _check_azure_environment(uri, loc)
            target = loc.adlfs_uri()
    try:
        fs, path = fsspec.core.url_to_fs(target, **options)
    except (ImportError, ValueError) as exc:
        raise DataError(uri, f"cannot open: {one_line(exc)}") from None
    return fs, path


def _is_local(fs: Any) -> bool:
    if fs is None:
        return True
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def _info(fs: Any, path: str) -> dict[str, Any]:
    if fs is not None:
        return dict(fs.info(path))
    st = os.stat(path)
    return {"type": "directory" if os.path.isdir(path) else "file", "size": st.st_size}


@dataclass
class Source:
    """An input file: its URI, format, filesystem and size in bytes."""

    uri: str
    fmt: Format
    fs: Any
    path: str
    size: int

    @classmethod
    def open(cls, uri: str, fmt: str | None = None, storage_options: Mapping[str, Any] | None = None) -> Source:
        """Locate ``uri`` and check that it exists and is not empty."""
        found = infer_format(uri, fmt)
        fs, path = resolve(uri, storage_options)
        try:
            info = _info(fs, path)
        except FileNotFoundError:
            raise DataError(uri, "no such file") from None
        except PermissionError as exc:
            raise DataError(uri, f"permission denied: {one_line(exc)}") from None
        except OSError as exc:
            raise DataError(uri, f"cannot open: {one_line(exc)}") from None
        except Exception as exc:
            # An object store client's errors (botocore's EndpointConnectionError, NoCredentialsError,
            # azure/google auth errors) are not OSError; anything else is a bug and stays one.
            if fs is None or type(exc).__module__.split(".")[0] not in _STORE_ERROR_MODULES:
                raise
            raise DataError(uri, f"cannot open: {type(exc).__name__}: {one_line(exc)}") from None
        if info.get("type") == "directory":
            raise DataError(uri, "is a directory, expected a file")
        size = int(info.get("size") or 0)
        if size == 0:
            raise DataError(uri, "empty file")
        source = cls(uri, found, fs, path, size)
        if found != "parquet" and fs is None and _compression(path) is None:
            source._check_utf8_start()
        return source

    def _check_utf8_start(self) -> None:
        """Name a UTF-16/32 text file as such (Arrow would report a column-count or parse error)."""
        with open(self.path, "rb") as handle:
            head = handle.read(4)
        if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(head) >= 2 and (head[0] == 0) != (head[1] == 0)):
            raise DataError(self.uri, "UTF-16 or UTF-32 text; save it as UTF-8")

    def _open_binary(self) -> Any:
        compression = _compression(self.path)
        if _is_local(self.fs):
            local = pa.OSFile(self.path, "rb")
            return local if compression is None else pa.CompressedInputStream(local, compression)
        handle = self.fs.open(self.path, "rb")
        if compression is None:
            return handle
        return pa.CompressedInputStream(pa.PythonFile(handle, mode="r"), compression)

    def in_memory_bytes(self) -> int:
        """Estimate of the decoded size in memory (Parquet from its metadata, text from its size).

        Compressed text files are counted at five times their size, a typical ratio for log text.
        """
        if self.fmt != "parquet":
            return self.size * (5 if _compression(self.path) else 1)
        import pyarrow.parquet as pq

        try:
            with self._open_binary() as handle:
                meta = pq.ParquetFile(handle).metadata
                return sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        except (pa.ArrowException, OSError) as exc:
            raise DataError(self.uri, f"cannot read as parquet: {one_line(exc)}") from None


# ---------------------------------------------------------------------------------------------
# Streaming record batches
# ---------------------------------------------------------------------------------------------

_CSV_NULLS = [""]  # keep "NaN"/"inf" as numbers so they are reported, not silently nulled


def _csv_batches(
    src: Source, column_types: Mapping[str, pa.DataType] | None, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    import pyarrow.csv as pcsv

    convert = pcsv.ConvertOptions(
        null_values=_CSV_NULLS, strings_can_be_null=True, column_types=dict(column_types or {})
    )
    read = pcsv.ReadOptions(block_size=max(1 << 20, min(batch_rows * 64, 64 << 20)))
    with src._open_binary() as handle:
        reader = pcsv.open_csv(handle, read_options=read, convert_options=convert)
        yield from reader


def _json_batches(
    src: Source, column_types: Mapping[str, pa.DataType] | None, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    import pyarrow.json as pjson

    parse = pjson.ParseOptions(
        explicit_schema=pa.schema(list((column_types or {}).items())), unexpected_field_behavior="infer"
    )
    read = pjson.ReadOptions(block_size=max(1 << 20, min(batch_rows * 128, 64 << 20)))
    with src._open_binary() as handle:
        reader = pjson.open_json(handle, read_options=read, parse_options=parse)
        yield from reader


def _parquet_batches(src: Source, columns: Sequence[str] | None, batch_rows: int) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq

    with src._open_binary() as handle:
        # Locally, a read buffer streams each column chunk instead of loading the whole row group
        # (half the peak memory, no slower). Remote stores keep Arrow's coalesced pre-buffered reads,
        # because a request per buffer would be slow.
        local = _is_local(src.fs)
        pfile = pq.ParquetFile(handle, pre_buffer=not local, buffer_size=(1 << 20) if local else 0)
        wanted = None
        if columns is not None:
            names = set(pfile.schema_arrow.names)
            wanted = [c for c in columns if c in names]
        yield from pfile.iter_batches(batch_size=batch_rows, columns=wanted)


_CSV_ERR = re.compile(
    r"In CSV column #(\d+): (?:Row #(\d+): )?CSV conversion error to (\w+): "
    r"invalid value '(.*)'"
)
_JSON_ERR = re.compile(r"Column\(/([^)]*)\) changed from (\w+) to (\w+)(?: in row (\d+))?")


def _csv_header(src: Source) -> list[str] | None:
    """Column names of a CSV file, from a first block read without type constraints."""
    import pyarrow.csv as pcsv

    try:
        with src._open_binary() as handle:
            return pcsv.open_csv(handle, read_options=pcsv.ReadOptions(block_size=1 << 16)).schema.names
    except (pa.ArrowException, OSError):
        return None


def _translate_arrow_error(src: Source, exc: Exception, names: Sequence[str] | None) -> DataError:
    text = one_line(exc)
    if text.startswith("Empty CSV file") or text.startswith("Empty JSON file"):
        return DataError(src.uri, "empty file")
    m = _CSV_ERR.search(text)
    if m:
        index = int(m.group(1))
        if names is None:
            names = _csv_header(src)
        col = names[index] if names and index < len(names) else f"#{index}"
        return DataError(src.uri, f"column {col!r}: non-numeric value {m.group(4)!r} in a numeric column")
    m = _JSON_ERR.search(text)
    if m:
        col = m.group(1)
        if m.group(2) == "number":
            return DataError(src.uri, f"column {col!r}: non-numeric value ({m.group(3)}) in a numeric column")
        return DataError(src.uri, f"column {col!r}: values change type from {m.group(2)} to {m.group(3)}")
    return DataError(src.uri, f"cannot read as {src.fmt}: {text}")


def iter_batches(
    src: Source,
    *,
    column_types: Mapping[str, pa.DataType] | None = None,
    columns: Sequence[str] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> Iterator[pa.RecordBatch]:
    """Stream ``src`` as record batches of at most about ``batch_rows`` rows.

    ``column_types`` fixes the types of CSV and JSON columns (so every block of a file decodes the same
    way); Parquet columns keep their stored types and ``columns`` selects which are read. Arrow errors
    are turned into :class:`DataError`.
    """
    names: list[str] | None = None
    try:
        if src.fmt == "parquet":
            gen: Iterator[pa.RecordBatch] = _parquet_batches(src, columns, batch_rows)
        elif src.fmt == "csv":
            gen = _csv_batches(src, column_types, batch_rows)
        else:
            gen = _json_batches(src, column_types, batch_rows)
        for batch in gen:
            if names is None:
                _check_unique(src, batch.schema.names)
            names = batch.schema.names
            yield batch
    except DataError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _translate_arrow_error(src, exc, names) from None


def _check_unique(src: Source, names: Sequence[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(src.uri, f"column {name!r} appears twice in the header")
        seen.add(name)


def read_schema(src: Source) -> pa.Schema:
    """The schema of ``src``: Parquet's stored schema, or the types inferred from the first block."""
    if src.fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            with src._open_binary() as handle:
                schema = pq.ParquetFile(handle).schema_arrow
        except (pa.ArrowException, OSError) as exc:
            raise DataError(src.uri, f"cannot read as parquet: {one_line(exc)}") from None
        _check_unique(src, schema.names)
        return schema
    for batch in iter_batches(src, batch_rows=1 << 14):
        return batch.schema
    raise DataError(src.uri, "no rows")


# ---------------------------------------------------------------------------------------------
# Column plan: which columns are features, and of which kind
# ---------------------------------------------------------------------------------------------


def _kind_of(dtype: pa.DataType) -> Kind | None:
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "numeric"
    if (
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_boolean(dtype)
        or pa.types.is_string_view(dtype)
    ):
        return "categorical"
    return None


@dataclass
class ColumnPlan:
    """Feature columns and their kinds, taken from the reference schema."""

    kinds: dict[str, Kind]
    timestamp: bool = False

    @property
    def features(self) -> list[str]:
        """Feature column names, in reference order."""
        return list(self.kinds)

    def arrow_types(self) -> dict[str, pa.DataType]:
        """Types to force on CSV/JSON columns so that every block decodes alike.

        Only numeric columns are forced (to float64); categorical JSON columns may hold numbers or
        strings, which are cast to strings per batch instead.
        """
        return {name: pa.float64() for name, kind in self.kinds.items() if kind == "numeric"}


def plan_columns(
    schema: pa.Schema, source: str, *, columns: Sequence[str] | None = None, categorical: Iterable[str] = ()
) -> ColumnPlan:
    """Choose the feature columns of a reference ``schema``.

    Every column except ``timestamp``, ``model_id`` and ``model_version`` (:data:`NON_FEATURE_COLUMNS`)
    is a feature unless ``columns`` names the features explicitly. ``categorical`` forces numeric-looking
    columns (codes, ids) to be categorical.
    """
    present = schema.names
    forced = set(categorical)
    unknown = sorted((set(columns or ()) | forced) - set(present))
    if unknown:
        raise DataError(source, f"missing column(s) {', '.join(map(repr, unknown))}")
    wanted = list(columns) if columns else [c for c in present if c not in NON_FEATURE_COLUMNS]
    kinds: dict[str, Kind] = {}
    for name in wanted:
        if pa.types.is_null(schema.field(name).type):
            # No value to tell its kind from: read as categories; detection reports its missing share.
            kinds[name] = "categorical"
            continue
        kind = "categorical" if name in forced else _kind_of(schema.field(name).type)
        if kind is None and pa.types.is_binary(schema.field(name).type):
            raise DataError(source, f"column {name!r}: values are not UTF-8 text (save the file as UTF-8)")
        if kind is None:
            raise DataError(
                source, f"column {name!r}: unsupported type {schema.field(name).type} (expected numbers or strings)"
            )
        kinds[name] = kind
    if not kinds:
        raise DataError(source, "no feature columns")
    return ColumnPlan(kinds=kinds, timestamp=TIMESTAMP_COLUMN in present)


# ---------------------------------------------------------------------------------------------
# Converting batches into validated numpy chunks
# ---------------------------------------------------------------------------------------------


def _first_non_numeric(arr: pa.Array) -> str:
    text = pc.cast(arr, pa.string())
    ok = pc.match_substring_regex(
        text,
        r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$|"
        r"^\s*[-+]?(?i:nan|inf|infinity)\s*$",
    )
    bad = pc.filter(text, pc.invert(pc.fill_null(ok, True)))
    return bad[0].as_py() if len(bad) else "?"


def _require_flat(arr: pa.Array, name: str, src: Source) -> None:
    """Nested and binary columns cannot be features, whatever the reference held (one line, exit 2)."""
    dtype = arr.type.value_type if pa.types.is_dictionary(arr.type) else arr.type
    if pa.types.is_nested(dtype) or pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        raise DataError(src.uri, f"column {name!r}: unsupported type {dtype} (expected numbers or strings)")


def _numeric_chunk(arr: pa.Array, name: str, src: Source, row0: int, keep_nulls: bool = False) -> np.ndarray:
    _require_flat(arr, name, src)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if keep_nulls and arr.null_count:
        # One entry per row: the values (validated like any column) spread back under a mask.
        valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        full = np.zeros(len(arr), dtype=np.float64)
        full[valid] = _numeric_chunk(arr, name, src, row0)
        return np.ma.MaskedArray(full, mask=~valid)
    rows = None  # positions of the kept values in the batch, to name the record of a bad value
    batch_len = len(arr)
    if arr.null_count:
        rows = np.flatnonzero(arr.is_valid().to_numpy(zero_copy_only=False))
        arr = arr.drop_null()
    if not (pa.types.is_floating(arr.type) and arr.type.bit_width == 64):
        try:
            arr = pc.cast(arr, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise DataError(
                src.uri, f"column {name!r}: non-numeric value {_first_non_numeric(arr)!r} in a numeric column"
            ) from None
    values = arr.to_numpy(zero_copy_only=False)
    finite = np.isfinite(values)
    if not finite.all():
        bad = int(values.size - np.count_nonzero(finite))
        index = int(np.argmin(finite))
        what = "NaN" if np.isnan(values[index]) else "infinite"
        row = row0 + 1 + (int(rows[index]) if rows is not None else index)
        raise DataError(
            src.uri,
            f"column {name!r}: {what} value in record {row} ({bad} NaN or infinite "
            f"value(s) in records {row0 + 1}-{row0 + batch_len})",
        )
    return values


#: Arrow type of categorical columns in the Arrow representation (``categorical_arrow=True``).
CATEGORICAL_ARROW_TYPE = pa.dictionary(pa.int32(), pa.string())


def _categorical_chunk(
    arr: pa.Array, as_arrow: bool = False, keep_nulls: bool = False
) -> np.ndarray | pa.DictionaryArray:
    """Non-null values as strings: an object array, or (``as_arrow``) a dictionary<int32, string> array.

    With ``keep_nulls`` every row keeps its entry: Arrow nulls, or None in the object array.
    """
    if keep_nulls and arr.null_count and not as_arrow:
        valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        out = np.full(len(arr), None, dtype=object)
        out[valid] = _categorical_chunk(arr.drop_null())
        return out
    if arr.null_count and not keep_nulls:
        arr = arr.drop_null()
    if not pa.types.is_dictionary(arr.type):
        if not pa.types.is_string(arr.type):
            arr = pc.cast(arr, pa.string())
        arr = arr.dictionary_encode()
    if as_arrow:
        # One int32 index a row and the distinct strings once: counted later with np.bincount.
        if arr.type != CATEGORICAL_ARROW_TYPE:
            arr = pa.DictionaryArray.from_arrays(pc.cast(arr.indices, pa.int32()), pc.cast(arr.dictionary, pa.string()))
        return arr
    # An object array pointing at one str per distinct value: 8 bytes a row instead of a str a row.
    dictionary = pc.cast(arr.dictionary, pa.string()).to_numpy(zero_copy_only=False)
    indices = arr.indices.to_numpy(zero_copy_only=False)
    return dictionary[indices] if len(dictionary) else np.empty(0, dtype=object)


@dataclass
class Chunk:
    """One batch of validated feature values (nulls dropped) plus its timestamps, if any."""

    rows: int
    features: dict[str, Any]
    timestamps: np.ndarray | None = None
    #: every column of the batch, read or not (columns only in the current data are schema drift)
    columns: list[str] = field(default_factory=list)


def iter_chunks(
    src: Source,
    plan: ColumnPlan,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    on_rows: Callable[[int], None] | None = None,
    categorical_arrow: bool = False,
    keep_nulls: Iterable[str] = (),
) -> Iterator[Chunk]:
    """Stream ``src`` as validated chunks of the planned feature columns.

    Nulls are dropped per column, except in the columns named in ``keep_nulls`` (row-aligned).

    Numeric columns are float64 numpy arrays; categorical ones object arrays of ``str``, or with
    ``categorical_arrow`` Arrow ``dictionary<int32, string>`` arrays (no Python object per row; both
    are accepted by :class:`drift.stattests.CategoricalSample`). Raises :class:`DataError` for missing
    columns, non-numeric values in numeric columns and NaN/infinities. Empty files and all-null columns
    are detected by the caller over the whole file.
    """
    wanted = plan.features + ([TIMESTAMP_COLUMN] if plan.timestamp else [])
    aligned = set(keep_nulls)
    row0 = 0
    checked = False
    for batch in iter_batches(src, column_types=plan.arrow_types(), columns=wanted, batch_rows=batch_rows):
        if not checked:
            missing = [c for c in plan.features if c not in batch.schema.names]
            if missing:
                raise DataError(src.uri, f"missing column(s) {', '.join(map(repr, missing))} present in the reference")
            checked = True
        features: dict[str, Any] = {}
        for name, kind in plan.kinds.items():
            arr = batch.column(name)
            if kind == "numeric":
                features[name] = _numeric_chunk(arr, name, src, row0, name in aligned)
            else:
                _require_flat(arr, name, src)
                features[name] = _categorical_chunk(arr, categorical_arrow, name in aligned)
        stamps = None
        if plan.timestamp and TIMESTAMP_COLUMN in batch.schema.names:
            stamps = _timestamps(batch.column(TIMESTAMP_COLUMN))
        row0 += batch.num_rows
        if on_rows is not None:
            on_rows(batch.num_rows)
        yield Chunk(rows=batch.num_rows, features=features, timestamps=stamps, columns=batch.schema.names)
    if not checked:
        raise DataError(src.uri, "no rows")


def _timestamps(arr: pa.Array) -> np.ndarray | None:
    """Timestamps as ``datetime64[ns]`` (NaT where missing or unparseable), or None."""
    if pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
        return pc.cast(arr, pa.timestamp("ns")).to_numpy(zero_copy_only=False)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        # ISO 8601 with a zone offset ("Z", "+02:00") is converted to UTC; without one it is taken as is.
        for target in (pa.timestamp("ns", "UTC"), pa.timestamp("ns")):
            try:
                return pc.cast(pc.cast(arr, target), pa.timestamp("ns")).to_numpy(zero_copy_only=False)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
        return None  # not timestamps Arrow can parse: the report just carries no change-point times
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        # Numbers are taken as Unix seconds, the usual export of log pipelines.
        seconds = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        return (seconds * 1e9).astype("datetime64[ns]")
    return None


# ---------------------------------------------------------------------------------------------
# Whole-file (in-memory) reading
# ---------------------------------------------------------------------------------------------


class Columns(dict[str, Any]):
    """Feature columns by name (a dict) that also know the file's rows and every column it has.

    :func:`drift.detect.detect` reads ``n_rows`` (a column's missing share is ``1 - values / n_rows``,
    since nulls were dropped) and ``all_columns`` (columns only in the current data are schema drift).
    """

    n_rows: int = 0
    all_columns: list[str]


def _columns(features: Mapping[str, Any], n_rows: int, all_columns: Iterable[str]) -> Columns:
    out = Columns(features)
    out.n_rows = n_rows
    out.all_columns = list(all_columns)
    return out


def _non_null_count(values: Any) -> int:
    if isinstance(values, np.ma.MaskedArray):
        return int(values.count())
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return len(values) - values.null_count
    if isinstance(values, np.ndarray) and values.dtype.kind == "O":
        return int(values.size - np.count_nonzero(values == None))  # noqa: E711
    return len(values)


@dataclass
class Dataset:
    """Validated feature columns of one file, ready for :func:`drift.detect.detect`."""

    source: str
    n_rows: int
    features: dict[str, Any]  # numpy arrays; categorical ones Arrow arrays with categorical_arrow
    kinds: dict[str, Kind]
    timestamps: np.ndarray | None = field(default=None)


def check_not_null(source: str, counts: Mapping[str, int], n_rows: int) -> None:
    """Raise :class:`DataError` for an empty file.

    A column without any value is not an error: detection reports its missing share (100%) as a data
    quality finding, as it does for a column that is 99.9% null. ``counts`` (values per column) is kept
    for callers that check it.
    """
    del counts
    if n_rows == 0:
        raise DataError(source, "no rows")


#: Rows per batch when reading Parquet into memory: decode buffers stay small next to the data.
PARQUET_MEMORY_BATCH_ROWS = 1 << 16


def parquet_rows(src: Source) -> int:
    """Number of rows of a Parquet file, from its footer."""
    import pyarrow.parquet as pq

    try:
        with src._open_binary() as handle:
            return int(pq.ParquetFile(handle).metadata.num_rows)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(src.uri, f"cannot read as parquet: {one_line(exc)}") from None


def read_dataset(
    src: Source,
    plan: ColumnPlan,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    on_rows: Callable[[int], None] | None = None,
    categorical_arrow: bool = False,
) -> Dataset:
    """Read the planned columns of ``src`` into memory, validated.

    A local Parquet file is read one column at a time (a float64 column without nulls in one row group
    becomes a numpy view of Arrow's buffer, no copy): the peak is the data plus one column's decode
    buffers, and no batch loop runs in Python. Remote Parquet knows its row count, so numeric columns
    are filled into preallocated arrays from small batches (one pass, coalesced reads): the peak is the
    data plus one batch. Other formats collect per-batch chunks and
    concatenate one column at a time: the peak is the data plus one column. With ``categorical_arrow``
    categorical columns are ``pa.ChunkedArray`` of ``dictionary<int32, string>`` (4 bytes a row, no
    concatenation) instead of object arrays (8 bytes a row plus building them).
    """
    if src.fmt == "parquet" and _is_local(src.fs):
        return _read_parquet_columns(src, plan, on_rows=on_rows, categorical_arrow=categorical_arrow)
    filled: dict[str, np.ndarray] = {}
    all_columns: list[str] = []
    if src.fmt == "parquet":
        capacity = parquet_rows(src)
        batch_rows = min(batch_rows, PARQUET_MEMORY_BATCH_ROWS)
        filled = {
            name: np.empty(capacity, dtype=np.float64)
            for name, kind in plan.kinds.items()
            if kind == "numeric" and name not in ROW_COLUMNS
        }
        all_columns = list(read_schema(src).names)
    used = dict.fromkeys(filled, 0)
    parts: dict[str, list[Any]] = {name: [] for name in plan.features if name not in filled}
    stamps: list[np.ndarray] = []
    n_rows = 0
    for chunk in iter_chunks(
        src, plan, batch_rows=batch_rows, on_rows=on_rows, categorical_arrow=categorical_arrow, keep_nulls=ROW_COLUMNS
    ):
        n_rows += chunk.rows
        all_columns += [c for c in chunk.columns if c not in all_columns]
        for name, values in chunk.features.items():
            if name in filled:
                start = used[name]
                filled[name][start : start + values.size] = values
                used[name] = start + values.size
            else:
                parts[name].append(values)
        if chunk.timestamps is not None:
            stamps.append(chunk.timestamps)
    counts = {
        name: used[name] if name in filled else sum(_non_null_count(p) for p in parts[name]) for name in plan.features
    }
    check_not_null(src.uri, counts, n_rows)
    features: dict[str, Any] = {}
    for name in plan.features:
        if name in filled:
            features[name] = filled.pop(name)[: used[name]]
            continue
        chunks = parts.pop(name)
        if chunks and isinstance(chunks[0], pa.Array):
            features[name] = pa.chunked_array(chunks, type=CATEGORICAL_ARROW_TYPE)
        elif any(isinstance(c, np.ma.MaskedArray) for c in chunks):
            features[name] = np.ma.concatenate(chunks)
        else:
            features[name] = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        del chunks
    timestamps = np.concatenate(stamps) if stamps else None
    if timestamps is not None and timestamps.size != n_rows:
        timestamps = None
    return Dataset(
        source=src.uri,
        n_rows=n_rows,
        features=_columns(features, n_rows, all_columns),
        kinds=dict(plan.kinds),
        timestamps=timestamps,
    )


class ParquetColumns(Mapping[str, Any]):
    """The planned feature columns of a local Parquet file, each read and validated when accessed.

    A mapping for :func:`drift.detect.detect`, which fetches each column once, when its test runs, and
    drops it afterwards: memory holds the columns in flight, not the file, and reading overlaps with the
    tests of other columns in detect's thread pool. Columns named in ``keep`` (``prediction`` and
    ``label``, which detect pairs row by row after the tests) are kept once read. Every access opens its
    own reader, so threads may read different columns at once. Checks and messages are those of
    :func:`read_dataset`: missing columns and empty files when constructed, bad values when read.
    """

    def __init__(
        self,
        src: Source,
        plan: ColumnPlan,
        *,
        categorical_arrow: bool = True,
        keep: Sequence[str] = ROW_COLUMNS,
    ) -> None:
        import threading

        import pyarrow.parquet as pq

        self.source, self.plan, self.categorical_arrow = src, plan, categorical_arrow
        pfile = self._open(pq)
        try:
            self.names: list[str] = pfile.schema_arrow.names
            #: rows in the file (the report's row count)
            self.n_rows: int = int(pfile.metadata.num_rows)
        finally:
            pfile.close()
        missing = [c for c in plan.features if c not in self.names]
        if missing:
            raise DataError(src.uri, f"missing column(s) {', '.join(map(repr, missing))} present in the reference")
        if self.n_rows == 0:
            raise DataError(src.uri, "no rows")
        self._keep = set(keep)
        self._kept: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _open(self, pq: Any) -> Any:
        try:
            return pq.ParquetFile(self.source._open_binary(), pre_buffer=False)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(self.source.uri, f"cannot read as parquet: {one_line(exc)}") from None

    def _column(self, name: str) -> pa.ChunkedArray:
        import pyarrow.parquet as pq

        pfile = self._open(pq)
        try:
            return pfile.read(columns=[name], use_threads=False).column(0)
        except (pa.ArrowException, OSError) as exc:
            raise _translate_arrow_error(self.source, exc, self.names) from None
        finally:
            pfile.close()

    def __getitem__(self, name: str) -> Any:
        kind = self.plan.kinds[name]  # KeyError for a column that is not planned, as a dict
        with self._lock:
            if name in self._kept:
                return self._kept[name]
        src, parts, row0 = self.source, [], 0
        aligned = name in ROW_COLUMNS
        for arr in self._column(name).chunks:
            if kind == "numeric":
                parts.append(_numeric_chunk(arr, name, src, row0, aligned))
            else:
                _require_flat(arr, name, src)
                parts.append(_categorical_chunk(arr, self.categorical_arrow, aligned))
            row0 += len(arr)
        values: Any
        if kind == "categorical" and self.categorical_arrow:
            values = pa.chunked_array(parts, type=CATEGORICAL_ARROW_TYPE)
        elif any(isinstance(p, np.ma.MaskedArray) for p in parts):
            values = np.ma.concatenate(parts)
        elif len(parts) == 1:
            values = parts[0]
        else:
            values = np.concatenate(parts) if parts else np.empty(0, dtype=np.float64)
        if name in self._keep:
            with self._lock:
                self._kept[name] = values
        return values

    @property
    def all_columns(self) -> list[str]:
        """Every column of the file, read or not."""
        return list(self.names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.plan.features)

    def __len__(self) -> int:
        return len(self.plan.kinds)

    def timestamps(self) -> np.ndarray | None:
        """The ``timestamp`` column as ``datetime64[ns]``, or None (no such column, unparseable)."""
        if not (self.plan.timestamp and TIMESTAMP_COLUMN in self.names):
            return None
        stamps = [_timestamps(a) for a in self._column(TIMESTAMP_COLUMN).chunks]
        parsed = [t for t in stamps if t is not None]
        if not stamps or len(parsed) != len(stamps):
            return None
        joined: np.ndarray = np.concatenate(parsed)
        return joined if joined.size == self.n_rows else None


def _read_parquet_columns(
    src: Source, plan: ColumnPlan, *, on_rows: Callable[[int], None] | None, categorical_arrow: bool
) -> Dataset:
    """:func:`read_dataset` for a local Parquet file: one column at a time, same checks and errors."""
    columns = ParquetColumns(src, plan, categorical_arrow=categorical_arrow, keep=())
    features: dict[str, Any] = {}
    done = 0
    for i, name in enumerate(plan.features):
        features[name] = columns[name]
        if on_rows is not None:  # progress in rows: each column is an equal share of the file
            step = columns.n_rows * (i + 1) // len(plan.features) - done
            done += step
            on_rows(step)
    return Dataset(
        source=src.uri,
        n_rows=columns.n_rows,
        features=_columns(features, columns.n_rows, columns.names),
        kinds=dict(plan.kinds),
        timestamps=columns.timestamps(),
    )
