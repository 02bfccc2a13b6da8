"""A small HTTP/1.1 load generator on asyncio (uvloop): keep-alive connections, raw
requests, closed loop (``concurrency`` clients back to back: the maximum rate) and open loop
(requests at fixed intended send times; each latency runs from its intended send time, so a
stall of the server shows in full instead of slowing the generator down: no coordinated
omission, as wrk2 / oha ``--latency-correction``).

It writes one prepared request per send and reads the status line, the headers and a
Content-Length body: the few microseconds a send costs are what a 2-core machine can spare
beside the server, and they are the same for every server compared.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Run", "closed_loop", "open_loop", "post"]


def post(path: str, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> bytes:
    """A keep-alive POST of ``body`` (JSON) to ``path``, ready to send as it is."""
    head = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@dataclass
class Run:
    """What one run saw: latencies (ns) of the 2xx answers, every status, the wall time,
    and the latencies of the refusals (429/503)."""

    wall_s: float
    latencies_ns: list[int] = field(default_factory=list)
    refusal_ns: list[int] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    offered: int = 0

    def pct(self, q: float, refusals: bool = False) -> float:
        data = self.refusal_ns if refusals else self.latencies_ns
        return float(np.percentile(np.asarray(data, np.float64), q)) if data else float("nan")

    @property
    def ok(self) -> int:
        return len(self.latencies_ns)

    @property
    def goodput(self) -> float:
        return self.ok / self.wall_s

    @property
    def refused(self) -> int:
        return sum(n for s, n in self.statuses.items() if s in (429, 503))

    @property
    def failed(self) -> int:
        return sum(n for s, n in self.statuses.items() if not (200 <= s < 300 or s in (429, 503)))


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def call(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
                break
        if length:
            await self.reader.readexactly(length)
        return status


async def _connect(host: str, port: int, n: int) -> list[_Conn]:
    return [_Conn(*await asyncio.open_connection(host, port)) for _ in range(n)]


def _close(conns: list[_Conn]) -> None:
    for c in conns:
        c.writer.close()


def _count(run: Run, status: int, latency: int) -> None:
    run.statuses[status] = run.statuses.get(status, 0) + 1
    if 200 <= status < 300:
        run.latencies_ns.append(latency)
    elif status in (429, 503):
        run.refusal_ns.append(latency)


async def _closed(host: str, port: int, raw: bytes, n: int, concurrency: int) -> Run:
    conns = await _connect(host, port, concurrency)
    run = Run(0.0, offered=n)
    left = [n]
    clock = time.perf_counter_ns

    async def client(c: _Conn) -> None:
        while left[0] > 0:
            left[0] -= 1
            t0 = clock()
            status = await c.call(raw)
            _count(run, status, clock() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in conns))
    run.wall_s = time.perf_counter() - t0
    _close(conns)
    return run


async def _open(
    host: str, port: int, raw: bytes, rate: float, duration_s: float, connections: int
) -> Run:
    conns = await _connect(host, port, connections)
    idle: asyncio.Queue[_Conn] = asyncio.Queue()
    for c in conns:
        idle.put_nowait(c)
    total = int(rate * duration_s)
    run = Run(0.0, offered=total)
    clock = time.perf_counter_ns
    start = clock() + 5_000_000
    interval = 1e9 / rate

    async def one(intended: int) -> None:
        c = await idle.get()  # a busy pool delays the send: the latency still counts it
        try:
            status = await c.call(raw)
        finally:
            idle.put_nowait(c)
        _count(run, status, clock() - intended)

    tasks = []
    loop = asyncio.get_running_loop()
    for i in range(total):
        intended = start + int(i * interval)
        wait = (intended - clock()) / 1e9
        if wait > 0.0002:
            await asyncio.sleep(wait)
        tasks.append(loop.create_task(one(intended)))
    await asyncio.gather(*tasks)
    run.wall_s = (clock() - start) / 1e9
    _close(conns)
    return run


def _loop_run(coro: object) -> Run:
    import uvloop

    return uvloop.run(coro)  # type: ignore[arg-type]


def closed_loop(port: int, raw: bytes, n: int, concurrency: int = 64) -> Run:
    """``n`` requests from ``concurrency`` clients, each sending as soon as it is answered."""
    return _loop_run(_closed("127.0.0.1", port, raw, n, concurrency))


def open_loop(port: int, raw: bytes, rate: float, duration_s: float, connections: int = 256) -> Run:
    """``rate`` requests a second for ``duration_s``, at fixed intended send times."""
    return _loop_run(_open("127.0.0.1", port, raw, rate, duration_s, connections))
