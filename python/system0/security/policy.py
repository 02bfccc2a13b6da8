"""RBAC policy documents: the schema (pydantic), signing, and compilation for the enforcer.

A policy is data, loaded from YAML or a dict and validated before use::

    version: 1
    roles:
      reader:
        allow: [{resource: "dataset/**", action: read}]
      analyst:
        inherits: [reader]
        allow: [{resource: "dataset/*/aggregates", action: [read, release]}]
        deny:  [{resource: "dataset/secret/**", action: "*"}]
      project-member:
        allow: [{resource: "project/{domain}/**", action: "*"}]
      operator:
        allow: [{resource: "model/**", action: deploy}]
        devices: ["sha256:<64 hex>"]          # effective only on these attested devices
    bindings:
      - {subject: alice, role: analyst}
      - {subject: bob, role: project-member, domain: tetris}
      - {subject: carol, role: operator, devices: ["sha256:<64 hex>"]}

Resources are ``/``-separated paths. In a pattern ``*`` matches within one segment, ``**`` (a
whole segment) matches one or more segments at the end or zero or more in the middle, and
``{domain}`` stands for the domain of the check (a rule with it never matches outside a
domain). Actions match exactly, or ``*`` matches any. Deny overrides allow; nothing allowed is
denied (default deny). A role binding or a role may name device fingerprints: it then counts
only for a subject whose request carries an attested device with one of them.

Signing works like configs: an Ed25519 detached signature over the canonical form (the
validated document as JSON with sorted keys and no spaces, UTF-8). With trusted keys given,
loading refuses an unsigned or wrongly signed policy with a :class:`ConfigError`.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from system0.errors import ConfigError
from system0.security.identity import Signer

__all__ = ["CompiledRule", "Policy", "Rule"]

_NAME = r"[A-Za-z0-9_.:@-]+"
_FINGERPRINT = re.compile(r"sha256:[0-9a-f]{64}")
_SEGMENT = re.compile(r"(?:\*\*|(?:[A-Za-z0-9_.:@=+,~-]|\*|\{domain\})+)")


def _check_pattern(pattern: str) -> str:
    if not pattern:
        raise ValueError("a resource pattern must not be empty")
    for seg in pattern.split("/"):
        if not _SEGMENT.fullmatch(seg) or ("**" in seg and seg != "**"):
            raise ValueError(
                f"bad segment {seg!r} in resource pattern {pattern!r}: use letters, digits, "
                "_.:@=+,~-, '*' within a segment, '**' as a whole segment, or '{domain}'"
            )
    return pattern


def _check_fingerprints(values: list[str]) -> list[str]:
    for v in values:
        if not _FINGERPRINT.fullmatch(v):
            raise ValueError(f"device fingerprint {v!r} must look like sha256:<64 lowercase hex>")
    return values


class _RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    resource: str
    action: str | list[str]

    @field_validator("resource")
    @classmethod
    def _resource(cls, v: str) -> str:
        return _check_pattern(v)

    @field_validator("action")
    @classmethod
    def _action(cls, v: str | list[str]) -> str | list[str]:
        for a in [v] if isinstance(v, str) else v:
            if a != "*" and not re.fullmatch(_NAME, a):
                raise ValueError(f"action {a!r} must be '*' or a name of letters, digits, _.:@-")
        if isinstance(v, list) and not v:
            raise ValueError("action list must not be empty")
        return v


class _RoleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    inherits: list[str] = Field(default_factory=list)
    allow: list[_RuleSpec] = Field(default_factory=list)
    deny: list[_RuleSpec] = Field(default_factory=list)
    devices: list[str] = Field(default_factory=list)

    @field_validator("devices")
    @classmethod
    def _devices(cls, v: list[str]) -> list[str]:
        return _check_fingerprints(v)


class _BindingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    subject: str = Field(min_length=1)
    role: str
    domain: str | None = Field(default=None, pattern=_NAME)
    devices: list[str] = Field(default_factory=list)

    @field_validator("devices")
    @classmethod
    def _devices(cls, v: list[str]) -> list[str]:
        return _check_fingerprints(v)


class _PolicySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: Literal[1] = 1
    roles: dict[str, _RoleSpec]
    bindings: list[_BindingSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> _PolicySpec:
        for name, role in self.roles.items():
            if not re.fullmatch(_NAME, name):
                raise ValueError(f"role name {name!r} must be letters, digits, _.:@-")
            for parent in role.inherits:
                if parent not in self.roles:
                    raise ValueError(f"role {name!r} inherits unknown role {parent!r}")
        for b in self.bindings:
            if b.role not in self.roles:
                raise ValueError(f"binding of {b.subject!r} names unknown role {b.role!r}")
        # Inheritance must be a DAG: a cycle would make every role in it mean "all of them".
        state: dict[str, int] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == 1:
                raise ValueError(f"role inheritance cycle: {' -> '.join([*path, name])}")
            if state.get(name) == 2:
                return
            state[name] = 1
            for parent in self.roles[name].inherits:
                visit(parent, [*path, name])
            state[name] = 2

        for name in self.roles:
            visit(name, [])
        return self


@dataclass(frozen=True)
class Rule:
    """One policy rule as written: which role, allow or deny, which pattern and actions."""

    role: str
    effect: Literal["allow", "deny"]
    resource: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.effect} {self.resource} {','.join(self.actions)} (role {self.role})"


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    match: Any  # re.Pattern.fullmatch, bound
    any_action: bool
    actions: frozenset[str]
    first_segment: str | None  # the pattern's first segment when literal, for indexing


def _pattern_regex(pattern: str, domain: str | None) -> str | None:
    if "{domain}" in pattern:
        if domain is None:
            return None
        pattern = pattern.replace("{domain}", domain)
    segs = pattern.split("/")
    out: list[str] = []
    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        if seg == "**":
            out.append(".+" if last else "(?:[^/]+/)*")
            continue
        rx = "[^/]*".join(re.escape(part) for part in seg.split("*"))
        out.append(rx if last else rx + "/")
    return "".join(out)


def compile_rule(rule: Rule, domain: str | None) -> CompiledRule | None:
    rx = _pattern_regex(rule.resource, domain)
    if rx is None:
        return None
    first = rule.resource.split("/", 1)[0]
    if "{domain}" in first and domain is not None:
        first = first.replace("{domain}", domain)
    return CompiledRule(
        rule,
        re.compile(rx).fullmatch,
        "*" in rule.actions,
        frozenset(rule.actions),
        None if "*" in first else first,
    )


@dataclass(frozen=True)
class Binding:
    subject: str
    role: str
    domain: str | None
    devices: frozenset[str]


class Policy:
    """A validated, immutable RBAC policy.

    Build with :meth:`from_dict`, :meth:`from_yaml` or :meth:`load`.
    """

    def __init__(self, spec: _PolicySpec) -> None:
        self._spec = spec
        self.roles: frozenset[str] = frozenset(spec.roles)
        # Transitive closure of inheritance, computed once: role -> itself and every ancestor.
        closure: dict[str, frozenset[str]] = {}

        def close(name: str) -> frozenset[str]:
            if name not in closure:
                acc = {name}
                for parent in spec.roles[name].inherits:
                    acc |= close(parent)
                closure[name] = frozenset(acc)
            return closure[name]

        for name in spec.roles:
            close(name)
        self.closure: Mapping[str, frozenset[str]] = closure
        self.role_devices: Mapping[str, frozenset[str]] = {
            n: frozenset(r.devices) for n, r in spec.roles.items() if r.devices
        }
        rules: dict[str, tuple[Rule, ...]] = {}
        for name, role in spec.roles.items():
            rs: list[Rule] = []
            for effect, specs in (("deny", role.deny), ("allow", role.allow)):
                for s in specs:
                    acts = (s.action,) if isinstance(s.action, str) else tuple(s.action)
                    rs.append(Rule(name, effect, s.resource, acts))  # type: ignore[arg-type]
            rules[name] = tuple(rs)
        self.rules: Mapping[str, tuple[Rule, ...]] = rules
        bindings: dict[str, list[Binding]] = {}
        for b in spec.bindings:
            bindings.setdefault(b.subject, []).append(
                Binding(b.subject, b.role, b.domain, frozenset(b.devices))
            )
        self.bindings: Mapping[str, tuple[Binding, ...]] = {
            k: tuple(v) for k, v in bindings.items()
        }
        self.canonical = json.dumps(
            spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
        ).encode("utf-8")
        self.content_hash = "sha256:" + hashlib.sha256(self.canonical).hexdigest()

    def __repr__(self) -> str:
        n_bind = len(self._spec.bindings)
        return f"Policy(roles={len(self.roles)}, bindings={n_bind}, {self.content_hash[:19]})"

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        trusted_keys: Sequence[Ed25519PublicKey] = (),
        signature: bytes | None = None,
        source: str = "<dict>",
    ) -> Policy:
        if not isinstance(data, Mapping):
            raise ConfigError(f"policy {source}: expected a mapping at the top level")
        try:
            spec = _PolicySpec.model_validate(dict(data))
        except PydanticValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'policy'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ConfigError(f"policy {source} is invalid: {problems}") from None
        policy = cls(spec)
        if trusted_keys:
            policy.verify(signature, trusted_keys, source)
        return policy

    @classmethod
    def from_yaml(
        cls,
        text: str | bytes,
        *,
        trusted_keys: Sequence[Ed25519PublicKey] = (),
        signature: bytes | None = None,
        source: str = "<yaml>",
    ) -> Policy:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"policy {source}: not valid YAML ({exc})") from None
        return cls.from_dict(
            data if data is not None else {},
            trusted_keys=trusted_keys,
            signature=signature,
            source=source,
        )

    @classmethod
    def load(
        cls, path: str | pathlib.Path, *, trusted_keys: Sequence[Ed25519PublicKey] = ()
    ) -> Policy:
        """Load a YAML policy file.

        With ``trusted_keys``, its detached signature is read from ``<path>.sig`` (the raw 64
        bytes) and must verify under one of them.
        """
        p = pathlib.Path(path)
        try:
            text = p.read_bytes()
        except OSError as exc:
            raise ConfigError(f"policy {p}: cannot read ({exc.strerror})") from None
        sig_path = p.with_name(p.name + ".sig")
        signature = sig_path.read_bytes() if trusted_keys and sig_path.exists() else None
        return cls.from_yaml(text, trusted_keys=trusted_keys, signature=signature, source=str(p))

    def sign(self, signer: Signer) -> bytes:
        """A detached Ed25519 signature over :attr:`canonical`."""
        return signer.sign(self.canonical)

    def verify(
        self, signature: bytes | None, trusted_keys: Sequence[Ed25519PublicKey], source: str = ""
    ) -> None:
        where = f"policy {source or self.content_hash}"
        if signature is None:
            raise ConfigError(
                f"{where} is unsigned but trusted keys are configured; sign it "
                "(Policy.sign) and ship the signature beside it"
            )
        for key in trusted_keys:
            try:
                key.verify(signature, self.canonical)
                return
            except InvalidSignature:
                continue
        raise ConfigError(
            f"{where}: the signature does not verify under any of the {len(trusted_keys)} "
            "trusted key(s); it was altered after signing or signed by an untrusted key"
        )

    def to_dict(self) -> dict[str, Any]:
        return self._spec.model_dump(mode="json")
