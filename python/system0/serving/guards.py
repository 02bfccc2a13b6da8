"""Inline action guards: declarative rules over a state and the action chosen for it.

The rules are a YAML document, signed like the RBAC policy (an Ed25519 detached signature in
``<file>.sig`` over the canonical JSON of the validated document, with a domain prefix so a
signature over another kind of document never verifies here)::

    version: 1
    safe_action: attack             # answers when the fallback's own action is vetoed too
    rules:
      - name: no-buy-without-gold
        actions: [buy]              # contract kinds (attack move cast buy) or policy actions
        deny_when:                  # every clause true: veto (values in game units)
          - {field: gold_advantage, op: "<", value: 0}
      - name: no-cast-on-cooldown
        actions: [cast]
        deny_when:
          - {field: slot_cooldown, op: ">", value: 0}   # the cast slot's own cooldown
      - name: ward-rate
        actions: [ward]
        rate_limit: {max: 3, per_s: 10}                # per match and champion, game time

The policy answers one of ``system0.game.simulator.ACTIONS``; each maps to a contract
``Action`` kind by ``system0.game.samples.contract_action`` (``ward`` is a ``buy`` of a ward,
``cast_q`` a ``cast`` of slot ``q``...), so a rule names either. Fields are the codec's feature
columns (``_core.feature_names()``) in game units (the row times ``DENSE_SCALES``): the dense
fields, ``cooldown_<slot>``, ``item_<name>`` (1 held, 0 not) and ``slot_cooldown``.

:class:`Guards` evaluates the rules on every answered tick, vectorized over its feature rows
(one numpy pass per rule; a rate limit looks only at the rows whose action it limits and reads
their champion and timestamp from the codec). A vetoed answer is replaced by the deterministic
fallback's (the scripted player); when a rule vetoes that too, by ``safe_action``, which no
rule may cover. Each veto is counted (``serving_guard_vetoes{model, rule}``) and audited.
"""

from __future__ import annotations

import hashlib
import json
import operator
import pathlib
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticValidationError

from system0.core import telemetry
from system0.data.serialization import DENSE_SCALES, FEATURE_NAMES, decode_game_states
from system0.errors import ConfigError
from system0.game.heuristic import heuristic_probabilities
from system0.game.samples import contract_action
from system0.game.simulator import ACTIONS
from system0.security.identity import Signer

__all__ = ["ACTION_KIND", "DOMAIN", "GuardOutcome", "GuardRules", "Guards"]

DOMAIN = b"system0-guard-rules-v1\x00"
F32 = npt.NDArray[np.float32]


def _kinds() -> tuple[tuple[str, str | None], ...]:
    """(contract kind, cast slot) of each policy action, from the game's own mapping."""
    here = [{"position": {"x": 0.5, "y": 0.5}}, {"position": {"x": 0.6, "y": 0.5}}]
    out = []
    for i in range(len(ACTIONS)):
        act = contract_action(i, here, 0)
        out.append((str(act["kind"]), act.get("slot")))
    return tuple(out)


ACTION_KIND: tuple[tuple[str, str | None], ...] = _kinds()
"""``ACTION_KIND[i]``: the contract kind of policy action ``i`` and its cast slot (or None)."""

_COL = {name: i for i, name in enumerate(FEATURE_NAMES)}
_SCALE = np.ones(len(FEATURE_NAMES), np.float64)
_SCALE[: len(DENSE_SCALES)] = DENSE_SCALES
# per policy action: the feature column of its cast slot's cooldown, -1 when it casts nothing
_SLOT_COL = np.array([_COL[f"cooldown_{s}"] if s else -1 for _, s in ACTION_KIND], np.int64)
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_MAX_KEYS = 100_000  # rate-limit keys kept (match, champion): the oldest are forgotten first


