"""Helpers the Anthropic, Gemini and Bedrock plug-ins share: response headers onto the record,
errors with their HTTP status, client copies of wrapped clients, schemas of pydantic types."""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from tokentrail.instrument.registry import REGISTRY
from tokentrail.providers.ratelimits import read_headers
from tokentrail.tracking.clock import get_clock
from tokentrail.tracking.guard import guard
from tokentrail.tracking.llm import LLMTracker
from tokentrail.tracking.operation import error_info


def record_headers(tracker: LLMTracker, headers: Any) -> None:
    """Rate limits (absolute reset times), `retry-after` and the request id of a response."""
    if headers is None:
        return
    facts = read_headers(headers, get_clock().now())
    if facts.rate_limits is not None:
        tracker.rate_limits = facts.rate_limits
    if facts.request_id is not None:
        tracker.response["request_id"] = facts.request_id
    if facts.extra:
        tracker.set_provider_specific(rate_limits=facts.extra)


def set_response(tracker: LLMTracker, **fields: str | None) -> None:
    """Response metadata fields that are known (None values are skipped)."""
    response = tracker.response
    for key, value in fields.items():
        if value is not None:
            response[key] = value


def record_error(tracker: LLMTracker, exc: BaseException, *, status: int | None, kind: str | None = None) -> None:
    """The SDK's exception as the call's error, with the HTTP status the SDK keeps under
    another name (`code`, a botocore error response) and, if given, the provider's error type
    in `provider_specific.error_type`."""
    info = error_info(exc)
    if status is not None and info.http_status is None and 100 <= status <= 599:
        info = replace(info, http_status=status)
    tracker.error = info
    if kind:
        tracker.set_provider_specific(error_type=kind)


def schema_of_type(kind: Any) -> dict[str, Any] | None:
    """The JSON schema of a pydantic model class (structured outputs given as a type)."""
    schema = getattr(kind, "model_json_schema", None)
    if not callable(schema):
        return None
    try:
        found = schema()
    except Exception:  # not a schema pydantic can make: the SDK will say so
        return None
    return found if isinstance(found, dict) else None


def copy_hook(name: str, options: Mapping[str, Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`client.copy()` / `client.with_options()` of a client wrapped by `wrap_<name>()` give
    wrapped clients (with the same options)."""

    def hook(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def copy(*args: Any, **kwargs: Any) -> Any:
            new = original(*args, **kwargs)
            with guard("instrument.copy"):
                REGISTRY.wrap_client(name, new, dict(options))
            return new

        return copy

    return hook


def model_name(value: Any) -> str | None:
    """A non-empty model string, else None."""
    return value if isinstance(value, str) and value else None


def record_when_parsed(
    call: Any,
    raw: Any,
    *,
    streams: type | tuple[type, ...],
    track: Callable[[Any, Any], Any],
    record: Callable[[Any, Any], None],
    record_unparsed: Callable[[Any], None],
) -> None:
    """A raw/streaming response (`with_raw_response`, `with_streaming_response`): record the
    call when the caller parses the body, or — if it never does — when the response object
    goes away, with what the headers told. A parsed stream is tracked instead; the SDK caches
    what `parse()` returns, so each stream gets one proxy."""
    call.deferred = True
    original = raw.parse
    proxies: dict[int, Any] = {}

    def settle(parsed: Any) -> Any:
        if isinstance(parsed, streams):
            proxy = proxies.get(id(parsed))
            if proxy is None:
                proxy = proxies[id(parsed)] = track(call, parsed)
            return proxy
        if not call.tracker.finished:
            with guard("instrument.parse"):
                record(call, parsed)
            call.tracker.finish()
        return parsed

    if inspect.iscoroutinefunction(original):

        async def aparse(*args: Any, **kwargs: Any) -> Any:
            return settle(await original(*args, **kwargs))

        raw.parse = aparse
    else:
        raw.parse = lambda *args, **kwargs: settle(original(*args, **kwargs))
    # `record_unparsed` must not refer to `raw`, or the finalizer would keep it alive
    weakref.finalize(raw, _finish_unparsed, call, record_unparsed)


def _finish_unparsed(call: Any, record_unparsed: Callable[[Any], None]) -> None:
    if not call.tracker.finished:
        with guard("instrument.unparsed"):
            record_unparsed(call)
        call.tracker.finish()


__all__ = [
    "copy_hook",
    "model_name",
    "record_error",
    "record_headers",
    "record_when_parsed",
    "schema_of_type",
    "set_response",
]
