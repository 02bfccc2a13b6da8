"""`system0 demo` runs end to end into a run folder, which the other commands open as it is."""

import importlib.util
import json
import stat
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from cli_run import run_cli

from system0.data.storage import ScalableStorage

SMALL = ("--matches", "2", "--ticks", "20", "--tick-rate", "1000", "--no-progress")


def _cli(cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> Any:
    return run_cli(cwd, *args, env=env, check=check)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One small demo run (with a few corrupted records), shared by the tests below."""
    cwd = tmp_path_factory.mktemp("demo")
    log = cwd / "demo.jsonl"
    out = _cli(cwd, "demo", *SMALL, "--corrupt", "0.1", "--log", str(log)).stdout
    runs = list((cwd / "system0-runs").iterdir())
    assert len(runs) == 1
    return runs[0], out


def test_demo_report_and_run_folder(run: tuple[Path, str]) -> None:
    folder, out = run
    for needle in (
        "throughput",
        "p50 / p99 / p99.9",
        "budget breaches",
        "rejections",
        "batch sizes",
        "fallback answers",
        "keyring",
        "generated key file",
        "flight recorder",
    ):
        assert needle in out
    assert "240 submitted" in out and "inclusion proof verified" in out
    invalid = int(out.split("overloaded, ")[1].split(" invalid")[0])
    assert 5 < invalid < 60  # about 10 % of 240 records were corrupted and refused
    lines = (folder.parent.parent / "demo.jsonl").read_text().splitlines()
    assert len(lines) == 40 and '"trace_id"' in lines[0]
    page = (folder / "report.html").read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "<circle" in page
    key = folder / "keys" / "master.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    m = json.loads((folder / "run.json").read_text())
    assert folder.name == m["run_id"] and m["run_id"].endswith(m["config"]["hash"][7:15])
    assert m["ledger"]["size"] == m["ledger"]["checkpoint"]["size"]
    assert m["keys"]["provider"] == "keyfile" and m["recording"]["mode"] == "complete"
    with ScalableStorage(folder / "data") as s:
        samples = s.read("samples", version=m["run_id"])
        decisions = s.read("decisions", version=m["run_id"])
    assert samples.num_rows == 240  # every champion every tick, refused or not
    assert samples.schema.metadata[b"system0.contract"] == b"TrainingSample"
    kinds = set(samples.column("action").combine_chunks().field("kind").to_pylist())
    assert kinds <= {"move", "attack", "cast", "buy"}
    # every answered request is one recorded decision, with its match, tick and champion (on a
    # loaded machine a few are refused as overloaded or expire: those never ran)
    answered = int(out.split(" submitted, ")[1].split(" answered")[0])
    assert answered > 240 - invalid - 24
    assert decisions.num_rows == answered == m["recording"]["decisions"]
    assert decisions.column("match").null_count == 0
    assert set(decisions.column("config_hash").to_pylist()) == {m["config"]["hash"]}
    assert set(decisions.column("model_hash").to_pylist()) == {m["policy"]["hash"]}
    assert isinstance(decisions.schema.field("features").type, pa.FixedSizeListType)


def test_cli_opens_the_run_folder_as_it_is(run: tuple[Path, str]) -> None:
    folder, _ = run
    listed = _cli(folder, "data", "--root", str(folder / "data"), "list").stdout
    assert "samples" in listed and "decisions" in listed and folder.name in listed
    verified = json.loads(_cli(folder, "audit", "verify", str(folder / "audit")).stdout)
    assert verified["ok"] and verified["signatures_checked"]
    shown = _cli(folder, "config", "show", str(folder / "config.yaml")).stdout
    m = json.loads((folder / "run.json").read_text())
    assert shown.startswith(f"# system0 configuration {m['config']['hash']}")
    replayed = _cli(folder, "replay", str(folder), "--report", str(folder.parent / "r.jsonl"))
    assert (
        "0 differ" in replayed.stdout and "the run's copy is the shipped policy" in replayed.stdout
    )
    rows = [json.loads(x) for x in (folder.parent / "r.jsonl").read_text().splitlines()]
    assert len(rows) == m["recording"]["decisions"] and all(r["identical"] for r in rows)
    one = _cli(folder, "replay", str(folder), "--match", "1").stdout
    assert "(match 1)" in one and "0 differ" in one
    bad = _cli(folder, "replay", str(folder), "--match", "7", check=False)
    assert bad.returncode == 2 and "matches 0..1" in bad.stderr


def test_demo_logs_no_html_and_bad_options(tmp_path: Path) -> None:
    _cli(tmp_path, "demo", *SMALL, "--no-html", "--out", "r1", "--record", "off")
    assert (tmp_path / "r1" / "run.json").exists() and not (
        tmp_path / "r1" / "report.html"
    ).exists()
    again = _cli(tmp_path, "demo", *SMALL, "--out", "r1", check=False)
    assert again.returncode == 2 and "holds one run" in again.stderr
    off = _cli(tmp_path, "replay", "r1", check=False)
    assert off.returncode == 2 and "nothing was recorded" in off.stderr
    for flags, needle in (
        (("--budget", "0"), "--budget"),
        (("--out", "x.html"), "run folder"),
        (("--record", "sampled", "--record-rate", "0"), "--record-rate"),
    ):
        bad = _cli(tmp_path, "demo", *flags, check=False)
        assert bad.returncode == 2 and needle in bad.stderr


def test_sampled_recording_keeps_whole_batches_and_replays(tmp_path: Path) -> None:
    out = _cli(
        tmp_path, "demo", *SMALL, "--out", "s", "--record", "sampled", "--record-rate", "0.5"
    ).stdout
    m = json.loads((tmp_path / "s" / "run.json").read_text())
    rec = m["recording"]
    assert rec["mode"] == "sampled" and rec["batches"] > 0 and rec["skipped_batches"] > 0
    assert "sampled at rate 0.5" in out
    replayed = _cli(tmp_path, "replay", "s").stdout
    assert f"replayed {rec['decisions']} decisions" in replayed and "0 differ" in replayed


def test_demo_with_a_signed_config_and_engine_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("schema_version: 2\ninference:\n  max_batch: 8\n  latency_budget_ms: 40\n")
    _cli(tmp_path, "config", "keygen", str(tmp_path / "k"))
    _cli(tmp_path, "config", "sign", str(cfg), "--key", str(tmp_path / "k"))
    untrusted = _cli(tmp_path, "demo", *SMALL, "--config", str(cfg), "--out", "u", check=False)
    assert untrusted.returncode == 2 and "no trusted keys" in untrusted.stderr
    trust = ("--config", str(cfg), "--trusted", str(tmp_path / "k.pub"))
    _cli(tmp_path, "demo", *SMALL, *trust, "--out", "a")
    m = json.loads((tmp_path / "a" / "run.json").read_text())
    assert m["engine"]["max_batch"] == 8 and m["config"]["signed_by"].startswith("ed25519:")
    # the signature covers the resolved form, which the run's config.yaml holds
    ok = _cli(tmp_path, "config", "verify", "a/config.yaml", "--trusted", str(tmp_path / "k.pub"))
    assert "signature OK" in ok.stdout
    _cli(tmp_path, "demo", *SMALL, *trust, "--max-batch", "4", "--out", "b")
    m = json.loads((tmp_path / "b" / "run.json").read_text())
    assert m["engine"]["max_batch"] == 4 and m["config"]["overrides"] == ["inference.max_batch=4"]
    assert m["config"]["signature"] is None  # a fork is not what was signed
    assert "lineage" in (tmp_path / "b" / "config.yaml").read_text()


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_demo_runs_and_replays_on_framework_backends(tmp_path: Path, backend: str) -> None:
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} absent: pip install 'system0[{backend}]'")
    device = ("--device", "cpu") if backend == "torch" else ()
    out = _cli(tmp_path, "demo", *SMALL, "--backend", backend, *device, "--out", "r").stdout
    assert f"{backend} (" in out and (tmp_path / "r" / "report.html").exists()
    if backend == "torch":  # bit-identical on the CPU backends (jax: not promised)
        replayed = _cli(tmp_path, "replay", "r").stdout
        assert "on torch (cpu)" in replayed and " 0 differ" in replayed
