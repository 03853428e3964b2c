"""The mock's building blocks: token counting, prefix hashing, durations, generation, settings."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import BaseModel

from tokentrail.core import ValidationError
from tokentrail.mockprovider import MockConfig, count_tokens, go_duration
from tokentrail.mockprovider.content import complete, instance_of, pieces, rng_for
from tokentrail.mockprovider.headers import rfc3339_after
from tokentrail.mockprovider.state import RateLimiter
from tokentrail.mockprovider.tokens import Part, breakpoint_boundaries, prefix_hashes


@pytest.mark.parametrize("text", ["", "a", "abcd", "abcde", "x" * 4097])
def test_count_tokens_is_four_characters_a_token(text: str):
    assert count_tokens(text) == math.ceil(len(text) / 4)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.012, "12ms"),
        (0.12, "120ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (59.987, "59.987s"),
        (90, "1m30s"),
        (360, "6m0s"),
        (3600, "1h0m0s"),
        (3723, "1h2m3s"),
    ],
)
def test_go_duration_matches_gos_format(seconds: float, text: str):
    assert go_duration(seconds) == text


def test_rfc3339_reset_rounds_up_to_the_second():
    assert rfc3339_after(1.2, now=1_700_000_000.5) == "2023-11-14T22:13:22Z"  # 22:13:20.5 + 2 s


def test_prefix_hashes_depend_on_the_prefix_only():
    a = [Part("x" * 400), Part("y" * 400)]
    b = [Part("x" * 400), Part("y" * 200 + "z" * 200)]
    c = [Part("w" + "x" * 399), Part("y" * 400)]
    ha, hb, hc = (prefix_hashes(p, [100, 150, 200]) for p in (a, b, c))
    assert ha[100] == hb[100] and ha[150] == hb[150]  # 150 tokens = 600 chars, all before the change
    assert ha[200] != hb[200]
    assert ha[100] != hc[100]  # an early change changes every later prefix
    assert set(prefix_hashes(a, [100, 500])) == {100}  # a boundary past the end has no prefix


def test_parts_are_separated_so_moving_text_changes_the_hash():
    assert prefix_hashes([Part("ab"), Part("cd")], [1]) != prefix_hashes([Part("abcd")], [1])


def test_breakpoints_need_the_minimum_prefix():
    parts = [Part("a" * 400, "1h"), Part("b" * 4000), Part("c" * 40, "5m")]
    assert breakpoint_boundaries(parts, 1024) == [(1110, "5m")]
    assert breakpoint_boundaries(parts, 50) == [(100, "1h"), (1110, "5m")]


def test_completion_respects_the_limit_and_spends_reasoning_first():
    free = complete("seed", limit=None)
    assert free.text and not free.truncated and free.output_tokens == count_tokens(free.text)
    assert complete("seed", limit=None).text == free.text
    cut = complete("seed", limit=3)
    assert cut.truncated and cut.text_tokens == 3 and free.text.startswith(cut.text)
    thinking = complete("seed", limit=100, reasoning=64)
    assert thinking.reasoning_tokens == 64 and thinking.output_tokens <= 100
    starved = complete("seed", limit=50, reasoning=64)
    assert (starved.text, starved.reasoning_tokens, starved.truncated) == ("", 50, True)
    exact = complete("seed", limit=None, exact_tokens=25)
    assert exact.text_tokens == 25 and len(exact.text) == 100


def test_pieces_rebuild_the_text():
    text = "Lorem ipsum dolor.  Sit amet"
    assert "".join(pieces(text)) == text and len(pieces(text)) == 5


class Item(BaseModel):
    sku: str
    quantity: int
    price: float
    gift: bool


class Order(BaseModel):
    items: list[Item]
    note: str | None
    status: str


def test_instance_of_satisfies_a_pydantic_schema():
    value = instance_of(Order.model_json_schema(), rng_for("x"))
    Order.model_validate(value)  # raises if the JSON does not fit
    gemini_schema = {"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}, "e": {"enum": ["a", "b"]}}}
    gemini_value = instance_of(gemini_schema, rng_for("y"))
    assert isinstance(gemini_value["n"], int) and gemini_value["e"] in ("a", "b")
    assert json.dumps(value)


def test_rate_limiter_refills_continuously():
    now = [100.0]
    limiter = RateLimiter(clock=lambda: now[0])
    first = limiter.admit("openai", "key", {"requests": (60, 1)}, enforce=True)["requests"]
    assert (first.remaining, first.reset_s) == (59, 1.0)
    now[0] += 0.5
    second = limiter.admit("openai", "key", {"requests": (60, 1)}, enforce=True)["requests"]
    assert second.remaining == 58 and second.reset_s == pytest.approx(1.5)
    now[0] += 60
    assert limiter.admit("openai", "key", {"requests": (60, 1)}, enforce=True)["requests"].remaining == 59


def test_config_validation_names_the_field():
    for field, value in [
        ("latency_ms", -1),
        ("error_rate", 2),
        ("seed", "x"),
        ("requests_per_minute", 0),
        ("output_tokens", -3),
        ("azure_deployments", {"d": ""}),
    ]:
        with pytest.raises(ValidationError) as caught:
            MockConfig(**{field: value})
        assert caught.value.field == field
    assert MockConfig(error_kinds=("429", "529")).error_kinds == ("rate_limit", "overloaded")
