"""Standalone logging (faciliter-lib `log_*_usage`, Botanu `set_*` helpers): one call, one record,
for code that cannot wrap the model call in a context manager.

Each function returns the record it emitted (or None if tracking failed, which is logged).
Where a provider reported no token counts but the text is given, usage is estimated locally
and the record is marked `estimated`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from tokentrail.core import LLMCall, ModelOperation, TokenUsage, ValidationError
from tokentrail.core.attribution import current_span
from tokentrail.tracking import clock as _clock
from tokentrail.tracking.estimate import estimate_usage
from tokentrail.tracking.guard import guard
from tokentrail.tracking.llm import LLMTracker


def _latency(latency_ms: float | None) -> timedelta | None:
    if latency_ms is None:
        return None
    if isinstance(latency_ms, bool) or not isinstance(latency_ms, int | float) or latency_ms < 0:
        raise ValidationError("latency_ms", f"must be a non-negative number, got {latency_ms!r}")
    return timedelta(milliseconds=latency_ms)


def _run(
    tracker: LLMTracker,
    *,
    latency_ms: float | None,
    started_at: datetime | None,
    error: BaseException | str | None,
    cost: Decimal | str | int | None,
    metadata: Mapping[str, Any] | None,
) -> LLMCall | None:
    """Time the tracker from the given latency (measured by the caller) and emit its record."""
    latency = _latency(latency_ms)
    if started_at is not None:
        start = started_at
        end = start + latency if latency is not None else start
    else:
        end = _clock.get_clock().now()
        start = end - latency if latency is not None else end
    tracker._begin(started_at=start, push=False)
    if error is not None:
        tracker.set_error(error)
    if cost is not None:
        tracker.set_cost(cost)
    if metadata:
        tracker.add_metadata(**metadata)
    return tracker._end(completed_at=end, duration_known=latency is not None)


def log_llm_usage(
    provider: str,
    model: str,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    total_tokens: int | None = None,
    cached_tokens: int | None = None,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    reasoning_tokens: int | None = None,
    latency_ms: float | None = None,
    error: BaseException | str | None = None,
    *,
    operation: ModelOperation | str = ModelOperation.CHAT,
    cost: Decimal | str | int | None = None,
    prompt: str | Sequence[Mapping[str, Any]] | None = None,
    completion: str | None = None,
    streaming: bool | None = None,
    provider_request_id: str | None = None,
    response_model: str | None = None,
    started_at: datetime | None = None,
    metadata: Mapping[str, Any] | None = None,
    **attrs: Any,
) -> LLMCall | None:
    """Record one finished LLM request (faciliter `log_llm_usage`).

    `input_tokens` is inclusive of cached tokens (see `LLMTracker.set_tokens`). With no
    counts at all but `prompt` (text or chat messages) and/or `completion`, usage is
    estimated. `latency_ms` dates the call back from now (or from `started_at`).
    `cost` is a provider-reported cost. Other keywords become metadata.
    """
    with guard("log_llm_usage"):
        tracker = LLMTracker(provider, model, operation)
        counts = (input_tokens, output_tokens, cached_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens)
        if any(v is not None for v in counts):
            tracker.set_tokens(
                input_tokens, output_tokens, cached_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens
            )
            if total_tokens is not None and tracker.usage is not None:
                tracker.set_usage(TokenUsage(**{**_usage_fields(tracker.usage), "total_tokens": total_tokens}))
        elif total_tokens is not None:
            tracker.set_usage(TokenUsage(total_tokens=total_tokens))
        elif prompt is not None or completion is not None:
            tracker.set_usage(_estimate(prompt, completion, response_model or model), estimated=True)
        if streaming is not None:
            tracker.set_streaming(streaming)
        if provider_request_id is not None:
            tracker.set_request_id(provider_request_id)
        if response_model is not None:
            tracker.set_response_model(response_model)
        tracker.add_metadata(**attrs)
        return _run(tracker, latency_ms=latency_ms, started_at=started_at, error=error, cost=cost, metadata=metadata)
    return None


def _usage_fields(usage: TokenUsage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
    }


def _estimate(prompt: str | Sequence[Mapping[str, Any]] | None, completion: str | None, model: str) -> TokenUsage:
    if isinstance(prompt, str) or prompt is None:
        return estimate_usage(input_text=prompt, output_text=completion, model=model)
    return estimate_usage(messages=prompt, output_text=completion, model=model)


def log_embedding_usage(
    provider: str,
    model: str,
    input_tokens: int | None = None,
    text_count: int | None = None,
    dimensions: int | None = None,
    latency_ms: float | None = None,
    error: BaseException | str | None = None,
    *,
    texts: Sequence[str] | None = None,
    cost: Decimal | str | int | None = None,
    started_at: datetime | None = None,
    metadata: Mapping[str, Any] | None = None,
    **attrs: Any,
) -> LLMCall | None:
    """Record one embeddings request. Without `input_tokens`, `texts` are counted locally
    (as faciliter does for Infinity, which reports nothing)."""
    with guard("log_embedding_usage"):
        tracker = LLMTracker(provider, model, ModelOperation.EMBEDDINGS)
        if input_tokens is not None:
            tracker.set_tokens(input_tokens=input_tokens, output_tokens=0)
        elif texts is not None:
            counted = estimate_usage(input_text="\n".join(texts), model=model)
            tracker.set_usage(TokenUsage.build(input_tokens=counted.input_tokens, output_tokens=0), estimated=True)
        if text_count is None and texts is not None:
            text_count = len(texts)
        extra = {"embedding.text_count": text_count, "embedding.dimensions": dimensions}
        tracker.add_metadata(**{k: v for k, v in extra.items() if v is not None}, **attrs)
        return _run(tracker, latency_ms=latency_ms, started_at=started_at, error=error, cost=cost, metadata=metadata)
    return None


def log_ocr_usage(
    provider: str,
    model: str,
    pages: int | None = None,
    images: int | None = None,
    latency_ms: float | None = None,
    error: BaseException | str | None = None,
    *,
    characters: int | None = None,
    cost: Decimal | str | int | None = None,
    started_at: datetime | None = None,
    metadata: Mapping[str, Any] | None = None,
    **attrs: Any,
) -> LLMCall | None:
    """Record one OCR request, billed by `pages` and/or `images` (SPEC §1 units)."""
    with guard("log_ocr_usage"):
        tracker = LLMTracker(provider, model, ModelOperation.OCR)
        tracker.set_units(pages=pages, images=images, characters=characters)
        tracker.add_metadata(**attrs)
        return _run(tracker, latency_ms=latency_ms, started_at=started_at, error=error, cost=cost, metadata=metadata)
    return None


def _current_tracker() -> LLMTracker | None:
    span = current_span()
    owner = span.owner if span is not None else None
    return owner if isinstance(owner, LLMTracker) else None


def set_llm_attributes(
    provider: str | None = None,
    model: str | None = None,
    operation: ModelOperation | str | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    streaming: bool | None = None,
    provider_request_id: str | None = None,
    **attrs: Any,
) -> LLMCall | None:
    """Botanu helper: set attributes on the LLM call being tracked here (inside
    `track_llm_call` / `@llm_instrumented`). Outside one, it records a call of its own from
    the values given and returns that record."""
    with guard("set_llm_attributes"):
        tracker = _current_tracker()
        if tracker is None:
            return log_llm_usage(
                provider or "unknown",
                model or "",
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                streaming=streaming,
                provider_request_id=provider_request_id,
                operation=operation or ModelOperation.CHAT,
                **attrs,
            )
        if provider:
            tracker.provider = LLMTracker(provider, None).provider
        if model:
            tracker.request_model = model
        if operation is not None:
            tracker.operation = ModelOperation(operation)
        if input_tokens is not None or output_tokens is not None:
            _merge_tokens(tracker, input_tokens=input_tokens, output_tokens=output_tokens)
        if streaming is not None:
            tracker.set_streaming(streaming)
        if provider_request_id is not None:
            tracker.set_request_id(provider_request_id)
        if attrs:
            tracker.add_metadata(**attrs)
    return None


def set_token_usage(
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cached_tokens: int | None = None,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    reasoning_tokens: int | None = None,
    *,
    provider: str | None = None,
    model: str | None = None,
) -> LLMCall | None:
    """Botanu helper: set token counts on the LLM call being tracked here; outside one, record
    a call of its own (name `provider`/`model` so it can be priced) and return it."""
    with guard("set_token_usage"):
        tracker = _current_tracker()
        if tracker is None:
            return log_llm_usage(
                provider or "unknown",
                model or "",
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cached_tokens=cached_tokens,
                cache_read_tokens=cache_read_tokens,
                cache_write_tokens=cache_write_tokens,
                reasoning_tokens=reasoning_tokens,
            )
        _merge_tokens(
            tracker,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens if cache_read_tokens is not None else cached_tokens,
            cache_write_tokens=cache_write_tokens,
            reasoning_tokens=reasoning_tokens,
        )
    return None


def _merge_tokens(tracker: LLMTracker, **counts: int | None) -> None:
    """Update only the counts given, keeping the ones set earlier."""
    current = _usage_fields(tracker.usage) if tracker.usage is not None else {}
    current.update({k: v for k, v in counts.items() if v is not None})
    tracker.set_tokens(
        input_tokens=current.get("input_tokens"),
        output_tokens=current.get("output_tokens"),
        cache_read_tokens=current.get("cache_read_tokens"),
        cache_write_tokens=current.get("cache_write_tokens"),
        reasoning_tokens=current.get("reasoning_tokens"),
    )


__all__ = ["log_embedding_usage", "log_llm_usage", "log_ocr_usage", "set_llm_attributes", "set_token_usage"]
