"""Instrumentation overhead on a real OpenAI client (SPEC §9, issue 4): printed, never asserted.

    python bench/overhead.py                        # calls and streams, 9 rounds
    python bench/overhead.py --calls 2000 --rounds 9 --chunks 2000
    python bench/overhead.py --profile              # where the time goes, caller and worker

(a) Non-streaming `chat.completions.create` on `openai.OpenAI` whose `httpx2.MockTransport`
    returns a fixed recorded body (tests' test_chat_completion_metrics cassette, with its
    rate-limit and request-id headers). Each round times the same loop of `--calls` calls
    three ways, in an order that rotates every round:
      - bare: nothing instrumented;
      - tokentrail: `tokentrail.instrument()`, the default SQLite sink in a temporary
        TOKENTRAIL_HOME, the loop ended by `tokentrail.flush()` so the background worker's
        writing is inside the timing;
      - OpenTelemetry: `opentelemetry-instrumentation-openai-v2` with an SDK TracerProvider
        (BatchSpanProcessor into an InMemorySpanExporter) and a MeterProvider with an
        InMemoryMetricReader, the loop ended by `force_flush()` of both, so it does its
        normal work (span + duration and token histograms) with its background included.
    Added µs per call = (loop - bare loop of the same round) / calls; the median over rounds.
(b) Streaming: a recorded-style chat stream of `--chunks` content chunks (plus the usage
    chunk the caller asked for) read to the end, bare vs instrumented, alternating:
    added µs per chunk = (instrumented - bare) / chunks, and the same with a 10-chunk stream
    subtracted so the per-call part cancels ("marginal").
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["TOKENTRAIL_HOME"] = tempfile.mkdtemp(prefix="tokentrail-bench-")

import httpx2
import openai
import yaml

import tokentrail
from tokentrail.instrument import instrument, uninstrument

CASSETTE = (
    Path(__file__).resolve().parents[1]
    / "tests/fixtures/cassettes/otel-python-contrib/instrumentation-genai"
    / "opentelemetry-instrumentation-openai-v2/tests/cassettes/test_chat_completion_metrics.yaml"
)
_SKIPPED = {"content-length", "transfer-encoding", "connection", "content-encoding"}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, openai {openai.__version__}, "
        f"httpx2 {httpx2.__version__}, load average {load:.2f} at start"
    )


def recorded() -> tuple[dict[str, Any], list[tuple[str, str]], bytes]:
    raw = yaml.safe_load(CASSETTE.read_text(encoding="utf-8"))["interactions"][0]
    headers = [
        (k, str(v[0] if isinstance(v, list) else v))
        for k, v in raw["response"]["headers"].items()
        if k.lower() not in _SKIPPED
    ]
    return json.loads(raw["request"]["body"]), headers, raw["response"]["body"]["string"].encode()


def make_client(handler: Callable[[httpx2.Request], httpx2.Response]) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="bench", max_retries=0, http_client=httpx2.Client(transport=httpx2.MockTransport(handler))
    )


class OTel:
    """opentelemetry-instrumentation-openai-v2 doing its normal work into in-memory exporters."""

    def __init__(self) -> None:
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(BatchSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.instrumentor = OpenAIInstrumentor()

    def on(self) -> None:
        self.instrumentor.instrument(tracer_provider=self.tracer_provider, meter_provider=self.meter_provider)

    def off(self) -> None:
        self.instrumentor.uninstrument()

    def flush(self) -> None:
        self.tracer_provider.force_flush()
        self.meter_provider.force_flush()
        self.exporter.clear()


def timed_loop(call: Callable[[], Any], n: int, finish: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter_ns()
    for _ in range(n):
        call()
    finish()
    return (time.perf_counter_ns() - start) / n / 1000.0


def bench_calls(calls: int, rounds: int) -> dict[str, Any]:
    request, headers, body = recorded()

    def handler(req: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers=headers, content=body)

    sdk = make_client(handler)

    def one() -> Any:
        return sdk.chat.completions.create(**request)

    try:
        otel: OTel | None = OTel()
    except ImportError as exc:
        print(f"OpenTelemetry instrumentation not importable ({exc}); comparing with tokentrail only")
        otel = None
    tokentrail.configure()  # the default: SQLite at $TOKENTRAIL_HOME/tokentrail.db

    def run(mode: str, n: int) -> float:
        if mode == "tokentrail":
            instrument("openai")
            try:
                return timed_loop(one, n, tokentrail.flush)
            finally:
                uninstrument()
        if mode == "otel":
            assert otel is not None
            otel.on()
            try:
                return timed_loop(one, n, otel.flush)
            finally:
                otel.off()
        return timed_loop(one, n, lambda: None)

    modes = ["bare", "tokentrail"] + (["otel"] if otel else [])
    for mode in modes:  # warm-up: imports, pricing index, SQLite schema, caches
        run(mode, max(50, calls // 10))
    added: dict[str, list[float]] = {m: [] for m in modes if m != "bare"}
    bare_times: list[float] = []
    for r in range(rounds):
        order = modes[r % len(modes) :] + modes[: r % len(modes)]
        got = {mode: run(mode, calls) for mode in order}
        bare_times.append(got["bare"])
        for mode in added:
            added[mode].append(got[mode] - got["bare"])
    before = tokentrail.stats()
    assert before.dropped == 0, "records were dropped: the figure would be meaningless"
    out = {"bare_us": statistics.median(bare_times)}
    for mode, values in added.items():
        out[f"{mode}_added_us"] = statistics.median(values)
        out[f"{mode}_rounds"] = [round(v, 1) for v in values]
    return out


def stream_body(chunks: int) -> bytes:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini-2024-07-18"}
    parts = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    parts += [{**base, "choices": [{"index": 0, "delta": {"content": " tok"}, "finish_reason": None}]}] * chunks
    parts.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    usage = {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks}
    parts.append({**base, "choices": [], "usage": usage})
    return ("".join(f"data: {json.dumps(p)}\n\n" for p in parts) + "data: [DONE]\n\n").encode()


def bench_streams(chunks: int, rounds: int, *, include_usage: bool) -> dict[str, float]:
    bodies = {n: stream_body(n) for n in (10, chunks)}
    current = {"n": chunks}

    def handler(req: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=bodies[current["n"]])

    sdk = make_client(handler)
    request: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "count"}],
        "stream": True,
    }
    if include_usage:
        request["stream_options"] = {"include_usage": True}
    tokentrail.configure()

    def read(n: int) -> float:
        current["n"] = n
        gc.collect()
        start = time.perf_counter_ns()
        for _ in sdk.chat.completions.create(**request):
            pass
        tokentrail.flush()
        return (time.perf_counter_ns() - start) / 1000.0

    per_chunk: list[float] = []
    marginal: list[float] = []
    for _ in range(2):  # warm-up
        read(chunks)
    for r in range(rounds):
        results: dict[tuple[bool, int], float] = {}
        for on in (False, True) if r % 2 == 0 else (True, False):
            if on:
                instrument("openai", inject_stream_usage=False)
            try:
                for n in (10, chunks):
                    results[(on, n)] = min(read(n) for _ in range(3))
            finally:
                if on:
                    uninstrument()
        per_chunk.append((results[(True, chunks)] - results[(False, chunks)]) / chunks)
        long_added = results[(True, chunks)] - results[(False, chunks)]
        short_added = results[(True, 10)] - results[(False, 10)]
        marginal.append((long_added - short_added) / (chunks - 10))
    return {"per_chunk_us": statistics.median(per_chunk), "marginal_us": statistics.median(marginal)}


def bench_isolated(calls: int, rounds: int) -> dict[str, float]:
    """The instrumentation alone: the engine and the OpenAI plug-in around a stand-in for
    `Completions.create` that returns an already-parsed recorded `ChatCompletion` (and hands
    the engine the recorded HTTP response, as the SDK's `_process_response` hook does), the
    record built, priced and written by the default SQLite sink (`flush()` included).
    Without the SDK's own ~700 µs of work in the loop the figure is far less noisy."""
    from openai._models import construct_type
    from openai.types.chat import ChatCompletion

    from tokentrail.instrument import engine
    from tokentrail.instrument.registry import REGISTRY

    request, headers, body = recorded()
    completion = construct_type(type_=ChatCompletion, value=json.loads(body))
    sent = httpx2.Request(
        "POST", "https://api.openai.com/v1/chat/completions", headers={"x-stainless-retry-count": "0"}
    )
    http = httpx2.Response(200, headers=headers, content=body, request=sent)

    class Client:
        base_url = httpx2.URL("https://api.openai.com/v1/")

    class Resource:
        _client = Client()

        def create(self, **kwargs: Any) -> Any:
            call = engine.current_call()
            if call is not None:
                call.http_response = http
                call.attempt = 1
            return completion

    plugin = REGISTRY.plugin("openai")
    patch = next(p for p in plugin.patches() if p.endpoint is not None and p.endpoint.api == "chat.completions")
    wrapped = engine.wrap_method(Resource.create, patch.endpoint, plugin, engine.Switch())
    resource = Resource()
    tokentrail.configure()

    def loop(fn: Callable[..., Any]) -> float:
        return timed_loop(lambda: fn(resource, **request), calls, tokentrail.flush)

    loop(wrapped)
    added = []
    for _ in range(rounds):
        bare = loop(Resource.create)
        added.append(loop(wrapped) - bare)
    return {"added_us": statistics.median(added), "best_us": min(added)}


def bench_chunk_cost(chunks: int, rounds: int) -> dict[str, float]:
    """Per-chunk cost of the stream proxy and the chat stream state alone: already-parsed SDK
    chunks through `streams.iterate` vs the same generator bare (record emission excluded)."""
    from openai._models import construct_type
    from openai.types.chat import ChatCompletionChunk

    from tokentrail.instrument.engine import Call
    from tokentrail.instrument.openai_streams import chat_stream_state
    from tokentrail.instrument.streams import StreamTracking, iterate

    text = stream_body(chunks).decode()
    parsed = [json.loads(line[6:]) for line in text.split("\n\n") if line.startswith("data: {")]
    objects = [construct_type(type_=ChatCompletionChunk, value=d) for d in parsed]

    class Tracker:
        def set_time_to_first_token(self) -> None:
            pass

    def source() -> Any:
        yield from objects

    def bare() -> int:
        start = time.perf_counter_ns()
        for _ in source():
            pass
        return time.perf_counter_ns() - start

    def tracked(collect: bool) -> int:
        call = Call.__new__(Call)
        call.tracker = Tracker()  # type: ignore[assignment]
        state = chat_stream_state(None, "chat.completions", hide_usage=False, collect=collect)
        tt = StreamTracking(call, state)
        tt.done = True  # the stream is not recorded here: only the per-chunk path is timed
        start = time.perf_counter_ns()
        for _ in iterate(tt, source()):
            pass
        return time.perf_counter_ns() - start

    out: dict[str, float] = {}
    for collect in (False, True):
        values = []
        for _ in range(rounds):
            gc.collect()
            base = bare()
            values.append((tracked(collect) - base) / len(objects) / 1000.0)
        out["collect" if collect else "plain"] = statistics.median(values)
    return out


def bench_anthropic_chunk_cost(chunks: int, rounds: int) -> dict[str, float]:
    """Per-event cost of the stream proxy and the Anthropic Messages stream state alone:
    already-parsed `RawMessageStreamEvent`s (message_start, `chunks` text deltas, message_delta,
    message_stop) through `streams.iterate` vs the same generator bare (record emission excluded)."""
    from anthropic.types import RawMessageStreamEvent
    from pydantic import TypeAdapter

    from tokentrail.instrument.anthropic_streams import MessagesStreamState
    from tokentrail.instrument.engine import Call
    from tokentrail.instrument.streams import StreamTracking, iterate

    usage = {"input_tokens": 12, "output_tokens": 1, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
    message = {"id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": []}
    raw: list[dict[str, Any]] = [
        {"type": "message_start", "message": {**message, "stop_reason": None, "usage": usage}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    raw += [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " tok"}}] * chunks
    raw += [
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": chunks}},
        {"type": "message_stop"},
    ]
    adapter: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
    objects = [adapter.validate_python(event) for event in raw]

    class Tracker:
        def set_time_to_first_token(self) -> None:
            pass

    def source() -> Any:
        yield from objects

    def bare() -> int:
        start = time.perf_counter_ns()
        for _ in source():
            pass
        return time.perf_counter_ns() - start

    def tracked(collect: bool) -> int:
        call = Call.__new__(Call)
        call.tracker = Tracker()  # type: ignore[assignment]
        tt = StreamTracking(call, MessagesStreamState(None, collect=collect))
        tt.done = True  # the stream is not recorded here: only the per-event path is timed
        start = time.perf_counter_ns()
        for _ in iterate(tt, source()):
            pass
        return time.perf_counter_ns() - start

    out: dict[str, float] = {}
    for collect in (False, True):
        values = []
        for _ in range(rounds):
            gc.collect()
            base = bare()
            values.append((tracked(collect) - base) / len(objects) / 1000.0)
        out["collect" if collect else "plain"] = statistics.median(values)
    return out


def profile(calls: int) -> None:
    """cProfile of the caller thread (tokentrail functions by own time) and the worker's
    time per record in the SQLite sink."""
    request, headers, body = recorded()
    sdk = make_client(lambda req: httpx2.Response(200, headers=headers, content=body))
    tokentrail.configure()
    from tokentrail.tracking import runtime

    sink = runtime.get_runtime().pipeline.sinks[0]
    spent = {"ns": 0, "records": 0}
    write = sink.write

    def timed_write(batch: Any) -> None:
        start = time.perf_counter_ns()
        write(batch)
        spent["ns"] += time.perf_counter_ns() - start
        spent["records"] += len(batch)

    sink.write = timed_write  # type: ignore[method-assign]
    instrument("openai")
    for _ in range(200):
        sdk.chat.completions.create(**request)
    tokentrail.flush()
    spent.update(ns=0, records=0)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        sdk.chat.completions.create(**request)
    profiler.disable()
    tokentrail.flush()
    uninstrument()
    stats = pstats.Stats(profiler)
    print(f"caller thread, {calls} calls (cProfile; times inflated by profiling):")
    rows = []
    for (path, line, name), (_cc, _nc, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if "tokentrail" in path or "genai_prices" in path:
            short = path.split("src/tokentrail/")[-1] if "src/tokentrail/" in path else path.rsplit("/", 2)[-1]
            rows.append((tottime, cumtime, f"{short}:{line}({name})"))
    for tottime, cumtime, label in sorted(rows, reverse=True)[:25]:
        print(f"  own {tottime / calls * 1e6:7.2f} µs  cumulative {cumtime / calls * 1e6:7.2f} µs  {label}")
    if spent["records"]:
        print(f"worker: SQLite sink.write {spent['ns'] / spent['records'] / 1000:.1f} µs per record")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--part", choices=["calls", "streams", "all"], default="all")
    args = parser.parse_args()
    print(machine())
    if args.profile:
        profile(args.calls)
        return
    if args.part in ("calls", "all"):
        iso = bench_isolated(max(args.calls, 2000), args.rounds)
        print(
            f"(a0) instrumentation alone (stand-in SDK method, SQLite sink, flush included): "
            f"{iso['added_us']:.1f} µs per call (best round {iso['best_us']:.1f})"
        )
        got = bench_calls(args.calls, args.rounds)
        print(
            f"(a) non-streaming call, bare SDK: {got['bare_us']:.1f} µs per call "
            f"({args.calls} calls x {args.rounds} rounds)"
        )
        ours = got["tokentrail_added_us"]
        print(f"    tokentrail added: {ours:.1f} µs per call (target <= 15), rounds {got['tokentrail_rounds']}")
        if "otel_added_us" in got:
            theirs = got["otel_added_us"]
            print(f"    OpenTelemetry openai-v2 added: {theirs:.1f} µs per call, rounds {got['otel_rounds']}")
            print(f"    ratio tokentrail / OpenTelemetry: {ours / theirs:.2f} (target <= 0.10)")
    if args.part in ("streams", "all"):
        cost = bench_chunk_cost(args.chunks, max(5, args.rounds))
        print(
            f"(b0) stream proxy + chat stream state alone: {cost['plain']:.3f} µs per chunk, "
            f"{cost['collect']:.3f} with the text kept for estimation (target <= 0.5)"
        )
        anthropic_cost = bench_anthropic_chunk_cost(args.chunks, max(5, args.rounds))
        print(
            f"(b1) stream proxy + Anthropic Messages stream state alone: {anthropic_cost['plain']:.3f} µs per event, "
            f"{anthropic_cost['collect']:.3f} with the text kept for content capture (target <= 0.5)"
        )
        for include_usage in (True, False):
            got_s = bench_streams(args.chunks, max(3, args.rounds // 2), include_usage=include_usage)
            label = "usage requested" if include_usage else "no usage: text kept for estimation"
            print(
                f"(b) stream of {args.chunks} chunks, {label}: added {got_s['per_chunk_us']:.3f} µs per chunk, "
                f"marginal {got_s['marginal_us']:.3f} µs per chunk (target <= 0.5)"
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
