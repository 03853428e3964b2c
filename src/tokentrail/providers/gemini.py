"""Usage of Google Gemini responses: google-genai SDK objects, REST (camelCase) and Vertex AI.

PROVIDERS.md A.6: `prompt_token_count` INCLUDES `cached_content_token_count`; thoughts are NOT
in `candidates_token_count` (output = candidates + thoughts, reasoning = thoughts); tool-use
prompt tokens are NOT in the prompt count (input = prompt + tool_use_prompt). Proto3 JSON
omits zero fields, so a count missing beside reported ones is zero. Per-modality counts become
`audio_input_tokens`/`audio_output_tokens` and genai-prices detail keys. Streams carry
`usageMetadata` on every chunk as running totals: the last one with counts wins, never a sum.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from tokentrail.core import TokenUsage, ValidationError
from tokentrail.providers._access import first_reported, get, non_negative

GENERATE = "generateContent"
STREAM = "streamGenerateContent"
EMBED = "embedContent"
_EMBED_APIS = frozenset({EMBED, "batchEmbedContents", "embed_content", "predict"})

# REST names the modality; Vertex with `enum-encoding=int` sends the proto number.
# DOCUMENT (PDF pages) is billed as image input, as genai-prices does; UNSPECIFIED means TEXT.
_MODALITY: dict[str | int, str] = {
    "MODALITY_UNSPECIFIED": "text",
    "TEXT": "text",
    "IMAGE": "image",
    "VIDEO": "video",
    "AUDIO": "audio",
    "DOCUMENT": "image",
    0: "text",
    1: "text",
    2: "image",
    3: "video",
    4: "audio",
    5: "image",
}

# fields whose presence means a usage block reports counts (not just `trafficType`)
_COUNT_FIELDS = (
    "total_token_count",
    "prompt_token_count",
    "candidates_token_count",
    "thoughts_token_count",
    "tool_use_prompt_token_count",
    "cached_content_token_count",
    "response_token_count",
)
_COUNT_KEYS = frozenset(
    (
        *_COUNT_FIELDS,
        "totalTokenCount",
        "promptTokenCount",
        "candidatesTokenCount",
        "thoughtsTokenCount",
        "toolUsePromptTokenCount",
        "cachedContentTokenCount",
        "responseTokenCount",
    )
)


def has_counts(metadata: Any) -> bool:
    """Whether a usage metadata block reports any token count."""
    if metadata is None:
        return False
    if metadata.__class__ is dict:
        return not _COUNT_KEYS.isdisjoint(metadata)
    values = getattr(metadata, "__dict__", None)  # pydantic SDK objects keep their fields here
    if values.__class__ is dict:
        return any(values.get(name) is not None for name in _COUNT_FIELDS)
    if isinstance(metadata, Mapping):
        return any(key in metadata for key in _COUNT_KEYS)
    return any(get(metadata, name) is not None for name in _COUNT_FIELDS)


class GenerateContentStreamState:
    """Keeps the last chunk's usage metadata that carries counts (running totals)."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: Any = None

    def feed(self, chunk: Any) -> None:
        try:
            if chunk.__class__ is dict:
                metadata = chunk.get("usageMetadata")
                if metadata is None:
                    metadata = chunk.get("usage_metadata")
                if metadata.__class__ is dict:
                    # a block with counts always has the total or the prompt / candidates count
                    if (
                        "totalTokenCount" in metadata
                        or "promptTokenCount" in metadata
                        or "candidatesTokenCount" in metadata
                        or "total_token_count" in metadata
                        or "prompt_token_count" in metadata
                        or "candidates_token_count" in metadata
                    ):
                        self._last = metadata
                    return
            else:
                metadata = getattr(chunk, "usage_metadata", None)
                if metadata is None:
                    return
                if metadata.__class__ is not dict:  # SDK chunks: plain attribute reads
                    if (
                        getattr(metadata, "total_token_count", None) is not None
                        or getattr(metadata, "prompt_token_count", None) is not None
                        or getattr(metadata, "candidates_token_count", None) is not None
                    ):
                        self._last = metadata
                    return
            if has_counts(metadata):
                self._last = metadata
        except Exception:  # a broken third-party object is not a usage event
            return

    def result(self) -> TokenUsage | None:
        return None if self._last is None else usage_from_metadata(self._last)


