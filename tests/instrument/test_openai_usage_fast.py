"""The hot-path reading of SDK usage objects gives exactly what the generic rules in
`providers.openai` give, for every shape (and raises where they raise)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from openai._models import construct_type
from openai.types import CompletionUsage
from openai.types.responses import ResponseUsage

from tokentrail.core import ValidationError
from tokentrail.instrument.openai_usage import _MISS, fast, plain, usage_of
from tokentrail.providers import openai as wire

counts = st.none() | st.integers(0, 5000) | st.integers(-3, -1) | st.sampled_from([0, 1.0, 2.5, True, "7"])


def maybe(keys: list[str], values: st.SearchStrategy[Any] = counts) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={k: values for k in keys})


prompt_details = maybe(["cached_tokens", "cache_write_tokens", "audio_tokens", "image_tokens", "text_tokens"])
completion_details = maybe(
    ["reasoning_tokens", "audio_tokens", "text_tokens", "accepted_prediction_tokens", "rejected_prediction_tokens"]
)
extras = maybe(["prompt_cache_hit_tokens", "prompt_cache_miss_tokens", "num_cached_tokens", "reasoning_tokens"])
chat_usage = st.builds(
    lambda base, pd, cd, extra: {**base, **({"prompt_tokens_details": pd} if pd is not None else {}),
                                 **({"completion_tokens_details": cd} if cd is not None else {}), **extra},
    maybe(["prompt_tokens", "completion_tokens", "total_tokens"]),
    st.none() | prompt_details,
    st.none() | completion_details,
    st.just({}) | extras,
)  # fmt: skip


def outcome(fn: Any) -> Any:
    try:
        return ("ok", fn())
    except ValidationError as exc:
        return ("error", exc.field)


@given(chat_usage)
def test_chat_usage_objects(data):
    obj = construct_type(type_=CompletionUsage, value=data)
    assert outcome(lambda: usage_of(obj, "chat.completions")) == outcome(lambda: wire.chat_usage(plain(obj)))


@given(
    maybe(["input_tokens", "output_tokens", "total_tokens"]),
    st.none() | maybe(["cached_tokens", "cache_write_tokens"]),
    st.none() | maybe(["reasoning_tokens"]),
    st.none() | st.fixed_dictionaries({"ttl_30m_tokens": counts}),
)
def test_responses_usage_objects(base, input_details, output_details, ttl):
    data = dict(base)
    if input_details is not None:
        data["input_tokens_details"] = {**input_details, **({"cache_write_tokens_details": ttl} if ttl else {})}
    if output_details is not None:
        data["output_tokens_details"] = output_details
    obj = construct_type(type_=ResponseUsage, value=data)
    assert outcome(lambda: usage_of(obj, "responses")) == outcome(lambda: wire.responses_usage(plain(obj)))


def test_the_fast_path_is_taken_for_ordinary_usage():
    usage = construct_type(
        type_=CompletionUsage,
        value={
            "prompt_tokens": 4020, "completion_tokens": 2320, "total_tokens": 6340,
            "prompt_tokens_details": {"cached_tokens": 4012, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 1792, "accepted_prediction_tokens": 3},
        },
    )  # fmt: skip
    got = fast().chat(usage)
    assert got is not _MISS
    assert got == wire.chat_usage(plain(usage))
    assert (got.input_tokens, got.cache_read_tokens, got.output_tokens, got.reasoning_tokens) == (
        4020,
        4012,
        2320,
        1792,
    )
    assert got.details == {"accepted_prediction_tokens": 3}


def test_json_and_unknown_objects_take_the_generic_rules():
    assert fast().chat({"prompt_tokens": 1, "completion_tokens": 1}) is _MISS
    assert usage_of({"prompt_tokens": 1, "completion_tokens": 2}, "chat.completions").output_tokens == 2
    assert usage_of({"prompt_tokens": 3}, "embeddings").input_tokens == 3
    assert usage_of(None, "chat.completions") is None
