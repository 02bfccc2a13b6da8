"""Configuration (``system0.core.config``): one hermetic source of truth, content-hashed,
signed, diffable, forkable.

The facade re-exports what ``AIConfig`` users need; the parts are modules of one concept each:
``aiconfig`` (the model, loading and validation), ``schema`` (its sections), ``yaml_source``
(parsing with source marks and interpolation), ``migrations``, ``canonical`` (RFC 8785),
``signing`` (Ed25519 signatures), ``fork`` (experiments and the emergency override), ``diff``
and ``cli`` (``system0 config ...``). Modules inside the package import each other directly,
never through this facade, so importing any one of them alone works.
"""

from system0.core.config.aiconfig import (
    AIConfig,
    check_signature,
    content_hash,
    load_from_text,
    load_from_yaml,
    sign_file,
    validate_config,
    validate_document,
    verify_file,
)
from system0.core.config.canonical import canonical_json
from system0.core.config.diff import Change, ConfigDiff, diff
from system0.core.config.fork import (
    emergency_override,
    fork_for_experiment,
    parse_overrides,
    set_audit_sink,
)
from system0.core.config.schema import (
    SCHEMA_VERSION,
    BreakerConfig,
    InferenceConfig,
    Lineage,
    ModelConfig,
    MonitoringConfig,
    Override,
    SecurityConfig,
    ServingConfig,
    StorageConfig,
    TrainingConfig,
)
from system0.security.audit_sink import AuditSink

__all__ = [
    "SCHEMA_VERSION",
    "AIConfig",
    "AuditSink",
    "BreakerConfig",
    "Change",
    "ConfigDiff",
    "InferenceConfig",
    "Lineage",
    "ModelConfig",
    "MonitoringConfig",
    "Override",
    "SecurityConfig",
    "ServingConfig",
    "StorageConfig",
    "TrainingConfig",
    "canonical_json",
    "check_signature",
    "content_hash",
    "diff",
    "emergency_override",
    "fork_for_experiment",
    "load_from_text",
    "load_from_yaml",
    "parse_overrides",
    "set_audit_sink",
    "sign_file",
    "validate_config",
    "validate_document",
    "verify_file",
]
