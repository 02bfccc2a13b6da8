"""``system0 config ...`` on the command line: exit codes, output, errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from system0.cli import main
from system0.core.config import AIConfig, load_from_yaml


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("SYSTEM0_CONFIG_TRUSTED_KEYS", raising=False)
    path = tmp_path / "system0.yaml"
    path.write_text("schema_version: 2\ninference: {max_batch: 16}\n", encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["config", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_keygen_sign_verify_through_the_real_command(tmp_path: Path, config_file: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SYSTEM0_CONFIG_TRUSTED_KEYS"}

    def system0(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "system0.cli", "config", *argv],
            capture_output=True,
            text=True,
            env=env,
        )

    key = tmp_path / "ops"
    assert system0("keygen", str(key)).returncode == 0
    signed = system0("sign", str(config_file), "--key", str(key))
    assert signed.returncode == 0, signed.stderr
    assert load_from_yaml(config_file).content_hash in signed.stdout
    ok = system0("verify", str(config_file), "--trusted", f"{key}.pub")
    assert ok.returncode == 0 and "signature OK" in ok.stdout
    config_file.write_text("schema_version: 2\ninference: {max_batch: 17}\n", encoding="utf-8")
    bad = system0("verify", str(config_file), "--trusted", f"{key}.pub")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ") and "content changed since it was signed" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_verify_needs_trusted_keys(capsys: pytest.CaptureFixture[str], config_file: Path) -> None:
    code, _, err = run(capsys, "verify", str(config_file))
    assert code == 2 and "no trusted keys: pass --trusted" in err


def test_diff_exit_codes_and_output(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, config_file: Path
) -> None:
    fork = tmp_path / "fork.yaml"
    code, out, _ = run(
        capsys, "fork", str(config_file), "big", "inference.max_batch=64", "-o", str(fork)
    )
    assert code == 0 and "experiment 'big'" in out
    code, out, _ = run(capsys, "diff", str(config_file), str(fork))
    assert code == 1
    assert "~ inference.max_batch: 16 -> 64" in out and "1 change" in out
    code, out, _ = run(capsys, "diff", str(config_file), str(fork), "--json")
    assert code == 1
    assert json.loads(out)["changes"] == [
        {"path": "inference.max_batch", "kind": "changed", "old": 16, "new": 64}
    ]
    code, out, _ = run(capsys, "diff", str(config_file), str(config_file))
    assert code == 0 and "(no differences)" in out


def test_show_hash_and_validate(capsys: pytest.CaptureFixture[str], config_file: Path) -> None:
    expected = load_from_yaml(config_file)
    code, out, _ = run(capsys, "hash", str(config_file))
    assert (code, out.strip()) == (0, expected.content_hash)
    code, out, _ = run(capsys, "show", str(config_file), "--json")
    assert code == 0 and out.strip().encode() == expected.canonical_json()
    code, out, _ = run(capsys, "show", str(config_file), "--set", "training.seed=9")
    assert code == 0 and "seed: 9" in out and "name: cli" in out
    code, out, _ = run(capsys, "validate", str(config_file))
    assert code == 0 and "valid (schema version 2" in out
    assert AIConfig.validate_config(expected) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("schema_version: 2\ninference: {max_batch: [1\n", "malformed YAML"),
        ("schema_version: 2\ninference: {max_bach: 1}\n", "did you mean 'max_batch'?"),
        ("schema_version: 2\nmodel: {name: '${env:S0_CLI_NOPE}'}\n", "S0_CLI_NOPE is not set"),
    ],
)
def test_errors_are_one_line_prefix_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    code, out, err = run(capsys, "validate", str(path))
    assert code == 2 and out == ""
    assert err.startswith(f"error: {path}") and expected in err


def test_missing_files_are_errors_not_tracebacks(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, config_file: Path
) -> None:
    code, _, err = run(capsys, "sign", str(config_file), "--key", str(tmp_path / "nokey"))
    assert code == 2 and "cannot read private key" in err
    code, _, err = run(capsys, "hash", str(tmp_path / "absent.yaml"))
    assert code == 2 and "cannot read config" in err
