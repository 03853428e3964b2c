"""The OpenTelemetry metrics the `otel` sink records for each `LLMCall`.

Always:
- `gen_ai.client.token.usage` (histogram, `{token}`, `gen_ai.token.type` = input | output),
  `gen_ai.client.operation.duration` (histogram, `s`) and
  `gen_ai.client.operation.time_to_first_chunk` (histogram, `s`, streams only): names, units
  and bucket boundaries from `docs/gen-ai/gen-ai-metrics.md` of semantic conventions v1.41.0;
- `tokentrail.cost` (counter, `USD`) by operation, provider, models, call status, pricing
  status, project and feature;
- the Semantic Kernel-style set of SPEC §4: `tokentrail.tokens_total` (counter by `model`,
  `operation`, `token_type`, `status`), `tokentrail.cost_total` (counter, USD) and
  `tokentrail.request_duration_ms` (histogram, ms), with the same label names the server's
  `/metrics` uses.

With `Settings.otel_usage_counters`, also the newer per-category instruments that replaced
the token histogram after v1.41 (open-telemetry/semantic-conventions-genai,
`docs/gen-ai/gen-ai-token-metrics.md`): counters `gen_ai.client.inference.usage.input_tokens`,
`.output_tokens`, `.cache_read.input_tokens`, `.cache_write.input_tokens`,
`.reasoning.output_tokens` (broken down by `gen_ai.token.modality`) and the per-operation
histograms `gen_ai.client.inference.operation.input_tokens` / `.output_tokens`.

Bucket boundaries are passed as `explicit_bucket_boundaries_advisory` (opentelemetry-api
>= 1.23); a View configured by the application still overrides them.
"""

from __future__ import annotations

from typing import Any

from tokentrail.core import LLMCall, ModelOperation
from tokentrail.sinks.otel_spans import (
    ERROR_TYPE,
    GEN_AI_OPERATION_NAME,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_TOKEN_TYPE,
    SERVER_ADDRESS,
    SERVER_PORT,
    duration_seconds,
    error_type,
    model_of,
    server_endpoint,
)

TOKEN_BUCKETS: tuple[float, ...] = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
DURATION_BUCKETS: tuple[float, ...] = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
DURATION_MS_BUCKETS: tuple[float, ...] = tuple(round(b * 1000) for b in DURATION_BUCKETS)

TOKEN_USAGE = "gen_ai.client.token.usage"
OPERATION_DURATION = "gen_ai.client.operation.duration"
TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
COST = "tokentrail.cost"
TOKENS_TOTAL = "tokentrail.tokens_total"
COST_TOTAL = "tokentrail.cost_total"
REQUEST_DURATION_MS = "tokentrail.request_duration_ms"
# newer per-category instruments (semantic-conventions-genai)
USAGE_COUNTERS: dict[str, str] = {
    "input": "gen_ai.client.inference.usage.input_tokens",
    "output": "gen_ai.client.inference.usage.output_tokens",
    "cache_read": "gen_ai.client.inference.usage.cache_read.input_tokens",
    "cache_write": "gen_ai.client.inference.usage.cache_write.input_tokens",
    "reasoning": "gen_ai.client.inference.usage.reasoning.output_tokens",
}
OPERATION_INPUT_TOKENS = "gen_ai.client.inference.operation.input_tokens"
OPERATION_OUTPUT_TOKENS = "gen_ai.client.inference.operation.output_tokens"
GEN_AI_TOKEN_MODALITY = "gen_ai.token.modality"

# Operations that are model inference: they get the per-category counters even without usage
# (recorded as 0 under the `unknown` modality, as the newer conventions ask for failed calls).
_INFERENCE = frozenset(
    {ModelOperation.CHAT, ModelOperation.TEXT_COMPLETION, ModelOperation.GENERATE_CONTENT, ModelOperation.EMBEDDINGS}
)


def gen_ai_metric_attributes(call: LLMCall) -> dict[str, Any]:
    """The attribute set shared by the `gen_ai.client.*` instruments."""
    attrs: dict[str, Any] = {GEN_AI_OPERATION_NAME: call.operation.value}
    if call.provider:
        attrs[GEN_AI_PROVIDER_NAME] = call.provider
    if call.request_model:
        attrs[GEN_AI_REQUEST_MODEL] = call.request_model
    if call.provider_model:
        attrs[GEN_AI_RESPONSE_MODEL] = call.provider_model
    address, port = server_endpoint(call)
    if address is not None:
        attrs[SERVER_ADDRESS] = address
    if port is not None:
        attrs[SERVER_PORT] = port
    kind = error_type(call)
    if kind is not None:
        attrs[ERROR_TYPE] = kind
    return attrs


