"""One ``az://`` convention for everything the program exports and the drift/FinOps CLIs read.

The project's form is ``az://<storage account>/<container>/<path>`` (components/spec.py ``_AZ_URI_RE``,
model.artifactUri, capture.destination and the Kubernetes ``captureUri``, model.referenceUri). adlfs
reads ``az://X/...`` with X as the container (adlfs.spec.AzureBlobFileSystem._strip_protocol: the host
is the container unless it carries ``.dfs.core.windows.net``), so :func:`drift.readers.resolve`
translates the project form to adlfs's account-qualified ``az://<container>@<account>.blob.core.windows.net/``
(adlfs takes ``account_name`` from that host: ``_get_kwargs_from_urls``) and keeps reading that form and
``abfs[s]://`` as adlfs does. The rule and its refusals are in drift/readers.py and docs/drift-cli.md.
"""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from drift import capture as cap
from drift import readers
from drift.cli import main
from drift.readers import AzureBlobLocation, DataError, azure_blob_location, hadoop_uri
from tests.emulators import AZURITE_ACCOUNT

_AZ_VARS = (
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CLIENT_ID",
)


@pytest.fixture
def no_azure_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Azure variables, and adlfs anonymous: only the URI parsing is under test, no credential lookup."""
    for var in _AZ_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AZURE_STORAGE_ANON", "true")


# --- the rule ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        # The project's form: the first segment is the account, always (whatever the environment says).
        ("az://lakeacct/captures/sentiment", AzureBlobLocation("lakeacct", "captures", "sentiment")),
        ("az://lakeacct/captures/a/b.jsonl", AzureBlobLocation("lakeacct", "captures", "a/b.jsonl")),
        ("az://lakeacct/captures", AzureBlobLocation("lakeacct", "captures", "")),
        ("az://lakeacct/$logs/blob", AzureBlobLocation("lakeacct", "$logs", "blob")),
        # adlfs's account-qualified form (what components/azure.py exports): the account from the host.
        (
            "az://insights-logs-functionapplogs@lakeacct.blob.core.windows.net/resourceId=/SUBSCRIPTIONS/X",
            AzureBlobLocation("lakeacct", "insights-logs-functionapplogs", "resourceId=/SUBSCRIPTIONS/X", True),
        ),
        ("abfss://logs@lakeacct.dfs.core.windows.net/fraud/", AzureBlobLocation("lakeacct", "logs", "fraud/", True)),
        ("abfs://logs@lakeacct.blob.core.windows.net/x", AzureBlobLocation("lakeacct", "logs", "x", True)),
        # adlfs's own container-first abfs[s]:// (the account from the environment): not translated.
        ("abfs://logs/fraud/x.jsonl", None),
        ("abfss://logs/fraud/x.jsonl", None),
        ("s3://bucket/key", None),
        ("/local/path.jsonl", None),
    ],
)
def test_azure_blob_location_follows_one_rule(uri: str, expected: AzureBlobLocation | None) -> None:
    assert azure_blob_location(uri) == expected


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("az://lakeacct", "names no container: az:// URIs are az://<storage account>/<container>/<path>"),
        ("az://lakeacct/", "names no container"),
        # Account names are 3-24 lowercase letters and digits (resource-name-rules, Microsoft.Storage).
        ("az://Lake-Acct/captures/x", "'Lake-Acct' is not a storage account name"),
        ("az://la/captures/x", "'la' is not a storage account name"),
        # Container names: 3-63 lowercase letters, digits and single hyphens (naming-and-referencing-containers).
        ("az://lakeacct/Captures/x", "'Captures' is not a container name"),
        ("az://lakeacct/cap--tures/x", "'cap--tures' is not a container name"),
        ("az://user@example.com/x", "not an Azure Blob URI"),
    ],
)
def test_an_az_uri_of_neither_form_is_one_line_naming_it(uri: str, message: str) -> None:
    with pytest.raises(DataError) as err:
        azure_blob_location(uri)
    assert str(err.value).startswith(f"{uri}: ") and message in str(err.value)
    assert "\n" not in str(err.value)


def test_project_form_opens_the_named_account_through_adlfs(no_azure_env: None) -> None:
    fs, path = readers.resolve("az://lakeacct/captures/sentiment/model_version=1")
    assert fs.account_name == "lakeacct"
    assert path == "captures/sentiment/model_version=1"


def test_project_form_accepts_a_matching_account_variable(no_azure_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "lakeacct")
    fs, path = readers.resolve("az://lakeacct/captures/x")
    assert (fs.account_name, path) == ("lakeacct", "captures/x")


def test_an_adlfs_habit_is_refused_not_guessed(no_azure_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """``az://captures/sentiment`` with AZURE_STORAGE_ACCOUNT_NAME=lakeacct is container-first to adlfs and
    account-first to the project: refused with the URI to write instead, never read from account 'captures'."""
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "lakeacct")
    with pytest.raises(DataError) as err:
        readers.resolve("az://captures/sentiment/x.jsonl")
    text = str(err.value)
    assert text.startswith("az://captures/sentiment/x.jsonl: az:// URIs name the account first")
    assert "az://captures@lakeacct.blob.core.windows.net/..." in text


def test_qualified_form_needs_no_account_variable_and_wins_over_it(
    no_azure_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # adlfs passes the host's account as account_name, which wins over AZURE_STORAGE_ACCOUNT_NAME.
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "otheracct")
    fs, path = readers.resolve("az://logs@lakeacct.blob.core.windows.net/fraud/x.jsonl")
    assert (fs.account_name, path) == ("lakeacct", "logs/fraud/x.jsonl")


def test_adlfs_container_first_abfs_keeps_its_meaning(no_azure_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "lakeacct")
    fs, path = readers.resolve("abfs://logs/fraud/x.jsonl")
    assert (fs.account_name, path) == ("lakeacct", "logs/fraud/x.jsonl")


@pytest.mark.parametrize(
    "uri", ["az://lakeacct/captures/x", "az://captures@lakeacct.blob.core.windows.net/x"], ids=["project", "adlfs"]
)
def test_a_connection_string_for_another_account_is_refused(
    no_azure_env: None, monkeypatch: pytest.MonkeyPatch, uri: str
) -> None:
    """adlfs connects with AZURE_STORAGE_CONNECTION_STRING in preference to the account it is given
    (adlfs.spec.AzureBlobFileSystem.do_connect tests connection_string first), so with one for another
    account every az:// read would silently go there."""
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        "DefaultEndpointsProtocol=https;AccountName=billingacct;AccountKey=a2V5;EndpointSuffix=core.windows.net",
    )
    with pytest.raises(DataError) as err:
        readers.resolve(uri)
    assert str(err.value) == (
        f"{uri}: AZURE_STORAGE_CONNECTION_STRING is for account 'billingacct', and adlfs would use it instead "
        "of account 'lakeacct': unset it (DefaultAzureCredential) or set one for 'lakeacct'"
    )


