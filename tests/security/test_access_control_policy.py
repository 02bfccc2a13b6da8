"""Policy documents: validation with useful messages, pattern semantics, signing."""

from __future__ import annotations

import pathlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from system0.errors import ConfigError
from system0.security.access_control import Enforcer, Policy, Subject

POLICY_YAML = """
version: 1
roles:
  reader:
    allow: [{resource: "dataset/**", action: read}]
  analyst:
    inherits: [reader]
    allow: [{resource: "dataset/*/aggregates", action: [read, release]}]
    deny: [{resource: "dataset/secret/**", action: "*"}]
bindings:
  - {subject: alice, role: analyst}
"""


def _allowed(patterns: list[str], resource: str) -> bool:
    policy = Policy.from_dict(
        {"roles": {"r": {"allow": [{"resource": p, "action": "x"} for p in patterns]}}}
    )
    return Enforcer(policy).check(Subject.of("s", ["r"]), resource, "x").allowed


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("dataset/telemetry", "dataset/telemetry", True),
        ("dataset/telemetry", "dataset/telemetry2", False),
        ("dataset/*", "dataset/telemetry", True),
        ("dataset/*", "dataset/telemetry/2026", False),  # * stays within a segment
        ("dataset/tele*", "dataset/telemetry", True),
        ("dataset/**", "dataset/telemetry/2026/11", True),
        ("dataset/**", "dataset", False),  # ** at the end needs at least one segment
        ("dataset/**/raw", "dataset/raw", True),  # in the middle: zero or more
        ("dataset/**/raw", "dataset/a/b/raw", True),
        ("dataset/**/raw", "dataset/a/b/cooked", False),
        ("**", "anything/at/all", True),
        ("model/v1.2", "model/v1x2", False),  # '.' is literal, not a regex wildcard
    ],
)
def test_pattern_semantics(pattern: str, resource: str, expected: bool) -> None:
    assert _allowed([pattern], resource) is expected


@given(st.text(alphabet="ab/", min_size=1, max_size=12))
def test_single_star_never_crosses_a_slash(resource: str) -> None:
    expected = resource.count("/") == 1 and resource.startswith("a/")
    assert _allowed(["a/*"], resource) is expected


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"roles": {"a": {"inherits": ["ghost"]}}}, "inherits unknown role 'ghost'"),
        (
            {"roles": {"a": {"inherits": ["b"]}, "b": {"inherits": ["a"]}}},
            "role inheritance cycle: a -> b -> a",
        ),
        ({"roles": {"a": {}}, "bindings": [{"subject": "x", "role": "b"}]}, "unknown role 'b'"),
        (
            {"roles": {"a": {"allow": [{"resource": "data/a**", "action": "read"}]}}},
            "bad segment 'a**'",
        ),
        ({"roles": {"a": {"allow": [{"resource": "", "action": "read"}]}}}, "must not be empty"),
        (
            {"roles": {"a": {"allow": [{"resource": "x", "action": "re ad"}]}}},
            "action 're ad'",
        ),
        ({"roles": {"a": {"devices": ["abc"]}}}, "sha256:<64 lowercase hex>"),
        ({"roles": {"a": {"grant": []}}}, "roles.a.grant: Extra inputs are not permitted"),
        ({"version": 2, "roles": {}}, "version"),
        ({}, "roles: Field required"),
    ],
)
def test_invalid_policies_are_config_errors_that_say_where(doc: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as info:
        Policy.from_dict(doc, source="team.yaml")
    assert message in str(info.value)
    assert "team.yaml" in str(info.value)


def test_yaml_that_is_not_yaml_or_not_a_mapping() -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        Policy.from_yaml("roles: [unclosed")
    with pytest.raises(ConfigError, match="expected a mapping"):
        Policy.from_yaml("- a\n- b\n")


def test_content_hash_is_canonical() -> None:
    a = Policy.from_yaml(POLICY_YAML)
    reordered = Policy.from_dict(
        {
            "bindings": [{"role": "analyst", "subject": "alice"}],
            "roles": {
                "analyst": {
                    "deny": [{"action": "*", "resource": "dataset/secret/**"}],
                    "allow": [{"resource": "dataset/*/aggregates", "action": ["read", "release"]}],
                    "inherits": ["reader"],
                },
                "reader": {"allow": [{"resource": "dataset/**", "action": "read"}]},
            },
        }
    )
    assert a.content_hash == reordered.content_hash
    assert a.content_hash.startswith("sha256:") and len(a.content_hash) == 7 + 64
    changed = Policy.from_yaml(POLICY_YAML.replace("action: read}", "action: write}"))
    assert changed.content_hash != a.content_hash
    assert Policy.from_dict(a.to_dict()).content_hash == a.content_hash


def test_signed_policy_round_trip_and_refusals(tmp_path: pathlib.Path) -> None:
    key = Ed25519PrivateKey.generate()
    other = Ed25519PrivateKey.generate()
    policy = Policy.from_yaml(POLICY_YAML)
    sig = policy.sign(key)
    trusted = [other.public_key(), key.public_key()]

    ok = Policy.from_yaml(POLICY_YAML, trusted_keys=trusted, signature=sig)
    assert ok.content_hash == policy.content_hash

    with pytest.raises(ConfigError, match="unsigned but trusted keys are configured"):
        Policy.from_yaml(POLICY_YAML, trusted_keys=trusted)
    tampered = POLICY_YAML.replace("dataset/secret/**", "dataset/other/**")
    with pytest.raises(ConfigError, match="does not verify under any of the 2 trusted key"):
        Policy.from_yaml(tampered, trusted_keys=trusted, signature=sig)
    with pytest.raises(ConfigError, match="does not verify"):
        Policy.from_yaml(POLICY_YAML, trusted_keys=[other.public_key()], signature=sig)

    path = tmp_path / "policy.yaml"
    path.write_text(POLICY_YAML)
    with pytest.raises(ConfigError, match="unsigned"):
        Policy.load(path, trusted_keys=trusted)
    (tmp_path / "policy.yaml.sig").write_bytes(sig)
    assert Policy.load(path, trusted_keys=trusted).content_hash == policy.content_hash
    assert Policy.load(path).content_hash == policy.content_hash  # no keys: no check
    with pytest.raises(ConfigError, match="cannot read"):
        Policy.load(tmp_path / "missing.yaml")
