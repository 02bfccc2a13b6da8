"""Gate: an authorization check against pycasbin on the same RBAC policy.

The policy: roles in inheritance chains of up to five (within pycasbin's default hierarchy depth
of 10), a top role inheriting the chain heads, 5 allow rules and 1 deny rule per role, deny
overriding allow; the subject holds the top role, so every role's rules are in play. Two sizes:
20 roles (120 rules) and 2 roles (12 rules, where pycasbin is at its fastest). Both answer the
same mixed requests (allowed, denied by a deny rule, denied by default), checked before timing.

system0's figure is the issue's "cached" case: the Enforcer's decision cache is warm after the
warm-up round, as in a server that answers the same principals all day. pycasbin has no
decision cache; its `Enforcer.enforce` is what a user would otherwise call. A third row, our
enforcer with its cache off, is context for the cold path (no goal in the issue).
"""

from __future__ import annotations

import casbin
from ratio import Gate

from system0.security.access_control import Enforcer, Policy, Subject

MODEL = """
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act, eft

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = g(r.sub, p.sub) && keyMatch(r.obj, p.obj) && (r.act == p.act || p.act == "*")
"""


def _rules(i: int) -> tuple[list[tuple[str, str]], tuple[str, str]]:
    allows = [(f"svc{i}/res{j}/*", "read" if j % 2 else "write") for j in range(5)]
    return allows, (f"svc{i}/res0/secret*", "*")


def _parent(i: int) -> str | None:
    return f"r{i - 1}" if i % 5 else None  # r4 inherits r3 ... r0; r9 ... r5; and so on


def _heads(roles: int) -> list[str]:
    return sorted({f"r{min(i + 4, roles - 1)}" for i in range(0, roles, 5)})


def _ours(roles: int, cache_size: int) -> tuple[Enforcer, Subject]:
    doc: dict[str, dict[str, object]] = {"lead": {"inherits": _heads(roles)}}
    for i in range(roles):
        allows, deny = _rules(i)
        parent = _parent(i)
        doc[f"r{i}"] = {
            "inherits": [parent] if parent else [],
            "allow": [{"resource": res, "action": act} for res, act in allows],
            "deny": [{"resource": deny[0], "action": deny[1]}],
        }
    policy = Policy.from_dict({"roles": doc, "bindings": [{"subject": "alice", "role": "lead"}]})
    return Enforcer(policy, cache_size=cache_size), Subject.of("alice")


def _peer(roles: int) -> casbin.Enforcer:
    model = casbin.model.Model()
    model.load_model_from_text(MODEL)
    e = casbin.Enforcer(model)
    for i in range(roles):
        allows, deny = _rules(i)
        for res, act in allows:
            e.add_policy(f"r{i}", res, act, "allow")
        e.add_policy(f"r{i}", deny[0], deny[1], "deny")
        parent = _parent(i)
        if parent:
            e.add_grouping_policy(f"r{i}", parent)
    for head in _heads(roles):
        e.add_grouping_policy("lead", head)
    e.add_grouping_policy("alice", "lead")
    return e


def _requests(roles: int) -> list[tuple[str, str, bool]]:
    # An allow deep in a chain, a deny-rule hit, another allow, a default deny.
    last = roles - 1
    return [
        ("svc0/res1/item", "read", True),
        (f"svc{last}/res0/secret-key", "write", False),
        (f"svc{last}/res4/x", "write", True),
        ("model/policy", "deploy", False),
    ]


def _gate(name: str, roles: int, cache_size: int, gate: float, goal: float, n: int) -> Gate:
    enforcer, alice = _ours(roles, cache_size)
    peer = _peer(roles)
    requests = _requests(roles)
    for res, act, expected in requests:  # same answers, or the comparison means nothing
        assert enforcer.check(alice, res, act).allowed is expected, (res, act)
        assert peer.enforce("alice", res, act) is expected, (res, act)
    reqs = requests * 4

    def ours(n: int) -> None:
        check = enforcer.check
        for i in range(n):
            res, act, _ = reqs[i & 15]
            check(alice, res, act)

    def theirs(n: int) -> None:
        enforce = peer.enforce
        for i in range(n):
            res, act, _ = reqs[i & 15]
            enforce("alice", res, act)

    return Gate(name, ours, theirs, "pycasbin Enforcer.enforce", gate, goal, n=n, rounds=5)


def gates() -> list[Gate]:
    return [
        _gate("authorization check, cached (20 roles, 120 rules)", 20, 65_536, 3.0, 10.0, 400),
        _gate("authorization check, cached (2 roles, 12 rules)", 2, 65_536, 3.0, 10.0, 2_000),
        _gate("authorization check, uncached (20 roles, 120 rules)", 20, 0, 1.0, 1.0, 400),
    ]
