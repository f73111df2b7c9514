"""Entry point the Pulumi engine runs (``python -m pulumi.policy <engine> policies``).

It only builds the pack; the rules live in ``inferops_policy`` so tests can import them without
starting the gRPC server that ``PolicyPack`` starts.
"""

from inferops_policy.pack import PACK_NAME, build_policies, install_configure_validation, install_request_sanitizer
from pulumi_policy import EnforcementLevel, PolicyPack

# Reject a config with unknown keys or uncompilable patterns at Configure, before any Analyze.
install_configure_validation()
# NaN/infinite numbers in properties reach the policies as strings instead of failing the SDK.
install_request_sanitizer()

PolicyPack(
    name=PACK_NAME,
    policies=build_policies(),
    enforcement_level=EnforcementLevel.MANDATORY,
    description="inferops guardrails for serverless inference: responsible AI, FinOps and security.",
)
