"""The span buffer: batches drained in order, bounded memory with counted drops, spans from
other threads, and JSON lines export."""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Iterator

import pytest

from system0.core import tracing
from system0.core.tracing import span


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    tracing.set_sampling(1.0)
    tracing.drain_spans()
    yield
    tracing.set_span_buffer_capacity(65_536)
    tracing.drain_spans()


def test_drain_returns_batches_oldest_first() -> None:
    for i in range(25):
        with span(f"s{i}"):
            pass
    first = tracing.drain_spans(10)
    second = tracing.drain_spans(10)
    rest = tracing.drain_spans()
    assert [s.name for s in first + second + rest] == [f"s{i}" for i in range(25)]
    assert (len(first), len(second), len(rest)) == (10, 10, 5)
    assert tracing.drain_spans() == []


def test_a_full_buffer_drops_and_counts_instead_of_growing() -> None:
    tracing.set_span_buffer_capacity(100)
    before = tracing.span_stats()
    for _ in range(250):
        with span("flood"):
            pass
    tracing.flush_spans()
    after = tracing.span_stats()
    assert after["buffered"] == 100
    assert after["dropped"] - before["dropped"] == 150
    assert after["recorded"] - before["recorded"] == 250
    assert len(tracing.drain_spans()) == 100
    assert tracing.span_stats()["buffered"] == 0


def test_a_zero_capacity_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        tracing.set_span_buffer_capacity(0)


def test_many_threads_account_for_every_span() -> None:
    tracing.set_span_buffer_capacity(5_000)
    before = tracing.span_stats()

    def work() -> None:
        for _ in range(1_000):
            with span("t"):
                pass

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = len(tracing.drain_spans())
    after = tracing.span_stats()
    dropped = after["dropped"] - before["dropped"]
    assert got == 5_000
    assert got + dropped == 8_000
    assert after["recorded"] - before["recorded"] == 8_000


def test_a_long_lived_thread_hands_over_on_flush() -> None:
    done, go = threading.Event(), threading.Event()

    def worker() -> None:
        with span("from-worker"):
            pass
        tracing.flush_spans()
        done.set()
        go.wait(5)

    t = threading.Thread(target=worker)
    t.start()
    assert done.wait(5)
    assert [s.name for s in tracing.drain_spans()] == ["from-worker"]
    go.set()
    t.join()


def test_write_spans_jsonl_writes_one_object_per_span() -> None:
    with span("parent", model="policy", n=2), span("child") as c:
        c.add_event("hit", key="a\nb")
    buf = io.StringIO()
    assert tracing.write_spans_jsonl(buf) == 2
    rows = [json.loads(line) for line in buf.getvalue().splitlines()]
    child, parent = rows
    assert parent["name"] == "parent" and parent["parent_id"] is None
    assert parent["attributes"] == {"model": "policy", "n": 2}
    assert child["parent_id"] == parent["span_id"]
    assert child["trace_id"] == parent["trace_id"] == c.trace_id_hex
    assert child["events"][0]["attributes"] == {"key": "a\nb"}
    assert child["end_unix_ns"] - child["start_unix_ns"] == child["duration_ns"]
    assert child["start"].endswith("Z") and len(child["start"]) == 30
    assert tracing.write_spans_jsonl(buf) == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_with_an_empty_buffer_and_continues_the_trace() -> None:
    with span("before-fork"):
        pass
    r, w = os.pipe()
    with span("parent") as parent:
        pid = os.fork()
        if pid == 0:  # child: report what it sees, then leave without running pytest teardown
            try:
                inherited = [s.name for s in tracing.drain_spans()]
                with span("in-child") as c:
                    pass
                mine = [(s.name, s.parent_id) for s in tracing.drain_spans()]
                ok = inherited == [] and mine == [("in-child", parent.span_id)]
                os.write(w, b"ok" if ok and c.trace_id == parent.trace_id else b"bad")
            finally:
                os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    assert os.read(r, 16) == b"ok" and status == 0
    os.close(r)
    assert [s.name for s in tracing.drain_spans()] == ["before-fork", "parent"]
