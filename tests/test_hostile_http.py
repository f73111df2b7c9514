"""Issue 11, items 11-13: the inference handler under abuse, on loopback only, bounded request counts.

Raw sockets speak the exact bytes a hostile client would (``http.client`` refuses to send most of
them). Every answer must be a complete HTTP response with a JSON body; the server's timeouts are
shortened per server so the timeout cases take a fraction of a second, not the production 5-30 s.
"""

from __future__ import annotations

import base64
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from functions import aws_lambda, core, http_server

MODEL_PATH = Path(__file__).resolve().parent.parent / "functions" / "models" / "example-linear.json"
ROW = {"amount": 20, "age": 30, "country": "US", "device": "ios"}


@pytest.fixture(autouse=True)
def model_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MODEL_URI", str(MODEL_PATH))
    monkeypatch.setenv("MODEL_ID", "fraud-scorer")
    monkeypatch.setenv("MODEL_VERSION", "2.2.0")
    core.clear_cache()
    yield
    core.clear_cache()


@pytest.fixture
def regression_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = {"format": core.MODEL_FORMAT, "task": "regression", "features": ["x"], "weights": [1e308], "bias": 0.0}
    (tmp_path / "reg.json").write_text(json.dumps(doc))
    monkeypatch.setenv("MODEL_URI", str(tmp_path / "reg.json"))
    core.clear_cache()


class Server:
    """A :func:`http_server.make_server` on a free loopback port, served from a background thread."""

    def __init__(self, **options: Any) -> None:
        options = {"idle_timeout": 0.5, "read_timeout": 0.5, "deadline_timeout": 2.0, **options}
        self.srv = http_server.make_server("127.0.0.1", 0, **options)
        self.addr = self.srv.server_address[:2]
        self.thread = threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def connect(self) -> socket.socket:
        return socket.create_connection(self.addr, timeout=5)

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response: status, headers (lower-case names), body by its Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed without a complete response: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        rest += chunk
    return status, headers, rest[:length]


def exchange(server: Server, raw: bytes, *, half_close: bool = False) -> tuple[int, dict[str, str], Any]:
    with server.connect() as sock:
        sock.sendall(raw)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        status, headers, body = _read_response(sock)
    assert headers.get("content-type") == "application/json", (status, headers, body)
    return status, headers, json.loads(body)


def post(body: bytes, extra: str = "") -> bytes:
    return (
        f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


# --- item 11: bodies that used to drop the connection ----------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"amount": ' + b"9" * 400 + b', "age": 1, "country": "US", "device": "ios"}', "digits"),
        (b'{"amount": ' + b"9" * 5000 + b', "age": 1, "country": "US", "device": "ios"}', "digits"),
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
        (b'{"instances": ' + b"[" * 50 + b"]" * 50 + b"}", "nested deeper"),
        (b'{"amount": 1e400, "age": 1, "country": "US", "device": "ios"}', "finite"),
    ],
    ids=["400 digits", "5000 digits", "100k deep", "50 deep", "1e400"],
)
def test_hostile_bodies_are_400_json(server: Server, body: bytes, expected: str) -> None:
    status, _, payload = exchange(server, post(body))
    assert status == 400 and expected in payload["error"]


def test_regression_overflow_to_inf_is_400(server: Server, regression_model: None) -> None:
    status, _, payload = exchange(server, post(b'{"x": 1e10}'))
    assert status == 400 and "overflows" in payload["error"]
    status, _, payload = exchange(server, post(b'{"x": 0.5}'))
    assert status == 200 and payload["prediction"] == pytest.approx(0.5e308)


def test_a_handler_bug_is_a_json_500_not_a_dropped_connection(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: Any, body: Any) -> Any:
        raise KeyError("bug")

    monkeypatch.setattr(core.Predictor, "predict_body", boom)
    status, _, payload = exchange(server, post(json.dumps(ROW).encode()))
    assert status == 500 and payload == {"error": "internal error"}


# --- item 12: framing, timeouts and error bodies ---------------------------------------------------

