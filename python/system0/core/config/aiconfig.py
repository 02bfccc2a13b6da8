"""Configuration: one hermetic source of truth, content-hashed, signed, diffable, forkable.

An :class:`AIConfig` is a frozen pydantic model (sections in ``config.schema``). It comes from
a YAML file through :func:`load_from_yaml` (safe parsing, ``${env:...}``/``${ref:...}``
interpolation, schema migration, validation and, when trusted keys are configured, signature
verification) or from code. Its identity is :attr:`AIConfig.content_hash`: the sha256 of its
canonical form, the canonical JSON (RFC 8785) of the *resolved* values with every default
filled in (sorted keys, no whitespace, UTF-8), so the same file read with the same environment
has the same hash on every machine, and two files that mean the same thing share it.

Nothing changes a configuration in place: assignment raises :class:`ConfigError`. A different
configuration is a new object with its ``lineage``: :func:`fork_for_experiment` for an
experiment, :func:`emergency_override` for the emergency playbook (which is also recorded in an
audit sink). :func:`diff` compares two of them.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pydantic
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import Field, field_validator

from system0.core.config import signing
from system0.core.config.canonical import canonical_json
from system0.core.config.diff import ConfigDiff, diff
from system0.core.config.fork import (
    fork_for_experiment,
)
from system0.core.config.migrations import migrate
from system0.core.config.schema import (
    SCHEMA_VERSION,
    InferenceConfig,
    Lineage,
    ModelConfig,
    MonitoringConfig,
    Section,
    SecurityConfig,
    ServingConfig,
    StorageConfig,
    TrainingConfig,
)
from system0.core.config.yaml_source import (
    Source,
    interpolate,
    join_path,
    parse,
    split_path,
)
from system0.errors import ConfigError


class AIConfig(Section):
    """The whole configuration of a system0 deployment. Frozen; see the module docs."""

    schema_version: int = Field(default=SCHEMA_VERSION, ge=SCHEMA_VERSION, le=SCHEMA_VERSION)
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    inference: InferenceConfig = InferenceConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    security: SecurityConfig = SecurityConfig()
    storage: StorageConfig = StorageConfig()
    serving: ServingConfig = ServingConfig()
    lineage: Lineage | None = None

    @field_validator("schema_version", mode="before")
    @classmethod
    def _current_version(cls, v: Any) -> Any:
        if v != SCHEMA_VERSION:
            raise ValueError(
                f"schema version {v!r} is not the current one ({SCHEMA_VERSION}); load older "
                "documents through load_from_yaml or validate_config, which migrate them"
            )
        return v

    # -- identity --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The resolved values as plain JSON data (what is hashed, signed and diffed)."""
        return self.model_dump(mode="json")

    def canonical_json(self) -> bytes:
        """The canonical form: what :attr:`content_hash` hashes and signatures cover."""
        return canonical_json(self.to_dict())

    @property
    def content_hash(self) -> str:
        """``"sha256:<hex>"`` of :meth:`canonical_json`: this configuration's id."""
        return signing.content_hash(self.canonical_json())

    def get(self, path: str) -> Any:
        """The value at dotted ``path`` (``"inference.max_batch"``)."""
        node: Any = self
        try:
            for part in split_path(path):
                if isinstance(part, int):
                    node = node[part]
                elif isinstance(node, Mapping):
                    node = node[part]
                elif isinstance(node, pydantic.BaseModel) and part in type(node).model_fields:
                    node = getattr(node, part)
                else:
                    raise KeyError(part)
        except (KeyError, IndexError, TypeError, ValueError):
            raise ConfigError(f"{path}: no such key in the configuration") from None
        return node

    def to_yaml(self) -> str:
        """A complete YAML document that loads back to this configuration (same hash)."""
        header = f"# system0 configuration {self.content_hash}\n"
        return header + yaml.safe_dump(_escape(self.to_dict()), sort_keys=True, allow_unicode=True)

    # -- the public verbs, also as module functions ----------------------------------------

    @classmethod
    def load_from_yaml(
        cls,
        path: str | os.PathLike[str],
        *,
        env: Mapping[str, str] | None = None,
        trusted_keys: Iterable[signing.TrustedKey] | None = None,
        require_signature: bool = False,
    ) -> AIConfig:
        """See :func:`load_from_yaml`."""
        return load_from_yaml(
            path, env=env, trusted_keys=trusted_keys, require_signature=require_signature
        )

    @classmethod
    def validate_config(cls, data: Mapping[str, Any] | AIConfig) -> AIConfig:
        """See :func:`validate_config`."""
        return validate_config(data)

    @classmethod
    def from_document(
        cls, doc: Mapping[str, Any], src: Source | None = None, where: str = "config"
    ) -> AIConfig:
        """Validate a resolved, current-version document, or raise one :class:`ConfigError`
        listing every problem (with ``file:line:column`` when ``src`` marks the document).

        A classmethod so that ``fork`` derives a configuration from its parent's class
        without importing this module (which imports ``fork``).
        """
        try:
            return cls.model_validate(doc)
        except pydantic.ValidationError as e:
            problems = [_problem(err, src, where) for err in e.errors()]
            n = len(problems)
            head = f"{where}: invalid configuration ({n} problem{'s' if n != 1 else ''}):"
            raise ConfigError("\n  ".join([head, *problems])) from None

    def fork_for_experiment(
        self, name: str, overrides: Mapping[str, Any] | Iterable[str] = ()
    ) -> AIConfig:
        """See :func:`fork_for_experiment`."""
        return fork_for_experiment(self, name, overrides)

    def diff(self, other: AIConfig) -> ConfigDiff:
        """See :func:`diff`."""
        return diff(self, other)


