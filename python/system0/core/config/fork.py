"""Derived configurations: experiment forks and the emergency override.

Both start from a frozen parent, apply dotted-path overrides to a copy of its resolved values,
validate the result as a whole and record the lineage (parent content hash, name, overrides as
validated values) inside the new configuration, so its hash covers where it came from. The
parent is never touched.
"""

from __future__ import annotations

import copy
import difflib
import json
import logging
import re
import time
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pydantic

from system0.core.config.yaml_source import parse_scalar, split_path
from system0.errors import ConfigError
from system0.security.audit_sink import AuditSink

if TYPE_CHECKING:
    from system0.core.config.aiconfig import AIConfig

logger = logging.getLogger("system0.config")

_EXPERIMENT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"


def parse_overrides(overrides: Mapping[str, Any] | Iterable[str]) -> list[tuple[str, Any]]:
    """Overrides as ``(path, value)`` pairs, sorted by path.

    A mapping gives typed values as they are; ``"a.b=3"`` strings (the command-line form)
    read the value as a YAML scalar (``3`` is an int, ``true`` a bool, ``[1, 2]`` a list).
    """
    if isinstance(overrides, str):
        raise ConfigError("overrides: pass a list of 'path=value' strings or a mapping, not a str")
    pairs: list[tuple[str, Any]] = []
    if isinstance(overrides, Mapping):
        pairs = [(str(k).strip(), v) for k, v in overrides.items()]
    else:
        for item in overrides:
            key, eq, text = str(item).partition("=")
            if not eq or not key.strip():
                raise ConfigError(
                    f"override {item!r}: expected 'path=value', e.g. inference.max_batch=64"
                )
            pairs.append((key.strip(), parse_scalar(text.strip())))
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ConfigError(f"override {key}: given more than once; keep one")
        seen.add(key)
        if key.split(".")[0].split("[")[0] in ("schema_version", "lineage"):
            raise ConfigError(f"override {key}: cannot be overridden (it is set by system0)")
    return sorted(pairs)


def _apply(doc: dict[str, Any], path: str, value: Any) -> None:
    try:
        parts = split_path(path)
    except ValueError as e:
        raise ConfigError(f"override {path}: {e}") from None
    node: Any = doc
    for i, part in enumerate(parts[:-1]):
        if isinstance(part, int) or not isinstance(node, dict) or part not in node:
            here = ".".join(str(p) for p in parts[: i + 1])
            near = difflib.get_close_matches(
                str(part), list(node) if isinstance(node, dict) else [], n=1
            )
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise ConfigError(f"override {path}: '{here}' is not a section of the config{hint}")
        node = node[part]
    last = parts[-1]
    if isinstance(last, int) or not isinstance(node, dict):
        raise ConfigError(f"override {path}: only keys of sections can be overridden")
    if isinstance(node.get(last), dict) and isinstance(value, Mapping):
        node[last] = _merged(node[last], value)
    else:
        node[last] = copy.deepcopy(value)


def _merged(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(out.get(k), dict) and isinstance(v, Mapping):
            out[k] = _merged(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _derive(
    base: AIConfig, pairs: list[tuple[str, Any]], lineage: dict[str, Any], where: str
) -> AIConfig:
    doc = base.to_dict()
    doc.pop("lineage", None)
    for path, value in pairs:
        _apply(doc, path, value)
    doc["lineage"] = lineage
    return type(base).from_document(doc, None, where)


def fork_for_experiment(
    config: AIConfig, name: str, overrides: Mapping[str, Any] | Iterable[str] = ()
) -> AIConfig:
    """A new frozen config: ``config`` with ``overrides`` applied and its lineage recorded.

    ``config`` is not changed. The lineage holds the parent's content hash, the experiment
    ``name`` and the overrides (as validated values), so the fork is reproducible from its
    parent and its hash differs from the parent's.
    """
    if not isinstance(name, str) or not re.fullmatch(_EXPERIMENT_NAME, name):
        raise ConfigError(
            f"experiment name {name!r}: use 1 to 128 letters, digits, '_', '.', ':' or '-', "
            "starting with a letter or digit"
        )
    pairs = parse_overrides(overrides)
    where = f"experiment '{name}'"
    draft = _derive(config, pairs, _lineage("experiment", name, config, pairs), where)
    # Record each override as the value validation produced ("64" given -> 64 recorded).
    recorded = [(p, draft.get(p)) for p, _ in pairs]
    return _derive(config, pairs, _lineage("experiment", name, config, recorded), where)


def _lineage(
    kind: str, name: str, parent: AIConfig, pairs: list[tuple[str, Any]], **extra: str
) -> dict[str, Any]:
    return {
        "kind": kind,
        "name": name,
        "parent": parent.content_hash,
        "overrides": [{"path": p, "value": _plain(v)} for p, v in pairs],
        **extra,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping | MappingProxyType):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# -- the emergency playbook ------------------------------------------------------------------


_default_sink: AuditSink | None = None


def set_audit_sink(sink: AuditSink | None) -> AuditSink | None:
    """Make ``sink`` where :func:`emergency_override` records by default; return the old one.

    Whoever opens the process's audit ledger calls this once, so every emergency override is
    recorded in it without each caller passing ``audit=``. ``None`` restores the default
    (a WARNING on the ``system0.config`` logger).
    """
    global _default_sink
    old, _default_sink = _default_sink, sink
    return old


def emergency_override(
    config: AIConfig,
    path: str,
    value: Any,
    *,
    reason: str,
    actor: str,
    audit: AuditSink | None = None,
) -> AIConfig:
    """The one sanctioned change at run time: a new config with ``path`` set to ``value``.

    ``reason`` and ``actor`` are required. The override is recorded before it is returned: in
    ``audit`` (``audit.append(record)``) when given, else in the sink set with
    :func:`set_audit_sink`, else as a WARNING on the ``system0.config`` logger. When the sink
    fails, no override is returned.
    """
    if not str(reason).strip() or not str(actor).strip():
        raise ConfigError(
            f"emergency override of {path}: reason and actor are both required, so the "
            "override can be attributed and reviewed"
        )
    old = _plain(config.get(path)) if _exists(config, path) else None
    pairs = parse_overrides({path: value})
    lineage = _lineage("emergency", "emergency-override", config, pairs, reason=reason, actor=actor)
    draft = _derive(config, pairs, lineage, f"emergency override of {path}")
    lineage["overrides"] = [{"path": path, "value": _plain(draft.get(path))}]
    new = _derive(config, pairs, lineage, f"emergency override of {path}")
    record = {
        "event": "config.emergency_override",
        "path": path,
        "old": old,
        "new": _plain(new.get(path)),
        "reason": reason,
        "actor": actor,
        "parent_hash": config.content_hash,
        "config_hash": new.content_hash,
        "unix_ns": time.time_ns(),
    }
    if audit is None:
        audit = _default_sink
    if audit is None:
        logger.warning("emergency config override: %s", json.dumps(record, sort_keys=True))
    else:
        try:
            audit.append(record)
        except Exception as e:
            raise ConfigError(
                f"emergency override of {path} was not applied: recording it in the audit "
                f"sink failed ({type(e).__name__}: {e}); fix the sink and retry"
            ) from e
    return new


def _exists(config: AIConfig, path: str) -> bool:
    try:
        config.get(path)
    except ConfigError:
        return False
    return True


__all__ = [
    "emergency_override",
    "fork_for_experiment",
    "parse_overrides",
    "set_audit_sink",
]
