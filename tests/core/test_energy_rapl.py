"""RAPL through powercap: discovery, deltas and wraparound, against a real directory tree.

The reader takes its root as a parameter, so these tests build the same files the kernel
publishes (name, energy_uj, max_energy_range_uj) under tmp_path and rewrite energy_uj between
readings, as the kernel does.
"""

from pathlib import Path
from tempfile import TemporaryDirectory

import pytest
from hypothesis import given
from hypothesis import strategies as st

from system0.core.energy import EnergyMeter, measure

MAX = 262_143_328_850  # a real package's max_energy_range_uj


def zone(root: Path, directory: str, name: str, energy_uj: int, max_uj: int | None = MAX) -> Path:
    p = root / directory
    p.mkdir(parents=True, exist_ok=True)
    (p / "name").write_text(f"{name}\n")
    (p / "energy_uj").write_text(f"{energy_uj}\n")
    if max_uj is not None:
        (p / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return p


def set_energy(zone_dir: Path, energy_uj: int) -> None:
    (zone_dir / "energy_uj").write_text(f"{energy_uj}\n")


def rapl_meter(root: Path) -> EnergyMeter:
    return EnergyMeter(powercap_root=root, nvml_library=None, perf=False)


@pytest.fixture
def two_socket(tmp_path: Path) -> dict[str, Path]:
    zones = {
        "cpu_package_0": zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000),
        "cpu_core_0": zone(tmp_path, "intel-rapl:0:0", "core", 400_000),
        "cpu_dram_0": zone(tmp_path, "intel-rapl:0:1", "dram", 100_000),
        "cpu_package_1": zone(tmp_path, "intel-rapl:1", "package-1", 2_000_000),
    }
    # The MMIO interface repeats package 0; the control-type directory holds no counter.
    zone(tmp_path, "intel-rapl-mmio:0", "package-0", 5)
    (tmp_path / "intel-rapl").mkdir()
    return zones


def test_discovers_every_domain_once_in_a_stable_order(
    tmp_path: Path, two_socket: dict[str, Path]
) -> None:
    m = rapl_meter(tmp_path)
    assert m.domains == ["cpu_package_0", "cpu_core_0", "cpu_dram_0", "cpu_package_1"]
    rapl = next(s for s in m.sources() if s.name == "rapl")
    assert (rapl.available, rapl.reason, rapl.domains) == (True, None, tuple(m.domains))


def test_deltas_per_domain_and_a_total_without_double_counting(
    tmp_path: Path, two_socket: dict[str, Path]
) -> None:
    m = rapl_meter(tmp_path)
    start = m.read()
    set_energy(two_socket["cpu_package_0"], 3_500_000)  # +2.5 J
    set_energy(two_socket["cpu_core_0"], 1_400_000)  # +1.0 J, inside package 0
    set_energy(two_socket["cpu_dram_0"], 350_000)  # +0.25 J
    set_energy(two_socket["cpu_package_1"], 2_500_000)  # +0.5 J
    d = m.read().since(start)
    assert d.joules == pytest.approx(
        {"cpu_package_0": 2.5, "cpu_core_0": 1.0, "cpu_dram_0": 0.25, "cpu_package_1": 0.5}
    )
    assert list(d.joules or {}) == m.domains
    # Packages and DRAM are disjoint; the core lies inside its package.
    assert d.total_joules == pytest.approx(3.25)
    assert d.available["rapl"] is True
    attrs = d.as_attributes()
    assert attrs["energy.cpu_package_0.joules"] == pytest.approx(2.5)
    assert attrs["energy.total.joules"] == pytest.approx(3.25)
    assert attrs["energy.nvml"] == "not available: NVML reading switched off"


def test_a_counter_that_wrapped_is_unwrapped_once(tmp_path: Path) -> None:
    pkg = zone(tmp_path, "intel-rapl:0", "package-0", 950, max_uj=1000)
    m = rapl_meter(tmp_path)
    start = m.read()
    set_energy(pkg, 30)  # 950 -> 1000, wraps to 0, -> 30
    d = m.read().since(start)
    assert d.joules == {"cpu_package_0": pytest.approx(80e-6)}


