"""Recorded Anthropic exchanges replayed through the real `anthropic` SDK (a loopback server
answers with the recorded status, headers and body) with `instrument()` on: every field the
record carries is checked against the recording, computed here from the recorded JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import anthropic
import pytest

import tokentrail
from tokentrail.instrument import instrument

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "providers"))
from _cassette_replay import ANTHROPIC, BOTOCORE, Interaction, load, parse_sse, replay

# the recorded models are ones the SDK now warns about
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")

PLAIN = [
    "test_sync_messages_create_basic",
    "test_sync_messages_create_aggregates_cache_tokens",
    "test_sync_messages_create_captures_thinking_content",
    "test_sync_messages_create_captures_tool_use_content",
]
STREAMED = ["test_sync_messages_create_streaming", "test_sync_messages_create_streaming_aggregates_cache_tokens"]


def recorded(name: str) -> Interaction:
    (interaction,) = load(ANTHROPIC / f"{name}.yaml")
    return interaction


def request_of(interaction: Interaction) -> dict[str, Any]:
    return json.loads(interaction.request_body)


def client(base_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test-key", base_url=base_url, max_retries=0)


def expected_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """PROVIDERS.md A.5, applied by hand to a recorded usage block."""
    read = usage.get("cache_read_input_tokens", 0)
    write = usage.get("cache_creation_input_tokens", 0)
    inclusive = usage["input_tokens"] + read + write
    out = {
        "input_tokens": inclusive,
        "output_tokens": usage["output_tokens"],
        "total_tokens": inclusive + usage["output_tokens"],
        "cache_read_tokens": read,
        "cache_write_tokens": write,
    }
    thinking = (usage.get("output_tokens_details") or {}).get("thinking_tokens")
    if thinking is not None:
        out["reasoning_tokens"] = thinking
    return out


def check_headers(call: tokentrail.LLMCall, interaction: Interaction) -> None:
    header = interaction.header
    assert call.response_metadata.request_id == header("request-id")
    limits = call.rate_limit_info
    assert limits.requests_limit == int(header("anthropic-ratelimit-requests-limit"))
    assert limits.requests_remaining == int(header("anthropic-ratelimit-requests-remaining"))
    assert limits.tokens_limit == int(header("anthropic-ratelimit-tokens-limit"))
    assert limits.tokens_remaining == int(header("anthropic-ratelimit-tokens-remaining"))
    assert limits.requests_reset_at == datetime.fromisoformat(header("anthropic-ratelimit-requests-reset"))
    assert limits.tokens_reset_at == datetime.fromisoformat(header("anthropic-ratelimit-tokens-reset"))
    windows = call.provider_specific["rate_limits"]
    for kind in ("input", "output"):
        assert windows[f"{kind}_tokens_limit"] == int(header(f"anthropic-ratelimit-{kind}-tokens-limit"))
        assert windows[f"{kind}_tokens_remaining"] == int(header(f"anthropic-ratelimit-{kind}-tokens-remaining"))
        reset = datetime.fromisoformat(header(f"anthropic-ratelimit-{kind}-tokens-reset"))
        assert datetime.fromisoformat(windows[f"{kind}_tokens_reset_at"]) == reset


def check_common(call: tokentrail.LLMCall, request: dict[str, Any], message: dict[str, Any], port: int) -> None:
    assert call.status == "ok" and call.error is None
    assert call.operation == "chat" and call.provider == "anthropic"
    assert call.request_model == request["model"]
    assert call.provider_model == message["model"]
    assert call.token_usage.to_dict() == expected_usage(message["usage"])
    meta = call.response_metadata
    assert meta.response_id == message["id"]
    assert meta.finish_reason == message["stop_reason"]
    assert meta.service_tier == message["usage"]["service_tier"]
    assert call.request_parameters.max_tokens == request["max_tokens"]
    assert call.provider_specific["server_address"] == "127.0.0.1"
    assert call.provider_specific["server_port"] == port
    assert call.provider_specific["inference_geo"] == message["usage"]["inference_geo"]
    assert call.attempt == 1
    usage = tokentrail.TokenUsage(**{k: v for k, v in expected_usage(message["usage"]).items()})
    cost = tokentrail.calculate_cost("anthropic", message["model"], usage, at=call.started_at)
    assert call.cost_metrics.total_cost == cost.total_cost and cost.total_cost > 0
    assert call.performance_metrics.total_duration_ms > 0


@pytest.mark.parametrize("name", PLAIN)
def test_plain_messages(name, calls):
    interaction = recorded(name)
    request = request_of(interaction)
    instrument("anthropic")
    with replay([interaction]) as server:
        result = client(server.base_url).messages.create(**request)
    assert result.id == interaction.json["id"]
    (call,) = calls
    check_common(call, request, interaction.json, int(server.base_url.rsplit(":", 1)[1]))
    check_headers(call, interaction)
    assert call.streaming is False
    assert call.request_parameters.stream is None
    assert call.performance_metrics.time_to_first_token_ms is None
    thinking = request.get("thinking")
    if thinking:
        assert call.provider_specific["request_params"] == {
            "thinking": thinking["type"],
            "thinking_budget_tokens": thinking["budget_tokens"],
        }
    else:
        assert "request_params" not in call.provider_specific


@pytest.mark.parametrize("name", STREAMED)
def test_streamed_messages(name, calls):
    interaction = recorded(name)
    request = request_of(interaction)
    events = parse_sse(interaction.body)
    instrument("anthropic")
    with replay([interaction]) as server:
        received = list(client(server.base_url).messages.create(**request))
    assert [e.type for e in received] == [e["type"] for e in events if e["type"] != "ping"]
    start = events[0]["message"]
    delta = next(e for e in events if e["type"] == "message_delta")
    message = {**start, "stop_reason": delta["delta"]["stop_reason"], "usage": {**start["usage"], **delta["usage"]}}
    (call,) = calls
    check_common(call, request, message, int(server.base_url.rsplit(":", 1)[1]))
    check_headers(call, interaction)
    assert call.streaming is True and call.request_parameters.stream is True
    assert call.token_usage.output_tokens == delta["usage"]["output_tokens"]  # cumulative, not start + delta
    perf = call.performance_metrics
    assert 0 < perf.time_to_first_token_ms <= perf.total_duration_ms
    assert perf.tokens_per_second > 0
    assert "partial" not in call.provider_specific


def test_stream_helper(calls):
    interaction = recorded("test_sync_messages_stream")
    request = {k: v for k, v in request_of(interaction).items() if k != "stream"}
    events = parse_sse(interaction.body)
    instrument("anthropic")
    with replay([interaction]) as server, client(server.base_url).messages.stream(**request) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    deltas = [e["delta"]["text"] for e in events if e["type"] == "content_block_delta"]
    assert text == "".join(deltas)
    (call,) = calls
    assert call.token_usage.input_tokens == final.usage.input_tokens
    assert call.token_usage.output_tokens == final.usage.output_tokens
    assert call.response_metadata.response_id == final.id == events[0]["message"]["id"]
    assert call.response_metadata.finish_reason == final.stop_reason
    assert call.request_parameters.stream is True and call.streaming is True
    check_headers(call, interaction)
    assert "partial" not in call.provider_specific


def test_async_create(calls):
    interaction = recorded("test_sync_messages_create_basic")
    request = request_of(interaction)
    instrument("anthropic")

    async def main(base_url: str) -> Any:
        async with anthropic.AsyncAnthropic(api_key="k", base_url=base_url, max_retries=0) as aclient:
            return await aclient.messages.create(**request)

    with replay([interaction]) as server:
        result = asyncio.run(main(server.base_url))
    (call,) = calls
    assert result.id == call.response_metadata.response_id
    check_common(call, request, interaction.json, int(server.base_url.rsplit(":", 1)[1]))
    check_headers(call, interaction)


def test_api_error(calls):
    interaction = recorded("test_sync_messages_create_api_error")
    request = request_of(interaction)
    instrument("anthropic")
    with replay([interaction]) as server, pytest.raises(anthropic.NotFoundError) as caught:
        client(server.base_url).messages.create(**request)
    (call,) = calls
    body = interaction.json
    assert call.status == "error" and call.token_usage is None
    assert call.error.type == type(caught.value).__qualname__ == "NotFoundError"
    assert call.error.http_status == 404
    assert call.error.message == str(caught.value)
    assert call.provider_specific["error_type"] == body["error"]["type"]
    assert call.response_metadata.request_id == interaction.header("request-id") == body["request_id"]
    assert call.request_model == "invalid-model-name"
    assert call.cost_metrics.pricing_status == "unpriced" and call.cost_metrics.total_cost is None


def test_bedrock_client_is_named_aws_bedrock(calls):
    """`AnthropicBedrock` (Claude through `/model/{id}/invoke`): the recorded Bedrock answer."""
    (interaction,) = load(BOTOCORE / "test_invoke_model_with_content[anthropic.claude].yaml")
    request = json.loads(interaction.request_body)
    instrument("anthropic")
    with replay([interaction]) as server:
        bedrock = anthropic.AnthropicBedrock(
            aws_access_key="x", aws_secret_key="y", aws_region="us-east-1", base_url=server.base_url, max_retries=0
        )
        result = bedrock.messages.create(
            model="anthropic.claude-v2", max_tokens=request["max_tokens"], messages=request["messages"]
        )
        assert server.requests[0][1] == "/model/anthropic.claude-v2/invoke"
    (call,) = calls
    assert call.provider == "aws.bedrock"
    assert call.request_model == "anthropic.claude-v2" and call.provider_model == result.model
    assert call.token_usage.input_tokens == interaction.json["usage"]["input_tokens"]
    assert call.token_usage.output_tokens == interaction.json["usage"]["output_tokens"]
    assert call.response_metadata.request_id == interaction.header("x-amzn-RequestId")
    assert call.response_metadata.finish_reason == "max_tokens"


def test_vertex_client_is_named_gcp_vertex_ai(calls):
    interaction = recorded("test_sync_messages_create_basic")
    request = request_of(interaction)
    instrument("anthropic")
    with replay([interaction]) as server:
        vertex = anthropic.AnthropicVertex(
            region="us-east5", project_id="p", access_token="t", base_url=server.base_url, max_retries=0
        )
        vertex.messages.create(**request)
        assert ":rawPredict" in server.requests[0][1]
    (call,) = calls
    assert call.provider == "gcp.vertex_ai"
    assert call.token_usage.to_dict() == expected_usage(interaction.json["usage"])
