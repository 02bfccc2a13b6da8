"""``system0 serve``, ``deploy``, ``promote``, ``rollback``, ``drain`` and ``status``.

``serve`` runs the model server in the foreground (the ``serve`` extra: FastAPI on uvicorn).
The other commands talk to a running server over HTTP (stdlib only, so they work from any
install): ``--server`` (default ``$SYSTEM0_SERVER`` or ``http://127.0.0.1:8080``) and, for
the admin commands, ``--token`` (default ``$SYSTEM0_TOKEN``), an RBAC token of the security
spine. ``status`` prints a table, or the server's JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from system0.errors import ConfigError, Error, Unavailable

__all__ = ["add_serving_commands"]

DEFAULT_SERVER = "http://127.0.0.1:8080"


# --- the client side ---------------------------------------------------------------------------


class ServerRefused(Error):
    """The server answered an error status; the message is its own."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _call(
    server: str, method: str, path: str, *, token: str | None = None, body: Any = None
) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.rstrip("/") + path, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            message = json.loads(raw).get("message", raw.decode(errors="replace"))
        except (ValueError, AttributeError):
            message = raw.decode(errors="replace")
        raise ServerRefused(exc.code, f"HTTP {exc.code}: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise Unavailable(
            f"cannot reach the server at {server} ({exc}); start it with 'system0 serve' or "
            "pass --server"
        ) from None