_HEAD = "POST /predict HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.parametrize(
    ("raw", "status", "expected"),
    [
        (_HEAD + "Content-Length: -1\r\n\r\n{}", 400, "single decimal"),
        (_HEAD + "Content-Length: +2\r\n\r\n{}", 400, "single decimal"),
        (_HEAD + "Content-Length: 0x2\r\n\r\n{}", 400, "single decimal"),
        (_HEAD + "Content-Length: 2, 2\r\n\r\n{}", 400, "single decimal"),
        (_HEAD + "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", 400, "single decimal"),
        (_HEAD + "Content-Length: 99999999999999999999999\r\n\r\n", 400, "single decimal"),
        (_HEAD + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 411, "Content-Length"),
        (_HEAD + "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}", 411, "Transfer-Encoding"),
        (_HEAD + "\r\n", 411, "Content-Length is required"),
        (_HEAD + f"Content-Length: {core.MAX_BODY_BYTES + 1}\r\n\r\n", 413, "larger than"),
        ("GARBAGE\r\n\r\n", 400, "Bad request"),
        ("GET /healthz HTTP/9.9\r\n\r\n", 505, "HTTP"),
        ("GET /" + "a" * 70_000 + " HTTP/1.1\r\n\r\n", 414, "URI"),
        ("GET /healthz HTTP/1.1\r\nX: " + "a" * 70_000 + "\r\n\r\n", 431, "too long"),
        ("POST /nowhere HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", 404, "no such route"),
        ("GET /predict HTTP/1.1\r\n\r\n", 405, "POST"),
    ],
    ids=lambda v: v if isinstance(v, int) else None,
)
def test_framing_abuse_gets_the_right_status_and_a_json_error(
    server: Server, raw: str, status: int, expected: str
) -> None:
    got, _, payload = exchange(server, raw.encode("latin-1"))
    assert got == status, payload
    assert expected.lower() in payload["error"].lower()


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "FOO", "post"])
def test_other_methods_are_405_with_allow(server: Server, method: str) -> None:
    raw = f"{method} /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}".encode()
    with server.connect() as sock:
        sock.sendall(raw)
        status, headers, body = _read_response(sock)
    assert status == 405 and headers["allow"] == "POST"
    assert headers["content-type"] == "application/json" and "not allowed" in json.loads(body)["error"]


def test_body_shorter_than_content_length_is_400(server: Server) -> None:
    status, _, payload = exchange(server, (_HEAD + "Content-Length: 100\r\n\r\n{}").encode(), half_close=True)
    assert status == 400 and "shorter" in payload["error"]


def test_stalled_body_is_408_after_the_read_timeout(server: Server) -> None:
    status, headers, payload = exchange(server, (_HEAD + "Content-Length: 100\r\n\r\n{").encode())
    assert status == 408 and headers["connection"] == "close" and "in time" in payload["error"]


def test_stalled_headers_are_408(server: Server) -> None:
    status, _, payload = exchange(server, b"POST /predict HTTP/1.1\r\nHost: x\r\n")
    assert status == 408 and "in time" in payload["error"]


def test_trickled_body_hits_the_body_deadline() -> None:
    s = Server(read_timeout=1.0, deadline_timeout=0.3)
    try:
        with s.connect() as sock:
            sock.sendall((_HEAD + "Content-Length: 1000\r\n\r\n").encode())
            sock.sendall(b"{")  # one byte now; the deadline passes before the rest
            status, _, body = _read_response(sock)
        assert status == 408 and "in time" in json.loads(body)["error"]
    finally:
        s.close()


# --- slowloris: one deadline for the whole request -------------------------------------------------

#: How long a trickling client waits for the server's answer after each byte: well under the per-read
#: timeouts below (so they never fire), and each request takes several bytes, so the whole request
#: passes the 0.3 s deadline while every single read stays inside its timeout.
_PACE_S = 0.1
#: The test's own bound: a normal request not served by then means the tricklers hold the pool.
_BOUND_S = 6.0

