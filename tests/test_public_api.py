"""The public facade is a contract (SPEC: names are public API); this pins it."""

from __future__ import annotations

import inspect

import tokentrail

EXPECTED = {
    "Attribution",
    "BudgetExceeded",
    "CallStatus",
    "Client",
    "CostBreakdown",
    "LLMCall",
    "LLMTracker",
    "ModelOperation",
    "PricingStatus",
    "Settings",
    "TokenUsage",
    "ToolTracker",
    "Units",
    "ValidationError",
    "__version__",
    "attribution",
    "calculate_cost",
    "configure",
    "emit_outcome",
    "extract_usage",
    "flush",
    "instrument",
    "llm_instrumented",
    "log_embedding_usage",
    "log_llm_usage",
    "log_ocr_usage",
    "normalize_provider",
    "set_llm_attributes",
    "set_token_usage",
    "shutdown",
    "stats",
    "testing",
    "track_llm_call",
    "track_tool_call",
    "uninstrument",
    "workflow",
    "wrap_anthropic",
    "wrap_bedrock",
    "wrap_gemini",
    "wrap_openai",
}


def test_all_is_pinned():
    assert set(tokentrail.__all__) == EXPECTED
    assert len(tokentrail.__all__) == len(set(tokentrail.__all__))
    for name in tokentrail.__all__:
        assert hasattr(tokentrail, name), name


def test_spec_signatures():
    params = inspect.signature(tokentrail.calculate_cost).parameters
    assert list(params)[:3] == ["provider", "model", "usage"]
    assert params["at"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["service_tier"].kind is inspect.Parameter.KEYWORD_ONLY
    assert list(inspect.signature(tokentrail.extract_usage).parameters) == ["response", "provider", "api"]
    configure = inspect.signature(tokentrail.configure).parameters
    for name in (
        "sinks",
        "service_name",
        "environment",
        "capture_content",
        "prices",
        "collector_url",
        "api_key",
        "enforce_budgets",
        "queue_size",
        "spool_dir",
        "spool_max_bytes",
    ):
        assert name in configure or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in configure.values()), name
    assert callable(tokentrail.testing.capture)


def test_extract_and_price_through_the_facade():
    usage = tokentrail.extract_usage(
        {
            "usage": {
                "input_tokens": 3,
                "cache_creation_input_tokens": 418,
                "cache_read_input_tokens": 1111,
                "output_tokens": 40,
            }
        },
        "claude",
    )
    assert usage.input_tokens == 1532
    cost = tokentrail.calculate_cost("anthropic", "claude-sonnet-4-5", usage)
    assert cost.pricing_status == tokentrail.PricingStatus.PRICED
    assert cost.total_cost == cost.input_cost + cost.cache_read_cost + cost.cache_write_cost + cost.output_cost
