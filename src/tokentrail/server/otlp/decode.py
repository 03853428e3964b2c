"""OTLP/HTTP trace export bodies in and out: protobuf (`application/x-protobuf`) and the OTLP
JSON mapping (`application/json`), decoded with the `opentelemetry-proto` classes.

The OTLP JSON mapping differs from protobuf's canonical JSON in one respect that matters:
trace and span ids are hex strings, not base64. They are turned into base64 before
`google.protobuf.json_format` parses the body; everything else (camelCase or snake_case
field names, 64-bit integers as strings, enums as numbers or names, unknown fields ignored)
`json_format` already accepts.

Decoded spans are handed on as `SpanView`s: plain Python values, so the GenAI mapping does not
depend on protobuf and is testable on its own.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tokentrail.core import ValidationError
from tokentrail.server import jsonio

_INVALID_ARGUMENT = 3  # google.rpc.Code.INVALID_ARGUMENT


class OtlpFormat(StrEnum):
    PROTOBUF = "application/x-protobuf"
    JSON = "application/json"


# Content types accepted for each encoding (parameters such as charset are ignored).
_CONTENT_TYPES: dict[str, OtlpFormat] = {
    "application/x-protobuf": OtlpFormat.PROTOBUF,
    "application/protobuf": OtlpFormat.PROTOBUF,
    "application/json": OtlpFormat.JSON,
}


def otlp_format(content_type: str | None) -> OtlpFormat | None:
    """The encoding a Content-Type names, or None when it names neither OTLP encoding."""
    if not content_type:
        return None
    return _CONTENT_TYPES.get(content_type.split(";", 1)[0].strip().lower())


@dataclass(frozen=True, slots=True)
class SpanView:
    """One span with its resource and scope, as plain values (attributes as Python values)."""

    trace_id: bytes
    span_id: bytes
    start_ns: int
    end_ns: int = 0
    parent_span_id: bytes = b""
    name: str = ""
    kind: int = 0  # SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer
    status_code: int = 0  # 0 unset, 1 ok, 2 error
    status_message: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    resource: Mapping[str, Any] = field(default_factory=dict)
    scope_name: str = ""
    scope_version: str = ""
    exception: Mapping[str, Any] | None = None  # attributes of the first "exception" event


# ---- decoding --------------------------------------------------------------------------------
def decode_request(body: bytes, fmt: OtlpFormat) -> ExportTraceServiceRequest:
    """The export request in `body`; ValidationError("body", reason) when it is malformed."""
    if fmt is OtlpFormat.PROTOBUF:
        try:
            return ExportTraceServiceRequest.FromString(body)
        except (DecodeError, ValueError, RuntimeError) as exc:
            raise ValidationError("body", f"is not a protobuf ExportTraceServiceRequest: {exc}") from None
    try:
        payload = jsonio.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("body", f"is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ValidationError("body", f"must be an OTLP JSON object, got {type(payload).__name__}")
    _ids_to_base64(payload)
    try:
        return json_format.ParseDict(payload, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise ValidationError("body", f"is not an OTLP JSON ExportTraceServiceRequest: {exc}") from None


def _items(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(path, f"must be a list, got {type(value).__name__}")
    return value


def _either(obj: dict[str, Any], camel: str, snake: str) -> tuple[str, Any]:
    return (camel, obj[camel]) if camel in obj else (snake, obj.get(snake))


def _ids_to_base64(payload: dict[str, Any]) -> None:
    """Rewrite the hex ids of an OTLP JSON body in place as protobuf JSON's base64."""
    key, resource_spans = _either(payload, "resourceSpans", "resource_spans")
    for r, resource in enumerate(_items(resource_spans, key)):
        if not isinstance(resource, dict):
            continue  # json_format names the problem
        scope_key, scopes = _either(resource, "scopeSpans", "scope_spans")
        for s, scope in enumerate(_items(scopes, f"{key}[{r}].{scope_key}")):
            if not isinstance(scope, dict):
                continue
            for i, span in enumerate(_items(scope.get("spans"), f"{key}[{r}].{scope_key}[{s}].spans")):
                if not isinstance(span, dict):
                    continue
                path = f"{key}[{r}].{scope_key}[{s}].spans[{i}]"
                _hex_fields(
                    span, path, (("traceId", "trace_id"), ("spanId", "span_id"), ("parentSpanId", "parent_span_id"))
                )
                for j, link in enumerate(_items(span.get("links"), f"{path}.links")):
                    if isinstance(link, dict):
                        _hex_fields(link, f"{path}.links[{j}]", (("traceId", "trace_id"), ("spanId", "span_id")))


def _hex_fields(obj: dict[str, Any], path: str, names: tuple[tuple[str, str], ...]) -> None:
    for camel, snake in names:
        for name in (camel, snake):
            value = obj.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise ValidationError(f"{path}.{name}", f"must be a hex string, got {type(value).__name__}")
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                raise ValidationError(f"{path}.{name}", f"{value[:40]!r} is not hex (OTLP JSON ids are hex)") from None
            obj[name] = base64.b64encode(raw).decode()


# ---- spans as plain values --------------------------------------------------------------------
def any_value(value: AnyValue) -> Any:
    """An OTLP AnyValue as a JSON-compatible Python value (bytes as base64, non-finite as None)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        number = value.double_value
        return number if math.isfinite(number) else None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


def attributes(pairs: Any) -> dict[str, Any]:
    """Key-value pairs as a dict; a repeated key keeps its first value, as OTLP says."""
    out: dict[str, Any] = {}
    pair: KeyValue
    for pair in pairs:
        if pair.key not in out:
            out[pair.key] = any_value(pair.value)
    return out


def iter_spans(request: ExportTraceServiceRequest) -> Iterator[SpanView]:
    """Every span of the request, in order, with its resource and scope attributes."""
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            for span in scope_spans.spans:
                exception = next((attributes(e.attributes) for e in span.events if e.name == "exception"), None)
                yield SpanView(
                    trace_id=span.trace_id,
                    span_id=span.span_id,
                    parent_span_id=span.parent_span_id,
                    name=span.name,
                    kind=span.kind,
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    status_code=span.status.code,
                    status_message=span.status.message,
                    attributes=attributes(span.attributes),
                    resource=resource,
                    scope_name=scope.name,
                    scope_version=scope.version,
                    exception=exception,
                )


def count_spans(request: ExportTraceServiceRequest) -> int:
    return sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)


# ---- answers ---------------------------------------------------------------------------------
def encode_response(fmt: OtlpFormat, rejected: int = 0, message: str = "") -> bytes:
    """An ExportTraceServiceResponse; `partial_success` only when something was rejected or said."""
    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if fmt is OtlpFormat.PROTOBUF:
        return response.SerializeToString()
    return jsonio.dumps(json_format.MessageToDict(response)).encode()


def encode_status(fmt: OtlpFormat, message: str, detail: list[dict[str, str]]) -> bytes:
    """A 400 body: google.rpc.Status for protobuf (what OTLP exporters read); for JSON the
    Status fields plus the server's usual `detail` list of `{field, reason}`."""
    if fmt is OtlpFormat.PROTOBUF:
        return status_pb2.Status(code=_INVALID_ARGUMENT, message=message).SerializeToString()
    return jsonio.dumps({"code": _INVALID_ARGUMENT, "message": message, "detail": detail}).encode()


__all__ = [
    "OtlpFormat",
    "SpanView",
    "any_value",
    "attributes",
    "count_spans",
    "decode_request",
    "encode_response",
    "encode_status",
    "iter_spans",
    "otlp_format",
]
