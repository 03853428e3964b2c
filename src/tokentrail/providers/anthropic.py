"""Usage of Anthropic Messages responses (PROVIDERS.md A.5), also used for Claude on Bedrock.

Anthropic reports `input_tokens` EXCLUDING both cache counters, so the inclusive input is
`input_tokens + cache_creation_input_tokens + cache_read_input_tokens`; `output_tokens`
already includes thinking. Streams: `message_start.message.usage` carries the input side and
a placeholder output count; every `message_delta.usage` is CUMULATIVE, so each field it
carries overwrites the previous value (never add). `usage.iterations[]` (compaction, server
tool loops, advisor sub-inferences) is billed as the sum over the iterations of this model;
an `advisor_message` (or any iteration naming another model) goes to `other_models`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokentrail.core import TokenUsage, ValidationError
from tokentrail.providers._access import get, non_negative, reported

MESSAGES = "messages"

# iteration types billed at the rates of the model they name, not the response's model
_OTHER_MODEL_ITERATIONS = frozenset({"advisor_message", "fallback_message"})


class MessageStreamState:
    """Accumulates one Messages stream (raw SSE events or SDK `RawMessageStreamEvent`s).

    `feed` looks only at `message_start` and `message_delta`; the frequent content events
    cost one type lookup. Values are kept as reported and validated in `result`.
    """

    __slots__ = (
        "_cache_read",
        "_cache_write",
        "_input",
        "_iterations",
        "_model",
        "_output",
        "_seen",
        "_thinking",
        "_ttl_1h",
        "_ttl_5m",
        "_web_searches",
    )

    def __init__(self) -> None:
        self._seen = False
        self._model: str | None = None
        self._input: int | None = None
        self._cache_read: int | None = None
        self._cache_write: int | None = None
        self._ttl_5m: int | None = None
        self._ttl_1h: int | None = None
        self._output: int | None = None
        self._thinking: int | None = None
        self._web_searches: int | None = None
        self._iterations: Any = None

    def feed(self, event: Any) -> None:
        try:
            kind = event.get("type") if event.__class__ is dict else getattr(event, "type", None)
            if kind == "message_delta":
                self.apply(get(event, "usage"))
            elif kind == "message_start":
                message = get(event, "message")
                model = get(message, "model")
                if isinstance(model, str) and model:
                    self._model = model
                self.apply(get(message, "usage"))
        except Exception:  # a broken third-party object is not a usage event
            return

    def apply(self, usage: Any) -> None:
        """Overwrite every field `usage` carries (Anthropic usage counts are cumulative)."""
        if usage is None:
            return
        value = reported(get(usage, "input_tokens"))
        if value is not None:
            self._input, self._seen = value, True
        value = reported(get(usage, "output_tokens"))
        if value is not None:
            self._output, self._seen = value, True
        value = reported(get(usage, "cache_read_input_tokens"))
        if value is not None:
            self._cache_read, self._seen = value, True
        value = reported(get(usage, "cache_creation_input_tokens"))
        if value is not None:
            self._cache_write, self._seen = value, True
        split = get(usage, "cache_creation")
        if split is not None:
            value = reported(get(split, "ephemeral_5m_input_tokens"))
            if value is not None:
                self._ttl_5m = value
            value = reported(get(split, "ephemeral_1h_input_tokens"))
            if value is not None:
                self._ttl_1h = value
        value = reported(get(usage, "output_tokens_details", "thinking_tokens"))
        if value is not None:
            self._thinking = value
        value = reported(get(usage, "server_tool_use", "web_search_requests"))
        if value is not None:
            self._web_searches = value
        iterations = get(usage, "iterations")
        if isinstance(iterations, list | tuple) and iterations:
            self._iterations, self._seen = iterations, True

    def set_model(self, model: Any) -> None:
        """The response's model: iterations naming a different model are billed at its rates."""
        if isinstance(model, str) and model:
            self._model = model

    def result(self) -> TokenUsage | None:
        if not self._seen:
            return None
        top = _Counts(
            input=non_negative("usage.input_tokens", self._input),
            cache_read=non_negative("usage.cache_read_input_tokens", self._cache_read),
            cache_write=non_negative("usage.cache_creation_input_tokens", self._cache_write),
            ttl_5m=non_negative("usage.cache_creation.ephemeral_5m_input_tokens", self._ttl_5m),
            ttl_1h=non_negative("usage.cache_creation.ephemeral_1h_input_tokens", self._ttl_1h),
            output=non_negative("usage.output_tokens", self._output),
        )
        thinking = non_negative("usage.output_tokens_details.thinking_tokens", self._thinking)
        web_searches = non_negative("usage.server_tool_use.web_search_requests", self._web_searches)
        main, others = top, None
        if self._iterations is not None:
            summed, others = _split_iterations(self._iterations, self._model)
            if summed is not None:
                main = summed  # the top-level fields cover only the last iteration (compaction)
        usage = main.usage(path="usage", reasoning=thinking, web_searches=web_searches, other_models=others)
        if usage.is_empty and not usage.other_models:
            return None
        return usage


