"""The Azure code package: what it holds, that it is reproducible, and that the handler runs from it alone."""

from __future__ import annotations

import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import azure.functions
import pytest
import werkzeug

from components import package
from functions import core

EXAMPLE_MODEL = package.FUNCTIONS_DIR / "models" / "example-linear.json"


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """A copy of ``functions/`` a test may edit."""
    src = tmp_path / "functions"
    shutil.copytree(package.FUNCTIONS_DIR, src, ignore=shutil.ignore_patterns("__pycache__"))
    return src


def entries(pkg: package.Package) -> dict[str, zipfile.ZipInfo]:
    with zipfile.ZipFile(io.BytesIO(pkg.data)) as archive:
        return {i.filename: i for i in archive.infolist()}


def test_package_holds_what_the_python_worker_needs_and_nothing_else() -> None:
    """The Python v2 model loads ``function_app.py`` from the root, next to one root ``host.json``
    (learn.microsoft.com/azure/azure-functions/python-build-options, "Deployment package
    considerations": "Ensure that a single host.json file is in the root of the deployment package");
    the Lambda and container adapters, build files, requirements and sample models stay out."""
    pkg = package.build_package()
    names = set(entries(pkg))
    assert names == {"function_app.py", "core.py", "capture.py", "host.json"}
    assert all("/" not in n for n in names), "everything at the root, not inside a folder"
    with zipfile.ZipFile(io.BytesIO(pkg.data)) as archive:
        host = json.loads(archive.read("host.json"))
        # "the functions runtime only includes HTTP and timer triggers by default"
        # (learn.microsoft.com/azure/azure-functions/functions-bindings-register): the handler's two HTTP
        # routes need no extension bundle, so none is referenced (nothing is downloaded at start).
        assert host["version"] == "2.0" and "extensionBundle" not in host
        for name in names:
            assert archive.read(name) == (package.FUNCTIONS_DIR / name).read_bytes()
    for left_out in ("aws_lambda.py", "http_server.py", "Dockerfile", "requirements.txt", "README.md", "__init__.py"):
        assert (package.FUNCTIONS_DIR / left_out).exists() and left_out not in names


def test_same_sources_give_the_same_bytes_whatever_the_file_times(sources: Path) -> None:
    first = package.build_package(sources)
    for path in sources.iterdir():
        os.utime(path, (1_900_000_000, 1_900_000_000))
    (sources / "__pycache__").mkdir(exist_ok=True)
    (sources / "__pycache__" / "core.cpython-311.pyc").write_bytes(b"cache")
    (sources / "notes.txt").write_text("not part of the package\n")
    second = package.build_package(sources)
    assert first.data == second.data and first.sha256 == second.sha256
    # The package shipped is the one built from the repository's functions/.
    assert first.sha256 == package.build_package().sha256


def test_a_changed_byte_changes_the_hash_and_the_blob_name(sources: Path) -> None:
    before = package.build_package(sources)
    handler = sources / "function_app.py"
    handler.write_bytes(handler.read_bytes().replace(b"predict", b"predicT", 1))
    after = package.build_package(sources)
    assert before.sha256 != after.sha256
    assert package.package_blob_name("fn", before, flex=False) != package.package_blob_name("fn", after, flex=False)
    assert package.package_blob_name("fn", after, flex=False) == f"fn-{after.sha256[:12]}.zip"
    assert package.package_blob_name("fn", after, flex=True) == f"fn-{after.sha256[:12]}/released-package.zip"


def test_entries_carry_fixed_metadata() -> None:
    for info in entries(package.build_package()).values():
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.compress_type == zipfile.ZIP_STORED
        assert info.external_attr >> 16 == 0o100644


def test_missing_or_broken_sources_are_refused(sources: Path) -> None:
    (sources / "host.json").write_text("{not json")
    with pytest.raises(package.PackageError, match=r"host\.json: not valid JSON"):
        package.build_package(sources)
    (sources / "capture.py").unlink()
    with pytest.raises(package.PackageError, match=r"capture\.py: cannot read"):
        package.build_package(sources)


def test_write_package_is_content_addressed(tmp_path: Path) -> None:
    pkg = package.build_package()
    path = package.write_package(pkg, tmp_path / "cache")
    assert path.name == f"{pkg.sha256}.zip" and path.read_bytes() == pkg.data
    path.write_bytes(b"truncated")
    assert package.write_package(pkg, tmp_path / "cache").read_bytes() == pkg.data, "a damaged copy is replaced"
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [path.name], "no temporary file left"


