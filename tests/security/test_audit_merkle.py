"""The Merkle functions against the RFC 6962 / RFC 9162 reference vectors, and properties."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from system0.security.audit import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    verify_consistency,
    verify_inclusion,
)

# certificate-transparency's reference tree (merkle_tree_test), used by RFC 6962 implementations.
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
A = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
B = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
C = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
D = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
E = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
F = "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
G = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
INCLUSION = {
    (0, 1): [],
    (0, 8): [A, B, C],
    (5, 8): [D, E, F],
    (2, 3): [ROOTS[2]],
    (1, 5): [ROOTS[1], B, D],
    (3, 8): ["0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7", ROOTS[2], C],
    (7, 8): ["b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f", G, F],
}
CONSISTENCY = {(1, 1): [], (1, 8): [A, B, C], (6, 8): [G, E, F], (2, 5): [B, D]}


def test_leaf_and_roots_match_the_reference() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    for n, want in enumerate(ROOTS):
        assert merkle_root(LEAVES[:n]).hex() == want, n


def test_inclusion_proofs_match_the_reference_and_verify() -> None:
    for (m, n), want in INCLUSION.items():
        proof = inclusion_proof(LEAVES[:n], m)
        assert [p.hex() for p in proof] == want, (m, n)
        root = bytes.fromhex(ROOTS[n])
        assert verify_inclusion(LEAVES[m], m, n, proof, root)
        assert not verify_inclusion(LEAVES[m] + b"x", m, n, proof, root)
        if n > 1:
            assert not verify_inclusion(LEAVES[m], (m + 1) % n, n, proof, root)


def test_consistency_proofs_match_the_reference_and_verify() -> None:
    for (m, n), want in CONSISTENCY.items():
        proof = consistency_proof(LEAVES[:n], m)
        assert [p.hex() for p in proof] == want, (m, n)
        r1, r2 = bytes.fromhex(ROOTS[m]), bytes.fromhex(ROOTS[n])
        assert verify_consistency(m, n, r1, r2, proof)
        if m < n:
            assert not verify_consistency(m, n, r2, r1, proof)
            assert not verify_consistency(m, n, r1, r2, proof[:-1])


@settings(max_examples=40, deadline=None)
@given(
    entries=st.lists(st.binary(max_size=20), min_size=1, max_size=40),
    data=st.data(),
)
def test_every_proof_verifies_and_any_change_breaks_it(
    entries: list[bytes], data: st.DataObject
) -> None:
    n = len(entries)
    m = data.draw(st.integers(0, n - 1))
    root = merkle_root(entries)
    proof = inclusion_proof(entries, m)
    assert verify_inclusion(entries[m], m, n, proof, root)
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof]
        bad[k] = bytes([bad[k][0] ^ 1]) + bad[k][1:]
        assert not verify_inclusion(entries[m], m, n, bad, root)
    old = data.draw(st.integers(1, n))
    cproof = consistency_proof(entries, old)
    assert verify_consistency(old, n, merkle_root(entries[:old]), root, cproof)
    rewritten = [*entries]
    rewritten[0] = rewritten[0] + b"!"
    assert not verify_consistency(old, n, merkle_root(rewritten[:old]), root, cproof)
