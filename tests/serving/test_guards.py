"""Inline action guards: signed rules, vectorized vetoes, the fallback, counts and audit."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from system0.core import telemetry
from system0.data.serialization import featurize_requests
from system0.errors import ConfigError
from system0.game.simulator import ACTIONS
from system0.interfaces.model_interface import AIModelInterface
from system0.security.audit import AuditLedger
from system0.serving.deployment import Deployment
from system0.serving.engine_io import state_engine
from system0.serving.guards import ACTION_KIND, GuardRules, Guards
from system0.serving.registry import ModelRegistry
from system0.serving.watch import RollbackPolicy

from .conftest import biased_mlp, events, publish, state

ATTACK, RETREAT, CAST_Q, CAST_W, CAST_E, CAST_R, FARM, WARD = range(8)

RULES: dict[str, Any] = {
    "version": 1,
    "safe_action": "attack",
    "rules": [
        {
            "name": "no-buy-without-gold",
            "actions": ["buy"],
            "deny_when": [{"field": "gold_advantage", "op": "<", "value": 0}],
        },
        {
            "name": "no-cast-on-cooldown",
            "actions": ["cast"],
            "deny_when": [{"field": "slot_cooldown", "op": ">", "value": 0}],
        },
        {"name": "ward-rate", "actions": ["ward"], "rate_limit": {"max": 2, "per_s": 10}},
    ],
}


def body(**changes: Any) -> bytes:
    return json.dumps(state(**changes)).encode()


def judge(guards: Guards, bodies: list[bytes], actions: list[int], match: str = "") -> Any:
    x = featurize_requests(bodies).matrix
    outs = np.zeros((len(bodies), 8), np.float32)
    outs[np.arange(len(bodies)), actions] = 1.0
    return guards.apply(x, outs, np.array(actions, np.int64), bodies, match=match)


def test_policy_actions_map_to_contract_kinds() -> None:
    kinds = dict(zip(ACTIONS, ACTION_KIND, strict=True))
    assert kinds["ward"] == ("buy", None)
    assert kinds["cast_q"] == ("cast", "q") and kinds["cast_r"] == ("cast", "r")
    assert kinds["retreat"][0] == "move" and kinds["farm"][0] == "attack"


def test_signed_rules_load_and_anything_else_is_refused(tmp_path: pathlib.Path) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "guards.yaml"
    path.write_text(yaml.safe_dump(RULES))
    rules = GuardRules.from_yaml(path.read_bytes())
    with pytest.raises(ConfigError, match="unsigned"):
        GuardRules.load(path, trusted_keys=[key.public_key()])
    (tmp_path / "guards.yaml.sig").write_bytes(rules.sign(key))
    loaded = GuardRules.load(path, trusted_keys=[key.public_key()])
    assert loaded.content_hash == rules.content_hash
    assert loaded.names == ("no-buy-without-gold", "no-cast-on-cooldown", "ward-rate")
    with pytest.raises(ConfigError, match="no trusted keys"):
        GuardRules.load(path, trusted_keys=[])
    with pytest.raises(ConfigError, match="does not verify"):
        GuardRules.load(path, trusted_keys=[Ed25519PrivateKey.generate().public_key()])
    tampered = dict(RULES, rules=RULES["rules"][1:])  # someone drops the gold rule
    path.write_text(yaml.safe_dump(tampered))
    with pytest.raises(ConfigError, match="altered after signing"):
        GuardRules.load(path, trusted_keys=[key.public_key()])
    # the same key's signature over another kind of document does not carry over
    path.write_text(yaml.safe_dump(RULES))
    (tmp_path / "guards.yaml.sig").write_bytes(key.sign(rules.canonical))
    with pytest.raises(ConfigError, match="does not verify"):
        GuardRules.load(path, trusted_keys=[key.public_key()])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"actions": ["fly"]}, "is no policy action"),
        ({"actions": ["recall"]}, "is no policy action"),
        ({"deny_when": [{"field": "luck", "op": "<", "value": 1}]}, "not a feature column"),
        ({"deny_when": [{"field": "health", "op": "~", "value": 1}]}, "deny_when.0.op"),
        ({"deny_when": [{"field": "health", "op": "<", "value": float("nan")}]}, "value"),
        (
            {"actions": ["farm"], "deny_when": [{"field": "slot_cooldown", "op": ">", "value": 0}]},
            "cast actions only",
        ),
        ({"rate_limit": {"max": 1, "per_s": 1}}, "not both"),
        ({"deny_when": []}, "not both"),
    ],
)
def test_bad_rules_are_refused_saying_what(change: dict[str, Any], message: str) -> None:
    rule = {**RULES["rules"][0], **change}
    with pytest.raises(ConfigError, match=message):
        GuardRules.from_dict({"version": 1, "rules": [rule]})


def test_rule_set_level_mistakes() -> None:
    twice = {"version": 1, "rules": [RULES["rules"][0], RULES["rules"][0]]}
    with pytest.raises(ConfigError, match="used twice"):
        GuardRules.from_dict(twice)
    with pytest.raises(ConfigError, match="no rule can veto"):
        GuardRules.from_dict({**RULES, "safe_action": "ward"})
    with pytest.raises(ConfigError, match="safe_action 'dance'"):
        GuardRules.from_dict({**RULES, "safe_action": "dance"})
    with pytest.raises(ConfigError, match="version"):
        GuardRules.from_dict({**RULES, "version": 2})
    with pytest.raises(ConfigError, match="not valid YAML"):
        GuardRules.from_yaml(b"rules: [")


def test_state_rules_veto_vectorized_and_the_fallback_answers() -> None:
    guards = Guards(GuardRules.from_dict(RULES), model="t-state")
    bodies = [
        body(cooldowns={"r": 30.0}),  # cast r on cooldown: vetoed
        body(cooldowns={"r": 0.0}),  # cast r ready: stands
        body(gold_advantage=-500.0),  # buy (ward) while behind in gold: vetoed
        body(gold_advantage=800.0),  # buy with gold: stands
        body(cooldowns={"q": 2.0}),  # attack: no rule judges it
    ]
    out = judge(guards, bodies, [CAST_R, CAST_R, WARD, WARD, ATTACK], match="m1")
    assert out.vetoes == ["no-cast-on-cooldown", None, "no-buy-without-gold", None, None]
    # the scripted player answers the vetoed rows: with q ready and mana it casts q; with r
    # ready and gold above -1000 it casts r
    assert out.actions.tolist() == [CAST_Q, CAST_R, CAST_R, WARD, ATTACK]
    assert out.outputs[0].argmax() == CAST_Q and out.outputs[0].max() == 1.0


def test_a_vetoed_fallback_gives_way_to_the_safe_action() -> None:
    guards = Guards(GuardRules.from_dict(RULES), model="t-safe")
    # every ability on cooldown and little vision: the scripted player wards too, which the
    # gold rule vetoes again, so the safe action answers
    cds = {s: 30.0 for s in "qwerdf"}
    out = judge(guards, [body(cooldowns=cds, vision_score=3.0, gold_advantage=-200.0)], [WARD])
    assert out.vetoes == ["no-buy-without-gold"]
    assert out.actions.tolist() == [ATTACK]


def test_rate_limit_per_match_and_champion_in_game_time() -> None:
    guards = Guards(GuardRules.from_dict(RULES), model="t-rate")

    def at(seconds: int, champion: str = "Ahri") -> bytes:
        return body(
            timestamp=f"2024-05-01T12:00:{seconds:02d}Z", champion=champion, gold_advantage=900.0
        )

    out = judge(guards, [at(0), at(1), at(2), at(3, "Lux")], [WARD] * 4, match="a")
    assert out.vetoes == [None, None, "ward-rate", None]
    assert judge(guards, [at(4)], [WARD], match="b").vetoes == [None]  # another match
    assert judge(guards, [at(9)], [WARD], match="a").vetoes == ["ward-rate"]
    assert judge(guards, [at(11)], [WARD], match="a").vetoes == [None]  # t=0 and 1 left


@pytest.fixture
def guarded(
    registry: ModelRegistry, weights_dir: pathlib.Path, ledger: AuditLedger
) -> Iterator[Deployment]:
    publish(registry, weights_dir, biased_mlp(CAST_R), name="guarded")  # casts r, ready or not

    def no_golden(model: AIModelInterface) -> None:
        """The guards are under test here, not the version."""

    dep = Deployment(
        "guarded",
        registry,
        engine_factory=lambda m: state_engine(m, max_batch=8, max_wait=0.0),
        golden_check=no_golden,
        guards=GuardRules.from_dict(RULES),
        audit=ledger,
        rollback_policy=RollbackPolicy(window_s=0),
    )
    yield dep
    dep.close()


def test_guards_run_on_every_served_answer(guarded: Deployment, ledger: AuditLedger) -> None:
    guarded.deploy("v1")
    guarded.promote()
    bodies = [body(cooldowns={"r": 40.0}), body(), body(cooldowns={"r": 5.0})]
    got = [f.result(timeout=10) for f in guarded.submit(bodies, 2.0, match="m7")]
    assert [a.guard for a in got] == ["no-cast-on-cooldown", None, "no-cast-on-cooldown"]
    assert [a.action for a in got] == [CAST_Q, CAST_R, CAST_Q]
    assert got[0].fallback and got[0].reason is not None and "no-cast-on-cooldown" in got[0].reason
    assert not got[1].fallback and got[1].version == "v1"
    guarded.close()  # vetoes are audited off the engine's thread; close writes what is queued
    vetoes = [e for e in events(ledger) if e["event"] == "guard_veto"]
    assert [(e["rule"], e["action"], e["replacement"], e["match"]) for e in vetoes] == [
        ("no-cast-on-cooldown", "cast_r", "cast_q", "m7")
    ] * 2
    text = telemetry.render_prometheus()
    assert 'serving_guard_vetoes_total{model="guarded",rule="no-cast-on-cooldown"} 2' in text