def _escape(value: Any) -> Any:
    # A resolved string that contains '${' must not be interpolated again when reloaded.
    if isinstance(value, str):
        return value.replace("${", "$${")
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape(v) for v in value]
    return value


# -- loading and validation ------------------------------------------------------------------


def load_from_yaml(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    trusted_keys: Iterable[signing.TrustedKey] | None = None,
    require_signature: bool = False,
) -> AIConfig:
    """Load, resolve, migrate and validate the YAML configuration at ``path``.

    ``env`` is the environment ``${env:...}`` reads (default ``os.environ``). Trusted keys are
    ``trusted_keys`` when given, else those named by ``SYSTEM0_CONFIG_TRUSTED_KEYS``; when any
    are configured (or ``require_signature`` is set) the detached signature ``<path>.sig`` must
    be a valid signature of the resolved configuration by one of them. Every failure is a
    :class:`ConfigError` naming the file (and line and column where there is one).
    """
    config = _load_unverified(path, env)
    trust = signing.trusted_keys(trusted_keys)
    if trust or require_signature:
        check_signature(path, config, trust)
    return config


def load_from_text(
    text: str, *, file: str = "<string>", env: Mapping[str, str] | None = None
) -> AIConfig:
    """Like :func:`load_from_yaml` for YAML already in memory (no signature check)."""
    src = parse(text, file)
    resolved = interpolate(src, os.environ if env is None else env, _defaults())
    migrated = migrate(resolved, where=src.where("schema_version"))
    return validate_document(migrated, src, file)


def _load_unverified(path: str | os.PathLike[str], env: Mapping[str, str] | None) -> AIConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}): {e.reason}") from None
    return load_from_text(text, file=str(path), env=env)


def check_signature(
    path: str | os.PathLike[str],
    config: AIConfig,
    trust: Mapping[str, Ed25519PublicKey],
    signature: str | os.PathLike[str] | None = None,
) -> str:
    """Verify the detached signature of ``config`` loaded from ``path``; return its key id."""
    sig_path = Path(signature) if signature is not None else signing.signature_path(path)
    if not trust:
        raise ConfigError(
            f"{path}: a signature is required but no trusted keys are configured; pass "
            f"trusted keys or set {signing.TRUSTED_KEYS_ENV}"
        )
    try:
        text = sig_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: unsigned: no signature file {sig_path}; {len(trust)} trusted key(s) are "
            f"configured, so unsigned configs are refused; sign it with "
            f"'system0 config sign {path} --key <private key>'"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read signature file {sig_path}: {e}") from None
    sig = signing.Signature.from_json(text, str(sig_path))
    return signing.verify(config.canonical_json(), sig, trust, str(path))