# The worker provides azure.functions (and its werkzeug) to the app; nothing else outside the
# standard library may be needed. The child interpreter runs isolated (-I: no user site, no
# PYTHON* variables) without site-packages (-S), with sys.path = the zip + a directory holding only
# those two packages, so an import of anything else from the handler's Azure path fails the test.
CHILD = r"""
import json, sys
zip_path, worker_libs, model = sys.argv[1:4]
sys.path[:0] = [zip_path, worker_libs]
import os
os.environ.update({"MODEL_URI": model, "MODEL_ID": "example", "MODEL_VERSION": "1.0.0",
                   "FUNCTIONS_WORKER_RUNTIME": "python", "INFEROPS_CAPTURE_ENABLED": "false"})
import azure.functions as func
import function_app
assert function_app.__file__.startswith(zip_path), function_app.__file__
body = json.dumps({"amount": 20, "age": 30, "country": "US", "device": "ios"}).encode()
req = func.HttpRequest("POST", "http://localhost/api/predict", headers={"x-request-id": "r-1"}, body=body)
resp = function_app.predict(req)
health = function_app.healthz(func.HttpRequest("GET", "http://localhost/api/healthz", body=b""))
third_party = sorted({m.split(".")[0] for m in sys.modules} - set(sys.stdlib_module_names) - {"__main__", "azure", "werkzeug", "function_app", "core", "capture", "markupsafe"})
print(json.dumps({"status": resp.status_code, "body": json.loads(resp.get_body()), "health": health.status_code,
                  "third_party": third_party}))
"""


def test_handler_runs_from_the_zip_alone(tmp_path: Path) -> None:
    pkg = package.build_package()
    zip_path = package.write_package(pkg, tmp_path)
    worker = tmp_path / "worker"
    (worker / "azure").mkdir(parents=True)
    shutil.copytree(Path(azure.functions.__file__).parent, worker / "azure" / "functions")
    shutil.copytree(Path(werkzeug.__file__).parent, worker / "werkzeug")
    markupsafe = Path(werkzeug.__file__).parent.parent / "markupsafe"
    if markupsafe.is_dir():  # werkzeug's own dependency, shipped with it in the worker
        shutil.copytree(markupsafe, worker / "markupsafe")
    model = tmp_path / "model.json"
    model.write_bytes(EXAMPLE_MODEL.read_bytes())
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", CHILD, str(zip_path), str(worker), str(model)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == 200, result
    assert result["body"]["model_version"] == "1.0.0" and result["body"]["request_id"] == "r-1"
    # bias -0.5 + 0.04*20 - 0.02*30 + US 0.3 + ios 0.2 = 0.2; sigmoid(0.2) = 0.5498 >= 0.5
    assert result["body"]["prediction"] == 1
    assert result["body"]["probability"] == pytest.approx(0.549834, abs=1e-6)
    assert result["health"] == 200
    assert result["third_party"] == []


# --- the managed-identity token the handler uses for a private model blob --------------------------


class _IdentityEndpoint(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers.get("X-IDENTITY-HEADER")))
        body = json.dumps({"access_token": "tok-123", "expires_on": "1900000000"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def identity_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _IdentityEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/msi/token"
    monkeypatch.setenv("IDENTITY_ENDPOINT", url)
    monkeypatch.setenv("IDENTITY_HEADER", "secret-header")
    _IdentityEndpoint.seen = []
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_storage_token_comes_from_the_app_service_identity_endpoint(identity_endpoint: str) -> None:
    """App Service / Functions managed identity REST protocol (learn.microsoft.com/azure/app-service/
    overview-managed-identity, "REST endpoint reference"): GET ``IDENTITY_ENDPOINT`` with ``resource``
    and ``api-version=2019-08-01``, the ``X-IDENTITY-HEADER`` secret, ``access_token`` in the answer."""
    assert core._storage_token() == "tok-123"
    [(path, header)] = _IdentityEndpoint.seen
    assert header == "secret-header"
    assert path.startswith("/msi/token?")
    assert "resource=https%3A%2F%2Fstorage.azure.com%2F" in path and "api-version=2019-08-01" in path


def test_an_identity_answer_without_a_token_is_an_error(
    identity_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_IdentityEndpoint, "do_GET", _answer_without_token)
    with pytest.raises(ValueError, match="without an access_token"):
        core._storage_token()


def _answer_without_token(self: _IdentityEndpoint) -> None:
    body = b'{"error": "no identity"}'
    self.send_response(200)
    self.send_header("Content-Length", str(len(body)))
    self.end_headers()
    self.wfile.write(body)
