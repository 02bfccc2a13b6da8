"""Cost of reading energy and CPU counters, against the peer a user would write in Python.

The peer for RAPL is reading each zone's ``energy_uj`` from Python: either opening the file on
every reading (what most scripts do) or keeping it open and ``os.pread``-ing it (the careful
version). system0 keeps the files open and preads them in Rust. The real-sysfs comparison runs
only where RAPL is readable; asv skips a benchmark whose setup raises NotImplementedError. The
fake-tree comparison runs everywhere: the same reads against regular files under a temp dir,
which isolates the per-reading overhead from the cost of the sysfs handler.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from system0.core.energy import EnergyMeter, default_meter, read_counters

N = 1000


def _rapl_paths(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    paths = []
    for zone in sorted(root.iterdir()):
        if ":" in zone.name and "rapl" in zone.name and "mmio" not in zone.name:
            paths.append(zone / "energy_uj")
    return paths


def _peer_open_each_time(paths: list[Path], n: int) -> None:
    for _ in range(n):
        for p in paths:
            with open(p, "rb") as f:
                int(f.read())


def _peer_pread(fds: list[int], n: int) -> None:
    for _ in range(n):
        for fd in fds:
            int(os.pread(fd, 32, 0))


class ReadCounters:
    """Whatever this machine offers, through the default meter (reasons are cheap too)."""

    def setup(self) -> None:
        self.meter = default_meter()
        self.start = read_counters()

    def time_read_energy_and_cpu(self) -> None:
        read = self.meter.read
        for _ in range(N):
            read(True, True)

    def time_read_cpu_only(self) -> None:
        read = self.meter.read
        for _ in range(N):
            read(False, True)

    def time_delta_as_attributes(self) -> None:
        start = self.start
        for _ in range(N):
            self.meter.read().since(start).as_attributes()


class RaplSysfs:
    """Real RAPL zones: system0 against Python reading the same energy_uj files."""

    def setup(self) -> None:
        self.paths = _rapl_paths(Path("/sys/class/powercap"))
        if not self.paths or not all(os.access(p, os.R_OK) for p in self.paths):
            raise NotImplementedError("RAPL energy_uj is absent or unreadable on this machine")
        self.meter = EnergyMeter(nvml_library=None, perf=False)
        self.fds = [os.open(p, os.O_RDONLY) for p in self.paths]

    def teardown(self) -> None:
        for fd in getattr(self, "fds", []):
            os.close(fd)

    def time_ours(self) -> None:
        read = self.meter.read
        for _ in range(N):
            read(True, False)

    def time_peer_open_each_time(self) -> None:
        _peer_open_each_time(self.paths, N)

    def time_peer_pread(self) -> None:
        _peer_pread(self.fds, N)


class RaplFakeTree:
    """A package and a DRAM zone as regular files: per-reading overhead on any machine."""

    def setup(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        root = Path(self.tmp.name)
        for d, name in (("intel-rapl:0", "package-0"), ("intel-rapl:0:0", "dram")):
            (root / d).mkdir()
            (root / d / "name").write_text(name + "\n")
            (root / d / "energy_uj").write_text("123456789\n")
            (root / d / "max_energy_range_uj").write_text("262143328850\n")
        self.paths = _rapl_paths(root)
        self.meter = EnergyMeter(powercap_root=root, nvml_library=None, perf=False)
        self.fds = [os.open(p, os.O_RDONLY) for p in self.paths]

    def teardown(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.tmp.cleanup()

    def time_ours(self) -> None:
        read = self.meter.read
        for _ in range(N):
            read(True, False)

    def time_peer_open_each_time(self) -> None:
        _peer_open_each_time(self.paths, N)

    def time_peer_pread(self) -> None:
        _peer_pread(self.fds, N)
