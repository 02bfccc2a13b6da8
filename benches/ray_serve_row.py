"""One Ray Serve replica of the engine on this machine, driven over HTTP by ``wrk``: the
"single Ray Serve replica" row of the serving benchmark (issue 14). Needs the ``ray`` extra
and Debian's ``wrk``.

    python benches/ray_serve_row.py [--seconds 5] [--connections 64]

Closed loop (``wrk -c N``): it finds the replica's maximum rate, with Ray's proxy (one Python
process) in the path; on a 2-core machine Ray is tested for behaviour, not speed, so the row
is context for the system0 server's figures, taken the same way. The body is one GameState;
``max_queued_requests`` is set above the connection count, so every request is answered
(any refusal would be counted as a non-2xx by wrk and is printed).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile

from system0.game.simulator import MatchSimulator
from system0.serving.autoscaler import AutoscalingConfig
from system0.serving.factory import PolicyEngineFactory
from system0.serving.ray_serve import RayServeSettings, engine_application

LUA = """wrk.method = "POST"
wrk.body = io.open("{body}"):read("*a")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Request-Deadline-Ms"] = "1000"
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("skipped: wrk is not installed (apt-get install wrk)")
        return 0
    try:
        import ray
        from ray import serve
    except ImportError:
        print("skipped: the ray extra is not installed (pip install -e '.[ray]')")
        return 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = RayServeSettings(
        autoscaling=AutoscalingConfig(min_replicas=1, max_replicas=1, target_ongoing_requests=8),
        max_ongoing_requests=args.connections,
        max_queued_requests=4 * args.connections,
        num_cpus=1,
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(engine_application(PolicyEngineFactory(), settings=settings), route_prefix="/p")
        with tempfile.TemporaryDirectory() as tmp:
            body = pathlib.Path(tmp, "body.json")
            body.write_text(json.dumps(MatchSimulator(3).observe().states[0]))
            script = pathlib.Path(tmp, "post.lua")
            script.write_text(LUA.format(body=body))
            url = f"http://127.0.0.1:{port}/p"
            cmd = ["wrk", "-t2", f"-c{args.connections}", f"-d{args.seconds}s", "--latency"]
            subprocess.run([*cmd[:3], "-d1s", "-s", str(script), url], capture_output=True)
            out = subprocess.run(
                [*cmd, "-s", str(script), url], capture_output=True, text=True, check=True
            ).stdout
    finally:
        serve.shutdown()
        ray.shutdown()
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, flags=re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    print(out)
    print(
        f"Ray Serve, 1 replica, {args.connections} connections: "
        f"{rate.group(1) if rate else '?'} req/s, p50 {pct.get('50', '?')}, "
        f"p99 {pct.get('99', '?')}, non-2xx {errors.group(1) if errors else 0}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