# What each trickler sends at once, then the bytes it sends one at a time for ever.
_TRICKLES = {
    "request line": (b"", b"POST /predict HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000),
    "headers": (b"POST /predict HTTP/1.1\r\nHost: x\r\n", b"X-Slow: " + b"a" * 10_000),
    "body": (_HEAD.encode() + b"Content-Length: 10000\r\n\r\n", b"{" + b" " * 10_000),
}


def _trickle(server: Server, kind: str, started: threading.Event, stop: threading.Event, answers: list[Any]) -> None:
    """Send ``kind``'s bytes one at a time, reconnecting when cut off, until ``stop`` or the bound."""
    prefix, slow = _TRICKLES[kind]
    give_up = time.monotonic() + _BOUND_S + 2
    while not stop.is_set() and time.monotonic() < give_up:
        with server.connect() as sock:
            try:
                sock.sendall(prefix)
                for i in range(len(slow)):
                    if stop.is_set() or time.monotonic() >= give_up:
                        return
                    sock.sendall(slow[i : i + 1])
                    started.set()
                    # wait for the server's answer, not for time: at most one pace per byte
                    if select.select([sock], [], [], _PACE_S)[0]:
                        status, _, body = _read_response(sock)
                        answers.append((kind, status, json.loads(body)["error"]))
                        break
            except (OSError, AssertionError) as exc:  # reset or closed without an answer
                answers.append((kind, None, repr(exc)))


def test_trickling_clients_do_not_hold_the_only_worker(capsys: pytest.CaptureFixture[str]) -> None:
    """Slowloris: clients sending a byte well inside every per-read timeout are cut off by the deadline.

    With one worker and three such clients (trickling the request line, the headers and the body,
    reconnecting as soon as they are cut off), a normal request still gets served while they trickle.
    Without a deadline for the whole request, the first trickler holds the worker for as long as it
    likes and the normal request waits until the test's bound.
    """
    s = Server(workers=1, queue=8, idle_timeout=2.0, read_timeout=2.0, deadline_timeout=0.3)
    stop = threading.Event()
    answers: list[Any] = []
    threads = []
    try:
        for kind in _TRICKLES:  # one after another, so the request-line trickler holds the worker first
            started = threading.Event()
            t = threading.Thread(target=_trickle, args=(s, kind, started, stop, answers), daemon=True)
            t.start()
            threads.append(t)
            assert started.wait(_BOUND_S), f"{kind} trickler did not start"
        with socket.create_connection(s.addr, timeout=_BOUND_S) as sock:
            sock.sendall(post(json.dumps(ROW).encode()))
            try:
                status, _, body = _read_response(sock)
            except TimeoutError:
                pytest.fail(f"a normal request was not served in {_BOUND_S} s: trickling clients hold the worker")
        assert status == 200 and json.loads(body)["prediction"] == 1
        assert all(t.is_alive() for t in threads), "every trickler was still trickling"
        assert s.srv.workers == 1 and s.srv.rejected == 0
    finally:
        stop.set()
        for t in threads:
            t.join(_BOUND_S)
        s.close()
    cut_off = {kind for kind, _, _ in answers}
    assert {"request line", "headers"} <= cut_off, answers  # those two held the worker in turn
    assert all(status == 408 and "in time" in error for _, status, error in answers), answers
    capsys.readouterr()


def test_a_trickled_head_is_408_though_every_read_is_inside_its_timeout() -> None:
    """The deadline counts from the request's first byte: a head trickled past it is 408, body or not.

    The head's last ten bytes come a pace apart (each read well inside the 2 s read timeout) and the
    two-byte body right after; with only per-read timeouts and a body deadline, this request is read
    and answered (400: no features).
    """
    s = Server(workers=1, idle_timeout=2.0, read_timeout=2.0, deadline_timeout=0.5)
    try:
        with s.connect() as sock:
            sock.sendall((_HEAD + "Content-Length: 2\r\n").encode())
            answer = None
            rest = b"X-A: 1\r\n\r\n{}"
            for i in range(len(rest)):
                sock.sendall(rest[i : i + 1])
                if select.select([sock], [], [], _PACE_S)[0]:  # the server's answer, or a pace
                    break
            answer = _read_response(sock)
        status, headers, body = answer
        assert status == 408 and headers["connection"] == "close" and "in time" in json.loads(body)["error"]
    finally:
        s.close()


class _FakeServer:
    server_address = ("127.0.0.1", 0)

    def serve_forever(self) -> None:
        pass

    def server_close(self) -> None:
        pass


@pytest.mark.parametrize(("text", "expected"), [(None, 10.0), ("", 10.0), ("0.3", 0.3), (" 7 ", 7.0)])
def test_main_takes_the_read_deadline_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], text: str | None, expected: float
) -> None:
    if text is None:
        monkeypatch.delenv("INFEROPS_HTTP_READ_DEADLINE_SECONDS", raising=False)
    else:
        monkeypatch.setenv("INFEROPS_HTTP_READ_DEADLINE_SECONDS", text)
    made: list[dict[str, Any]] = []

    def fake_make_server(host: str, port: int, **options: Any) -> _FakeServer:
        made.append(options)
        return _FakeServer()

    monkeypatch.setattr(http_server, "make_server", fake_make_server)
    http_server.main()
    assert made == [{"workers": http_server.WORKERS, "queue": http_server.QUEUE, "deadline_timeout": expected}]
    capsys.readouterr()


