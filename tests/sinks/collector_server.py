"""A tiny real collector for the sink tests: `POST /v1/calls` on 127.0.0.1, idempotent on id.

It validates every record with `LLMCall.from_dict` (a bad one answers 400 naming the field),
stores each id once, and remembers every delivery so tests can tell "stored exactly once"
from "sent twice". It can answer with an error status, refuse connections (`down()` closes
the listening socket; `up()` binds the same port again), or reject chosen ids.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tokentrail.core import LLMCall, ValidationError


def free_port() -> int:
    """A port nothing listens on (connections to it are refused until a server binds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeCollector:
    def __init__(self, port: int | None = None, api_key: str = "test-key") -> None:
        self.port = port or free_port()
        self.api_key = api_key
        self.lock = threading.Lock()
        self.stored: dict[str, dict] = {}  # id -> record, first delivery wins
        self.order: list[str] = []  # ids in the order they were first stored
        self.deliveries: Counter[str] = Counter()  # id -> times received in an accepted batch
        self.requests = 0
        self.client_ports: set[int] = set()
        self.headers: list[dict[str, str]] = []
        self.status: int | None = None  # answer every request with this status (e.g. 503)
        self.retry_after: str | None = None
        self.reject_ids: set[str] = set()
        self.fail_times = 0  # answer the next n requests with `fail_status`
        self.fail_status = 503
        # store the batch, then never answer (a server that dies between commit and reply)
        self.hang_after_store = False
        self.release = threading.Event()
        self.connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> FakeCollector:
        collector = self
        self.release.clear()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real server

            def log_message(self, *args: object) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with collector.lock:
                    collector.connections.add(self.connection)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with collector.lock:
                    collector.requests += 1
                    collector.client_ports.add(self.client_address[1])
                    collector.headers.append(dict(self.headers))
                status, answer = collector.handle(self.path, dict(self.headers), body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 429 and collector.retry_after is not None:
                    self.send_header("Retry-After", collector.retry_after)
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        """Stop listening: new connections are refused."""
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self.lock:
            # established keep-alive connections die with the server too
            for conn in self.connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self.connections.clear()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
        if path != "/v1/calls":
            return 404, {"detail": "not found"}
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, {"detail": "bad api key"}
        if self.status is not None:
            return self.status, {"detail": "unavailable"}
        with self.lock:
            if self.fail_times > 0:
                self.fail_times -= 1
                return self.fail_status, {"detail": "try again"}
        if headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        calls = json.loads(body)["calls"]
        for i, data in enumerate(calls):
            if data.get("id") in self.reject_ids:
                return 400, {
                    "detail": [{"field": f"calls[{i}].token_usage.input_tokens", "reason": "must not be negative"}]
                }
            try:
                LLMCall.from_dict(data)
            except ValidationError as exc:
                return 400, {"detail": [{"field": f"calls[{i}].{exc.field}", "reason": exc.reason}]}
        accepted = duplicates = 0
        with self.lock:
            for data in calls:
                self.deliveries[data["id"]] += 1
                if data["id"] in self.stored:
                    duplicates += 1
                else:
                    self.stored[data["id"]] = data
                    self.order.append(data["id"])
                    accepted += 1
        if self.hang_after_store:
            self.release.wait(60)
        return 200, {"accepted": accepted, "duplicates": duplicates}
