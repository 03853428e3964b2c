"""OTLP/HTTP trace ingest: decoding export requests (`decode`) and turning GenAI spans into
priced call records (`genai_map`). The route is `tokentrail.server.api.otlp`."""

from __future__ import annotations

from tokentrail.server.otlp.decode import OtlpFormat, SpanView, decode_request, iter_spans
from tokentrail.server.otlp.genai_map import record_id, span_to_call, span_usage
from tokentrail.server.otlp.stats import OtlpCounters, otlp_counters

__all__ = [
    "OtlpCounters",
    "OtlpFormat",
    "SpanView",
    "decode_request",
    "iter_spans",
    "otlp_counters",
    "record_id",
    "span_to_call",
    "span_usage",
]
