"""The sections of :class:`system0.core.config.AIConfig`: frozen pydantic models, no unknown keys.

Every section is immutable all the way down: models are ``frozen``, sequences are tuples and
per-name maps are read-only ``MappingProxyType`` views, so a loaded configuration cannot be
changed at run time (the only way to a different configuration is a new one: a fork or an
emergency override, both recorded in the lineage).

A default here is part of the schema. Changing one changes what every file that omits the key
means, so it needs a new ``SCHEMA_VERSION`` and a migration that writes the old default into
older files (see ``config.migrations``); a test pins the hash of the defaults per version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
    model_validator,
)

from system0.core.config.canonical import canonical_json
from system0.errors import ConfigError

SCHEMA_VERSION = 2
"""The layout this release reads and writes; older files are migrated on load."""

_NUMBERS = (int, float, int | None, float | None)
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def _frozen_map(value: Mapping[str, Any]) -> Mapping[str, Any]:
    # Keys become parts of dotted paths (``monitoring.latency_threshold_ms.policy``), so a
    # dot or a bracket in a key would make a path ambiguous.
    for key in value:
        if not _NAME_RE.fullmatch(key):
            raise ValueError(
                f"key {key!r} is not a valid name: use 1 to 128 letters, digits, '_' or '-'"
            )
    return MappingProxyType(dict(sorted(value.items())))


FloatMap = Annotated[
    Mapping[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]],
    AfterValidator(_frozen_map),
    PlainSerializer(dict, return_type=dict[str, float]),
]
"""A read-only ``name -> positive float`` map (sorted, so its order is canonical)."""


class Section(BaseModel):
    """Base of every configuration model: frozen, strict about unknown keys and NaN."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
        coerce_numbers_to_str=True,
        validate_default=True,
        protected_namespaces=(),
    )

    # Lax validation turns environment text into numbers ("32" -> 32), but it would also turn
    # `max_batch: true` into 1: a boolean is never a number in a config.
    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_as_number(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            if annotation in _NUMBERS:
                raise ValueError(f"got {value!r}; expected a number, not a boolean")
        return value

    # Pydantic's own frozen error says nothing about what to do instead; this one does.
    # Validation and model_copy never go through __setattr__, so only user code hits it.
    def __setattr__(self, name: str, value: Any) -> None:
        raise ConfigError(
            f"configuration is immutable: cannot set {type(self).__name__}.{name}; derive a "
            "new one with fork_for_experiment(...) or, in an emergency, emergency_override(...)"
        )

    def __delattr__(self, name: str) -> None:
        raise ConfigError(f"configuration is immutable: cannot delete {type(self).__name__}.{name}")

    def __hash__(self) -> int:
        return hash(canonical_json(self.model_dump(mode="json")))

    # Immutable values need no copies; and a read-only map view cannot be pickled or
    # deep-copied, so both go through the validated JSON form instead.
    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self).model_validate, (self.model_dump(mode="json"),))


class ModelConfig(Section):
    """Which policy model to run and how to place it."""

    name: str = Field(default="policy", pattern=_NAME_RE.pattern)
    version: str = "0.0.0"
    framework: Literal["torch", "jax", "onnx", "custom"] = "torch"
    artifact_uri: str = ""
    artifact_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    device: Literal["auto", "cpu", "cuda", "tpu"] = "auto"
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    compile: bool = False
    input_features: int = Field(default=64, ge=1)
    num_actions: int = Field(default=16, ge=1)
    seed: int = Field(default=0, ge=0)


class TrainingConfig(Section):
    """Offline training on the samples the matches produce."""

    seed: int = Field(default=0, ge=0)
    batch_size: int = Field(default=256, ge=1)
    learning_rate: float = Field(default=3e-4, gt=0)
    max_steps: int = Field(default=100_000, ge=1)
    optimizer: Literal["adam", "adamw", "sgd"] = "adamw"
    weight_decay: float = Field(default=0.01, ge=0)
    gradient_clip_norm: float | None = Field(default=1.0, gt=0)
    eval_fraction: float = Field(default=0.05, ge=0, lt=1)
    checkpoint_every_steps: int = Field(default=1000, ge=1)
    deterministic: bool = True


class BreakerConfig(Section):
    """The circuit breaker in front of the model."""

    failure_threshold: int = Field(default=5, ge=1)
    reset_timeout_s: float = Field(default=30.0, gt=0)
    half_open_max_calls: int = Field(default=1, ge=1)


