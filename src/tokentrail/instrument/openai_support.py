"""The OpenAI plug-in's tables and helpers: which SDK methods are recorded, the SDK classes it
tells apart, and the transport hooks (`_process_response`, client copies)."""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from tokentrail.core import ModelOperation
from tokentrail.instrument.engine import Endpoint, current_call
from tokentrail.providers import openai as wire
from tokentrail.providers.openai_calls import schema_of_format

# (module, class, attribute, api, async) of every recorded method
METHODS: tuple[tuple[str, str, str, str], ...] = (
    ("openai.resources.chat.completions", "Completions", "create", wire.CHAT),
    ("openai.resources.chat.completions", "Completions", "parse", wire.CHAT),
    ("openai.resources.chat.completions", "AsyncCompletions", "create", wire.CHAT),
    ("openai.resources.chat.completions", "AsyncCompletions", "parse", wire.CHAT),
    ("openai.resources.responses", "Responses", "create", wire.RESPONSES),
    ("openai.resources.responses", "Responses", "parse", wire.RESPONSES),
    ("openai.resources.responses", "AsyncResponses", "create", wire.RESPONSES),
    ("openai.resources.responses", "AsyncResponses", "parse", wire.RESPONSES),
    ("openai.resources.embeddings", "Embeddings", "create", wire.EMBEDDINGS),
    ("openai.resources.embeddings", "AsyncEmbeddings", "create", wire.EMBEDDINGS),
    ("openai.resources.completions", "Completions", "create", wire.COMPLETIONS),
    ("openai.resources.completions", "AsyncCompletions", "create", wire.COMPLETIONS),
)
# client attribute path of each resource, for wrap_openai(client)
CLIENT_RESOURCES: dict[str, tuple[str, ...]] = {
    wire.CHAT: ("chat", "completions"),
    wire.RESPONSES: ("responses",),
    wire.EMBEDDINGS: ("embeddings",),
    wire.COMPLETIONS: ("completions",),
}
OPERATIONS: dict[str, ModelOperation] = {
    wire.CHAT: ModelOperation.CHAT,
    wire.RESPONSES: ModelOperation.CHAT,
    wire.EMBEDDINGS: ModelOperation.EMBEDDINGS,
    wire.COMPLETIONS: ModelOperation.TEXT_COMPLETION,
}
INPUT_ARGUMENT = {wire.CHAT: "messages", wire.COMPLETIONS: "prompt", wire.RESPONSES: "input", wire.EMBEDDINGS: "input"}
CACHE_LIMIT = 256


class CallData:
    """The plug-in's per-call notes."""

    __slots__ = ("collect", "estimate", "hide_usage", "model", "stream")

    def __init__(self, model: str | None, stream: bool) -> None:
        self.model = model
        self.stream = stream
        self.hide_usage = False  # tokentrail added include_usage: the usage chunk is not the caller's
        self.estimate = False  # no usage will come: count it locally
        self.collect = False  # keep the streamed text (estimation or content capture)


class SDK:
    """The SDK classes the plug-in tells apart, resolved once when patching."""

    def __init__(self) -> None:
        streaming = importlib.import_module("openai._streaming")
        self.streams: Any = (streaming.Stream, streaming.AsyncStream)
        legacy = importlib.import_module("openai._legacy_response")
        self.legacy: Any = legacy.LegacyAPIResponse
        response = importlib.import_module("openai._response")
        self.api_responses: Any = (response.APIResponse, response.AsyncAPIResponse)
        try:
            self.azure: tuple[type, ...] = (importlib.import_module("openai.lib.azure").BaseAzureClient,)
        except (ImportError, AttributeError):
            self.azure = ()
        self.base = importlib.import_module("openai._base_client")


def schema_of_type(kind: type, responses: bool) -> dict[str, Any] | None:
    """The JSON schema the SDK sends for a pydantic `response_format` / `text_format` type."""
    try:
        if responses:
            helper = importlib.import_module("openai.lib._parsing._responses").type_to_text_format_param
            return schema_of_format(helper(kind))
        helper = importlib.import_module("openai.lib._parsing._completions").type_to_response_format_param
        return schema_of_format(helper(kind))
    except (ImportError, AttributeError):
        schema = getattr(kind, "model_json_schema", None)
        return schema() if callable(schema) else None


def fields_of(obj: Any) -> dict[str, Any] | None:
    """A pydantic model's field values (extras included), or None for anything else."""
    if obj is None or not hasattr(obj.__class__, "__pydantic_fields__"):
        return None
    fields = obj.__dict__
    extra = getattr(obj, "__pydantic_extra__", None)
    return {**fields, **extra} if extra else fields


def attempt_of(request: Any) -> int | None:
    """1 + the SDK's `x-stainless-retry-count` request header."""
    headers = getattr(request, "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get("x-stainless-retry-count")
        return int(value) + 1 if value is not None else None
    except (TypeError, ValueError):
        return None


def endpoint(api: str, method: str, options: Mapping[str, Any] | None = None) -> Endpoint:
    return Endpoint(f"openai.{api}.{method}", OPERATIONS[api], api, {"method": method, **(options or {})})


def capture_http(original: Callable[..., Any]) -> Callable[..., Any]:
    """Hook on the SDK's `_process_response`: the final HTTP response and the retries taken
    go to the call in flight (none in flight: nothing happens)."""

    def note(kwargs: Mapping[str, Any]) -> None:
        call = current_call()
        if call is not None:
            response = kwargs.get("response")
            if response is not None:
                call.http_response = response
            retries = kwargs.get("retries_taken")
            if isinstance(retries, int):
                call.attempt = retries + 1

    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def aprocess(*args: Any, **kwargs: Any) -> Any:
            note(kwargs)
            return await original(*args, **kwargs)

        return aprocess

    @functools.wraps(original)
    def process(*args: Any, **kwargs: Any) -> Any:
        note(kwargs)
        return original(*args, **kwargs)

    return process


def copy_wrapper(plugin: Any, options: Mapping[str, Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`client.copy()` / `client.with_options()` of a wrapped client give wrapped clients."""

    def hook(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def copy(*args: Any, **kwargs: Any) -> Any:
            new = original(*args, **kwargs)
            wrap = WRAP_CLIENT[0]
            if wrap is not None:
                wrap(new, dict(options))
            return new

        return copy

    return hook


# set by the package once the registry exists (the plug-in module must not import it: cycle)
WRAP_CLIENT: list[Callable[[Any, dict[str, Any]], Any] | None] = [None]

__all__ = [
    "CACHE_LIMIT",
    "CLIENT_RESOURCES",
    "INPUT_ARGUMENT",
    "METHODS",
    "OPERATIONS",
    "SDK",
    "WRAP_CLIENT",
    "CallData",
    "attempt_of",
    "capture_http",
    "copy_wrapper",
    "endpoint",
    "fields_of",
    "schema_of_type",
]
