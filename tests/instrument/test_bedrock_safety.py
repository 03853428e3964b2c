"""SPEC §8 for the boto3 plug-in: whatever goes wrong inside it, and whatever the service
sends, the caller gets exactly botocore's result (the same dict, with the same stream class)
or botocore's own exception. The guard re-raises under tests, so these tests switch it off."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import boto3
import botocore.eventstream
import botocore.exceptions
import pytest

import tokentrail
from tokentrail.instrument import instrument
from tokentrail.instrument.bedrock_sdk import BedrockPlugin
from tokentrail.instrument.bedrock_streams import ConverseStreamState
from tokentrail.tracking import set_reraise

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "providers"))
from _cassette_replay import BOTOCORE, Interaction, event_stream_frames, load, replay

(CONVERSE,) = load(BOTOCORE / "test_converse_with_content.yaml")
(CONVERSE_STREAM,) = load(BOTOCORE / "test_converse_stream_with_content.yaml")
(INVALID,) = load(BOTOCORE / "test_converse_with_invalid_model.yaml")
REQUEST = json.loads(CONVERSE.request_body)


@pytest.fixture(autouse=True)
def _swallow():
    set_reraise(False)


def call(interaction: Interaction, operation: str = "converse") -> Any:
    with replay([interaction]) as server:
        client = boto3.client(
            "bedrock-runtime",
            region_name="us-east-1",
            endpoint_url=server.base_url,
            aws_access_key_id="x",
            aws_secret_access_key="y",
        )
        response = getattr(client, operation)(modelId="amazon.titan-text-lite-v1", **REQUEST)
        if operation == "converse_stream":
            response["events"] = list(response["stream"])
        return response


def test_failing_response_hook_returns_botocore_result(monkeypatch, calls):
    seen: list = []

    def broken_end(self, call, result):
        seen.append(result)
        raise RuntimeError("bug in a plug-in")

    monkeypatch.setattr(BedrockPlugin, "end", broken_end)
    instrument("bedrock")
    before = tokentrail.stats().internal_errors
    response = call(CONVERSE)
    assert response is seen[0]
    assert response["usage"] == CONVERSE.json["usage"]
    assert tokentrail.stats().internal_errors == before + 1
    assert len(calls) == 1


def test_tracked_stream_keeps_its_class(calls):
    instrument("bedrock")
    with replay([CONVERSE_STREAM]) as server:
        client = boto3.client(
            "bedrock-runtime", region_name="us-east-1", endpoint_url=server.base_url,
            aws_access_key_id="x", aws_secret_access_key="y",
        )  # fmt: skip
        response = client.converse_stream(modelId="m", **REQUEST)
        stream = response["stream"]
        assert isinstance(stream, botocore.eventstream.EventStream)
        first = next(iter(stream))
        stream.close()  # EventStream.close(): the SDK's, then the record (left early)
    assert first == {"messageStart": {"role": "assistant"}}
    (record,) = calls
    assert record.provider_specific["partial"] is True


def test_failing_request_hook_leaves_the_call_alone(monkeypatch, calls):
    monkeypatch.setattr(BedrockPlugin, "begin", lambda *a, **k: 1 / 0)
    instrument("bedrock")
    assert call(CONVERSE)["stopReason"] == CONVERSE.json["stopReason"]
    assert calls == []


def test_failing_error_hook_keeps_botocore_exception(monkeypatch, calls):
    monkeypatch.setattr(BedrockPlugin, "fail", lambda *a, **k: 1 / 0)
    instrument("bedrock")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(INVALID)
    assert type(caught.value).__name__ == "ValidationException"
    assert calls[0].status == "error"


def test_failing_stream_hooks_pass_every_event(monkeypatch, calls):
    def broken(self, *args, **kwargs):
        raise AttributeError("bug")

    monkeypatch.setattr(ConverseStreamState, "feed", broken)
    monkeypatch.setattr(ConverseStreamState, "finish", broken)
    instrument("bedrock")
    events = call(CONVERSE_STREAM, "converse_stream")["events"]
    assert [next(iter(e)) for e in events] == [
        f.headers[":event-type"] for f in event_stream_frames(CONVERSE_STREAM.body)
    ]
    assert len(calls) == 1


def _body(change) -> Interaction:
    body = json.loads(CONVERSE.body)
    change(body)
    return dataclasses.replace(CONVERSE, body=json.dumps(body))


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["usage"].update(inputTokens=-4),
        lambda b: b["usage"].update(cacheDetails=[{"ttl": "1h", "inputTokens": 500}], cacheWriteInputTokens=3),
        lambda b: b.update(usage="none", stopReason=12),
        lambda b: b.pop("usage"),
        lambda b: b.update(metrics={"latencyMs": "slow"}),
    ],
)
def test_malformed_bodies_reach_the_caller_untouched(change, calls):
    interaction = _body(change)
    try:
        expected: Any = call(interaction)
    except Exception as exc:  # botocore's own verdict on the body
        expected = type(exc)
    instrument("bedrock")
    if isinstance(expected, type):
        with pytest.raises(expected):
            call(interaction)
        return
    got = call(interaction)
    expected["ResponseMetadata"].pop("HTTPHeaders")  # the date and port differ between replays
    got["ResponseMetadata"].pop("HTTPHeaders")
    assert got == expected
    (record,) = calls
    assert record.status == "ok"
    if record.token_usage is not None:  # only well-formed counts are kept
        assert record.token_usage.input_tokens >= (record.token_usage.cache_write_tokens or 0)
