"""HTTP adapter for Cloud Run and Knative: ``POST /predict``, ``GET /healthz`` on ``$PORT``.

Standard library only, so the container image stays the handler and the model; the container runs
``python -m http_server``. The model loads once at start, so a bad ``MODEL_URI`` fails the readiness
probe instead of the first request.

Why not ``ThreadingHTTPServer`` as it comes: it starts one thread per connection without a bound
(600 slow clients hold 601 threads), listens with a backlog of 5 (connections are reset under a burst
of 50) and never times a socket out. :class:`BoundedHTTPServer` keeps ``http.server``'s well-known
request parsing and adds what a server facing the internet needs:

* a fixed pool of :data:`WORKERS` threads and at most :data:`QUEUE` accepted connections waiting for
  one; beyond that a connection gets an immediate ``503`` with ``Retry-After`` instead of a thread;
* a listen backlog of :data:`LISTEN_BACKLOG` (the kernel caps it at ``net.core.somaxconn``);
* an idle timeout between keep-alive requests, a per-read timeout while a request arrives, and one
  deadline for the whole request (line, headers and body, from its first byte), so a slow, stalled or
  trickling client frees its worker (``408``): a per-read timeout alone lets a client that sends one
  byte just inside it hold a worker for ever (slowloris);
* strict framing: exactly one decimal ``Content-Length`` (``-1``, ``+5``, ``0x10``, duplicates and
  ``Transfer-Encoding`` are refused), a body shorter than announced is ``400``, an oversized one is
  ``413`` before ``100 Continue`` is sent, so the client never uploads it;
* JSON error bodies for every status, including ``http.server``'s own (no HTML), ``405`` with an
  ``Allow`` header for any other method (not ``501``), and ``500`` JSON rather than a dropped
  connection if the handler ever fails.

Cloud Run and Knative put a proxy in front that also bounds requests; these limits hold when the
container is reached directly (a Kubernetes ``Service`` without Knative, local runs).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

if __package__:
    from . import core
else:  # deployed: this directory is the container's working directory
    import core  # type: ignore[no-redef]


def _env_seconds(name: str, default: float) -> float:
    """A positive, finite number of seconds from the environment, or a one-line error naming it."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number of seconds, got {text[:40]!r}")
    return value


