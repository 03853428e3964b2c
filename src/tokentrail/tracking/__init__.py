"""The tracking SDK: runtime (configure/flush/shutdown/stats), the manual API (Botanu
trackers, workflows and outcomes, faciliter standalone logging), attribution, estimation and
the R4U client. Imports core, pricing and sinks only."""

from __future__ import annotations

from tokentrail.core.attribution import attribution, current_attribution
from tokentrail.tracking.client import Client, TraceError
from tokentrail.tracking.decorators import get_usage_extractor, llm_instrumented, set_usage_extractor
from tokentrail.tracking.estimate import count_message_tokens, count_tokens, estimate_usage, estimation_method
from tokentrail.tracking.guard import set_reraise
from tokentrail.tracking.llm import LLMTracker, track_llm_call
from tokentrail.tracking.runtime import configure, current_settings, flush, shutdown, stats
from tokentrail.tracking.standalone import (
    log_embedding_usage,
    log_llm_usage,
    log_ocr_usage,
    set_llm_attributes,
    set_token_usage,
)
from tokentrail.tracking.tool import ToolTracker, track_tool_call
from tokentrail.tracking.workflow import WorkflowRun, current_workflow, emit_outcome, workflow

__all__ = [
    "Client",
    "LLMTracker",
    "ToolTracker",
    "TraceError",
    "WorkflowRun",
    "attribution",
    "configure",
    "count_message_tokens",
    "count_tokens",
    "current_attribution",
    "current_settings",
    "current_workflow",
    "emit_outcome",
    "estimate_usage",
    "estimation_method",
    "flush",
    "get_usage_extractor",
    "llm_instrumented",
    "log_embedding_usage",
    "log_llm_usage",
    "log_ocr_usage",
    "set_llm_attributes",
    "set_reraise",
    "set_token_usage",
    "set_usage_extractor",
    "shutdown",
    "stats",
    "track_llm_call",
    "track_tool_call",
    "workflow",
]
