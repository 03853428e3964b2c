"""What a provider module receives (`MockRequest`, `Context`) and returns (`Reply`, `StreamReply`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tokentrail.mockprovider.config import MockConfig, RequestOptions
from tokentrail.mockprovider.state import BucketReading, MockState, RateLimited, Usage
from tokentrail.mockprovider.tokens import Part, block_boundaries, prefix_hashes

# OpenAI (and Gemini, by the mock's convention) cache prompt prefixes in 128-token blocks.
CACHE_BLOCK = 128


class MockError(Exception):
    """Answer with an error of `kind` in the provider's own body shape."""

    def __init__(
        self, kind: str, message: str | None = None, *, param: str | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message or kind)
        self.kind = kind
        self.message = message
        self.param = param
        self.retry_after_s = retry_after_s
        self.limit_detail: str | None = None  # which bucket ran dry, for the 429 message


@dataclass(slots=True)
class MockRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: Any  # parsed JSON, or None
    provider: str  # openai | azure | anthropic | gemini
    api: str
    model: str
    deployment: str | None = None
    request_id: str = ""

    @property
    def api_key_digest(self) -> str:
        """Who the rate limits belong to. Only a digest is kept; keys are never stored or logged."""
        raw = (
            self.headers.get("authorization")
            or self.headers.get("x-api-key")
            or self.headers.get("api-key")
            or self.headers.get("x-goog-api-key")
            or self.query.get("key")
            or ""
        )
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def field(self, name: str, default: Any = None) -> Any:
        return self.body.get(name, default) if isinstance(self.body, dict) else default


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"
    output_tokens: int = 0  # paced by `token_latency_ms` before the answer is sent
    usage: Usage | None = None


@dataclass(slots=True)
class StreamReply:
    """An SSE answer: `events` yields (bytes to send, tokens it carries) pairs."""

    events: Iterator[tuple[bytes, int]]
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "text/event-stream; charset=utf-8"
    status: int = 200
    usage: Usage | None = None


def json_reply(body: Any, headers: list[tuple[str, str]] | None = None, *, status: int = 200) -> Reply:
    return Reply(status, json.dumps(body, ensure_ascii=False).encode(), headers or [])


def sse(data: Any, event: str | None = None, *, crlf: bool = False) -> bytes:
    """One SSE event (`event:` line optional); Gemini separates lines with CRLF."""
    newline = "\r\n" if crlf else "\n"
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = f"event: {event}{newline}" if event else ""
    return f"{head}data: {payload}{newline}{newline}".encode()


@dataclass(slots=True)
class Context:
    """The server's services for one request."""

    state: MockState
    options: RequestOptions
    request: MockRequest

    @property
    def config(self) -> MockConfig:
        return self.state.config

    def new_id(self, length: int = 24, alphabet: str = "0123456789abcdef") -> str:
        return self.state.new_id(length, alphabet)

    def cached_block_tokens(self, parts: list[Part], total: int) -> tuple[int, dict[int, bytes]]:
        """OpenAI-style implicit caching: the longest previously seen prefix, in 128-token
        blocks from `cache_min_tokens`; returns it with the digests to store once admitted."""
        boundaries = block_boundaries(total, max(1, self.config.cache_min_tokens), CACHE_BLOCK)
        digests = prefix_hashes(parts, boundaries)
        scope = (self.request.provider, self.request.model)
        return self.state.cache.longest_hit(scope, digests), digests

    def store_prefixes(self, digests: Mapping[int, bytes]) -> None:
        if digests:
            self.state.cache.store((self.request.provider, self.request.model), digests)

    def admit(self, demands: Mapping[str, int]) -> dict[str, BucketReading]:
        """Charge the rate-limit buckets (`requests`, `tokens`, ... -> amount), or raise a 429."""
        from_name = {
            "requests": self.config.requests_per_minute,
            "tokens": self.config.tokens_per_minute,
            # Anthropic splits its token limit; the mock gives input 80 % and output 20 %.
            "input-tokens": max(1, self.config.tokens_per_minute * 4 // 5),
            "output-tokens": max(1, self.config.tokens_per_minute // 5),
        }
        wanted = {name: (from_name[name], amount) for name, amount in demands.items()}
        try:
            return self.state.limits.admit(
                self.request.provider, self.request.api_key_digest, wanted, self.config.enforce_rate_limits
            )
        except RateLimited as exc:
            error = MockError("rate_limit", retry_after_s=exc.retry_after_s)
            error.limit_detail = f"{exc.bucket} per min: Limit {exc.limit}, Requested {exc.requested}"
            raise error from None