class _Clause(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    field: str
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    value: float = Field(allow_inf_nan=False)


class _RateLimit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    max: int = Field(ge=0, le=1_000_000)
    per_s: float = Field(gt=0, le=86_400, allow_inf_nan=False)


class _RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    actions: list[str] = Field(min_length=1)
    deny_when: list[_Clause] = []
    rate_limit: _RateLimit | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> _RuleSpec:
        if bool(self.deny_when) == (self.rate_limit is not None):
            raise ValueError("a rule has either deny_when clauses or a rate_limit, not both")
        return self


class _RulesSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: Literal[1] = 1
    safe_action: str = "attack"
    rules: list[_RuleSpec] = []


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    mask: npt.NDArray[np.bool_]  # over policy action indices: the actions this rule judges
    clauses: tuple[tuple[int, Callable[[Any, Any], Any], float], ...]  # (column|-1, op, value)
    rate: _RateLimit | None


def _action_mask(names: Sequence[str], where: str) -> npt.NDArray[np.bool_]:
    mask = np.zeros(len(ACTIONS), bool)
    for n in names:
        hit = [i for i, a in enumerate(ACTIONS) if a == n or ACTION_KIND[i][0] == n]
        if not hit:
            kinds = sorted({k for k, _ in ACTION_KIND})
            raise ConfigError(
                f"{where}: action {n!r} is no policy action ({', '.join(ACTIONS)}) nor the "
                f"kind of one ({', '.join(kinds)})"
            )
        mask[hit] = True
    return mask


def _compile(spec: _RulesSpec, source: str) -> tuple[tuple[_Rule, ...], int]:
    rules: list[_Rule] = []
    names: set[str] = set()
    for r in spec.rules:
        where = f"guard rules {source}, rule {r.name!r}"
        if r.name in names:
            raise ConfigError(f"{where}: the name is used twice; rule names identify vetoes")
        names.add(r.name)
        mask = _action_mask(r.actions, where)
        clauses = []
        for c in r.deny_when:
            if c.field == "slot_cooldown":
                if (_SLOT_COL[mask] < 0).any():
                    raise ConfigError(f"{where}: slot_cooldown applies to cast actions only")
                clauses.append((-1, _OPS[c.op], c.value))
            elif c.field in _COL:
                col = _COL[c.field]
                clauses.append((col, _OPS[c.op], c.value / float(_SCALE[col])))
            else:
                raise ConfigError(
                    f"{where}: field {c.field!r} is not a feature column; use slot_cooldown or "
                    f"one of {', '.join(FEATURE_NAMES[:12])}, item_<name>"
                )
        rules.append(_Rule(r.name, mask, tuple(clauses), r.rate_limit))
    try:
        safe = ACTIONS.index(spec.safe_action)
    except ValueError:
        raise ConfigError(
            f"guard rules {source}: safe_action {spec.safe_action!r} is not one of {ACTIONS}"
        ) from None
    covering = [r.name for r in rules if r.mask[safe]]
    if covering:
        raise ConfigError(
            f"guard rules {source}: safe_action {spec.safe_action!r} is judged by rule(s) "
            f"{covering}; the last resort must be an action no rule can veto"
        )
    return tuple(rules), safe


class GuardRules:
    """A validated, immutable rule set. Build with :meth:`from_dict`, :meth:`from_yaml` or
    :meth:`load` (which verifies the signature)."""

    def __init__(self, spec: _RulesSpec, source: str = "<rules>") -> None:
        self._spec = spec
        self.rules, self.safe_action = _compile(spec, source)
        self.canonical = json.dumps(
            spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
        ).encode("utf-8")
        self.content_hash = "sha256:" + hashlib.sha256(self.canonical).hexdigest()

    def __repr__(self) -> str:
        return f"GuardRules({len(self.rules)} rules, {self.content_hash[:19]})"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.rules)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> GuardRules:
        if not isinstance(data, Mapping):
            raise ConfigError(f"guard rules {source}: expected a mapping at the top level")
        try:
            spec = _RulesSpec.model_validate(dict(data))
        except PydanticValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'rules'}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"guard rules {source} are invalid: {problems}") from None
        return cls(spec, source)

    @classmethod
    def from_yaml(cls, text: str | bytes, *, source: str = "<yaml>") -> GuardRules:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"guard rules {source}: not valid YAML ({exc})") from None
        return cls.from_dict(data if data is not None else {}, source=source)

    @classmethod
    def load(
        cls, path: str | pathlib.Path, *, trusted_keys: Sequence[Ed25519PublicKey]
    ) -> GuardRules:
        """Load a rules file whose signature ``<path>.sig`` verifies under a trusted key.

        Guards decide what reaches a match, so there is no unsigned mode: no trusted keys,
        no signature, or a signature that does not verify is a :class:`ConfigError`.
        """
        p = pathlib.Path(path)
        if not trusted_keys:
            raise ConfigError(
                f"guard rules {p}: no trusted keys given; guard rules load only signed "
                "(pass the public key that signed them)"
            )
        try:
            text = p.read_bytes()
        except OSError as exc:
            raise ConfigError(f"guard rules {p}: cannot read ({exc.strerror})") from None
        rules = cls.from_yaml(text, source=str(p))
        sig = p.with_name(p.name + ".sig")
        if not sig.exists():
            raise ConfigError(
                f"guard rules {p} are unsigned ({sig.name} missing); sign them "
                "(GuardRules.sign) and ship the signature beside them"
            )
        rules.verify(sig.read_bytes(), trusted_keys, str(p))
        return rules

    def sign(self, signer: Signer) -> bytes:
        """A detached Ed25519 signature over the canonical form (write it to ``<file>.sig``)."""
        return signer.sign(DOMAIN + self.canonical)

    def verify(
        self, signature: bytes, trusted_keys: Sequence[Ed25519PublicKey], source: str = ""
    ) -> None:
        for key in trusted_keys:
            try:
                key.verify(signature, DOMAIN + self.canonical)
                return
            except InvalidSignature:
                continue
        raise ConfigError(
            f"guard rules {source or self.content_hash}: the signature does not verify under "
            f"any of the {len(trusted_keys)} trusted key(s); they were altered after signing "
            "or signed by an untrusted key"
        )

    def to_dict(self) -> dict[str, Any]:
        return self._spec.model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class GuardOutcome:
    """What the guards made of one tick: the actions and outputs to answer (replacements in
    place), and per row the name of the vetoing rule (None: the model's answer stands)."""

    actions: npt.NDArray[np.int64]
    outputs: F32
    vetoes: list[str | None]


