"""Computed outputs the Kubernetes mocks return: only fields the component code reads.

Owned by the Kubernetes component. A Knative Service's ``status.url`` follows Knative's rule: a
``cluster-local`` service gets ``http://<name>.<namespace>.svc.cluster.local``, any other the
cluster's external domain (``example.com`` here, Knative's documented placeholder)."""

from __future__ import annotations

from typing import Any

KNATIVE_EXTERNAL_DOMAIN = "example.com"


def computed(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    meta = dict(inputs.get("metadata") or {})
    meta.setdefault("name", name)
    out: dict[str, Any] = {"metadata": meta}
    if typ == "kubernetes:serving.knative.dev/v1:Service":
        ns = meta.get("namespace", "default")
        local = (meta.get("labels") or {}).get("networking.knative.dev/visibility") == "cluster-local"
        domain = "svc.cluster.local" if local else KNATIVE_EXTERNAL_DOMAIN
        out["status"] = {"url": f"http://{meta['name']}.{ns}.{domain}"}
    return out
