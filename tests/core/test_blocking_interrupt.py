"""Ctrl-C reaches a thread blocked in Rust: a real child process blocks in a queue ``get``, a
limiter ``acquire`` or a token bucket's wait with no timeout, is sent SIGINT, and must end
with ``KeyboardInterrupt`` well before any timeout could have ended the wait."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

BLOCKERS = {
    "queue_get": "q = BoundedQueue(4, name='sigint-q')\nready()\nq.get()",
    "queue_get_many": "q = BoundedQueue(4, name='sigint-qm')\nready()\nq.get_many(3)",
    "queue_put": ("q = BoundedQueue(1, name='sigint-qp')\nq.put(1)\nready()\nq.put(2)"),
    "limiter_acquire": (
        "l = ConcurrencyLimiter(1, name='sigint-l')\nl.acquire()\nready()\nl.acquire()"
    ),
    "bucket_wait": (
        "b = TokenBucket(rate=0.01, burst=1, name='sigint-b')\nb.acquire()\nready()\n"
        "b.acquire(timeout=1000)"
    ),
}

PRELUDE = """
import sys
from system0.core.error_handling import BoundedQueue, ConcurrencyLimiter, TokenBucket

def ready():
    print("ready", flush=True)

try:
{body}
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(42)
print("returned", flush=True)
"""


@pytest.mark.parametrize("what", sorted(BLOCKERS))
def test_sigint_interrupts_a_blocking_wait(what: str) -> None:
    body = "\n".join("    " + line for line in BLOCKERS[what].splitlines())
    child = subprocess.Popen(
        [sys.executable, "-c", PRELUDE.format(body=body)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # let it enter the blocking wait, GIL released
        assert child.poll() is None, "the wait ended before it was interrupted"
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 42, (out, err)
    assert out.strip() == "interrupted"
    # A slice is 50 ms; a loaded 2-core machine gets a generous margin, far below any timeout.
    assert took < 5.0
