"""Recorded Bedrock runtime exchanges replayed through real boto3 clients (`endpoint_url` on a
loopback server that answers with the recorded status, headers and body — AWS event streams
included; dummy credentials) with `instrument()` on: every field the record carries is
checked against the recording, computed here from the recorded JSON and headers."""

from __future__ import annotations

import base64
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

import tokentrail
from tokentrail.instrument import instrument, instrumented, uninstrument, wrap_bedrock

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "providers"))
from _cassette_replay import BOTOCORE, Interaction, event_stream_frames, load, replay

(CONVERSE,) = load(BOTOCORE / "test_converse_with_content.yaml")
TOOLS = load(BOTOCORE / "test_converse_tool_call_with_content.yaml")
(CONVERSE_STREAM,) = load(BOTOCORE / "test_converse_stream_with_content.yaml")
(INVOKE,) = load(BOTOCORE / "test_invoke_model_with_content[anthropic.claude].yaml")
(INVOKE_STREAM,) = load(BOTOCORE / "test_invoke_model_with_response_stream_with_content[anthropic.claude].yaml")
(INVALID,) = load(BOTOCORE / "test_converse_with_invalid_model.yaml")


def runtime(base_url: str, *, max_attempts: int = 1) -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=base_url,
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(retries={"mode": "standard", "total_max_attempts": max_attempts}),
    )


def model_of(interaction: Interaction) -> str:
    return unquote(interaction.uri.split("/model/")[1].split("/")[0])


def request_of(interaction: Interaction) -> dict[str, Any]:
    return json.loads(interaction.request_body)


def check_common(call: tokentrail.LLMCall, interaction: Interaction) -> None:
    assert call.provider == "aws.bedrock"
    assert call.request_model == model_of(interaction)
    assert call.provider_model is None  # Bedrock bodies name no model: the modelId is billed
    assert call.response_metadata.request_id == interaction.header("x-amzn-RequestId")
    assert call.provider_specific["aws_region"] == "us-east-1"
    assert call.provider_specific["server_address"] == "127.0.0.1"
    assert call.attempt == 1
    assert call.rate_limit_info is None


def check_inference_config(call: tokentrail.LLMCall, config: dict[str, Any], *, stream: bool) -> None:
    params = call.request_parameters
    assert params.max_tokens == config["maxTokens"]
    assert params.temperature == config["temperature"]
    assert params.top_p == config["topP"]
    assert params.stop_sequences == config["stopSequences"]
    assert params.stream is (True if stream else None)


def check_cost(call: tokentrail.LLMCall, usage: tokentrail.TokenUsage) -> None:
    cost = tokentrail.calculate_cost("aws.bedrock", call.request_model, usage, at=call.started_at)
    assert call.cost_metrics.total_cost == cost.total_cost and cost.total_cost > 0


def test_converse(calls):
    instrument("bedrock")
    request = request_of(CONVERSE)
    with replay([CONVERSE]) as server:
        response = runtime(server.base_url).converse(modelId=model_of(CONVERSE), **request)
        assert server.requests[0][1] == f"/model/{model_of(CONVERSE)}/converse"
    body = CONVERSE.json
    (call,) = calls
    check_common(call, CONVERSE)
    assert call.status == "ok" and call.operation == "chat" and call.streaming is False
    usage = body["usage"]
    assert call.token_usage.to_dict() == {
        "input_tokens": usage["inputTokens"],
        "output_tokens": usage["outputTokens"],
        "total_tokens": usage["totalTokens"],
    }
    check_inference_config(call, request["inferenceConfig"], stream=False)
    assert call.response_metadata.finish_reason == body["stopReason"] == response["stopReason"]
    assert call.provider_specific["latency_ms"] == body["metrics"]["latencyMs"]
    check_cost(call, call.token_usage)
    assert response["usage"]["inputTokens"] == usage["inputTokens"]  # the caller's dict is untouched


def test_converse_tool_loop_is_two_calls(calls):
    instrument("bedrock")
    with replay(TOOLS) as server:
        client = runtime(server.base_url)
        for interaction in TOOLS:
            client.converse(modelId=model_of(interaction), **request_of(interaction))
    assert len(calls) == 2
    for call, interaction in zip(calls, TOOLS, strict=True):
        check_common(call, interaction)
        body = interaction.json
        assert call.token_usage.input_tokens == body["usage"]["inputTokens"]
        assert call.token_usage.output_tokens == body["usage"]["outputTokens"]
        assert call.response_metadata.finish_reason == body["stopReason"]
    assert [c.response_metadata.finish_reason for c in calls] == ["tool_use", "end_turn"]


