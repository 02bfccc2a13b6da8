"""The model server (issue 14) against a plain FastAPI endpoint, over loopback HTTP.

64 concurrent keep-alive clients, closed loop, one GameState per request; system0's server
(``create_app``: codec-decoded body, the engine batching, metrics and histograms on) and the
plain endpoint (a pydantic body model calling the same policy per request) each run in its
own uvicorn process with the same settings, and are timed in interleaved rounds. The gate:
at least 1.5x the plain endpoint's requests/s (goal 3x), at an equal or better p99 (the
best round's of each side). Both sides' failures count: any non-2xx answer fails the gate.
About 20 s on 2 cores.
"""

from __future__ import annotations

import atexit
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from ratio import Gate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serving"))

from loadgen import Run, closed_loop, post
from servers import Server, running

from system0.serving.pinned import WARMUP_STATE

CLIENTS = 64
REQUESTS = 3000  # per round: about a second at the plain endpoint's rate
_stack = ExitStack()
atexit.register(_stack.close)
_servers: dict[str, Server] = {}
_runs: dict[str, list[Run]] = {"system0": [], "plain": []}
# a long deadline: the gate measures the rate at which answers come, not shedding
RAW = post("/v1/models/policy/infer", WARMUP_STATE, [("X-Request-Deadline-Ms", "5000")])


def _server(name: str) -> Server:
    if name not in _servers:
        _servers[name] = _stack.enter_context(running(name))
    return _servers[name]


def _side(name: str) -> Any:
    def go(n: int) -> None:
        run = closed_loop(_server(name).port, RAW, n, CLIENTS)
        if n >= REQUESTS:  # the warm-up call is not a round
            _runs[name].append(run)

    return go


def _best(name: str) -> Run:
    return min(_runs[name], key=lambda r: r.wall_s / max(1, r.ok))


def _check() -> str | None:
    ours, peer = _best("system0"), _best("plain")
    failed = {n: sum(r.failed + r.refused for r in _runs[n]) for n in _runs}
    _stack.close()  # the servers are done with: stop them now, not at exit
    if any(failed.values()):
        return f"non-2xx answers: {failed}"
    p99, peer_p99 = ours.pct(99), peer.pct(99)
    note = f"p99 {p99 / 1e6:.1f} ms vs {peer_p99 / 1e6:.1f} ms"
    if p99 > peer_p99:
        return f"p99 worse than the plain endpoint's: {note}"
    print(
        f"serving: {ours.goodput:.0f} req/s vs {peer.goodput:.0f} req/s at {CLIENTS} clients, "
        f"{note}"
    )
    return None


def gates() -> list[Gate]:
    return [
        Gate(
            f"http infer, {CLIENTS} clients (req/s; p99 <= peer's)",
            _side("system0"),
            _side("plain"),
            "FastAPI + pydantic body, model per request",
            gate=1.5,
            goal=3.0,
            n=REQUESTS,
            rounds=5,
            check=_check,
        )
    ]
