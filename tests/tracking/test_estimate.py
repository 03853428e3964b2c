from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tokentrail.tracking import estimate
from tokentrail.tracking.estimate import (
    CL100K,
    O200K,
    count_message_tokens,
    count_tokens,
    encoding_for_model,
    estimate_usage,
    estimation_method,
    heuristic_count,
)

# Texts with their exact token counts in both encodings (how they were made: see "source").
SAMPLES = json.loads((Path(__file__).parent / "data" / "estimation_samples.json").read_text(encoding="utf-8"))[
    "samples"
]


@pytest.fixture
def heuristic_only():
    estimate.use_heuristic_only(True)
    yield
    estimate.use_heuristic_only(False)


@pytest.mark.parametrize("encoding", [O200K, CL100K])
def test_heuristic_is_close_to_the_real_tokenizer(encoding):
    errors = []
    for sample in SAMPLES:
        exact = sample[encoding]
        guess = heuristic_count(sample["text"], encoding)
        errors.append((guess - exact) / exact)
        assert abs(guess - exact) / exact < 0.30, (sample["kind"], exact, guess)
    total_exact = sum(s[encoding] for s in SAMPLES)
    total_guess = sum(heuristic_count(s["text"], encoding) for s in SAMPLES)
    assert abs(total_guess - total_exact) / total_exact < 0.08
    median = sorted(abs(e) for e in errors)[len(errors) // 2]
    assert median < 0.10


def test_heuristic_beats_four_characters_per_token_on_non_latin_scripts():
    kinds = ("chinese", "japanese", "korean", "hindi", "arabic", "russian")
    picked = [s for s in SAMPLES if s["kind"] in kinds]
    assert len(picked) == len(kinds)
    exact = sum(s[O200K] for s in picked)
    heuristic = sum(heuristic_count(s["text"]) for s in picked)
    by_chars = sum(len(s["text"]) / 4 for s in picked)
    assert abs(heuristic - exact) < abs(by_chars - exact) / 3


def test_heuristic_edge_cases():
    assert heuristic_count("") == 0
    assert heuristic_count("a") == 1
    assert heuristic_count("word " * 100) > heuristic_count("word " * 10)


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o-mini", O200K),
        ("gpt-4.1", O200K),
        ("o3-mini", O200K),
        ("gpt-5", O200K),
        ("gpt-4", CL100K),
        ("gpt-4-turbo", CL100K),
        ("gpt-3.5-turbo-0125", CL100K),
        ("text-embedding-3-small", CL100K),
        ("openai/gpt-4-0613", CL100K),
        ("claude-3-5-sonnet", O200K),
        (None, O200K),
    ],
)
def test_encoding_for_model(model, encoding):
    assert encoding_for_model(model) == encoding


def test_without_a_tokenizer_the_heuristic_is_used(heuristic_only):
    assert estimation_method("gpt-4o") == "heuristic:o200k_base"
    assert estimation_method("gpt-4") == "heuristic:cl100k_base"
    text = SAMPLES[0]["text"]
    assert count_tokens(text, "gpt-4") == heuristic_count(text, CL100K)
    assert count_tokens("", "gpt-4o") == 0


def test_chat_framing(heuristic_only):
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "name": "ann", "content": [{"type": "text", "text": "Hi"}, {"type": "image_url"}]},
    ]
    expected = 3 + 2 * 3
    expected += count_tokens("system") + count_tokens("You are terse.")
    expected += count_tokens("user") + count_tokens("ann") + 1 + count_tokens("Hi")
    assert count_message_tokens(messages) == expected


def test_estimate_usage(heuristic_only):
    usage = estimate_usage(input_text="How much?", output_text="Three dollars.", model="gpt-4o")
    assert usage.input_tokens == count_tokens("How much?", "gpt-4o")
    assert usage.output_tokens == count_tokens("Three dollars.", "gpt-4o")
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert estimate_usage(output_text="x").input_tokens is None


@pytest.mark.skipif(importlib.util.find_spec("quicktok") is None, reason="tokenizer extra not installed")
def test_installed_tokenizer_is_exact():
    estimate.use_heuristic_only(False)
    assert estimation_method("gpt-4o").startswith("quicktok:")
    for sample in SAMPLES:
        assert count_tokens(sample["text"], "gpt-4o") == sample[O200K]
        assert count_tokens(sample["text"], "gpt-4") == sample[CL100K]