def test_converse_stream(calls):
    instrument("bedrock")
    request = request_of(CONVERSE_STREAM)
    frames = event_stream_frames(CONVERSE_STREAM.body)
    payloads = {f.headers[":event-type"]: json.loads(f.payload) for f in frames}
    with replay([CONVERSE_STREAM]) as server:
        response = runtime(server.base_url).converse_stream(modelId=model_of(CONVERSE_STREAM), **request)
        events = list(response["stream"])
    assert [next(iter(e)) for e in events] == [f.headers[":event-type"] for f in frames]
    (call,) = calls
    check_common(call, CONVERSE_STREAM)
    metadata = payloads["metadata"]
    assert call.token_usage.to_dict() == {
        "input_tokens": metadata["usage"]["inputTokens"],
        "output_tokens": metadata["usage"]["outputTokens"],
        "total_tokens": metadata["usage"]["totalTokens"],
    }
    assert call.response_metadata.finish_reason == payloads["messageStop"]["stopReason"]
    assert call.provider_specific["latency_ms"] == metadata["metrics"]["latencyMs"]
    check_inference_config(call, request["inferenceConfig"], stream=True)
    assert call.streaming is True
    perf = call.performance_metrics
    assert 0 < perf.time_to_first_token_ms <= perf.total_duration_ms
    assert "partial" not in call.provider_specific
    check_cost(call, call.token_usage)


def test_converse_stream_left_early_is_partial(calls):
    instrument("bedrock")
    with replay([CONVERSE_STREAM]) as server:
        response = runtime(server.base_url).converse_stream(modelId="m", **request_of(CONVERSE_STREAM))
        for _ in response["stream"]:
            break
        assert len(calls) == 1
    (call,) = calls
    assert call.status == "ok" and call.provider_specific["partial"] is True
    assert call.token_usage is None  # the metadata event never came: unknown, not zero


def test_invoke_model_reads_headers_and_leaves_the_body(calls):
    instrument("bedrock")
    request = request_of(INVOKE)
    with replay([INVOKE]) as server:
        response = runtime(server.base_url).invoke_model(modelId=model_of(INVOKE), body=json.dumps(request))
        body = response["body"].read()  # the caller reads the whole body: nothing was consumed
    assert json.loads(body) == INVOKE.json
    (call,) = calls
    check_common(call, INVOKE)
    input_tokens = int(INVOKE.header("X-Amzn-Bedrock-Input-Token-Count"))
    output_tokens = int(INVOKE.header("X-Amzn-Bedrock-Output-Token-Count"))
    assert call.token_usage.to_dict() == {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }
    assert call.provider_specific["latency_ms"] == int(INVOKE.header("X-Amzn-Bedrock-Invocation-Latency"))
    params = call.request_parameters
    assert (params.max_tokens, params.temperature, params.top_p, params.stop_sequences) == (
        request["max_tokens"],
        request["temperature"],
        request["top_p"],
        request["stop_sequences"],
    )
    assert call.response_metadata.finish_reason is None  # only in the body, which is the caller's
    assert call.cost_metrics.pricing_status == "unpriced"  # claude-v2 is not in the catalog any more


def test_invoke_model_with_response_stream(calls):
    instrument("bedrock")
    request = request_of(INVOKE_STREAM)
    chunks = [
        json.loads(base64.b64decode(json.loads(f.payload)["bytes"])) for f in event_stream_frames(INVOKE_STREAM.body)
    ]
    with replay([INVOKE_STREAM]) as server:
        response = runtime(server.base_url).invoke_model_with_response_stream(
            modelId=model_of(INVOKE_STREAM), body=json.dumps(request)
        )
        received = [json.loads(event["chunk"]["bytes"]) for event in response["body"]]
    assert received == chunks
    (call,) = calls
    check_common(call, INVOKE_STREAM)
    start = chunks[0]["message"]
    delta = next(c for c in chunks if c["type"] == "message_delta")
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert call.token_usage.input_tokens == start["usage"]["input_tokens"] == metrics["inputTokenCount"]
    assert call.token_usage.output_tokens == delta["usage"]["output_tokens"] == metrics["outputTokenCount"]
    assert call.response_metadata.response_id == start["id"]
    assert call.response_metadata.finish_reason == delta["delta"]["stop_reason"]
    assert call.streaming is True and call.request_parameters.stream is True
    assert call.performance_metrics.time_to_first_token_ms is not None


