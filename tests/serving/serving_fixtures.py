"""Helpers of the server tests: a real engine over the shipped policy behind a real uvicorn
server on loopback, real RBAC tokens and a real audit ledger."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from system0.game.policy import policy_weights_path
from system0.game.simulator import MatchSimulator
from system0.interfaces.model_interface import NumpyModelInterface
from system0.security.audit import AuditLedger
from system0.security.identity import TokenIssuer
from system0.serving.admin import AdminAuth
from system0.serving.app import create_app
from system0.serving.pinned import PinnedService
from system0.serving.server import BackgroundServer

ISSUER, AUDIENCE = "system0-auth", "system0-serve"
POLICY = {
    "version": 1,
    "roles": {
        "operator": {
            "allow": [
                {"resource": "model/**", "action": ["deploy", "promote", "rollback", "drain"]}
            ]
        },
        "viewer": {"allow": [{"resource": "model/**", "action": "read"}]},
    },
    "bindings": [{"subject": "alice", "role": "operator"}, {"subject": "bob", "role": "viewer"}],
}


def states(n: int = 6, seed: int = 3) -> list[dict[str, Any]]:
    """Real GameStates from the simulator (a tick of ``n``)."""
    sim = MatchSimulator(seed)
    out: list[dict[str, Any]] = []
    while len(out) < n:
        out.extend(copy.deepcopy(sim.observe().states))
    return out[:n]


def body(state: dict[str, Any] | list[dict[str, Any]]) -> bytes:
    return json.dumps(state).encode()


@dataclass
class Admin:
    auth: AdminAuth
    issuer: TokenIssuer
    ledger: AuditLedger

    def token(self, subject: str) -> str:
        return self.issuer.issue(subject, audience=AUDIENCE)

    def entries(self) -> list[dict[str, Any]]:
        return [self.ledger.read(i).json() for i in range(self.ledger.size)]


def pinned(**engine: Any) -> PinnedService:
    svc = PinnedService.from_weights("policy", policy_weights_path(), **engine)
    svc.warm()
    return svc


@dataclass
class Served:
    service: PinnedService
    server: BackgroundServer
    client: httpx.Client

    def infer(self, content: bytes, **headers: str) -> httpx.Response:
        return self.client.post("/v1/models/policy/infer", content=content, headers=headers)


def serve(service: PinnedService, **app: Any) -> Iterator[Served]:
    server = BackgroundServer(create_app([service], **app)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            yield Served(service, server, client)
    finally:
        server.stop()
        service.close()


class SlowPolicy(NumpyModelInterface):
    """The shipped policy, slowed by ``delay`` seconds a call (a busy model), or failing
    while ``fail`` is set: real inference with a cost the overload tests control."""

    delay = 0.0
    fail = False

    def infer(self, x: Any) -> Any:
        if self.fail:
            raise RuntimeError("the model failed (test)")
        if self.delay:
            time.sleep(self.delay)
        return super().infer(x)


def slow_service(delay: float = 0.0, **engine: Any) -> tuple[PinnedService, SlowPolicy]:
    """A service over :class:`SlowPolicy`, warmed (its estimate learned) at ``delay``."""
    model = SlowPolicy(name="policy").load(policy_weights_path())
    model.delay = delay
    svc = PinnedService("policy", model, **engine)
    svc.warm()
    return svc, model
