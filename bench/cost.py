"""Cost calculation benchmark: tokentrail.pricing.calculate_cost vs genai_prices.calc_price.

Both price the same calls (same usage, model, provider, timestamp and price context) in the
same process, in alternating rounds so machine noise hits both alike, with warm caches for
both. Prints microseconds per call for each and the ratio (target: tokentrail >= 30x faster).
Also checks, once, that every total is the identical Decimal.

    .venv/bin/python bench/cost.py [--rounds 7] [--repeat 200]
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import time
from datetime import UTC, datetime

import genai_prices

from tokentrail.core import TokenUsage
from tokentrail.pricing import calculate_cost, configure_prices, price_context, usage_values

AT = datetime(2026, 11, 2, 15, 30, tzinfo=UTC)

# (our provider name, genai-prices provider id, model, usage, service tier): a mix shaped like
# production traffic: chat with and without cache hits, reasoning models, Anthropic cache
# writes (5m/1h), a long-context Gemini prompt, Bedrock profiles, a flex call.
CALLS: list[tuple[str, str, str, TokenUsage, str | None]] = [
    ("openai", "openai", "gpt-4o", TokenUsage(input_tokens=1200, output_tokens=350), None),
    ("openai", "openai", "gpt-4o-mini", TokenUsage(input_tokens=5400, output_tokens=220, cache_read_tokens=4096), None),
    ("openai", "openai", "gpt-4.1", TokenUsage(input_tokens=3100, output_tokens=900, cache_read_tokens=2048), None),
    ("openai", "openai", "gpt-5", TokenUsage(input_tokens=1493, output_tokens=125, cache_read_tokens=1280,
                                              reasoning_tokens=64), None),
    ("openai", "openai", "gpt-5-mini", TokenUsage(input_tokens=800, output_tokens=2320, reasoning_tokens=1792),
     "flex"),
    ("openai", "openai", "o4-mini", TokenUsage(input_tokens=2500, output_tokens=1600, reasoning_tokens=1200), None),
    ("openai", "openai", "gpt-5.6-sol", TokenUsage(input_tokens=4020, output_tokens=300, cache_read_tokens=3000,
                                                    cache_write_tokens=1012), None),
    ("openai", "openai", "text-embedding-3-small", TokenUsage(input_tokens=512), None),
    ("anthropic", "anthropic", "claude-sonnet-4-5", TokenUsage(input_tokens=1532, output_tokens=410,
                                                                cache_read_tokens=1111, cache_write_tokens=418), None),
    ("anthropic", "anthropic", "claude-haiku-4-5", TokenUsage(input_tokens=9000, output_tokens=700,
                                                               cache_write_tokens=8000,
                                                               details={"cache_write_1h_tokens": 8000}), None),
    ("anthropic", "anthropic", "claude-opus-4-1", TokenUsage(input_tokens=2000, output_tokens=1500,
                                                              reasoning_tokens=900), None),
    ("gcp.gemini", "google", "gemini-2.5-pro", TokenUsage(input_tokens=3520, output_tokens=900,
                                                           cache_read_tokens=3512, reasoning_tokens=400), None),
    ("gcp.gemini", "google", "gemini-2.5-pro", TokenUsage(input_tokens=250_000, output_tokens=2000), None),
    ("gcp.gemini", "google", "gemini-2.5-flash", TokenUsage(input_tokens=1989, output_tokens=310,
                                                             details={"input_tool_tokens": 1732}), None),
    ("aws.bedrock", "aws", "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
     TokenUsage(input_tokens=2435, output_tokens=200, cache_read_tokens=2074, cache_write_tokens=297), None),
    ("mistral_ai", "mistral", "mistral-large-2512", TokenUsage(input_tokens=1500, output_tokens=600,
                                                                cache_read_tokens=1000), None),
    ("deepseek", "deepseek", "deepseek-chat", TokenUsage(input_tokens=3000, output_tokens=800,
                                                          cache_read_tokens=2500), None),
    ("x_ai", "x-ai", "grok-4", TokenUsage(input_tokens=2100, output_tokens=750, reasoning_tokens=500), None),
    ("groq", "groq", "llama-3.3-70b-versatile", TokenUsage(input_tokens=1800, output_tokens=400), None),
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="alternating measurement rounds (median reported)")
    parser.add_argument("--repeat", type=int, default=100, help="passes over the call mix per round (ours)")
    args = parser.parse_args()

    # The public entry point with the default engine (supplement on, no overrides file); no
    # call of the mix is touched by the supplement, so both sides price the same catalog entry.
    engine = configure_prices(None)
    registry = engine.catalog.registry
    ours = [(p, m, u, t) for p, _, m, u, t in CALLS]
    theirs = [
        (genai_prices.Usage(**usage_values(u, None, registry)), m, g, price_context(t)) for _, g, m, u, t in CALLS
    ]

    for (p, m, u, t), (gu, gm, g, ctx) in zip(ours, theirs, strict=True):  # warm both, check identity
        mine = calculate_cost(p, m, u, at=AT, service_tier=t).total_cost
        reference = genai_prices.calc_price(gu, gm, provider_id=g, genai_request_timestamp=AT, price_context=ctx)
        if mine != reference.total_price:
            raise SystemExit(f"MISMATCH {p}/{m}: {mine} != {reference.total_price}")

    calculate = calculate_cost
    calc_price = genai_prices.calc_price

    def run_ours() -> float:
        start = time.perf_counter()
        for _ in range(args.repeat):
            for p, m, u, t in ours:
                calculate(p, m, u, at=AT, service_tier=t)
        return time.perf_counter() - start

    def run_theirs() -> float:
        start = time.perf_counter()
        for _ in range(max(1, args.repeat // 20)):
            for gu, gm, g, ctx in theirs:
                calc_price(gu, gm, provider_id=g, genai_request_timestamp=AT, price_context=ctx)
        return time.perf_counter() - start

    ours_us: list[float] = []
    theirs_us: list[float] = []
    gc.disable()
    try:
        for _ in range(args.rounds):
            ours_us.append(run_ours() / (args.repeat * len(ours)) * 1e6)
            theirs_us.append(run_theirs() / (max(1, args.repeat // 20) * len(theirs)) * 1e6)
    finally:
        gc.enable()
    # Best round of each (as timeit advises: slower rounds measure other load on the machine),
    # and the median of the per-round ratios (both measured back to back) as a cross-check.
    mine, reference = min(ours_us), min(theirs_us)
    ratios = sorted(t / o for o, t in zip(ours_us, theirs_us, strict=True))
    print(f"python {platform.python_version()} on {platform.machine()}, {len(CALLS)} calls in the mix, "
          f"{args.rounds} rounds")  # fmt: skip
    rows = [("tokentrail calculate_cost", mine, ours_us), ("genai_prices.calc_price", reference, theirs_us)]
    for label, best, rounds in rows:
        print(f"{label:26}: {best:8.2f} us/call (best round; median {statistics.median(rounds):.2f})")
    print(f"ratio                     : {reference / mine:8.1f}x  (median of per-round ratios "
          f"{statistics.median(ratios):.1f}x; target >= 30x; all totals identical)")  # fmt: skip


if __name__ == "__main__":
    main()
