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


def _response(status: int, payload: dict[str, Any], allow: str | None = None) -> dict[str, Any]:
    headers = {"content-type": "application/json", **({"allow": allow} if allow else {})}
    return {
        "statusCode": status,
        "headers": headers,
        "body": json.dumps(payload),
        "isBase64Encoded": False,
    }


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (payload format 2.0).

    Events of other shapes (a list, ``{"requestContext": "x"}``, a non-string body) are a JSON 400,
    never an exception: Lambda would turn one into a 502 with the error type for the caller.
    """
    if not isinstance(event, dict):
        return _response(400, {"error": "event: expected an HTTP API (payload format 2.0) event object"})
    http = _mapping(_mapping(event.get("requestContext")).get("http"))
    method_raw = http.get("method") or event.get("httpMethod") or "POST"
    path_raw = event.get("rawPath") or http.get("path") or "/"
    if not isinstance(method_raw, str) or not isinstance(path_raw, str):
        return _response(400, {"error": "event: requestContext.http.method and rawPath must be strings"})
    method, path = method_raw.upper(), path_raw
    if method == "GET" and path.rstrip("/").endswith("/healthz"):
        return _response(*core.health())
    if method != "POST":
        shown = method if method.isalpha() and len(method) <= 20 else "this method"
        return _response(405, {"error": f"{shown} not allowed; POST a JSON object of features"}, allow="POST")
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        if not isinstance(body, str):
            return _response(400, {"error": "body: isBase64Encoded needs a base64 string body"})
        try:
            body = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return _response(400, {"error": "body: invalid base64"})
    elif not isinstance(body, str | dict | list):
        return _response(400, {"error": "body: must be a JSON string"})
    platform_id = _mapping(event.get("requestContext")).get("requestId") or getattr(context, "aws_request_id", None)
    headers = _mapping(event.get("headers"))
    request_id = core.request_id_from(headers, platform_id if isinstance(platform_id, str) else None)
    return _response(*core.handle(body, request_id=request_id))
