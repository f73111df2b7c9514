"""Computed outputs the Azure mocks return: only fields the component code reads.

Owned by the Azure component."""

from __future__ import annotations

from typing import Any

from inferops.computed import short


def computed(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    rg = inputs.get("resourceGroupName", "rg")
    kind = typ.split(":")[-1]
    phys = (
        inputs.get("name")
        or inputs.get("resourceGroupName" if kind == "ResourceGroup" else "")
        or (f"{name}{short(name)}")
    )
    out: dict[str, Any] = {"name": phys}
    sub = "00000000-0000-0000-0000-000000000000"
    if kind == "ResourceGroup":
        out["id"] = f"/subscriptions/{sub}/resourceGroups/{phys}"
    else:
        out["id"] = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{typ}/{phys}"
    if kind in ("WebApp", "WebAppSlot"):
        out["defaultHostName"] = f"{phys}.azurewebsites.net"
        out["identity"] = {**(inputs.get("identity") or {}), "principalId": short(name) + "-principal"}
    if kind == "StorageAccount":
        out["primaryEndpoints"] = {"blob": f"https://{phys}.blob.core.windows.net/"}
    return out
