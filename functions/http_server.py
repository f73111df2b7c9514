"""HTTP adapter for Cloud Run and Knative: ``POST /predict``, ``GET /healthz`` on ``$PORT``.

Standard library only (``http.server.ThreadingHTTPServer``); the container runs
``python -m http_server``. The model loads once at start, so a bad ``MODEL_URI`` fails the readiness
probe instead of the first request.
"""

from __future__ import annotations

import json
import os
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

if __package__:
    from . import core
else:  # deployed: this directory is the container's working directory
    import core  # type: ignore[no-redef]


class PredictHandler(BaseHTTPRequestHandler):
    """Routes ``POST /predict`` and ``GET /healthz``; everything else is 404/405."""

    server_version = "inferops-handler/1"
    protocol_version = "HTTP/1.1"

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/") or "/"

    def do_GET(self) -> None:
        if self._path() == "/healthz":
            self._send(*core.health())
        elif self._path() == "/predict":
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "POST a JSON object of features"})
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no route {self._path()}"})

    def do_POST(self) -> None:
        if self._path() not in ("/predict", "/"):
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no route {self._path()}"})
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._send(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length is required"})
            return
        if length > core.MAX_BODY_BYTES:
            self.close_connection = True  # the unread body must not be parsed as the next request
            too_large = {"error": f"body larger than {core.MAX_BODY_BYTES} bytes"}
            self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, too_large)
            return
        request_id = core.request_id_from(dict(self.headers.items()))
        self._send(*core.handle(self.rfile.read(length), request_id=request_id))

    def log_message(self, format: str, *args: Any) -> None:
        # Access logs go to stderr as JSON; stdout carries only prediction records.
        record = {"timestamp": core.utc_now(), "level": "info", "message": format % args}
        sys.stderr.write(json.dumps(record) + "\n")


def make_server(host: str = "0.0.0.0", port: int = 8080) -> ThreadingHTTPServer:
    """A server bound to ``host:port`` (port 0: any free port; read ``server.server_address``)."""
    server = ThreadingHTTPServer((host, port), PredictHandler)
    server.daemon_threads = True
    return server


def main() -> None:
    """Serve on ``$PORT`` (default 8080) until interrupted."""
    port = int(os.environ.get("PORT", "8080"))
    core.health()  # load the model now; errors are logged and /healthz answers 503
    server = make_server(port=port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
