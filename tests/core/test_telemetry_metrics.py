"""Metrics behaviour a user relies on: handles, labels and their cap, bad input, timers,
and exact totals under many threads."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from system0.core import telemetry as t
from system0.errors import CardinalityError, ConfigError, Error, InvalidArgument, ValidationError


@pytest.fixture
def reg() -> t.Registry:
    return t.Registry()


def test_counter_gauge_histogram_record_through_handles(reg: t.Registry) -> None:
    c = t.counter("events_total", registry=reg)
    c.inc()
    c.inc(41)
    assert c.value == 42
    g = t.gauge("depth", registry=reg)
    g.set(10)
    g.inc(2.5)
    g.dec()
    assert g.value == 11.5
    h = t.histogram("latency_ns", registry=reg)
    for v in (1, 2, 3, 1000, 2.4):
        h.record(v)
    s = h.snapshot()
    assert (s.count, s.sum, s.min, s.max) == (5, 1008, 1, 1000)
    assert h.unit == "ns"


def test_same_definition_returns_same_family_else_config_error(reg: t.Registry) -> None:
    a = t.counter("hits_total", labels=("model",), registry=reg)
    b = t.counter("hits_total", labels=("model",), registry=reg)
    a.labels("m1").inc(3)
    assert b.labels("m1").value == 3
    with pytest.raises(ConfigError, match="already registered as a counter"):
        t.gauge("hits_total", labels=("model",), registry=reg)
    with pytest.raises(ConfigError):
        t.counter("hits_total", labels=("model", "version"), registry=reg)
    t.histogram("lat", unit="ns", registry=reg)
    with pytest.raises(ConfigError, match="unit"):
        t.histogram("lat", unit="bytes", registry=reg)


def test_labels_by_position_and_name_reach_the_same_child(reg: t.Registry) -> None:
    h = t.histogram("infer_ns", labels=("model", "version"), registry=reg)
    h.labels("policy", 3).record(100)
    h.labels(model="policy", version="3").record(200)
    child = h.labels("policy", "3")
    assert child.label_values == ("policy", "3")
    assert child.snapshot().count == 2
    assert [c.label_values for c in h.children()] == [("policy", "3")]
    with pytest.raises(ValueError, match="through a child"):
        h.record(1)
    with pytest.raises(ValueError, match="one value per label"):
        h.labels("policy")
    with pytest.raises(ValueError, match="needs a value for label 'version'"):
        h.labels(model="policy")
    with pytest.raises(ValueError, match="unknown label names"):
        h.labels(model="policy", version="1", region="eu")
    with pytest.raises(ValueError, match="either by position or by name"):
        h.labels("policy", version="1")


def test_label_cap_raises_cardinality_error_and_keeps_existing(reg: t.Registry) -> None:
    c = t.counter("req_total", labels=("user",), max_label_sets=3, registry=reg)
    for u in ("a", "b", "c"):
        c.labels(u).inc()
    with pytest.raises(CardinalityError) as info:
        c.labels("d")
    assert info.value.metric == "req_total" and info.value.cap == 3
    assert isinstance(info.value, Error)
    assert "max_label_sets" in str(info.value)
    c.labels("a").inc()  # existing label sets keep working
    assert c.labels("a").value == 2
    assert len(c.children()) == 3


def test_default_cap_is_documented_value(reg: t.Registry) -> None:
    c = t.counter("x_total", labels=("k",), registry=reg)
    assert c.max_label_sets == t.DEFAULT_MAX_LABEL_SETS == 1000
    for i in range(1000):
        c.labels(str(i))
    with pytest.raises(CardinalityError):
        c.labels("one-too-many")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), -1, -0.5, -(2**70)])
def test_histogram_refuses_nan_inf_negative(reg: t.Registry, bad: float) -> None:
    h = t.histogram("h", registry=reg)
    with pytest.raises(ValueError):
        h.record(bad)
    assert h.snapshot().count == 0


def test_histogram_clamps_and_counts_overflow(reg: t.Registry) -> None:
    h = t.histogram("h", registry=reg)
    h.record(t.HISTOGRAM_MAX_VALUE + 1)
    h.record(2**80)
    h.record(1e300)
    s = h.snapshot()
    assert (s.count, s.overflow, s.max) == (3, 3, t.HISTOGRAM_MAX_VALUE)
    assert t.HISTOGRAM_MAX_VALUE == 3600 * 10**9


def test_counter_and_gauge_refuse_bad_values(reg: t.Registry) -> None:
    c = t.counter("c_total", registry=reg)
    for bad in (-1, 1.5, "3"):
        with pytest.raises(ValueError, match="counters only go up"):
            c.inc(bad)  # type: ignore[arg-type]
    assert c.value == 0
    g = t.gauge("g", registry=reg)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite"):
            g.set(bad)


@pytest.mark.parametrize("name", ["", "9lives", "has-dash", "has space", "ünï", "a.b"])
def test_invalid_metric_names_raise_validation_error(reg: t.Registry, name: str) -> None:
    with pytest.raises(ValidationError, match="not a valid Prometheus name"):
        t.counter(name, registry=reg)


@pytest.mark.parametrize("labels", [("__reserved",), ("a", "a"), ("bad-label",), ("1x",)])
def test_invalid_label_names_raise_validation_error(
    reg: t.Registry, labels: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError, match="label name"):
        t.counter("ok_total", labels=labels, registry=reg)


def test_le_is_reserved_on_histograms_only(reg: t.Registry) -> None:
    with pytest.raises(ValidationError, match="bucket label"):
        t.histogram("h", labels=("le",), registry=reg)
    t.counter("c_total", labels=("le",), registry=reg)


def test_labels_given_as_a_string_is_a_clear_type_error(reg: t.Registry) -> None:
    with pytest.raises(InvalidArgument, match=r"labels=\('model',\)"):
        t.counter("c_total", labels="model", registry=reg)


def test_snapshot_misuse_raises_value_error(reg: t.Registry) -> None:
    h = t.histogram("h", registry=reg)
    h.record(5)
    a = h.snapshot()
    h.record(6)
    b = h.snapshot()
    with pytest.raises(ValueError, match="not an earlier snapshot"):
        a.delta(b)
    with pytest.raises(ValueError, match="outside"):
        a.quantile(1.5)


def test_many_threads_get_exact_totals(reg: t.Registry) -> None:
    h = t.histogram("h", labels=("worker",), registry=reg)
    c = t.counter("c_total", registry=reg)
    shared = t.histogram("shared", registry=reg)
    n_threads, per_thread = 16, 5000
    barrier = threading.Barrier(n_threads)

    def work(k: int) -> None:
        mine = h.labels(str(k % 4))  # four threads share each child
        barrier.wait()
        for i in range(per_thread):
            mine.record(i)
            shared.record(k * per_thread + i)
            c.inc()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert c.value == n_threads * per_thread
    for child in h.children():
        s = child.snapshot()
        assert s.count == 4 * per_thread
        assert s.sum == 4 * sum(range(per_thread))
    s = shared.snapshot()
    assert s.count == n_threads * per_thread
    assert s.sum == sum(range(n_threads * per_thread))
    assert (s.min, s.max) == (0, n_threads * per_thread - 1)


def test_timer_as_context_manager_records_elapsed(reg: t.Registry) -> None:
    h = t.histogram("block_ns", registry=reg)
    with t.timer(h) as tm:
        time.sleep(0.01)
    s = h.snapshot()
    assert s.count == 1
    assert s.max is not None and 10_000_000 <= s.max < 2_000_000_000
    assert abs(tm.elapsed_ns - s.max) <= s.max * t.HISTOGRAM_RELATIVE_ERROR


def test_timer_decorator_records_each_call_even_on_error(reg: t.Registry) -> None:
    h = t.histogram("fn_ns", registry=reg)

    @t.timer(h)
    def work(x: int) -> int:
        if x < 0:
            raise KeyError(x)
        return x * 2

    assert work(21) == 42
    assert work.__name__ == "work"
    with pytest.raises(KeyError):
        work(-1)
    assert h.snapshot().count == 2


async def test_timer_decorator_on_async_function_times_the_await(reg: t.Registry) -> None:
    h = t.histogram("async_ns", registry=reg)

    @t.timer(h)
    async def fetch() -> str:
        await asyncio.sleep(0.01)
        return "ok"

    assert await fetch() == "ok"
    s = h.snapshot()
    assert s.count == 1 and s.min is not None and s.min >= 10_000_000


def test_timed_creates_the_histogram_once(reg: t.Registry) -> None:
    @t.timed("step_ns", registry=reg)
    def step() -> None:
        pass

    @t.timed("step_ns", registry=reg)
    def other_step() -> None:
        pass

    step()
    step()
    other_step()
    assert t.histogram("step_ns", registry=reg).snapshot().count == 3


def test_record_since_uses_the_process_clock(reg: t.Registry) -> None:
    h = t.histogram("since_ns", registry=reg)
    start = t.now_ns()
    time.sleep(0.005)
    h.record_since(start)
    h.record_since(t.now_ns() + 10**12)  # a start in the future records 0, never wraps
    s = h.snapshot()
    assert s.max is not None and s.max >= 5_000_000
    assert s.min == 0


def test_timer_needs_a_histogram() -> None:
    with pytest.raises(InvalidArgument, match="Histogram"):
        t.timer(t.counter("not_a_hist_total", registry=t.Registry()))  # type: ignore[arg-type]


def test_memory_per_histogram_is_documented() -> None:
    assert t.HISTOGRAM_BYTES == 270_056
    assert t.HISTOGRAM_BUCKETS == 33_421
    assert str(t.HISTOGRAM_BYTES).replace("_", "") in (t.__doc__ or "").replace(" ", "")
