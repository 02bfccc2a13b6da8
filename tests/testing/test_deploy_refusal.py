"""No deploy without a pass, end to end: ``system0 gate`` on a registry version folder writes a
signed report, and ``require_passing_report``, called as the deploy path calls it, accepts
exactly that report for exactly that version and refuses everything else, naming the check."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cli_run import run_cli
from gate_variants import moved_bias, shipped_mlp

from system0.core.config.signing import generate_keypair, load_public_key
from system0.errors import GateRefused
from system0.interfaces.model_interface import save_mlp
from system0.testing import GateReport, require_passing_report

CONFIG_HASH = "sha256:" + "ab" * 32


def publish(root: Path, version: str, mlp: object, config_hash: str | None) -> Path:
    """A registry version folder as helper registry's ModelRegistry.publish lays it out."""
    folder = root / "policy" / version
    folder.mkdir(parents=True)
    written = Path(save_mlp(mlp, folder))  # type: ignore[arg-type]
    written.rename(folder / "weights.safetensors")
    content_hash = mlp.content_hash()  # type: ignore[attr-defined]
    meta = {
        "name": "policy",
        "version": version,
        "content_hash": content_hash,
        "config_hash": config_hash,
        "created": "2026-12-07T12:00:00+00:00",
    }
    (folder / "version.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    """(version folder, its report, the public key, a work dir): the gate run once."""
    work = tmp_path_factory.mktemp("deploy")
    private, public = generate_keypair(work / "gate.key")
    folder = publish(work / "registry", "1", shipped_mlp(), CONFIG_HASH)
    done = run_cli(
        work, "gate", str(folder), "--signing-key", str(private), "--out", "out", "--no-progress"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gate PASS" in done.stdout
    assert "[" not in done.stderr  # no progress bar when stderr is not a terminal
    return folder, work / "out" / "gate-report.json", public, work


def version_hashes(folder: Path) -> tuple[str, str | None]:
    meta = json.loads((folder / "version.json").read_text())
    return meta["content_hash"], meta["config_hash"]


def test_the_gated_version_deploys(gated: tuple[Path, Path, Path, Path]) -> None:
    folder, report_path, public, _ = gated
    content_hash, config_hash = version_hashes(folder)
    report = require_passing_report(report_path, content_hash, config_hash, public)
    assert report.passed and report.model_hash == content_hash
    assert report.config_hash == CONFIG_HASH  # taken from version.json
    # the key may be given as an object or as its 32 raw bytes too
    key = load_public_key(public)
    assert require_passing_report(report_path, content_hash, config_hash, key).passed
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert require_passing_report(report_path, content_hash, config_hash, raw).passed
    assert (report_path.parent / "gate-report.html").read_text().count("<svg") >= 4


def refusal(*args: object) -> GateRefused:
    with pytest.raises(GateRefused) as info:
        require_passing_report(*args)  # type: ignore[arg-type]
    return info.value


def test_no_report_blocks_the_deploy(gated: tuple[Path, Path, Path, Path]) -> None:
    folder, _, public, work = gated
    h, c = version_hashes(folder)
    for missing in (None, work / "nowhere.json"):
        err = refusal(missing, h, c, public)
        assert err.check == "no report" and str(err).startswith("no report")
    junk = work / "junk.json"
    junk.write_text("{}")
    assert refusal(junk, h, c, public).check == "no report"


def test_a_tampered_report_blocks_the_deploy(gated: tuple[Path, Path, Path, Path]) -> None:
    folder, report_path, public, work = gated
    h, c = version_hashes(folder)
    doc = json.loads(report_path.read_text())
    doc["body"]["suites"][3]["data"]["candidate"]["latency_p50_us"] = 1.0  # a nicer figure
    forged = work / "forged.json"
    forged.write_text(json.dumps(doc))
    err = refusal(forged, h, c, public)
    assert err.check == "signature invalid" and "changed after it was signed" in str(err)
    doc = json.loads(report_path.read_text())
    doc["signature"] = None
    forged.write_text(json.dumps(doc))
    assert "unsigned" in str(refusal(forged, h, c, public))
    doc["signature"] = "trust me"
    forged.write_text(json.dumps(doc))
    assert refusal(forged, h, c, public).check == "signature invalid"


def test_a_report_signed_by_another_key_blocks_the_deploy(
    gated: tuple[Path, Path, Path, Path],
) -> None:
    folder, report_path, _, work = gated
    h, c = version_hashes(folder)
    _, stranger = generate_keypair(work / "stranger.key")
    err = refusal(report_path, h, c, stranger)
    assert err.check == "signature invalid" and "not by the trusted key" in str(err)


def test_a_report_for_another_version_blocks_the_deploy(
    gated: tuple[Path, Path, Path, Path],
) -> None:
    folder, report_path, public, work = gated
    other = publish(work / "registry", "2", moved_bias(shipped_mlp()), CONFIG_HASH)
    h2, c2 = version_hashes(other)
    err = refusal(report_path, h2, c2, public)
    h1, _ = version_hashes(folder)
    assert err.check == "another model"
    assert str(err).startswith(f"report for another model {h1}") and h2 in str(err)
    h, _ = version_hashes(folder)
    err = refusal(report_path, h, "sha256:" + "cd" * 32, public)
    assert err.check == "another config"


def test_a_failed_gate_blocks_the_deploy(gated: tuple[Path, Path, Path, Path]) -> None:
    _, _, public, work = gated
    bad = publish(work / "registry", "3", moved_bias(shipped_mlp()), None)
    private = work / "gate.key"
    done = run_cli(
        work, "gate", str(bad), "--signing-key", str(private), "--out", "bad", "--no-progress"
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "golden: FAILED" in done.stdout and "rows off tolerance" in done.stdout
    h, c = version_hashes(bad)
    err = refusal(work / "bad" / "gate-report.json", h, c, public)
    assert err.check == "failed" and str(err).startswith("failed: golden")


def test_a_tampered_version_folder_is_not_gated(gated: tuple[Path, Path, Path, Path]) -> None:
    folder, _, _, work = gated
    copy = work / "registry" / "policy" / "9"
    shutil.copytree(folder, copy)
    meta = json.loads((copy / "version.json").read_text())
    meta["content_hash"] = "0" * 64
    (copy / "version.json").write_text(json.dumps(meta))
    done = run_cli(work, "gate", str(copy), "--out", "x", "--no-progress")
    assert done.returncode == 2
    assert "has content hash" in done.stderr and "0" * 64 in done.stderr


def test_a_report_survives_its_file_form(gated: tuple[Path, Path, Path, Path]) -> None:
    _, report_path, public, _ = gated
    report = GateReport.read(report_path)
    assert GateReport.from_json(report.to_json()).body() == report.body()
    report.verify(public)