@pytest.mark.parametrize("text", ["abc", "0", "-1", "inf", "nan", "1e999"])
def test_a_bad_read_deadline_is_exit_2_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    monkeypatch.setenv("INFEROPS_HTTP_READ_DEADLINE_SECONDS", text)
    monkeypatch.setattr(http_server, "make_server", lambda *a, **k: pytest.fail("listened despite a bad deadline"))
    with pytest.raises(SystemExit) as exit_info:
        http_server.main()
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0]
    message = json.loads(lines[0])["message"]
    assert message.startswith("INFEROPS_HTTP_READ_DEADLINE_SECONDS must be a positive number of seconds")


_ENV_VARS = ("PORT", "INFEROPS_HTTP_WORKERS", "INFEROPS_HTTP_QUEUE", "INFEROPS_HTTP_READ_DEADLINE_SECONDS")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, {"workers": 32, "queue": 64}),
        ({"INFEROPS_HTTP_WORKERS": "3", "INFEROPS_HTTP_QUEUE": "0"}, {"workers": 3, "queue": 0}),
        ({"INFEROPS_HTTP_WORKERS": " 4096 ", "INFEROPS_HTTP_QUEUE": "65536"}, {"workers": 4096, "queue": 65536}),
        ({"INFEROPS_HTTP_WORKERS": "", "INFEROPS_HTTP_QUEUE": "7"}, {"workers": 32, "queue": 7}),
    ],
)
def test_main_takes_workers_and_queue_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str], expected: dict[str, int]
) -> None:
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    made: list[dict[str, Any]] = []

    def fake_make_server(host: str, port: int, **options: Any) -> _FakeServer:
        made.append({"port": port, **options})
        return _FakeServer()

    monkeypatch.setattr(http_server, "make_server", fake_make_server)
    http_server.main()
    assert made == [{"port": 8080, **expected, "deadline_timeout": http_server.READ_DEADLINE_S}]
    listening = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert listening["message"] == "listening" and listening["workers"] == expected["workers"]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("INFEROPS_HTTP_WORKERS", "abc"),
        ("INFEROPS_HTTP_WORKERS", "0"),  # no worker: nothing would ever be served
        ("INFEROPS_HTTP_WORKERS", "-1"),
        ("INFEROPS_HTTP_WORKERS", "4.5"),
        ("INFEROPS_HTTP_WORKERS", "4097"),
        ("INFEROPS_HTTP_WORKERS", "9" * 400),
        ("INFEROPS_HTTP_QUEUE", "-1"),
        ("INFEROPS_HTTP_QUEUE", "1e3"),
        ("INFEROPS_HTTP_QUEUE", "65537"),
        ("INFEROPS_HTTP_QUEUE", "\x1b[2J"),
        ("PORT", "http"),
        ("PORT", "65536"),
    ],
)
def test_a_bad_worker_queue_or_port_value_is_exit_2_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, text: str
) -> None:
    for other in _ENV_VARS:
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(name, text)
    monkeypatch.setattr(core, "health", lambda: pytest.fail("loaded the model despite a bad value"))
    monkeypatch.setattr(http_server, "make_server", lambda *a, **k: pytest.fail("listened despite a bad value"))
    with pytest.raises(SystemExit) as exit_info:
        http_server.main()
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0]
    message = json.loads(lines[0])["message"]
    assert message.startswith(f"{name} must be a whole number from ") and "\x1b" not in message