def test_a_connection_string_without_an_account_is_refused(no_azure_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING", "BlobEndpoint=http://127.0.0.1:1/x;SharedAccessSignature=sv=1"
    )
    with pytest.raises(DataError, match=r"^az://lakeacct/c1c/x: AZURE_STORAGE_CONNECTION_STRING names no account"):
        readers.resolve("az://lakeacct/c1c/x")


def test_a_sas_connection_string_names_its_account_by_its_endpoint(
    no_azure_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        "BlobEndpoint=https://lakeacct.blob.core.windows.net/;SharedAccessSignature=sv=1",
    )
    _, path = readers.resolve("az://lakeacct/captures/x")
    assert path == "captures/x"


def test_cli_bad_az_uri_is_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_azure_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = tmp_path / "ref.jsonl"
    ref.write_text('{"amount": 1.0}\n')
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "lakeacct")
    argv = ["check", "--capture", "az://captures/fraud", "--window", "1h", "--reference", str(ref)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("drift: error: az://captures/fraud: az:// URIs name the account")


# --- Spark (Hadoop's ABFS driver) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        # The ABFS driver names accounts with or without a hierarchical namespace on the Data Lake endpoint:
        # abfs[s]://<file_system>@<account_name>.dfs.core.windows.net/<path>
        # (learn.microsoft.com/azure/storage/blobs/data-lake-storage-introduction-abfs-uri).
        ("az://lakeacct/captures/a/b.jsonl.gz", "abfss://captures@lakeacct.dfs.core.windows.net/a/b.jsonl.gz"),
        ("az://logs@lakeacct.blob.core.windows.net/x/", "abfss://logs@lakeacct.dfs.core.windows.net/x/"),
        ("abfss://logs@lakeacct.dfs.core.windows.net/x", "abfss://logs@lakeacct.dfs.core.windows.net/x"),
        ("s3://bucket/key.parquet", "s3://bucket/key.parquet"),
        ("gs://bucket/key.parquet", "gs://bucket/key.parquet"),
        ("dbfs:/inferops/ref.parquet", "dbfs:/inferops/ref.parquet"),
    ],
)
def test_hadoop_uri_names_the_account_for_the_abfs_driver(uri: str, expected: str) -> None:
    assert hadoop_uri(uri) == expected


