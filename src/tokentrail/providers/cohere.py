"""Usage of Cohere responses (v2 chat and embed; v1 `meta` bodies read the same way).

What Cohere bills is `usage.billed_units.{input_tokens, output_tokens}` (PROVIDERS.md A.9);
those become input/output. `usage.tokens` (processed, chat template included) and
`usage.cached_tokens` are kept in `details` only: how cached tokens relate to billed units is
undocumented (one recording has 2928 cached against 2406 billed input), so they are NOT
reported as `cache_read_tokens`, which must be a subset of billed input and would be priced at
a cache rate. Chat must report both billed counts; otherwise the result is `None`.
"""

from __future__ import annotations

from typing import Any

from tokentrail.core import TokenUsage, ValidationError
from tokentrail.providers._access import count, get
from tokentrail.providers.openai import extract as _extract_openai_format

CHAT = "chat"
EMBEDDINGS = "embeddings"

_API_ALIASES: dict[str, str] = {
    "chat": CHAT,
    "chat.completions": CHAT,
    "v2.chat": CHAT,
    "embeddings": EMBEDDINGS,
    "embed": EMBEDDINGS,
    "v2.embed": EMBEDDINGS,
}


class CohereStreamUsage:
    """Usage of one streamed Cohere chat: v2 `message-end` carries it at `delta.usage`
    (v1 `stream-end` at `response.meta`). `feed` keeps a reference; `result` parses it."""

    __slots__ = ("_usage",)

    def __init__(self) -> None:
        self._usage: Any = None

    def feed(self, event: Any) -> None:
        try:
            if isinstance(event, dict):
                kind = event.get("type")
                if kind == "message-end":
                    usage = get(event.get("delta"), "usage")
                elif kind is None and event.get("event_type") == "stream-end":
                    usage = get(event.get("response"), "meta")
                else:
                    return
            else:
                kind = getattr(event, "type", None)
                if kind == "message-end":
                    usage = get(getattr(event, "delta", None), "usage")
                elif kind is None and getattr(event, "event_type", None) == "stream-end":
                    usage = get(getattr(event, "response", None), "meta")
                else:
                    return
        except Exception:  # a broken third-party object must not break the stream
            return
        if usage is not None:
            self._usage = usage

    def result(self) -> TokenUsage | None:
        return None if self._usage is None else chat_usage(self._usage)


def extract(response: Any, api: str | None = None) -> TokenUsage | None:
    """Normalised usage of a Cohere response, or of one stream's events."""
    try:
        return _extract(response, api)
    except ValidationError:
        raise
    except Exception:  # malformed input means "no usable usage", never an error
        return None


def _extract(response: Any, api: str | None) -> TokenUsage | None:
    family = _API_ALIASES.get(api) if isinstance(api, str) else None
    if isinstance(response, list | tuple):
        if family == EMBEDDINGS:
            return None  # embeddings do not stream
        state = CohereStreamUsage()
        for event in response:
            state.feed(event)
        return state.result()
    if response is None or isinstance(response, str | bytes | int | float):
        return None
    if get(response, "type") == "message-end":
        return chat_usage(get(response, "delta", "usage"))  # a single stream event
    block = get(response, "usage")
    if block is None:
        block = get(response, "meta")  # v1 chat and v1/v2 embed
    if family is None:
        family = EMBEDDINGS if _looks_like_embeddings(response) else CHAT
    if family == EMBEDDINGS:
        return embeddings_usage(block)
    found = chat_usage(block)
    if found is None and get(block, "billed_units") is None:
        # Cohere's OpenAI-compatible endpoint answers in OpenAI's format.
        return _extract_openai_format(response, api)
    return found


def _looks_like_embeddings(response: Any) -> bool:
    if get(response, "embeddings") is not None:
        return True
    kind = get(response, "response_type")
    return isinstance(kind, str) and kind.startswith("embeddings")


def chat_usage(block: Any) -> TokenUsage | None:
    """Chat usage from a v2 `usage` (or v1 `meta`) block: billed units are the counts."""
    billed = get(block, "billed_units")
    input_tokens = count(get(billed, "input_tokens"), "input_tokens")
    output_tokens = count(get(billed, "output_tokens"), "output_tokens")
    if input_tokens is None or output_tokens is None:
        return None
    return TokenUsage.build(input_tokens=input_tokens, output_tokens=output_tokens, details=_details(block))


def embeddings_usage(block: Any) -> TokenUsage | None:
    """Embed usage: billed input tokens.

    Embeddings produce no tokens, so output is a known 0 rather than "not reported".
    """
    input_tokens = count(get(block, "billed_units", "input_tokens"), "input_tokens")
    if input_tokens is None:
        return None
    return TokenUsage.build(input_tokens=input_tokens, output_tokens=0, details=_details(block))


def _details(block: Any) -> dict[str, int] | None:
    """Processed and cached counts, kept for reference only (zeros dropped)."""
    out: dict[str, int] = {}
    for key, value in (
        ("processed_input_tokens", get(block, "tokens", "input_tokens")),
        ("processed_output_tokens", get(block, "tokens", "output_tokens")),
        ("cohere_cached_tokens", get(block, "cached_tokens")),
    ):
        number = count(value)
        if number:
            out[key] = number
    return out or None


__all__ = ["CHAT", "EMBEDDINGS", "CohereStreamUsage", "chat_usage", "embeddings_usage", "extract"]