# ---- one usage metadata block -------------------------------------------------------------
def _modality(value: Any) -> str | None:
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, str):
        return _MODALITY.get(value.upper())
    if isinstance(value, int) and not isinstance(value, bool):
        return _MODALITY.get(value)
    return None


def _by_modality(metadata: Any, path: str, *names: str) -> dict[str, int]:
    items = None
    for name in names:
        items = get(metadata, name)
        if items is not None:
            break
    out: dict[str, int] = {}
    if not isinstance(items, list | tuple):
        return out
    for index, item in enumerate(items):
        kind = _modality(get(item, "modality"))
        tokens = non_negative(f"{path}[{index}].token_count", first_reported(item, "token_count", "tokenCount"))
        if kind is not None and tokens is not None:
            out[kind] = out.get(kind, 0) + tokens
    return out


def _check_parts(path: str, parts: Mapping[str, int], total: int | None, total_name: str) -> None:
    """A per-modality breakdown must not exceed the count it breaks down."""
    if parts and total is not None and sum(parts.values()) > total:
        raise ValidationError(path, f"modality counts sum to {sum(parts.values())}, above {total_name} {total}")


def _field(metadata: Any, snake: str, camel: str) -> int | None:
    return non_negative(f"usage_metadata.{snake}", first_reported(metadata, snake, camel))


def usage_from_metadata(metadata: Any) -> TokenUsage | None:
    """Normalised usage of one `usage_metadata` / `usageMetadata` block; None if it has no counts."""
    prompt = _field(metadata, "prompt_token_count", "promptTokenCount")
    tool = _field(metadata, "tool_use_prompt_token_count", "toolUsePromptTokenCount")
    cached = _field(metadata, "cached_content_token_count", "cachedContentTokenCount")
    candidates = _field(metadata, "candidates_token_count", "candidatesTokenCount")
    if candidates is None:  # the embeddings / Live API name of the same count
        candidates = _field(metadata, "response_token_count", "responseTokenCount")
    thoughts = _field(metadata, "thoughts_token_count", "thoughtsTokenCount")
    total = _field(metadata, "total_token_count", "totalTokenCount")

    input_tokens = None if prompt is None and tool is None else (prompt or 0) + (tool or 0)
    output_tokens = None if candidates is None and thoughts is None else (candidates or 0) + (thoughts or 0)
    if cached is not None and cached > (prompt or 0):
        raise ValidationError(
            "usage_metadata.cached_content_token_count",
            f"{cached} exceeds prompt_token_count {prompt or 0}, which includes the cached content",
        )
    if input_tokens is None:
        cached = None  # a part of a total nobody reported cannot be priced

    prompt_parts = _by_modality(
        metadata, "usage_metadata.prompt_tokens_details", "prompt_tokens_details", "promptTokensDetails"
    )
    tool_parts = _by_modality(
        metadata,
        "usage_metadata.tool_use_prompt_tokens_details",
        "tool_use_prompt_tokens_details",
        "toolUsePromptTokensDetails",
    )
    cache_parts = _by_modality(
        metadata, "usage_metadata.cache_tokens_details", "cache_tokens_details", "cacheTokensDetails"
    )
    output_parts = _by_modality(
        metadata,
        "usage_metadata.candidates_tokens_details",
        "candidates_tokens_details",
        "candidatesTokensDetails",
        "response_tokens_details",
        "responseTokensDetails",
    )
    _check_parts("usage_metadata.prompt_tokens_details", prompt_parts, prompt, "prompt_token_count")
    _check_parts("usage_metadata.tool_use_prompt_tokens_details", tool_parts, tool, "tool_use_prompt_token_count")
    _check_parts("usage_metadata.cache_tokens_details", cache_parts, cached, "cached_content_token_count")
    _check_parts("usage_metadata.candidates_tokens_details", output_parts, candidates, "candidates_token_count")

    input_parts = dict(prompt_parts)
    for kind, tokens in tool_parts.items():
        input_parts[kind] = input_parts.get(kind, 0) + tokens
    details: dict[str, int] = {}
    if input_tokens is not None:
        if tool:
            details["input_tool_tokens"] = tool
        for kind in ("text", "image", "video"):
            if input_parts.get(kind):
                details[f"input_{kind}_tokens"] = input_parts[kind]
        for kind, tokens in tool_parts.items():
            if tokens:
                details[f"input_{kind}_tool_tokens"] = tokens
        if cached is not None:
            for kind, tokens in cache_parts.items():
                if tokens:
                    details[f"cache_{kind}_read_tokens"] = tokens
    if output_tokens is not None:
        for kind in ("text", "image", "video"):
            if output_parts.get(kind):
                details[f"output_{kind}_tokens"] = output_parts[kind]

    audio_in = input_parts.get("audio") if input_tokens is not None else None
    audio_out = output_parts.get("audio") if output_tokens is not None else None
    usage = TokenUsage.build(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        # Components decide the total; a reported total is kept only when they are unknown.
        total_tokens=None if input_tokens is not None and output_tokens is not None else total,
        cache_read_tokens=cached,
        reasoning_tokens=thoughts if output_tokens is not None else None,
        audio_input_tokens=audio_in,
        audio_output_tokens=audio_out,
        details=details or None,
    )
    return None if usage.is_empty else usage


