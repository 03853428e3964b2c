"""tokentrail: exactly what every LLM call cost, who caused it, how fast it was and how close
you are to your limits.

The public API is this module's `__all__` (pinned by tests/test_public_api.py); everything
else lives in private modules and may change.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from tokentrail import testing
from tokentrail.core import (
    Attribution,
    CallStatus,
    CostBreakdown,
    LLMCall,
    ModelOperation,
    PricingStatus,
    TokenUsage,
    Units,
    ValidationError,
    normalize_provider,
)
from tokentrail.core.errors import BudgetExceeded
from tokentrail.core.settings import Settings
from tokentrail.instrument import instrument, uninstrument, wrap_anthropic, wrap_bedrock, wrap_gemini, wrap_openai
from tokentrail.pricing import calculate_cost
from tokentrail.providers import extract_usage
from tokentrail.tracking import (
    Client,
    LLMTracker,
    ToolTracker,
    attribution,
    configure,
    emit_outcome,
    flush,
    llm_instrumented,
    log_embedding_usage,
    log_llm_usage,
    log_ocr_usage,
    set_llm_attributes,
    set_token_usage,
    set_usage_extractor,
    shutdown,
    stats,
    track_llm_call,
    track_tool_call,
    workflow,
)

try:
    __version__ = _version("tokentrail")
except PackageNotFoundError:  # running from a source tree without metadata
    __version__ = "0.0.0"

# `@llm_instrumented(tokens_from_response=True)` reads usage through the provider adapters;
# tracking may not import providers (layering), so the facade connects them.
set_usage_extractor(extract_usage)

__all__ = [
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
]
