"""AWS Lambda adapter: ``handler(event, context)`` for Lambda function URLs and API Gateway HTTP APIs.

Both send the payload format 2.0 event (``requestContext.http.method``, ``rawPath``, ``body``,
``isBase64Encoded``). ``POST`` (any path, or ``/predict``) predicts; ``GET /healthz`` reports readiness.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

if __package__:
    from . import core
else:  # deployed: this directory is the Lambda code root
    import core  # type: ignore[no-redef]


def _response(status: int, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(payload),
        "isBase64Encoded": False,
    }


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (payload format 2.0)."""
    http = (event.get("requestContext") or {}).get("http") or {}
    method = str(http.get("method") or event.get("httpMethod") or "POST").upper()
    path = str(event.get("rawPath") or http.get("path") or "/")
    if method == "GET" and path.rstrip("/").endswith("/healthz"):
        return _response(*core.health())
    if method != "POST":
        return _response(405, {"error": f"method {method} not allowed; POST a JSON object of features"})
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return _response(400, {"error": "body: invalid base64"})
    platform_id = (event.get("requestContext") or {}).get("requestId") or getattr(context, "aws_request_id", None)
    return _response(*core.handle(body, request_id=core.request_id_from(event.get("headers"), platform_id)))
