"""inferops: reads stack config, validates it, and declares one component per inference function."""

import pulumi

from components import component_for
from components.spec import CONFIG_KEYS, NAMESPACE, SpecError, config_value, parse_stack_config

config = pulumi.Config(NAMESPACE)
raw = {f"{NAMESPACE}:{key}": config_value(config, key) for key in CONFIG_KEYS if config.get(key) is not None}
try:
    stack = parse_stack_config(raw)
except SpecError as exc:
    # RunError prints the one-line message without a Python traceback.
    raise pulumi.RunError(str(exc)) from None

if stack.aws_activate_cost_allocation_tags and any(fn.platform == "aws" for fn in stack.functions):
    from components.aws import cost_allocation_tags

    cost_allocation_tags()

for fn in stack.functions:
    component = component_for(fn.platform)(fn.name, fn, stack)
    pulumi.export(
        fn.name,
        {
            "platform": fn.platform,
            "endpoint": component.endpoint,
            # Where the function's capture records land; None where a platform does not declare it yet.
            "captureUri": getattr(component, "capture_uri", None),
            "servingVersion": fn.model.version,
            "stableVersion": fn.stable_version,
            "canaryPercent": component.canary_percent,
            "budgetId": component.budget_id,
        },
    )