class InferenceConfig(Section):
    """The hot path: bounded queue, deadline batcher, breaker."""

    max_batch: int = Field(default=32, ge=1, le=65_536)
    max_wait_ms: float = Field(default=2.0, ge=0)
    queue_capacity: int = Field(default=1024, ge=1)
    latency_budget_ms: float = Field(default=50.0, gt=0)
    overload_policy: Literal["reject", "drop_oldest", "block"] = "reject"
    breaker: BreakerConfig = BreakerConfig()

    @model_validator(mode="after")
    def _coherent(self) -> InferenceConfig:
        if self.queue_capacity < self.max_batch:
            raise ValueError(
                f"queue_capacity ({self.queue_capacity}) must be at least max_batch "
                f"({self.max_batch}), or a full batch can never form"
            )
        if self.max_wait_ms >= self.latency_budget_ms:
            raise ValueError(
                f"max_wait_ms ({self.max_wait_ms}) must be below latency_budget_ms "
                f"({self.latency_budget_ms}), or waiting for a batch spends the whole budget"
            )
        return self


class MonitoringConfig(Section):
    """Metrics, traces and alerts."""

    default_latency_threshold_ms: float = Field(default=100.0, gt=0)
    latency_threshold_ms: FloatMap = Field(default_factory=dict)
    sampling_ratio: float = Field(default=1.0, ge=0, le=1)
    metrics_namespace: str = Field(default="system0", pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")
    max_label_sets: int = Field(default=10_000, ge=1)
    prometheus_port: int | None = Field(default=None, ge=1, le=65_535)
    trace_export: Literal["none", "stdout", "otlp"] = "none"
    otlp_endpoint: str = ""
    alert_cooldown_s: float = Field(default=60.0, ge=0)

    def threshold_ms(self, model: str) -> float:
        """The latency alert threshold for ``model`` (its own, else the default)."""
        return float(self.latency_threshold_ms.get(model, self.default_latency_threshold_ms))

    @model_validator(mode="after")
    def _coherent(self) -> MonitoringConfig:
        if self.trace_export == "otlp" and not self.otlp_endpoint:
            raise ValueError("trace_export is 'otlp' but otlp_endpoint is empty: set both")
        return self


class SecurityConfig(Section):
    """The security spine. Holds references to secrets, never the secrets themselves."""

    audit_ledger_path: str = "system0-audit.ledger"
    key_provider: str = Field(default="env:SYSTEM0_MASTER_KEY", pattern=r"^[a-z][a-z0-9+.-]*:.+$")
    key_rotation_days: int = Field(default=90, ge=1)
    access_policy_path: str = ""
    privacy_epsilon: float = Field(default=1.0, gt=0)
    privacy_delta: float = Field(default=1e-6, ge=0, lt=1)


class StorageConfig(Section):
    """Where training samples live."""

    root: str = "system0-data"
    backend: Literal["local", "sqlite", "duckdb"] = "sqlite"
    compression: Literal["none", "zstd", "lz4"] = "zstd"
    hot_tier_max_bytes: int = Field(default=1 << 30, ge=0)
    retention_days: int = Field(default=30, ge=1)
    prefetch_batches: int = Field(default=2, ge=0)


class ServingConfig(Section):
    """The model server and its rollouts."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65_535)
    workers: int = Field(default=1, ge=1)
    request_timeout_ms: float = Field(default=1000.0, gt=0)
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=4, ge=1)
    rollout: Literal["blue_green", "canary", "all_at_once"] = "blue_green"
    canary_fraction: float = Field(default=0.05, gt=0, le=1)
    health_check_interval_s: float = Field(default=5.0, gt=0)
    drain_timeout_s: float = Field(default=30.0, ge=0)

    @model_validator(mode="after")
    def _coherent(self) -> ServingConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) exceeds max_replicas ({self.max_replicas})"
            )
        return self


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


class Override(Section):
    """One override of a fork: the dotted path and the (validated) value it was given."""

    path: str
    value: Annotated[Any, AfterValidator(_freeze), PlainSerializer(_thaw)]


class Lineage(Section):
    """Where a derived configuration came from.

    ``kind`` is ``"experiment"`` for :func:`fork_for_experiment` and ``"emergency"`` for
    :func:`emergency_override` (which also records ``reason`` and ``actor``). ``parent`` is the
    content hash of the configuration it was derived from.
    """

    kind: Literal["experiment", "emergency"]
    name: str = Field(min_length=1)
    parent: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    overrides: tuple[Override, ...] = ()
    reason: str = ""
    actor: str = ""


__all__ = [
    "SCHEMA_VERSION",
    "BreakerConfig",
    "InferenceConfig",
    "Lineage",
    "ModelConfig",
    "MonitoringConfig",
    "Override",
    "Section",
    "SecurityConfig",
    "ServingConfig",
    "StorageConfig",
    "TrainingConfig",
]
