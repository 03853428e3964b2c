"""`POST /v1/traces` over HTTP, on SQLite and PostgreSQL: protobuf, OTLP JSON and gzip bodies,
partial success, malformed bodies, limits, auth and project scoping."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from server_helpers import ADMIN, ADMIN_KEY, project_key

from tokentrail.core import LLMCall, TokenUsage
from tokentrail.pricing import calculate_cost
from tokentrail.server import ServerSettings, create_app
from tokentrail.server.otlp import otlp_counters

PROTOBUF = {**ADMIN, "Content-Type": "application/x-protobuf"}
JSON = {**ADMIN, "Content-Type": "application/json"}
TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
T0 = datetime(2025, 10, 15, 10, 0, tzinfo=UTC)
T0_NS = int(T0.timestamp()) * 1_000_000_000

CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 100,
}
CLAUDE = {
    "gen_ai.operation.name": "chat",
    "gen_ai.system": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 50,
    "gen_ai.usage.cache_read.input_tokens": 1000,
}
HTTP = {"http.request.method": "GET", "url.path": "/"}


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    return AnyValue(string_value=value)


def pb_span(n: int, attrs: dict[str, Any], *, trace: bytes = TRACE, parent: int | None = None) -> Span:
    return Span(
        trace_id=trace,
        span_id=n.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"",
        name=f"span {n}",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=T0_NS + n * 1_000_000_000,
        end_time_unix_nano=T0_NS + n * 1_000_000_000 + 250_000_000,
        attributes=[KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()],
        status=Status(),
    )


def export_request(*spans: Span, service: str = "svc") -> ExportTraceServiceRequest:
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))])
    scope = ScopeSpans(scope=InstrumentationScope(name="test.instrumentation", version="1.0"), spans=list(spans))
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(resource=resource, scope_spans=[scope])])


def stored_calls(client: TestClient, headers: dict[str, str] = ADMIN) -> list[LLMCall]:
    response = client.get("/v1/calls", headers=headers)
    assert response.status_code == 200, response.text
    return sorted((LLMCall.from_dict(c) for c in response.json()["calls"]), key=lambda c: c.started_at)


def pb_response(content: bytes) -> ExportTraceServiceResponse:
    return ExportTraceServiceResponse.FromString(content)


def test_protobuf_export_stores_genai_spans_and_ignores_the_rest(client):
    body = export_request(pb_span(1, CHAT), pb_span(2, CLAUDE, parent=1), pb_span(3, HTTP)).SerializeToString()
    response = client.post("/v1/traces", content=body, headers=PROTOBUF)
    assert response.status_code == 200, response.content
    assert response.headers["content-type"] == "application/x-protobuf"
    assert not pb_response(response.content).HasField("partial_success")  # all accepted
    chat, claude = stored_calls(client)
    assert (chat.provider, chat.request_model, chat.trace_id, chat.parent_id) == ("openai", "gpt-4o", TRACE.hex(), None)
    assert chat.token_usage == TokenUsage(input_tokens=1000, output_tokens=100, total_tokens=1100)
    assert (
        chat.cost_metrics.total_cost
        == calculate_cost("openai", "gpt-4o", chat.token_usage, at=chat.started_at).total_cost
    )
    assert chat.attribution.service_name == "svc" and chat.duration_ms == 250.0
    assert claude.parent_id == (1).to_bytes(8, "big").hex()
    assert claude.token_usage.cache_read_tokens == 1000 and claude.cost_metrics.cache_read_cost > 0
    assert otlp_counters(client.app).snapshot() == {
        "requests": 1,
        "spans_received": 3,
        "calls_stored": 2,
        "duplicates": 0,
        "spans_ignored": 1,
        "spans_rejected": 0,
    }
    rows = client.get("/v1/usage", params={"group_by": "provider"}, headers=ADMIN).json()["rows"]
    assert (
        sum(Decimal(row["total_cost"]) for row in rows) == chat.cost_metrics.total_cost + claude.cost_metrics.total_cost
    )


def otlp_json(trace_hex: str, span_hex: str, attrs: list[dict[str, Any]]) -> dict[str, Any]:
    """An export request written as the OTLP JSON mapping specifies it (not by json_format)."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": trace_hex,
                                "spanId": span_hex,
                                "parentSpanId": "",
                                "name": "chat gpt-4o-mini",
                                "kind": 3,
                                "startTimeUnixNano": str(T0_NS),
                                "endTimeUnixNano": str(T0_NS + 2_000_000_000),
                                "attributes": attrs,
                                "status": {},
                                "someFutureField": {"x": 1},
                            }
                        ],
                    }
                ],
            }
        ]
    }


