"""Running the app on uvicorn: in the foreground (``system0 serve``) or on a background
thread (:class:`BackgroundServer`, for tests, benchmarks and embedding).

The settings are the fast ones uvicorn offers (uvloop, httptools, no access log: a log line
per request costs more than the request), the same for the benchmark's baselines.
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

import uvicorn

from system0.errors import Unavailable

__all__ = ["BackgroundServer", "run", "uvicorn_config"]


def uvicorn_config(app: Any, host: str = "127.0.0.1", port: int = 8080, **extra: Any) -> Any:
    """The uvicorn settings every system0 server (and every benchmark baseline) runs with."""
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,
        "log_level": "warning",
        "lifespan": "on",
        # loopback benchmarks and a server behind its own proxy: no header rewriting
        "proxy_headers": False,
        "timeout_graceful_shutdown": 10,
    }
    options.update(extra)
    return uvicorn.Config(app, **options)


def run(app: Any, host: str = "127.0.0.1", port: int = 8080, **extra: Any) -> None:
    """Serve ``app`` until interrupted (SIGINT / SIGTERM shut it down gracefully).

    Everything alive now (the app, the frameworks, the loaded and warmed model) is moved out
    of the garbage collector's sight first (``gc.freeze``): it lives as long as the process,
    and a full collection scanning it stalls every request in flight (tens of ms at the
    p99 under load, measured by benches/serving)."""
    server = uvicorn.Server(uvicorn_config(app, host, port, **extra))
    gc.collect()
    gc.freeze()
    server.run()


class BackgroundServer:
    """``app`` served on a thread, on loopback; ``port=0`` picks a free port (:attr:`url`).

    Use as a context manager: it returns once the server accepts connections and, on exit,
    shuts it down gracefully (the app's lifespan end runs, e.g. the flight recording)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, **extra: Any) -> None:
        self.server = uvicorn.Server(uvicorn_config(app, host, port, **extra))
        self.host = host
        self._thread = threading.Thread(target=self.server.run, name="system0-http", daemon=True)
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self._thread.start()
        until = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > until:
                raise Unavailable(
                    f"the server on {self.host}:{self.port} did not start within {timeout} s "
                    "(is the port taken?)"
                )
            time.sleep(0.01)
        sock = self.server.servers[0].sockets[0]
        self.port = int(sock.getsockname()[1])
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