def _is_msgpack(item: bytes) -> bool:
    b = item[0] if item else 0
    return 0x80 <= b <= 0x8F or b in (0xDE, 0xDF)


def _who_when(items: Sequence[Any], rows: npt.NDArray[np.int64]) -> list[tuple[str, float]]:
    """(champion, game time in s) of each request in ``rows``, read by the codec."""
    import pyarrow as pa

    out: list[tuple[str, float]] = [("", 0.0)] * len(rows)
    for fmt in ("json", "msgpack"):
        pick = [k for k, i in enumerate(rows) if _is_msgpack(items[i]) == (fmt == "msgpack")]
        if not pick:
            continue
        batch = pa.record_batch(
            decode_game_states([bytes(items[rows[k]]) for k in pick], format=fmt)
        )
        champs = batch.column("champion").to_pylist()
        times = batch.column("timestamp").cast(pa.int64()).to_numpy() / 1e6
        for j, k in enumerate(pick):
            out[k] = (champs[j], float(times[j]))
    return out


Fallback = Callable[[F32], npt.NDArray[Any]]


class Guards:
    """The rules at work for one model: veto, replace, count. Thread-safe for the rate state
    (one lock, taken only when a rate-limited action was answered)."""

    def __init__(
        self,
        rules: GuardRules,
        *,
        model: str = "model",
        fallback: Fallback = heuristic_probabilities,
    ) -> None:
        import threading

        self.rules = rules
        self.model = model
        self.fallback = fallback
        family = telemetry.counter(
            "serving_guard_vetoes", ("model", "rule"), "answers vetoed by an inline guard rule"
        )
        self._counters = {r.name: family.labels(model, r.name) for r in rules.rules}
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, str, str], deque[float]] = OrderedDict()

    def _clause_veto(
        self, rule: _Rule, x: F32, acts: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.bool_]:
        hit = np.ones(len(rows), bool)
        for col, op, value in rule.clauses:
            if col < 0:  # the cooldown of the slot each row's action casts
                vals = x[rows, _SLOT_COL[acts[rows]]] * _SCALE[_COL["cooldown_q"]]
                hit &= op(vals, value)
            else:
                hit &= op(x[rows, col], value)
        return hit

    def _rate_veto(
        self, rule: _Rule, items: Sequence[Any], rows: npt.NDArray[np.int64], match: str
    ) -> npt.NDArray[np.bool_]:
        rate = rule.rate
        assert rate is not None
        hit = np.zeros(len(rows), bool)
        who = _who_when(items, rows)
        with self._lock:
            for k, (champion, t) in enumerate(who):
                key = (match, champion, rule.name)
                seen = self._seen.get(key)
                if seen is None:
                    seen = self._seen[key] = deque()
                    if len(self._seen) > _MAX_KEYS:
                        self._seen.popitem(last=False)
                else:
                    self._seen.move_to_end(key)
                while seen and seen[0] <= t - rate.per_s:
                    seen.popleft()
                if len(seen) >= rate.max:
                    hit[k] = True
                else:
                    seen.append(t)
        return hit

    def apply(
        self,
        features: F32,
        outputs: F32,
        actions: npt.NDArray[np.int64],
        items: Sequence[Any],
        *,
        match: str = "",
    ) -> GuardOutcome:
        """Judge a tick: ``features`` (rows, F), the model's ``outputs`` and ``actions``, the
        request ``items`` (read only by rate limits), ``match`` (the rate-limit scope)."""
        n = len(actions)
        vetoed = np.full(n, -1, np.int64)
        for idx, rule in enumerate(self.rules.rules):
            rows = np.flatnonzero(rule.mask[actions] & (vetoed < 0))
            if not len(rows):
                continue
            if rule.rate is not None:
                hit = self._rate_veto(rule, items, rows, match)
            else:
                hit = self._clause_veto(rule, features, actions, rows)
            vetoed[rows[hit]] = idx
        bad = np.flatnonzero(vetoed >= 0)
        if not len(bad):
            return GuardOutcome(actions, outputs, [None] * n)
        acts = actions.copy()
        outs = np.array(outputs, dtype=np.float32, copy=True)
        fb = np.asarray(self.fallback(features[bad]), dtype=np.float32)
        fb_acts = fb.argmax(axis=1).astype(np.int64)
        # the fallback's own action must pass the state rules; where it does not, the safe
        # action answers (no rule covers it, so the answer given is never one a rule forbids)
        probe = acts.copy()
        probe[bad] = fb_acts
        still = np.zeros(len(bad), bool)
        for rule in self.rules.rules:
            m = rule.mask[fb_acts]
            if rule.rate is not None:
                still |= m  # a limited action is not spent on a replacement
            elif m.any():
                still[m] |= self._clause_veto(rule, features, probe, bad[m])
        fb_acts[still] = self.rules.safe_action
        fb[still] = 0.0
        fb[still, self.rules.safe_action] = 1.0
        acts[bad] = fb_acts
        outs[bad] = fb
        names = self.rules.names
        vetoes: list[str | None] = [None] * n
        for i in bad.tolist():
            vetoes[i] = names[vetoed[i]]
        for idx in np.unique(vetoed[bad]).tolist():
            self._counters[names[idx]].inc(int((vetoed == idx).sum()))
        return GuardOutcome(acts, outs, vetoes)
