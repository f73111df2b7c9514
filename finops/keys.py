"""The stack-scoped ``function-name`` metadata value (cross-team contract 1 of the brief).

Billing data is attributed by this value, so finops computes it with exactly the formula that
``components.tags.function_key`` (issue 9) puts on the resources; ``tests/test_finops_keys.py`` pins
its outputs and checks both agree once the component side exists.
"""

from __future__ import annotations

import hashlib
import re

PROJECT = "inferops"


def function_key(project: str, stack: str, name: str) -> str:
    """``<project>-<stack>-<name>`` when that is already a short lowercase label, else a safe form plus a hash.

    The hash keeps two stacks (or names that differ only in characters the label charset drops) apart;
    63 characters is the shortest limit among the places the value goes (GCP and Kubernetes labels).
    """
    raw = f"{project}-{stack}-{name}"
    safe = re.sub(r"[^a-z0-9-]", "-", raw.lower())
    if safe == raw and len(raw) <= 63:
        return raw
    digest = hashlib.sha256(f"{project}\0{stack}\0{name}".encode()).hexdigest()[:8]
    return f"{safe[:54].rstrip('-')}-{digest}"
