"""Computed outputs the Kubernetes mocks return: only fields the component code reads.

Owned by the Kubernetes component."""

from __future__ import annotations

from typing import Any


def computed(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    meta = dict(inputs.get("metadata") or {})
    meta.setdefault("name", name)
    out: dict[str, Any] = {"metadata": meta}
    if typ == "kubernetes:serving.knative.dev/v1:Service":
        ns = meta.get("namespace", "default")
        out["status"] = {"url": f"http://{meta['name']}.{ns}.svc.cluster.local"}
    return out
