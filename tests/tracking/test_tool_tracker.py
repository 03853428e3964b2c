from __future__ import annotations

import pytest

from tokentrail.tracking import track_tool_call, workflow


def test_tool_record(sink, clock):
    with track_tool_call(tool_name="search_database", tool_call_id="call_abc") as tool:
        clock.advance(ms=12)
        tool.set_result(success=True, items_returned=10, bytes_processed=2048)
        tool.add_metadata(query_type="semantic")
    call = sink.one()
    assert (call.operation, call.name, call.status) == ("execute_tool", "search_database", "ok")
    assert call.metadata == {
        "tool_call_id": "call_abc",
        "success": True,
        "items_returned": 10,
        "bytes_processed": 2048,
        "query_type": "semantic",
    }
    assert call.duration_ms == pytest.approx(12)
    assert call.cost_metrics is None and call.token_usage is None


def test_tool_call_id_set_later_and_failure(sink):
    with track_tool_call(tool_name="fetch") as tool:
        tool.set_tool_call_id("call_9")
        tool.set_result(success=False, message="404 from upstream")
    call = sink.one()
    assert call.metadata["tool_call_id"] == "call_9"
    assert (call.status, call.error.type, call.error.message) == ("error", "ToolFailure", "404 from upstream")


def test_tool_error_is_recorded_and_reraised(sink):
    err = TimeoutError("too slow")
    with pytest.raises(TimeoutError) as raised, track_tool_call(tool_name="fetch"):
        raise err
    assert raised.value is err
    call = sink.one()
    assert (call.status, call.error.type) == ("error", "TimeoutError")


def test_set_error_explicitly(sink):
    with track_tool_call(tool_name="fetch") as tool:
        tool.set_error(ValueError("bad input"))
    call = sink.one()
    assert (call.error.type, call.error.message) == ("ValueError", "bad input")


def test_tool_inside_a_workflow_is_parented(sink):
    with workflow("answer") as run, track_tool_call(tool_name="lookup"):
        pass
    tool_call, wf = sink.records()
    assert tool_call.parent_id == run.id == wf.id
    assert tool_call.trace_id == wf.trace_id
    assert tool_call.attribution.workflow == "answer"
