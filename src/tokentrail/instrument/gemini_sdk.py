"""The google-genai plug-in (`from google import genai`).

Recorded: `models.generate_content`, `generate_content_stream` and `embed_content`, on
`client.models` and `client.aio.models`. The provider is `gcp.vertex_ai` for a client in
Vertex mode, else `gcp.gemini`.

One record per HTTP request: the SDK's public methods may send several (automatic function
calling, automatic continuation), each billed, so the plug-in patches the per-request methods
they call (`_generate_content`, `_generate_content_stream`, `_embed_content`) and falls back
to the public ones on an SDK without them. `chats` go through the same methods. Retries are
counted by a hook on the API client's per-attempt `_request_once` (HttpRetryOptions).
Gemini sends no rate-limit or request-id headers; a 429's `retryDelay` becomes
`rate_limit_info.retry_after_ms`.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from tokentrail.core import ModelOperation, RateLimitInfo, RequestParameters
from tokentrail.instrument.engine import Call, Endpoint, Patch, Plugin, current_call, first_in_call, start_call
from tokentrail.instrument.gemini_streams import GeminiStreamState
from tokentrail.instrument.sdk_support import record_error, set_response
from tokentrail.instrument.streams import track_stream
from tokentrail.providers import gemini as wire
from tokentrail.providers.gemini_calls import (
    ResponseFacts,
    extra_parameters,
    model_name,
    output_text,
    request_parameters,
    response_facts,
    retry_delay_ms,
    schema_of_config,
)
from tokentrail.tracking.operation import jsonable
from tokentrail.tracking.runtime import current_settings

_MODELS = "google.genai.models"
# (private per-request method, public fallback, api)
METHODS: tuple[tuple[str, str, str], ...] = (
    ("_generate_content", "generate_content", wire.GENERATE),
    ("_generate_content_stream", "generate_content_stream", wire.STREAM),
    ("_embed_content", "embed_content", wire.EMBED),
)
_DEFAULT_PORTS = {"https": 443, "http": 80}


def endpoint(api: str, options: dict[str, Any] | None = None) -> Endpoint:
    operation = ModelOperation.EMBEDDINGS if api == wire.EMBED else ModelOperation.GENERATE_CONTENT
    return Endpoint(f"google.genai.models.{api}", operation, api, dict(options or {}))


def count_attempt(original: Callable[..., Any]) -> Callable[..., Any]:
    """Hook on the API client's `_request_once` / `_async_request_once` (one call per attempt,
    retries included): counts the attempts of the call in flight."""

    def note() -> None:
        call = current_call()
        if call is not None and call.plugin.name == GeminiPlugin.name:
            call.attempt = (call.attempt or 0) + 1

    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def arequest(*args: Any, **kwargs: Any) -> Any:
            note()
            return await original(*args, **kwargs)

        return arequest

    @functools.wraps(original)
    def request(*args: Any, **kwargs: Any) -> Any:
        note()
        return original(*args, **kwargs)

    return request


class GeminiPlugin(Plugin):
    name = "gemini"  # also "google", "google-genai" (registry.ALIASES)

    def __init__(self) -> None:
        self._servers: dict[str, tuple[str | None, int | None]] = {}

    def available(self) -> bool:
        try:
            return importlib.util.find_spec("google.genai") is not None
        except ModuleNotFoundError:  # no `google` namespace at all
            return False

    def patches(self) -> list[Patch]:
        models = importlib.import_module(_MODELS)
        out: list[Patch] = []
        for class_name in ("Models", "AsyncModels"):
            owner = getattr(models, class_name, None)
            if owner is None:
                continue
            for private, public, api in METHODS:
                attr = private if hasattr(owner, private) else public
                out.append(Patch(owner, attr, endpoint(api)))
        base = getattr(importlib.import_module("google.genai._api_client"), "BaseApiClient", None)
        for attr in ("_request_once", "_async_request_once"):
            if base is not None and hasattr(base, attr):
                out.append(Patch(base, attr, hook=count_attempt))
        return out

    def client_patches(self, client: Any, **options: Any) -> list[Patch]:
        chosen = {k: v for k, v in options.items() if v is not None}
        out: list[Patch] = []
        aio = getattr(client, "aio", None)
        for models in (getattr(client, "models", None), getattr(aio, "models", None)):
            if models is None:
                continue
            for private, public, api in METHODS:
                attr = private if hasattr(models, private) else public
                out.append(Patch(models, attr, endpoint(api, chosen)))
        api_client = getattr(client, "_api_client", None)
        for attr in ("_request_once", "_async_request_once"):
            if api_client is not None and hasattr(api_client, attr):
                out.append(Patch(api_client, attr, hook=count_attempt))
        return out

    # ---- request ----------------------------------------------------------------------------
    def begin(self, endpoint: Endpoint, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call | None:
        api_client = getattr(instance, "_api_client", None)
        vertex = bool(getattr(api_client, "vertexai", False))
        provider = endpoint.options.get("provider") or ("gcp.vertex_ai" if vertex else "gcp.gemini")
        call = start_call(self, endpoint, instance, kwargs, provider=provider, model=model_name(kwargs.get("model")))
        tracker = call.tracker
        config = kwargs.get("config")
        params = request_parameters(config)
        if endpoint.api == wire.STREAM:
            params["stream"] = True
        if params:
            tracker.request_params = RequestParameters(**params)
        if endpoint.api != wire.EMBED:
            tracker.streaming = endpoint.api == wire.STREAM
        specific: dict[str, Any] = {}
        address, port = self._server(api_client)
        if address is not None:
            specific["server_address"] = address
            if port is not None:
                specific["server_port"] = port
        extra = extra_parameters(config)
        if extra:
            specific["request_params"] = extra
        if specific:
            tracker.provider_specific = specific
        schema = schema_of_config(config)
        if schema is not None:
            tracker.set_response_schema(schema)
        return call

    def _server(self, api_client: Any) -> tuple[str | None, int | None]:
        base_url = getattr(getattr(api_client, "_http_options", None), "base_url", None)
        if not isinstance(base_url, str) or not base_url:
            return None, None
        found = self._servers.get(base_url)
        if found is None:
            parts = urlsplit(base_url)
            found = (parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme))
            if len(self._servers) >= 64:
                self._servers.clear()
            self._servers[base_url] = found
        return found

    # ---- response ---------------------------------------------------------------------------
    def end(self, call: Call, result: Any) -> Any:
        if inspect.isgenerator(result) or inspect.isasyncgen(result):
            state = GeminiStreamState(self, collect=current_settings().capture_content)
            if inspect.isgenerator(result):  # the sync stream sends its request on the first next()
                result = first_in_call(call, result)
            return track_stream(call, result, state)
        self.record(call, result)
        return result

    def record(self, call: Call, response: Any) -> None:
        api = call.endpoint.api
        source = response
        if getattr(response, "usage_metadata", None) is None and getattr(response, "candidates", None) is None:
            body = getattr(getattr(response, "sdk_http_response", None), "body", None)
            if isinstance(body, str) and body.startswith("{"):  # config.should_return_http_response
                try:
                    source = json.loads(body)
                except ValueError:
                    source = response
        usage = wire.extract(source, api)
        if usage is not None:
            call.tracker.usage = usage
        if api != wire.EMBED:
            self.record_facts(call, response_facts(source))
        self.record_attempt(call)
        if current_settings().capture_content and api != wire.EMBED:
            self.record_content(call, output_text(source))

    def record_facts(self, call: Call, facts: ResponseFacts) -> None:
        tracker = call.tracker
        if facts.model_version is not None:
            tracker.response_model = model_name(facts.model_version)
        set_response(
            tracker,
            response_id=facts.response_id,
            model_version=facts.model_version,
            finish_reason=facts.finish_reason,
        )
        if facts.block_reason is not None:
            tracker.set_provider_specific(block_reason=facts.block_reason)
        if facts.traffic_type is not None:
            tracker.set_provider_specific(traffic_type=facts.traffic_type)

    def record_attempt(self, call: Call) -> None:
        if call.attempt is not None:
            call.tracker.attempt = call.attempt

    def record_content(self, call: Call, result: Any) -> None:
        if not current_settings().capture_content:
            return
        kwargs = call.kwargs
        prompt = kwargs.get("contents")
        if prompt is None:
            prompt = kwargs.get("content") or kwargs.get("batch_contents")
        system = getattr(kwargs.get("config"), "system_instruction", None)
        if isinstance(kwargs.get("config"), dict):
            system = kwargs["config"].get("system_instruction")
        messages = {"system_instruction": system, "contents": prompt} if system is not None else prompt
        call.tracker.set_content(messages=jsonable(messages), result=jsonable(result))

    def fail(self, call: Call, exc: BaseException) -> None:
        tracker = call.tracker
        code = getattr(exc, "code", None)
        status = code if isinstance(code, int) and not isinstance(code, bool) else None
        kind = getattr(exc, "status", None)
        record_error(tracker, exc, status=status, kind=kind if isinstance(kind, str) else None)
        delay = retry_delay_ms(getattr(exc, "details", None))
        if delay is not None:
            tracker.rate_limits = RateLimitInfo(retry_after_ms=delay)
        self.record_attempt(call)


__all__ = ["METHODS", "GeminiPlugin", "count_attempt", "endpoint"]