class _Counts:
    """Raw Anthropic counts of one usage block or one iteration (input EXCLUDES the cache)."""

    __slots__ = ("cache_read", "cache_write", "input", "output", "ttl_1h", "ttl_5m")

    def __init__(
        self,
        *,
        input: int | None = None,
        cache_read: int | None = None,
        cache_write: int | None = None,
        ttl_5m: int | None = None,
        ttl_1h: int | None = None,
        output: int | None = None,
    ) -> None:
        self.input = input
        self.cache_read = cache_read
        self.cache_write = cache_write
        self.ttl_5m = ttl_5m
        self.ttl_1h = ttl_1h
        self.output = output

    def __add__(self, other: _Counts) -> _Counts:
        return _Counts(
            input=_add(self.input, other.input),
            cache_read=_add(self.cache_read, other.cache_read),
            cache_write=_add(self.cache_write, other.cache_write),
            ttl_5m=_add(self.ttl_5m, other.ttl_5m),
            ttl_1h=_add(self.ttl_1h, other.ttl_1h),
            output=_add(self.output, other.output),
        )

    def usage(
        self,
        *,
        path: str,
        reasoning: int | None = None,
        web_searches: int | None = None,
        other_models: Mapping[str, TokenUsage] | None = None,
    ) -> TokenUsage:
        cache_read, cache_write = self.cache_read, self.cache_write
        if self.input is None:
            # The cache counters are parts of a total nobody reported; they cannot be priced.
            total_input = None
            cache_read = cache_write = None
        else:
            total_input = self.input + (cache_read or 0) + (cache_write or 0)
        details: dict[str, int] = {}
        split = (self.ttl_5m or 0) + (self.ttl_1h or 0)
        if split and cache_write is not None:
            if split > cache_write:
                raise ValidationError(
                    f"{path}.cache_creation",
                    f"5m + 1h cache writes ({split}) exceed cache_creation_input_tokens {cache_write}",
                )
            if self.ttl_5m:
                details["cache_write_5m_tokens"] = self.ttl_5m
            if self.ttl_1h:
                details["cache_write_1h_tokens"] = self.ttl_1h
        if web_searches:
            details["web_searches"] = web_searches
        if reasoning is not None and self.output is None:
            reasoning = None
        try:
            return TokenUsage.build(
                input_tokens=total_input,
                output_tokens=self.output,
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
                reasoning_tokens=reasoning,
                details=details or None,
                other_models=other_models or None,
            )
        except ValidationError as exc:
            raise exc.prefixed(path) from None


def _add(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _iteration_counts(item: Any, path: str) -> _Counts:
    split = get(item, "cache_creation")
    return _Counts(
        input=non_negative(f"{path}.input_tokens", reported(get(item, "input_tokens"))),
        cache_read=non_negative(f"{path}.cache_read_input_tokens", reported(get(item, "cache_read_input_tokens"))),
        cache_write=non_negative(
            f"{path}.cache_creation_input_tokens", reported(get(item, "cache_creation_input_tokens"))
        ),
        ttl_5m=non_negative(
            f"{path}.cache_creation.ephemeral_5m_input_tokens", reported(get(split, "ephemeral_5m_input_tokens"))
        ),
        ttl_1h=non_negative(
            f"{path}.cache_creation.ephemeral_1h_input_tokens", reported(get(split, "ephemeral_1h_input_tokens"))
        ),
        output=non_negative(f"{path}.output_tokens", reported(get(item, "output_tokens"))),
    )


def _same_model(named: str, model: str | None) -> bool:
    """Whether an iteration's model is the response's (an alias and its dated snapshot match)."""
    return model is None or named == model or named.startswith(model) or model.startswith(named)


def _split_iterations(iterations: Any, model: str | None) -> tuple[_Counts | None, dict[str, TokenUsage] | None]:
    """(sum over this model's iterations or None if it has none, usage per other model)."""
    main: _Counts | None = None
    others: dict[str, _Counts] = {}
    for index, item in enumerate(iterations):
        if item is None:
            continue
        path = f"usage.iterations[{index}]"
        counts = _iteration_counts(item, path)
        kind = get(item, "type")
        named = get(item, "model")
        named = named if isinstance(named, str) and named else None
        if named is not None and (
            (isinstance(kind, str) and kind in _OTHER_MODEL_ITERATIONS) or not _same_model(named, model)
        ):
            others[named] = others[named] + counts if named in others else counts
        else:
            # No model named (or this model): billed with the response. An advisor iteration
            # without a model cannot be priced apart, so it is counted rather than lost.
            main = counts if main is None else main + counts
    other_usage = {name: counts.usage(path=f"usage.iterations[{name}]") for name, counts in others.items()} or None
    return main, other_usage


# ---- entry point --------------------------------------------------------------------------
def extract(response: Any, api: str | None = None) -> TokenUsage | None:
    """Normalised usage of a Messages response, a stream's events, or a bare usage block."""
    try:
        return _extract(response)
    except ValidationError:
        raise  # reported counts break the accounting invariants: never price them silently
    except Exception:  # malformed input of any other kind means "no usable usage"
        return None


def _extract(response: Any) -> TokenUsage | None:
    if response is None or isinstance(response, str | bytes | int | float):
        return None
    state = MessageStreamState()
    if isinstance(response, list | tuple):
        for event in response:
            state.feed(event)
        return state.result()
    kind = get(response, "type")
    if kind in ("message_start", "message_delta"):
        state.feed(response)
        return state.result()
    usage = get(response, "usage")
    if usage is None:
        # The SDK's `messages.stream` helper: its accumulated message snapshot.
        snapshot = get(response, "current_message_snapshot")
        if snapshot is not None:
            usage, response = get(snapshot, "usage"), snapshot
        elif get(response, "input_tokens") is not None or get(response, "output_tokens") is not None:
            usage = response  # a bare usage block (`message.usage`)
    if usage is None:
        return None
    state.set_model(get(response, "model"))
    state.apply(usage)
    return state.result()


__all__ = ["MESSAGES", "MessageStreamState", "extract"]
