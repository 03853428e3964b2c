"""`track_llm_call` / `LLMTracker`: the Botanu manual API (SPEC §4), also the object the
instrumentation layer fills for every patched SDK call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from tokentrail.core import (
    Content,
    LLMCall,
    ModelOperation,
    PerformanceMetrics,
    RateLimitInfo,
    RequestParameters,
    ResponseMetadata,
    TokenUsage,
    Units,
    ValidationError,
    normalize_provider,
)
from tokentrail.core.cost import to_decimal
from tokentrail.core.settings import Settings
from tokentrail.core.usage import check_count
from tokentrail.tracking import clock as _clock
from tokentrail.tracking.costing import price_call
from tokentrail.tracking.guard import guard
from tokentrail.tracking.operation import Operation, jsonable

# SDK spellings of the request parameters the record names (SPEC §1 request_parameters)
_PARAM_ALIASES: dict[str, str] = {
    "stop": "stop_sequences",
    "max_completion_tokens": "max_tokens",
    "max_output_tokens": "max_tokens",
    "max_tokens_to_sample": "max_tokens",
    "stream": "stream",
}
_PARAM_FIELDS = frozenset(RequestParameters._kinds)
_RESPONSE_FIELDS = frozenset(ResponseMetadata._kinds)


class LLMTracker(Operation):
    """Collects what is known about one model call; the record is built and sent on exit.

    Token accounting: `set_tokens` takes `input_tokens` as the inclusive input total (cache
    reads and writes included, the OpenAI / OpenTelemetry convention tokentrail stores) and
    `output_tokens` as the inclusive output total (reasoning included). See `set_tokens`.
    """

    __slots__ = (
        "_content",
        "attempt",
        "cache_hit",
        "estimated",
        "provider",
        "provider_specific",
        "rate_limits",
        "reported_cost",
        "request_model",
        "request_params",
        "response",
        "response_model",
        "response_schema",
        "streaming",
        "ttft_ms",
        "units",
        "usage",
    )

    def __init__(
        self, provider: str, model: str | None, operation: ModelOperation | str = ModelOperation.CHAT, **attrs: Any
    ) -> None:
        super().__init__(operation)
        self.provider = normalize_provider(provider) if isinstance(provider, str) and provider else "unknown"
        self.request_model = model or None
        self.response_model: str | None = None
        self.usage: TokenUsage | None = None
        self.units: Units | None = None
        self.estimated = False
        self.reported_cost: Decimal | None = None
        self.request_params: RequestParameters | None = None
        self.response: dict[str, str] = {}
        self.rate_limits: RateLimitInfo | None = None
        self.provider_specific: dict[str, Any] | None = None
        self.response_schema: dict[str, Any] | None = None
        self.streaming: bool | None = None
        self.cache_hit: bool | None = None
        self.attempt: int | None = None
        self.ttft_ms: float | None = None
        self._content: tuple[Any, Any] | None = None
        if attrs:
            self.metadata.update(attrs)

    # ---- the SPEC §4 methods ----------------------------------------------------------------
    def set_tokens(
        self,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cached_tokens: int | None = None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        reasoning_tokens: int | None = None,
    ) -> None:
        """Record token usage (replaces earlier counts).

        - `input_tokens`: ALL input tokens, cache reads and writes included (OpenAI's
          `prompt_tokens`). Anthropic reports `input_tokens` without its cache counts: pass
          `input_tokens + cache_read_input_tokens + cache_creation_input_tokens`, or hand the
          raw response to `tokentrail.extract_usage`, which converts it.
        - `output_tokens`: all output, reasoning included.
        - `cached_tokens`: OpenAI's `prompt_tokens_details.cached_tokens`, i.e. tokens read
          from the prompt cache; it is the same thing as `cache_read_tokens` (give either,
          or both with the same value).
        - `cache_write_tokens`: tokens written to the cache (Anthropic cache creation).
        - `reasoning_tokens`: the part of `output_tokens` spent on reasoning.

        A subset larger than its total raises `ValidationError` naming the field (or, outside
        tests, is logged and the counts are ignored): nothing is priced from a wrong number.
        """
        with guard("llm.set_tokens"):
            cached = check_count("cached_tokens", cached_tokens)
            read = check_count("cache_read_tokens", cache_read_tokens)
            if cached is not None and read is not None and cached != read:
                raise ValidationError(
                    "cached_tokens", f"{cached} differs from cache_read_tokens {read}; they name the same count"
                )
            read = read if read is not None else cached
            try:
                self.usage = TokenUsage.build(
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    cache_read_tokens=read,
                    cache_write_tokens=cache_write_tokens,
                    reasoning_tokens=reasoning_tokens,
                )
            except ValidationError as exc:
                if exc.field.startswith("cache") and input_tokens is not None:
                    raise ValidationError(
                        exc.field,
                        f"{exc.reason} (input_tokens must include cache reads and writes; "
                        "for Anthropic add cache_read_input_tokens and cache_creation_input_tokens)",
                    ) from None
                raise
            self.estimated = False

    def set_request_id(self, provider_request_id: str | None, client_request_id: str | None = None) -> None:
        """The provider's id for the request (e.g. `chatcmpl-...`), and your own, for reconciliation."""
        with guard("llm.set_request_id"):
            if provider_request_id is not None:
                self.response["request_id"] = str(provider_request_id)
            if client_request_id is not None:
                self.response["client_request_id"] = str(client_request_id)

    def set_response_model(self, model: str | None) -> None:
        """The model the response names (e.g. `gpt-4o-2024-08-06`); priced before the requested one."""
        with guard("llm.set_response_model"):
            self.response_model = str(model) if model else None

    def set_request_params(self, **params: Any) -> None:
        """Request parameters (`temperature`, `top_p`, `top_k`, `max_tokens`, `stop_sequences`,
        `frequency_penalty`, `presence_penalty`, `seed`, `n`, `stream`, `service_tier`).

        SDK spellings are accepted (`stop`, `max_completion_tokens`, `max_output_tokens`);
        parameters the record has no field for go to `provider_specific["request_params"]`.
        """
        with guard("llm.set_request_params"):
            known: dict[str, Any] = {}
            extra: dict[str, Any] = {}
            for key, value in params.items():
                if value is None:
                    continue
                name = _PARAM_ALIASES.get(key, key)
                if name == "stop_sequences" and isinstance(value, str):
                    value = [value]
                if name in _PARAM_FIELDS:
                    known[name] = value
                else:
                    extra[key] = value
            if known:
                parsed = RequestParameters.from_dict(known)
                changes = {name: getattr(parsed, name) for name in known}
                base = self.request_params or RequestParameters()
                self.request_params = replace(base, **changes)
                if "stream" in known:
                    self.streaming = bool(known["stream"])
            if extra:
                specific = self.provider_specific if self.provider_specific is not None else {}
                specific.setdefault("request_params", {}).update(extra)
                self.provider_specific = specific

    def set_streaming(self, streaming: bool = True) -> None:
        with guard("llm.set_streaming"):
            self.streaming = bool(streaming)

    def set_cache_hit(self, cache_hit: bool = True) -> None:
        """The answer came from a semantic cache, not the provider."""
        with guard("llm.set_cache_hit"):
            self.cache_hit = bool(cache_hit)

    def set_attempt(self, attempt: int) -> None:
        """1 for the first try, 2 for the first retry, ..."""
        with guard("llm.set_attempt"):
            if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
                raise ValidationError("attempt", f"must be an integer >= 1, got {attempt!r}")
            self.attempt = attempt

    def set_finish_reason(self, reason: str | Sequence[str] | None) -> None:
        """Why generation stopped; several choices' reasons are joined with commas."""
        with guard("llm.set_finish_reason"):
            if reason is None:
                self.response.pop("finish_reason", None)
            elif isinstance(reason, str):
                self.response["finish_reason"] = reason
            else:
                self.response["finish_reason"] = ",".join(str(r) for r in reason)

    def set_cost(self, cost: Decimal | str | int) -> None:
        """The cost the provider or gateway reported (USD). It wins; the computed cost is kept beside it."""
        with guard("llm.set_cost"):
            self.reported_cost = to_decimal("cost", cost)

    # ---- for the instrumentation layer ----------------------------------------------------
    def set_usage(self, usage: TokenUsage | None, *, estimated: bool = False) -> None:
        """Normalised usage (from `extract_usage`), or locally estimated usage (`estimated=True`)."""
        with guard("llm.set_usage"):
            if usage is not None and not isinstance(usage, TokenUsage):
                raise ValidationError("usage", f"must be a TokenUsage, got {type(usage).__name__}")
            self.usage = usage
            self.estimated = bool(estimated) and usage is not None

    def set_units(self, units: Units | None = None, **counts: Any) -> None:
        """Non-token billing units: `pages`, `images`, `characters`, `seconds`, `requests`, `searches`."""
        with guard("llm.set_units"):
            if units is not None and not isinstance(units, Units):
                raise ValidationError("units", f"must be a Units, got {type(units).__name__}")
            if counts:
                base = (units or self.units or Units()).to_dict()
                base.update({k: v for k, v in counts.items() if v is not None})
                units = Units.from_dict(base)
            self.units = units

    def set_rate_limits(self, info: RateLimitInfo | None = None, **fields: Any) -> None:
        """Rate-limit state from response headers (limits, remaining, absolute reset times)."""
        with guard("llm.set_rate_limits"):
            if info is not None and not isinstance(info, RateLimitInfo):
                raise ValidationError("rate_limit_info", f"must be a RateLimitInfo, got {type(info).__name__}")
            if fields:
                base = (info or RateLimitInfo()).to_dict()
                base.update({k: v for k, v in fields.items() if v is not None})
                info = RateLimitInfo.from_dict(base)
            self.rate_limits = info

    def set_time_to_first_token(self, ms: float | None = None) -> None:
        """Time to the first streamed token in ms; with no argument, "the first token is now"."""
        with guard("llm.set_time_to_first_token"):
            if ms is None:
                ms = (_clock.get_clock().perf() - self._t0) * 1000.0
            elif isinstance(ms, bool) or not isinstance(ms, int | float) or ms < 0:
                raise ValidationError("time_to_first_token_ms", f"must be a non-negative number, got {ms!r}")
            self.ttft_ms = float(ms)

    def set_response_metadata(self, **fields: Any) -> None:
        """`finish_reason`, `model_version`, `request_id`, `client_request_id`,
        `system_fingerprint`, `service_tier`, `response_id` as the response reports them."""
        with guard("llm.set_response_metadata"):
            for key, value in fields.items():
                if key not in _RESPONSE_FIELDS:
                    raise ValidationError(f"response_metadata.{key}", "is not a response_metadata field")
                if value is not None:
                    self.response[key] = str(value)

    def set_response_schema(self, schema: Mapping[str, Any] | None) -> None:
        """The JSON schema requested through `response_format` (R4U)."""
        with guard("llm.set_response_schema"):
            self.response_schema = jsonable(schema) if schema is not None else None

    def set_provider_specific(self, **kv: Any) -> None:
        with guard("llm.set_provider_specific"):
            specific = self.provider_specific if self.provider_specific is not None else {}
            specific.update(kv)
            self.provider_specific = specific

    def set_content(self, messages: Any = None, result: Any = None) -> None:
        """Prompt and answer; stored only when content capture is on (`capture_content`)."""
        with guard("llm.set_content"):
            self._content = (messages, result)

    # ---- record ------------------------------------------------------------------------------
    def _record(self, settings: Settings) -> LLMCall:
        common = self._common(settings)
        started_at: datetime = common["started_at"]
        response = self.response
        tier = response.get("service_tier") or (self.request_params.service_tier if self.request_params else None)
        cost = price_call(
            self.provider,
            self.request_model,
            self.response_model,
            self.usage,
            self.units,
            at=started_at,
            service_tier=tier,
            estimated=self.estimated,
            reported_cost=self.reported_cost,
        )
        content = None
        if settings.capture_content and self._content is not None and any(v is not None for v in self._content):
            content = Content(messages=self._content[0], result=self._content[1])
        return LLMCall(
            **common,
            provider=self.provider,
            request_model=self.request_model,
            provider_model=self.response_model,
            token_usage=self.usage,
            units=self.units if self.units is not None and not self.units.is_empty else None,
            cost_metrics=cost,
            performance_metrics=self._performance(),
            request_parameters=self.request_params,
            response_metadata=ResponseMetadata(**response) if response else None,
            rate_limit_info=self.rate_limits,
            provider_specific=jsonable(self.provider_specific) if self.provider_specific else None,
            response_schema=self.response_schema,
            streaming=self.streaming,
            cache_hit=self.cache_hit,
            attempt=self.attempt,
            estimated=True if self.estimated else None,
            content=content,
        )

    def _performance(self) -> PerformanceMetrics | None:
        if self.duration_s is None:
            return None  # not measured (standalone logging without latency): absent, not zero
        duration_ms = self.duration_s * 1000.0
        ttft = self.ttft_ms
        if ttft is not None and ttft > duration_ms:
            ttft = duration_ms
        tps: float | None = None
        output = self.usage.output_tokens if self.usage is not None else None
        if output:
            # generation speed: after the first token when it is known (streams), else overall
            generating_ms = duration_ms - ttft if ttft is not None and duration_ms > ttft else duration_ms
            if generating_ms > 0:
                tps = output / (generating_ms / 1000.0)
        return PerformanceMetrics(total_duration_ms=duration_ms, time_to_first_token_ms=ttft, tokens_per_second=tps)


def track_llm_call(
    provider: str, model: str | None = None, operation: ModelOperation | str = ModelOperation.CHAT, **attrs: Any
) -> LLMTracker:
    """Track one model call: `with track_llm_call(provider=, model=) as tracker:` (or `async with`).

    The record is sent when the block ends. An exception inside the block is recorded as the
    call's error and propagates unchanged. Extra keyword arguments become metadata.
    """
    return LLMTracker(provider, model, operation, **attrs)


__all__ = ["LLMTracker", "track_llm_call"]