@given(
    max_uj=st.integers(1, 2**40),
    start=st.integers(0, 2**40),
    step=st.integers(0, 2**40),
)
def test_wraparound_matches_modular_arithmetic(max_uj: int, start: int, step: int) -> None:
    # The counter runs 0..=max; any growth of less than one full range is recovered exactly.
    start %= max_uj + 1
    step %= max_uj
    end = start + step if start + step <= max_uj else start + step - max_uj
    with TemporaryDirectory() as tmp:
        pkg = zone(Path(tmp), "intel-rapl:0", "package-0", start, max_uj=max_uj)
        m = rapl_meter(Path(tmp))
        s = m.read()
        set_energy(pkg, end)
        joules = m.read().since(s).joules
    assert joules is not None
    assert round(joules["cpu_package_0"] * 1e6) == step


def test_a_backwards_counter_without_a_range_is_a_reason_not_a_number(tmp_path: Path) -> None:
    pkg = zone(tmp_path, "intel-rapl:0", "package-0", 900, max_uj=None)
    m = rapl_meter(tmp_path)
    start = m.read()
    set_energy(pkg, 10)
    d = m.read().since(start)
    assert d.joules is None
    assert d.total_joules is None
    assert "went backwards" in d.reasons["cpu_package_0"]
    assert d.as_attributes()["energy"].startswith("not available: ")


def test_one_broken_domain_leaves_the_others_measured(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:0", "package-0", 10)
    dram = zone(tmp_path, "intel-rapl:0:0", "dram", 10)
    (dram / "energy_uj").write_text("garbage\n")
    m = rapl_meter(tmp_path)
    d = m.read().since(m.read())
    assert d.joules == {"cpu_package_0": 0.0}  # a real reading: the counter did not move
    assert d.reasons["cpu_dram_0"].startswith("not available: cannot read ")
    assert d.as_attributes()["energy.cpu_dram_0"] == d.reasons["cpu_dram_0"]


def test_an_absent_powercap_says_so_and_gives_no_figure(tmp_path: Path) -> None:
    root = tmp_path / "no-powercap"
    m = rapl_meter(root)
    with measure(meter=m, cpu=False) as x:
        pass
    assert x.joules is None
    assert x.total_joules is None
    assert x.reasons["rapl"] == f"not available: {root} absent"
    assert x.available == {"rapl": False, "nvml": False}
    assert x.as_attributes()["energy"].startswith(f"not available: {root} absent; ")


def test_a_powercap_without_rapl_zones_says_so(tmp_path: Path) -> None:
    zone(tmp_path, "dtpm:0", "soc", 1)
    m = rapl_meter(tmp_path)
    reason = m.sources()[0].reason
    assert reason is not None and reason.startswith("not available: no RAPL zone under ")


def test_measure_reads_the_block_and_nothing_before_it(tmp_path: Path) -> None:
    pkg = zone(tmp_path, "intel-rapl:0", "package-0", 0)
    m = rapl_meter(tmp_path)
    set_energy(pkg, 5_000_000)  # before the block: not counted
    with measure(meter=m, cpu=False) as x:
        assert x.joules is None  # still measuring
        set_energy(pkg, 7_000_000)
    assert x.joules == {"cpu_package_0": pytest.approx(2.0)}
    assert "cpu.counters" not in x.as_attributes()  # not asked for
    with pytest.raises(RuntimeError):
        x.__enter__()


def test_snapshots_of_different_meters_do_not_subtract(
    tmp_path: Path, two_socket: dict[str, Path]
) -> None:
    a, b = rapl_meter(tmp_path), rapl_meter(tmp_path)
    with pytest.raises(ValueError, match="same EnergyMeter"):
        b.read().since(a.read())


def test_reading_without_energy_leaves_no_energy_attributes(
    tmp_path: Path, two_socket: dict[str, Path]
) -> None:
    m = rapl_meter(tmp_path)
    d = m.read(energy=False, cpu=False).since(m.read(energy=False, cpu=False))
    assert d.joules is None
    assert d.as_attributes() == {}
    assert d.available == {}