class OTelMetrics:
    """Instruments created once on a meter; `record` is called per record by the worker."""

    def __init__(self, meter: Any, *, usage_counters: bool) -> None:
        self._token_usage = meter.create_histogram(
            TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self._duration = meter.create_histogram(
            OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._ttfc = meter.create_histogram(
            TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to receive the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._cost = meter.create_counter(COST, unit="USD", description="Cost of GenAI operations in US dollars.")
        self._tokens_total = meter.create_counter(TOKENS_TOTAL, unit="{token}", description="Tokens by type.")
        self._cost_total = meter.create_counter(COST_TOTAL, unit="USD", description="Cost in US dollars.")
        self._request_ms = meter.create_histogram(
            REQUEST_DURATION_MS,
            unit="ms",
            description="Request duration in milliseconds.",
            explicit_bucket_boundaries_advisory=DURATION_MS_BUCKETS,
        )
        self._usage_counters: dict[str, Any] = {}
        self._operation_tokens: dict[str, Any] = {}
        if usage_counters:
            for category, name in USAGE_COUNTERS.items():
                self._usage_counters[category] = meter.create_counter(name, unit="{token}")
            for direction, name in (("input", OPERATION_INPUT_TOKENS), ("output", OPERATION_OUTPUT_TOKENS)):
                self._operation_tokens[direction] = meter.create_histogram(
                    name, unit="{token}", explicit_bucket_boundaries_advisory=TOKEN_BUCKETS
                )

    def record(self, call: LLMCall) -> None:
        attrs = gen_ai_metric_attributes(call)
        usage = call.token_usage
        if usage is not None:
            # Known counts only: the conventions forbid reporting a usage nobody counted.
            if usage.input_tokens is not None:
                self._token_usage.record(usage.input_tokens, {**attrs, GEN_AI_TOKEN_TYPE: "input"})
            if usage.output_tokens is not None:
                self._token_usage.record(usage.output_tokens, {**attrs, GEN_AI_TOKEN_TYPE: "output"})
        seconds = duration_seconds(call)
        if seconds is not None:
            self._duration.record(seconds, attrs)
        perf = call.performance_metrics
        if perf is not None and perf.time_to_first_token_ms is not None:
            self._ttfc.record(perf.time_to_first_token_ms / 1000.0, attrs)
        cost = call.cost_metrics
        if cost is not None and cost.total_cost is not None:
            self._cost.add(float(cost.total_cost), self._cost_attributes(call))
        self._record_semantic_kernel_style(call, seconds)
        if self._usage_counters and (call.operation in _INFERENCE or (usage is not None and not usage.is_empty)):
            self._record_usage_counters(call, attrs)

    @staticmethod
    def _cost_attributes(call: LLMCall) -> dict[str, Any]:
        attrs: dict[str, Any] = {GEN_AI_OPERATION_NAME: call.operation.value, "tokentrail.status": call.status.value}
        if call.provider:
            attrs[GEN_AI_PROVIDER_NAME] = call.provider
        if call.request_model:
            attrs[GEN_AI_REQUEST_MODEL] = call.request_model
        if call.provider_model:
            attrs[GEN_AI_RESPONSE_MODEL] = call.provider_model
        if call.cost_metrics is not None:
            attrs["tokentrail.pricing_status"] = call.cost_metrics.pricing_status.value
        who = call.attribution
        if who is not None and who.project:
            attrs["tokentrail.project"] = who.project
        if who is not None and who.feature:
            attrs["tokentrail.feature"] = who.feature
        return attrs

    def _record_semantic_kernel_style(self, call: LLMCall, seconds: float | None) -> None:
        labels: dict[str, Any] = {"operation": call.operation.value, "status": call.status.value}
        model = model_of(call)
        if model:
            labels["model"] = model
        usage = call.token_usage
        if usage is not None:
            total = usage.total_tokens
            if total is None and usage.input_tokens is not None and usage.output_tokens is not None:
                total = usage.input_tokens + usage.output_tokens
            by_type = {
                "input": usage.input_tokens,
                "output": usage.output_tokens,
                "total": total,
                "cache_read": usage.cache_read_tokens,
                "cache_write": usage.cache_write_tokens,
                "reasoning": usage.reasoning_tokens,
            }
            for token_type, count in by_type.items():
                if count is not None:
                    self._tokens_total.add(count, {**labels, "token_type": token_type})
        cost = call.cost_metrics
        if cost is not None and cost.total_cost is not None:
            self._cost_total.add(float(cost.total_cost), labels)
        if seconds is not None:
            self._request_ms.record(seconds * 1000.0, labels)

    def _record_usage_counters(self, call: LLMCall, attrs: dict[str, Any]) -> None:
        # Modality: only audio is reported separately by providers; the rest is `unknown`.
        # The newer conventions put error.type on the per-operation histograms only.
        base = {key: value for key, value in attrs.items() if key != ERROR_TYPE}
        usage = call.token_usage
        counts: dict[str, tuple[int, int]] = {  # category -> (all, of which audio)
            "input": (usage.input_tokens or 0, usage.audio_input_tokens or 0) if usage else (0, 0),
            "output": (usage.output_tokens or 0, usage.audio_output_tokens or 0) if usage else (0, 0),
            "cache_read": ((usage.cache_read_tokens or 0) if usage else 0, 0),
            "cache_write": ((usage.cache_write_tokens or 0) if usage else 0, 0),
            "reasoning": ((usage.reasoning_tokens or 0) if usage else 0, 0),
        }
        for category, (count, audio) in counts.items():
            counter = self._usage_counters[category]
            if audio:
                counter.add(audio, {**base, GEN_AI_TOKEN_MODALITY: "audio"})
            if count - audio or not audio:
                counter.add(count - audio, {**base, GEN_AI_TOKEN_MODALITY: "unknown"})
        self._operation_tokens["input"].record(counts["input"][0], attrs)
        self._operation_tokens["output"].record(counts["output"][0], attrs)
