"""Usage of OpenAI SDK objects on the hot path.

`providers.openai` holds the rules (and handles every shape: JSON, other SDK versions,
DeepSeek/Mistral/xAI variants). Reading an SDK usage object through it costs ~30 generic
look-ups per call, so for the exact shapes the installed SDK declares (`CompletionUsage`,
`ResponseUsage` with their detail objects, integer counts, no extra fields) this module
reads the fields directly and builds the same `TokenUsage`; anything else goes to the
generic rules. tests/instrument/test_openai_usage_fast.py checks both give equal results.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from tokentrail.core import TokenUsage, ValidationError
from tokentrail.providers import openai as wire

_MISS: Any = object()


def _count(value: Any) -> Any:
    """An int >= 0 or None as it is; anything else (negative, float, text) is a miss."""
    if value is None or (value.__class__ is int and value >= 0):
        return value
    return _MISS


def _plain_fields(obj: Any, cls: Any) -> dict[str, Any] | None:
    if obj.__class__ is not cls or obj.__pydantic_extra__:
        return None
    return obj.__dict__  # type: ignore[no-any-return]


class FastUsage:
    """The installed SDK's usage classes, resolved once."""

    def __init__(self) -> None:
        self.completion: type | None = None
        self.prompt_details: type | None = None
        self.completion_details: type | None = None
        self.response: type | None = None
        self.input_details: type | None = None
        self.output_details: type | None = None
        try:
            usage = importlib.import_module("openai.types.completion_usage")
            self.completion = usage.CompletionUsage
            self.prompt_details = usage.PromptTokensDetails
            self.completion_details = usage.CompletionTokensDetails
            responses = importlib.import_module("openai.types.responses.response_usage")
            self.response = responses.ResponseUsage
            self.input_details = responses.InputTokensDetails
            self.output_details = responses.OutputTokensDetails
        except (ImportError, AttributeError):
            pass  # another SDK version: the generic rules do all the work

    def chat(self, usage: Any) -> Any:
        """`TokenUsage` of a `CompletionUsage`, or `_MISS` for anything but the plain shape."""
        fields = _plain_fields(usage, self.completion)
        if fields is None:
            return _MISS
        prompt = _count(fields.get("prompt_tokens"))
        completion = _count(fields.get("completion_tokens"))
        total = _count(fields.get("total_tokens"))
        if prompt is _MISS or completion is _MISS or total is _MISS or prompt is None or completion is None:
            return _MISS
        details: dict[str, int] = {}
        cache_read = cache_write = audio_in = audio_out = reasoning = None
        found = fields.get("prompt_tokens_details")
        if found is not None:
            part = _plain_fields(found, self.prompt_details)
            if part is None:
                return _MISS
            cache_read = _count(part.get("cached_tokens"))
            cache_write = _count(part.get("cache_write_tokens"))
            audio_in = _count(part.get("audio_tokens"))
            image = _count(part.get("image_tokens"))
            text = _count(part.get("text_tokens"))
            if _MISS in (cache_read, cache_write, audio_in, image, text):
                return _MISS
            if image:
                details["input_image_tokens"] = image
            if text:
                details["input_text_tokens"] = text
        found = fields.get("completion_tokens_details")
        if found is not None:
            part = _plain_fields(found, self.completion_details)
            if part is None:
                return _MISS
            reasoning = _count(part.get("reasoning_tokens"))
            audio_out = _count(part.get("audio_tokens"))
            text = _count(part.get("text_tokens"))
            accepted = _count(part.get("accepted_prediction_tokens"))
            rejected = _count(part.get("rejected_prediction_tokens"))
            if _MISS in (reasoning, audio_out, text, accepted, rejected):
                return _MISS
            if text:
                details["output_text_tokens"] = text
            if accepted:
                details["accepted_prediction_tokens"] = accepted
            if rejected:
                details["rejected_prediction_tokens"] = rejected
        return self._build_chat(
            prompt, completion, total, cache_read, cache_write, reasoning, audio_in, audio_out, details
        )

    @staticmethod
    def _build_chat(
        prompt: int,
        completion: int,
        total: int | None,
        cache_read: int | None,
        cache_write: int | None,
        reasoning: int | None,
        audio_in: int | None,
        audio_out: int | None,
        details: dict[str, int],
    ) -> TokenUsage:
        output = completion
        if reasoning and total is not None and total == prompt + completion + reasoning:
            output = completion + reasoning  # xAI counts reasoning on top (providers.openai._inclusive_output)
        return TokenUsage.build(
            input_tokens=prompt,
            output_tokens=output,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            reasoning_tokens=reasoning,
            audio_input_tokens=audio_in,
            audio_output_tokens=audio_out,
            details=details or None,
        )

    def responses(self, usage: Any) -> Any:
        """`TokenUsage` of a `ResponseUsage`, or `_MISS` for anything but the plain shape."""
        fields = _plain_fields(usage, self.response)
        if fields is None:
            return _MISS
        input_tokens = _count(fields.get("input_tokens"))
        output_tokens = _count(fields.get("output_tokens"))
        total = _count(fields.get("total_tokens"))
        if _MISS in (input_tokens, output_tokens, total) or input_tokens is None or output_tokens is None:
            return _MISS
        cache_read = cache_write = reasoning = None
        found = fields.get("input_tokens_details")
        if found is not None:
            part = _plain_fields(found, self.input_details)
            if part is None or part.get("cache_write_tokens_details") is not None:
                return _MISS  # the retention split has its own detail keys: the generic rules
            cache_read = _count(part.get("cached_tokens"))
            cache_write = _count(part.get("cache_write_tokens"))
            if cache_read is _MISS or cache_write is _MISS:
                return _MISS
        found = fields.get("output_tokens_details")
        if found is not None:
            part = _plain_fields(found, self.output_details)
            if part is None:
                return _MISS
            reasoning = _count(part.get("reasoning_tokens"))
            if reasoning is _MISS:
                return _MISS
        output = output_tokens
        if reasoning and total is not None and total == input_tokens + output_tokens + reasoning:
            output = output_tokens + reasoning
        return TokenUsage.build(
            input_tokens=input_tokens,
            output_tokens=output,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            reasoning_tokens=reasoning,
        )


