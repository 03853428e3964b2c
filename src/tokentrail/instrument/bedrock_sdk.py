"""The boto3 / botocore plug-in for `bedrock-runtime`: `converse`, `converse_stream`,
`invoke_model` and `invoke_model_with_response_stream`.

boto3 makes client classes at run time, one per service and session, and every operation
method of every one of them calls `botocore.client.BaseClient._make_api_call(operation,
params)`. The plug-in wraps that one method (as the OpenTelemetry botocore instrumentation
does): it covers clients made before and after `instrument()`, from any `Session`, and gives
the engine exact timing, the result and the exception around the whole call, retries
included. Calls of other services and other bedrock-runtime operations pass straight through
after one attribute read and one dict look-up. (The event system — `before-call` /
`after-call` handlers — would need registering on every session's emitter as sessions are
made, and splits one call over several handlers with no place to time it or to see its
exception.)

Streams: the `EventStream` in `response["stream"]` (ConverseStream) or `response["body"]`
(InvokeModelWithResponseStream) is replaced in the response dict by a tracking proxy of the
same class; the call is recorded when it is exhausted, closed or left. InvokeModel's `body`
is a `StreamingBody` that belongs to the caller and is never read: usage comes from the
`x-amzn-bedrock-*-token-count` headers.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any
from urllib.parse import urlsplit

from tokentrail.core import ModelOperation, RequestParameters
from tokentrail.instrument.bedrock_streams import ConverseStreamState, InvokeStreamState
from tokentrail.instrument.engine import Call, Endpoint, Patch, Plugin, start_call
from tokentrail.instrument.sdk_support import record_error, record_headers, set_response
from tokentrail.instrument.streams import track_stream
from tokentrail.providers import bedrock as wire
from tokentrail.providers.bedrock_calls import (
    OPERATIONS,
    error_facts,
    header_usage,
    latency_ms,
    model_name,
    output_text,
    region_of,
    request_parameters,
    response_facts,
    schema_of_request,
    service_tier,
    stop_reason,
)
from tokentrail.tracking.operation import jsonable
from tokentrail.tracking.runtime import current_settings

SERVICE = "bedrock-runtime"
PATCHED = Endpoint("bedrock-runtime", ModelOperation.CHAT, SERVICE)  # the one wrapped method
_EMBEDDING_MARKERS = (
    ".titan-embed",
    ".cohere.embed",
    "cohere.embed",
    "amazon.titan-embed",
    ".nova-2-multimodal-embeddings",
    "embed-",
)


def _endpoint(api: str, model: str | None, options: Any) -> Endpoint:
    embedding = api == wire.INVOKE_MODEL and model is not None and any(m in model for m in _EMBEDDING_MARKERS)
    operation = ModelOperation.EMBEDDINGS if embedding else ModelOperation.CHAT
    return Endpoint(f"bedrock.{api}", operation, api, options)


class BedrockPlugin(Plugin):
    name = "bedrock"

    def __init__(self) -> None:
        self._servers: dict[str, str | None] = {}

    def available(self) -> bool:
        return importlib.util.find_spec("botocore") is not None

    def patches(self) -> list[Patch]:
        client = importlib.import_module("botocore.client")
        return [Patch(client.BaseClient, "_make_api_call", PATCHED)]

    def client_patches(self, client: Any, **options: Any) -> list[Patch]:
        service = getattr(getattr(getattr(client, "meta", None), "service_model", None), "service_name", None)
        if service != SERVICE:
            raise TypeError(
                f"wrap_bedrock: expected a boto3 'bedrock-runtime' client, got {service or type(client).__name__!r}"
            )
        chosen = {k: v for k, v in options.items() if v is not None}
        return [Patch(client, "_make_api_call", Endpoint(SERVICE, ModelOperation.CHAT, SERVICE, chosen))]

    # ---- request ----------------------------------------------------------------------------
    def begin(self, endpoint: Endpoint, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call | None:
        if len(args) >= 2:
            operation, params = args[-2], args[-1]
        else:
            operation, params = kwargs.get("operation_name"), kwargs.get("api_params")
        api = OPERATIONS.get(operation) if isinstance(operation, str) else None
        if api is None:
            return None  # another operation (or another service): not a model call
        meta = instance.meta
        if meta.service_model.service_name != SERVICE or not isinstance(params, dict):
            return None
        model = model_name(params.get("modelId"))
        call = start_call(
            self, _endpoint(api, model, endpoint.options), instance, kwargs,
            provider=endpoint.options.get("provider") or "aws.bedrock", model=model,
        )  # fmt: skip
        call.data = params
        tracker = call.tracker
        found, extra = request_parameters(api, params)
        if found:
            tracker.request_params = RequestParameters(**found)
        if call.endpoint.operation is not ModelOperation.EMBEDDINGS:
            tracker.streaming = found.get("stream") is True
        specific: dict[str, Any] = {}
        host = self._host(getattr(meta, "endpoint_url", None))
        if host is not None:
            specific["server_address"] = host
        region = getattr(meta, "region_name", None) or region_of(host)
        if isinstance(region, str) and region:
            specific["aws_region"] = region
        if extra:
            specific["request_params"] = extra
        if specific:
            tracker.provider_specific = specific
        schema = schema_of_request(params)
        if schema is not None:
            tracker.set_response_schema(schema)
        return call

    def _host(self, url: Any) -> str | None:
        if not isinstance(url, str):
            return None
        if url not in self._servers:
            if len(self._servers) >= 64:
                self._servers.clear()
            self._servers[url] = urlsplit(url).hostname
        return self._servers[url]

    # ---- response ---------------------------------------------------------------------------
    def end(self, call: Call, result: Any) -> Any:
        if not isinstance(result, dict):
            return result
        api = call.endpoint.api
        tracker = call.tracker
        facts = response_facts(result)
        set_response(tracker, request_id=facts.request_id)
        if facts.attempt is not None:
            tracker.attempt = facts.attempt
        collect = current_settings().capture_content
        if api == wire.CONVERSE_STREAM:
            stream = result.get("stream")
            if stream is not None:
                result["stream"] = track_stream(call, stream, ConverseStreamState(self, collect=collect))
            return result
        if api == wire.INVOKE_MODEL_STREAM:
            body = result.get("body")
            if body is not None:
                result["body"] = track_stream(call, body, InvokeStreamState(self))
            return result
        if api == wire.CONVERSE:
            usage = wire.extract(result, api)
            reason = stop_reason(result)
        else:  # InvokeModel: the body is the caller's; the headers count the tokens
            usage = header_usage(facts.headers)
            reason = None
        if usage is not None:
            tracker.usage = usage
        self.record_outcome(
            call,
            finish_reason=reason,
            latency_ms=latency_ms(result, facts.headers),
            service_tier=service_tier(result, facts.headers),
        )
        if collect and api == wire.CONVERSE:
            self.record_content(call, output_text(result))
        return result

    def record_outcome(
        self,
        call: Call,
        *,
        finish_reason: str | None = None,
        response_id: str | None = None,
        latency_ms: Any = None,
        service_tier: str | None = None,
    ) -> None:
        tracker = call.tracker
        set_response(tracker, finish_reason=finish_reason, response_id=response_id, service_tier=service_tier)
        if isinstance(latency_ms, int) and not isinstance(latency_ms, bool) and latency_ms >= 0:
            tracker.set_provider_specific(latency_ms=latency_ms)

    def record_content(self, call: Call, result: Any) -> None:
        if not current_settings().capture_content:
            return
        params = call.data if isinstance(call.data, dict) else {}
        system = params.get("system")
        messages = params.get("messages")
        prompt = {"system": system, "messages": messages} if system is not None else messages
        call.tracker.set_content(messages=jsonable(prompt), result=jsonable(result))

    def fail(self, call: Call, exc: BaseException) -> None:
        tracker = call.tracker
        facts = error_facts(getattr(exc, "response", None))
        record_error(tracker, exc, status=facts.status, kind=facts.code)
        set_response(tracker, request_id=facts.request_id)
        if facts.attempt is not None:
            tracker.attempt = facts.attempt
        record_headers(tracker, response_facts(getattr(exc, "response", None)).headers)  # retry-after, if any


__all__ = ["PATCHED", "SERVICE", "BedrockPlugin"]
