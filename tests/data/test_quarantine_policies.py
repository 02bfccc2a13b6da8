"""Validation policies and the SQLite quarantine: keep, list, fix, replay; detect corruption."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import dumps, game_state

from system0.data.validation import Policy, Quarantine, Validator
from system0.errors import IntegrityError, ValidationError

BATCH = [
    game_state(),
    game_state(health=-10.0),
    game_state(inventory=["excalibur"]),
    game_state(),
]


def test_quarantine_policy_keeps_bad_rows_and_returns_the_good(tmp_path: Path) -> None:
    with Quarantine(tmp_path / "q.db") as q:
        v = Validator(quarantine=q)
        d = v.ingest(dumps(BATCH), source="match-42", trace_id="t-1")
        assert d.rows == [0, 3]
        held = q.list()
        assert [r.row for r in held] == [1, 2]
        assert held[0].codes == ("greater_than_equal",) and held[1].codes == ("unknown_item",)
        assert held[0].source == "match-42" and held[0].trace_id == "t-1"
        assert json.loads(held[0].raw) == BATCH[1]  # the bytes exactly as received
        assert held[0].errors[0][0] == "health"
        assert q.list(code="unknown_item") == [held[1]]
    # persisted: a fresh connection sees the same rows
    with Quarantine(tmp_path / "q.db") as again:
        assert again.count() == 2 and again.reason_counts() == {
            "greater_than_equal": 1,
            "unknown_item": 1,
        }


def test_replay_after_a_fix(tmp_path: Path) -> None:
    with Quarantine(tmp_path / "q.db") as q:
        Validator(quarantine=q).ingest(dumps(BATCH))

        def fix(raw: bytes) -> bytes:
            row = json.loads(raw)
            row["health"] = max(row["health"], 0.0)
            return json.dumps(row).encode()

        result = q.replay(fix)
        assert result.batch.num_rows == 1
        assert pa.record_batch(result.batch).column("health").to_pylist() == [0.0]
        assert len(result.still_refused_ids) == 1
        assert q.count() == 1 and q.count("replayed") == 1
        [left] = q.list()
        assert left.codes == ("unknown_item",)
        # a second fix clears the rest
        q.replay(lambda raw: raw.replace(b"excalibur", b"boots"))
        assert q.count() == 0 and q.count("replayed") == 2


def test_fail_policy_raises_with_the_reasons() -> None:
    v = Validator(policies={"GameState": Policy.FAIL})
    with pytest.raises(ValidationError, match=r"2 of 4 GameState rows.*greater_than_equal"):
        v.ingest(dumps(BATCH))
    assert v.ingest(dumps([game_state()])).num_rows == 1  # a clean batch passes


def test_warn_policy_logs_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[str, int]] = []
    v = Validator(policies={"GameState": "warn"}, on_refused=lambda c, n: seen.append((c, n)))
    with caplog.at_level(logging.WARNING, logger="system0.data.validation"):
        d = v.ingest(dumps(BATCH))
    assert d.num_rows == 2 and seen == [("GameState", 2)]
    assert "unknown_item" in caplog.text


def test_corrupted_quarantine_row_is_detected_on_read(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    with Quarantine(path) as q:
        Validator(quarantine=q).ingest(dumps(BATCH))
    # flip one real byte of a stored row, behind the quarantine's back
    db = sqlite3.connect(path)
    (raw,) = db.execute("SELECT raw FROM quarantine WHERE id = 1").fetchone()
    flipped = bytearray(raw)
    flipped[10] ^= 0x20
    db.execute("UPDATE quarantine SET raw = ? WHERE id = 1", (bytes(flipped),))
    db.commit()
    db.close()
    with Quarantine(path) as q, pytest.raises(IntegrityError, match="row 1 failed its CRC-32C"):
        q.list()


def test_concurrent_ingest_into_one_quarantine(tmp_path: Path) -> None:
    with Quarantine(tmp_path / "q.db") as q:
        v = Validator(quarantine=q)
        threads = [threading.Thread(target=v.ingest, args=(dumps(BATCH),)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert q.count() == 16
