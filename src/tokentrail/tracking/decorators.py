"""`@llm_instrumented`: track every call of a function that calls a model (sync or async).

With `tokens_from_response=True` the usage is read from the function's return value through
the registered usage extractor. `tracking` may not import `providers` (architecture rule), so
the facade registers `providers.extract_usage` with `set_usage_extractor` at import time.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from tokentrail.core import ModelOperation, TokenUsage
from tokentrail.tracking.guard import guard
from tokentrail.tracking.llm import LLMTracker

P = ParamSpec("P")
R = TypeVar("R")

UsageExtractor = Callable[[Any, str, "str | None"], "TokenUsage | None"]

_extractor: UsageExtractor | None = None


def set_usage_extractor(extractor: UsageExtractor | None) -> UsageExtractor | None:
    """Install the function that reads usage from a response: `(response, provider, api) ->
    TokenUsage | None`. Returns the previous one. `tokentrail` installs `extract_usage`."""
    global _extractor
    previous = _extractor
    _extractor = extractor
    return previous


def get_usage_extractor() -> UsageExtractor | None:
    return _extractor


def _field(response: Any, name: str) -> Any:
    if isinstance(response, Mapping):
        return response.get(name)
    return getattr(response, name, None)


def read_response(tracker: LLMTracker, response: Any, *, api: str | None = None) -> None:
    """Fill a tracker from a provider response: usage (through the extractor), model, id."""
    with guard("llm_instrumented.read_response"):
        extractor = _extractor
        if extractor is not None:
            usage = extractor(response, tracker.provider, api)
            if usage is not None:
                tracker.set_usage(usage)
        model = _field(response, "model")
        if isinstance(model, str) and model:
            tracker.set_response_model(model)
        response_id = _field(response, "id")
        if isinstance(response_id, str) and response_id:
            tracker.set_request_id(response_id)


def llm_instrumented(
    provider: str,
    model: str | None = None,
    operation: ModelOperation | str = ModelOperation.CHAT,
    tokens_from_response: bool = True,
    api: str | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function (sync or async) that calls a model; each call becomes a record.

    The model is `model`, else the call's `model=` keyword argument. The function's result is
    returned untouched; an exception is recorded as the call's error and re-raised untouched.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        def start(kwargs: Mapping[str, Any]) -> LLMTracker:
            requested = model
            if requested is None:
                candidate = kwargs.get("model")
                requested = candidate if isinstance(candidate, str) else None
            return LLMTracker(provider, requested, operation)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                async with start(kwargs) as tracker:
                    result = await fn(*args, **kwargs)  # type: ignore[misc]
                    if tokens_from_response:
                        read_response(tracker, result, api=api)
                    return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with start(kwargs) as tracker:
                result = fn(*args, **kwargs)
                if tokens_from_response:
                    read_response(tracker, result, api=api)
                return result

        return wrapper

    return decorate


__all__ = ["get_usage_extractor", "llm_instrumented", "read_response", "set_usage_extractor"]
