# mypy cannot see that LLMTracker (the only class using this mixin) owns these slots.
# mypy: disable-error-code="misc"
"""The response-side setters of `LLMTracker` (what the instrumentation layer fills from a
provider's response), kept apart so the tracker module stays small."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokentrail.core import RateLimitInfo, ResponseMetadata, ValidationError
from tokentrail.tracking import clock as _clock
from tokentrail.tracking.operation import failed, jsonable

_RESPONSE_FIELDS = frozenset(ResponseMetadata._kinds)


class ResponseSetters:
    """Mixed into `LLMTracker`, which owns the slots these methods fill."""

    __slots__ = ()

    rate_limits: RateLimitInfo | None
    ttft_ms: float | None
    response: dict[str, str]
    deployment: str | None
    response_schema: Any
    provider_specific: dict[str, Any] | None
    _content: tuple[Any, Any] | None
    _t0: float

    def set_rate_limits(self, info: RateLimitInfo | None = None, **fields: Any) -> None:
        """Rate-limit state from response headers (limits, remaining, absolute reset times)."""
        try:
            if info is not None and not isinstance(info, RateLimitInfo):
                raise ValidationError("rate_limit_info", f"must be a RateLimitInfo, got {type(info).__name__}")
            if fields:
                base = (info or RateLimitInfo()).to_dict()
                base.update({k: v for k, v in fields.items() if v is not None})
                info = RateLimitInfo.from_dict(base)
            self.rate_limits = info
        except Exception as failure:
            if failed("llm.set_rate_limits", failure):
                raise

    def set_time_to_first_token(self, ms: float | None = None) -> None:
        """Time to the first streamed token in ms; with no argument, "the first token is now"."""
        try:
            if ms is None:
                ms = (_clock.get_clock().perf() - self._t0) * 1000.0
            elif isinstance(ms, bool) or not isinstance(ms, int | float) or ms < 0:
                raise ValidationError("time_to_first_token_ms", f"must be a non-negative number, got {ms!r}")
            self.ttft_ms = float(ms)
        except Exception as failure:
            if failed("llm.set_time_to_first_token", failure):
                raise

    def set_response_metadata(self, **fields: Any) -> None:
        """`finish_reason`, `model_version`, `request_id`, `client_request_id`,
        `system_fingerprint`, `service_tier`, `response_id` as the response reports them."""
        try:
            for key, value in fields.items():
                if key not in _RESPONSE_FIELDS:
                    raise ValidationError(f"response_metadata.{key}", "is not a response_metadata field")
                if value is not None:
                    self.response[key] = str(value)
        except Exception as failure:
            if failed("llm.set_response_metadata", failure):
                raise

    def set_deployment(self, name: str | None) -> None:
        """An Azure OpenAI deployment name: priced first through the overrides' deployment map
        (`[[alias]]`/`[[price]]` entries naming it), then as the model the response names."""
        try:
            self.deployment = str(name) if name else None
        except Exception as failure:
            if failed("llm.set_deployment", failure):
                raise

    def set_response_schema(self, schema: Mapping[str, Any] | None) -> None:
        """The JSON schema requested through `response_format` (R4U)."""
        try:
            self.response_schema = jsonable(schema) if schema is not None else None
        except Exception as failure:
            if failed("llm.set_response_schema", failure):
                raise

    def set_provider_specific(self, **kv: Any) -> None:
        try:
            specific = self.provider_specific if self.provider_specific is not None else {}
            specific.update(kv)
            self.provider_specific = specific
        except Exception as failure:
            if failed("llm.set_provider_specific", failure):
                raise

    def set_content(self, messages: Any = None, result: Any = None) -> None:
        """Prompt and answer; stored only when content capture is on (`capture_content`)."""
        try:
            self._content = (messages, result)
        except Exception as failure:
            if failed("llm.set_content", failure):
                raise