JSON_ATTRS = [
    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
    {"key": "gen_ai.system", "value": {"stringValue": "openai"}},
    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1500"}},
    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 20}},
    {"key": "gen_ai.request.temperature", "value": {"doubleValue": 0.5}},
    {"key": "gen_ai.response.finish_reasons", "value": {"arrayValue": {"values": [{"stringValue": "stop"}]}}},
]


def test_json_export_with_hex_ids_and_string_integers(client):
    trace_hex, span_hex = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    response = client.post("/v1/traces", content=json.dumps(otlp_json(trace_hex, span_hex, JSON_ATTRS)), headers=JSON)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json" and response.json() == {}
    (call,) = stored_calls(client)
    assert call.trace_id == trace_hex and call.parent_id is None
    assert call.token_usage == TokenUsage(input_tokens=1500, output_tokens=20, total_tokens=1520)
    assert call.request_parameters.temperature == 0.5 and call.response_metadata.finish_reason == "stop"
    assert call.duration_ms == 2000.0 and call.attribution.service_name == "json-svc"
    assert call.cost_metrics.total_cost == calculate_cost("openai", "gpt-4o-mini", call.token_usage, at=T0).total_cost


def test_gzip_bodies_in_both_encodings(client):
    pb = gzip.compress(export_request(pb_span(1, CHAT)).SerializeToString())
    response = client.post("/v1/traces", content=pb, headers={**PROTOBUF, "Content-Encoding": "gzip"})
    assert response.status_code == 200, response.content
    body = gzip.compress(json.dumps(otlp_json("ab" * 16, "cd" * 8, JSON_ATTRS)).encode())
    response = client.post("/v1/traces", content=body, headers={**JSON, "Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert {c.trace_id for c in stored_calls(client)} == {TRACE.hex(), "ab" * 16}


def test_re_exporting_a_span_stores_it_once(client):
    body = export_request(pb_span(1, CHAT), pb_span(2, CHAT)).SerializeToString()
    for _ in range(2):
        assert client.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200
    assert len(stored_calls(client)) == 2
    counts = otlp_counters(client.app).snapshot()
    assert (counts["calls_stored"], counts["duplicates"]) == (2, 2)


def test_invalid_genai_spans_are_rejected_in_partial_success(client):
    bad = {**CHAT, "gen_ai.usage.input_tokens": -5}
    body = export_request(pb_span(1, CHAT), pb_span(2, bad), pb_span(3, HTTP)).SerializeToString()
    response = client.post("/v1/traces", content=body, headers=PROTOBUF)
    assert response.status_code == 200
    partial = pb_response(response.content).partial_success
    assert partial.rejected_spans == 1
    assert "attributes.gen_ai.usage.input_tokens: must not be negative, got -5" in partial.error_message
    assert (2).to_bytes(8, "big").hex() in partial.error_message
    assert len(stored_calls(client)) == 1
    # the same in JSON: the response uses the OTLP JSON mapping (int64 as a string)
    attrs = [*JSON_ATTRS[:3], {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "-1"}}]
    response = client.post("/v1/traces", content=json.dumps(otlp_json("cd" * 16, "ef" * 8, attrs)), headers=JSON)
    assert response.json()["partialSuccess"]["rejectedSpans"] == "1"


@pytest.mark.parametrize(
    ("content_type", "body", "field", "reason"),
    [
        ("application/x-protobuf", b"\x0a\xff\xff", "body", "is not a protobuf ExportTraceServiceRequest"),
        ("application/json", b"{not json", "body", "is not valid JSON"),
        ("application/json", b"[1, 2]", "body", "must be an OTLP JSON object, got list"),
        ("application/json", b'{"resourceSpans": 5}', "resourceSpans", "must be a list, got int"),
        ("application/json", b'{"resourceSpans": [{"resource": 3}]}', "body", "is not an OTLP JSON"),
        (
            "application/json",
            json.dumps(otlp_json("xyz", "cd" * 8, [])).encode(),
            "resourceSpans[0].scopeSpans[0].spans[0].traceId",
            "is not hex",
        ),
    ],
    ids=["protobuf", "json-syntax", "json-list", "json-shape", "json-types", "json-hex-id"],
)
def test_malformed_bodies_answer_400_with_the_reason(client, content_type, body, field, reason):
    response = client.post("/v1/traces", content=body, headers={**ADMIN, "Content-Type": content_type})
    assert response.status_code == 400
    if content_type == "application/x-protobuf":
        status = status_pb2.Status.FromString(response.content)  # what OTLP exporters read
        assert status.code == 3 and status.message.startswith(f"{field}: ") and reason in status.message
    else:
        answer = response.json()
        assert answer["code"] == 3 and answer["detail"][0]["field"] == field
        assert reason in answer["detail"][0]["reason"]
    assert stored_calls(client) == []


def test_bad_gzip_is_400_and_unknown_encodings_or_types_415(client):
    response = client.post("/v1/traces", content=b"not gzip", headers={**PROTOBUF, "Content-Encoding": "gzip"})
    assert response.status_code == 400 and "gzip" in status_pb2.Status.FromString(response.content).message
    response = client.post("/v1/traces", content=b"{}", headers={**JSON, "Content-Encoding": "br"})
    assert response.status_code == 415
    response = client.post("/v1/traces", content=b"{}", headers={**ADMIN, "Content-Type": "text/plain"})
    assert response.status_code == 415 and "application/x-protobuf" in response.json()["detail"]


def test_an_empty_export_is_accepted(client):
    response = client.post("/v1/traces", content=b"", headers=PROTOBUF)
    assert response.status_code == 200 and response.content == b""  # an empty ExportTraceServiceResponse


@pytest.fixture
def small_client(db_url: str) -> Iterator[TestClient]:
    settings = ServerSettings.load(database_url=db_url, admin_key=ADMIN_KEY, max_body_bytes=4096)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_body_limit_applies_compressed_and_decompressed(small_client):
    spans = [pb_span(i, {**CHAT, "gen_ai.response.id": "x" * 200}) for i in range(1, 40)]
    body = export_request(*spans).SerializeToString()
    assert len(body) > 4096 and len(gzip.compress(body)) < 4096
    assert small_client.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 413
    response = small_client.post(
        "/v1/traces", content=gzip.compress(body), headers={**PROTOBUF, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 413
    assert stored_calls(small_client) == []


def test_an_api_key_is_required(client):
    body = export_request(pb_span(1, CHAT)).SerializeToString()
    assert (
        client.post("/v1/traces", content=body, headers={"Content-Type": "application/x-protobuf"}).status_code == 401
    )
    wrong = {"Content-Type": "application/x-protobuf", "Authorization": "Bearer tt_not-a-key-0000000000000000"}
    assert client.post("/v1/traces", content=body, headers=wrong).status_code == 401
    assert stored_calls(client) == []


def test_a_project_key_puts_the_records_in_its_project(client):
    key = project_key(client.app, "web")
    span = pb_span(1, {**CHAT, "tokentrail.project": "someone-else", "user.id": "u-1"})
    response = client.post(
        "/v1/traces",
        content=export_request(span).SerializeToString(),
        headers={**key, "Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    (call,) = stored_calls(client, key)
    assert call.attribution.project == "web" and call.attribution.user_id == "u-1"
    assert stored_calls(client, project_key(client.app, "other")) == []


def test_metrics_count_the_records_of_otlp_exports(client):
    bad = {**CHAT, "gen_ai.usage.output_tokens": "lots"}
    body = export_request(pb_span(1, CHAT), pb_span(2, CLAUDE), pb_span(3, bad), pb_span(4, HTTP)).SerializeToString()
    for _ in range(2):  # the second time both valid spans are duplicates
        assert client.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200
    text = client.get("/metrics", headers=ADMIN).text
    assert 'tokentrail_ingest_requests_total{endpoint="/v1/traces",status_code="200"} 2.0' in text
    for result, count in (("accepted", 2), ("duplicate", 2), ("rejected", 2)):
        assert f'tokentrail_ingest_records_total{{result="{result}"}} {count}.0' in text
