"""Stream states of the OpenAI plug-in: Chat Completions, legacy Completions and Responses.

`feed` runs once per chunk on the caller's thread, so it only keeps references (the last
usage block, the last chunk with an id, finish reasons, and the generated text only when it
will be needed); everything is parsed once, in `finish`.
"""

from __future__ import annotations

from typing import Any

from tokentrail.instrument.engine import Call
from tokentrail.providers import openai as openai_usage
from tokentrail.providers.openai_calls import response_facts

_RESPONSES_FINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


def _usage_only(chunk: Any) -> bool:
    """The extra chunk `include_usage` adds: usage and no choices (Azure's first chunk has neither)."""
    return chunk.usage is not None and not chunk.choices


class ChatStreamState:
    """Chat Completions (or legacy Completions) chunks: usage, the last chunk with an id,
    finish reasons per choice."""

    __slots__ = ("api", "collect", "finish_reasons", "hide", "last", "owner", "texts", "usage")

    def __init__(self, owner: Any, api: str, *, hide_usage: bool, collect: bool) -> None:
        self.owner = owner  # the plug-in: records headers, usage and metadata at the end
        self.api = api
        self.hide = _usage_only if hide_usage else None
        self.collect = collect
        self.usage: Any = None
        self.last: Any = None
        self.finish_reasons: dict[int, str] = {}
        self.texts: list[str] = []

    def feed(self, chunk: Any) -> None:
        usage = chunk.usage
        if usage is not None:
            self.usage = usage
        if chunk.id:
            self.last = chunk
        for choice in chunk.choices or ():
            reason = choice.finish_reason
            if reason is not None:
                self.finish_reasons[choice.index] = reason

    def is_content(self, chunk: Any) -> bool:
        for choice in chunk.choices or ():
            if self.api != openai_usage.CHAT:
                if choice.text:
                    return True
                continue
            delta = choice.delta
            if delta is not None and (delta.content or delta.tool_calls or getattr(delta, "refusal", None)):
                return True
        return False

    def finish(self, call: Call, *, partial: bool) -> None:
        tracker = call.tracker
        usage = self.owner.usage_of(self.usage, self.api)
        if usage is not None:
            tracker.usage = usage
        elif self.collect:
            tracker.set_usage(self.owner.estimate(call, "".join(self.texts)), estimated=True)
        facts = response_facts(self.last, self.api)
        reasons = ",".join(self.finish_reasons[i] for i in sorted(self.finish_reasons)) or None
        self.owner.record_facts(call, facts, finish_reason=reasons)
        self.owner.record_http(call, None)
        if self.collect:
            self.owner.record_content(call, "".join(self.texts))


class ChatTextStreamState(ChatStreamState):
    """`ChatStreamState` that also keeps the generated text (usage estimation, content capture)."""

    __slots__ = ()

    def feed(self, chunk: Any) -> None:
        usage = chunk.usage
        if usage is not None:
            self.usage = usage
        if chunk.id:
            self.last = chunk
        for choice in chunk.choices or ():
            reason = choice.finish_reason
            if reason is not None:
                self.finish_reasons[choice.index] = reason
            delta = choice.delta
            if delta is None:
                continue
            content = delta.content
            if content:
                self.texts.append(content)
            elif delta.tool_calls or delta.refusal:  # content and these do not share a chunk
                self._other(delta)

    def _other(self, delta: Any) -> None:
        if delta.refusal:
            self.texts.append(delta.refusal)
        for tool in delta.tool_calls or ():
            function = tool.function
            if function is not None:
                if function.name:
                    self.texts.append(function.name)
                if function.arguments:
                    self.texts.append(function.arguments)


class CompletionsTextStreamState(ChatStreamState):
    """Legacy Completions chunks (`choices[].text`), keeping the text."""

    __slots__ = ()

    def feed(self, chunk: Any) -> None:
        usage = chunk.usage
        if usage is not None:
            self.usage = usage
        if chunk.id:
            self.last = chunk
        for choice in chunk.choices or ():
            reason = choice.finish_reason
            if reason is not None:
                self.finish_reasons[choice.index] = reason
            if choice.text:
                self.texts.append(choice.text)


def chat_stream_state(owner: Any, api: str, *, hide_usage: bool, collect: bool) -> ChatStreamState:
    if not collect:
        return ChatStreamState(owner, api, hide_usage=hide_usage, collect=False)
    kind = ChatTextStreamState if api == openai_usage.CHAT else CompletionsTextStreamState
    return kind(owner, api, hide_usage=hide_usage, collect=True)


class ResponsesStreamState:
    """Responses API events: usage and status come with the terminal event."""

    __slots__ = ("collect", "created", "error", "final", "hide", "owner", "texts")

    def __init__(self, owner: Any, *, collect: bool) -> None:
        self.owner = owner
        self.hide = None
        self.collect = collect
        self.created: Any = None
        self.final: Any = None
        self.error: Any = None
        self.texts: list[str] = []

    def feed(self, event: Any) -> None:
        kind = event.type
        if kind in _RESPONSES_FINAL:
            self.final = event.response
        elif kind == "response.created":
            self.created = event.response
        elif kind == "error":
            self.error = event
        elif self.collect and kind == "response.output_text.delta":
            self.texts.append(event.delta)

    def is_content(self, event: Any) -> bool:
        kind = event.type
        return isinstance(kind, str) and kind.endswith(".delta")

    def finish(self, call: Call, *, partial: bool) -> None:
        tracker = call.tracker
        response = self.final if self.final is not None else self.created
        usage = None
        if self.final is not None:
            usage = self.owner.usage_of(getattr(self.final, "usage", None), openai_usage.RESPONSES)
        if usage is not None:
            tracker.usage = usage
        elif self.collect:
            tracker.set_usage(self.owner.estimate(call, "".join(self.texts)), estimated=True)
        self.owner.record_facts(call, response_facts(response, openai_usage.RESPONSES))
        self.owner.record_http(call, None)
        failure = getattr(self.final, "error", None) if self.final is not None else None
        if self.error is not None:
            tracker.set_error(str(getattr(self.error, "code", None) or "error"), getattr(self.error, "message", None))
        elif failure is not None and getattr(self.final, "status", None) == "failed":
            tracker.set_error(
                str(getattr(failure, "code", None) or "response.failed"), getattr(failure, "message", None)
            )
        if self.collect:
            self.owner.record_content(call, "".join(self.texts))


__all__ = [
    "ChatStreamState",
    "ChatTextStreamState",
    "CompletionsTextStreamState",
    "ResponsesStreamState",
    "chat_stream_state",
]
