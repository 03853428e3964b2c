"""Usage of OpenAI responses and of the OpenAI-compatible APIs (Azure, DeepSeek, Mistral, Groq, ...).

Endpoint families (`api`): `chat.completions`, `completions` (legacy; same usage block as chat),
`responses` and `embeddings`. A response is an SDK object, a parsed JSON body, or the list of
one stream's chunks/events. Reported counts are already inclusive (PROVIDERS.md A.1-A.4):
`prompt_tokens`/`input_tokens` include cache reads and writes, `completion_tokens`/`output_tokens`
include reasoning. The usage block must report both totals as non-negative integers (the SDK
declares them required); otherwise nothing usable was reported and the result is `None`.
Malformed sub-counts are treated as not reported.
"""

from __future__ import annotations

from typing import Any

from tokentrail.core import TokenUsage, ValidationError
from tokentrail.providers._access import count, first_count, get

CHAT = "chat.completions"
COMPLETIONS = "completions"
RESPONSES = "responses"
EMBEDDINGS = "embeddings"

_API_ALIASES: dict[str, str] = {
    "chat.completions": CHAT,
    "chat_completions": CHAT,
    "chat": CHAT,
    "completions": COMPLETIONS,
    "text_completion": COMPLETIONS,
    "text_completions": COMPLETIONS,
    "responses": RESPONSES,
    "embeddings": EMBEDDINGS,
    "embedding": EMBEDDINGS,
}

# `object` field of a body -> its family
_OBJECT_KINDS: dict[str, str] = {
    "chat.completion": CHAT,
    "chat.completion.chunk": CHAT,
    "text_completion": COMPLETIONS,
    "response": RESPONSES,
    "list": EMBEDDINGS,
}

# Responses stream events whose `.response.usage` holds the final counts (`created` and
# `in_progress` carry `usage: null`).
_RESPONSES_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})

# (path inside prompt/input details, details key): genai-prices usage-key names where one exists
_INPUT_DETAILS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("image_tokens",), "input_image_tokens"),
    (("text_tokens",), "input_text_tokens"),
    (("cached_tokens_details", "audio_tokens"), "cache_audio_read_tokens"),
    (("cached_tokens_details", "text_tokens"), "cache_text_read_tokens"),
    (("cached_tokens_details", "image_tokens"), "cache_image_read_tokens"),
    # Responses API cache-write retention split (no genai-prices key; named like its TTL keys)
    (("cache_write_tokens_details", "ttl_30m_tokens"), "cache_write_30m_tokens"),
    (("cache_write_tokens_details", "ttl_12h_tokens"), "cache_write_12h_tokens"),
)
_OUTPUT_DETAILS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("text_tokens",), "output_text_tokens"),
    (("image_tokens",), "output_image_tokens"),
    (("accepted_prediction_tokens",), "accepted_prediction_tokens"),
    (("rejected_prediction_tokens",), "rejected_prediction_tokens"),
)


# ---- stream state -------------------------------------------------------------------------
class ChatStreamUsage:
    """Usage of one streamed Chat Completions (or legacy Completions) response.

    OpenAI sends usage only on a final chunk with empty `choices` (with `include_usage`),
    Mistral and Together on the last content chunk; every other chunk has `usage: null` or
    none. The last non-null usage wins. `feed` only keeps a reference: parsing waits for `result`.
    """

    __slots__ = ("_usage",)

    def __init__(self) -> None:
        self._usage: Any = None

    def feed(self, chunk: Any) -> None:
        try:
            usage = chunk.get("usage") if isinstance(chunk, dict) else getattr(chunk, "usage", None)
        except Exception:  # a broken third-party object must not break the stream
            return
        if usage is not None:
            self._usage = usage

    def result(self) -> TokenUsage | None:
        return None if self._usage is None else chat_usage(self._usage)