def _env_int(name: str, default: int, low: int, high: int) -> int:
    """A decimal integer in ``[low, high]`` from the environment, or a one-line error naming it."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not (_DECIMAL.fullmatch(text) and low <= int(text) <= high):
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {text[:40]!r}")
    return int(text)


#: Worker threads serving requests (Cloud Run's default concurrency is 80 requests per instance);
#: :func:`main` reads ``INFEROPS_HTTP_WORKERS`` instead when it is set.
WORKERS = 32
#: Accepted connections allowed to wait for a worker before new ones get a 503;
#: :func:`main` reads ``INFEROPS_HTTP_QUEUE`` instead when it is set.
QUEUE = 64
#: Upper bounds for the two above from the environment: a typo of a few digits must not start a
#: million threads or hold a million sockets.
MAX_WORKERS = 4096
MAX_QUEUE = 65536
#: ``listen()`` backlog: connections the kernel completes before the server accepts them.
LISTEN_BACKLOG = 512
#: Seconds a keep-alive connection may sit idle before the next request line.
IDLE_TIMEOUT_S = 5.0
#: Seconds any single read of a request (line, headers, body) may wait for data.
READ_TIMEOUT_S = 10.0
#: Seconds a whole request (request line, headers and body) may take to arrive, from its first byte;
#: :func:`main` reads ``INFEROPS_HTTP_READ_DEADLINE_SECONDS`` instead when it is set.
READ_DEADLINE_S = 10.0

_PREDICT_PATHS = ("/predict", "/")
_DECIMAL = re.compile(r"[0-9]{1,19}")


def _json_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, allow_nan=False).encode()


def _log(level: str, message: str, **fields: Any) -> None:
    record = {"timestamp": core.utc_now(), "level": level, "message": message, **fields}
    sys.stderr.write(json.dumps(record, default=str) + "\n")


class _DeadlineReader(io.RawIOBase):
    """The request socket as a raw stream whose every ``recv`` is bounded by the request's deadline.

    ``socket.makefile`` applies one timeout to each read, however many reads a request takes; this
    sets the socket timeout before each read to what is left of the handler's deadline (or to the idle
    timeout while no request has begun), starts the deadline when a request's first bytes arrive, and
    raises :class:`TimeoutError` once it has passed.
    """

    def __init__(self, sock: socket.socket, handler: PredictHandler) -> None:
        super().__init__()
        self._sock = sock
        self._handler = handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._sock.settimeout(self._handler.next_read_timeout())
        n = self._sock.recv_into(buffer)
        if n:
            self._handler.start_deadline()
        return n


class PredictHandler(BaseHTTPRequestHandler):
    """Routes ``POST /predict`` and ``GET /healthz``; everything else is a JSON 404/405."""

    server_version = "inferops-handler/1"
    protocol_version = "HTTP/1.1"
    #: Applied to the socket by ``StreamRequestHandler.setup``; refined per read by :class:`_DeadlineReader`.
    timeout = READ_TIMEOUT_S
    #: ``time.monotonic()`` by which the current request must have arrived; None between requests.
    deadline: float | None = None

    def setup(self) -> None:
        """``StreamRequestHandler.setup``, with reads through :class:`_DeadlineReader`."""
        super().setup()
        self.rfile.close()  # the makefile() stream holds a reference that would keep the socket open
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self), io.DEFAULT_BUFFER_SIZE)

    def start_deadline(self) -> None:
        """Start the current request's deadline, unless it has started."""
        if self.deadline is None:
            self.deadline = time.monotonic() + self.server_timeout("deadline")

    def next_read_timeout(self) -> float:
        """The timeout for the next read: idle before a request, else the read timeout within the deadline."""
        if self.deadline is None:
            return self.server_timeout("idle")
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request deadline passed")
        return min(self.server_timeout("read"), left)

    # --- responses ------------------------------------------------------------------------------

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = _json_bytes(payload)
        self.connection.settimeout(self.server_timeout("read"))  # not what a read left of its deadline
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _fail(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        """An error response after which the connection closes (the rest of the request is unread)."""
        self.close_connection = True
        self._send(status, {"error": message}, headers)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """``http.server``'s own errors (bad request line, oversized headers...) as JSON, never HTML."""
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self.close_connection = True
        if self.request_version == "HTTP/0.9":
            # parse_request assumes HTTP/0.9 for a malformed line, and http.server then writes no
            # status line or headers at all: answer as HTTP/1.0 so the client sees the status.
            self.request_version = "HTTP/1.0"
        with contextlib.suppress(OSError):  # the client is gone; nothing to tell it
            self._send(code, {"error": message or phrase})

    # --- request loop ---------------------------------------------------------------------------

    def handle_one_request(self) -> None:
        """One request: idle timeout until its first bytes, then one deadline for all of it; JSON errors."""
        self.command, self.request_version, self.requestline = "", "HTTP/1.1", ""
        self.deadline = None  # the idle wait between keep-alive requests is not part of the next one
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            self.start_deadline()  # the line may have come from the buffer, without a read
            if len(self.raw_requestline) > 65536:
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.parse_request():
                return
            method = getattr(self, "do_" + self.command, None) if self.command.isupper() else None
            if method is None:
                self._method_not_allowed()
            else:
                method()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True
            if self.deadline is not None:  # a request had begun: tell the client why it is cut off
                with contextlib.suppress(OSError):
                    self._fail(HTTPStatus.REQUEST_TIMEOUT, "request not received in time")
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True

    def server_timeout(self, which: str) -> float:
        """The server's ``idle`` or ``read`` timeout or request ``deadline`` (tests shorten them per server)."""
        defaults = {"idle": IDLE_TIMEOUT_S, "read": READ_TIMEOUT_S, "deadline": READ_DEADLINE_S}
        return float(getattr(self.server, f"{which}_timeout", defaults[which]))

    def _has_body(self) -> bool:
        return bool(self.headers.get("Transfer-Encoding")) or self.headers.get("Content-Length", "0").strip() != "0"

    def _route(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/") or "/"

    def _method_not_allowed(self) -> None:
        allow = "GET" if self._route() == "/healthz" else "POST" if self._route() in _PREDICT_PATHS else "GET, POST"
        self.close_connection = self.close_connection or self._has_body()
        method = self.command if re.fullmatch(r"[A-Za-z]{1,20}", self.command or "") else "this method"
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"{method} not allowed; use {allow}"}, {"Allow": allow})

    # --- framing --------------------------------------------------------------------------------

    def _length_problem(self) -> tuple[int, str] | int:
        """The body's length, or ``(status, message)`` when the framing is not acceptable."""
        if self.headers.get("Transfer-Encoding") is not None:
            return HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length (no Transfer-Encoding)"
        values = self.headers.get_all("Content-Length") or []
        if not values:
            return HTTPStatus.LENGTH_REQUIRED, "Content-Length is required"
        if len(values) > 1 or not _DECIMAL.fullmatch(values[0].strip()):
            return HTTPStatus.BAD_REQUEST, "Content-Length must be a single decimal number"
        length = int(values[0])
        if length > core.MAX_BODY_BYTES:
            return HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body larger than {core.MAX_BODY_BYTES} bytes"
        return length

    def handle_expect_100(self) -> bool:
        """Refuse a bad or oversized body before ``100 Continue`` invites the client to send it."""
        if self.command == "POST":
            checked = self._length_problem()
            if isinstance(checked, tuple):
                self._fail(*checked)
                return False
        return super().handle_expect_100()

    def _read_body(self, length: int) -> bytes | None:
        """Exactly ``length`` bytes, or None after answering 400.

        Every read is bounded by the request's deadline (:class:`_DeadlineReader`): a body that does not
        arrive in time raises :class:`TimeoutError`, answered 408 by :meth:`handle_one_request`.
        """
        chunks: list[bytes] = []
        remaining = length
        while remaining:
            chunk = self.rfile.read1(min(remaining, 1 << 16))
            if not chunk:
                self._fail(HTTPStatus.BAD_REQUEST, f"body shorter than its Content-Length ({length} bytes)")
                return None
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    # --- routes ---------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self.close_connection = self.close_connection or self._has_body()
        if self._route() == "/healthz":
            self._send(*core.health())
        elif self._route() in _PREDICT_PATHS:
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "POST a JSON object of features"}, {"Allow": "POST"})
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": "no such route"})

    def do_POST(self) -> None:
        if self._route() not in _PREDICT_PATHS:
            self._fail(HTTPStatus.NOT_FOUND, "no such route")  # the unread body must not become a request
            return
        checked = self._length_problem()
        if isinstance(checked, tuple):
            self._fail(*checked)
            return
        body = self._read_body(checked)
        if body is None:
            return
        try:
            status, payload = core.handle(body, request_id=core.request_id_from(dict(self.headers.items())))
        except Exception as exc:  # never drop the connection without an answer
            _log("error", "handler failed", error=type(exc).__name__)
            status, payload = HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"}
        self._send(status, payload)

    def log_message(self, format: str, *args: Any) -> None:
        # Access logs go to stderr as JSON; stdout carries only prediction records.
        _log("info", format % args)


