from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokentrail.core import TokenUsage, Units, ValidationError


def test_build_fills_total_from_inclusive_counts():
    usage = TokenUsage.build(input_tokens=1532, output_tokens=40, cache_read_tokens=1111, cache_write_tokens=418)
    assert usage.total_tokens == 1572
    assert usage.uncached_input_tokens == 3


def test_unknown_stays_none_never_zero():
    usage = TokenUsage()
    assert usage.is_empty
    assert usage.to_dict() == {}
    assert TokenUsage.build(input_tokens=5).total_tokens is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"input_tokens": 10, "cache_read_tokens": 11}, "cache_read_tokens"),
        ({"input_tokens": 10, "cache_write_tokens": 11}, "cache_write_tokens"),
        ({"input_tokens": 10, "cache_read_tokens": 6, "cache_write_tokens": 5}, "cache_read_tokens"),
        ({"output_tokens": 10, "reasoning_tokens": 11}, "reasoning_tokens"),
        ({"input_tokens": 10, "audio_input_tokens": 11}, "audio_input_tokens"),
        ({"output_tokens": 1, "audio_output_tokens": 2}, "audio_output_tokens"),
        ({"input_tokens": -1}, "input_tokens"),
        ({"output_tokens": 1.5}, "output_tokens"),
        ({"output_tokens": True}, "output_tokens"),
        ({"reasoning_tokens": 3}, "reasoning_tokens"),
        ({"details": {"BadKey": 1}}, "details"),
        ({"details": {"input_image_tokens": -3}}, "details.input_image_tokens"),
    ],
)
def test_invariant_breaks_are_rejected_naming_the_field(kwargs, field):
    with pytest.raises(ValidationError) as info:
        TokenUsage(**kwargs)
    assert info.value.field == field


def test_from_dict_names_nested_path():
    with pytest.raises(ValidationError) as info:
        TokenUsage.from_dict({"input_tokens": "12"})
    assert info.value.field == "token_usage.input_tokens"
    with pytest.raises(ValidationError) as info:
        TokenUsage.from_dict({"prompt_tokens": 12})
    assert info.value.field == "token_usage.prompt_tokens"


def test_addition_sums_known_and_keeps_unknown():
    a = TokenUsage.build(input_tokens=100, output_tokens=10, cache_read_tokens=50, details={"web_searches": 1})
    b = TokenUsage.build(input_tokens=20, output_tokens=5, details={"web_searches": 2, "input_image_tokens": 3})
    total = a + b
    assert (total.input_tokens, total.output_tokens, total.total_tokens) == (120, 15, 135)
    assert total.cache_read_tokens == 50
    assert total.reasoning_tokens is None
    assert total.details == {"web_searches": 3, "input_image_tokens": 3}


def test_other_models_round_trip():
    advisor = TokenUsage.build(input_tokens=7, output_tokens=3)
    usage = TokenUsage.build(input_tokens=10, output_tokens=2, other_models={"claude-opus-4-1": advisor})
    assert TokenUsage.from_dict(usage.to_dict()) == usage


def test_units_validation():
    assert Units(pages=3, seconds=1.5).to_dict() == {"pages": 3, "seconds": 1.5}
    with pytest.raises(ValidationError) as info:
        Units.from_dict({"pages": -1})
    assert info.value.field == "units.pages"


counts = st.one_of(st.none(), st.integers(min_value=0, max_value=10**9))


@given(
    input_tokens=counts,
    output_tokens=counts,
    cache_read=counts,
    cache_write=counts,
    reasoning=counts,
)
def test_invariants_hold_for_every_accepted_usage(input_tokens, output_tokens, cache_read, cache_write, reasoning):
    try:
        usage = TokenUsage.build(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            reasoning_tokens=reasoning,
        )
    except ValidationError as exc:
        assert exc.field in {"cache_read_tokens", "cache_write_tokens", "reasoning_tokens"}
        return
    assert (usage.cache_read_tokens or 0) + (usage.cache_write_tokens or 0) <= (usage.input_tokens or 0) or (
        not usage.cache_read_tokens and not usage.cache_write_tokens
    )
    assert (usage.reasoning_tokens or 0) <= (usage.output_tokens or 0) or not usage.reasoning_tokens
    assert usage.uncached_input_tokens is None or usage.uncached_input_tokens >= 0
    assert TokenUsage.from_dict(usage.to_dict()) == usage
