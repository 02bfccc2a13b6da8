"""Access control: decide whether a subject may perform an action on a resource, and audit it.

:class:`Enforcer` applies a :class:`~system0.security.policy.Policy` (RBAC with role
inheritance, domains, deny-overrides-allow, default deny, roles tied to hardware device
identity). ``check`` returns a :class:`Decision`; ``require`` raises
:class:`~system0.errors.AccessDenied`; ``@requires(resource, action)`` guards a function.

Fast by construction: patterns are compiled to regular expressions once per (role set,
domain), and decisions are cached per (subject, resource, action, domain). A policy is
immutable, so the cache is exact; :meth:`Enforcer.set_policy` swaps the policy and clears it.
Every decision, allow and deny, cached or not, goes to the audit sink when one is set.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from system0.errors import AccessDenied, ValidationError
from system0.security.audit_sink import AuditSink
from system0.security.identity import AttestedDevice, DeviceIdentity, Subject
from system0.security.policy import CompiledRule, Policy, Rule, compile_rule

__all__ = [
    "AttestedDevice",
    "Decision",
    "DeviceIdentity",
    "Enforcer",
    "Policy",
    "Rule",
    "Subject",
    "acting_as",
    "require",
    "requires",
]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Decision:
    """The answer to one check: ``allowed``, why, and the rule that decided (if any)."""

    allowed: bool
    subject: str
    resource: str
    action: str
    domain: str | None
    reason: str
    rule: Rule | None = None

    def __bool__(self) -> bool:
        return self.allowed

    def explain(self) -> str:
        where = f" in domain {self.domain!r}" if self.domain is not None else ""
        verdict = "may" if self.allowed else "may not"
        return f"{self.subject!r} {verdict} {self.action} {self.resource!r}{where}: {self.reason}"


_MEMO_LIMIT = 4096  # role resolutions and rule tables kept per policy (cleared when full)


class _Table:
    """The compiled rules of one role set in one domain, indexed for a short scan.

    Rules are bucketed by their first path segment when it is literal (``svc3/**`` goes under
    ``svc3``); the rest (``*``/``**`` first) are scanned for every resource. The candidate
    list per (first segment, action) is memoized, denies first.
    """

    __slots__ = ("by_segment", "lock", "memo", "wild")

    def __init__(self, rules: list[CompiledRule]) -> None:
        self.by_segment: dict[str, list[CompiledRule]] = {}
        self.wild: list[CompiledRule] = []
        for cr in rules:
            first = cr.first_segment
            if first is None:
                self.wild.append(cr)
            else:
                self.by_segment.setdefault(first, []).append(cr)
        self.memo: dict[tuple[str, str], tuple[CompiledRule, ...]] = {}
        self.lock = threading.Lock()

    def candidates(self, resource: str, action: str) -> tuple[CompiledRule, ...]:
        seg = resource.partition("/")[0]
        key = (seg, action)
        found = self.memo.get(key)
        if found is None:
            pool = [*self.by_segment.get(seg, ()), *self.wild]
            found = tuple(
                sorted(
                    (cr for cr in pool if cr.any_action or action in cr.actions),
                    key=lambda cr: cr.rule.effect != "deny",
                )
            )
            with self.lock:
                if len(self.memo) >= _MEMO_LIMIT:
                    self.memo.clear()
                self.memo[key] = found
        return found


class _State:
    """One policy with its caches; replaced whole by set_policy, never mutated across policies."""

    __slots__ = ("cache", "policy", "roles", "tables")

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.cache: dict[tuple[Any, ...], Decision] = {}
        self.roles: dict[tuple[Any, ...], tuple[frozenset[str], tuple[str, ...]]] = {}
        self.tables: dict[tuple[frozenset[str], str | None], _Table] = {}


class Enforcer:
    """Applies a policy. Thread-safe; ``cache_size`` bounds the decision cache (0 disables it).

    ``hits``/``misses`` count cache use (statistics: approximate under concurrent checks).
    """

    def __init__(
        self,
        policy: Policy,
        *,
        audit: AuditSink | None = None,
        cache_size: int = 65_536,
    ) -> None:
        if cache_size < 0:
            raise ValidationError(f"Enforcer: cache_size must be >= 0, got {cache_size}")
        self._state = _State(policy)
        self._audit = audit
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def policy(self) -> Policy:
        return self._state.policy

    def set_policy(self, policy: Policy) -> None:
        """Swap the policy atomically; cached decisions of the old one are dropped."""
        self._state = _State(policy)

    def check(
        self, subject: Subject, resource: str, action: str, domain: str | None = None
    ) -> Decision:
        # One read of the state: a concurrent set_policy can never mix the old policy's
        # decisions into the new policy's cache.
        state = self._state
        key = (subject.cache_key, resource, action, domain)
        decision = state.cache.get(key)
        if decision is None:
            self.misses += 1
            decision = self._decide(state, subject, resource, action, domain)
            if self._cache_size:
                with self._lock:
                    cache = state.cache
                    if len(cache) >= self._cache_size:
                        del cache[next(iter(cache))]  # oldest first: cheap, and good enough
                    cache[key] = decision
        else:
            self.hits += 1
        if self._audit is not None:
            self._record(state.policy, subject, decision)
        return decision

    def require(
        self, subject: Subject, resource: str, action: str, domain: str | None = None
    ) -> Decision:
        """Like :meth:`check`, but a denial raises :class:`AccessDenied` naming who, what, why."""
        decision = self.check(subject, resource, action, domain)
        if not decision.allowed:
            raise AccessDenied(f"access denied: {decision.explain()}")
        return decision

    def requires(
        self, resource: str, action: str, *, domain: str | None = None
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """:func:`requires` bound to this enforcer."""
        return requires(resource, action, domain=domain, enforcer=self)

    # -- the decision itself --------------------------------------------------------------

    def _decide(
        self, state: _State, subject: Subject, resource: str, action: str, domain: str | None
    ) -> Decision:
        def deny(reason: str, rule: Rule | None = None) -> Decision:
            return Decision(False, subject.id, resource, action, domain, reason, rule)

        if not isinstance(resource, str) or not isinstance(action, str):
            raise ValidationError(
                f"check: resource and action must be strings, got {resource!r}, {action!r}"
            )
        if subject.device_binding is not None and subject.device is None:
            return deny(
                f"its token is bound to device {subject.device_binding}, which this request "
                "has not attested (DeviceIdentity.attest, then Subject.with_device)"
            )
        fp = subject.device.fingerprint if subject.device is not None else None
        roles, blocked = self._roles(state, subject, domain, fp)
        allow: CompiledRule | None = None
        for cr in self._table(state, roles, domain).candidates(resource, action):
            # Denies come first, so the first deny that matches decides: deny overrides allow.
            if cr.match(resource):
                if cr.rule.effect == "deny":
                    return deny(f"denied by rule '{cr.rule}'", cr.rule)
                allow = cr
                break
        if allow is not None:
            return Decision(
                True,
                subject.id,
                resource,
                action,
                domain,
                f"allowed by rule '{allow.rule}'",
                allow.rule,
            )
        if blocked:
            return deny(
                f"no rule grants it; role(s) {', '.join(blocked)} would count only on an "
                f"attested device listed in the policy (request device: {fp or 'none'})"
            )
        if not roles:
            return deny("the subject holds no role here (default deny)")
        return deny(f"no rule of role(s) {', '.join(sorted(roles))} grants it (default deny)")

    def _roles(
        self, state: _State, subject: Subject, domain: str | None, fp: str | None
    ) -> tuple[frozenset[str], tuple[str, ...]]:
        """The subject's effective roles here (claims, bindings, inheritance, device filter)."""
        key = (subject.cache_key, domain)
        hit = state.roles.get(key)
        if hit is not None:
            return hit
        policy = state.policy
        direct = set(subject.roles_in(domain))
        for b in policy.bindings.get(subject.id, ()):
            if b.domain is not None and b.domain != domain:
                continue
            if b.devices and fp not in b.devices:
                continue
            direct.add(b.role)
        roles: set[str] = set()
        for r in direct:
            roles |= policy.closure.get(r, frozenset())  # unknown claimed roles grant nothing
        blocked = tuple(
            sorted(
                r for r in roles if r in policy.role_devices and fp not in policy.role_devices[r]
            )
        )
        roles.difference_update(blocked)
        out = (frozenset(roles), blocked)
        with self._lock:
            if len(state.roles) >= _MEMO_LIMIT:
                state.roles.clear()
            state.roles[key] = out
        return out

    def _table(self, state: _State, roles: frozenset[str], domain: str | None) -> _Table:
        key = (roles, domain)
        table = state.tables.get(key)
        if table is None:
            rules: list[CompiledRule] = []
            for role in sorted(roles):
                for rule in state.policy.rules[role]:
                    cr = compile_rule(rule, domain)
                    if cr is not None:
                        rules.append(cr)
            table = _Table(rules)
            with self._lock:
                if len(state.tables) >= _MEMO_LIMIT:
                    state.tables.clear()
                state.tables[key] = table
        return table

    def _record(self, policy: Policy, subject: Subject, d: Decision) -> None:
        assert self._audit is not None
        self._audit.log_data_access(
            subject.id,
            d.resource,
            d.action,
            "allow" if d.allowed else "deny",
            {
                "reason": d.reason,
                "rule": str(d.rule) if d.rule is not None else None,
                "domain": d.domain,
                "device": subject.device.fingerprint if subject.device is not None else None,
                "policy": policy.content_hash,
            },
        )


# -- the ambient subject and enforcer for @requires / require -----------------------------

_subject: ContextVar[Subject | None] = ContextVar("system0_subject", default=None)
_enforcer: ContextVar[Enforcer | None] = ContextVar("system0_enforcer", default=None)


@contextmanager
def acting_as(subject: Subject, enforcer: Enforcer | None = None) -> Iterator[Subject]:
    """Run a block as ``subject`` (and under ``enforcer``): what ``@requires`` checks against.

    Context variables, so it follows threads' and asyncio tasks' own contexts.
    """
    t1 = _subject.set(subject)
    t2 = _enforcer.set(enforcer) if enforcer is not None else None
    try:
        yield subject
    finally:
        if t2 is not None:
            _enforcer.reset(t2)
        _subject.reset(t1)


def require(
    resource: str,
    action: str,
    *,
    domain: str | None = None,
    subject: Subject | None = None,
    enforcer: Enforcer | None = None,
) -> Decision:
    """Check against the ambient subject/enforcer (see :func:`acting_as`); deny raises."""
    subj = subject if subject is not None else _subject.get()
    enf = enforcer if enforcer is not None else _enforcer.get()
    if enf is None:
        raise AccessDenied(
            f"access denied: no enforcer in scope to check {action} {resource!r}; pass "
            "enforcer= or run inside acting_as(subject, enforcer)"
        )
    if subj is None:
        raise AccessDenied(
            f"access denied: no subject in scope for {action} {resource!r}; run inside "
            "acting_as(subject) or pass subject="
        )
    return enf.require(subj, resource, action, domain)


def requires(
    resource: str, action: str, *, domain: str | None = None, enforcer: Enforcer | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: the call runs only if the ambient subject may ``action`` the ``resource``.

    ``resource`` and ``domain`` may name the function's arguments in braces, filled from each
    call: ``@requires("dataset/{name}", "read")``. A ``subject`` keyword argument of the call,
    if the function has one, takes precedence over the ambient subject. Works on coroutine
    functions too (checked when the coroutine starts).
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        sig = inspect.signature(fn)
        templated = "{" in resource or (domain is not None and "{" in domain)

        takes_subject = "subject" in sig.parameters

        def target(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str | None, Any]:
            if not templated and not takes_subject:
                return resource, domain, None
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError as exc:
                raise ValidationError(f"{fn.__qualname__}: {exc}") from None
            bound.apply_defaults()
            values = bound.arguments
            subj = values.get("subject") if takes_subject else None
            if subj is not None and not isinstance(subj, Subject):
                raise ValidationError(
                    f"{fn.__qualname__}: 'subject' must be a Subject, got {type(subj).__name__}"
                )
            if not templated:
                return resource, domain, subj
            try:
                res = resource.format(**values)
                dom = domain.format(**values) if domain is not None else None
            except (KeyError, IndexError) as exc:
                raise ValidationError(
                    f"@requires on {fn.__qualname__}: {resource!r} names {exc}, which is not "
                    "a parameter of the function"
                ) from None
            if "/" in (dom or "") or ".." in res.split("/"):
                raise AccessDenied(f"access denied: suspicious resource {res!r} / domain {dom!r}")
            return res, dom, subj

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                res, dom, subj = target(args, kwargs)
                require(res, action, domain=dom, subject=subj, enforcer=enforcer)
                return await fn(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            res, dom, subj = target(args, kwargs)
            require(res, action, domain=dom, subject=subj, enforcer=enforcer)
            return fn(*args, **kwargs)

        return wrapper

    return decorate
