"""The stream state of the Anthropic plug-in (`messages.create(stream=True)`, the
`messages.stream()` helper, Claude through `AnthropicBedrock` / `AnthropicVertex`).

`feed` runs once per event on the caller's thread: content deltas cost one attribute read and
two comparisons; only `message_start` and `message_delta` (usage, stop reason) are looked
into. Usage follows `providers.anthropic` (cumulative deltas overwrite, never add).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokentrail.core import TokenUsage
from tokentrail.instrument.engine import Call
from tokentrail.providers.anthropic import MessageStreamState
from tokentrail.providers.anthropic_calls import message_facts


class MessagesStreamState:
    """Raw Messages stream events: usage, the `message_start` message, the last
    `message_delta`, and the text only when content capture needs it."""

    __slots__ = ("collect", "delta", "hide", "owner", "start", "texts", "usage")

    def __init__(self, owner: Any, *, collect: bool) -> None:
        self.owner = owner  # the plug-in: records headers and metadata at the end
        self.hide: Callable[[Any], bool] | None = None
        self.collect = collect
        self.usage = MessageStreamState()
        self.start: Any = None
        self.delta: Any = None
        self.texts: list[str] = []

    def feed(self, event: Any) -> None:
        kind = event.type
        if kind == "content_block_delta":
            if self.collect:
                text = getattr(event.delta, "text", None)
                if isinstance(text, str):
                    self.texts.append(text)
        elif kind == "message_delta":
            self.delta = event
            self.usage.feed(event)
        elif kind == "message_start":
            self.start = event.message
            self.usage.feed(event)

    def is_content(self, event: Any) -> bool:
        return event.type == "content_block_delta"  # thinking, text or tool input: output has begun

    def finish(self, call: Call, *, partial: bool) -> None:
        facts = message_facts(self.start, self.delta)
        self.usage.set_model(facts.model)
        usage = self.usage.result()
        if usage is not None and self.delta is None:
            # left before any message_delta: `message_start` counts the input for real but
            # its output_tokens is a placeholder, so the output is unknown
            usage = TokenUsage.build(
                input_tokens=usage.input_tokens,
                cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
                details=usage.details,
            )
        if usage is not None:
            call.tracker.usage = usage
        self.owner.record_facts(call, facts)
        self.owner.record_http(call)
        if self.collect:
            self.owner.record_content(call, "".join(self.texts))


__all__ = ["MessagesStreamState"]