# ---- embeddings ---------------------------------------------------------------------------
def _embedding_usage(response: Any) -> TokenUsage | None:
    metadata = _usage_metadata(response)
    if has_counts(metadata):
        usage = usage_from_metadata(metadata)
    else:
        usage = None
        tokens: int | None = None
        embeddings = get(response, "embeddings")
        if embeddings is None:  # Vertex REST `:predict`: predictions[].embeddings.statistics
            predictions = get(response, "predictions")
            if isinstance(predictions, list | tuple):
                embeddings = [get(item, "embeddings") for item in predictions]
        if isinstance(embeddings, list | tuple):
            for index, item in enumerate(embeddings):
                value = non_negative(
                    f"embeddings[{index}].statistics.token_count",
                    first_reported(get(item, "statistics"), "token_count", "tokenCount"),
                )
                if value is not None:
                    tokens = value if tokens is None else tokens + value
        if tokens is not None:
            usage = TokenUsage.build(input_tokens=tokens)
    characters = non_negative(
        "metadata.billable_character_count",
        first_reported(get(response, "metadata"), "billable_character_count", "billableCharacterCount"),
    )
    if characters is None:
        return usage
    # Vertex bills some embedding models per character; kept beside the token counts.
    base = usage or TokenUsage()
    details = dict(base.details or {})
    details["billable_characters"] = characters
    return TokenUsage(
        input_tokens=base.input_tokens,
        output_tokens=base.output_tokens,
        total_tokens=base.total_tokens,
        cache_read_tokens=base.cache_read_tokens,
        reasoning_tokens=base.reasoning_tokens,
        audio_input_tokens=base.audio_input_tokens,
        audio_output_tokens=base.audio_output_tokens,
        details=details,
    )


# ---- entry point --------------------------------------------------------------------------
def _usage_metadata(response: Any) -> Any:
    metadata = get(response, "usage_metadata")
    return get(response, "usageMetadata") if metadata is None else metadata


def extract(response: Any, api: str | None = None) -> TokenUsage | None:
    """Normalised usage of a Gemini / Vertex AI response, a stream's chunks, or an embedding."""
    try:
        return _extract(response, api)
    except ValidationError:
        raise  # reported counts break the accounting invariants: never price them silently
    except Exception:  # malformed input of any other kind means "no usable usage"
        return None


def _extract(response: Any, api: str | None) -> TokenUsage | None:
    if response is None or isinstance(response, str | bytes | int | float):
        return None
    if isinstance(response, list | tuple):
        state = GenerateContentStreamState()
        for chunk in response:
            state.feed(chunk)
        return state.result()
    if (isinstance(api, str) and api in _EMBED_APIS) or any(
        get(response, name) is not None for name in ("embeddings", "predictions", "embedding")
    ):
        return _embedding_usage(response)
    metadata = _usage_metadata(response)
    if metadata is None and has_counts(response):
        metadata = response  # a bare usage metadata block
    return None if metadata is None else usage_from_metadata(metadata)


__all__ = ["EMBED", "GENERATE", "STREAM", "GenerateContentStreamState", "extract", "has_counts", "usage_from_metadata"]
