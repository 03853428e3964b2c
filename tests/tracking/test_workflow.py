from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from tokentrail.core import TokenUsage
from tokentrail.core.attribution import current_attribution
from tokentrail.tracking import current_workflow, emit_outcome, track_llm_call, track_tool_call, workflow


def _llm(input_tokens: int = 1000, output_tokens: int = 100) -> None:
    with track_llm_call(provider="openai", model="gpt-4o-mini") as tracker:
        tracker.set_tokens(input_tokens=input_tokens, output_tokens=output_tokens)


def test_context_manager_parents_every_record_and_rolls_up_cost(sink):
    with workflow("process-order", event_id="evt-1", customer_id="cust-9") as run:
        assert current_workflow() is run
        _llm()
        with track_tool_call(tool_name="charge_card"):
            _llm(500, 50)  # nested under the tool call
        _llm(2000, 10)
        emit_outcome("success", value_type="orders", value_amount=1, channel="web")
    records = sink.records()
    wf = records[-1]
    children = records[:-1]
    assert wf.operation == "invoke_workflow" and wf.name == "process-order" and wf.id == run.id
    assert all(c.trace_id == wf.trace_id for c in children)
    tool = next(c for c in children if c.operation == "execute_tool")
    nested = next(c for c in children if c.parent_id == tool.id)
    assert nested.token_usage.input_tokens == 500
    assert {c.parent_id for c in children if c is not nested} == {wf.id}
    for c in records:
        assert (c.attribution.workflow, c.attribution.event_id, c.attribution.customer_id) == (
            "process-order",
            "evt-1",
            "cust-9",
        )
    llm_costs = [c.cost_metrics.total_cost for c in children if c.cost_metrics is not None]
    assert len(llm_costs) == 3 and all(cost is not None for cost in llm_costs)
    assert wf.cost_metrics is None  # the roll-up never double counts
    assert wf.metadata["workflow.cost_usd"] == str(sum(llm_costs, Decimal(0)))
    assert (wf.metadata["workflow.calls"], wf.metadata["workflow.unpriced_calls"]) == (3, 0)
    assert wf.metadata["outcome.status"] == "success"
    assert (wf.metadata["outcome.value_type"], wf.metadata["outcome.value_amount"]) == ("orders", "1")
    assert wf.metadata["outcome.channel"] == "web"
    assert current_workflow() is None
    assert current_attribution()[0].workflow is None


def test_cost_per_outcome_from_stored_records(sink):
    for i in range(3):
        with workflow("ticket"):
            _llm(1000 * (i + 1), 100)
            emit_outcome("success" if i < 2 else "failed")
    records = sink.records()
    workflows = [r for r in records if r.operation == "invoke_workflow"]
    successes = [w for w in workflows if w.metadata["outcome.status"] == "success"]
    # the same figure from the children grouped by trace, and from the roll-up
    by_trace = {w.trace_id: Decimal(0) for w in successes}
    for r in records:
        if r.trace_id in by_trace and r.cost_metrics is not None:
            by_trace[r.trace_id] += r.cost_metrics.total_cost
    assert sum(by_trace.values()) == sum(Decimal(w.metadata["workflow.cost_usd"]) for w in successes)


def test_repeated_outcomes_add_amounts_of_the_same_type(sink):
    with workflow("batch"):
        for _ in range(3):
            emit_outcome("success", value_type="items_processed", value_amount=1)
        emit_outcome("partial", value_type="items_processed", value_amount="0.5")
    meta = sink.one().metadata
    assert (meta["outcome.status"], meta["outcome.value_amount"], meta["outcome.count"]) == ("partial", "3.5", 4)


def test_nested_workflows_share_the_trace_and_roll_up_to_both(sink):
    with workflow("outer") as outer:
        _llm()
        with workflow("inner") as inner:
            _llm()
    first, second, inner_rec, outer_rec = sink.records()
    assert inner_rec.parent_id == outer.id and inner_rec.id == inner.id
    assert second.parent_id == inner.id and first.parent_id == outer.id
    assert len({r.trace_id for r in (first, second, inner_rec, outer_rec)}) == 1
    assert inner_rec.metadata["workflow.calls"] == 1 and outer_rec.metadata["workflow.calls"] == 2
    assert second.attribution.workflow == "inner" and first.attribution.workflow == "outer"


def test_decorator_on_sync_function(sink):
    @workflow("double", customer_id="c1")
    def double(x: int) -> int:
        _llm()
        return x * 2

    assert double(21) == 42
    assert double(1) == 2
    records = sink.records()
    workflows = [r for r in records if r.operation == "invoke_workflow"]
    assert len(workflows) == 2 and workflows[0].id != workflows[1].id  # one run per call
    assert workflows[0].attribution.customer_id == "c1"


def test_decorator_on_async_function_and_concurrent_runs_are_isolated(sink):
    @workflow("fetch")
    async def fetch(i: int) -> int:
        await asyncio.sleep(0)
        _llm(100 + i, 1)
        await asyncio.sleep(0)
        emit_outcome("success", value_type="n", value_amount=i)
        return i

    async def main() -> list[int]:
        return await asyncio.gather(*(fetch(i) for i in range(4)))

    assert asyncio.run(main()) == [0, 1, 2, 3]
    records = sink.records()
    workflows = {r.id: r for r in records if r.operation == "invoke_workflow"}
    for r in records:
        if r.operation == "chat":
            parent = workflows[r.parent_id]
            assert parent.metadata["outcome.value_amount"] == str(r.token_usage.input_tokens - 100)


def test_async_context_manager(sink):
    async def main() -> None:
        async with workflow("a") as run:
            _llm()
            assert current_workflow() is run

    asyncio.run(main())
    chat, wf = sink.records()
    assert chat.parent_id == wf.id


def test_error_in_workflow_is_recorded_and_reraised(sink):
    @workflow("fails")
    def fails() -> None:
        raise LookupError("nope")

    with pytest.raises(LookupError):
        fails()
    wf = sink.one()
    assert (wf.status, wf.error.type, wf.error.message) == ("error", "LookupError", "nope")


def test_emit_outcome_outside_a_workflow_records_nothing(sink, caplog):
    assert emit_outcome("success") is False
    assert "outside a workflow" in caplog.text
    assert sink.records() == []


def test_unpriced_children_are_counted(sink):
    with workflow("w"), track_llm_call(provider="openai", model="unknown-model-zzz") as t:
        t.set_usage(TokenUsage.build(input_tokens=1, output_tokens=1))
    wf = sink.records()[-1]
    assert (wf.metadata["workflow.calls"], wf.metadata["workflow.unpriced_calls"]) == (1, 1)
    assert wf.metadata["workflow.cost_usd"] == "0"
