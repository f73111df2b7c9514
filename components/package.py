"""The Azure Functions code package: a deterministic zip of what the Python worker needs from ``functions/``.

Pure and without Pulumi: the same sources give the same bytes on every machine, so the package's
SHA-256 can name its blob (a code change redeploys, a revert re-points to the old name).

What goes in, and why (learn.microsoft.com/azure/azure-functions/python-build-options, "Deployment
package considerations": the *contents* of the project folder, one ``host.json`` at the root,
dependencies only under ``.python_packages/lib/site-packages``):

* ``host.json`` and ``function_app.py`` (Python v2 model: the app object is found in
  ``function_app.py`` at the root) and the two modules it imports, ``core.py`` and ``capture.py``;
* nothing else: not the Lambda or container adapters, the Dockerfile, requirements.txt (no build
  runs on a package URL), sample models, tests or caches.

Third-party packages: none are shipped. Linux Consumption runs a ``WEBSITE_RUN_FROM_PACKAGE`` URL as
is ("Only <URL> is supported", learn.microsoft.com/azure/azure-functions/run-functions-from-deployment-package),
with no remote build, so the worker would see only what the zip holds under
``.python_packages/lib/site-packages``, built on Linux for the app's Python version; vendoring needs a
package index, which ``pulumi up`` must not depend on (offline previews and CI). So the Azure path of
the handler uses the standard library only: ``azure.functions`` comes with the Python worker, the
managed-identity token for a private model blob comes from the App Service identity endpoint
(``functions/core.py``), and ``az://`` model URIs reach the handler as https URLs
(``components.spec.handler_model_uri``). A handler change that imports a third-party module on the
Azure path fails tests/test_package.py, which runs the handler from the zip alone.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

#: The handler sources, the package's only input.
FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
#: Files of ``functions/`` the Azure Python worker loads, at the root of the package.
AZURE_FILES = ("capture.py", "core.py", "function_app.py", "host.json")
#: Zip entries carry this timestamp (the zip format's earliest), never the files' mtimes.
_EPOCH = (1980, 1, 1, 0, 0, 0)
#: The blob name keeps this many hex digits of the SHA-256 (48 bits: no collision between the
#: handful of packages one function ever has).
HASH_LENGTH = 12


class PackageError(ValueError):
    """The sources cannot make a package (a file missing or unreadable)."""


@dataclass(frozen=True)
class Package:
    """A built code package: its bytes and the names of its entries."""

    data: bytes
    files: tuple[str, ...]

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the zip: the package's identity."""
        return hashlib.sha256(self.data).hexdigest()

    @property
    def md5_base64(self) -> str:
        """Base64 MD5 of the zip, the ``Content-MD5`` the blob service checks an upload against."""
        return base64.b64encode(hashlib.md5(self.data, usedforsecurity=False).digest()).decode("ascii")

    @property
    def short_hash(self) -> str:
        """The part of the SHA-256 that names the blob."""
        return self.sha256[:HASH_LENGTH]


def package_sources(src: Path | None = None) -> dict[str, bytes]:
    """The package's entries (name -> bytes) read from ``src`` (default ``functions/``)."""
    root = src if src is not None else FUNCTIONS_DIR
    out: dict[str, bytes] = {}
    for name in AZURE_FILES:
        try:
            out[name] = (root / name).read_bytes()
        except OSError as exc:
            raise PackageError(f"{root / name}: cannot read ({exc.strerror or exc})") from None
    try:
        json.loads(out["host.json"])
    except ValueError:
        raise PackageError(f"{root / 'host.json'}: not valid JSON") from None
    return out


def build_package(src: Path | None = None) -> Package:
    """Zip the Azure handler files of ``src`` deterministically.

    Entries are sorted, stored uncompressed (deflate output depends on the zlib build, so it would make
    the hash differ between machines), dated 1980-01-01 and marked as regular files with mode 0644.
    """
    sources = package_sources(src)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(sources):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.create_system = 3  # Unix, so the mode bits below are read as such
            info.external_attr = (0o100644 & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, sources[name])
    return Package(data=buffer.getvalue(), files=tuple(sorted(sources)))


def package_blob_name(function: str, package: Package, *, flex: bool) -> str:
    """The blob that holds ``package`` for ``function``: the content hash is part of the name.

    Flex Consumption deploys through one deploy, whose package file "must be ``released-package.zip``"
    (learn.microsoft.com/azure/azure-functions/functions-infrastructure-as-code, pivot
    flex-consumption-plan, "Deployment package"), so there the hash is the blob's folder.
    """
    if flex:
        return f"{function}-{package.short_hash}/released-package.zip"
    return f"{function}-{package.short_hash}.zip"


def write_package(package: Package, directory: Path) -> Path:
    """Write ``package`` to ``<directory>/<sha256>.zip`` (content-addressed; kept if already there).

    The engine reads the file when it uploads the blob, so it must outlive the program run.
    """
    path = directory / f"{package.sha256}.zip"
    try:
        if path.read_bytes() == package.data:
            return path
    except OSError:
        pass
    directory.mkdir(parents=True, exist_ok=True)
    # Another run may write the same file at the same time: each writes its own temporary file and
    # renames it into place, so a reader sees a whole package or none.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(package.data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def package_cache_dir() -> Path:
    """Where the program keeps built packages for the engine to upload (outside the repository)."""
    return Path(tempfile.gettempdir()) / "inferops-packages"
