"""The inference handler: model format, loaders, prediction log records, and each adapter run locally.

Expected predictions are computed by hand from functions/models/example-linear.json:
amount 20, age 30, country US, device ios -> score -0.5 + 0.04*20 - 0.02*30 + 0.3 + 0.2 = 0.2,
probability 1 / (1 + e^-0.2) = 0.549833997312478, prediction 1.
"""

from __future__ import annotations

import base64
import functools
import http.client
import json
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.json as pa_json
import pytest

from functions import core

MODEL_PATH = Path(__file__).resolve().parent.parent / "functions" / "models" / "example-linear.json"
ROW = {"amount": 20, "age": 30, "country": "US", "device": "ios"}
P_ROW = 0.549833997312478
#: The design.md capture record, in the order the handler writes it (``label`` follows when sent).
DRIFT_COLUMNS = [
    "request_id",
    "timestamp",
    "model_id",
    "model_version",
    "variant",
    "amount",
    "age",
    "country",
    "device",
    "prediction",
    "probability",
    "latency_ms",
]


@pytest.fixture(autouse=True)
def model_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts with the example model configured and no cached predictor."""
    monkeypatch.setenv("MODEL_URI", str(MODEL_PATH))
    monkeypatch.setenv("MODEL_ID", "fraud-scorer")
    monkeypatch.setenv("MODEL_VERSION", "2.2.0")
    core.clear_cache()
    yield
    core.clear_cache()


def _records(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


# --- model format and prediction -------------------------------------------------------------------


def test_classification_matches_hand_computed_logistic() -> None:
    model = core.load_model(str(MODEL_PATH))
    result = model.predict(model.validate(ROW))
    assert result["prediction"] == 1
    assert result["probability"] == pytest.approx(P_ROW, rel=1e-12)
    # Unknown category weighs 0: score -0.5 + 0.8 - 0.6 + 0 + 0 = -0.3 -> p = 0.425557483188341 -> 0.
    low = model.predict(model.validate({**ROW, "country": "FR", "device": "tv"}))
    assert low["probability"] == pytest.approx(0.425557483188341, rel=1e-12)
    assert low["prediction"] == 0


def test_regression_returns_the_linear_score(tmp_path: Path) -> None:
    doc = {
        "format": "inferops-linear/v1",
        "task": "regression",
        "features": ["x", "y"],
        "weights": [2.0, -1.5],
        "bias": 0.25,
    }
    path = tmp_path / "reg.json"
    path.write_text(json.dumps(doc))
    model = core.load_model(path.as_uri())  # file:// URI
    assert model.predict(model.validate({"x": 3, "y": 2}))["prediction"] == pytest.approx(3.25)
    assert "probability" not in model.predict(model.validate({"x": 0, "y": 0}))


def test_threshold_decides_the_class(tmp_path: Path) -> None:
    doc = json.loads(MODEL_PATH.read_text())
    doc["threshold"] = 0.6  # p = 0.5498 < 0.6
    path = tmp_path / "m.json"
    path.write_text(json.dumps(doc))
    model = core.load_model(str(path))
    assert model.predict(model.validate(ROW))["prediction"] == 0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"format": "sklearn"}, "format must be"),
        ({"task": "ranking"}, "task must be"),
        ({"weights": [0.1]}, "weights must be a list of 2"),
        ({"weights": [0.1, "x"]}, "weights[1] must be a finite number"),
        ({"features": ["amount", "prediction"]}, "'prediction' is reserved"),
        ({"categorical": {"amount": {"a": 1}}}, "listed twice"),
        ({"threshold": 1.5}, "threshold must be"),
        ({"extra": 1}, "unknown key 'extra'"),
    ],
)
def test_bad_model_documents_name_the_field(tmp_path: Path, edit: dict[str, Any], message: str) -> None:
    doc = {**json.loads(MODEL_PATH.read_text()), **edit}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(core.ModelError) as err:
        core.load_model(str(path))
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_unreadable_and_non_json_models(tmp_path: Path) -> None:
    with pytest.raises(core.ModelError, match=r"missing\.json: cannot read model"):
        core.load_model(str(tmp_path / "missing.json"))
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(core.ModelError, match=r"x\.json: not valid JSON"):
        core.load_model(str(tmp_path / "x.json"))
    with pytest.raises(core.ModelError, match="unsupported scheme"):
        core.load_model("ftp://example.com/model.json")
    with pytest.raises(core.ModelError, match="unsupported scheme"):
        core.load_model("http://models.example.com/model.json")  # plain http only on loopback


# --- loaders for remote schemes ----------------------------------------------------------------------


def test_s3_loader_reads_through_boto3(monkeypatch: pytest.MonkeyPatch) -> None:
    moto = pytest.importorskip("moto")
    import boto3

    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with moto.mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="example-models")
        s3.put_object(Bucket="example-models", Key="fraud/2.2.0/model.json", Body=MODEL_PATH.read_bytes())
        model = core.load_model("s3://example-models/fraud/2.2.0/model.json")
        assert model.columns == ("amount", "age", "country", "device")
        with pytest.raises(core.ModelError, match=r"s3://example-models/nope\.json: cannot read model"):
            core.load_model("s3://example-models/nope.json")


def test_https_loader_over_loopback(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_bytes(MODEL_PATH.read_bytes())
    handler = functools.partial(_QuietFiles, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        model = core.load_model(f"http://127.0.0.1:{port}/model.json")
        assert model.predict(model.validate(ROW))["probability"] == pytest.approx(P_ROW)
        with pytest.raises(core.ModelError, match="HTTPError"):
            core.load_model(f"http://127.0.0.1:{port}/absent.json")
    finally:
        server.shutdown()
        server.server_close()


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_missing_cloud_sdk_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google.cloud.storage", None)
    monkeypatch.setitem(sys.modules, "google.cloud", None)
    with pytest.raises(core.ModelError, match=r"gs://bucket/m\.json: the SDK for gs:// is not installed"):
        core.load_model("gs://bucket/m.json")


# --- request handling and the log record ------------------------------------------------------------


def test_one_log_record_per_prediction_in_drift_format(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, body = core.handle(json.dumps({"instances": [{**ROW, "label": 1}, {**ROW, "amount": 0}]}))
    assert status == 200
    assert [p["prediction"] for p in body["predictions"]] == [1, 0]  # second: score -0.6 -> p 0.354
    assert body["predictions"][1]["probability"] == pytest.approx(0.35434369377420455)
    out = capsys.readouterr().out
    records = _records(out)
    assert len(records) == 2
    assert list(records[0]) == [*DRIFT_COLUMNS, "label"]
    assert list(records[1]) == DRIFT_COLUMNS  # no label in the request, none in the log
    first = records[0]
    assert first["model_id"] == "fraud-scorer" and first["model_version"] == "2.2.0"
    assert (first["amount"], first["country"], first["prediction"], first["label"]) == (20, "US", 1, 1)
    assert first["timestamp"].endswith("Z")
    assert datetime.fromisoformat(first["timestamp"]).utcoffset().total_seconds() == 0
    # The drift readers go through pyarrow's JSON reader: the lines must load as one table.
    (tmp_path / "log.jsonl").write_text(out)
    table = pa_json.read_json(tmp_path / "log.jsonl")
    assert set(DRIFT_COLUMNS) <= set(table.column_names)
    assert table.num_rows == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "body: empty"),
        ("{nope", "body: invalid JSON"),
        (json.dumps([1, 2]), "body: must be a JSON object"),
        (json.dumps({k: v for k, v in ROW.items() if k != "age"}), "age: missing numeric feature"),
        (json.dumps({**ROW, "amount": "12"}), "amount: must be a finite number"),
        (json.dumps({**ROW, "amount": True}), "amount: must be a finite number"),
        ('{"amount": NaN, "age": 1, "country": "US", "device": "ios"}', "amount: must be a finite number"),
        (json.dumps({**ROW, "country": 3}), "country: must be a string"),
        (json.dumps({**ROW, "colour": "red"}), "colour: unknown feature"),
        (json.dumps({**ROW, "label": [1]}), "label: must be a number or a string"),
        (json.dumps({"instances": [ROW, {**ROW, "age": None}]}), "instances[1].age: missing numeric feature"),
        (json.dumps({"instances": []}), "instances: must be a non-empty list"),
        (json.dumps({"instances": [ROW] * 1001}), "instances: at most 1000"),
    ],
)
def test_bad_requests_are_400_and_log_nothing(capsys: pytest.CaptureFixture[str], body: str, message: str) -> None:
    status, payload = core.handle(body)
    assert status == 400
    assert message in payload["error"]
    assert capsys.readouterr().out == ""


def test_model_is_loaded_once_per_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.json"
    path.write_text(MODEL_PATH.read_text())
    monkeypatch.setenv("MODEL_URI", str(path))
    first = core.get_predictor()
    path.write_text("garbage")  # a cached model must not be re-read
    assert core.get_predictor() is first
    core.clear_cache()
    with pytest.raises(core.ModelError):
        core.get_predictor()


def test_missing_configuration_is_500_without_details(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MODEL_VERSION")
    status, payload = core.handle(json.dumps(ROW))
    assert (status, payload) == (500, {"error": "model unavailable"})
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "MODEL_VERSION is not set" in captured.err
    assert core.health()[0] == 503


# --- adapters ----------------------------------------------------------------------------------------


def _lambda_event(method: str, path: str, body: str | None, b64: bool = False) -> dict[str, Any]:
    if body is not None and b64:
        body = base64.b64encode(body.encode()).decode()
    return {
        "version": "2.0",
        "rawPath": path,
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": method, "path": path}},
        "body": body,
        "isBase64Encoded": b64,
    }


@pytest.mark.parametrize("b64", [False, True])
def test_lambda_adapter_predicts(capsys: pytest.CaptureFixture[str], b64: bool) -> None:
    from functions import aws_lambda

    resp = aws_lambda.handler(_lambda_event("POST", "/", json.dumps(ROW), b64=b64), None)
    assert resp["statusCode"] == 200
    assert resp["headers"]["content-type"] == "application/json"
    body = json.loads(resp["body"])
    assert body["prediction"] == 1 and body["probability"] == pytest.approx(P_ROW)
    (record,) = _records(capsys.readouterr().out)
    assert list(record) == DRIFT_COLUMNS


def test_lambda_adapter_errors_and_health() -> None:
    from functions import aws_lambda

    assert aws_lambda.handler(_lambda_event("POST", "/predict", "{oops"), None)["statusCode"] == 400
    assert aws_lambda.handler(_lambda_event("PUT", "/predict", "{}"), None)["statusCode"] == 405
    bad64 = _lambda_event("POST", "/", "x")
    bad64["isBase64Encoded"] = True
    assert aws_lambda.handler(bad64, None)["statusCode"] == 400
    health = aws_lambda.handler(_lambda_event("GET", "/healthz", None), None)
    assert health["statusCode"] == 200
    assert json.loads(health["body"])["model_version"] == "2.2.0"


def test_azure_adapter_predicts_with_function_key_auth(capsys: pytest.CaptureFixture[str]) -> None:
    func = pytest.importorskip("azure.functions")
    from functions import function_app

    req = func.HttpRequest(
        method="POST",
        url="/api/predict",
        body=json.dumps({**ROW, "label": 0}).encode(),
        headers={"content-type": "application/json"},
    )
    resp = function_app.predict(req)
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    assert json.loads(resp.get_body())["probability"] == pytest.approx(P_ROW)
    (record,) = _records(capsys.readouterr().out)
    assert record["label"] == 0

    bad = function_app.predict(func.HttpRequest(method="POST", url="/api/predict", body=b"[]"))
    assert bad.status_code == 400

    bindings = {
        f.get_function_name(): json.loads(f.get_function_json())["bindings"] for f in function_app.app.get_functions()
    }
    trigger = next(b for b in bindings["predict"] if b["type"] == "httpTrigger")
    assert trigger["route"] == "predict" and trigger["methods"] == ["POST"]
    assert trigger["authLevel"] == "FUNCTION"  # never anonymous unless configured


def test_azure_auth_level_follows_the_app_setting() -> None:
    func = pytest.importorskip("azure.functions")
    from functions.function_app import auth_level

    assert auth_level({}) == func.AuthLevel.FUNCTION
    assert auth_level({"INFEROPS_AUTH_LEVEL": "function"}) == func.AuthLevel.FUNCTION
    assert auth_level({"INFEROPS_AUTH_LEVEL": " Anonymous "}) == func.AuthLevel.ANONYMOUS
    assert auth_level({"INFEROPS_AUTH_LEVEL": "admin"}) == func.AuthLevel.FUNCTION


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    from functions import http_server

    srv = http_server.make_server("127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def _call(addr: tuple[str, int], method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(*addr, timeout=5)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_http_server_over_loopback(server: tuple[str, int], capsys: pytest.CaptureFixture[str]) -> None:
    status, body = _call(server, "POST", "/predict", json.dumps(ROW).encode())
    assert status == 200
    assert body["prediction"] == 1 and body["probability"] == pytest.approx(P_ROW)
    assert body["model_version"] == "2.2.0"
    (record,) = _records(capsys.readouterr().out)
    assert list(record) == DRIFT_COLUMNS and record["prediction"] == 1

    assert _call(server, "GET", "/healthz") == (
        200,
        {"status": "ok", "model_id": "fraud-scorer", "model_version": "2.2.0"},
    )
    assert _call(server, "POST", "/predict", b'{"amount": 1}')[0] == 400
    assert _call(server, "GET", "/nowhere")[0] == 404
    assert _call(server, "GET", "/predict")[0] == 405
    # An oversized body is refused from its Content-Length, before it is read.
    conn = http.client.HTTPConnection(*server, timeout=5)
    conn.putrequest("POST", "/predict")
    conn.putheader("Content-Length", str(core.MAX_BODY_BYTES + 1))
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()
    assert capsys.readouterr().out == ""  # failed requests log no prediction record
