"""Energy (joules) and CPU counters (cycles, instructions) for spans, timers and code blocks.

Every joule is accountable, and none is invented: where the machine exposes an energy counter
(RAPL through ``/sys/class/powercap`` for CPU packages and DRAM, NVML for NVIDIA GPUs) the figures
are measured; where none is readable the figure is ``None`` and a reason says why ("not
available: /sys/class/powercap absent"). Cycles and instructions of the calling thread come from
``perf_event_open`` (user space only, so the default ``perf_event_paranoid=2`` permits them).

Three ways in::

    with measure() as m:
        work()
    m.joules, m.total_joules, m.cycles, m.instructions, m.reasons

    start = read_counters()
    work()
    delta = read_counters().since(start)
    span_attributes.update(delta.as_attributes())

    energy_sources()   # what this machine offers, and why not

Caveats worth knowing before reading a figure:

- RAPL counters tick about every millisecond and NVML's energy counter more slowly (tens of
  milliseconds on recent GPUs), so a short span can read 0.0 J: that is the counter not having
  moved, not a guess. Reading NVML takes milliseconds (3 ms median, up to 17 ms, on an H100
  host), so a background thread samples it every 20 ms while anyone reads, and a reading is
  the latest sample: a span's GPU joules are those of the samples around it.
  Energy is machine-wide (every process on the package or GPU), while cycles
  and instructions belong to the measuring thread alone.
- Cycles and instructions are per thread: a measurement that ends on another thread than it
  began reports them as not available rather than subtracting two threads' counters.
- Since Linux 5.10 ``energy_uj`` is readable by root only; the reason says so.
"""

from __future__ import annotations

from types import TracebackType

from system0._core import EnergyDelta, EnergyMeter, EnergySnapshot, EnergySource

__all__ = [
    "EnergyDelta",
    "EnergyMeter",
    "EnergySnapshot",
    "EnergySource",
    "Measurement",
    "default_meter",
    "energy_sources",
    "measure",
    "read_counters",
]

_default: EnergyMeter | None = None


def default_meter() -> EnergyMeter:
    """The process-wide meter over the real machine, shared with Rust-side spans.

    Discovery walks sysfs and loads NVML once; later readings reuse the open files and handles.
    """
    global _default
    meter = _default
    if meter is None:
        # Racing threads get wrappers of the same Rust meter, so any of them will do.
        meter = _default = EnergyMeter.default()
    return meter


def energy_sources(meter: EnergyMeter | None = None) -> list[EnergySource]:
    """What the machine exposes, and why each missing source is missing.

    The ``perf`` entry is probed on the calling thread (perf counters are per thread).
    """
    m = meter if meter is not None else default_meter()
    return m.sources()


def read_counters(
    *, energy: bool = True, cpu: bool = True, meter: EnergyMeter | None = None
) -> EnergySnapshot:
    """Reads the counters now; ``read_counters().since(start)`` gives an :class:`EnergyDelta`.

    ``energy`` reads every RAPL domain and GPU, ``cpu`` the calling thread's cycles and
    instructions; leave out what a span does not ask for, as each read costs syscalls.
    """
    m = meter if meter is not None else default_meter()
    return m.read(energy, cpu)


class Measurement:
    """What :func:`measure` saw; the figures fill in when the ``with`` block exits.

    Every figure is ``None`` while measuring, and stays ``None`` where the machine could not
    measure it; ``reasons`` then says why.
    """

    __slots__ = ("_cpu", "_energy", "_meter", "_start", "delta")

    def __init__(self, meter: EnergyMeter, energy: bool, cpu: bool) -> None:
        self._meter = meter
        self._energy = energy
        self._cpu = cpu
        self._start: EnergySnapshot | None = None
        #: The raw delta once the block has exited.
        self.delta: EnergyDelta | None = None

    def __enter__(self) -> Measurement:
        if self._start is not None:
            raise RuntimeError("a Measurement is entered once; call measure() again")
        self._start = self._meter.read(self._energy, self._cpu)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._start is not None
        self.delta = self._meter.read(self._energy, self._cpu).since(self._start)

    @property
    def joules(self) -> dict[str, float] | None:
        """Joules per domain (``cpu_package_0``, ``cpu_dram_0``, ``gpu_0``, ...), or ``None``."""
        return None if self.delta is None else self.delta.joules

    @property
    def total_joules(self) -> float | None:
        """Joules over disjoint domains (packages + DRAM + GPUs), or ``None``."""
        return None if self.delta is None else self.delta.total_joules

    @property
    def cycles(self) -> int | None:
        return None if self.delta is None else self.delta.cycles

    @property
    def instructions(self) -> int | None:
        return None if self.delta is None else self.delta.instructions

    @property
    def duration_ns(self) -> int | None:
        return None if self.delta is None else self.delta.duration_ns

    @property
    def available(self) -> dict[str, bool]:
        """Per source measured (``rapl``, ``nvml``, ``perf``): whether it gave a figure."""
        return {} if self.delta is None else self.delta.available

    @property
    def reasons(self) -> dict[str, str]:
        """Why each missing figure is missing ("not available: ...")."""
        if self.delta is None:
            return {"measure": "not available: the with-block has not exited yet"}
        return self.delta.reasons

    def as_attributes(self) -> dict[str, float | int | str]:
        """Span/timer attributes (see :meth:`EnergyDelta.as_attributes`)."""
        return {} if self.delta is None else self.delta.as_attributes()

    def __repr__(self) -> str:
        return f"Measurement({self.delta!r})"


def measure(
    *, energy: bool = True, cpu: bool = True, meter: EnergyMeter | None = None
) -> Measurement:
    """Measures the joules, cycles and instructions of a ``with`` block.

    ``measure()`` returns a fresh :class:`Measurement`; use it once::

        with measure() as m:
            work()
        m.total_joules  # None on a machine without RAPL/NVML, with m.reasons saying why
    """
    return Measurement(meter if meter is not None else default_meter(), energy, cpu)
