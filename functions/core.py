"""The inference core every platform adapter shares: model format, loading, prediction, logging.

Model format ``inferops-linear/v1`` (JSON)::

    {"format": "inferops-linear/v1", "task": "classification",   # or "regression"
     "features": ["amount", "age"], "weights": [0.03, -0.01],     # numeric features, one weight each
     "categorical": {"country": {"US": 0.2, "IN": -0.4}},         # optional; unknown category -> 0
     "bias": -0.5, "threshold": 0.5}                              # threshold: classification only

A classification model returns ``prediction`` 1 when ``sigmoid(score) >= threshold`` (else 0) and the
``probability``; a regression model returns the score itself.

Each sampled prediction emits one capture record (design.md; :mod:`capture` decides sampling and
where it goes: a JSON line on stdout by default): ``request_id``, ``timestamp`` (ISO 8601 UTC),
``model_id``, ``model_version``, ``variant``, the feature columns, ``prediction``, ``probability``
(classification), ``latency_ms`` and ``label`` when the request carried one, so ``python -m drift
check`` reads the collected logs as JSON Lines. Everything else (errors, access logs) goes to stderr.

Configuration comes from the environment: ``MODEL_URI`` (``file://``, a local path, ``s3://``,
``gs://``, ``az://<container>/<blob>`` or ``https://``), ``MODEL_ID`` and ``MODEL_VERSION``. The
model is loaded once per process; cloud SDKs are imported only for their own scheme.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

if __package__:
    from . import capture as _capture
else:  # deployed: this directory is the code root
    import capture as _capture  # type: ignore[no-redef]

MODEL_FORMAT = "inferops-linear/v1"
#: Columns of the log record that a feature must not shadow.
RESERVED_COLUMNS = frozenset(
    {"timestamp", "model_id", "model_version", "prediction", "label", "probability"}
    | {"request_id", "variant", "latency_ms"}  # the capture record's own columns
)
#: Largest model document accepted (a linear model is small; a huge one is a wrong URI).
MAX_MODEL_BYTES = 10 * 1024 * 1024
#: Largest request body and batch the adapters accept.
MAX_BODY_BYTES = 1024 * 1024
MAX_INSTANCES = 1000
#: Deepest nesting of a request body (a batch of feature objects needs 3 levels).
MAX_BODY_DEPTH = 32
#: Most digits of an integer in a request (Python would parse 4,300 and then overflow on float()).
MAX_INT_DIGITS = 20
HTTP_TIMEOUT_S = 10.0


class InputError(ValueError):
    """A request the client must fix (HTTP 400); the message names the field."""

    status = 400


class ModelError(RuntimeError):
    """The model or its configuration cannot be loaded (HTTP 500); the message names the source."""

    status = 500


# --- the model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinearModel:
    """A linear (regression) or logistic (classification) model over numeric and categorical features."""

    task: Literal["classification", "regression"]
    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    categorical: dict[str, dict[str, float]] = field(default_factory=dict)
    threshold: float = 0.5

    @property
    def columns(self) -> tuple[str, ...]:
        """All input columns, numeric first, in the order the log record lists them."""
        return self.features + tuple(self.categorical)

    @classmethod
    def from_dict(cls, doc: Any, source: str = "model") -> LinearModel:
        """Validate a parsed model document; raises :class:`ModelError` naming ``source`` and the field."""

        def bad(msg: str) -> ModelError:
            return ModelError(f"{source}: {msg}")

        if not isinstance(doc, Mapping):
            raise bad("must be a JSON object")
        known = {"format", "task", "features", "weights", "bias", "categorical", "threshold", "metadata"}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise bad(f"unknown key {unknown[0]!r}")
        if doc.get("format") != MODEL_FORMAT:
            raise bad(f"format must be {MODEL_FORMAT!r} (got {doc.get('format')!r})")
        task = doc.get("task")
        if task not in ("classification", "regression"):
            raise bad(f"task must be 'classification' or 'regression' (got {task!r})")
        features, weights = doc.get("features"), doc.get("weights")
        if not isinstance(features, list) or not all(isinstance(f, str) and f for f in features):
            raise bad("features must be a list of names")
        if not isinstance(weights, list) or len(weights) != len(features):
            raise bad(f"weights must be a list of {len(features)} numbers, one per feature")
        for i, w in enumerate(weights):
            if not _is_number(w):
                raise bad(f"weights[{i}] must be a finite number")
        bias = doc.get("bias", 0.0)
        if not _is_number(bias):
            raise bad("bias must be a finite number")
        categorical_raw = doc.get("categorical") or {}
        if not isinstance(categorical_raw, Mapping):
            raise bad("categorical must map feature -> {category: weight}")
        categorical: dict[str, dict[str, float]] = {}
        for feat, table in categorical_raw.items():
            if not isinstance(table, Mapping) or not all(_is_number(v) for v in table.values()):
                raise bad(f"categorical.{feat} must map category -> finite number")
            categorical[str(feat)] = {str(k): float(v) for k, v in table.items()}
        columns = list(features) + list(categorical)
        if len(set(columns)) != len(columns):
            raise bad("a feature is listed twice (features and categorical share a name)")
        clash = sorted(set(columns) & RESERVED_COLUMNS)
        if clash:
            raise bad(f"feature name {clash[0]!r} is reserved for the log record")
        if not columns:
            raise bad("the model has no features")
        threshold = doc.get("threshold", 0.5)
        if not _is_number(threshold) or not 0.0 < float(threshold) < 1.0:
            raise bad("threshold must be a number strictly between 0 and 1")
        return cls(
            task=task,
            features=tuple(features),
            weights=tuple(float(w) for w in weights),
            bias=float(bias),
            categorical=categorical,
            threshold=float(threshold),
        )

    def validate(self, row: Any, where: str = "") -> dict[str, Any]:
        """The model's columns of ``row``, type-checked; raises :class:`InputError` naming the field."""
        prefix = f"{where}." if where else ""
        if not isinstance(row, Mapping):
            raise InputError(f"{where or 'body'}: must be a JSON object of features")
        unknown = sorted(set(row) - set(self.columns) - {"label"})
        if unknown:
            raise InputError(f"{prefix}{unknown[0]}: unknown feature (expected {', '.join(self.columns)})")
        out: dict[str, Any] = {}
        for name in self.features:
            if name not in row or row[name] is None:
                raise InputError(f"{prefix}{name}: missing numeric feature")
            if not _is_number(row[name]):
                raise InputError(f"{prefix}{name}: must be a finite number (got {row[name]!r})")
            out[name] = row[name]
        for name in self.categorical:
            if name not in row or row[name] is None:
                raise InputError(f"{prefix}{name}: missing categorical feature")
            if not isinstance(row[name], str):
                raise InputError(f"{prefix}{name}: must be a string (got {row[name]!r})")
            out[name] = row[name]
        return out

    def score(self, row: Mapping[str, Any]) -> float:
        """The linear term ``bias + w.x + sum of category weights`` of an already validated row."""
        pairs = zip(self.features, self.weights, strict=True)
        total = self.bias + math.fsum(w * float(row[f]) for f, w in pairs)
        return total + math.fsum(table.get(row[f], 0.0) for f, table in self.categorical.items())

    def predict(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """``{"prediction": ...}`` plus ``probability`` for classification, for a validated row.

        Raises :class:`InputError` when finite inputs make the score overflow (``1e308`` times a weight).
        """
        try:
            s = self.score(row)
        except OverflowError:
            s = math.inf
        if not math.isfinite(s):
            raise InputError("features: values too large for the model (the score overflows)")
        if self.task == "regression":
            return {"prediction": s}
        p = _sigmoid(s)
        return {"prediction": int(p >= self.threshold), "probability": p}


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _sigmoid(x: float) -> float:
    # Split by sign so exp never overflows.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


# --- loading -------------------------------------------------------------------------------------


def read_uri(uri: str) -> bytes:
    """The bytes at ``uri``; raises :class:`ModelError` naming the URI."""
    parsed = urllib.parse.urlparse(uri)
    scheme = parsed.scheme.lower()
    try:
        if scheme in ("", "file"):
            path = Path(urllib.parse.unquote(parsed.path) if scheme == "file" else uri)
            with path.open("rb") as fh:
                data = fh.read(MAX_MODEL_BYTES + 1)
        elif scheme == "s3":
            data = _read_s3(parsed.netloc, parsed.path.lstrip("/"))
        elif scheme in ("gs", "gcs"):
            data = _read_gcs(parsed.netloc, parsed.path.lstrip("/"))
        elif scheme == "az":
            data = _read_azure_blob(parsed.netloc, parsed.path.lstrip("/"))
        elif scheme == "https" or (scheme == "http" and parsed.hostname in ("127.0.0.1", "localhost", "::1")):
            data = _read_http(uri, parsed)
        else:
            raise ModelError(f"{uri}: unsupported scheme (use file, s3, gs, az or https)")
    except ModelError:
        raise
    except ImportError as exc:
        raise ModelError(f"{uri}: the SDK for {scheme}:// is not installed ({exc.name})") from None
    except Exception as exc:  # any SDK's error type: the message must name the URI, one line
        raise ModelError(f"{uri}: cannot read model ({type(exc).__name__}: {_one_line(exc)})") from None
    if len(data) > MAX_MODEL_BYTES:
        raise ModelError(f"{uri}: model larger than {MAX_MODEL_BYTES} bytes")
    return data


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def _read_s3(bucket: str, key: str) -> bytes:
    import boto3  # in the Lambda runtime; honours AWS_ENDPOINT_URL for MinIO/moto

    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    return bytes(body.read(MAX_MODEL_BYTES + 1))


def _read_gcs(bucket: str, name: str) -> bytes:
    from google.cloud import storage  # google-cloud-storage; Cloud Run's service account via ADC

    blob = storage.Client().bucket(bucket).blob(name)
    return bytes(blob.download_as_bytes())


def _read_azure_blob(container: str, name: str) -> bytes:
    from azure.identity import DefaultAzureCredential  # managed identity on Azure
    from azure.storage.blob import BlobServiceClient

    account = os.environ.get("AZURE_STORAGE_ACCOUNT_NAME")
    if not account:
        raise ModelError(f"az://{container}/{name}: set AZURE_STORAGE_ACCOUNT_NAME to read az:// URIs")
    url = f"https://{account}.blob.core.windows.net"
    client = BlobServiceClient(url, credential=DefaultAzureCredential())
    return bytes(client.get_blob_client(container, name).download_blob().readall())


def _read_http(uri: str, parsed: urllib.parse.ParseResult) -> bytes:
    headers = {"User-Agent": "inferops-handler/1"}
    host = parsed.hostname or ""
    if host.endswith(".blob.core.windows.net") and "sig=" not in parsed.query:
        # A private Azure blob without a SAS: authenticate with the function's managed identity.
        headers.update({"Authorization": f"Bearer {_storage_token()}", "x-ms-version": "2023-11-03"})
    req = urllib.request.Request(uri, headers=headers)
    with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
        return bytes(resp.read(MAX_MODEL_BYTES + 1))


def _storage_token() -> str:
    """An Entra ID token for Azure Storage from the platform's managed identity.

    On Azure Functions the App Service identity endpoint answers a plain GET with the
    ``X-IDENTITY-HEADER`` secret (learn.microsoft.com/azure/app-service/overview-managed-identity,
    "REST endpoint reference": ``IDENTITY_ENDPOINT``, ``IDENTITY_HEADER``, ``resource``,
    ``api-version=2019-08-01``, ``access_token`` in the JSON answer), so the Azure code package needs
    no third-party library for it (components/package.py). Elsewhere (a Kubernetes pod with workload
    identity) azure-identity's default chain is used.
    """
    endpoint, secret = os.environ.get("IDENTITY_ENDPOINT"), os.environ.get("IDENTITY_HEADER")
    if endpoint and secret:
        query = urllib.parse.urlencode({"resource": "https://storage.azure.com/", "api-version": "2019-08-01"})
        req = urllib.request.Request(f"{endpoint}?{query}", headers={"X-IDENTITY-HEADER": secret})
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
            token = json.loads(resp.read(65536)).get("access_token")
        if not isinstance(token, str) or not token:
            raise ValueError("the managed identity endpoint answered without an access_token")
        return token
    from azure.identity import DefaultAzureCredential

    return str(DefaultAzureCredential().get_token("https://storage.azure.com/.default").token)


def load_model(uri: str) -> LinearModel:
    """Read and validate the model document at ``uri``."""
    raw = read_uri(uri)
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{uri}: not valid JSON ({_one_line(exc)})") from None
    return LinearModel.from_dict(doc, source=uri)


# --- serving -------------------------------------------------------------------------------------


def log_error(message: str, **fields: Any) -> None:
    """One JSON line on stderr (never stdout, which carries only prediction records)."""
    record = {"timestamp": utc_now(), "level": "error", "message": message, **fields}
    sys.stderr.write(json.dumps(record, default=str) + "\n")
    sys.stderr.flush()


def utc_now() -> str:
    """The current time as ISO 8601 UTC with milliseconds and a ``Z`` suffix."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Predictor:
    """A loaded model with its identity; turns request bodies into predictions and log records."""

    model: LinearModel
    model_id: str
    model_version: str
    capture: _capture.Capture = field(default_factory=lambda: _capture.Capture(_capture.CaptureConfig()))
    clock: Callable[[], str] = utc_now

    def predict_body(self, body: bytes | str | Any, request_id: str | None = None) -> dict[str, Any]:
        """Predict for a request body: one object of features, or ``{"instances": [...]}``.

        Each row may carry ``label`` (the observed outcome), which is logged but not used. Raises
        :class:`InputError` for bad input; nothing is logged for a request that fails validation.
        ``request_id`` (from :func:`capture.request_id_from`; generated when None) is returned in the
        response, so the client can send the delayed label with it.
        """
        started = time.perf_counter()
        rid = request_id or _capture.request_id_from()
        doc = parse_json_body(body)
        if isinstance(doc, Mapping) and "instances" in doc:
            if set(doc) != {"instances"}:
                raise InputError("body: with 'instances', no other top-level key is allowed")
            rows = doc["instances"]
            if not isinstance(rows, list) or not rows:
                raise InputError("instances: must be a non-empty list of feature objects")
            if len(rows) > MAX_INSTANCES:
                raise InputError(f"instances: at most {MAX_INSTANCES} per request (got {len(rows)})")
            results = self._predict_rows(rows, batch=True, request_id=rid, started=started)
            ident = {"model_id": self.model_id, "model_version": self.model_version, "request_id": rid}
            return {**ident, "predictions": results}
        (result,) = self._predict_rows([doc], batch=False, request_id=rid, started=started)
        return {"model_id": self.model_id, "model_version": self.model_version, "request_id": rid, **result}

    def _predict_rows(self, rows: list[Any], batch: bool, request_id: str, started: float) -> list[dict[str, Any]]:
        validated = []
        for i, row in enumerate(rows):
            where = f"instances[{i}]" if batch else ""
            features = self.model.validate(row, where)
            label = row.get("label")
            if label is not None and not (_is_number(label) or isinstance(label, str)):
                raise InputError(f"{where + '.' if where else ''}label: must be a number or a string")
            validated.append((features, label))
        results = [self.model.predict(features) for features, _ in validated]
        if not self.capture.wants(request_id):
            return results
        stamp = self.clock()
        latency_ms = round((time.perf_counter() - started) * 1000.0, 3)
        for i, ((features, label), result) in enumerate(zip(validated, results, strict=True)):
            record: dict[str, Any] = {
                "request_id": _capture.row_request_id(request_id, i, batch),
                "timestamp": stamp,
                "model_id": self.model_id,
                "model_version": self.model_version,
                "variant": self.capture.config.variant,
                **features,
                **result,  # prediction, and probability for classification
                "latency_ms": latency_ms,
            }
            if label is not None:
                record["label"] = label
            self.capture.emit(record)
        return results


#: The adapters' way to name a request (re-exported so they import only this module).
request_id_from = _capture.request_id_from


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _check_depth(doc: Any) -> None:
    """Iteratively, so an already-parsed deep value (a Lambda test event) cannot recurse either."""
    stack = [(doc, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_BODY_DEPTH:
            raise InputError(f"body: nested deeper than {MAX_BODY_DEPTH} levels")
        if isinstance(node, Mapping):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list | tuple):
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, int) and not isinstance(node, bool) and node.bit_length() > 3.33 * MAX_INT_DIGITS:
            raise InputError(f"body: an integer has more than {MAX_INT_DIGITS} digits")


def parse_json_body(body: bytes | str | Any) -> Any:
    """A request body as JSON; already-parsed values pass through. Raises :class:`InputError`.

    Integers are bounded in digits and nesting is bounded, so no body makes the parser or the model
    raise anything but :class:`InputError` (``NaN`` parses, and validation names its field).
    """
    if isinstance(body, bytes | bytearray):
        if len(body) > MAX_BODY_BYTES:
            raise InputError(f"body: larger than {MAX_BODY_BYTES} bytes")
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("body: must be UTF-8 JSON") from None
    if isinstance(body, str):
        if not body.strip():
            raise InputError("body: empty; send a JSON object of features")
        try:
            doc = json.loads(body, parse_int=_bounded_int)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno} column {exc.colno}"
            raise InputError(f"body: invalid JSON ({exc.msg} at {where})") from None
        except RecursionError:
            raise InputError(f"body: nested deeper than {MAX_BODY_DEPTH} levels") from None
        except ValueError as exc:
            raise InputError(f"body: invalid JSON ({exc})") from None
        body = doc
    _check_depth(body)
    return body


_cache: dict[tuple[str, str, str], Predictor] = {}
_cache_lock = threading.Lock()


def get_predictor(env: Mapping[str, str] | None = None) -> Predictor:
    """The process-wide predictor for ``MODEL_URI``/``MODEL_ID``/``MODEL_VERSION`` (loaded once)."""
    env = os.environ if env is None else env
    missing = [k for k in ("MODEL_URI", "MODEL_ID", "MODEL_VERSION") if not env.get(k)]
    if missing:
        raise ModelError(f"environment: {missing[0]} is not set")
    key = (env["MODEL_URI"], env["MODEL_ID"], env["MODEL_VERSION"])
    with _cache_lock:  # threads of one server share a single load
        predictor = _cache.get(key)
        if predictor is None:
            model = load_model(key[0])
            try:
                capture = _capture.Capture.from_env(env)
            except _capture.CaptureConfigError as exc:
                raise ModelError(f"environment: {exc}") from None
            predictor = Predictor(model, model_id=key[1], model_version=key[2], capture=capture)
            _cache[key] = predictor
    return predictor


def clear_cache() -> None:
    """Forget loaded models, flushing their capture writers (tests; a process keeps its model for life)."""
    with _cache_lock:
        for predictor in _cache.values():
            predictor.capture.close()
        _cache.clear()


def handle(
    body: bytes | str | Any, predictor: Predictor | None = None, request_id: str | None = None
) -> tuple[int, dict[str, Any]]:
    """Status code and JSON response for a prediction request; the adapters' single entry point.

    ``request_id``: what :func:`capture.request_id_from` made of the request's headers and the
    platform's id (generated when None).
    """
    try:
        p = predictor or get_predictor()
        return 200, p.predict_body(body, request_id=request_id)
    except InputError as exc:
        return 400, {"error": str(exc)}
    except ModelError as exc:
        log_error("model unavailable", detail=str(exc))
        return 500, {"error": "model unavailable"}
    except Exception as exc:  # a bug must still answer (JSON 500), never drop the connection
        log_error("internal error", detail=f"{type(exc).__name__}: {exc}")
        return 500, {"error": "internal error"}


def health(predictor: Predictor | None = None) -> tuple[int, dict[str, Any]]:
    """Readiness: 200 once the model is loaded, 503 when it cannot be."""
    try:
        p = predictor or get_predictor()
    except ModelError as exc:
        log_error("model unavailable", detail=str(exc))
        return 503, {"status": "unavailable"}
    return 200, {"status": "ok", "model_id": p.model_id, "model_version": p.model_version}
