"""Cycles and instructions per thread through perf_event_open, or the kernel's refusal.

The perf tool, where installed, is the independent witness: if `perf stat -e instructions:u`
counts, system0 must count too; if perf reports the event unsupported or refused, system0 must
say "not available" with the errno and the perf_event_paranoid level.
"""

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from system0.core.energy import EnergyMeter, energy_sources, measure, read_counters


def perf_source_reason() -> str | None:
    return next(s for s in energy_sources() if s.name == "perf").reason


def paranoid() -> str:
    return Path("/proc/sys/kernel/perf_event_paranoid").read_text().strip()


def spin(n: int) -> int:
    x = 0
    for i in range(n):
        x = (x * 31 + i) & 0xFFFF
    return x


def test_agrees_with_the_perf_tool() -> None:
    perf = shutil.which("perf")
    if perf is None:
        pytest.skip("the perf tool is not installed (apt-get install linux-perf): no witness")
    out = subprocess.run(
        [perf, "stat", "-x,", "-e", "instructions:u", "true"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    # CSV lines: value,unit,event,...; the value is "<not supported>" / "<not counted>" when
    # the PMU is absent, and perf exits non-zero when the kernel refuses outright.
    line = next((ln for ln in out.stderr.splitlines() if "instructions" in ln), "")
    counted = out.returncode == 0 and line.split(",")[0].strip().isdigit()
    reason = perf_source_reason()
    if counted:
        assert reason is None
    else:
        assert reason is not None
        assert reason.startswith("not available: perf_event_open(cycles) ")
        if "<not supported>" in line:
            assert "no such hardware counter" in reason, reason


def test_reason_names_errno_and_paranoid_level_or_counts() -> None:
    reason = perf_source_reason()
    if reason is None:
        with measure(energy=False) as m:
            spin(1000)
        assert m.cycles is not None and m.cycles > 0
        assert m.instructions is not None and m.instructions > 0
    else:
        assert f"(perf_event_paranoid={paranoid()})" in reason
        errno = reason.split(") ", 1)[1].split(" ", 1)[0]
        assert errno in {"EACCES", "EPERM", "ENOENT", "EOPNOTSUPP", "ENODEV", "ENOSYS"}, reason


def test_instructions_grow_with_the_work() -> None:
    reason = perf_source_reason()
    if reason is not None:
        with measure(energy=False) as m:
            spin(1000)
        assert (m.cycles, m.instructions) == (None, None)
        assert m.reasons == {"perf": reason}
        return
    counts = []
    for n in (10_000, 100_000, 1_000_000):
        with measure(energy=False) as m:
            spin(n)
        assert m.instructions is not None
        counts.append(m.instructions)
    # 10x the loop is roughly 10x the instructions; interpreter noise is far below 3x.
    assert counts[1] > 3 * counts[0], counts
    assert counts[2] > 3 * counts[1], counts


def test_a_measurement_that_changes_thread_does_not_subtract() -> None:
    start = read_counters(energy=False)
    result: list[object] = []
    t = threading.Thread(target=lambda: result.append(read_counters(energy=False).since(start)))
    t.start()
    t.join()
    d = result[0]
    assert d.cycles is None and d.instructions is None  # type: ignore[attr-defined]
    reason = perf_source_reason()
    expected = "another thread" if reason is None else reason
    assert expected in d.reasons["perf"]  # type: ignore[attr-defined]


def test_many_threads_measure_their_own_counters() -> None:
    reason = perf_source_reason()
    results: list[tuple[int | None, str | None]] = []
    lock = threading.Lock()

    def work() -> None:
        with measure(energy=False) as m:
            spin(20_000)
        with lock:
            results.append((m.instructions, m.reasons.get("perf")))

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 16
    for instructions, why in results:
        if reason is None:
            assert instructions is not None and instructions > 0 and why is None
        else:
            assert instructions is None and why == reason


def test_switched_off_perf_says_so() -> None:
    m = EnergyMeter(powercap_root=None, nvml_library=None, perf=False)
    with measure(meter=m) as x:
        pass
    assert x.reasons["perf"] == "not available: perf counters switched off"
    assert x.as_attributes()["cpu.counters"] == "not available: perf counters switched off"


def test_a_forked_child_does_not_subtract_its_parents_counters() -> None:
    # A perf fd inherited through fork still counts the parent's thread; the child must
    # reopen its own and refuse to subtract a reading taken before the fork.
    start = read_counters(energy=False)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report and leave without running pytest's teardown
        os.close(r)
        d = read_counters(energy=False).since(start)
        fresh = measure(energy=False)
        with fresh:
            spin(10_000)
        msg = f"{d.reasons.get('perf', '')}|{fresh.instructions}"
        os.write(w, msg.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        got = f.read()
    os.waitpid(pid, 0)
    stale, fresh_instructions = got.split("|")
    reason = perf_source_reason()
    if reason is None:
        assert "another thread" in stale
        assert int(fresh_instructions) > 0
    else:
        assert stale == reason
        assert fresh_instructions == "None"