class ResponsesStreamUsage:
    """Usage of one streamed Responses API call: `.response.usage` of its terminal event."""

    __slots__ = ("_usage",)

    def __init__(self) -> None:
        self._usage: Any = None

    def feed(self, event: Any) -> None:
        try:
            if isinstance(event, dict):
                if event.get("type") not in _RESPONSES_FINAL_EVENTS:
                    return
                usage = get(event.get("response"), "usage")
            else:
                if getattr(event, "type", None) not in _RESPONSES_FINAL_EVENTS:
                    return
                usage = get(getattr(event, "response", None), "usage")
        except Exception:  # unhashable `type`, broken objects: not a usage event
            return
        if usage is not None:
            self._usage = usage

    def result(self) -> TokenUsage | None:
        return None if self._usage is None else responses_usage(self._usage)


# ---- entry point --------------------------------------------------------------------------
def extract(response: Any, api: str | None = None) -> TokenUsage | None:
    """Normalised usage of an OpenAI(-compatible) response, or of one stream's chunks."""
    try:
        return _extract(response, api)
    except ValidationError:
        raise  # reported counts break the accounting invariants: never price them silently
    except Exception:  # malformed input of any other kind means "no usable usage"
        return None


def _extract(response: Any, api: str | None) -> TokenUsage | None:
    family = _API_ALIASES.get(api) if isinstance(api, str) else None
    if isinstance(response, list | tuple):
        return _extract_stream(response, family)
    if response is None or isinstance(response, str | bytes | int | float):
        return None
    if family is None:
        family = _detect(response)
    if family == RESPONSES:
        if _event_type(response) in _RESPONSES_FINAL_EVENTS:
            return responses_usage(get(response, "response", "usage"))  # one terminal stream event
        return responses_usage(_usage_block(response))
    if family == EMBEDDINGS:
        return embeddings_usage(_usage_block(response))
    return chat_usage(_usage_block(response))


def _extract_stream(chunks: list[Any] | tuple[Any, ...], family: str | None) -> TokenUsage | None:
    if family == EMBEDDINGS:
        return None  # embeddings do not stream
    chat = None if family == RESPONSES else ChatStreamUsage()
    responses = None if family in (CHAT, COMPLETIONS) else ResponsesStreamUsage()
    # Unknown family: feed both; each ignores the other's chunks (no top-level `usage` on
    # Responses events, no `response.*` type on chat chunks).
    for chunk in chunks:
        if chat is not None:
            chat.feed(chunk)
        if responses is not None:
            responses.feed(chunk)
    found = responses.result() if responses is not None else None
    if found is None and chat is not None:
        found = chat.result()
    return found


def _event_type(obj: Any) -> str | None:
    kind = get(obj, "type")
    return kind if isinstance(kind, str) else None


def _detect(response: Any) -> str:
    """Endpoint family from the body's shape: `object`, a stream event `type`, or usage keys."""
    obj = get(response, "object")
    if isinstance(obj, str) and obj in _OBJECT_KINDS:
        return _OBJECT_KINDS[obj]
    kind = _event_type(response)
    if kind is not None and kind.startswith("response."):
        return RESPONSES
    usage = _usage_block(response)
    if get(usage, "input_tokens") is not None or get(usage, "output_tokens") is not None:
        return RESPONSES
    if get(usage, "completion_tokens") is None and isinstance(get(response, "data"), list):
        return EMBEDDINGS
    return CHAT


def _usage_block(response: Any) -> Any:
    """The `usage` of a body; a bare usage block (no `usage`, but counts) stands for itself."""
    usage = get(response, "usage")
    if usage is not None:
        return usage
    if get(response, "prompt_tokens") is not None or get(response, "input_tokens") is not None:
        return response
    return None


