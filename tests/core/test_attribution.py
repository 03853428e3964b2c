from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from tokentrail.core import ValidationError
from tokentrail.core.attribution import (
    SpanContext,
    attribution,
    current_attribution,
    current_span,
    new_trace_id,
    pop_span,
    push_span,
)


def test_empty_outside_any_block():
    attr, tags = current_attribution()
    assert attr.is_empty
    assert tags == {}


def test_nesting_inner_wins_outer_remains_and_is_restored():
    with attribution(user_id="u1", tenant_id="t1", plan="free"):
        with attribution(user_id="u2", feature="search", plan="pro", region="eu") as inner:
            attr, tags = current_attribution()
            assert inner == attr
            assert (attr.user_id, attr.tenant_id, attr.feature) == ("u2", "t1", "search")
            assert tags == {"plan": "pro", "region": "eu"}
        attr, tags = current_attribution()
        assert (attr.user_id, attr.tenant_id, attr.feature) == ("u1", "t1", None)
        assert tags == {"plan": "free"}
    assert current_attribution()[0].is_empty


def test_none_keeps_the_outer_value():
    with attribution(user_id="u1"), attribution(user_id=None, session_id="s1"):
        attr, _ = current_attribution()
        assert (attr.user_id, attr.session_id) == ("u1", "s1")


def test_every_named_field_is_accepted():
    values = {
        "user_id": "u",
        "session_id": "s",
        "tenant_id": "t",
        "feature": "f",
        "project": "p",
        "environment": "prod",
        "customer_id": "c",
        "event_id": "e",
        "workflow": "w",
        "service_name": "svc",
    }
    with attribution(**values):
        attr, tags = current_attribution()
    assert attr.to_dict() == values
    assert tags == {}


def test_integer_ids_become_text_and_other_types_are_refused():
    with attribution(user_id=42):
        assert current_attribution()[0].user_id == "42"
    with pytest.raises(ValidationError) as err:
        attribution(user_id=["x"])
    assert err.value.field == "user_id"


def test_tags_are_a_copy():
    with attribution(plan="pro"):
        _, tags = current_attribution()
        tags["plan"] = "changed"
        assert current_attribution()[1] == {"plan": "pro"}


def test_exit_restores_even_when_the_block_raises():
    with pytest.raises(RuntimeError), attribution(user_id="u1"):
        raise RuntimeError("boom")
    assert current_attribution()[0].is_empty


def test_flows_into_asyncio_tasks_and_tasks_are_isolated():
    async def read(delay: float) -> tuple[str | None, str | None]:
        await asyncio.sleep(delay)
        attr, _ = current_attribution()
        return attr.user_id, attr.feature

    async def child(user: str) -> tuple[str | None, str | None]:
        async with attribution(user_id=user):
            await asyncio.sleep(0)
            return await read(0)

    async def main() -> None:
        async with attribution(user_id="outer", feature="chat"):
            inherited = asyncio.create_task(read(0.001))
            # two tasks setting different users concurrently do not see each other
            a, b = await asyncio.gather(child("a"), child("b"))
            assert await inherited == ("outer", "chat")
            assert a == ("a", "chat")
            assert b == ("b", "chat")
            # and the children's blocks did not leak into the parent
            assert current_attribution()[0].user_id == "outer"

    asyncio.run(main())


def test_flows_into_threads_started_with_a_copied_context():
    seen: dict[str, str | None] = {}

    def work(key: str) -> None:
        seen[key] = current_attribution()[0].user_id

    with attribution(user_id="u1"):
        ctx = contextvars.copy_context()
        copied = threading.Thread(target=ctx.run, args=(work, "copied"))
        plain = threading.Thread(target=work, args=("plain",))
        copied.start()
        plain.start()
        copied.join()
        plain.join()
    assert seen == {"copied": "u1", "plain": None}


def test_span_context_push_and_pop():
    assert current_span() is None
    outer = SpanContext(new_trace_id(), "span-1")
    token = push_span(outer)
    inner_token = push_span(SpanContext(outer.trace_id, "span-2"))
    assert current_span() == SpanContext(outer.trace_id, "span-2")
    pop_span(inner_token)
    assert current_span() is outer
    pop_span(token)
    assert current_span() is None


def test_trace_ids_are_otel_shaped_and_unique():
    ids = {new_trace_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
