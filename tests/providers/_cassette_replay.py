"""Recorded provider exchanges (vcrpy YAML cassettes) read as data or replayed over loopback.

`replay(...)` serves a cassette's responses, in order, from a local HTTP server on
127.0.0.1, so the real provider SDKs (anthropic, google-genai, boto3) parse the recorded
bytes exactly as they would parse the live service. Nothing leaves the machine.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from botocore.eventstream import EventStreamBuffer

CASSETTES = Path(__file__).resolve().parents[1] / "fixtures" / "cassettes" / "otel-python-contrib"
ANTHROPIC = CASSETTES / "instrumentation-genai/opentelemetry-instrumentation-anthropic/tests/cassettes"
GOOGLE_GENAI = (
    CASSETTES / "instrumentation-genai/opentelemetry-instrumentation-google-genai/tests" / "generate_content/cassettes"
)
VERTEXAI = CASSETTES / "instrumentation-genai/opentelemetry-instrumentation-vertexai/tests/cassettes"
BOTOCORE = CASSETTES / "instrumentation/opentelemetry-instrumentation-botocore/tests/cassettes"
LANGCHAIN = CASSETTES / "instrumentation-genai/opentelemetry-instrumentation-langchain/tests/cassettes"

# hop-by-hop or length headers the replay server sets itself
_SKIPPED_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "content-encoding"})


@dataclass(frozen=True)
class Interaction:
    """One recorded exchange: the request line and the response as the server sent it."""

    method: str
    uri: str
    request_body: Any
    status: int
    headers: dict[str, list[str]]
    body: str | bytes  # text (JSON / SSE) or bytes (AWS event stream)

    @property
    def json(self) -> Any:
        assert isinstance(self.body, str)
        return json.loads(self.body)

    @property
    def is_json(self) -> bool:
        return isinstance(self.body, str) and self.body.lstrip().startswith("{")

    def header(self, name: str) -> str | None:
        for key, values in self.headers.items():
            if key.lower() == name.lower():
                return values[0]
        return None


def load(path: Path) -> list[Interaction]:
    """Every interaction of one cassette file, in recorded order."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    out: list[Interaction] = []
    for item in raw["interactions"]:
        response = item["response"]
        headers = {
            key: [str(v) for v in (value if isinstance(value, list) else [value])]
            for key, value in (response.get("headers") or {}).items()
        }
        out.append(
            Interaction(
                method=item["request"]["method"],
                uri=item["request"]["uri"],
                request_body=item["request"].get("body"),
                status=int(response["status"]["code"]),
                headers=headers,
                body=response["body"]["string"],  # YAML !!binary bodies load as bytes
            )
        )
    return out


def parse_sse(text: str) -> list[dict[str, Any]]:
    """JSON events of an SSE body; blank-line separated with LF or CRLF (Gemini) line ends."""
    events: list[dict[str, Any]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].lstrip() for line in block.split("\n") if line.startswith("data:"))
        if data and data != "[DONE]":
            events.append(json.loads(data))
    return events


def event_stream_frames(body: bytes) -> list[Any]:
    """AWS event-stream frames of a Bedrock stream body, decoded by botocore's own parser."""
    buffer = EventStreamBuffer()
    buffer.add_data(body)
    return list(buffer)


@dataclass
class Replay:
    """A running loopback server and the requests it has answered."""

    base_url: str
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)


@contextmanager
def replay(interactions: list[Interaction]) -> Iterator[Replay]:
    """Serve `interactions` in order from http://127.0.0.1:<free port>; 500 once they run out."""
    pending = list(interactions)
    lock = threading.Lock()
    state = Replay(base_url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body_in = self.rfile.read(length) if length else b""
            with lock:
                state.requests.append((self.command, self.path, body_in))
                recorded = pending.pop(0) if pending else None
            if recorded is None:
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            payload = recorded.body if isinstance(recorded.body, bytes) else recorded.body.encode("utf-8")
            self.send_response(recorded.status)
            for key, values in recorded.headers.items():
                if key.lower() in _SKIPPED_HEADERS:
                    continue
                for value in values:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_POST = _answer
        do_GET = _answer

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
