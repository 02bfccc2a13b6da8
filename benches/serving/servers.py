"""Start the compared servers (``apps.py``) as child processes on free loopback ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

APPS = Path(__file__).resolve().parent / "apps.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A running server: its port, and the CPU time its process has used (all threads)."""

    def __init__(self, name: str, port: int, pid: int) -> None:
        self.name, self.port, self.pid = name, port, pid

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


@contextmanager
def running(name: str, timeout: float = 60.0) -> Iterator[Server]:
    """Server ``name`` in its own process, once it answers /healthz."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(APPS), name, str(port)])
    try:
        until = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the {name} server exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > until:
                    raise RuntimeError(f"the {name} server did not start") from None
                time.sleep(0.1)
        yield Server(name, port, proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