def _admin(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("SYSTEM0_TOKEN")
    body = {"version": args.version} if args.command == "deploy" else None
    try:
        doc = _call(
            args.server,
            "POST",
            f"/v1/models/{args.model}/{args.command}",
            token=token,
            body=body,
        )
    except ServerRefused as exc:
        print(f"system0 {args.command}: {exc}", file=sys.stderr)
        return 1
    except Error as exc:
        print(f"system0 {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    m = doc["model"]
    print(
        f"{args.command} {args.model}: done (by {doc['by']}); active {m.get('active')}, "
        f"standby {m.get('standby')}"
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    try:
        models = _call(args.server, "GET", "/v1/models")["models"]
        stats = _call(args.server, "GET", "/v1/stats")
    except Error as exc:
        print(f"system0 status: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"models": models, "stats": stats}, indent=2, sort_keys=True))
        return 0
    print(status_table(models, stats))
    return 0


def _ms(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:.2f}"


def status_table(models: list[dict[str, Any]], stats: dict[str, Any]) -> str:
    """The human table of ``system0 status``: one line per model, then one per version."""
    head = ("MODEL", "ACTIVE", "STANDBY", "READY", "BREAKER", "QUEUE", "REQ/S", "P50 MS", "P99 MS")
    rows: list[tuple[str, ...]] = [head]
    versions: list[str] = []
    for m in models:
        s = stats.get("models", {}).get(m["name"], {})
        lat = s.get("latency_ns", {})
        rows.append(
            (
                m["name"],
                str(m.get("active") or "-"),
                str(m.get("standby") or "-"),
                "yes" if s.get("ready") else "no",
                str(s.get("breaker") or "-"),
                str(s.get("queue_depth", "-")),
                f"{lat.get('rate', 0.0):.1f}",
                _ms(lat.get("p50")),
                _ms(lat.get("p99")),
            )
        )
        for v in m.get("versions", []):
            versions.append(
                f"  {m['name']} {v['version']}: {v['state']}, weights "
                f"{str(v.get('content_hash'))[:16]}, config {str(v.get('config_hash'))[:16]}"
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    alerts = stats.get("alerts") or []
    tail = [f"alerts firing: {len(alerts)}"] + [f"  {a}" for a in alerts]
    return "\n".join([*lines, "versions:", *versions, *tail])


# --- the server side ---------------------------------------------------------------------------


def _admin_auth(args: argparse.Namespace) -> Any:
    """The admin routes' auth from --admin-policy/--admin-key (None: no admin calls)."""
    if not args.admin_policy and not args.admin_key:
        return None
    if not (args.admin_policy and args.admin_key):
        raise ConfigError(
            "--admin-policy and --admin-key go together (the RBAC policy and the "
            "public key of the token issuer)"
        )
    from system0.core.config.signing import load_public_key
    from system0.run_folder import create_keys, open_keys
    from system0.security.access_control import Enforcer, Policy
    from system0.security.audit import AuditLedger
    from system0.security.encryption import SigningKey
    from system0.security.identity import TokenVerifier
    from system0.serving.admin import AdminAuth

    verifier = TokenVerifier(
        load_public_key(args.admin_key), audience=args.audience, issuer=args.issuer
    )
    enforcer = Enforcer(Policy.load(args.admin_policy))
    ledger = None
    if args.audit:
        root = Path(args.audit)
        root.mkdir(parents=True, exist_ok=True)
        fresh = not (root / "keys" / "keyring").is_file()
        keys = create_keys(root) if fresh else open_keys(root)
        ledger = AuditLedger.open(
            root / "audit",
            keyring=keys.keyring,
            signing_key=SigningKey.generate() if fresh else None,
        )
    return AdminAuth(verifier, enforcer, ledger)


def _deployment(args: argparse.Namespace, engine: dict[str, Any], auth: Any) -> Any:
    """Blue/green over a registry (``--registry``): every deploy must pass its golden set and
    carry a passing gate report signed for ``--gate-key`` (no deploy without a pass); the
    ``--version`` (default: the latest) is deployed and switched in before the server opens."""
    from system0.serving.deployment import Deployment
    from system0.serving.engine_io import state_engine
    from system0.serving.registry import ModelRegistry
    from system0.testing import GoldenSet, golden_check, version_gate_check

    if not args.gate_key:
        raise ConfigError(
            "--registry needs --gate-key (the public key the gate reports are signed with): "
            "no version deploys without a passing, signed gate report"
        )
    registry = ModelRegistry(args.registry)
    golden = GoldenSet.load(args.golden) if args.golden else golden_check
    dep = Deployment(
        args.name,
        registry,
        engine_factory=lambda model: state_engine(model, **engine),
        golden_check=golden,
        gate_check=version_gate_check(args.gate_key),
        audit=auth.audit if auth is not None else None,
    )
    try:
        dep.deploy(args.version or registry.latest(args.name).version)
        dep.promote()
    except BaseException:
        dep.close()
        raise
    return dep


def _serve(args: argparse.Namespace) -> int:
    try:
        return _run_server(args)
    except ImportError as exc:
        print(
            f"system0 serve: {exc}; install the server with: pip install 'system0[serve]'",
            file=sys.stderr,
        )
    except Error as exc:
        print(f"system0 serve: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 2


def _run_server(args: argparse.Namespace) -> int:
    from system0.core.config import AIConfig, load_from_yaml
    from system0.game.policy import policy_weights_path
    from system0.serving.app import create_app
    from system0.serving.pinned import PinnedService
    from system0.serving.recording import ServedRecording
    from system0.serving.server import run
    from system0.serving.wire import Limits

    config = load_from_yaml(args.config) if args.config else AIConfig()
    inf, srv = config.inference, config.serving
    recording = None
    if args.record != "off":
        out = Path(args.record_out or f"system0-runs/served-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
        recording = ServedRecording(
            out, mode=args.record, rate=args.record_rate, seed=args.seed, config=config
        )
    engine = {
        "max_batch": inf.max_batch,
        "max_wait": inf.max_wait_ms / 1e3,
        "queue_capacity": inf.queue_capacity,
    }
    auth = _admin_auth(args)
    service: Any
    if args.registry:
        if recording is not None:
            raise ConfigError("--record serves one pinned version: leave out --registry")
        service = _deployment(args, engine, auth)
    else:
        weights = Path(args.weights) if args.weights else policy_weights_path()
        service = PinnedService.from_weights(
            args.name, weights, backend=args.backend, recording=recording, **engine
        )
        service.warm()
    limits = Limits(
        max_body_bytes=args.max_body_bytes,
        default_budget_s=inf.latency_budget_ms / 1e3,
        max_budget_s=max(srv.request_timeout_ms, inf.latency_budget_ms) / 1e3,
    )
    finisher = _Announced(recording) if recording is not None else None
    alerts = _alerts(args, inf.latency_budget_ms)
    app = create_app([service], auth=auth, limits=limits, recorder=finisher, alerts=alerts)
    host, port = args.host or srv.host, args.port or srv.port
    active = service.describe()
    pinned = {v["version"]: v for v in active["versions"]}.get(active["active"], {})
    print(
        f"system0 serve: {args.name} version {active['active']} (weights "
        f"{str(pinned.get('content_hash', ''))[:16]}) on http://{host}:{port}; recording "
        f"{args.record}" + (f" into {recording.root}" if recording else ""),
        flush=True,
    )
    try:
        run(app, host, port)
    except KeyboardInterrupt:  # uvicorn re-raises the signal after its graceful shutdown
        pass
    finally:
        alerts.stop()
        service.close()
    return 0


def _alerts(args: argparse.Namespace, budget_ms: float) -> Any:
    """Alerting on the served models (shown on the dashboard): p99 latency over the budget,
    error rate over ``--alert-error-rate``, an open breaker; to the log, and to
    ``--alert-webhook`` (Alertmanager's webhook JSON) when given."""
    from system0.serving.alert_rules import TelemetrySource, default_rules
    from system0.serving.alert_sinks import LogSink, WebhookSink
    from system0.serving.alerts import AlertManager

    sinks: list[Any] = [LogSink()]
    if args.alert_webhook:
        sinks.append(WebhookSink(args.alert_webhook))
    manager = AlertManager(
        default_rules(budget_ms, args.alert_error_rate), sinks=sinks, source=TelemetrySource()
    )
    return manager.start(interval_s=5.0)


class _Announced:
    """The recording, finished at the app's shutdown (the server has stopped answering, so
    the engine is idle) and its run folders announced."""

    def __init__(self, recording: Any) -> None:
        self.recording = recording

    def finish(self) -> object:
        paths = self.recording.finish()
        for path in paths:
            print(f"system0 serve: recorded run {path} (check it: system0 replay {path})")
        return paths


def add_serving_commands(sub: Any) -> None:
    """Register ``serve``, ``deploy``, ``promote``, ``rollback``, ``drain``, ``status``."""
    p = sub.add_parser("serve", help="run the model server (HTTP, the serve extra)")
    p.add_argument("--weights", default=None, help="weights file (default: the shipped policy)")
    p.add_argument(
        "--registry", default=None, help="serve blue/green from this model registry folder"
    )
    p.add_argument("--version", default=None, help="with --registry: default the latest")
    p.add_argument("--gate-key", default=None, help="with --registry: the gate reports' key")
    p.add_argument(
        "--golden", default=None, help="with --registry: golden set (default: the shipped one)"
    )
    p.add_argument("--name", default="policy", help="the model's name in the routes")
    p.add_argument("--backend", choices=("numpy", "torch", "jax"), default="numpy")
    p.add_argument("--config", default=None, help="AIConfig YAML (engine and server settings)")
    p.add_argument("--host", default=None, help="default: the config's serving.host")
    p.add_argument("--port", type=int, default=None, help="default: the config's serving.port")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20, help="413 above (1 MiB)")
    p.add_argument(
        "--record",
        choices=("off", "complete", "sampled"),
        default="off",
        help="flight recorder (kept in memory until the server stops): off (default), every "
        "batch, or a sampled share",
    )
    p.add_argument("--record-rate", type=float, default=0.1, help="share of batches if sampled")
    p.add_argument("--record-out", default=None, help="folder of the recorded run folders")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--admin-policy", default=None, help="RBAC policy YAML for the admin routes")
    p.add_argument("--admin-key", default=None, help="PEM public key of the token issuer")
    p.add_argument("--issuer", default="system0-auth", help="the tokens' issuer")
    p.add_argument("--audience", default="system0-serve", help="the tokens' audience")
    p.add_argument("--audit", default=None, help="audit ledger folder for refused admin calls")
    p.add_argument("--alert-webhook", default=None, help="URL the alerts are POSTed to")
    p.add_argument(
        "--alert-error-rate", type=float, default=0.05, help="error-rate alert threshold (5 %%)"
    )
    p.set_defaults(run=_serve)

    server = os.environ.get("SYSTEM0_SERVER", DEFAULT_SERVER)
    for name, text in (
        ("deploy", "load a version into the idle slot of a running server's model"),
        ("promote", "switch a running server's model to its standby version"),
        ("rollback", "switch a running server's model back to its previous version"),
        ("drain", "stop a running server's model admitting requests"),
    ):
        c = sub.add_parser(name, help=text)
        c.add_argument("model", help="the model's name")
        if name == "deploy":
            c.add_argument("version", help="the version to deploy")
        c.add_argument("--server", default=server, help=f"default: {server}")
        c.add_argument("--token", default=None, help="admin token (default: $SYSTEM0_TOKEN)")
        c.set_defaults(run=_admin)
    s = sub.add_parser("status", help="the models of a running server: versions, load, latency")
    s.add_argument("--server", default=server, help=f"default: {server}")
    s.add_argument("--json", action="store_true", help="the server's JSON instead of a table")
    s.set_defaults(run=_status)
