"""Computed outputs the GCP mocks return: only fields the component code reads.

Owned by the GCP component."""

from __future__ import annotations

from typing import Any

from inferops.computed import short


def computed(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if typ == "gcp:serviceaccount/account:Account":
        acct = inputs.get("accountId", name)
        out["email"] = f"{acct}@{inputs.get('project', 'example-project')}.iam.gserviceaccount.com"
        out["member"] = f"serviceAccount:{out['email']}"
    elif typ == "gcp:cloudrunv2/service:Service":
        out["uri"] = f"https://{inputs.get('name', name)}-{short(name)}-uc.a.run.app"
    elif typ == "gcp:monitoring/notificationChannel:NotificationChannel":
        out["name"] = f"projects/{inputs.get('project', 'example-project')}/notificationChannels/{short(name)}"
    elif typ == "gcp:billing/budget:Budget":
        out["name"] = f"billingAccounts/{inputs.get('billingAccount', 'x')}/budgets/{short(name)}"
    elif typ == "gcp:artifactregistry/repository:Repository":
        # registryUri: <location>-docker.pkg.dev/<project>/<repository id>
        # (cloud.google.com/artifact-registry/docs/docker/names).
        project = inputs.get("project", "example-project")
        out["project"] = project
        out["name"] = inputs.get("repositoryId", name)
        out["registryUri"] = f"{inputs.get('location', 'us')}-docker.pkg.dev/{project}/{out['name']}"
    elif typ == "gcp:logging/projectSink:ProjectSink":
        # uniqueWriterIdentity: the Logging service agent of the sink's project.
        out["writerIdentity"] = "serviceAccount:service-123456789012@gcp-sa-logging.iam.gserviceaccount.com"
    return out
