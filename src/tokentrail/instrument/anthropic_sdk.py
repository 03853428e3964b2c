"""The Anthropic SDK plug-in (`anthropic`, which talks through httpx2).

Recorded: `messages.create` (also `stream=True`, `.with_raw_response`,
`.with_streaming_response`), `messages.parse`, and the `messages.stream()` helper, on
`messages` and `beta.messages`, sync and async — so on `Anthropic`, `AsyncAnthropic`,
`AnthropicBedrock` (provider `aws.bedrock`), `AnthropicVertex` (`gcp.vertex_ai`) and the
other clients built on them. The SDK's `_process_response` is hooked to see the HTTP response
(headers) and its retry count.

The `stream()` helper does not go through `create`: it returns a manager that sends the
request when it is entered. The helper is hooked so that the manager's request runs through
the engine's recording wrapper at that moment (with the helper's arguments as the call's
arguments); the raw event stream it returns is tracked, so `text_stream`,
`get_final_message()` and iterating the helper all feed the one record.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
from collections.abc import Callable
from typing import Any

from tokentrail.core import ModelOperation, RequestParameters
from tokentrail.instrument.anthropic_streams import MessagesStreamState
from tokentrail.instrument.engine import Call, Endpoint, Patch, Plugin, Switch, start_call, wrap_method
from tokentrail.instrument.openai_support import attempt_of, capture_http
from tokentrail.instrument.sdk_support import (
    copy_hook,
    record_error,
    record_headers,
    record_when_parsed,
    schema_of_type,
    set_response,
)
from tokentrail.instrument.streams import track_stream
from tokentrail.providers import anthropic as wire
from tokentrail.providers.anthropic_calls import (
    MessageFacts,
    error_facts,
    extra_parameters,
    message_facts,
    output_text,
    prompt_of,
    request_parameters,
    request_view,
    schema_of_request,
)
from tokentrail.tracking.guard import guard
from tokentrail.tracking.operation import jsonable
from tokentrail.tracking.runtime import current_settings

_MESSAGES = "anthropic.resources.messages.messages"
_BETA = "anthropic.resources.beta.messages.messages"
# (module, class, method) of every recorded method; `stream` is the helper
METHODS: tuple[tuple[str, str, str], ...] = tuple(
    (module, cls, method)
    for module in (_MESSAGES, _BETA)
    for cls in ("Messages", "AsyncMessages")
    for method in ("create", "parse", "stream")
)
RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"


def endpoint(method: str, options: dict[str, Any] | None = None) -> Endpoint:
    return Endpoint(
        f"anthropic.messages.{method}", ModelOperation.CHAT, wire.MESSAGES, {"method": method, **(options or {})}
    )


class _SDK:
    """The SDK classes the plug-in tells apart, resolved once when patching."""

    def __init__(self) -> None:
        streaming = importlib.import_module("anthropic._streaming")
        self.streams: Any = (streaming.Stream, streaming.AsyncStream)
        self.api_response: Any = importlib.import_module("anthropic._response").BaseAPIResponse
        self.base = importlib.import_module("anthropic._base_client")


class AnthropicPlugin(Plugin):
    name = "anthropic"

    def __init__(self) -> None:
        self._sdk: _SDK | None = None

    # ---- installation -----------------------------------------------------------------------
    def available(self) -> bool:
        return importlib.util.find_spec("anthropic") is not None

    def _load(self) -> _SDK:
        if self._sdk is None:
            self._sdk = _SDK()
        return self._sdk

    def patches(self) -> list[Patch]:
        sdk = self._load()
        out: list[Patch] = []
        for module_name, class_name, method in METHODS:
            try:
                owner = getattr(importlib.import_module(module_name), class_name)
            except (ImportError, AttributeError):
                continue  # not in this SDK version
            out.append(self._patch(owner, method, {}))
        for client_class in ("SyncAPIClient", "AsyncAPIClient"):
            owner = getattr(sdk.base, client_class, None)
            if owner is not None:
                out.append(Patch(owner, "_process_response", hook=capture_http))
        return out

    def client_patches(self, client: Any, **options: Any) -> list[Patch]:
        sdk = self._load()
        chosen = {k: v for k, v in options.items() if v is not None}
        out: list[Patch] = []
        beta = getattr(client, "beta", None)
        for resource in (getattr(client, "messages", None), getattr(beta, "messages", None)):
            if resource is None:
                continue
            for method in ("create", "parse", "stream"):
                if callable(getattr(resource, method, None)):
                    out.append(self._patch(resource, method, chosen))
        if isinstance(client, sdk.base.BaseClient):
            out.append(Patch(client, "_process_response", hook=capture_http))
            out.append(Patch(client, "copy", hook=copy_hook(self.name, chosen)))
            out.append(Patch(client, "with_options", hook=copy_hook(self.name, chosen)))
        return out

    def _patch(self, owner: Any, method: str, options: dict[str, Any]) -> Patch:
        if method == "stream":
            return Patch(owner, "stream", hook=self._stream_helper(endpoint("stream", {**options, "helper": True})))
        return Patch(owner, method, endpoint(method, options))

    def _stream_helper(self, ep: Endpoint) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Hook on `messages.stream(...)`: the manager it returns sends its request through a
        recording wrapper (called with the helper's arguments) when it is entered."""
        plugin = self
        switch = Switch()

        def hook(original: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(original)
            def stream(*args: Any, **kwargs: Any) -> Any:
                manager = original(*args, **kwargs)
                resource = args[0] if args and not inspect.ismethod(original) else getattr(original, "__self__", None)
                with guard("instrument.anthropic.stream"):
                    plugin._record_manager(manager, resource, kwargs, ep, switch)
                return manager

            return stream

        return hook

    def _record_manager(
        self, manager: Any, resource: Any, kwargs: dict[str, Any], ep: Endpoint, switch: Switch
    ) -> None:
        names = [key for key in vars(manager) if key.endswith("__api_request")]
        if len(names) != 1:
            return  # another SDK layout: the helper goes unrecorded rather than wrongly
        key = names[0]
        request = getattr(manager, key)
        if inspect.isawaitable(request):  # async manager: a coroutine made by stream(), awaited on entry

            async def send_async(**_: Any) -> Any:
                return await request

            setattr(manager, key, wrap_method(send_async, ep, self, switch, bound_to=resource)(**kwargs))
        elif callable(request):

            def send(**_: Any) -> Any:
                return request()

            setattr(manager, key, functools.partial(wrap_method(send, ep, self, switch, bound_to=resource), **kwargs))

    # ---- request ----------------------------------------------------------------------------
    def begin(self, endpoint: Endpoint, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call | None:
        client = getattr(instance, "_client", None)
        options = endpoint.options
        provider = options.get("provider") or getattr(client, "_gen_ai_provider_name", None) or "anthropic"
        model = kwargs.get("model")
        call = start_call(
            self,
            endpoint,
            instance,
            kwargs,
            provider=provider,
            model=model if isinstance(model, str) and model else None,
        )
        tracker = call.tracker
        body = request_view(kwargs)
        params = request_parameters(body)
        if options.get("helper"):
            params["stream"] = True
        if params:
            tracker.request_params = RequestParameters(**params)
        tracker.streaming = params.get("stream") is True
        specific: dict[str, Any] = {}
        base_url = getattr(client, "base_url", None)
        host = getattr(base_url, "host", None)
        if host:
            specific["server_address"] = host
            port = getattr(base_url, "port", None)
            specific["server_port"] = (
                port if isinstance(port, int) else (443 if getattr(base_url, "scheme", "") == "https" else 80)
            )
        extra = extra_parameters(body)
        if extra:
            specific["request_params"] = extra
        if specific:
            tracker.provider_specific = specific
        schema = schema_of_request(body)
        if schema is None and kwargs.get("output_format") is not None:
            schema = schema_of_type(kwargs["output_format"])
        if schema is not None:
            tracker.set_response_schema(schema)
        return call

    # ---- response ---------------------------------------------------------------------------
    def end(self, call: Call, result: Any) -> Any:
        sdk = self._load()
        if isinstance(result, sdk.streams):
            return self._stream(call, result)
        if isinstance(result, sdk.api_response):  # .with_raw_response / .with_streaming_response
            return self._raw(call, result)
        self.record(call, result)
        return result

    def record(self, call: Call, message: Any) -> None:
        """A complete (non-streamed) message: usage, metadata, headers, content."""
        usage = wire.extract(message)
        if usage is not None:
            call.tracker.usage = usage
        self.record_facts(call, message_facts(message))
        if call.http_response is None:
            request_id = getattr(message, "_request_id", None)
            if isinstance(request_id, str) and request_id:
                call.tracker.response["request_id"] = request_id
        self.record_http(call)
        if current_settings().capture_content:
            self.record_content(call, output_text(message))

    def record_facts(self, call: Call, facts: MessageFacts) -> None:
        tracker = call.tracker
        if facts.model is not None:
            tracker.response_model = facts.model
        set_response(
            tracker, response_id=facts.response_id, finish_reason=facts.finish_reason, service_tier=facts.service_tier
        )
        if facts.inference_geo is not None:
            tracker.set_provider_specific(inference_geo=facts.inference_geo)

    def record_http(self, call: Call) -> None:
        """Rate limits, request id and attempt from the HTTP response the hook captured."""
        tracker = call.tracker
        http = call.http_response
        if http is not None:
            record_headers(tracker, getattr(http, "headers", None))
            if call.attempt is None:
                call.attempt = attempt_of(getattr(http, "request", None))
        if call.attempt is not None:
            tracker.attempt = call.attempt

    def record_content(self, call: Call, result: Any) -> None:
        if current_settings().capture_content:
            call.tracker.set_content(messages=jsonable(prompt_of(call.kwargs)), result=jsonable(result))

    def _stream(self, call: Call, stream: Any) -> Any:
        if call.http_response is None:
            call.http_response = getattr(stream, "response", None)
        state = MessagesStreamState(self, collect=current_settings().capture_content)
        return track_stream(call, stream, state)

    def _raw(self, call: Call, raw: Any) -> Any:
        """An `APIResponse`: headers now; the body when the caller parses it."""
        if call.attempt is None and isinstance(getattr(raw, "retries_taken", None), int):
            call.attempt = raw.retries_taken + 1
        http = getattr(raw, "http_response", None)
        if call.http_response is None:
            call.http_response = http
        eager = not inspect.iscoroutinefunction(raw.parse)
        if eager and raw._is_sse_stream:
            stream = raw.parse()  # makes the Stream object; reads nothing
            raw._parsed_by_type[raw._cast_to] = self._stream(call, stream)
            return raw
        if eager and http is not None and getattr(http, "_content", None) is not None:  # body already read
            self.record(call, http.json())
            return raw
        self._defer(call, raw)
        return raw

    def _defer(self, call: Call, raw: Any) -> None:
        record_when_parsed(
            call,
            raw,
            streams=self._load().streams,
            track=self._stream,
            record=self.record,
            record_unparsed=self.record_http,
        )

    def fail(self, call: Call, exc: BaseException) -> None:
        tracker = call.tracker
        response = getattr(exc, "response", None)
        facts = error_facts(getattr(exc, "body", None))
        if response is not None and hasattr(response, "headers"):
            call.http_response = response
            self.record_http(call)
        else:
            attempt = attempt_of(getattr(exc, "request", None))
            if attempt is not None:
                tracker.attempt = attempt
        if facts.request_id is not None and "request_id" not in tracker.response:
            tracker.response["request_id"] = facts.request_id
        status = getattr(exc, "status_code", None)
        record_error(tracker, exc, status=status if isinstance(status, int) else None, kind=facts.error_type)


__all__ = ["METHODS", "AnthropicPlugin", "endpoint"]
