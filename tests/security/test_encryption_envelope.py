"""The envelope: AES-256-GCM conformance, layout, tampering and key commitment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from hypothesis import given, settings
from hypothesis import strategies as st

from system0 import _core
from system0.errors import CryptoError
from system0.security.encryption import ENVELOPE_OVERHEAD, Keyring, envelope_key_id

HEADER = 49


def _cavp(name: str) -> list[dict[str, str]]:
    vectors = pytest.importorskip(
        "cryptography_vectors", reason="cryptography_vectors (dev extra) ships the CAVP files"
    )
    text = vectors.open_vector_file(os.path.join("ciphers", "AES", "GCM", name), "r").read()
    cases: list[dict[str, str]] = []
    section: dict[str, str] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and "=" in line:
            k, v = line[1:-1].split("=")
            section[k.strip()] = v.strip()
        elif line.startswith("Count"):
            current = dict(section)
            cases.append(current)
        elif current is not None and line == "FAIL":
            current["FAIL"] = "1"
        elif current is not None and "=" in line:
            k, v = line.split("=", 1)
            current[k.strip()] = v.strip()
    # ring implements the GCM that TLS uses: 96-bit IVs and full 128-bit tags.
    return [c for c in cases if c["IVlen"] == "96" and c["Taglen"] == "128"]


def test_nist_cavp_gcm_encrypt_vectors() -> None:
    cases = _cavp("gcmEncryptExtIV256.rsp")
    assert len(cases) >= 100
    for c in cases:
        key, iv = bytes.fromhex(c["Key"]), bytes.fromhex(c["IV"])
        pt, aad = bytes.fromhex(c["PT"]), bytes.fromhex(c["AAD"])
        sealed = _core._aes256gcm_seal(key, iv, pt, aad)
        assert sealed == bytes.fromhex(c["CT"]) + bytes.fromhex(c["Tag"]), c["Count"]


def test_nist_cavp_gcm_decrypt_vectors_including_failures() -> None:
    cases = _cavp("gcmDecrypt256.rsp")
    assert any("FAIL" in c for c in cases) and len(cases) >= 100
    for c in cases:
        key, iv = bytes.fromhex(c["Key"]), bytes.fromhex(c["IV"])
        sealed = bytes.fromhex(c["CT"]) + bytes.fromhex(c["Tag"])
        aad = bytes.fromhex(c["AAD"])
        if "FAIL" in c:
            with pytest.raises(CryptoError):
                _core._aes256gcm_open(key, iv, sealed, aad)
        else:
            assert _core._aes256gcm_open(key, iv, sealed, aad) == bytes.fromhex(c["PT"])


def _enc_key(material: bytes) -> bytes:
    return HKDFExpand(hashes.SHA256(), 32, b"system0/envelope/v1/aes-256-gcm").derive(material)


def _commitment(material: bytes) -> bytes:
    return HKDFExpand(hashes.SHA256(), 32, b"system0/envelope/v1/key-commitment").derive(material)


def test_layout_matches_the_documented_format_and_opens_with_plain_aesgcm() -> None:
    material = bytes(range(32))
    ring = Keyring()
    kid = ring.add(material)
    ring.promote(kid)
    env = ring.encrypt(b"payload", b"ctx")
    assert len(env) == len(b"payload") + ENVELOPE_OVERHEAD == 7 + 65
    assert env[0] == 0x01
    assert int.from_bytes(env[1:5], "big") == kid == envelope_key_id(env)
    assert env[17:49] == _commitment(material)
    # An independent implementation (pyca/cryptography) opens it with the documented inputs.
    plain = AESGCM(_enc_key(material)).decrypt(env[5:17], env[HEADER:], env[:HEADER] + b"ctx")
    assert plain == b"payload"


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=300), aad=st.binary(max_size=40), pos=st.integers(0, 10_000))
def test_roundtrip_and_any_flipped_bit_is_refused(data: bytes, aad: bytes, pos: int) -> None:
    ring = Keyring.generate()
    env = ring.encrypt(data, aad)
    assert ring.decrypt(env, aad) == data
    bit = pos % (len(env) * 8)
    bad = bytearray(env)
    bad[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(CryptoError):
        ring.decrypt(bytes(bad), aad)
    with pytest.raises(CryptoError):
        ring.decrypt(env, aad + b"x")


def test_nonces_never_repeat() -> None:
    ring = Keyring.generate()
    nonces = {ring.encrypt(b"")[5:17] for _ in range(20_000)}
    assert len(nonces) == 20_000


def test_truncated_unknown_and_foreign_envelopes_raise_typed_errors() -> None:
    ring = Keyring.generate()
    env = ring.encrypt(b"secret")
    for bad in (b"", env[:10], env[:-1]):
        with pytest.raises(CryptoError):
            ring.decrypt(bad)
    other = Keyring.generate()
    other.rotate()  # ids 1 and 2: key 1 exists but is a different key
    with pytest.raises(CryptoError, match="commitment"):
        other.decrypt(env)
    unknown = bytearray(env)
    unknown[1:5] = (99).to_bytes(4, "big")
    with pytest.raises(CryptoError, match="no key with id 99"):
        ring.decrypt(bytes(unknown))
    v2 = b"\x02" + env[1:]
    with pytest.raises(CryptoError, match="format byte"):
        ring.decrypt(v2)


# --- key commitment: an "invisible salamander" that plain GCM accepts under two keys ---

_R = 0xE1 << 120


def _gf_mul(x: int, y: int) -> int:
    z, v = 0, y
    for i in range(127, -1, -1):
        if (x >> i) & 1:
            z ^= v
        v = (v >> 1) ^ _R if v & 1 else v >> 1
    return z


def _gf_inv(x: int) -> int:
    result, base, e = 1 << 127, x, (1 << 128) - 2  # 1 << 127 is the field's one
    while e:
        if e & 1:
            result = _gf_mul(result, base)
        base = _gf_mul(base, base)
        e >>= 1
    return result


def _blocks(b: bytes) -> list[int]:
    b = b + bytes(-len(b) % 16)
    return [int.from_bytes(b[i : i + 16], "big") for i in range(0, len(b), 16)]


def _ghash(h: int, aad: bytes, ct: bytes) -> int:
    y = 0
    lengths = ((len(aad) * 8) << 64 | len(ct) * 8).to_bytes(16, "big")
    for x in [*_blocks(aad), *_blocks(ct), *_blocks(lengths)]:
        y = _gf_mul(y ^ x, h)
    return y


def _aes_block(key: bytes, block: bytes) -> int:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return int.from_bytes(enc.update(block) + enc.finalize(), "big")


def _salamander(k1: bytes, k2: bytes, nonce: bytes, aad: bytes) -> bytes:
    """Ciphertext||tag that AES-GCM accepts under both k1 and k2 (Dodis et al. 2018)."""
    j0 = nonce + b"\x00\x00\x00\x01"
    h1, h2 = _aes_block(k1, bytes(16)), _aes_block(k2, bytes(16))
    e1, e2 = _aes_block(k1, j0), _aes_block(k2, j0)
    c1 = bytes(16)
    s1 = _ghash(h1, aad, c1 + bytes(16))
    s2 = _ghash(h2, aad, c1 + bytes(16))
    # The last ciphertext block enters GHASH multiplied by H^2 (then the length block by H).
    coeff = _gf_mul(h1, h1) ^ _gf_mul(h2, h2)
    c2 = _gf_mul(s1 ^ e1 ^ s2 ^ e2, _gf_inv(coeff))
    tag = s1 ^ _gf_mul(c2, _gf_mul(h1, h1)) ^ e1
    return c1 + c2.to_bytes(16, "big") + tag.to_bytes(16, "big")


def test_a_ciphertext_crafted_to_open_under_two_keys_is_rejected() -> None:
    m1, m2 = os.urandom(32), os.urandom(32)
    ring1, ring2 = Keyring(), Keyring()
    assert ring1.add(m1) == ring2.add(m2) == 1  # both call their key "1"
    ring1.promote(1)
    ring2.promote(1)
    header = ring1.encrypt(b"")[:HEADER]  # key id 1, a nonce, key 1's commitment
    nonce = header[5:17]
    body = _salamander(_enc_key(m1), _enc_key(m2), nonce, header)
    # The attack is real: plain AES-GCM opens the same bytes under both keys...
    p1 = AESGCM(_enc_key(m1)).decrypt(nonce, body, header)
    p2 = AESGCM(_enc_key(m2)).decrypt(nonce, body, header)
    assert p1 != p2
    # ...while the envelope opens under exactly one key.
    envelope = header + body
    assert ring1.decrypt(envelope) == p1
    with pytest.raises(CryptoError, match="commitment"):
        ring2.decrypt(envelope)
    # Swapping in key 2's commitment changes the associated data, so the tag fails instead.
    swapped = header[:17] + _commitment(m2) + body
    with pytest.raises(CryptoError, match="authentication"):
        ring2.decrypt(swapped)


def test_large_payloads_roundtrip_with_the_gil_released(tmp_path: Path) -> None:
    ring = Keyring.generate()
    data = os.urandom(3 << 20)
    env = ring.encrypt(data, b"big")
    assert ring.decrypt(env, b"big") == data
    tampered = bytearray(env)
    tampered[-20] ^= 0x80
    with pytest.raises(CryptoError):
        ring.decrypt(bytes(tampered), b"big")
