"""One structured JSON log line per record through `logging`, for OpenSearch / Loki pipelines.

Each record is logged at INFO on the logger `tokentrail.usage`. The message is one JSON
object: the record's `to_dict()` (SPEC §1 wire format, nested sections intact) plus flat
top-level fields that log pipelines can index or use as labels without parsing nested JSON:

    {"event": "llm_call",                    # constant, to route/filter these lines
     "model": "gpt-4o-2024-08-06",           # provider_model, else request_model
     "input_tokens": 120, "output_tokens": 30, "total_tokens": 150,
     "cache_read_tokens": 100, "cache_write_tokens": 0, "reasoning_tokens": 10,  # when reported
     "total_cost": "0.000525",               # exact decimal string (never a float), when priced
     "currency": "USD", "pricing_status": "priced",
     "duration_ms": 812.5, "error_type": "RateLimitError",                        # when known
     "user_id": "u-1", "tenant_id": "acme", "feature": "search", ...             # attribution, when set
     # ...then every key of the record: id, operation, provider, request_model,
     # provider_model, status, started_at, token_usage, cost_metrics, attribution, ...
    }

Flat fields are omitted when the value is absent (like the record itself). None of the flat
names collide with a top-level record key, so the record part parses back with
`LLMCall.from_dict({k: v for k, v in line.items() if k in record keys})`. The same dict is
attached to the log record as the attribute `tokentrail_call` (`extra=`), for handlers that
format structured data themselves (e.g. a JSON formatter).

Choosing this sink is asking for these lines, so when the logger's level is unset it is set
to INFO, and when no handler exists anywhere up its hierarchy a stderr handler printing the
bare JSON message is attached (Python's last-resort handler would drop INFO lines). An app
with its own logging configuration keeps it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from tokentrail.core import LLMCall
from tokentrail.core.columns import record_json
from tokentrail.core.settings import Settings

LOGGER_NAME = "tokentrail.usage"
EVENT = "llm_call"

_TOKEN_NAMES = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


def log_fields(call: LLMCall) -> dict[str, Any]:
    """The JSON object logged for one record (shape in the module docstring)."""
    out: dict[str, Any] = {"event": EVENT}
    model = call.provider_model or call.request_model
    if model is not None:
        out["model"] = model
    usage = call.token_usage
    if usage is not None:
        for name in _TOKEN_NAMES:
            value = getattr(usage, name)
            if value is not None:
                out[name] = value
    cost = call.cost_metrics
    if cost is not None:
        if cost.total_cost is not None:
            out["total_cost"] = str(cost.total_cost)
        out["currency"] = cost.currency
        out["pricing_status"] = cost.pricing_status.value
    duration = call.duration_ms
    if duration is not None:
        out["duration_ms"] = duration
    if call.error is not None:
        out["error_type"] = call.error.type
    if call.attribution is not None:
        out.update(call.attribution.to_dict())
    out.update(call.to_dict())
    return out


class LogSink:
    """Logs every record as one JSON line on `tokentrail.usage` at INFO."""

    name = "log"

    def __init__(self, settings: Settings, logger: logging.Logger | None = None) -> None:
        self.settings = settings
        self.logger = logger or logging.getLogger(LOGGER_NAME)
        if self.logger.level == logging.NOTSET:
            self.logger.setLevel(logging.INFO)
        if not self.logger.hasHandlers():
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            self.logger.addHandler(handler)

    def write(self, calls: Sequence[LLMCall]) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return  # nobody listens: skip building the JSON
        for call in calls:
            payload = log_fields(call)
            logger.info("%s", record_json(payload), extra={"tokentrail_call": payload})

    def flush(self) -> None:
        for handler in self.logger.handlers:
            handler.flush()

    def close(self) -> None:
        self.flush()


__all__ = ["EVENT", "LOGGER_NAME", "LogSink", "log_fields"]
