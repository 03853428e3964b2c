"""The OpenAI SDK plug-in (`openai` >= 1.40, which talks through httpx or httpx2).

Recorded: `chat.completions.create` / `.parse`, `responses.create` / `.parse`,
`embeddings.create` and `completions.create`, sync and async, on `OpenAI`, `AsyncOpenAI`,
`AzureOpenAI` and `AsyncAzureOpenAI` (and so on every OpenAI-compatible service reached through
the SDK; the provider is named from the base URL). `.with_raw_response` and the `.stream()`
helpers go through `create`, so they are recorded once too. The SDK's `_process_response`
is hooked to see the HTTP response (headers) and its retry count.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from typing import Any

from tokentrail.core import RequestParameters, TokenUsage
from tokentrail.instrument.engine import Call, Endpoint, Patch, Plugin, start_call
from tokentrail.instrument.openai_streams import ResponsesStreamState, chat_stream_state
from tokentrail.instrument.openai_support import (
    CACHE_LIMIT,
    CLIENT_RESOURCES,
    INPUT_ARGUMENT,
    METHODS,
    SDK,
    CallData,
    attempt_of,
    capture_http,
    copy_wrapper,
    endpoint,
    fields_of,
    schema_of_type,
)
from tokentrail.instrument.openai_usage import usage_of
from tokentrail.instrument.sdk_support import record_when_parsed
from tokentrail.instrument.streams import track_stream
from tokentrail.providers import openai as wire
from tokentrail.providers.openai_calls import (
    ResponseFacts,
    Service,
    describe_endpoint,
    extra_parameters,
    include_usage_requested,
    output_text,
    request_parameters,
    response_facts,
    schema_of_format,
    with_stream_usage,
)
from tokentrail.providers.ratelimits import read_headers
from tokentrail.tracking.clock import get_clock
from tokentrail.tracking.estimate import estimate_usage
from tokentrail.tracking.operation import jsonable
from tokentrail.tracking.runtime import current_settings


class OpenAIPlugin(Plugin):
    name = "openai"

    def __init__(self) -> None:
        self.inject_stream_usage: bool | None = None  # None: Settings.inject_stream_usage decides
        self.compatible_provider: str | None = None  # None: Settings / TOKENTRAIL_OPENAI_COMPATIBLE_PROVIDER
        self._sdk: SDK | None = None
        self._services: dict[int, tuple[Any, bool, str | None, Service]] = {}
        self._schemas: dict[tuple[type, bool], dict[str, Any] | None] = {}

    # ---- installation -----------------------------------------------------------------------
    def available(self) -> bool:
        return importlib.util.find_spec("openai") is not None

    def configure(
        self, inject_stream_usage: bool | None = None, openai_compatible_provider: str | None = None, **_: Any
    ) -> None:
        if inject_stream_usage is not None:
            self.inject_stream_usage = bool(inject_stream_usage)
        if openai_compatible_provider is not None:
            self.compatible_provider = str(openai_compatible_provider)
            self._services.clear()

    def _load(self) -> SDK:
        if self._sdk is None:
            self._sdk = SDK()
        return self._sdk

    def patches(self) -> list[Patch]:
        sdk = self._load()
        out: list[Patch] = []
        for module_name, class_name, attr, api in METHODS:
            try:
                owner = getattr(importlib.import_module(module_name), class_name)
            except (ImportError, AttributeError):
                continue  # not in this SDK version
            out.append(Patch(owner, attr, endpoint(api, attr)))
        for client_class in ("SyncAPIClient", "AsyncAPIClient"):
            owner = getattr(sdk.base, client_class, None)
            if owner is not None:
                out.append(Patch(owner, "_process_response", hook=capture_http))
        return out

    def client_patches(self, client: Any, **options: Any) -> list[Patch]:
        sdk = self._load()
        chosen = {k: v for k, v in options.items() if v is not None}
        out: list[Patch] = []
        for api, path in CLIENT_RESOURCES.items():
            resource: Any = client
            for step in path:
                resource = getattr(resource, step, None)
            if resource is None:
                continue
            for attr in ("create", "parse"):
                if callable(getattr(resource, attr, None)):
                    out.append(Patch(resource, attr, endpoint(api, attr, chosen)))
        if isinstance(client, sdk.base.BaseClient):
            out.append(Patch(client, "_process_response", hook=capture_http))
            wrap_copy = copy_wrapper(self, chosen)
            out.append(Patch(client, "copy", hook=wrap_copy))
            out.append(Patch(client, "with_options", hook=wrap_copy))
        return out

    # ---- request ----------------------------------------------------------------------------
    def _service(self, client: Any, options: Mapping[str, Any]) -> Service:
        base_url = getattr(client, "base_url", None)
        compatible = options.get("openai_compatible_provider") or self.compatible_provider
        if compatible is None:
            compatible = getattr(current_settings(), "openai_compatible_provider", None)
        key = id(base_url)
        cached = self._services.get(key)
        if cached is not None and cached[0] is base_url and cached[2] == compatible:
            return cached[3]
        sdk = self._load()
        service = describe_endpoint(
            getattr(base_url, "scheme", None),
            getattr(base_url, "host", None),
            getattr(base_url, "port", None),
            getattr(base_url, "path", None),
            azure_client=bool(sdk.azure) and isinstance(client, sdk.azure),
            compatible_provider=compatible,
        )
        if len(self._services) >= CACHE_LIMIT:
            self._services.clear()
        self._services[key] = (base_url, service.azure, compatible, service)
        return service

    def begin(self, endpoint: Endpoint, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call | None:
        options = endpoint.options
        api = endpoint.api
        service = self._service(getattr(instance, "_client", None), options)
        model = kwargs.get("model")
        model = model if isinstance(model, str) and model else None
        deployment = service.deployment or (model if service.azure else None)
        provider = options.get("provider") or service.provider
        call = start_call(self, endpoint, instance, kwargs, provider=provider, model=deployment or model)
        tracker = call.tracker
        params = request_parameters(kwargs)
        stream = params.get("stream") is True
        if params:
            tracker.request_params = RequestParameters(**params)
        if api != wire.EMBEDDINGS:
            tracker.streaming = stream
        specific: dict[str, Any] = {}
        if service.server_address is not None:
            specific["server_address"] = service.server_address
        if service.server_port is not None:
            specific["server_port"] = service.server_port
        if deployment is not None:
            specific["azure_deployment"] = deployment
            tracker.set_deployment(deployment)
        extra = extra_parameters(kwargs)
        if extra:
            specific["request_params"] = extra
        if specific:
            tracker.provider_specific = specific
        self._request_schema(tracker, api, endpoint.options.get("method") == "parse", kwargs)
        data = CallData(model, stream)
        if stream and api in (wire.CHAT, wire.COMPLETIONS) and not include_usage_requested(kwargs):
            inject = options.get("inject_stream_usage", self.inject_stream_usage)
            if inject is None:
                inject = current_settings().inject_stream_usage
            if inject:
                call.kwargs = with_stream_usage(kwargs)
                data.hide_usage = True
            else:
                data.estimate = True
        call.data = data
        return call

    def _request_schema(self, tracker: Any, api: str, parse: bool, kwargs: Mapping[str, Any]) -> None:
        if api == wire.CHAT:
            requested = kwargs.get("response_format")
        elif api == wire.RESPONSES:
            requested = kwargs.get("text_format") if parse else None
            text = kwargs.get("text")
            if requested is None and isinstance(text, Mapping):
                requested = text.get("format")
        else:
            return
        if requested is None:
            return
        if isinstance(requested, type):
            key = (requested, api == wire.RESPONSES)
            if key not in self._schemas:
                if len(self._schemas) >= CACHE_LIMIT:
                    self._schemas.clear()
                self._schemas[key] = schema_of_type(requested, api == wire.RESPONSES)
            schema = self._schemas[key]
        else:
            schema = schema_of_format(requested)
        if schema is not None:
            tracker.set_response_schema(schema)

    # ---- response ---------------------------------------------------------------------------
    def end(self, call: Call, result: Any) -> Any:
        sdk = self._load()
        if isinstance(result, sdk.streams):
            return self._stream(call, result)
        raw: Any = result
        if isinstance(raw, sdk.legacy):  # .with_raw_response
            if call.attempt is None and isinstance(getattr(raw, "retries_taken", None), int):
                call.attempt = raw.retries_taken + 1
            if call.http_response is None:
                call.http_response = raw.http_response
            if call.data.stream:
                stream = raw.parse()
                raw._parsed_by_type[raw._cast_to] = self._stream(call, stream)
            else:
                self.record(call, raw.http_response.json())
            return raw
        if isinstance(result, sdk.api_responses):  # .with_streaming_response: the body is not read yet
            self._defer(call, result)
            return result
        self.record(call, result)
        return result

    def record(self, call: Call, response: Any) -> None:
        """A complete (non-streamed) response: usage, metadata, headers, content."""
        api = call.endpoint.api
        fields = fields_of(response)
        usage = usage_of(fields.get("usage"), api) if fields is not None else wire.extract(response, api)
        if usage is not None:
            call.tracker.usage = usage
        self.record_facts(call, response_facts(fields if fields is not None else response, api))
        self.record_http(call, response)
        if current_settings().capture_content:
            self.record_content(call, output_text(response, api))

    def usage_of(self, usage: Any, api: str) -> TokenUsage | None:
        return usage_of(usage, api)

    def record_facts(self, call: Call, facts: ResponseFacts, finish_reason: str | None = None) -> None:
        tracker = call.tracker
        if facts.model is not None:
            tracker.response_model = facts.model
        response = tracker.response
        for key, value in (
            ("response_id", facts.response_id),
            ("finish_reason", finish_reason or facts.finish_reason),
            ("system_fingerprint", facts.system_fingerprint),
            ("service_tier", facts.service_tier),
        ):
            if value is not None:
                response[key] = value

    def record_http(self, call: Call, response: Any) -> None:
        """Rate limits, request id and attempt from the HTTP response the hook captured."""
        http = call.http_response
        tracker = call.tracker
        if call.attempt is not None:
            tracker.attempt = call.attempt
        if http is None:
            request_id = getattr(response, "_request_id", None)
            if isinstance(request_id, str) and request_id:
                tracker.response["request_id"] = request_id
            return
        facts = read_headers(getattr(http, "headers", None), get_clock().now())
        if facts.rate_limits is not None:
            tracker.rate_limits = facts.rate_limits
        if facts.request_id is not None:
            tracker.response["request_id"] = facts.request_id
        if facts.extra:
            tracker.set_provider_specific(rate_limits=facts.extra)
        if call.attempt is None:
            attempt = attempt_of(getattr(http, "request", None))
            if attempt is not None:
                tracker.attempt = attempt

    def record_content(self, call: Call, result: Any) -> None:
        if not current_settings().capture_content:
            return
        api = call.endpoint.api
        kwargs = call.kwargs
        prompt = kwargs.get(INPUT_ARGUMENT[api])
        if api == wire.RESPONSES and kwargs.get("instructions"):
            prompt = {"instructions": kwargs.get("instructions"), "input": prompt}
        if not isinstance(prompt, str | list | tuple | Mapping):
            prompt = None  # an iterator the SDK has consumed: never read it again
        call.tracker.set_content(messages=jsonable(prompt), result=jsonable(result))

    def estimate(self, call: Call, text: str) -> TokenUsage:
        """Usage counted locally from the request and the streamed text."""
        kwargs = call.kwargs
        model = call.data.model
        api = call.endpoint.api
        messages = kwargs.get("messages") if api == wire.CHAT else None
        if isinstance(messages, list | tuple) and all(isinstance(m, Mapping) for m in messages):
            return estimate_usage(messages=messages, output_text=text, model=model)
        prompt = kwargs.get("prompt" if api == wire.COMPLETIONS else "input")
        return estimate_usage(input_text=prompt if isinstance(prompt, str) else None, output_text=text, model=model)

    def _stream(self, call: Call, stream: Any) -> Any:
        data: CallData = call.data
        if call.http_response is None:
            call.http_response = getattr(stream, "response", None)
        collect = data.estimate or current_settings().capture_content
        data.collect = collect
        state: Any
        if call.endpoint.api == wire.RESPONSES:
            state = ResponsesStreamState(self, collect=collect)
        else:
            state = chat_stream_state(self, call.endpoint.api, hide_usage=data.hide_usage, collect=collect)
        return track_stream(call, stream, state)

    def _defer(self, call: Call, raw: Any) -> None:
        """`.with_streaming_response`: recorded when the caller parses the body."""
        if call.http_response is None:
            call.http_response = getattr(raw, "http_response", None)
        record_when_parsed(
            call,
            raw,
            streams=self._load().streams,
            track=self._stream,
            record=self.record,
            record_unparsed=lambda unparsed: self.record_http(unparsed, None),
        )

    def fail(self, call: Call, exc: BaseException) -> None:
        response = getattr(exc, "response", None)
        if response is not None and hasattr(response, "headers"):
            call.http_response = response
            self.record_http(call, None)
        else:
            attempt = attempt_of(getattr(exc, "request", None))
            if attempt is not None:
                call.tracker.attempt = attempt


__all__ = ["OpenAIPlugin"]