def sign_file(
    path: str | os.PathLike[str],
    private_key: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    out: str | os.PathLike[str] | None = None,
) -> tuple[Path, signing.Signature]:
    """Sign the resolved configuration at ``path``; write ``<path>.sig`` (or ``out``)."""
    config = _load_unverified(path, env)
    key = signing.load_private_key(private_key)
    sig = signing.sign(config.canonical_json(), config.schema_version, key)
    sig_path = Path(out) if out is not None else signing.signature_path(path)
    sig_path.write_text(sig.to_json(), encoding="utf-8")
    return sig_path, sig


def verify_file(
    path: str | os.PathLike[str],
    *,
    trusted_keys: Iterable[signing.TrustedKey] | None = None,
    env: Mapping[str, str] | None = None,
    signature: str | os.PathLike[str] | None = None,
) -> tuple[AIConfig, str]:
    """Load ``path`` and require a valid signature; return the config and the signer's key id."""
    config = _load_unverified(path, env)
    key = check_signature(path, config, signing.trusted_keys(trusted_keys), signature)
    return config, key


def validate_config(data: Mapping[str, Any] | AIConfig, *, where: str = "config") -> AIConfig:
    """Validate resolved values into an :class:`AIConfig`, or raise one :class:`ConfigError`
    listing every problem: its dotted path, the value, what was expected and, for an unknown
    key, the nearest valid name. A ``schema_version`` older than the current one is migrated.
    """
    if isinstance(data, AIConfig):
        data = data.to_dict()
    doc = dict(data)
    if "schema_version" in doc:
        doc = migrate(doc, where=where)
    return validate_document(doc, None, where)


def validate_document(doc: Mapping[str, Any], src: Source | None, where: str) -> AIConfig:
    """See :meth:`AIConfig.from_document`."""
    return AIConfig.from_document(doc, src, where)


def _problem(err: Any, src: Source | None, where: str) -> str:
    loc = tuple(err["loc"])
    path = ""
    for part in loc:
        path = join_path(path, part)
    unknown = err["type"] == "extra_forbidden"
    place = src.where(path, key=unknown) if src is not None else where
    if unknown:
        name = str(loc[-1])
        valid = _fields_at(loc[:-1])
        near = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        hint = f"did you mean '{near[0]}'? " if near else ""
        return f"{place}: {path}: unknown key '{name}'; {hint}valid keys: {', '.join(valid)}"
    msg = str(err["msg"])
    if err["type"] == "value_error":
        return f"{place}: {path or 'top level'}: {msg.removeprefix('Value error, ')}"
    if err["type"] == "missing":
        return f"{place}: {path}: required key is missing"
    got = f"{place}: {path}: got {_short(err.get('input'))}"
    if msg.startswith("Input should be "):
        return f"{got}; expected {msg.removeprefix('Input should be ')}"
    # "String should match pattern ...", "List should have at most ...": already says it.
    return f"{got}; {msg[:1].lower()}{msg[1:]}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    model: Any = AIConfig
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return []
        model = field.annotation
        args = [a for a in getattr(model, "__args__", ()) if isinstance(a, type)]
        if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
            model = next((a for a in args if issubclass(a, pydantic.BaseModel)), None)
            if model is None:
                return []
    return sorted(model.model_fields)


def _defaults() -> dict[str, Any]:
    return AIConfig().to_dict()


def content_hash(config: AIConfig) -> str:
    """The id of ``config``: ``"sha256:"`` + hex sha256 of its canonical form."""
    return config.content_hash


__all__ = [
    "AIConfig",
    "check_signature",
    "content_hash",
    "load_from_text",
    "load_from_yaml",
    "sign_file",
    "validate_config",
    "validate_document",
    "verify_file",
]
