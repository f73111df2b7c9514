"""Computed outputs the mocks return for ``docker-build:index:Image``: the pushed image's digest.

Owned by the image build (components/image.py). No Docker engine runs under mocks, so the digest
is a deterministic stand-in: ``sha256:`` and the SHA-256 of the build's inputs (context, Dockerfile,
platforms, tags, labels, cache), without the registry credentials, which the provider also leaves
out of its diff (pulumi/pulumi-docker-build ``provider/internal/image.go``, ``Diff``). The same
build therefore has the same digest run after run, and an edit of the build has a new one.
``ref`` follows the provider: the first tag with ``@<digest>`` appended (``addDigest``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def digest_of(inputs: dict[str, Any]) -> str:
    """The stand-in digest of a build with these inputs."""
    material = {k: v for k, v in inputs.items() if k != "registries"}
    return "sha256:" + hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def computed(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    if typ != "docker-build:index:Image":
        return {}
    digest = digest_of(inputs)
    tags = inputs.get("tags") or []
    out: dict[str, Any] = {"digest": digest, "contextHash": digest.removeprefix("sha256:")[:16]}
    if tags:
        out["ref"] = f"{tags[0]}@{digest}"
    return out
