"""Replaying recorded OpenAI exchanges (vcrpy YAML cassettes) through the real openai SDK.

`Replay` is an `httpx2.MockTransport` handler that answers each request with the next
recorded response (status, headers, body bytes), and keeps the requests it saw, so a test
drives `OpenAI(...).chat.completions.create(**recorded_request)` exactly as it was recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import openai
import yaml

CASSETTES = (
    Path(__file__).resolve().parents[1]
    / "fixtures/cassettes/otel-python-contrib/instrumentation-genai"
    / "opentelemetry-instrumentation-openai-v2/tests/cassettes"
)
# set by the transport itself, or would describe the recorded (decoded) body wrongly
_SKIPPED = frozenset({"content-length", "transfer-encoding", "connection", "content-encoding"})


@dataclass(frozen=True)
class Exchange:
    request: dict[str, Any]  # the recorded request body
    uri: str
    status: int
    headers: list[tuple[str, str]]
    body: str

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def events(self) -> list[dict[str, Any]]:
        """The SSE data events of a streamed body, `[DONE]` left out."""
        out = []
        for block in self.body.replace("\r\n", "\n").split("\n\n"):
            data = "\n".join(line[5:].lstrip() for line in block.split("\n") if line.startswith("data:"))
            if data and data != "[DONE]":
                out.append(json.loads(data))
        return out

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def load(name: str) -> list[Exchange]:
    raw = yaml.safe_load((CASSETTES / f"{name}.yaml").read_text(encoding="utf-8"))
    out = []
    for item in raw["interactions"]:
        response = item["response"]
        headers: list[tuple[str, str]] = []
        for key, value in (response.get("headers") or {}).items():
            if key.lower() in _SKIPPED:
                continue
            for one in value if isinstance(value, list) else [value]:
                headers.append((key, str(one)))
        body = item["request"].get("body")
        out.append(
            Exchange(
                request=json.loads(body) if body else {},
                uri=item["request"]["uri"],
                status=int(response["status"]["code"]),
                headers=headers,
                body=response["body"]["string"],
            )
        )
    return out


def response_of(exchange: Exchange) -> httpx2.Response:
    return httpx2.Response(exchange.status, headers=exchange.headers, content=exchange.body.encode("utf-8"))


class Replay:
    """Answers requests with recorded responses, in order; `requests` are the ones received."""

    def __init__(self, exchanges: list[Exchange] | list[Callable[[httpx2.Request], httpx2.Response]]) -> None:
        self.exchanges = list(exchanges)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if not self.exchanges:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        item = self.exchanges.pop(0)
        return item(request) if callable(item) else response_of(item)

    def sent_json(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def client(replay: Replay, *, base_url: str | None = None, max_retries: int = 0, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="test-key",
        base_url=base_url,
        max_retries=max_retries,
        http_client=httpx2.Client(transport=httpx2.MockTransport(replay)),
        **kwargs,
    )


def async_client(
    replay: Replay, *, base_url: str | None = None, max_retries: int = 0, **kwargs: Any
) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key="test-key",
        base_url=base_url,
        max_retries=max_retries,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(replay)),
        **kwargs,
    )


def sse(events: list[dict[str, Any]], *, done: bool = True) -> str:
    """An OpenAI chat SSE body from chunk dicts."""
    text = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
    return text + ("data: [DONE]\n\n" if done else "")
