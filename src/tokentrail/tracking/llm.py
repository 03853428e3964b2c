"""`track_llm_call` / `LLMTracker`: the Botanu manual API (SPEC §4), also the object the
instrumentation layer fills for every patched SDK call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any, Self

from tokentrail.core import (
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
from tokentrail.core.record import CallStatus, build_call
from tokentrail.core.sections import build_performance, build_response_metadata
from tokentrail.core.settings import Settings
from tokentrail.core.usage import check_count
from tokentrail.tracking import budgets as _budgets
from tokentrail.tracking.costing import price_call
from tokentrail.tracking.llm_response import ResponseSetters
from tokentrail.tracking.operation import Operation, failed, fill_attribution, jsonable
from tokentrail.tracking.redaction import redacted_content

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


_PROVIDER_NAMES: dict[str, str] = {}  # spelling -> normalized name, for the few a process uses


def _provider_name(spelling: str) -> str:
    name = _PROVIDER_NAMES.get(spelling)
    if name is None:
        name = normalize_provider(spelling)
        if len(_PROVIDER_NAMES) < 256:
            _PROVIDER_NAMES[spelling] = name
    return name


class LLMTracker(ResponseSetters, Operation):
    """Collects what is known about one model call; the record is built and sent on exit.

    Token accounting: `set_tokens` takes `input_tokens` as the inclusive input total (cache
    reads and writes included, the OpenAI / OpenTelemetry convention tokentrail stores) and
    `output_tokens` as the inclusive output total (reasoning included). See `set_tokens`.
    """

    __slots__ = (
        "_content",
        "attempt",
        "cache_hit",
        "deployment",
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
        self.provider = _provider_name(provider) if isinstance(provider, str) and provider else "unknown"
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
        self.deployment: str | None = None
        self._content: tuple[Any, Any] | None = None
        if attrs:
            self.metadata.update(attrs)

    # ---- budgets (tracking/budgets.py): refused before the provider is called ----------------
    # BudgetExceeded is raised on purpose, outside the guarded lifecycle (it must reach the caller).
    def __enter__(self) -> Self:
        _budgets.check(self.provider, self.request_model)
        return super().__enter__()

    def start(self, *, push_span: bool = True) -> Self:
        _budgets.check(self.provider, self.request_model)  # instrumented calls: engine.start_call
        return super().start(push_span=push_span)

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
        try:
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
        except Exception as failure:
            if failed("llm.set_tokens", failure):
                raise

    def set_request_id(self, provider_request_id: str | None, client_request_id: str | None = None) -> None:
        """The provider's id for the request (e.g. `chatcmpl-...`), and your own, for reconciliation."""
        try:
            if provider_request_id is not None:
                self.response["request_id"] = str(provider_request_id)
            if client_request_id is not None:
                self.response["client_request_id"] = str(client_request_id)
        except Exception as failure:
            if failed("llm.set_request_id", failure):
                raise

    def set_response_model(self, model: str | None) -> None:
        """The model the response names (e.g. `gpt-4o-2024-08-06`); priced before the requested one."""
        try:
            self.response_model = str(model) if model else None
        except Exception as failure:
            if failed("llm.set_response_model", failure):
                raise

    def set_request_params(self, **params: Any) -> None:
        """Request parameters (`temperature`, `top_p`, `top_k`, `max_tokens`, `stop_sequences`,
        `frequency_penalty`, `presence_penalty`, `seed`, `n`, `stream`, `service_tier`).

        SDK spellings are accepted (`stop`, `max_completion_tokens`, `max_output_tokens`);
        parameters the record has no field for go to `provider_specific["request_params"]`.
        """
        try:
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
                base = self.request_params
                if base is None:
                    # the fields not given are None in both, so `parsed` is already the merge
                    self.request_params = parsed
                else:
                    self.request_params = replace(base, **{name: getattr(parsed, name) for name in known})
                if "stream" in known:
                    self.streaming = bool(known["stream"])
            if extra:
                specific = self.provider_specific if self.provider_specific is not None else {}
                specific.setdefault("request_params", {}).update(extra)
                self.provider_specific = specific
        except Exception as failure:
            if failed("llm.set_request_params", failure):
                raise

    def set_streaming(self, streaming: bool = True) -> None:
        try:
            self.streaming = bool(streaming)
        except Exception as failure:
            if failed("llm.set_streaming", failure):
                raise

    def set_cache_hit(self, cache_hit: bool = True) -> None:
        """The answer came from a semantic cache, not the provider."""
        try:
            self.cache_hit = bool(cache_hit)
        except Exception as failure:
            if failed("llm.set_cache_hit", failure):
                raise

    def set_attempt(self, attempt: int) -> None:
        """1 for the first try, 2 for the first retry, ..."""
        try:
            if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
                raise ValidationError("attempt", f"must be an integer >= 1, got {attempt!r}")
            self.attempt = attempt
        except Exception as failure:
            if failed("llm.set_attempt", failure):
                raise

    def set_finish_reason(self, reason: str | Sequence[str] | None) -> None:
        """Why generation stopped; several choices' reasons are joined with commas."""
        try:
            if reason is None:
                self.response.pop("finish_reason", None)
            elif isinstance(reason, str):
                self.response["finish_reason"] = reason
            else:
                self.response["finish_reason"] = ",".join(str(r) for r in reason)
        except Exception as failure:
            if failed("llm.set_finish_reason", failure):
                raise

    def set_cost(self, cost: Decimal | str | int) -> None:
        """The cost the provider or gateway reported (USD). It wins; the computed cost is kept beside it."""
        try:
            self.reported_cost = to_decimal("cost", cost)
        except Exception as failure:
            if failed("llm.set_cost", failure):
                raise

    # ---- for the instrumentation layer ----------------------------------------------------
    def set_usage(self, usage: TokenUsage | None, *, estimated: bool = False) -> None:
        """Normalised usage (from `extract_usage`), or locally estimated usage (`estimated=True`)."""
        try:
            if usage is not None and not isinstance(usage, TokenUsage):
                raise ValidationError("usage", f"must be a TokenUsage, got {type(usage).__name__}")
            self.usage = usage
            self.estimated = bool(estimated) and usage is not None
        except Exception as failure:
            if failed("llm.set_usage", failure):
                raise

    def set_units(self, units: Units | None = None, **counts: Any) -> None:
        """Non-token billing units: `pages`, `images`, `characters`, `seconds`, `requests`, `searches`."""
        try:
            if units is not None and not isinstance(units, Units):
                raise ValidationError("units", f"must be a Units, got {type(units).__name__}")
            if counts:
                base = (units or self.units or Units()).to_dict()
                base.update({k: v for k, v in counts.items() if v is not None})
                units = Units.from_dict(base)
            self.units = units
        except Exception as failure:
            if failed("llm.set_units", failure):
                raise

    # ---- record ------------------------------------------------------------------------------
    def _record(self, settings: Settings) -> LLMCall:
        started_at = self.started_at
        assert started_at is not None
        response = self.response
        params = self.request_params
        tier = (response.get("service_tier") if response else None) or (
            params.service_tier if params is not None else None
        )
        usage = self.usage
        units = self.units
        # price_call tries its third argument first and falls back to its second: an Azure
        # deployment goes first (the overrides' deployment map), the response's model second
        deployment = self.deployment
        cost = price_call(
            self.provider,
            self.response_model if deployment else self.request_model,
            deployment or self.response_model,
            usage,
            units,
            at=started_at,
            service_tier=tier,
            estimated=self.estimated,
            reported_cost=self.reported_cost,
        )
        content = None
        if settings.capture_content and self._content is not None and any(v is not None for v in self._content):
            content = redacted_content(settings, self._content[0], self._content[1])
        metadata: dict[str, Any] | None = None
        if self._tags or self.metadata:
            metadata = jsonable({**self._tags, **self.metadata})
        error = self.error
        # positional, in LLMCall's field order (see build_call)
        return build_call(
            self.id,  # id
            self.operation,  # operation
            started_at,  # started_at
            self.provider,  # provider
            self.request_model,  # request_model
            self.response_model,  # provider_model
            self.name,  # name
            CallStatus.OK if error is None else CallStatus.ERROR,  # status
            error,  # error
            self.completed_at,  # completed_at
            self.trace_id,  # trace_id
            self.parent_id,  # parent_id
            usage,  # token_usage
            units if units is not None and not units.is_empty else None,  # units
            cost,  # cost_metrics
            self._performance(),  # performance_metrics
            params,  # request_parameters
            build_response_metadata(response) if response else None,  # response_metadata
            self.rate_limits,  # rate_limit_info
            fill_attribution(self._attribution, settings),  # attribution
            metadata,  # metadata
            jsonable(self.provider_specific) if self.provider_specific else None,  # provider_specific
            self.response_schema,  # response_schema
            self.streaming,  # streaming
            self.cache_hit,  # cache_hit
            self.attempt,  # attempt
            True if self.estimated else None,  # estimated
            content,  # content
        )

    def _performance(self) -> PerformanceMetrics | None:
        duration_s = self.duration_s
        if duration_s is None:
            return None  # not measured (standalone logging without latency): absent, not zero
        duration_ms = duration_s * 1000.0
        ttft = self.ttft_ms
        if ttft is not None and ttft > duration_ms:
            ttft = duration_ms
        tps: float | None = None
        usage = self.usage
        output = usage.output_tokens if usage is not None else None
        if output:
            # generation speed: after the first token when it is known (streams), else overall
            generating_ms = duration_ms - ttft if ttft is not None and duration_ms > ttft else duration_ms
            if generating_ms > 0:
                tps = output / (generating_ms / 1000.0)
        return build_performance(duration_ms, ttft, tps)


def track_llm_call(
    provider: str, model: str | None = None, operation: ModelOperation | str = ModelOperation.CHAT, **attrs: Any
) -> LLMTracker:
    """Track one model call: `with track_llm_call(provider=, model=) as tracker:` (or `async with`).

    The record is sent when the block ends. An exception inside the block is recorded as the
    call's error and propagates unchanged. Extra keyword arguments become metadata.
    """
    return LLMTracker(provider, model, operation, **attrs)


__all__ = ["LLMTracker", "track_llm_call"]