def test_hadoop_uri_refuses_abfs_without_the_account() -> None:
    with pytest.raises(DataError, match=r"^abfss://logs/x: Spark's ABFS driver needs the account"):
        hadoop_uri("abfss://logs/x")


def test_spark_main_refuses_an_out_uri_it_cannot_write(capsys: pytest.CaptureFixture[str]) -> None:
    from drift import spark

    assert spark.main(["check", "--reference", "r.jsonl", "--current", "c.jsonl", "--out", "abfss://logs/r.json"]) == 2
    assert capsys.readouterr().err.startswith("drift: error: --out: abfss://logs/r.json: Spark's ABFS driver")


# --- against Azurite ---------------------------------------------------------------------------------------


@pytest.fixture
def thread_loop_restored() -> Any:
    """adlfs sets fsspec's I/O loop (running in its own thread) as this thread's event loop when it opens
    a blob (adlfs.spec.AzureBlobFile._get_loop); a Pulumi program run in-process afterwards would pump that
    loop and fail ("no running event loop"). Put the thread back as it was for the tests after this one."""
    import asyncio

    yield
    loop = asyncio.get_event_loop_policy().get_event_loop()
    if loop.is_running():  # not this thread's: nothing runs a loop in the test thread
        asyncio.set_event_loop(asyncio.new_event_loop())


def _put(container: str, blobs: dict[str, bytes]) -> None:
    import os

    from azure.storage.blob import BlobServiceClient

    client = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])
    for key, data in blobs.items():
        client.get_container_client(container).upload_blob(key, data)


def test_label_files_under_a_prefix_keep_the_account(azure_env: str, thread_loop_restored: None) -> None:
    """Files found under an ``az://<account>/...`` prefix are named in that form, not adlfs's
    ``abfs://<container>/...`` (``unstrip_protocol`` drops the account; without a connection string the
    labels would be opened in whatever account the environment names)."""
    _put(azure_env, {"labels/day=1/a.jsonl": b'{"request_id": "r1", "label": 1}\n', "labels/b.txt": b"notes"})
    uri = f"az://{AZURITE_ACCOUNT}/{azure_env}/labels/"
    assert cap._label_uris(uri) == [f"az://{AZURITE_ACCOUNT}/{azure_env}/labels/day=1/a.jsonl"]
    assert cap.read_labels(uri).by_id == {"r1": (1, None)}


def test_spark_capture_paths_name_the_account(azure_env: str) -> None:
    """``drift check --capture az://... --engine spark`` hands Spark abfss:// paths with the account; the
    listing itself is fsspec's (no Spark needed to check the names)."""
    from datetime import UTC, datetime

    from drift import spark_capture

    key = "fraud/model_version=2/date=2026-01-12/hour=05/pod-1.jsonl.gz"
    _put(azure_env, {key: gzip.compress(b'{"x": 1}\n')})
    window = cap.Window(datetime(2026, 1, 12, 5, tzinfo=UTC), datetime(2026, 1, 12, 6, tzinfo=UTC))
    paths, listing = spark_capture.hadoop_paths(f"az://{AZURITE_ACCOUNT}/{azure_env}/fraud", window)
    assert paths == [f"abfss://{azure_env}@{AZURITE_ACCOUNT}.dfs.core.windows.net/{key}"]
    assert len(listing.files) == 1


