"""The admin routes: RBAC tokens of the security spine; a missing token is 401, a forged,
foreign or denied one 403, and every refusal is one audit ledger entry."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from system0.security.identity import TokenIssuer

from .serving_fixtures import AUDIENCE, ISSUER, Admin, Served


def _post(served: Served, path: str, token: str | None = None, json: object = None) -> object:
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    return served.client.post(path, headers=headers, json=json)


def test_missing_token_is_401_and_audited(served: Served, admin: Admin) -> None:
    r = _post(served, "/v1/models/policy/rollback")
    assert r.status_code == 401  # type: ignore[attr-defined]
    assert r.headers["www-authenticate"].startswith("Bearer")  # type: ignore[attr-defined]
    r = served.client.post("/v1/models/policy/drain", headers={"authorization": "Basic eA=="})
    assert r.status_code == 401
    entries = admin.entries()
    assert [(e["type"], e["action"], e["subject"]) for e in entries] == [
        ("admin_denied", "rollback", None),
        ("admin_denied", "drain", None),
    ]
    assert entries[0]["resource"] == "model/policy" and entries[0]["reason"] == "no token"


def test_forged_foreign_and_denied_tokens_are_403_and_audited(served: Served, admin: Admin) -> None:
    forged = TokenIssuer(Ed25519PrivateKey.generate(), ISSUER).issue("alice", audience=AUDIENCE)
    foreign = admin.issuer.issue("alice", audience="another-service")
    good = admin.token("alice")
    altered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    for token in (forged, foreign, altered, "not-a-token"):
        r = _post(served, "/v1/models/policy/drain", token)
        assert r.status_code == 403, token  # type: ignore[attr-defined]
    r = _post(served, "/v1/models/policy/drain", admin.token("bob"))  # a viewer
    assert r.status_code == 403  # type: ignore[attr-defined]
    assert "'bob' may not drain 'model/policy'" in r.json()["message"]  # type: ignore[attr-defined]
    entries = admin.entries()
    assert len(entries) == 5 and {e["type"] for e in entries} == {"admin_denied"}
    assert "bad signature" in entries[0]["reason"] and "audience" in entries[1]["reason"]
    assert entries[4]["subject"] == "bob"
    assert served.service.ready()  # nothing was drained


def test_an_operator_is_allowed_and_refusals_are_clear(served: Served, admin: Admin) -> None:
    token = admin.token("alice")
    r = _post(served, "/v1/models/policy/deploy", token, {"version": "v999"})
    assert r.status_code == 404  # type: ignore[attr-defined]
    assert "v999" in r.json()["message"]  # type: ignore[attr-defined]
    r = _post(served, "/v1/models/policy/deploy", token, {"nope": 1})
    assert r.status_code == 422  # type: ignore[attr-defined]
    r = _post(served, "/v1/models/policy/rollback", token)
    assert r.status_code == 404  # type: ignore[attr-defined]
    assert "no previous version" in r.json()["message"]  # type: ignore[attr-defined]
    v = served.service.version
    r = _post(served, "/v1/models/policy/deploy", token, {"version": v})
    assert r.status_code == 200 and r.json()["by"] == "alice"  # type: ignore[attr-defined]
    assert admin.entries() == []  # allowed calls are audited by the deployment, not here
    r = _post(served, "/v1/models/nope/rollback", token)
    assert r.status_code == 404  # type: ignore[attr-defined]


def test_without_admin_auth_every_admin_call_is_403() -> None:
    from .serving_fixtures import pinned, serve

    gen = serve(pinned())
    served = next(gen)
    try:
        r = served.client.post("/v1/models/policy/drain")
        assert r.status_code == 403 and "no admin calls" in r.json()["message"]
    finally:
        gen.close()
