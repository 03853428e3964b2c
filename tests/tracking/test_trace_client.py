from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tokentrail.core import ValidationError
from tokentrail.tracking import Client, TraceError


class TraceServer:
    """A tiny R4U-like trace endpoint on 127.0.0.1 that stores what it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict, dict]] = []
        self.status = 201
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                server.received.append((self.path, dict(self.headers), body))
                failed = server.status >= 400
                answer = {"detail": "invalid api key"} if failed else {"id": len(server.received), **body}
                data = json.dumps(answer).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[TraceServer]:
    srv = TraceServer()
    yield srv
    srv.close()


def test_create_trace_posts_the_r4u_body(server):
    client = Client(server.url + "/", api_key="tt_secret")
    started = datetime(2025, 10, 15, 10, 0, tzinfo=UTC)
    answer = client.create_trace(
        model="gpt-4",
        messages=[{"role": "user", "content": "Hello"}],
        result="Hi!",
        started_at=started,
        completed_at="2025-10-15T10:00:01Z",
        project="My Project",
        prompt_tokens=10,
        completion_tokens=5,
        response_schema={"type": "object", "properties": {"answer": {"type": "string"}}},
        trace_metadata={"environment": "prod", "user_id": "user_123"},
    )
    path, headers, body = server.received[0]
    assert path == "/traces"
    assert headers["Authorization"] == "Bearer tt_secret"
    assert headers["Content-Type"] == "application/json"
    assert body == {
        "model": "gpt-4",
        "messages": [{"role": "user", "content": "Hello"}],
        "result": "Hi!",
        "started_at": "2025-10-15T10:00:00Z",
        "completed_at": "2025-10-15T10:00:01Z",
        "project": "My Project",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "response_schema": {"type": "object", "properties": {"answer": {"type": "string"}}},
        "trace_metadata": {"environment": "prod", "user_id": "user_123"},
    }
    assert answer["id"] == 1 and answer["model"] == "gpt-4"


def test_minimal_trace_without_key_fills_times(server, clock):
    Client(server.url).create_trace(model="gpt-4o", messages=[])
    _, headers, body = server.received[0]
    assert "Authorization" not in headers
    assert body["started_at"] == body["completed_at"] == clock.now().isoformat().replace("+00:00", "Z")
    assert set(body) == {"model", "messages", "started_at", "completed_at"}


def test_http_errors_raise_with_status(server):
    server.status = 401
    with pytest.raises(TraceError) as err:
        Client(server.url, api_key="wrong").create_trace(model="gpt-4", messages=[])
    assert err.value.status == 401
    assert "invalid api key" in str(err.value)


def test_unreachable_server_raises():
    with pytest.raises(TraceError) as err:
        Client("http://127.0.0.1:9", timeout=2).create_trace(model="gpt-4", messages=[])
    assert err.value.status is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"model": "", "messages": []}, "model"),
        ({"model": "m", "messages": "hello"}, "messages"),
        ({"model": "m", "messages": [], "prompt_tokens": -1}, "prompt_tokens"),
        ({"model": "m", "messages": [], "started_at": "yesterday"}, "started_at"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValidationError) as err:
        Client("http://127.0.0.1:9").create_trace(**kwargs)
    assert err.value.field == field


def test_api_url_must_be_http():
    with pytest.raises(ValidationError):
        Client("ftp://example")