def plain(value: Any, depth: int = 0) -> Any:
    """A pydantic object as nested dicts (extras included), for the generic rules: a name it
    lacks then costs a dict look-up, not pydantic's `__getattr__` and an AttributeError."""
    if value is None or not hasattr(value.__class__, "__pydantic_fields__"):
        return value
    out = dict(value.__dict__)
    extra = getattr(value, "__pydantic_extra__", None)
    if extra:
        out.update(extra)
    if depth < 4:
        for key, item in out.items():
            if item is not None and hasattr(item.__class__, "__pydantic_fields__"):
                out[key] = plain(item, depth + 1)
    return out


_GENERIC: dict[str, Callable[[Any], TokenUsage | None]] = {
    wire.CHAT: wire.chat_usage,
    wire.COMPLETIONS: wire.chat_usage,
    wire.RESPONSES: wire.responses_usage,
    wire.EMBEDDINGS: wire.embeddings_usage,
}
_FAST: list[FastUsage] = []  # made on first use: importing tokentrail must not import openai


def fast() -> FastUsage:
    if not _FAST:
        _FAST.append(FastUsage())
    return _FAST[0]


def usage_of(usage: Any, api: str) -> TokenUsage | None:
    """Normalised usage of one SDK (or JSON) usage block of the endpoint family `api`."""
    if usage is None:
        return None
    if api == wire.CHAT or api == wire.COMPLETIONS:
        found = (_FAST[0] if _FAST else fast()).chat(usage)
    elif api == wire.RESPONSES:
        found = (_FAST[0] if _FAST else fast()).responses(usage)
    else:
        found = _MISS
    if found is not _MISS:
        return found  # type: ignore[no-any-return]
    try:
        return _GENERIC[api](plain(usage))
    except ValidationError:
        raise  # counts that break the invariants: never priced silently
    except Exception:  # a malformed block means "no usable usage", as in providers.openai.extract
        return None


__all__ = ["FastUsage", "fast", "plain", "usage_of"]
