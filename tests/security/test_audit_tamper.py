"""Tampering with the real bytes of a ledger on disk: every change is found and named."""

from __future__ import annotations

import os
import re
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from system0.errors import IntegrityError
from system0.security.audit import AuditLedger, verify_ledger
from system0.security.encryption import Keyring, SigningKey

HEADER = 36  # segment header


def _build(path: Path, n: int = 6, checkpoint: bool = True) -> tuple[Keyring, SigningKey]:
    ring, signer = Keyring.generate(), SigningKey.generate()
    ledger = AuditLedger.open(path, keyring=ring, signing_key=signer)
    for k in range(n):
        ledger.append(f"entry {k:02d} payload".encode())
    if checkpoint:
        ledger.checkpoint()
    return ring, signer


def _records(seg: bytes) -> list[tuple[int, int]]:
    """(start, end) byte ranges of each record in a segment."""
    out, pos = [], HEADER
    while pos < len(seg):
        (n,) = struct.unpack_from("<I", seg, pos)
        out.append((pos, pos + 8 + n))
        pos += 8 + n
    return out


def _segment(path: Path) -> Path:
    (seg,) = path.glob("seg-*.s0l")
    return seg


def _reframe(body: bytes) -> bytes:
    head = struct.pack("<I", len(body))
    return head + body + struct.pack("<I", zlib.crc32(head + body))


def _first_bad(err: pytest.ExceptionInfo[IntegrityError]) -> int | None:
    m = re.search(r"entry (\d+)", str(err.value))
    return int(m.group(1)) if m else None


def test_every_single_bit_flip_anywhere_is_detected_and_located(tmp_path: Path) -> None:
    good = tmp_path / "good"
    ring, signer = _build(good)
    assert verify_ledger(good, signer.public_key, ring).entries == 6
    work = tmp_path / "work"
    shutil.copytree(good, work)
    flips = 0
    for name in sorted(p.name for p in good.iterdir()):
        original = (good / name).read_bytes()
        ranges = _records(original) if name.startswith("seg-") else []
        fd = os.open(work / name, os.O_RDWR)
        try:
            for byte in range(len(original)):
                for bit in range(8):
                    os.pwrite(fd, bytes([original[byte] ^ (1 << bit)]), byte)  # flip in place
                    with pytest.raises(IntegrityError) as err:
                        verify_ledger(work, signer.public_key, ring)
                    flips += 1
                    for index, (start, end) in enumerate(ranges):
                        if start <= byte < end:
                            assert _first_bad(err) == index, (name, byte, str(err.value))
                os.pwrite(fd, original[byte : byte + 1], byte)
        finally:
            os.close(fd)
    assert verify_ledger(work, signer.public_key, ring).entries == 6
    assert flips > 8 * 1000


def test_every_truncation_is_detected(tmp_path: Path) -> None:
    _ring, signer = _build(tmp_path / "good")
    path = _segment(tmp_path / "good")
    seg = path.read_bytes()
    fd = os.open(path, os.O_RDWR)
    try:
        for cut in range(len(seg)):
            os.ftruncate(fd, cut)
            with pytest.raises(IntegrityError):
                verify_ledger(tmp_path / "good", signer.public_key)
            os.pwrite(fd, seg[cut:], cut)
    finally:
        os.close(fd)
    assert verify_ledger(tmp_path / "good", signer.public_key).entries == 6


def _rewrite(path: Path, edit: object) -> None:
    seg_path = _segment(path)
    seg = seg_path.read_bytes()
    recs = [seg[a:b] for a, b in _records(seg)]
    recs = edit(recs)  # type: ignore[operator]
    seg_path.write_bytes(seg[:HEADER] + b"".join(recs))


