"""Recorded Vertex AI exchanges replayed through the real `google-genai` SDK (Vertex mode,
project and location, static OAuth credentials; a loopback server answers with the recorded
status, headers and body) with `instrument()` on: every field the record carries is checked
against the recording, computed here from the recorded JSON (PROVIDERS.md A.6 by hand)."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import pydantic
import pytest
from google import genai
from google.genai import errors, types
from google.oauth2.credentials import Credentials

import tokentrail
from tokentrail.instrument import instrument

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "providers"))
from _cassette_replay import GOOGLE_GENAI, VERTEXAI, Interaction, load, parse_sse, replay

(PLAIN,) = load(GOOGLE_GENAI / "test_non_streaming[logcontent-gemini-2.5-flash-vertexaiapi-sync-default].yaml")
(STREAMED,) = load(GOOGLE_GENAI / "test_streaming[logcontent-gemini-2.5-flash-vertexaiapi-sync-default].yaml")
# recorded by the `vertexai` SDK, which asks for `enum-encoding=int`
(VERTEX_PLAIN,) = load(VERTEXAI / "test_generate_content.yaml")
(VERTEX_TOOLS,) = load(VERTEXAI / "test_function_call_choice.yaml")
(VERTEX_ERROR,) = load(VERTEXAI / "test_generate_content_invalid_temperature.yaml")


_CLIENTS: list[genai.Client] = []


def vertex_client(base_url: str, project: str = "test-project", location: str = "test-location") -> genai.Client:
    """A Vertex-mode client; kept alive for the test (a dropped `Client` closes its transport,
    even while its `models` are in use)."""
    _CLIENTS.append(
        genai.Client(
            vertexai=True,
            project=project,
            location=location,
            credentials=Credentials("test-token"),
            http_options=types.HttpOptions(base_url=base_url),
        )
    )
    return _CLIENTS[-1]


@pytest.fixture(autouse=True)
def _drop_clients():
    yield
    _CLIENTS.clear()


def model_of(interaction: Interaction) -> str:
    return interaction.uri.split("/models/")[1].split(":")[0]


def by_modality(items: list[dict[str, Any]] | None) -> dict[str, int]:
    return {item["modality"].lower(): item["tokenCount"] for item in items or []}


def expected_usage(meta: dict[str, Any]) -> dict[str, Any]:
    prompt, thoughts = meta.get("promptTokenCount", 0), meta.get("thoughtsTokenCount", 0)
    tool, candidates = meta.get("toolUsePromptTokenCount", 0), meta.get("candidatesTokenCount", 0)
    out: dict[str, Any] = {
        "input_tokens": prompt + tool,
        "output_tokens": candidates + thoughts,
        "total_tokens": prompt + tool + candidates + thoughts,
    }
    assert out["total_tokens"] == meta["totalTokenCount"]  # the recording satisfies the A.6 rule
    if "cachedContentTokenCount" in meta:
        out["cache_read_tokens"] = meta["cachedContentTokenCount"]
    if thoughts:
        out["reasoning_tokens"] = thoughts
    details = {f"input_{k}_tokens": v for k, v in by_modality(meta.get("promptTokensDetails")).items()}
    details |= {f"output_{k}_tokens": v for k, v in by_modality(meta.get("candidatesTokensDetails")).items()}
    if details:
        out["details"] = details
    return out


def check(call: tokentrail.LLMCall, interaction: Interaction, response: dict[str, Any], port: int) -> None:
    assert call.status == "ok" and call.error is None
    assert call.provider == "gcp.vertex_ai" and call.operation == "generate_content"
    assert call.request_model == model_of(interaction)
    assert call.provider_model == response["modelVersion"]
    meta = call.response_metadata
    assert meta.response_id == response["responseId"]
    assert meta.model_version == response["modelVersion"]
    assert meta.finish_reason == response["candidates"][0]["finishReason"]
    assert call.token_usage.to_dict() == expected_usage(response["usageMetadata"])
    assert call.provider_specific["traffic_type"] == response["usageMetadata"]["trafficType"]
    assert call.provider_specific["server_address"] == "127.0.0.1"
    assert call.provider_specific["server_port"] == port
    assert call.rate_limit_info is None  # Gemini sends no rate-limit headers
    assert call.attempt == 1
    usage = tokentrail.TokenUsage(**expected_usage(response["usageMetadata"]))
    cost = tokentrail.calculate_cost("gcp.vertex_ai", response["modelVersion"], usage, at=call.started_at)
    assert call.cost_metrics.total_cost == cost.total_cost and cost.total_cost > 0


def port_of(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1])


def test_generate_content(calls):
    request = json.loads(PLAIN.request_body)
    instrument("gemini")
    with replay([PLAIN]) as server:
        result = vertex_client(server.base_url).models.generate_content(
            model=model_of(PLAIN), contents=request["contents"]
        )
        assert server.requests[0][1] == PLAIN.uri.split(".googleapis.com", 1)[1]  # the recorded path
    assert result.response_id == PLAIN.json["responseId"]
    (call,) = calls
    check(call, PLAIN, PLAIN.json, port_of(server.base_url))
    assert call.streaming is False and call.request_parameters is None
    assert call.performance_metrics.time_to_first_token_ms is None


def test_generate_content_stream(calls):
    request = json.loads(STREAMED.request_body)
    chunks = parse_sse(STREAMED.body)
    instrument("gemini")
    with replay([STREAMED]) as server:
        received = list(
            vertex_client(server.base_url).models.generate_content_stream(
                model=model_of(STREAMED), contents=request["contents"]
            )
        )
    assert len(received) == len(chunks)
    last = chunks[-1]  # running totals: the last chunk's usage is the call's
    assert "promptTokenCount" not in chunks[0]["usageMetadata"]  # the first chunks carry no counts
    (call,) = calls
    check(call, STREAMED, last, port_of(server.base_url))
    assert call.streaming is True and call.request_parameters.stream is True
    perf = call.performance_metrics
    assert 0 < perf.time_to_first_token_ms <= perf.total_duration_ms
    assert "partial" not in call.provider_specific


def test_async_generate_content(calls):
    request = json.loads(PLAIN.request_body)
    instrument("gemini")

    async def main(base_url: str) -> Any:
        return await vertex_client(base_url).aio.models.generate_content(
            model=model_of(PLAIN), contents=request["contents"]
        )

    with replay([PLAIN]) as server:
        asyncio.run(main(server.base_url))
    (call,) = calls
    check(call, PLAIN, PLAIN.json, port_of(server.base_url))


ENUMS = {  # the proto numbers of the recorded int enums (google.cloud.aiplatform.v1 protos)
    "finishReason": {1: "STOP", 2: "MAX_TOKENS"},
    "modality": {1: "TEXT", 2: "IMAGE", 3: "VIDEO", 4: "AUDIO"},
    "trafficType": {1: "ON_DEMAND", 2: "PROVISIONED_THROUGHPUT"},
}


def with_enum_names(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ENUMS[k][v] if k in ENUMS and isinstance(v, int) else with_enum_names(v) for k, v in value.items()}
    if isinstance(value, list):
        return [with_enum_names(v) for v in value]
    return value


@pytest.mark.parametrize("interaction", [VERTEX_PLAIN, VERTEX_TOOLS], ids=["plain", "function_call"])
def test_vertexai_recordings_with_enum_names(interaction, calls):
    """A changed variant, made here: the vertexai SDK's int enums written as names, the JSON
    encoding google-genai asks for."""
    response = with_enum_names(interaction.json)
    variant = dataclasses.replace(interaction, body=json.dumps(response))
    request = json.loads(interaction.request_body)
    instrument("gemini")
    with replay([variant]) as server:
        result = vertex_client(server.base_url, "fake-project", "us-central1").models.generate_content(
            model=model_of(interaction), contents=request["contents"]
        )
    (call,) = calls
    check(call, interaction, response, port_of(server.base_url))
    assert result.usage_metadata.thoughts_token_count == call.token_usage.reasoning_tokens > 0


def test_vertexai_recording_as_recorded_fails_in_the_sdk_and_is_recorded_so(calls):
    request = json.loads(VERTEX_PLAIN.request_body)
    with replay([VERTEX_PLAIN]) as server, pytest.raises(pydantic.ValidationError) as plain:
        vertex_client(server.base_url).models.generate_content(model="gemini-2.5-pro", contents=request["contents"])
    instrument("gemini")
    with replay([VERTEX_PLAIN]) as server, pytest.raises(pydantic.ValidationError) as caught:
        vertex_client(server.base_url).models.generate_content(model="gemini-2.5-pro", contents=request["contents"])
    assert str(caught.value) == str(plain.value)  # the SDK's own exception, unchanged
    (call,) = calls
    assert call.status == "error" and call.error.type == "ValidationError" and call.token_usage is None


def test_vertexai_error(calls):
    request = json.loads(VERTEX_ERROR.request_body)
    body = VERTEX_ERROR.json["error"]
    instrument("gemini")
    with replay([VERTEX_ERROR]) as server, pytest.raises(errors.ClientError) as caught:
        vertex_client(server.base_url).models.generate_content(
            model=model_of(VERTEX_ERROR), contents=request["contents"], config=request["generationConfig"]
        )
    (call,) = calls
    assert call.status == "error"
    assert call.error.type == "ClientError" and call.error.http_status == body["code"] == 400
    assert call.error.message == str(caught.value)
    assert call.provider_specific["error_type"] == body["status"]
    assert call.request_parameters.temperature == request["generationConfig"]["temperature"]
    assert call.rate_limit_info is None  # no retryDelay in this error
    assert call.attempt == 1


def test_stream_usage_is_never_summed(calls):
    """The running totals of every chunk (a changed variant, made here: counts on each chunk)."""
    chunks = parse_sse(STREAMED.body)
    counted = copy.deepcopy(chunks)
    final = {
        k: v for k, v in chunks[-1]["usageMetadata"].items() if k not in ("totalTokenCount", "candidatesTokensDetails")
    }
    for index, chunk in enumerate(counted):
        chunk["usageMetadata"] = {**final, "candidatesTokenCount": 10 * (index + 1)}
    body = "".join(f"data: {json.dumps(c)}\r\n\r\n" for c in counted)
    variant = dataclasses.replace(STREAMED, body=body)
    instrument("gemini")
    with replay([variant]) as server:
        list(vertex_client(server.base_url).models.generate_content_stream(model="gemini-2.5-flash", contents="x"))
    (call,) = calls
    thoughts = chunks[-1]["usageMetadata"]["thoughtsTokenCount"]
    assert call.token_usage.output_tokens == 10 * len(counted) + thoughts
