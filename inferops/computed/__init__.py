"""Per-platform computed outputs for the recording mocks (one module per platform)."""

from __future__ import annotations

import hashlib
import importlib
from typing import Any

ACCOUNT = "123456789012"
_MODULES = {
    "aws": "aws",
    "azure-native": "azure",
    "gcp": "gcp",
    "kubernetes": "kubernetes",
    "docker-build": "docker_build",
}


def short(name: str) -> str:
    """A stable 7-character suffix, like Pulumi's auto-naming."""
    return hashlib.sha256(name.encode()).hexdigest()[:7]


def computed(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The computed outputs a provider would add to ``inputs`` for a resource of type ``typ``."""
    module = _MODULES.get(typ.split(":")[0])
    if module is None:
        return {}
    out: dict[str, Any] = importlib.import_module(f"inferops.computed.{module}").computed(typ, name, inputs)
    return out
