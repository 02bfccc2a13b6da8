"""``system0 data``: list, show, export, verify (exit 1 naming the corrupt file), tag, gc."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from system0.cli import main
from system0.data.storage import ScalableStorage
from system0.data.storage.policy import StoragePolicy
from system0.data.storage.schema import synthetic_samples


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    with ScalableStorage(root, policy=StoragePolicy(hot_max_rows=1000)) as s:
        s.commit(synthetic_samples(100), message="first matches")
        s.tag("golden")
        s.commit(synthetic_samples(2000, seed=1, start_step=100))
    return root


def test_list_shows_datasets_versions_and_tags(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "--root", str(root), "list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "samples"
    assert "[golden]" in out and "first matches" in out and "2100 rows" in out


def test_show_prints_the_manifest(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "--root", str(root), "show", "samples", "golden"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["rows"] == 100 and body["parent"] is None and len(body["segments"]) == 1
    assert body["placements"][0]["tier"] == "local"


def test_export_writes_one_parquet_file(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "export.parquet"
    assert main(["data", "--root", str(root), "export", "samples", str(out)]) == 0
    table = pq.read_table(out)
    assert table.num_rows == 2100
    assert table.equals(ScalableStorage(root).read())


def test_verify_passes_then_names_the_corrupt_file(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "--root", str(root), "verify"]) == 0
    assert "samples: ok" in capsys.readouterr().out
    [parquet] = list((root / "parquet" / "samples").glob("*.parquet"))
    data = bytearray(parquet.read_bytes())
    data[100] ^= 0x01
    parquet.write_bytes(bytes(data))
    assert main(["data", "--root", str(root), "verify"]) == 1
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and str(parquet) in err
    # a read of the golden version touches only the SQLite blob: still fine
    assert main(["data", "--root", str(root), "verify", "--version", "golden"]) == 0


def test_tag_and_gc(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "--root", str(root), "tag", "samples", "release"]) == 0
    assert main(["data", "--root", str(root), "gc", "samples", "--keep-last", "1"]) == 0
    assert "dropped 0 version(s)" in capsys.readouterr().out  # both versions are tagged


def test_errors_are_one_line_with_exit_2(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "--root", str(root), "show", "samples", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "golden" in err and "Traceback" not in err
    assert main(["data", "--root", str(root / "missing"), "list"]) == 2
