"""The log sink: one JSON line per record on `tokentrail.usage` at INFO."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from decimal import Decimal

from tokentrail.core import Attribution, CostBreakdown, ErrorInfo, LLMCall, TokenUsage
from tokentrail.core.settings import Settings
from tokentrail.sinks.log import LogSink, log_fields
from tokentrail.sinks.pipeline import Pipeline

RECORD_KEYS = {
    "id", "trace_id", "parent_id", "operation", "provider", "request_model", "provider_model", "name", "status",
    "error", "started_at", "completed_at", "token_usage", "units", "cost_metrics", "performance_metrics",
    "request_parameters", "response_metadata", "rate_limit_info", "attribution", "metadata", "provider_specific",
    "response_schema", "streaming", "cache_hit", "attempt", "estimated", "content",
}  # fmt: skip


def priced_call() -> LLMCall:
    call = LLMCall.new(
        provider="openai",
        request_model="gpt-4o",
        provider_model="gpt-4o-2024-08-06",
        token_usage=TokenUsage.build(input_tokens=1200, output_tokens=80, cache_read_tokens=1024, reasoning_tokens=16),
        cost_metrics=CostBreakdown(total_cost=Decimal("0.0017360"), pricing_status="priced"),
        attribution=Attribution(user_id="u-1", tenant_id="acme", feature="search"),
        metadata={"note": "line\nbreak"},
    )
    return call.replace(completed_at=call.started_at + timedelta(milliseconds=250))


def test_one_json_line_per_record_with_flat_fields(caplog):
    caplog.set_level(logging.INFO, logger="tokentrail.usage")
    calls = [priced_call(), LLMCall.new("embeddings", request_model="text-embedding-3-small")]
    LogSink(Settings.load()).write(calls)
    records = [r for r in caplog.records if r.name == "tokentrail.usage"]
    assert len(records) == 2 and all(r.levelno == logging.INFO for r in records)
    message = records[0].getMessage()
    assert "\n" not in message
    line = json.loads(message)
    assert line["event"] == "llm_call"
    assert line["model"] == "gpt-4o-2024-08-06"
    assert (line["input_tokens"], line["output_tokens"], line["total_tokens"]) == (1200, 80, 1280)
    assert (line["cache_read_tokens"], line["reasoning_tokens"]) == (1024, 16)
    assert line["total_cost"] == "0.0017360" and line["currency"] == "USD" and line["pricing_status"] == "priced"
    assert line["duration_ms"] == 250.0
    assert (line["user_id"], line["tenant_id"], line["feature"]) == ("u-1", "acme", "search")
    # the record itself is all there and parses back to the same call
    record = {k: v for k, v in line.items() if k in RECORD_KEYS}
    assert LLMCall.from_dict(record) == calls[0]
    assert records[0].tokentrail_call == line
    # absent values are omitted, not zero
    second = json.loads(records[1].getMessage())
    assert second["model"] == "text-embedding-3-small"
    for absent in ("input_tokens", "total_cost", "pricing_status", "duration_ms", "user_id"):
        assert absent not in second


def test_flat_fields_never_shadow_record_keys():
    call = priced_call().replace(status="error", error=ErrorInfo(type="Timeout"))
    fields = log_fields(call)
    assert fields["error_type"] == "Timeout"
    flat = set(fields) - RECORD_KEYS
    assert flat and not (flat & RECORD_KEYS)
    for key, value in call.to_dict().items():
        assert fields[key] == value


def test_nothing_is_built_when_the_logger_is_off(caplog):
    logger = logging.getLogger("tokentrail.usage")
    sink = LogSink(Settings.load())
    previous = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with caplog.at_level(logging.WARNING, logger="tokentrail.usage"):
            sink.write([priced_call()])
        assert not [r for r in caplog.records if r.name == "tokentrail.usage"]
    finally:
        logger.setLevel(previous)


def test_lines_reach_stderr_when_the_app_configured_no_logging(capsys):
    logger = logging.getLogger("tokentrail.usage.isolated-test")
    logger.propagate = False  # stands for an app without any handler
    try:
        sink = LogSink(Settings.load(), logger=logger)
        sink.write([priced_call()])
        sink.flush()
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and json.loads(err[0])["event"] == "llm_call"
    finally:
        logger.handlers.clear()
        logger.propagate = True


def test_through_the_pipeline(caplog):
    caplog.set_level(logging.INFO, logger="tokentrail.usage")
    pipeline = Pipeline([LogSink(Settings.load())], batch_size=10, flush_interval=0.05)
    calls = [priced_call() for _ in range(25)]
    for call in calls:
        pipeline.submit(call)
    assert pipeline.flush(timeout=10)
    ids = [json.loads(r.getMessage())["id"] for r in caplog.records if r.name == "tokentrail.usage"]
    assert ids == [call.id for call in calls]
    pipeline.shutdown(timeout=5)
