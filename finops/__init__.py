"""The FinOps loop: billing data per function and model version, anomalies, rightsizing, estimate drift.

``python -m finops report`` reads FOCUS exports (and optionally the capture and an OpenCost export),
attributes cost to the stack's functions, and writes a versioned report; ``python -m finops remediate``
turns a report's proposals into a reviewed change of the stack file through :mod:`gitops`.
"""
