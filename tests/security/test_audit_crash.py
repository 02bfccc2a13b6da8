"""Crash safety: appenders killed with SIGKILL at random moments never lose an acknowledged
entry, and the ledger always reopens and verifies.

Each round starts a real writer process (four threads appending at once, so group commit is
exercised), lets it run for a random time, kills it with ``kill -9`` and checks every entry
it acknowledged on stdout. ``S0_CRASH_ROUNDS`` raises the number of rounds (CI nightly: 300).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from system0.security.audit import AuditLedger, verify_ledger
from system0.security.encryption import EnvKeyProvider, Keyring

WRITER = r"""
import sys, threading
from system0.security.audit import AuditLedger
from system0.security.encryption import EnvKeyProvider, Keyring

ring = Keyring.load(sys.argv[2], EnvKeyProvider("S0_CRASH_SECRET"))
ledger = AuditLedger.open(sys.argv[1], keyring=ring, fsync=sys.argv[3])
lock = threading.Lock()
print("ready", flush=True)

def work(t):
    k = 0
    while True:
        i = ledger.append({"t": t, "k": k})
        with lock:  # acknowledged: append returned
            sys.stdout.write(f"{i} {t} {k}\n")
            sys.stdout.flush()
        k += 1

threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(4)]
for th in threads:
    th.start()
for th in threads:
    th.join()
"""


@pytest.mark.parametrize("fsync", ["always", "never"])
def test_kill_9_never_loses_an_acknowledged_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: str
) -> None:
    monkeypatch.setenv("S0_CRASH_SECRET", EnvKeyProvider.generate_secret())
    ring_path = tmp_path / "ring.s0k"
    ring = Keyring.create(ring_path, EnvKeyProvider("S0_CRASH_SECRET"))
    ledger_dir = tmp_path / "ledger"
    rounds = int(os.environ.get("S0_CRASH_ROUNDS", "12"))
    rng = random.Random(1234)
    acked: dict[int, tuple[int, int]] = {}
    for _ in range(rounds):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(ledger_dir), str(ring_path), fsync],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr
        time.sleep(rng.uniform(0.0, 0.08))
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3:  # the last line may itself be torn by the kill
                i, t, k = map(int, parts)
                acked[i] = (t, k)
        reopened = AuditLedger.open(ledger_dir, keyring=ring)
        for i, (t, k) in acked.items():
            assert i < reopened.size, f"acknowledged entry {i} lost (size {reopened.size})"
            assert reopened.read(i).json() == {"t": t, "k": k}
        reopened.close()
    report = verify_ledger(ledger_dir, keyring=ring)
    assert report.entries >= len(acked) > rounds
