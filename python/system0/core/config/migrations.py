"""Explicit schema migrations: one function per step from version N to N+1.

A configuration file states its ``schema_version``. On load, the resolved document is carried
forward one step at a time until it reaches :data:`SCHEMA_VERSION`, so an old file keeps the
meaning it had when it was written: when a default changes, the migration for that step writes
the old default into files that omitted the key, instead of letting the new one slip in.

Each step is a pure function ``dict -> dict`` registered with :func:`migration`; it receives a
deep copy and returns the document at the next version (without ``schema_version``; the runner
sets that). Steps must be total: a key they do not know is left alone for validation to report.

History
-------
1 -> 2
    Version 1 is the layout of the product's seed design: four sections (model, training,
    inference, monitoring) and per-model latency thresholds in *seconds* under
    ``monitoring.thresholds``. Version 2 keeps thresholds in milliseconds under
    ``monitoring.latency_threshold_ms`` (every other latency in the file is in ms) and adds the
    security, storage and serving sections, whose defaults apply since v1 had no such keys.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from system0.core.config.schema import SCHEMA_VERSION
from system0.errors import ConfigError, InvalidArgument

Document = dict[str, Any]
Migration = Callable[[Document], Document]

MIGRATIONS: dict[int, Migration] = {}
"""``MIGRATIONS[n]`` turns a version-``n`` document into a version-``n + 1`` one."""


def migration(from_version: int) -> Callable[[Migration], Migration]:
    """Register ``fn`` as the step from ``from_version`` to ``from_version + 1``."""

    def register(fn: Migration) -> Migration:
        if from_version in MIGRATIONS:
            raise InvalidArgument(f"a migration from schema version {from_version} already exists")
        MIGRATIONS[from_version] = fn
        return fn

    return register


def migrate(
    doc: Document,
    *,
    target: int = SCHEMA_VERSION,
    registry: dict[int, Migration] | None = None,
    where: str = "config",
) -> Document:
    """Carry ``doc`` from its ``schema_version`` to ``target``; return a new document.

    Raises :class:`ConfigError` when the version is missing, not an integer, newer than this
    release, or when a step is missing from the registry.
    """
    steps = MIGRATIONS if registry is None else registry
    if "schema_version" not in doc:
        raise ConfigError(
            f"{where}: schema_version is missing: add 'schema_version: {target}' at the top "
            "(a file must say which layout it was written for, so defaults never shift under it)"
        )
    version = doc["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise ConfigError(
            f"{where}: schema_version: got {version!r}; expected an integer from 1 to {target}"
        )
    if version > target:
        raise ConfigError(
            f"{where}: schema_version {version} is newer than this release understands "
            f"({target}): upgrade system0 to load it"
        )
    if version < 1:
        raise ConfigError(f"{where}: schema_version: got {version}; versions start at 1")
    out = copy.deepcopy(doc)
    while version < target:
        step = steps.get(version)
        if step is None:
            raise ConfigError(
                f"{where}: no migration from schema version {version} to {version + 1}; "
                "this is a bug in system0, please report it"
            )
        body = {k: v for k, v in out.items() if k != "schema_version"}
        out = step(body)
        version += 1
        out["schema_version"] = version
    return out


@migration(1)
def _v1_to_v2(doc: Document) -> Document:
    monitoring = doc.get("monitoring")
    if isinstance(monitoring, dict) and "thresholds" in monitoring:
        seconds = monitoring.pop("thresholds")
        if isinstance(seconds, dict):
            # Values that are not numbers pass through unchanged so validation names them.
            monitoring["latency_threshold_ms"] = {
                k: (v * 1000.0 if isinstance(v, int | float) and not isinstance(v, bool) else v)
                for k, v in seconds.items()
            }
        else:
            monitoring["latency_threshold_ms"] = seconds
    return doc


__all__ = ["MIGRATIONS", "Migration", "migrate", "migration"]
