"""`track_tool_call` / `ToolTracker`: one `execute_tool` record per tool or function the model
asked for, parented to the workflow or agent step around it."""

from __future__ import annotations

from typing import Any

from tokentrail.core import LLMCall, ModelOperation
from tokentrail.core.settings import Settings
from tokentrail.tracking.guard import guard
from tokentrail.tracking.operation import Operation, jsonable


class ToolTracker(Operation):
    """Collects a tool execution's outcome; the record is sent when the block ends."""

    __slots__ = ("result", "tool_call_id")

    def __init__(self, tool_name: str, tool_call_id: str | None = None) -> None:
        super().__init__(ModelOperation.EXECUTE_TOOL, name=str(tool_name))
        self.tool_call_id = str(tool_call_id) if tool_call_id is not None else None
        self.result: dict[str, Any] = {}

    def set_result(self, success: bool = True, **details: Any) -> None:
        """The outcome (`success`, and e.g. `items_returned`, `bytes_processed`); they land in
        the record's metadata. `success=False` marks the record as an error."""
        with guard("tool.set_result"):
            self.result = {"success": bool(success), **details}
            if not success and self.error is None:
                self.set_error(
                    "ToolFailure", details.get("message") if isinstance(details.get("message"), str) else None
                )

    def set_tool_call_id(self, tool_call_id: str) -> None:
        """The id the model gave the tool call (e.g. `call_abc123`)."""
        with guard("tool.set_tool_call_id"):
            self.tool_call_id = str(tool_call_id)

    def _record(self, settings: Settings) -> LLMCall:
        common = self._common(settings)
        extra: dict[str, Any] = {}
        if self.tool_call_id is not None:
            extra["tool_call_id"] = self.tool_call_id
        extra.update(self.result)
        if extra:
            # tool facts first, the user's own metadata (and context tags) may override them
            common["metadata"] = jsonable({**extra, **(common["metadata"] or {})})
        return LLMCall(**common)


def track_tool_call(tool_name: str, tool_call_id: str | None = None) -> ToolTracker:
    """Track one tool execution: `with track_tool_call(tool_name=, tool_call_id=) as tool:`."""
    return ToolTracker(tool_name, tool_call_id)


__all__ = ["ToolTracker", "track_tool_call"]