@pytest.mark.parametrize(
    ("name", "edit", "first_bad", "why"),
    [
        ("reorder", lambda r: [r[0], r[1], r[3], r[2], r[4], r[5]], 2, "says it is entry 3"),
        ("replay", lambda r: [*r[:3], r[2], *r[3:]], 3, "says it is entry 2"),
        ("delete", lambda r: [*r[:2], *r[3:]], 2, "says it is entry 3"),
        ("delete tail", lambda r: r[:4], 4, "entries were removed"),
    ],
)
def test_reordered_replayed_and_deleted_entries(
    tmp_path: Path, name: str, edit: object, first_bad: int, why: str
) -> None:
    ring, signer = _build(tmp_path / "l")
    _rewrite(tmp_path / "l", edit)
    with pytest.raises(IntegrityError, match=why) as err:
        verify_ledger(tmp_path / "l", signer.public_key)
    assert _first_bad(err) == first_bad
    with pytest.raises(IntegrityError):
        AuditLedger.open(tmp_path / "l", keyring=ring)


def test_a_rewrite_with_recomputed_checksums_is_caught(tmp_path: Path) -> None:
    _ring, signer = _build(tmp_path / "l")

    def edit(recs: list[bytes]) -> list[bytes]:
        body = bytearray(recs[2][4:-4])
        body[-20] ^= 0xFF  # change the ciphertext, then frame it again like the writer does
        return [*recs[:2], _reframe(bytes(body)), *recs[3:]]

    _rewrite(tmp_path / "l", edit)
    with pytest.raises(IntegrityError, match="entry 3: its previous-root") as err:
        verify_ledger(tmp_path / "l", signer.public_key)
    assert _first_bad(err) == 3


def test_rewriting_the_last_entry_is_caught_by_the_checkpoint_and_by_the_keyring(
    tmp_path: Path,
) -> None:
    ring, signer = _build(tmp_path / "l")

    def edit(recs: list[bytes]) -> list[bytes]:
        body = bytearray(recs[5][4:-4])
        body[-20] ^= 0xFF
        return [*recs[:5], _reframe(bytes(body))]

    _rewrite(tmp_path / "l", edit)
    with pytest.raises(IntegrityError, match="no longer hash to the signed root"):
        verify_ledger(tmp_path / "l", signer.public_key)
    (tmp_path / "l" / "checkpoints.s0c").unlink()  # even with the checkpoints gone...
    with pytest.raises(IntegrityError, match="entry 5: its envelope does not open"):
        verify_ledger(tmp_path / "l", signer.public_key, ring)


def test_torn_tail_is_cut_on_open_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ring, signer = _build(tmp_path / "l", n=5, checkpoint=False)
    seg = _segment(tmp_path / "l")
    data = seg.read_bytes()
    seg.write_bytes(data[:-10])  # a crash in the middle of writing entry 4
    with pytest.raises(IntegrityError, match=r"entry 4: .*ends inside a record"):
        verify_ledger(tmp_path / "l")
    ledger = AuditLedger.open(tmp_path / "l", keyring=ring, signing_key=signer)
    assert "cut a torn tail" in caplog.text and "entry 4" in caplog.text
    assert ledger.size == 4
    assert ledger.recovery is not None
    cut, index, segment = ledger.recovery
    assert (index, segment) == (4, seg.name) and cut == len(data) - 10 - _records(data)[4][0]
    assert ledger.append(b"after the crash") == 4
    assert ledger.verify().entries == 5


def test_a_bad_last_record_under_a_checkpoint_is_not_repaired(tmp_path: Path) -> None:
    ring, _signer = _build(tmp_path / "l", n=5, checkpoint=True)
    seg = _segment(tmp_path / "l")
    seg.write_bytes(seg.read_bytes()[:-10])
    with pytest.raises(IntegrityError, match="signed checkpoint covers it"):
        AuditLedger.open(tmp_path / "l", keyring=ring)


def test_damage_in_the_middle_is_never_mistaken_for_a_torn_tail(tmp_path: Path) -> None:
    ring, _ = _build(tmp_path / "l", n=5, checkpoint=False)
    seg = _segment(tmp_path / "l")
    data = bytearray(seg.read_bytes())
    start, _end = _records(bytes(data))[1]
    data[start + 30] ^= 4
    seg.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="entry 1"):
        AuditLedger.open(tmp_path / "l", keyring=ring)
    assert seg.read_bytes() == bytes(data)  # nothing was cut