# ---- usage blocks -------------------------------------------------------------------------
def chat_usage(usage: Any) -> TokenUsage | None:
    """Chat Completions / legacy Completions usage, with the compatible providers' variants."""
    prompt = count(get(usage, "prompt_tokens"), "prompt_tokens")
    completion = count(get(usage, "completion_tokens"), "completion_tokens")
    # DeepSeek reports hits and misses flat on usage; prompt_tokens = hit + miss.
    hit = count(get(usage, "prompt_cache_hit_tokens"), "prompt_cache_hit_tokens")
    if prompt is None and hit is not None:
        miss = count(get(usage, "prompt_cache_miss_tokens"), "prompt_cache_miss_tokens")
        prompt = None if miss is None else hit + miss
    if prompt is None or completion is None:
        return None
    prompt_details = get(usage, "prompt_tokens_details")
    completion_details = get(usage, "completion_tokens_details")
    cache_read = first_count(prompt_details, "cached_tokens")
    if cache_read is None:
        # DeepSeek's hit count; Mistral's legacy flat field; xAI's legacy flat field
        # (per genai-prices' x-ai extractor). All are included in prompt_tokens.
        cache_read = hit if hit is not None else first_count(usage, "num_cached_tokens", "cached_prompt_text_tokens")
    reasoning = first_count(completion_details, "reasoning_tokens")
    if reasoning is None:
        reasoning = first_count(usage, "reasoning_tokens")  # xAI legacy flat field
    total = count(get(usage, "total_tokens"), "total_tokens")
    return TokenUsage.build(
        input_tokens=prompt,
        output_tokens=_inclusive_output(prompt, completion, reasoning, total),
        cache_read_tokens=cache_read,
        cache_write_tokens=first_count(prompt_details, "cache_write_tokens"),
        reasoning_tokens=reasoning,
        audio_input_tokens=first_count(prompt_details, "audio_tokens"),
        audio_output_tokens=first_count(completion_details, "audio_tokens"),
        details=_details(prompt_details, completion_details),
    )


def responses_usage(usage: Any) -> TokenUsage | None:
    """Responses API usage: `input_tokens`/`output_tokens` with their `*_details`."""
    input_tokens = count(get(usage, "input_tokens"), "input_tokens")
    output_tokens = count(get(usage, "output_tokens"), "output_tokens")
    if input_tokens is None or output_tokens is None:
        return None
    input_details = get(usage, "input_tokens_details")
    output_details = get(usage, "output_tokens_details")
    reasoning = first_count(output_details, "reasoning_tokens")
    total = count(get(usage, "total_tokens"), "total_tokens")
    return TokenUsage.build(
        input_tokens=input_tokens,
        output_tokens=_inclusive_output(input_tokens, output_tokens, reasoning, total),
        cache_read_tokens=first_count(input_details, "cached_tokens"),
        cache_write_tokens=first_count(input_details, "cache_write_tokens"),
        reasoning_tokens=reasoning,
        audio_input_tokens=first_count(input_details, "audio_tokens"),
        audio_output_tokens=first_count(output_details, "audio_tokens"),
        details=_details(input_details, output_details),
    )


def embeddings_usage(usage: Any) -> TokenUsage | None:
    """Embeddings usage: `prompt_tokens` is the input.

    Embeddings produce no tokens, so output is a known 0 rather than "not reported": the
    record then prices and sums like any other call instead of looking incomplete.
    """
    prompt = first_count(usage, "prompt_tokens", "input_tokens")
    if prompt is None:
        return None
    return TokenUsage.build(input_tokens=prompt, output_tokens=0)


def _inclusive_output(prompt: int, completion: int, reasoning: int | None, total: int | None) -> int:
    """Output including reasoning.

    OpenAI counts reasoning inside `completion_tokens` (total = prompt + completion). xAI
    counts it on top (its docs: reasoning is "counted separately from completion_tokens, but
    ... in the total_tokens"), which shows as total = prompt + completion + reasoning; only
    then is reasoning added, so an OpenAI-style report is never double counted.
    """
    if reasoning and total is not None and total == prompt + completion + reasoning:
        return completion + reasoning
    return completion


def _details(input_details: Any, output_details: Any) -> dict[str, int] | None:
    """Finer sub-counts worth keeping for pricing; zeros are dropped (they price nothing)."""
    out: dict[str, int] = {}
    if input_details is not None:
        for path, key in _INPUT_DETAILS:
            value = count(get(input_details, *path))
            if value:
                out[key] = value
    if output_details is not None:
        for path, key in _OUTPUT_DETAILS:
            value = count(get(output_details, *path))
            if value:
                out[key] = value
    return out or None


__all__ = [
    "CHAT",
    "COMPLETIONS",
    "EMBEDDINGS",
    "RESPONSES",
    "ChatStreamUsage",
    "ResponsesStreamUsage",
    "chat_usage",
    "embeddings_usage",
    "extract",
    "responses_usage",
]