def test_finops_names_azure_exports_with_their_account(azure_env: str) -> None:
    """``finops report --focus az://<account>/<container>/<prefix>`` lists the export's files and names each
    in the same form (the dedup key and what reports cite), not adlfs's container-first az://<container>/..."""
    from finops.sources import expand

    _put(azure_env, {"focus/2026-01/part_0.csv": b"BilledCost\n1\n", "focus/2026-01/manifest.json": b"{}"})
    files = expand(f"az://{AZURITE_ACCOUNT}/{azure_env}/focus/")
    assert [f.uri for f in files] == [f"az://{AZURITE_ACCOUNT}/{azure_env}/focus/2026-01/part_0.csv"]
    assert azure_blob_location(files[0].uri) == AzureBlobLocation(
        AZURITE_ACCOUNT, azure_env, "focus/2026-01/part_0.csv"
    )


def test_spark_reads_the_project_form_through_abfss() -> None:
    """read_logs hands Spark the ABFS driver's URI (a recording stand-in for ``spark.read``: no
    hadoop-azure here)."""
    from drift import spark as drift_spark

    loaded: list[str] = []

    class Reader:
        def option(self, *_: Any) -> Reader:
            return self

        def format(self, _: str) -> Reader:
            return self

        def load(self, path: str) -> Any:
            loaded.append(path)
            raise RuntimeError("stop")  # not an AnalysisException: read_logs re-raises it as it is

    class Session:
        read = Reader()

    with pytest.raises(RuntimeError, match="stop"):
        drift_spark.read_logs(Session(), "az://lakeacct/references/churn/ref.parquet")  # type: ignore[arg-type]
    assert loaded == ["abfss://references@lakeacct.dfs.core.windows.net/churn/ref.parquet"]


# --- Kubernetes end to end: the component's env, the handler's writer, the exported captureUri ------------


def _kubernetes_capture_run(dev_config: dict[str, Any], destination: str) -> Any:
    import copy

    from inferops.harness import run_program
    from tests.conftest import DEV_STACK, function_config

    config = copy.deepcopy(dev_config)
    function_config(config, "sentiment")["capture"] = {"destination": destination}
    config["inferops:functions"] = [f for f in config["inferops:functions"] if f["platform"] == "kubernetes"]
    return run_program(DEV_STACK, config=config, stack="dev")