class BoundedHTTPServer(HTTPServer):
    """``HTTPServer`` with a fixed worker pool, a bounded wait queue and a real listen backlog."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler] = PredictHandler,
        *,
        workers: int = WORKERS,
        queue: int = QUEUE,
        idle_timeout: float = IDLE_TIMEOUT_S,
        read_timeout: float = READ_TIMEOUT_S,
        deadline_timeout: float = READ_DEADLINE_S,
    ) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("workers must be at least 1 and queue at least 0")
        super().__init__(address, handler)
        self.workers = workers
        self.idle_timeout = idle_timeout
        self.read_timeout = read_timeout
        self.deadline_timeout = deadline_timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inferops-http")
        self._slots = threading.BoundedSemaphore(workers + queue)
        self.rejected = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        """Hand the connection to the pool, or answer 503 at once when the pool and queue are full."""
        if not self._slots.acquire(blocking=False):
            self.rejected += 1
            self._reject(request)
            return
        try:
            self._pool.submit(self._work, request, client_address)
        except RuntimeError:  # the pool is shutting down
            self._slots.release()
            self.shutdown_request(request)

    def _work(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self._slots.release()

    def _reject(self, request: socket.socket) -> None:
        data = _json_bytes({"error": "server busy; retry"})
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
        ).encode()
        try:
            request.settimeout(1.0)  # a fresh socket's send buffer is empty: this does not wait
            request.sendall(head + data)
        except OSError:
            pass
        finally:
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One JSON log line instead of a traceback on stderr."""
        exc = sys.exc_info()[1]
        _log("error", "connection failed", error=type(exc).__name__ if exc else "unknown")

    def server_close(self) -> None:
        """Stop listening and let the workers finish the connections they hold."""
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def make_server(host: str = "0.0.0.0", port: int = 8080, **options: Any) -> BoundedHTTPServer:
    """A server bound to ``host:port`` (port 0: any free port; read ``server.server_address``).

    ``options`` are :class:`BoundedHTTPServer`'s: ``workers``, ``queue``, ``idle_timeout``,
    ``read_timeout``, ``deadline_timeout`` (the whole request's deadline).
    """
    return BoundedHTTPServer((host, port), PredictHandler, **options)


def main() -> None:
    """Serve on ``$PORT`` (default 8080; 0: any free port) until interrupted.

    ``INFEROPS_HTTP_HOST`` (default ``0.0.0.0``, what a container needs) narrows the bind address, for
    local runs on loopback. ``INFEROPS_HTTP_READ_DEADLINE_SECONDS`` sets the whole request's deadline
    (default :data:`READ_DEADLINE_S`), ``INFEROPS_HTTP_WORKERS`` the worker threads (default
    :data:`WORKERS`) and ``INFEROPS_HTTP_QUEUE`` the connections that may wait for one (default
    :data:`QUEUE`). A bad value of any of these or of ``PORT`` is one JSON error line on stderr naming
    the variable and exit 2, before the model loads or anything listens. Once listening, one JSON line
    on stderr says where (``"listening"``) and with how many workers.
    """
    host = os.environ.get("INFEROPS_HTTP_HOST") or "0.0.0.0"
    try:
        port = _env_int("PORT", 8080, 0, 65535)
        workers = _env_int("INFEROPS_HTTP_WORKERS", WORKERS, 1, MAX_WORKERS)
        queue = _env_int("INFEROPS_HTTP_QUEUE", QUEUE, 0, MAX_QUEUE)
        deadline = _env_seconds("INFEROPS_HTTP_READ_DEADLINE_SECONDS", READ_DEADLINE_S)
    except ValueError as exc:
        _log("error", str(exc))
        sys.exit(2)
    core.health()  # load the model now; errors are logged and /healthz answers 503
    server = make_server(host, port, workers=workers, queue=queue, deadline_timeout=deadline)
    _log("info", "listening", host=host, port=server.server_address[1], workers=workers, queue=queue)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
