"""The inference handler the components deploy: a shared core and thin per-platform adapters.

Deployed, this directory is the code root (Lambda handler ``aws_lambda.handler``, Azure's
``function_app.py``, the container's ``http_server``); in the repository it is the package ``functions``.
"""
