"""Usage of AWS Bedrock runtime responses: Converse, ConverseStream, InvokeModel(+stream).

PROVIDERS.md A.7: Converse `inputTokens` EXCLUDES cache reads and writes, so the inclusive
input is `inputTokens + cacheReadInputTokens + cacheWriteInputTokens`. Live bodies repeat the
cache counts as `cache{Read,Write}InputTokenCount`: the documented names win, the `*Count`
ones are a fallback, never added. ConverseStream reports usage in its `metadata` event.
InvokeModel reports counts in the `x-amzn-bedrock-{input,output}-token-count` headers; a
Claude body follows the Anthropic rules (it has the cache counts the headers lack).
InvokeModelWithResponseStream chunks are JSON (base64 `bytes` on the wire); Claude events
follow the Anthropic stream rule and the last chunk carries `amazon-bedrock-invocationMetrics`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from tokentrail.core import TokenUsage, ValidationError
from tokentrail.providers import anthropic
from tokentrail.providers._access import first_reported, get, header_count, non_negative, reported

CONVERSE = "converse"
CONVERSE_STREAM = "converse_stream"
INVOKE_MODEL = "invoke_model"
INVOKE_MODEL_STREAM = "invoke_model_with_response_stream"

INPUT_HEADER = "x-amzn-bedrock-input-token-count"
OUTPUT_HEADER = "x-amzn-bedrock-output-token-count"
_METRICS = "amazon-bedrock-invocationMetrics"
_CONVERSE_KEYS = ("inputTokens", "outputTokens", "totalTokens", "cacheReadInputTokens", "cacheWriteInputTokens")


# ---- usage blocks -------------------------------------------------------------------------
def _bedrock_usage(block: Any, path: str, input_name: str, output_name: str, total_name: str) -> TokenUsage | None:
    uncached = non_negative(f"{path}.{input_name}", reported(get(block, input_name)))
    output = non_negative(f"{path}.{output_name}", reported(get(block, output_name)))
    total = non_negative(f"{path}.{total_name}", reported(get(block, total_name)))
    read = non_negative(
        f"{path}.cacheReadInputTokens", first_reported(block, "cacheReadInputTokens", "cacheReadInputTokenCount")
    )
    write = non_negative(
        f"{path}.cacheWriteInputTokens", first_reported(block, "cacheWriteInputTokens", "cacheWriteInputTokenCount")
    )
    ttl: dict[str, int] = {}
    details = get(block, "cacheDetails")
    if isinstance(details, list | tuple):
        for index, item in enumerate(details):
            name = get(item, "ttl")
            tokens = non_negative(f"{path}.cacheDetails[{index}].inputTokens", reported(get(item, "inputTokens")))
            if name in ("5m", "1h") and tokens is not None:
                ttl[name] = ttl.get(name, 0) + tokens
    if write is None and ttl:
        write = sum(ttl.values())  # the breakdown of writes, reported without its sum
    if uncached is None:
        input_tokens = read = write = None  # cache parts of an unreported total cannot be priced
    else:
        input_tokens = uncached + (read or 0) + (write or 0)
    extra: dict[str, int] = {}
    if write is not None and ttl:
        if sum(ttl.values()) > write:
            raise ValidationError(f"{path}.cacheDetails", f"TTL cache writes exceed cacheWriteInputTokens {write}")
        for name, tokens in ttl.items():
            if tokens:
                extra[f"cache_write_{name}_tokens"] = tokens
    usage = TokenUsage.build(
        input_tokens=input_tokens,
        output_tokens=output,
        total_tokens=None if input_tokens is not None and output is not None else total,
        cache_read_tokens=read,
        cache_write_tokens=write,
        details=extra or None,
    )
    return None if usage.is_empty else usage


def converse_usage(usage: Any) -> TokenUsage | None:
    """A Converse / ConverseStream `usage` block (also Nova's InvokeModel body `usage`)."""
    return _bedrock_usage(usage, "usage", "inputTokens", "outputTokens", "totalTokens")


def invocation_metrics_usage(metrics: Any) -> TokenUsage | None:
    """The `amazon-bedrock-invocationMetrics` of a response stream's last chunk."""
    return _bedrock_usage(metrics, _METRICS, "inputTokenCount", "outputTokenCount", "totalTokenCount")


def header_usage(headers: Any) -> TokenUsage | None:
    """InvokeModel's `x-amzn-bedrock-{input,output}-token-count` headers, any key case."""
    input_tokens = non_negative(INPUT_HEADER, header_count(headers, INPUT_HEADER))
    output_tokens = non_negative(OUTPUT_HEADER, header_count(headers, OUTPUT_HEADER))
    if input_tokens is None and output_tokens is None:
        return None
    return TokenUsage.build(input_tokens=input_tokens, output_tokens=output_tokens)


def _is_anthropic_usage(usage: Any) -> bool:
    return get(usage, "input_tokens") is not None or get(usage, "output_tokens") is not None


def _is_converse_usage(usage: Any) -> bool:
    return any(get(usage, key) is not None for key in _CONVERSE_KEYS)


def _reconcile(detailed: TokenUsage | None, metrics: TokenUsage | None) -> TokenUsage | None:
    """The model's own usage events when Bedrock's invocation metrics agree with them.

    The metrics are Bedrock's billing record; the events add the cache split, TTLs and
    reasoning. When they disagree, the metrics win. Bedrock's `inputTokenCount` may leave the
    cache out, so either the inclusive or the uncached input counts as agreement.
    """
    if metrics is None or detailed is None:
        return detailed or metrics
    same_output = metrics.output_tokens is None or metrics.output_tokens == detailed.output_tokens
    same_input = metrics.input_tokens is None or metrics.input_tokens in (
        detailed.input_tokens,
        detailed.uncached_input_tokens,
    )
    return detailed if same_output and same_input else metrics


# ---- streams ------------------------------------------------------------------------------
class ConverseStreamState:
    """ConverseStream events: boto3 dicts (`{"metadata": {"usage": ...}}`), the raw `metadata`
    frame payload, or `botocore.eventstream.EventStreamMessage` frames."""

    __slots__ = ("_usage",)

    def __init__(self) -> None:
        self._usage: Any = None

    def feed(self, event: Any) -> None:
        try:
            if event.__class__ is dict:
                metadata = event.get("metadata")
                if metadata is not None:
                    usage = get(metadata, "usage")
                    if usage is not None:
                        self._usage = usage
                elif "usage" in event and "type" not in event:
                    usage = event["usage"]  # a raw `metadata` frame's payload, without the wrapper
                    if _is_converse_usage(usage):
                        self._usage = usage
                return
            headers = getattr(event, "headers", None)
            if headers.__class__ is dict and headers.get(":event-type") == "metadata":
                payload = _json(getattr(event, "payload", None))
                usage = get(payload, "usage")
                if usage is not None:
                    self._usage = usage
        except Exception:  # a broken third-party object is not a usage event
            return

    def result(self) -> TokenUsage | None:
        return None if self._usage is None else converse_usage(self._usage)


class InvokeModelStreamState:
    """InvokeModelWithResponseStream events: boto3 `{"chunk": {"bytes": b"{json}"}}`, raw
    frame payloads `{"bytes": "<base64>"}`, decoded chunk payloads, or event-stream frames.

    Only chunks that can carry usage are decoded: Claude's `message_*` events, or other
    chunks whose JSON text contains `"usage"` or the invocation metrics key (escaped model
    text never does); text deltas are skipped by their prefix before any search.
    """

    __slots__ = ("_anthropic", "_converse", "_metrics")

    def __init__(self) -> None:
        self._anthropic = anthropic.MessageStreamState()
        self._converse: Any = None
        self._metrics: Any = None

    def feed(self, event: Any) -> None:
        try:
            if event.__class__ is dict:
                chunk = event.get("chunk")
                if chunk is not None:
                    self._feed_json(chunk.get("bytes") if chunk.__class__ is dict else get(chunk, "bytes"))
                    return
                data = event.get("bytes")
                if data is not None:
                    self._feed_base64(data)
                    return
                self._feed_payload(event)
                return
            headers = getattr(event, "headers", None)
            if headers.__class__ is dict:
                if headers.get(":event-type") == "chunk":
                    self._feed_base64(get(_json(getattr(event, "payload", None)), "bytes"))
                return
            self._anthropic.feed(event)  # e.g. SDK event objects of AnthropicBedrock
        except Exception:  # a broken third-party object is not a usage event
            return

    def _feed_base64(self, data: Any) -> None:
        if isinstance(data, str | bytes):
            try:
                self._feed_json(base64.b64decode(data, validate=True))
            except (binascii.Error, ValueError):
                return

    def _feed_json(self, data: Any) -> None:
        if data.__class__ is bytes or isinstance(data, bytearray):
            if data.startswith(b'{"type":"'):
                # Claude's events: only message_start/_delta/_stop carry usage or metrics
                if not data.startswith(b'{"type":"message_'):
                    return
            elif data.startswith(b'{"contentBlockDelta"') or (
                data.find(b'"usage"') < 0 and data.find(b'invocationMetrics"') < 0  # find: faster than `in`
            ):
                return
        elif isinstance(data, str):
            if '"usage"' not in data and 'invocationMetrics"' not in data:
                return
        else:
            return
        payload = _json(data)
        if payload.__class__ is dict:
            self._feed_payload(payload)

    def _feed_payload(self, payload: dict[str, Any]) -> None:
        metrics = payload.get(_METRICS)
        if metrics is not None:
            self._metrics = metrics
        kind = payload.get("type")
        if kind == "message_start" or kind == "message_delta":
            self._anthropic.feed(payload)
            return
        metadata = payload.get("metadata")
        if metadata is not None:  # Nova's chunks mirror the ConverseStream events
            usage = get(metadata, "usage")
            if usage is not None:
                self._converse = usage

    def result(self) -> TokenUsage | None:
        detailed = self._anthropic.result()
        if detailed is None and self._converse is not None:
            detailed = converse_usage(self._converse)
        metrics = None if self._metrics is None else invocation_metrics_usage(self._metrics)
        return _reconcile(detailed, metrics)


def _json(data: Any) -> Any:
    if isinstance(data, bytes | bytearray | str):
        try:
            return json.loads(data)
        except (ValueError, RecursionError):
            return None
    return None


# ---- entry point --------------------------------------------------------------------------
def extract(response: Any, api: str | None = None) -> TokenUsage | None:
    """Normalised usage of a Bedrock runtime response (boto3 dict or parsed body) or stream."""
    try:
        return _extract(response, api)
    except ValidationError:
        raise  # reported counts break the accounting invariants: never price them silently
    except Exception:  # malformed input of any other kind means "no usable usage"
        return None


def _extract_stream(events: list[Any] | tuple[Any, ...], api: str | None) -> TokenUsage | None:
    converse = ConverseStreamState() if api != INVOKE_MODEL_STREAM else None
    invoke = InvokeModelStreamState() if api != CONVERSE_STREAM else None
    for event in events:
        if converse is not None:
            converse.feed(event)
        if invoke is not None:
            invoke.feed(event)
    found = None if converse is None else converse.result()
    if found is None and invoke is not None:
        found = invoke.result()
    return found


def _from_body(body: Any) -> TokenUsage | None:
    """Usage from a parsed response body: Claude, Converse-shaped (Nova) or invocation metrics."""
    usage = get(body, "usage")
    if usage is not None:
        if _is_anthropic_usage(usage):
            return anthropic.extract(body)
        if _is_converse_usage(usage):
            return converse_usage(usage)
    metadata = get(body, "metadata")
    if metadata is not None and get(metadata, "usage") is not None:
        return converse_usage(get(metadata, "usage"))  # one ConverseStream `metadata` event
    metrics = get(body, _METRICS)
    if metrics is not None:
        return invocation_metrics_usage(metrics)
    return None


def _extract(response: Any, api: str | None) -> TokenUsage | None:
    if response is None or isinstance(response, str | int | float):
        return None
    if isinstance(response, bytes | bytearray):
        response = _json(response)
        if response is None:
            return None
    if isinstance(response, list | tuple):
        return _extract_stream(response, api)
    found = _from_body(response)
    if found is not None:
        return found
    stream = get(response, "stream")  # a ConverseStream response whose events were collected
    if isinstance(stream, list | tuple):
        return _extract_stream(stream, api or CONVERSE_STREAM)
    body = get(response, "body")
    if isinstance(body, list | tuple):
        return _extract_stream(body, api or INVOKE_MODEL_STREAM)
    if isinstance(body, bytes | bytearray | str):
        body = _json(body)  # a botocore StreamingBody is never read here: it is the caller's
    if isinstance(body, Mapping):
        found = _from_body(body)
        if found is not None:
            return found
    headers = get(response, "ResponseMetadata", "HTTPHeaders")
    if headers is None:
        headers = get(response, "HTTPHeaders")
    if headers is None:
        headers = get(response, "headers")
    return header_usage(headers)


__all__ = [
    "CONVERSE",
    "CONVERSE_STREAM",
    "INVOKE_MODEL",
    "INVOKE_MODEL_STREAM",
    "ConverseStreamState",
    "InvokeModelStreamState",
    "converse_usage",
    "extract",
    "header_usage",
    "invocation_metrics_usage",
]
