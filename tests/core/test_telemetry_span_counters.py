"""Spans that ask for energy or CPU counters carry them, or say why they cannot."""

from system0.core import energy, telemetry


def _finished(name: str) -> dict[str, object]:
    spans = [s for s in telemetry.drain_spans() if s.name == name]
    assert len(spans) == 1, spans
    return dict(spans[0].attributes)


def test_span_with_energy_carries_joules_or_the_reason() -> None:
    telemetry.drain_spans()
    with telemetry.span("work.energy", energy=True):
        sum(range(10_000))
    attrs = _finished("work.energy")
    sources = {s.name: s for s in energy.energy_sources()}
    if any(s.available for n, s in sources.items() if n in ("rapl", "nvml")):
        assert isinstance(attrs["energy.total.joules"], float)
        assert attrs["energy.total.joules"] >= 0.0
    else:
        assert str(attrs["energy"]).startswith("not available: ")
        assert not any(k.endswith(".joules") for k in attrs), "no invented figure"


def test_span_with_cpu_counters_carries_counts_or_the_reason() -> None:
    telemetry.drain_spans()
    with telemetry.span("work.cpu", cpu_counters=True):
        sum(range(10_000))
    attrs = _finished("work.cpu")
    if "cpu.instructions" in attrs:
        assert isinstance(attrs["cpu.instructions"], int) and attrs["cpu.instructions"] > 0
    else:
        assert str(attrs["cpu.counters"]).startswith("not available: ")


def test_decorated_function_spans_inherit_the_request() -> None:
    telemetry.drain_spans()

    @telemetry.span("work.decorated", energy=True)
    def work() -> int:
        return 7

    assert work() == 7
    attrs = _finished("work.decorated")
    assert any(k == "energy" or k.startswith("energy.") for k in attrs)


def test_span_without_the_request_reads_nothing() -> None:
    telemetry.drain_spans()
    with telemetry.span("work.plain"):
        pass
    attrs = _finished("work.plain")
    assert not any(k.startswith(("energy", "cpu.")) for k in attrs)


def test_timer_with_energy_reports_joules_or_the_reason() -> None:
    h = telemetry.histogram("test_timer_energy_ns")
    t = telemetry.timer(h, energy=True)
    with t:
        sum(range(10_000))
    assert h.snapshot().count == 1
    assert t.energy is not None
    if t.energy.total_joules is None:
        assert t.energy.reasons, "an unreadable meter says why"
    else:
        assert t.energy.total_joules >= 0.0


def test_timer_without_energy_reads_nothing() -> None:
    t = telemetry.timer(telemetry.histogram("test_timer_plain_ns"))
    with t:
        pass
    assert t.energy is None and t.elapsed_ns >= 0
