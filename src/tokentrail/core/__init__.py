"""Record types and token accounting. Imports nothing else of tokentrail."""

from __future__ import annotations

from tokentrail.core.cost import CostBreakdown, PricingStatus
from tokentrail.core.errors import MissingExtraError, TokentrailError, ValidationError
from tokentrail.core.names import ModelOperation, normalize_provider
from tokentrail.core.record import CallStatus, LLMCall, utcnow, uuid7
from tokentrail.core.sections import (
    ATTRIBUTION_FIELDS,
    Attribution,
    Content,
    ErrorInfo,
    PerformanceMetrics,
    RateLimitInfo,
    RequestParameters,
    ResponseMetadata,
)
from tokentrail.core.usage import TokenUsage, Units

__all__ = [
    "ATTRIBUTION_FIELDS",
    "Attribution",
    "CallStatus",
    "Content",
    "CostBreakdown",
    "ErrorInfo",
    "LLMCall",
    "MissingExtraError",
    "ModelOperation",
    "PerformanceMetrics",
    "PricingStatus",
    "RateLimitInfo",
    "RequestParameters",
    "ResponseMetadata",
    "TokenUsage",
    "TokentrailError",
    "Units",
    "ValidationError",
    "normalize_provider",
    "utcnow",
    "uuid7",
]
