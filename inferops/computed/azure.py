"""Computed outputs the Azure mocks return: only fields the component code reads.

Owned by the Azure component."""

from __future__ import annotations

from typing import Any

from inferops.computed import short

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
#: The input that holds each type's physical name, where the provider does not auto-name it.
_NAME_INPUT = {
    "ResourceGroup": "resourceGroupName",
    "StorageAccount": "accountName",
    "BlobContainer": "containerName",
    "Budget": "budgetName",
    "RoleAssignment": "roleAssignmentName",
    "Blob": "blobName",
}


def computed(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    rg = inputs.get("resourceGroupName", "rg")
    kind = typ.split(":")[-1]
    phys = inputs.get(_NAME_INPUT.get(kind, "name")) or f"{name}{short(name)}"
    out: dict[str, Any] = {"name": phys}
    if kind == "ResourceGroup":
        out["id"] = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{phys}"
    elif kind == "Budget":
        out["id"] = f"{inputs.get('scope', '')}/providers/Microsoft.Consumption/budgets/{phys}"
    else:
        provider = typ.split(":")[1]
        out["id"] = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{rg}/providers/{provider}/{kind}/{phys}"
    if kind == "WebApp":
        out["defaultHostName"] = f"{phys}.azurewebsites.net"
    if kind == "WebAppSlot":
        # ``name`` is the parent app's name and ``slot`` the slot's.
        out["name"] = f"{phys}/{inputs.get('slot', name)}"
        out["defaultHostName"] = f"{phys}-{inputs.get('slot', name)}.azurewebsites.net"
    if kind in ("WebApp", "WebAppSlot"):
        out["identity"] = {**(inputs.get("identity") or {}), "principalId": short(name) + "-principal"}
    if kind == "Blob":
        # The provider's url: https://<account>.blob.core.windows.net/<container>/<blob>.
        out["url"] = f"https://{inputs.get('accountName')}.blob.core.windows.net/{inputs.get('containerName')}/{phys}"
    if kind == "StorageAccount":
        out["primaryEndpoints"] = {"blob": f"https://{phys}.blob.core.windows.net/"}
    return out
