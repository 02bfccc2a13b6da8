"""Enforcer decisions: inheritance, deny overrides, default deny, domains, cache, audit,
decorators."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from system0.errors import AccessDenied, ValidationError
from system0.security.access_control import (
    Enforcer,
    Policy,
    Subject,
    acting_as,
    require,
    requires,
)

POLICY = Policy.from_yaml(
    """
roles:
  reader:
    allow: [{resource: "dataset/**", action: read}]
  analyst:
    inherits: [reader]
    allow: [{resource: "dataset/*/aggregates", action: [read, release]}]
    deny: [{resource: "dataset/secret/**", action: "*"}]
  admin:
    inherits: [analyst]
    allow: [{resource: "**", action: "*"}]
  member:
    allow: [{resource: "project/{domain}/**", action: "*"}]
  auditor:
    allow: [{resource: "dataset/secret/**", action: read}]
bindings:
  - {subject: alice, role: analyst}
  - {subject: bob, role: member, domain: tetris}
"""
)


class AccessLog:
    """A real sink with the ledger's method shape; the integrator wires the ledger itself."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, dict[str, Any]]] = []

    def log_data_access(
        self, subject: str, resource: str, action: str, decision: str, metadata: dict[str, Any]
    ) -> None:
        self.rows.append((subject, resource, action, decision, metadata))


def test_inheritance_grants_the_parents_permissions() -> None:
    e = Enforcer(POLICY)
    alice = Subject.of("alice")  # analyst by binding, reader by inheritance
    d = e.check(alice, "dataset/telemetry", "read")
    assert d.allowed and d.rule is not None and d.rule.role == "reader"
    assert e.check(alice, "dataset/telemetry/aggregates", "release").allowed
    assert not e.check(alice, "dataset/telemetry", "release").allowed


def test_deny_overrides_allow_even_from_a_stronger_role() -> None:
    e = Enforcer(POLICY)
    # admin inherits analyst's deny; auditor explicitly allows the same resource.
    for roles in (["admin"], ["analyst", "auditor"]):
        d = e.check(Subject.of("x", roles), "dataset/secret/keys", "read")
        assert not d.allowed
        assert d.rule is not None and d.rule.effect == "deny" and d.rule.role == "analyst"
        assert "denied by rule 'deny dataset/secret/** *" in d.reason
    assert e.check(Subject.of("x", ["auditor"]), "dataset/secret/keys", "read").allowed
    assert e.check(Subject.of("x", ["admin"]), "model/policy", "deploy").allowed


def test_default_deny_says_why() -> None:
    e = Enforcer(POLICY)
    nobody = e.check(Subject.of("mallory"), "dataset/x", "read")
    assert not nobody.allowed and nobody.rule is None
    assert "holds no role" in nobody.reason
    reader = e.check(Subject.of("r", ["reader"]), "model/x", "read")
    assert "no rule of role(s) reader grants it" in reader.reason
    ghost = e.check(Subject.of("g", ["ghost"]), "dataset/x", "read")
    assert not ghost.allowed  # a claimed role the policy does not define grants nothing


def test_domains_scope_bindings_claims_and_patterns() -> None:
    e = Enforcer(POLICY)
    bob = Subject.of("bob")
    assert e.check(bob, "project/tetris/model", "write", domain="tetris").allowed
    assert not e.check(bob, "project/chess/model", "write", domain="tetris").allowed
    assert not e.check(bob, "project/chess/model", "write", domain="chess").allowed
    assert not e.check(bob, "project/tetris/model", "write").allowed  # no domain, no binding
    carol = Subject.of("carol", domain_roles={"chess": ["member"]})
    assert e.check(carol, "project/chess/x", "read", domain="chess").allowed
    assert not e.check(carol, "project/chess/x", "read", domain="tetris").allowed


def test_require_raises_access_denied_naming_subject_action_resource_and_why() -> None:
    e = Enforcer(POLICY)
    assert e.require(Subject.of("alice"), "dataset/t", "read").allowed
    with pytest.raises(AccessDenied) as info:
        e.require(Subject.of("alice"), "dataset/secret/k", "delete", domain="tetris")
    msg = str(info.value)
    for part in ("'alice'", "may not delete", "'dataset/secret/k'", "'tetris'", "denied by rule"):
        assert part in msg
    assert isinstance(info.value, PermissionError)


def test_every_decision_is_audited_including_cached_ones() -> None:
    log = AccessLog()
    e = Enforcer(POLICY, audit=log)
    alice = Subject.of("alice")
    e.check(alice, "dataset/t", "read")
    e.check(alice, "dataset/t", "read")
    e.check(alice, "dataset/secret/k", "read")
    assert e.hits == 1 and e.misses == 2
    assert [(r[0], r[1], r[2], r[3]) for r in log.rows] == [
        ("alice", "dataset/t", "read", "allow"),
        ("alice", "dataset/t", "read", "allow"),
        ("alice", "dataset/secret/k", "read", "deny"),
    ]
    meta = log.rows[2][4]
    assert meta["rule"].startswith("deny dataset/secret/**") and meta["domain"] is None
    assert meta["policy"] == POLICY.content_hash


