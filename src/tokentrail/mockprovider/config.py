"""Settings of the mock provider, and their per-request overrides (`x-mock-*` headers)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from tokentrail.core import ValidationError

# Error kinds the mock can inject, with the aliases accepted on the command line and in headers.
ERROR_KINDS = ("rate_limit", "server_error", "overloaded", "bad_request", "unauthorized", "not_found")
_ERROR_ALIASES: dict[str, str] = {
    "429": "rate_limit",
    "rate-limit": "rate_limit",
    "ratelimit": "rate_limit",
    "500": "server_error",
    "server": "server_error",
    "server-error": "server_error",
    "api_error": "server_error",
    "503": "overloaded",
    "529": "overloaded",
    "unavailable": "overloaded",
    "400": "bad_request",
    "bad-request": "bad_request",
    "invalid_request": "bad_request",
    "401": "unauthorized",
    "auth": "unauthorized",
    "404": "not_found",
    "not-found": "not_found",
}

# Per-request override headers (case-insensitive); the SDKs send them via extra/default headers.
H_LATENCY = "x-mock-latency-ms"
H_TOKEN_LATENCY = "x-mock-token-latency-ms"
H_ERROR = "x-mock-error"
H_ERROR_ATTEMPTS = "x-mock-error-attempts"
H_ERROR_RATE = "x-mock-error-rate"
H_OUTPUT_TOKENS = "x-mock-output-tokens"
H_RETRY_AFTER = "x-mock-retry-after-ms"
# The retry counter the OpenAI and Anthropic SDKs send with every attempt.
H_RETRY_COUNT = "x-stainless-retry-count"


def error_kind(value: str, field_name: str = "error") -> str:
    """The canonical error kind for a name, alias or HTTP status ("429" -> "rate_limit")."""
    key = value.strip().lower()
    kind = key if key in ERROR_KINDS else _ERROR_ALIASES.get(key)
    if kind is None:
        raise ValidationError(field_name, f"unknown error kind {value!r}; expected one of {', '.join(ERROR_KINDS)}")
    return kind


@dataclass(frozen=True, slots=True)
class MockConfig:
    """How the mock behaves. Every field is also a constructor argument of `MockProvider` and a
    `tokentrail mock-provider` option.

    - `latency_ms`: delay before the first byte (time to first token).
    - `token_latency_ms`: delay per generated token (between stream chunks; added to the
      total for non-streamed answers).
    - `error_rate`: probability (0..1) that a request fails with one of `error_kinds`.
    - `seed`: makes generated text, ids and injected errors reproducible.
    - `requests_per_minute` / `tokens_per_minute`: rate-limit buckets per provider and API key,
      refilled continuously (a minute from empty to full); a request the bucket cannot afford
      gets a real 429 when `enforce_rate_limits`. Anthropic's input/output token buckets get
      80 % / 20 % of `tokens_per_minute`.
    - `retry_after_ms`: the wait advertised on injected 429s.
    - `cache_min_tokens`: shortest cacheable prompt prefix.
    - `auto_cache_system`: Anthropic only; a system prompt of at least `cache_min_tokens`
      is cached as if it carried `cache_control` when the request marks nothing itself.
    - `output_tokens`: fixed visible answer length (tokens) instead of one derived from the prompt.
    - `azure_deployments`: Azure deployment name -> the model the response names.
    """

    latency_ms: float = 0.0
    token_latency_ms: float = 0.0
    error_rate: float = 0.0
    error_kinds: tuple[str, ...] = ("rate_limit", "server_error", "overloaded")
    seed: int = 0
    requests_per_minute: int = 500
    tokens_per_minute: int = 200_000
    enforce_rate_limits: bool = True
    retry_after_ms: int = 1_000
    cache_min_tokens: int = 1024
    auto_cache_system: bool = True
    output_tokens: int | None = None
    azure_deployments: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _non_negative("latency_ms", self.latency_ms)
        _non_negative("token_latency_ms", self.token_latency_ms)
        if not isinstance(self.error_rate, int | float) or not 0.0 <= self.error_rate <= 1.0:
            raise ValidationError("error_rate", f"must be a probability between 0 and 1, got {self.error_rate!r}")
        kinds = tuple(error_kind(k, "error_kinds") for k in self.error_kinds)
        if not kinds:
            raise ValidationError("error_kinds", "must name at least one error kind")
        object.__setattr__(self, "error_kinds", kinds)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValidationError("seed", f"must be an integer, got {self.seed!r}")
        for name in ("requests_per_minute", "tokens_per_minute"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValidationError(name, f"must be a positive integer, got {value!r}")
        for name in ("retry_after_ms", "cache_min_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValidationError(name, f"must be a non-negative integer, got {value!r}")
        if self.output_tokens is not None and (not isinstance(self.output_tokens, int) or self.output_tokens < 0):
            raise ValidationError("output_tokens", f"must be a non-negative integer, got {self.output_tokens!r}")
        for name, model in self.azure_deployments.items():
            if not name or not model:
                raise ValidationError("azure_deployments", f"deployment {name!r} needs a model name")
        object.__setattr__(self, "azure_deployments", MappingProxyType(dict(self.azure_deployments)))

    def with_changes(self, **changes: Any) -> MockConfig:
        return replace(self, **changes)


def _non_negative(name: str, value: Any) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ValidationError(name, f"must be a non-negative number, got {value!r}")


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """The settings in force for one request: the config, overridden by `x-mock-*` headers."""

    latency_ms: float
    token_latency_ms: float
    error_rate: float
    output_tokens: int | None
    retry_after_ms: int
    forced_error: str | None  # `x-mock-error`, already filtered by `x-mock-error-attempts`

    @classmethod
    def from_headers(cls, config: MockConfig, headers: Mapping[str, str]) -> RequestOptions:
        """Read the overrides; a malformed header raises `ValidationError` naming it."""
        forced = headers.get(H_ERROR)
        kind = error_kind(forced, H_ERROR) if forced else None
        if kind is not None and H_ERROR_ATTEMPTS in headers:
            # fail only the first N attempts of a call, so the SDK's retry then succeeds
            attempts = _int_header(headers, H_ERROR_ATTEMPTS, 0)
            retry = _int_header(headers, H_RETRY_COUNT, 0)
            if retry >= attempts:
                kind = None
        rate = _float_header(headers, H_ERROR_RATE, config.error_rate)
        if not 0.0 <= rate <= 1.0:
            raise ValidationError(H_ERROR_RATE, f"must be between 0 and 1, got {rate}")
        output = headers.get(H_OUTPUT_TOKENS)
        return cls(
            latency_ms=_float_header(headers, H_LATENCY, config.latency_ms),
            token_latency_ms=_float_header(headers, H_TOKEN_LATENCY, config.token_latency_ms),
            error_rate=rate,
            output_tokens=config.output_tokens if output is None else _int_header(headers, H_OUTPUT_TOKENS, 0),
            retry_after_ms=_int_header(headers, H_RETRY_AFTER, config.retry_after_ms),
            forced_error=kind,
        )


def _float_header(headers: Mapping[str, str], name: str, default: float) -> float:
    raw = headers.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError(name, f"must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValidationError(name, f"must be a non-negative number, got {raw!r}")
    return value


def _int_header(headers: Mapping[str, str], name: str, default: int) -> int:
    raw = headers.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(name, f"must be an integer, got {raw!r}") from None
    if value < 0:
        raise ValidationError(name, f"must be non-negative, got {raw!r}")
    return value