def _server_process(env: dict[str, str]) -> subprocess.Popen[str]:
    root = Path(__file__).resolve().parent.parent
    full = {k: v for k, v in os.environ.items() if k not in _ENV_VARS}
    full.update({"PORT": "0", "INFEROPS_HTTP_HOST": "127.0.0.1", "PYTHONPATH": str(root), **env})
    return subprocess.Popen(
        [sys.executable, "-m", "functions.http_server"],
        cwd=root,
        env=full,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("name", ["INFEROPS_HTTP_WORKERS", "INFEROPS_HTTP_QUEUE"])
def test_the_server_process_with_a_bad_value_exits_2_with_one_json_line(name: str) -> None:
    # These were parsed at import time: `python -m functions.http_server` died with a ValueError
    # traceback and exit 1 before main() could say which variable was wrong.
    proc = _server_process({name: "lots"})
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert (
        json.loads(lines[0])["message"]
        == f"{name} must be a whole number from {'1 to 4096' if 'WORKERS' in name else '0 to 65536'}, got 'lots'"
    )


def test_the_server_process_honours_good_worker_and_queue_values() -> None:
    proc = _server_process({"INFEROPS_HTTP_WORKERS": "3", "INFEROPS_HTTP_QUEUE": "5"})
    watchdog = threading.Timer(60, proc.kill)  # a server that never says "listening" cannot hang the test
    watchdog.start()
    try:
        assert proc.stderr is not None
        listening: dict[str, Any] = {}
        for line in proc.stderr:  # bounded: the process ends (closing stderr) or says it listens
            record = json.loads(line)
            if record["message"] == "listening":
                listening = record
                break
        assert listening.get("workers") == 3 and listening.get("queue") == 5, listening
        with socket.create_connection(("127.0.0.1", listening["port"]), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            status, _, _ = _read_response(sock)
        assert status == 200
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait(timeout=10)


def test_expect_100_continue_is_refused_before_the_client_uploads(server: Server) -> None:
    raw = _HEAD + f"Content-Length: {core.MAX_BODY_BYTES + 1}\r\nExpect: 100-continue\r\n\r\n"
    with server.connect() as sock:
        sock.sendall(raw.encode())
        status, headers, body = _read_response(sock)  # the first response is final: no "100 Continue"
    assert status == 413 and headers["connection"] == "close" and "larger than" in json.loads(body)["error"]


def test_expect_100_continue_then_the_body_is_served(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    body = json.dumps(ROW).encode()
    with server.connect() as sock:
        sock.sendall((_HEAD + f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n").encode())
        interim = sock.recv(64)
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        data = interim.split(b"\r\n\r\n", 1)[1]
        status, _, payload = _read_response(_Prefixed(sock, data))
    assert status == 200 and json.loads(payload)["prediction"] == 1
    capsys.readouterr()


class _Prefixed:
    """A socket whose first ``recv`` returns bytes already read."""

    def __init__(self, sock: socket.socket, prefix: bytes) -> None:
        self.sock, self.prefix = sock, prefix

    def recv(self, n: int) -> bytes:
        if self.prefix:
            out, self.prefix = self.prefix, b""
            return out
        return self.sock.recv(n)


def test_keep_alive_serves_two_requests_then_idles_out(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    with server.connect() as sock:
        for _ in range(2):
            sock.sendall(post(json.dumps(ROW).encode()))
            status, headers, _ = _read_response(sock)
            assert status == 200 and "connection" not in headers
        sock.settimeout(5)
        assert sock.recv(1) == b""  # closed by the server's idle timeout, not by us
    capsys.readouterr()


# --- item 13: capacity ------------------------------------------------------------------------------


def test_listen_backlog_is_real(server: Server) -> None:
    assert server.srv.request_queue_size >= 128  # socketserver's default of 5 reset bursts of 50


def test_fifty_concurrent_requests_are_all_served(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    body = post(json.dumps(ROW).encode())

    def one(_: int) -> int:
        with server.connect() as sock:
            sock.sendall(body)
            return _read_response(sock)[0]

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(one, range(50)))
    assert statuses == [200] * 50
    assert len(capsys.readouterr().out.splitlines()) == 50


def test_slow_connections_hold_a_bounded_number_of_threads() -> None:
    """100 clients that never send a byte: at most ``workers`` threads, the overflow gets a 503 at once."""
    s = Server(workers=4, queue=4, idle_timeout=5.0)
    before = threading.active_count()
    socks: list[socket.socket] = []
    try:
        socks = [s.connect() for _ in range(8)]  # fill the 4 workers and the 4 queue places
        extra = [s.connect() for _ in range(92)]
        statuses = []
        for sock in extra:
            status, headers, body = _read_response(sock)
            statuses.append(status)
            assert headers["retry-after"] == "1" and json.loads(body)["error"].startswith("server busy")
            sock.close()
        assert statuses == [503] * 92
        assert threading.active_count() - before <= 4
        assert s.srv.rejected == 92
    finally:
        for sock in socks:
            sock.close()
        s.close()


def test_a_seeded_stream_of_mutated_requests_always_gets_a_json_answer(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """150 requests built by mutating a valid one (seeded): every answer is HTTP with a JSON body."""
    import random

    rng = random.Random(11)
    valid = post(json.dumps(ROW).encode())
    pieces = [b"\r\n", b"\x00", b"\xff", b":", b" ", b"Content-Length: 3\r\n", b"{", b"[", b"9" * 50, b"\t"]
    for _ in range(150):
        raw = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(raw))
            if rng.random() < 0.5:
                raw[pos : pos + rng.randint(1, 5)] = rng.choice(pieces)
            else:
                del raw[pos : pos + rng.randint(1, 5)]
        status, _, payload = exchange(server, bytes(raw), half_close=True)
        assert 200 <= status < 600 and isinstance(payload, dict)
        assert status < 500, payload
    capsys.readouterr()


# --- item 13: Lambda events of unexpected shapes ----------------------------------------------------


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ([], "event"),
        ("x", "event"),
        (None, "event"),
        ({"requestContext": "x"}, "body: empty"),
        ({"requestContext": {"http": "x"}}, "body: empty"),
        ({"requestContext": {"http": {"method": 5}}}, "must be strings"),
        ({"rawPath": ["x"]}, "must be strings"),
        ({"body": base64.b64encode(b"123").decode(), "isBase64Encoded": True}, "must be a JSON object"),
        ({"body": 123, "isBase64Encoded": True}, "base64"),
        ({"body": 123}, "JSON string"),
        ({"body": "[" * 5000 + "]" * 5000}, "nested deeper"),
    ],
)
def test_lambda_events_of_unexpected_shapes_are_400(event: Any, expected: str) -> None:
    response = aws_lambda.handler(event, None)
    assert response["statusCode"] == 400
    assert response["headers"]["content-type"] == "application/json"
    assert expected in json.loads(response["body"])["error"]


def test_lambda_other_methods_are_405_with_allow() -> None:
    response = aws_lambda.handler({"requestContext": {"http": {"method": "PUT", "path": "/predict"}}}, None)
    assert response["statusCode"] == 405 and response["headers"]["allow"] == "POST"


def test_azure_adapter_answers_hostile_bodies_with_json_400() -> None:
    func = pytest.importorskip("azure.functions")
    from functions import function_app

    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"amount": ' + b"9" * 5000 + b"}", b"\xff\xfe"):
        resp = function_app.predict(func.HttpRequest(method="POST", url="/api/predict", body=body))
        assert resp.status_code == 400 and resp.mimetype == "application/json"
        assert json.loads(resp.get_body())["error"].startswith("body:")
