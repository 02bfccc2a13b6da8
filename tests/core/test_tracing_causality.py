"""Causality: parent and child ids across nested spans, decorators, asyncio tasks and threads."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from system0.core import tracing
from system0.core.tracing import FinishedSpan, Span, current_span, span


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    tracing.set_sampling(1.0)
    tracing.drain_spans()
    yield
    tracing.drain_spans()


def by_name(spans: list[FinishedSpan]) -> dict[str, FinishedSpan]:
    return {s.name: s for s in spans}


def test_nested_spans_link_parent_and_child_and_restore_the_current_span() -> None:
    assert current_span() is None
    with span("outer", user="u1") as outer:
        assert current_span() is outer
        with span("inner") as inner:
            assert current_span() is inner
            assert inner.trace_id == outer.trace_id
            assert inner.parent_id == outer.span_id
        assert current_span() is outer
    assert current_span() is None
    got = by_name(tracing.drain_spans())
    assert got["outer"].parent_id is None
    assert got["inner"].parent_id == got["outer"].span_id
    assert got["inner"].trace_id == got["outer"].trace_id
    assert got["outer"].attributes == {"user": "u1"}
    assert got["outer"].start_ns <= got["inner"].start_ns <= got["inner"].end_ns
    assert got["inner"].end_ns <= got["outer"].end_ns


def test_separate_roots_start_separate_traces() -> None:
    with span("a") as a:
        pass
    with span("b") as b:
        pass
    assert a.trace_id != b.trace_id
    assert a.trace_id != 0 and a.span_id != 0 and b.span_id != 0


def test_duration_covers_the_work() -> None:
    with span("sleep"):
        time.sleep(0.02)
    (s,) = tracing.drain_spans()
    assert 15_000_000 <= s.duration_ns < 1_000_000_000
    assert s.end_unix_ns - s.start_unix_ns == s.duration_ns
    assert abs(s.end_unix_ns - time.time_ns()) < 5_000_000_000


def test_an_exception_marks_the_span_error_and_propagates() -> None:
    with pytest.raises(KeyError, match="missing"), span("lookup"):
        raise KeyError("missing")
    (s,) = tracing.drain_spans()
    assert s.status == "error"
    assert s.status_message == "KeyError: 'missing'"
    ((name, ts, attrs),) = s.events
    assert name == "exception"
    assert attrs["exception.type"] == "KeyError"
    assert "raise KeyError" in str(attrs["exception.stacktrace"])
    assert s.start_unix_ns <= ts <= s.end_unix_ns
    assert current_span() is None


def test_attributes_events_and_status_are_recorded_with_their_types() -> None:
    with span("work") as s:
        s.set_attribute("n", 3)
        s.set_attribute("ratio", 0.25)
        s.set_attribute("ok", True)
        s.set_attribute("who", "p1")
        s.set_attribute("n", 4)  # replaces
        s.set_attribute("obj", [1, 2])  # not a scalar: stored as str()
        s.set_attributes({"batch": 8})
        s.add_event("retry", attempt=2)
        s.set_status("ok")
    (f,) = tracing.drain_spans()
    assert f.attributes == {
        "n": 4,
        "ratio": 0.25,
        "ok": True,
        "who": "p1",
        "obj": "[1, 2]",
        "batch": 8,
    }
    assert type(f.attributes["ok"]) is bool
    assert [(e[0], e[2]) for e in f.events] == [("retry", {"attempt": 2})]
    assert f.status == "ok"
    with pytest.raises(ValueError, match="not one of"):
        s.set_status("fine")  # type: ignore[arg-type]


def test_a_span_cannot_be_entered_twice() -> None:
    s = span("once")
    with s:
        pass
    with pytest.raises(ValueError, match="already entered"), s:
        pass


def test_decorator_on_sync_function_makes_a_child_per_call() -> None:
    @span("step", kind="sync")
    def step(x: int) -> int:
        cur = current_span()
        assert cur is not None and cur.name == "step"
        return x * 2

    with span("job") as job:
        assert step(2) == 4
        assert step(3) == 6
    spans = tracing.drain_spans()
    steps = [s for s in spans if s.name == "step"]
    assert len(steps) == 2
    assert all(s.parent_id == job.span_id for s in steps)
    assert all(s.attributes == {"kind": "sync"} for s in steps)
    assert steps[0].span_id != steps[1].span_id


def test_decorator_keeps_the_function_metadata_and_marks_errors() -> None:
    @tracing.traced()
    def fails() -> None:
        """Doc."""
        raise RuntimeError("nope")

    assert fails.__name__ == "fails" and fails.__doc__ == "Doc."
    with pytest.raises(RuntimeError):
        fails()
    (s,) = tracing.drain_spans()
    assert s.name.endswith("fails") and s.status == "error"


async def test_async_decorator_and_tasks_inherit_the_current_span() -> None:
    @span("fetch")
    async def fetch(i: int) -> int:
        await asyncio.sleep(0.001 * (3 - i))
        with span(f"parse{i}"):
            await asyncio.sleep(0)
        return i

    with span("request") as req:
        results = await asyncio.gather(*(fetch(i) for i in range(3)))
        assert current_span() is req
    assert results == [0, 1, 2]
    spans = tracing.drain_spans()
    fetches = {s.span_id: s for s in spans if s.name == "fetch"}
    assert len(fetches) == 3
    assert all(s.parent_id == req.span_id for s in fetches.values())
    for i in range(3):
        (parse,) = [s for s in spans if s.name == f"parse{i}"]
        assert parse.parent_id in fetches  # each parse under its own fetch, not a sibling's
        assert parse.trace_id == req.trace_id


async def test_a_task_created_inside_a_span_outlives_it_as_its_child() -> None:
    with span("spawner") as spawner:
        task = asyncio.create_task(asyncio.sleep(0.001))

        async def child() -> Span:
            with span("late") as s:
                await task
                return s

        child_task = asyncio.create_task(child())
    late = await child_task
    assert late.parent_id == spawner.span_id
    assert current_span() is None


def test_thread_with_wrap_continues_the_trace_and_plain_thread_does_not() -> None:
    seen: dict[str, Span | None] = {}

    def work(key: str) -> None:
        seen[key] = current_span()
        with span(f"in-{key}"):
            pass

    with span("main") as main:
        t1 = threading.Thread(target=tracing.wrap(work), args=("wrapped",))
        t2 = threading.Thread(target=work, args=("plain",))
        for t in (t1, t2):
            t.start()
        for t in (t1, t2):
            t.join()
    assert seen["wrapped"] is main
    assert seen["plain"] is None
    got = by_name(tracing.drain_spans())  # thread exit handed their spans over
    assert got["in-wrapped"].parent_id == main.span_id
    assert got["in-wrapped"].trace_id == main.trace_id
    assert got["in-plain"].parent_id is None
    assert got["in-plain"].trace_id != main.trace_id


def test_one_wrapped_callable_runs_in_many_threads_at_once() -> None:
    barrier = threading.Barrier(4)

    def work(i: int) -> int:
        barrier.wait(timeout=5)
        with span("task", i=i) as s:
            return s.parent_id or 0

    with span("fan-out") as root:
        job = tracing.wrap(work)
        with ThreadPoolExecutor(4) as pool:
            parents = list(pool.map(job, range(4)))
    assert parents == [root.span_id] * 4


async def test_to_thread_copies_the_context() -> None:
    def work() -> int:
        with span("blocking") as s:
            return s.parent_id or 0

    with span("handler") as h:
        assert await asyncio.to_thread(work) == h.span_id


def test_explicit_parent_overrides_the_current_span() -> None:
    with span("a") as a:
        pass
    with span("b"), span("c", parent=a) as c:
        assert c.parent_id == a.span_id and c.trace_id == a.trace_id
    with span("d", parent=a.context) as d:
        assert d.parent_id == a.span_id
    with pytest.raises(TypeError, match="span parent must be"):
        span("e", parent=42)  # type: ignore[arg-type]