@pytest.mark.parametrize(("amount_mean", "expected"), [(28.0, 1), (20.0, 0)])
def test_kubernetes_capture_uri_is_read_as_exported(
    tmp_path: Path,
    azure_env: str,
    monkeypatch: pytest.MonkeyPatch,
    dev_config: dict[str, Any],
    amount_mean: float,
    expected: int,
) -> None:
    """``capture.destination: az://<account>/<container>/<prefix>``: the pod's handler writes through its
    batched writer with the environment the component sets on the Knative container, and ``drift check
    --capture <the exported captureUri>`` reads that window as exported. Shifted by one standard deviation:
    drift (1); unshifted: none (0, one seeded draw; the false-alarm rate is test_drift_detect.py's).
    Azurite stands in for the pod's identity with a connection string for the same account."""
    import numpy as np

    from functions import capture as fcap
    from functions import core
    from tests.test_drift_capture import DAY, MODEL, _rows, _write_reference

    prefix = f"fraud-{uuid.uuid4().hex[:6]}"
    run = _kubernetes_capture_run(dev_config, f"az://{AZURITE_ACCOUNT}/{azure_env}/{prefix}")
    exported = run.exports["sentiment"]["captureUri"]
    assert exported == f"az://{AZURITE_ACCOUNT}/{azure_env}/{prefix}"

    (ksvc,) = run.of_type("kubernetes:serving.knative.dev/v1:Service")
    (container,) = ksvc.inputs["spec"]["template"]["spec"]["containers"]
    pod_env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    monkeypatch.delenv("AZURE_STORAGE_ACCOUNT_NAME", raising=False)  # only what the component sets
    for name, value in pod_env.items():
        if name.startswith(("INFEROPS_CAPTURE", "INFEROPS_VARIANT", "AZURE_")):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOSTNAME", "sentiment-pod-1")
    capture = fcap.Capture.from_env()
    assert capture.writer is not None, pod_env

    rows = _rows(np.random.default_rng(5), 600, amount_mean)
    for start in range(0, len(rows), 50):
        stamp = f"{DAY:%Y-%m-%d}T05:{start * 60 // len(rows):02d}:00.000Z"
        predictor = core.Predictor(MODEL, "fraud-scorer", "2.2.0", capture=capture, clock=lambda s=stamp: s)
        predictor.predict_body(json.dumps({"instances": rows[start : start + 50]}), request_id=f"k-{start}")
    capture.close()
    assert capture.writer.stats()["written"] == 600 and capture.writer.stats()["write_errors"] == 0

    out = tmp_path / "report.json"
    ref = _write_reference(tmp_path)
    argv = ["check", "--capture", exported, "--since", "2026-01-12T05:00Z", "--until", "2026-01-12T06:00Z"]
    code = main([*argv, "--reference", str(ref), "--out", str(out)])
    report = json.loads(out.read_text())
    assert code == expected, [f for f in report["features"] if f["drifted"]]
    assert report["capture"]["records"] == 600
    assert report["capture"]["layouts"] == {"records": 600}
    assert {f["feature"]: f["drifted"] for f in report["features"]}["amount"] is (expected == 1)


# --- the scheduled workflow --------------------------------------------------------------------------------


def test_drift_workflow_reads_azure_with_an_identity_not_a_connection_string() -> None:
    """Each function's captureUri names its own account, and a connection string would override it (refused
    above when its account differs): drift.yml passes DefaultAzureCredential's environment credential
    (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET: EnvironmentCredential,
    learn.microsoft.com/dotnet/api/azure.identity.environmentcredential) and no account or connection string."""
    from tests.test_workflows import _walk_envs, load

    envs = dict(_walk_envs(load("drift.yml")))
    assert "AZURE_STORAGE_CONNECTION_STRING" not in envs and "AZURE_STORAGE_ACCOUNT_NAME" not in envs
    assert "AZURE_STORAGE_ACCOUNT_KEY" not in envs and "AZURE_STORAGE_SAS_TOKEN" not in envs
    for var in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"):
        assert envs[var] == f"${{{{ secrets.DRIFT_{var} }}}}"


# --- stack config: what the spec accepts, the readers read --------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "account"),
    [
        ("az://lakeacct/references/churn/train.parquet", "lakeacct"),
        ("az://lakeacct/captures/churn/", "lakeacct"),
        ("az://insights-logs-functionapplogs@lakeacct.blob.core.windows.net/resourceId=/SUBSCRIPTIONS/X", "lakeacct"),
        ("az://references/churn.parquet", None),  # adlfs's container-first form: the account is missing
        ("az://lakeacct/references", None),  # no path in the container
        ("az://Lake/references/x.parquet", None),
    ],
)
def test_reference_uri_in_the_spec_is_what_the_readers_read(
    dev_config: dict[str, Any], uri: str, account: str | None
) -> None:
    import copy

    from components.spec import SpecError, parse_stack_config
    from tests.conftest import function_config

    config = copy.deepcopy(dev_config)
    function_config(config, "sentiment")["model"]["referenceUri"] = uri
    if account is None:
        with pytest.raises(
            SpecError, match=r"model\.referenceUri: an az:// URI is az://<storage account>/<container>/"
        ):
            parse_stack_config(config)
        return
    parse_stack_config(config)
    loc = azure_blob_location(uri)
    assert loc is not None and loc.account == account
