"""What this machine offers: measured figures where a counter is readable, else None + reason.

These run against the real machine (no fake tree): on a VM without RAPL, NVML or a virtual PMU
they prove the "not available" path; on a machine with them they prove figures appear.
"""

import ctypes
import threading
from pathlib import Path

import pytest

from system0.core.energy import (
    EnergyMeter,
    EnergySource,
    default_meter,
    energy_sources,
    measure,
    read_counters,
)


def by_name() -> dict[str, EnergySource]:
    return {s.name: s for s in energy_sources()}


def test_every_source_is_either_available_or_says_why() -> None:
    sources = by_name()
    assert set(sources) == {"rapl", "nvml", "perf"}
    for s in sources.values():
        if s.available:
            assert s.reason is None
            assert s.domains
        else:
            assert s.reason is not None
            assert s.reason.startswith("not available: "), s.reason


def test_rapl_matches_what_sysfs_shows() -> None:
    rapl = by_name()["rapl"]
    root = Path("/sys/class/powercap")
    if not root.exists():
        assert rapl.reason == "not available: /sys/class/powercap absent"
        assert rapl.domains == ()
    elif not any(p.name.startswith("intel-rapl:") for p in root.iterdir()):
        assert rapl.reason is not None and "no RAPL zone" in rapl.reason
    else:
        assert any(d.startswith("cpu_package_") for d in rapl.domains)


def test_nvml_matches_what_the_dynamic_loader_finds() -> None:
    nvml = by_name()["nvml"]
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        assert nvml.reason == (
            "not available: libnvidia-ml.so.1 not found (no NVIDIA driver installed)"
        )
    else:
        # The driver is there: either GPUs report energy or the reason comes from NVML itself.
        assert nvml.available or (nvml.reason is not None and "nvml" in nvml.reason.lower())


def test_unavailable_figures_are_none_never_zero() -> None:
    sources = by_name()
    with measure() as m:
        sum(range(10_000))
    energy_sources_up = sources["rapl"].available or sources["nvml"].available
    if energy_sources_up:
        assert m.joules is not None and m.total_joules is not None
        assert all(j >= 0.0 for j in m.joules.values())
    else:
        assert m.joules is None
        assert m.total_joules is None
        assert m.as_attributes()["energy"].startswith("not available: ")
    if sources["perf"].available:
        assert m.cycles is not None and m.instructions is not None
    else:
        assert m.cycles is None and m.instructions is None
        assert m.reasons["perf"] == sources["perf"].reason
        assert m.as_attributes()["cpu.counters"] == sources["perf"].reason
    assert m.available == {name: s.available for name, s in sources.items()}


def test_attributes_are_flat_scalars_for_spans() -> None:
    start = read_counters()
    attrs = read_counters().since(start).as_attributes()
    assert attrs
    for key, value in attrs.items():
        assert key.startswith(("energy", "cpu."))
        assert isinstance(value, float | int | str)


def test_the_default_meter_is_one_meter_across_threads() -> None:
    # Snapshots from every thread's view of the default meter subtract; a second meter's don't.
    seen: list[EnergyMeter] = []
    threads = [threading.Thread(target=lambda: seen.append(default_meter())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    start = EnergyMeter.default().read(cpu=False)
    for m in seen:
        assert m.read(cpu=False).since(start).duration_ns >= 0
    with pytest.raises(ValueError, match="two different meters"):
        EnergyMeter().read(cpu=False).since(start)


def test_a_missing_nvml_library_is_named() -> None:
    m = EnergyMeter(powercap_root=None, nvml_library="libsystem0-absent-nvml.so.1", perf=False)
    nvml = next(s for s in m.sources() if s.name == "nvml")
    assert (nvml.available, nvml.reason) == (
        False,
        "not available: libsystem0-absent-nvml.so.1 not found (no NVIDIA driver installed)",
    )


def test_a_library_that_is_not_nvml_is_refused() -> None:
    m = EnergyMeter(powercap_root=None, nvml_library="libc.so.6", perf=False)
    nvml = next(s for s in m.sources() if s.name == "nvml")
    assert nvml.reason == "not available: libc.so.6 lacks nvmlInit_v2"


@pytest.mark.parametrize("bad", [123, object()])
def test_a_bad_root_type_is_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError):
        EnergyMeter(powercap_root=bad)  # type: ignore[arg-type]