def test_invalid_model_error(calls):
    instrument("bedrock")
    with replay([INVALID]) as server, pytest.raises(botocore.exceptions.ClientError) as caught:
        runtime(server.base_url).converse(modelId=model_of(INVALID), **request_of(INVALID))
    (call,) = calls
    assert call.status == "error" and call.token_usage is None
    assert call.error.type == type(caught.value).__name__ == "ValidationException"
    assert call.error.http_status == 400
    assert call.error.message == str(caught.value)
    assert INVALID.json["message"] in call.error.message
    assert call.provider_specific["error_type"] == "ValidationException"
    assert call.response_metadata.request_id == INVALID.header("x-amzn-RequestId")
    assert call.request_model == "does-not-exist"


def _server_error() -> Interaction:
    """A changed variant, made here: a 500 that standard retries retry (after ≤ 50 ms)."""
    return dataclasses.replace(
        INVALID,
        status=500,
        headers={**INVALID.headers, "x-amzn-ErrorType": ["InternalServerException:http://internal.amazon.com/"]},
        body=json.dumps({"message": "try again"}),
    )


def test_retried_call_counts_attempts(calls):
    instrument("bedrock")
    with replay([_server_error(), CONVERSE]) as server:
        runtime(server.base_url, max_attempts=3).converse(modelId=model_of(CONVERSE), **request_of(CONVERSE))
        assert len(server.requests) == 2
    (call,) = calls
    assert call.status == "ok" and call.attempt == 2
    assert call.token_usage.output_tokens == CONVERSE.json["usage"]["outputTokens"]


def test_other_services_and_operations_pass_through(calls):
    instrument("boto3")
    listing = dataclasses.replace(CONVERSE, body=json.dumps({"modelSummaries": []}))
    with replay([listing]) as server:
        control = boto3.client(
            "bedrock",
            region_name="us-east-1",
            endpoint_url=server.base_url,
            aws_access_key_id="x",
            aws_secret_access_key="y",
        )
        assert control.list_foundation_models()["modelSummaries"] == []
    assert calls == []


def test_arn_and_profile_model_ids(calls):
    instrument("bedrock")
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.titan-text-lite-v1"
    with replay([CONVERSE, CONVERSE]) as server:
        client = runtime(server.base_url)
        client.converse(modelId=arn, **request_of(CONVERSE))
        client.converse(modelId="eu.amazon.titan-text-lite-v1", **request_of(CONVERSE))
    assert [c.request_model for c in calls] == ["us.amazon.titan-text-lite-v1", "eu.amazon.titan-text-lite-v1"]


def test_wrap_one_client_only(calls):
    with replay([CONVERSE, CONVERSE]) as server:
        wrapped = wrap_bedrock(runtime(server.base_url))
        runtime(server.base_url).converse(modelId="amazon.titan-text-lite-v1", **request_of(CONVERSE))
        assert calls == [] and instrumented() == []
        wrapped.converse(modelId="amazon.titan-text-lite-v1", **request_of(CONVERSE))
    (call,) = calls
    check_common(call, CONVERSE)
    with pytest.raises(TypeError, match="bedrock-runtime"):
        wrap_bedrock(boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"))


def test_content_capture(calls):
    tokentrail.configure(sinks=["memory"], capture_content=True)
    instrument("bedrock")
    request = request_of(CONVERSE)
    with replay([CONVERSE]) as server:
        runtime(server.base_url).converse(
            modelId="amazon.titan-text-lite-v1", system=[{"text": "Be brief."}], **request
        )
    (call,) = calls
    assert call.content.messages == {"system": [{"text": "Be brief."}], "messages": request["messages"]}
    assert call.content.result == CONVERSE.json["output"]["message"]["content"][0]["text"]


def test_uninstrument_restores_botocore(calls):
    import botocore.client

    original = botocore.client.BaseClient._make_api_call
    instrument("bedrock")
    assert botocore.client.BaseClient._make_api_call is not original
    uninstrument("boto3")
    assert botocore.client.BaseClient._make_api_call is original


def test_error_after_retries_counts_attempts(calls):
    instrument("bedrock")
    with replay([_server_error(), _server_error()]) as server, pytest.raises(botocore.exceptions.ClientError):
        runtime(server.base_url, max_attempts=2).converse(modelId="amazon.titan-text-lite-v1", **request_of(CONVERSE))
    (call,) = calls
    assert call.status == "error" and call.attempt == 2
    assert call.error.type == "InternalServerException" and call.error.http_status == 500
