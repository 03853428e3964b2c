"""AWS Bedrock usage (PROVIDERS.md A.7): recorded responses through botocore, documented cases."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest
from _cassette_replay import BOTOCORE, LANGCHAIN, Interaction, event_stream_frames, load, replay
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokentrail.core import TokenUsage, ValidationError
from tokentrail.providers import anthropic, bedrock, extract_usage

CONVERSE = [
    BOTOCORE / "test_converse_with_content.yaml",
    BOTOCORE / "test_converse_tool_call_with_content.yaml",
    LANGCHAIN / "test_us_amazon_nova_lite_v1_0_bedrock_llm_call.yaml",
]
CONVERSE_STREAM = BOTOCORE / "test_converse_stream_with_content.yaml"
INVOKE = BOTOCORE / "test_invoke_model_with_content[anthropic.claude].yaml"
INVOKE_STREAM = BOTOCORE / "test_invoke_model_with_response_stream_with_content[anthropic.claude].yaml"
INVALID_MODEL = BOTOCORE / "test_converse_with_invalid_model.yaml"


def converse_rule(usage: dict[str, Any]) -> int:
    """A.7: the inclusive input of a recorded Converse usage block, from its own fields."""
    return usage["inputTokens"] + usage.get("cacheReadInputTokens", 0) + usage.get("cacheWriteInputTokens", 0)


def boto3_response(interaction: Interaction) -> dict[str, Any]:
    """The shape boto3 returns for InvokeModel, with the body already read by the caller."""
    headers = {key.lower(): values[0] for key, values in interaction.headers.items()}
    return {
        "ResponseMetadata": {"HTTPStatusCode": interaction.status, "HTTPHeaders": headers},
        "contentType": "application/json",
        "body": interaction.body.encode(),
    }


# ---- recorded responses ---------------------------------------------------------------------
@pytest.mark.parametrize("interaction", [i for path in CONVERSE for i in load(path)], ids=lambda i: i.uri[-40:])
def test_recorded_converse_follows_the_rule(interaction: Interaction) -> None:
    body = interaction.json
    usage = bedrock.extract(body)
    assert usage is not None
    assert usage.input_tokens == converse_rule(body["usage"])
    assert usage.output_tokens == body["usage"]["outputTokens"]
    assert usage.total_tokens == body["usage"]["totalTokens"]
    assert extract_usage(body, "bedrock", "converse") == usage
    assert extract_usage(body, "aws_bedrock") == usage


def test_recorded_converse_stream_frames() -> None:
    frames = event_stream_frames(load(CONVERSE_STREAM)[0].body)
    assert [frame.headers[":event-type"] for frame in frames][-1] == "metadata"
    recorded = json.loads(frames[-1].payload)["usage"]
    usage = bedrock.extract(frames, "converse_stream")
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (
        converse_rule(recorded),
        recorded["outputTokens"],
        recorded["totalTokens"],
    )
    # the frames' payloads as boto3 yields them ({event type: payload}) and as bare payloads
    events = [{frame.headers[":event-type"]: json.loads(frame.payload)} for frame in frames]
    assert bedrock.extract(events) == usage
    assert bedrock.extract([json.loads(frame.payload) for frame in frames], "converse_stream") == usage
    assert extract_usage(events, "aws-bedrock") == usage


def test_recorded_invoke_model_headers_and_claude_body() -> None:
    interaction = load(INVOKE)[0]
    assert interaction.header("X-Amzn-Bedrock-Input-Token-Count") == "14"
    from_headers = bedrock.extract({"ResponseMetadata": {"HTTPHeaders": interaction.headers}}, "invoke_model")
    assert (from_headers.input_tokens, from_headers.output_tokens) == (
        int(interaction.header("x-amzn-bedrock-input-token-count")),
        int(interaction.header("x-amzn-bedrock-output-token-count")),
    )
    from_body = bedrock.extract(boto3_response(interaction), "invoke_model")
    assert from_body == anthropic.extract(interaction.json) == from_headers  # Claude body, Anthropic rules
    assert bedrock.extract(interaction.json) == from_body


def test_recorded_invoke_stream_frames() -> None:
    frames = event_stream_frames(load(INVOKE_STREAM)[0].body)
    payloads = [json.loads(base64.b64decode(json.loads(frame.payload)["bytes"])) for frame in frames]
    metrics = payloads[-1]["amazon-bedrock-invocationMetrics"]
    usage = bedrock.extract(frames, "invoke_model_with_response_stream")
    assert (usage.input_tokens, usage.output_tokens) == (metrics["inputTokenCount"], metrics["outputTokenCount"])
    assert usage == anthropic.extract(payloads)  # the Claude events agree with Bedrock's metrics
    # raw frame payloads ({"bytes": base64}), boto3 chunks ({"chunk": {"bytes": json}}), decoded payloads
    assert bedrock.extract([json.loads(frame.payload) for frame in frames]) == usage
    assert bedrock.extract([{"chunk": {"bytes": json.dumps(p).encode()}} for p in payloads]) == usage
    assert bedrock.extract(payloads, "invoke_model_with_response_stream") == usage


def test_recorded_error_has_no_usage() -> None:
    interaction = load(INVALID_MODEL)[0]
    assert interaction.status == 400
    assert bedrock.extract(interaction.json) is None
    assert bedrock.extract({"ResponseMetadata": {"HTTPHeaders": interaction.headers}, "body": interaction.body}) is None


# ---- boto3 over loopback --------------------------------------------------------------------
@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")


def runtime(base_url: str) -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=base_url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


MESSAGES = [{"role": "user", "content": [{"text": "Say this is a test"}]}]


@pytest.mark.usefixtures("aws_env")
def test_boto3_converse_replayed() -> None:
    interactions = load(CONVERSE[1])
    with replay(interactions) as server:
        client = runtime(server.base_url)
        first = client.converse(modelId="amazon.nova-micro-v1:0", messages=MESSAGES)
        second = client.converse(modelId="amazon.nova-micro-v1:0", messages=MESSAGES)
    assert server.requests[0][1].endswith("/converse")
    assert bedrock.extract(first) == bedrock.extract(interactions[0].json)
    assert bedrock.extract(second) == bedrock.extract(interactions[1].json)
    assert bedrock.extract(first).input_tokens == 415


@pytest.mark.usefixtures("aws_env")
def test_boto3_converse_stream_replayed() -> None:
    interactions = load(CONVERSE_STREAM)
    state = bedrock.ConverseStreamState()
    with replay(interactions) as server:
        response = runtime(server.base_url).converse_stream(modelId="amazon.titan-text-lite-v1", messages=MESSAGES)
        events = []
        for event in response["stream"]:
            events.append(event)
            state.feed(event)
    assert "metadata" in events[-1]
    assert state.result() == bedrock.extract(event_stream_frames(interactions[0].body))
    assert bedrock.extract({**response, "stream": events}) == state.result()


@pytest.mark.usefixtures("aws_env")
def test_boto3_invoke_model_replayed() -> None:
    interactions = load(INVOKE)
    with replay(interactions) as server:
        response = runtime(server.base_url).invoke_model(modelId="anthropic.claude-v2", body=b"{}")
        from_headers = bedrock.extract(response, "invoke_model")  # the body stream is left unread
        body = response["body"].read()
    assert json.loads(body)["usage"]["input_tokens"] == from_headers.input_tokens == 14
    assert bedrock.extract({**response, "body": body}, "invoke_model") == from_headers


@pytest.mark.usefixtures("aws_env")
def test_boto3_invoke_model_stream_replayed() -> None:
    interactions = load(INVOKE_STREAM)
    state = bedrock.InvokeModelStreamState()
    with replay(interactions) as server:
        response = runtime(server.base_url).invoke_model_with_response_stream(modelId="anthropic.claude-v2", body=b"{}")
        events = list(response["body"])
    for event in events:
        state.feed(event)
    assert isinstance(events[0]["chunk"]["bytes"], bytes)
    assert state.result() == bedrock.extract(event_stream_frames(interactions[0].body))
    assert bedrock.extract(events) == state.result()


@pytest.mark.usefixtures("aws_env")
def test_boto3_invalid_model_replayed() -> None:
    with replay(load(INVALID_MODEL)) as server, pytest.raises(ClientError) as caught:
        runtime(server.base_url).converse(modelId="does-not-exist", messages=MESSAGES)
    assert bedrock.extract(caught.value.response) is None


# ---- documented cases -----------------------------------------------------------------------
def test_cache_counts_are_added_once_despite_the_count_duplicates() -> None:
    body = {
        "usage": {
            "inputTokens": 3,
            "outputTokens": 61,
            "totalTokens": 2435,
            "cacheReadInputTokens": 2074,
            "cacheWriteInputTokens": 297,
            "cacheReadInputTokenCount": 2074,
            "cacheWriteInputTokenCount": 297,
        }
    }
    usage = bedrock.extract(body)
    assert usage == TokenUsage(
        input_tokens=3 + 2074 + 297, output_tokens=61, total_tokens=2435, cache_read_tokens=2074, cache_write_tokens=297
    )


def test_count_fields_are_a_fallback_and_cache_details_give_the_ttl() -> None:
    # a live body (tensorzero/tensorzero#5688) with only the *Count names beside cacheDetails
    body = {
        "usage": {
            "inputTokens": 18,
            "outputTokens": 386,
            "totalTokens": 7906,
            "cacheReadInputTokenCount": 0,
            "cacheWriteInputTokenCount": 7502,
            "cacheDetails": [{"inputTokens": 7502, "ttl": "5m"}],
        }
    }
    usage = bedrock.extract(body)
    assert (usage.input_tokens, usage.cache_write_tokens, usage.total_tokens) == (7520, 7502, 7906)
    assert usage.details == {"cache_write_5m_tokens": 7502}


def test_converse_stream_metadata_event_with_cache() -> None:
    events = [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"text": "Hi"}, "contentBlockIndex": 0}},
        {"messageStop": {"stopReason": "end_turn"}},
        {
            "metadata": {
                "usage": {
                    "inputTokens": 3,
                    "outputTokens": 61,
                    "totalTokens": 2435,
                    "cacheReadInputTokens": 2074,
                    "cacheWriteInputTokens": 297,
                },
                "metrics": {"latencyMs": 400},
            }
        },
    ]
    usage = bedrock.extract(events, "converse_stream")
    assert (usage.input_tokens, usage.cache_read_tokens, usage.total_tokens) == (2374, 2074, 2435)


@pytest.mark.parametrize(
    "headers",
    [
        {"x-amzn-bedrock-input-token-count": "14", "x-amzn-bedrock-output-token-count": "10"},
        {"X-Amzn-Bedrock-Input-Token-Count": "14", "X-Amzn-Bedrock-Output-Token-Count": "10"},
        {"X-AMZN-BEDROCK-INPUT-TOKEN-COUNT": ["14"], "x-Amzn-Bedrock-Output-Token-Count": [" 10 "]},
    ],
)
def test_invoke_model_headers_in_any_case(headers: dict[str, Any]) -> None:
    response = {"ResponseMetadata": {"HTTPHeaders": headers}, "body": object()}  # an unread StreamingBody
    assert bedrock.extract(response, "invoke_model") == TokenUsage(input_tokens=14, output_tokens=10, total_tokens=24)


def test_claude_invoke_body_uses_the_anthropic_cache_rule() -> None:
    body = {
        "type": "message",
        "model": "claude-sonnet-4-5",
        "content": [],
        "usage": {
            "input_tokens": 3,
            "cache_creation_input_tokens": 418,
            "cache_read_input_tokens": 1111,
            "output_tokens": 50,
        },
    }
    response = {
        "ResponseMetadata": {
            "HTTPHeaders": {"x-amzn-bedrock-input-token-count": "3", "x-amzn-bedrock-output-token-count": "50"}
        },
        "body": json.dumps(body),
    }
    usage = bedrock.extract(response, "invoke_model")
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (1532, 1111, 418)


def test_nova_invoke_body_uses_the_converse_rule() -> None:
    body = {
        "output": {},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 5, "outputTokens": 7, "cacheReadInputTokenCount": 100, "cacheWriteInputTokenCount": 0},
    }
    assert bedrock.extract({"body": json.dumps(body).encode()}) == TokenUsage(
        input_tokens=105, output_tokens=7, total_tokens=112, cache_read_tokens=100, cache_write_tokens=0
    )


def claude_chunks(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    payloads = [
        {
            "type": "message_start",
            "message": {
                "model": "claude-sonnet-4-5",
                "usage": {
                    "input_tokens": 3,
                    "cache_read_input_tokens": 1111,
                    "cache_creation_input_tokens": 0,
                    "output_tokens": 1,
                },
            },
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 'Hi "usage"'}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 12}},
        {"type": "message_stop", "amazon-bedrock-invocationMetrics": metrics},
    ]
    return [{"chunk": {"bytes": json.dumps(p, separators=(",", ":")).encode()}} for p in payloads]


def test_invoke_stream_keeps_claude_detail_when_the_metrics_agree() -> None:
    # Bedrock's inputTokenCount may leave the cache out: the uncached count also agrees
    usage = bedrock.extract(claude_chunks({"inputTokenCount": 3, "outputTokenCount": 12}))
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (1114, 1111, 12)


def test_invoke_stream_metrics_win_when_they_disagree() -> None:
    usage = bedrock.extract(
        claude_chunks({"inputTokenCount": 3, "outputTokenCount": 30, "cacheReadInputTokenCount": 1111})
    )
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (1114, 1111, 30)


def test_invoke_stream_of_another_model_uses_the_metrics() -> None:
    chunks = [
        {"chunk": {"bytes": json.dumps(p).encode()}}
        for p in (
            {"outputText": "Hello", "index": 0, "totalOutputTextTokenCount": None},
            {
                "outputText": "!",
                "index": 0,
                "completionReason": "FINISH",
                "amazon-bedrock-invocationMetrics": {"inputTokenCount": 8, "outputTokenCount": 2},
            },
        )
    ]
    assert bedrock.extract(chunks, "invoke_model_with_response_stream") == TokenUsage(
        input_tokens=8, output_tokens=2, total_tokens=10
    )


# ---- invariants and malformed input ---------------------------------------------------------
@pytest.mark.parametrize(
    ("response", "field"),
    [
        ({"usage": {"inputTokens": -1, "outputTokens": 2}}, "inputTokens"),
        (
            {
                "usage": {
                    "inputTokens": 1,
                    "outputTokens": 2,
                    "cacheWriteInputTokens": 5,
                    "cacheDetails": [{"ttl": "1h", "inputTokens": 9}],
                }
            },
            "cacheDetails",
        ),
        ({"ResponseMetadata": {"HTTPHeaders": {"x-amzn-bedrock-input-token-count": "-4"}}}, "input-token-count"),
    ],
)
def test_counts_that_break_an_invariant_are_rejected(response: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        bedrock.extract(response)
    assert field in caught.value.field


@pytest.mark.parametrize(
    "response",
    [
        None,
        "",
        b"not json",
        7,
        {},
        [],
        [None, 1, {"metadata": 3}, {"chunk": {"bytes": "!!"}}],
        {"usage": None},
        {"usage": {"inputTokens": "8"}},
        {"body": b"\xff"},
        {"body": "[1, 2"},
        {"stream": object()},
        {"ResponseMetadata": {"HTTPHeaders": {"x-amzn-bedrock-input-token-count": "abc"}}},
        {"ResponseMetadata": {"HTTPHeaders": {"x-amzn-bedrock-input-token-count": "1" * 5000}}},
        [{"bytes": "not base64!"}, {"chunk": {"bytes": b'{"type":"message_start"'}}],
        {"message": "The provided model identifier is invalid."},
    ],
)
def test_malformed_input_gives_none(response: Any) -> None:
    assert bedrock.extract(response) is None


# ---- property: never anything but None, a TokenUsage or a ValidationError ---------------------
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=5)
    | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
COUNT = st.none() | st.integers(-3, 5000) | st.floats(-1, 5000) | st.text(max_size=3)
USAGE = st.fixed_dictionaries(
    {},
    optional={
        "inputTokens": COUNT,
        "outputTokens": COUNT,
        "totalTokens": COUNT,
        "cacheReadInputTokens": COUNT,
        "cacheWriteInputTokens": COUNT,
        "cacheReadInputTokenCount": COUNT,
        "cacheWriteInputTokenCount": COUNT,
        "cacheDetails": st.lists(
            st.fixed_dictionaries({}, optional={"ttl": st.sampled_from(["5m", "1h", "x"]), "inputTokens": COUNT}),
            max_size=2,
        ),
    },
)
HEADERS = st.dictionaries(
    st.sampled_from(["x-amzn-bedrock-input-token-count", "X-Amzn-Bedrock-Output-Token-Count", "other"]),
    st.one_of(st.text(max_size=6), st.integers(-2, 99).map(str), st.lists(st.text(max_size=3), max_size=2)),
)
SHAPED = st.one_of(
    USAGE.map(lambda u: {"usage": u}),
    st.lists(st.one_of(USAGE.map(lambda u: {"metadata": {"usage": u}}), JSON), max_size=4),
    HEADERS.map(lambda h: {"ResponseMetadata": {"HTTPHeaders": h}}),
    st.lists(JSON.map(lambda j: {"chunk": {"bytes": json.dumps(j, default=repr).encode()}}), max_size=3),
    JSON,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    SHAPED, st.sampled_from([None, "converse", "converse_stream", "invoke_model", "invoke_model_with_response_stream"])
)
def test_any_input_gives_none_a_usage_or_a_validation_error(response: Any, api: str | None) -> None:
    try:
        result = extract_usage(response, "bedrock", api)
    except ValidationError:
        return
    if result is not None:
        assert isinstance(result, TokenUsage)
        assert not result.is_empty  # "nothing reported" is None, never zeros


class Broken:
    """A third-party object whose every attribute read fails."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"broken {name}")


def test_feeding_a_broken_object_neither_raises_nor_counts() -> None:
    for state in (bedrock.ConverseStreamState(), bedrock.InvokeModelStreamState()):
        state.feed(Broken())
        state.feed({"chunk": Broken()})
        assert state.result() is None
    assert bedrock.extract(Broken()) is None