def test_set_policy_invalidates_cached_decisions() -> None:
    e = Enforcer(POLICY)
    alice = Subject.of("alice")
    assert e.check(alice, "dataset/t", "read").allowed
    e.set_policy(Policy.from_dict({"roles": {"analyst": {}}, "bindings": []}))
    assert not e.check(alice, "dataset/t", "read").allowed


def test_cache_is_bounded() -> None:
    e = Enforcer(POLICY, cache_size=8)
    for i in range(50):
        e.check(Subject.of("alice"), f"dataset/{i}", "read")
    assert len(e._state.cache) <= 8
    with pytest.raises(ValidationError):
        Enforcer(POLICY, cache_size=-1)


RESOURCES = st.lists(
    st.sampled_from(["dataset", "secret", "aggregates", "project", "tetris", "model", "x"]),
    min_size=1,
    max_size=4,
).map("/".join)


@settings(max_examples=150)
@given(
    roles=st.sets(st.sampled_from(["reader", "analyst", "admin", "member", "auditor", "ghost"])),
    resource=RESOURCES,
    action=st.sampled_from(["read", "release", "write", "delete"]),
    domain=st.sampled_from([None, "tetris", "chess"]),
)
def test_cached_decisions_equal_fresh_ones(
    roles: set[str], resource: str, action: str, domain: str | None
) -> None:
    subject = Subject.of("s", roles)
    fresh = Enforcer(POLICY, cache_size=0).check(subject, resource, action, domain)
    cached = SHARED.check(subject, resource, action, domain)
    again = SHARED.check(subject, resource, action, domain)
    assert fresh == cached == again


SHARED = Enforcer(POLICY)


def test_concurrent_checks_and_policy_swaps_stay_consistent() -> None:
    e = Enforcer(POLICY, cache_size=64)
    denying = Policy.from_dict({"roles": {"analyst": {}}, "bindings": []})
    errors: list[str] = []

    def checker() -> None:
        alice = Subject.of("alice")
        for i in range(2000):
            d = e.check(alice, f"dataset/{i % 100}", "read")
            if d.allowed != (d.rule is not None):
                errors.append(d.reason)

    def swapper() -> None:
        alice = Subject.of("alice")
        for i in range(400):
            allow = i % 2 == 0  # i = 399 last: ends on `denying`
            e.set_policy(POLICY if allow else denying)
            # A decision cached under the other policy would show up here as a wrong answer.
            for j in range(0, 100, 7):
                if e.check(alice, f"dataset/{j}", "read").allowed != allow:
                    errors.append(f"stale decision for dataset/{j} after swap {i}")

    threads = [threading.Thread(target=checker) for _ in range(4)]
    threads.append(threading.Thread(target=swapper))
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so that races get a chance to show
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    # No decision of the old policy may have leaked into the final policy's cache.
    alice = Subject.of("alice")
    assert not any(e.check(alice, f"dataset/{i}", "read").allowed for i in range(100))


def test_requires_decorator_uses_the_ambient_subject_and_fills_templates() -> None:
    e = Enforcer(POLICY)

    @requires("dataset/{name}", "read", enforcer=e)
    def load(name: str) -> str:
        return f"rows of {name}"

    with acting_as(Subject.of("alice")):
        assert load("telemetry") == "rows of telemetry"
        with pytest.raises(AccessDenied, match="'dataset/secret/keys'"):
            load(name="secret/keys")
    with pytest.raises(AccessDenied, match="no subject in scope"):
        load("telemetry")
    with acting_as(Subject.of("alice")), pytest.raises(AccessDenied, match="suspicious"):
        load("../model")


def test_requires_with_subject_argument_and_ambient_enforcer() -> None:
    e = Enforcer(POLICY)

    @requires("project/{project}/models", "write", domain="{project}")
    def publish(project: str, *, subject: Subject) -> str:
        return project

    @requires("dataset/t", "read")
    def positional(subject: Subject) -> str:
        return subject.id

    bob = Subject.of("bob")
    with acting_as(Subject.of("mallory"), e):
        assert publish("tetris", subject=bob) == "tetris"  # the argument wins
        assert positional(Subject.of("alice")) == "alice"  # positional too
        with pytest.raises(AccessDenied, match="'bob' may not read"):
            positional(bob)
        with pytest.raises(AccessDenied, match="'bob' may not write 'project/chess/models'"):
            publish("chess", subject=bob)
    with pytest.raises(AccessDenied, match="no enforcer in scope"):
        publish("tetris", subject=bob)
    with pytest.raises(AccessDenied):
        require("dataset/x", "read", subject=Subject.of("alice"))  # no enforcer
    assert require("dataset/x", "read", subject=Subject.of("alice"), enforcer=e).allowed


def test_requires_on_a_coroutine_and_a_bad_template() -> None:
    e = Enforcer(POLICY)

    @e.requires("dataset/{name}/aggregates", "release")
    async def release(name: str) -> int:
        return 42

    async def main() -> None:
        with acting_as(Subject.of("alice")):
            assert await release("games") == 42
        with acting_as(Subject.of("r", ["reader"])):
            with pytest.raises(AccessDenied, match="may not release"):
                await release("games")

    asyncio.run(main())

    @e.requires("dataset/{missing}", "read")
    def broken(name: str) -> None:
        return None

    with acting_as(Subject.of("alice")), pytest.raises(ValidationError, match="missing"):
        broken("x")
