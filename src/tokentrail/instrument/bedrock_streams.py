"""Stream states of the Bedrock plug-in: ConverseStream events and
InvokeModelWithResponseStream chunks, as boto3 hands them to the caller (dicts).

`feed` runs once per event: a ConverseStream content delta costs one key test; an
InvokeModel chunk is decoded only when it can carry usage or a stop reason
(`providers.bedrock.InvokeModelStreamState` skips text deltas by their first bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokentrail.instrument.engine import Call
from tokentrail.providers._access import get
from tokentrail.providers.bedrock import InvokeModelStreamState, converse_usage

# first bytes of InvokeModel stream chunks that carry no generated output (time to first token)
_NOT_OUTPUT = (
    b'{"type":"message_start"',
    b'{"type":"content_block_start"',
    b'{"type":"ping"',
    b'{"messageStart"',
    b'{"contentBlockStart"',
)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class ConverseStreamState:
    """ConverseStream events: `metadata` (usage, metrics), `messageStop` (stop reason)."""

    __slots__ = ("collect", "hide", "metadata", "owner", "stop", "texts")

    def __init__(self, owner: Any, *, collect: bool) -> None:
        self.owner = owner  # the plug-in: records what the headers said and content
        self.hide: Callable[[Any], bool] | None = None
        self.collect = collect
        self.metadata: Any = None
        self.stop: Any = None
        self.texts: list[str] = []

    def feed(self, event: Any) -> None:
        delta = event.get("contentBlockDelta")
        if delta is not None:
            if self.collect:
                text = get(delta, "delta", "text")
                if isinstance(text, str):
                    self.texts.append(text)
            return
        metadata = event.get("metadata")
        if metadata is not None:
            self.metadata = metadata
        elif "messageStop" in event:
            self.stop = event["messageStop"]

    def is_content(self, event: Any) -> bool:
        return "contentBlockDelta" in event

    def finish(self, call: Call, *, partial: bool) -> None:
        usage = get(self.metadata, "usage")
        found = converse_usage(usage) if usage is not None else None
        if found is not None:
            call.tracker.usage = found
        self.owner.record_outcome(
            call,
            finish_reason=_text(get(self.stop, "stopReason")),
            latency_ms=get(self.metadata, "metrics", "latencyMs"),
            service_tier=_text(get(self.metadata, "serviceTier", "type")),
        )
        if self.collect:
            self.owner.record_content(call, "".join(self.texts))


class InvokeStreamState(InvokeModelStreamState):
    """InvokeModelWithResponseStream chunks (`{"chunk": {"bytes": b"{json}"}}`): usage as
    `providers.bedrock` reads it, plus Claude's message id and stop reason, or the stop
    reason other models put beside their invocation metrics."""

    __slots__ = ("hide", "message", "owner", "stop")

    def __init__(self, owner: Any) -> None:
        super().__init__()
        self.owner = owner
        self.hide: Callable[[Any], bool] | None = None
        self.message: Any = None
        self.stop: str | None = None

    def _feed_payload(self, payload: dict[str, Any]) -> None:
        super()._feed_payload(payload)
        kind = payload.get("type")
        if kind == "message_delta":
            self.stop = _text(get(payload, "delta", "stop_reason")) or self.stop
        elif kind == "message_start":
            self.message = payload.get("message")
        else:  # Llama `stop_reason`, Titan `completionReason`, Nova `messageStop.stopReason`
            self.stop = (
                _text(payload.get("stop_reason"))
                or _text(payload.get("completionReason"))
                or _text(get(payload, "messageStop", "stopReason"))
                or self.stop
            )

    def is_content(self, event: Any) -> bool:
        data = get(event, "chunk", "bytes")
        return isinstance(data, bytes | bytearray) and not data.startswith(_NOT_OUTPUT)

    def finish(self, call: Call, *, partial: bool) -> None:
        self._anthropic.set_model(get(self.message, "model"))
        usage = self.result()
        if usage is not None:
            call.tracker.usage = usage
        # Claude's own model name (`claude-...`) is not recorded as the billed model: on Bedrock
        # the `modelId` (with its `us.`/`eu.` profile) is what is billed
        self.owner.record_outcome(call, finish_reason=self.stop, response_id=_text(get(self.message, "id")))


__all__ = ["ConverseStreamState", "InvokeStreamState"]
