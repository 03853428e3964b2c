"""Hypothesis strategies for usage extraction: arbitrary JSON-like values biased towards usage shapes,
and the invariant check every extracted `TokenUsage` must pass."""

from __future__ import annotations

from hypothesis import strategies as st

from tokentrail.core import TokenUsage

USAGE_KEYS = (
    "usage",
    "object",
    "type",
    "response",
    "data",
    "choices",
    "delta",
    "meta",
    "embeddings",
    "billed_units",
    "tokens",
    "cached_tokens",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
    "cache_write_tokens",
    "cache_write_tokens_details",
    "ttl_30m_tokens",
    "reasoning_tokens",
    "audio_tokens",
    "image_tokens",
    "text_tokens",
    "input_tokens",
    "output_tokens",
    "input_tokens_details",
    "output_tokens_details",
    "prompt_cache_hit_tokens",
    "prompt_cache_miss_tokens",
    "num_cached_tokens",
    "event_type",
)
TAGS = (
    "chat.completion",
    "chat.completion.chunk",
    "text_completion",
    "response",
    "list",
    "response.completed",
    "response.incomplete",
    "response.failed",
    "response.created",
    "message-end",
    "stream-end",
    "",
)
APIS = (None, "chat.completions", "completions", "responses", "embeddings", "embed", "chat", "bogus")

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-5, max_value=60)
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(TAGS)
    | st.text(max_size=6)
)
keys = st.sampled_from(USAGE_KEYS) | st.text(max_size=5)

json_like = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=6),
    max_leaves=30,
)


def assert_invariants(usage: TokenUsage) -> None:
    """What every extracted usage must satisfy (SPEC §1, token accounting)."""
    assert isinstance(usage, TokenUsage)
    assert usage.input_tokens is not None and usage.input_tokens >= 0
    assert usage.output_tokens is not None and usage.output_tokens >= 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    cached = (usage.cache_read_tokens or 0) + (usage.cache_write_tokens or 0)
    assert cached <= usage.input_tokens
    assert (usage.audio_input_tokens or 0) <= usage.input_tokens
    assert (usage.reasoning_tokens or 0) <= usage.output_tokens
    assert (usage.audio_output_tokens or 0) <= usage.output_tokens
    for key, value in (usage.details or {}).items():
        assert isinstance(key, str) and isinstance(value, int) and not isinstance(value, bool) and value > 0
