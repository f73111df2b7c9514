"""Pulumi components that declare an inference function on each platform from one validated spec.

Each platform module is imported only when a stack uses it: provider SDKs take most of a second
each to import.
"""

from __future__ import annotations

import importlib
from typing import Any

#: platform -> (module, class) of its ``ComponentResource``.
COMPONENT_CLASSES = {
    "aws": ("components.aws", "AwsInferenceFunction"),
    "azure": ("components.azure", "AzureInferenceFunction"),
    "gcp": ("components.gcp", "GcpInferenceFunction"),
    "kubernetes": ("components.kubernetes", "KubernetesInferenceFunction"),
}


def component_for(platform: str) -> Any:
    """The component class for ``platform``.

    Every class has the signature ``(name, fn: FunctionSpec, stack: StackSpec, opts=None)`` and exposes
    ``endpoint``, ``budget_id`` and ``canary_percent`` (the split actually deployed) outputs.
    """
    module, cls = COMPONENT_CLASSES[platform]
    return getattr(importlib.import_module(module), cls)
