"""One error model: argument errors are InvalidArgument, I/O failures are typed by their kind.

The I/O cases use the real failures: ``/dev/full`` for a full disk, a child process running as
an unprivileged user for a refused permission, missing paths and directories.
"""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import system0
from system0 import errors
from system0.core.config.canonical import canonical_json
from system0.game.policy import load_policy
from system0.game.simulator import MatchSimulator
from system0.run_folder import MANIFEST, read_manifest
from system0.security.key_file import KeyFileProvider


@pytest.mark.parametrize(
    "call",
    [
        lambda: MatchSimulator(1, tick_seconds=0),
        lambda: MatchSimulator(1, champions=["nobody"]),
        lambda: load_policy("fortran"),
        lambda: canonical_json({"x": math.nan}),
        lambda: canonical_json({1: "key of the wrong kind"}),
    ],
)
def test_argument_errors_are_invalid_argument_and_still_value_errors(call: object) -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        call()  # type: ignore[operator]
    assert isinstance(info.value, system0.Error) and isinstance(info.value, ValueError)
    assert str(info.value)  # the message names the argument


def test_the_engine_errors_live_in_system0_errors() -> None:
    e = errors.InvalidRequest("bad state", ["range:hp"], index=3)
    assert (e.reasons, e.index) == (("range:hp",), 3)
    assert isinstance(e, errors.ValidationError)
    assert issubclass(errors.NonFiniteOutput, system0.Error)


def _os_error(action: object) -> OSError:
    try:
        action()  # type: ignore[operator]
    except OSError as e:
        return e
    raise AssertionError("the operation did not fail")


def _fill_dev_full() -> None:
    with open("/dev/full", "wb") as f:
        f.write(b"x" * 4096)
        f.flush()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_a_full_disk_is_unavailable_not_a_data_error() -> None:
    e = errors.from_os_error(_os_error(_fill_dev_full), "write /dev/full")
    assert type(e) is errors.Unavailable
    assert "No space left" in str(e) and "/dev/full" in str(e)
    assert not isinstance(e, errors.CryptoError | errors.IntegrityError)


def test_a_missing_file_and_a_directory_are_told_apart(tmp_path: Path) -> None:
    missing = _os_error(lambda: (tmp_path / "absent").read_bytes())
    assert type(errors.from_os_error(missing, "read it")) is errors.NotFound
    folder = _os_error(lambda: tmp_path.read_bytes())
    assert type(errors.from_os_error(folder, "read it")) is errors.InvalidArgument


def test_an_unreadable_key_file_is_not_reported_as_a_crypto_error(tmp_path: Path) -> None:
    # A directory where the key file should be: the read fails for a reason that is not
    # the key's, so it must not be blamed on the key.
    provider = KeyFileProvider(tmp_path / "key")
    _, params = provider.create_master_key()
    (tmp_path / "key").unlink()
    (tmp_path / "key").mkdir()
    with pytest.raises(errors.InvalidArgument, match="read key file"):
        provider.master_key(params)


def test_a_permission_refused_is_access_denied(tmp_path: Path) -> None:
    secret = tmp_path / MANIFEST
    secret.write_text("{}")
    secret.chmod(0o600)
    tmp_path.chmod(0o755)
    # Run the read in a real child process as an unprivileged user (root reads anything).
    # Everything is imported first: the unprivileged user may not read the interpreter's files.
    probe = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from system0 import errors\n"
        "from system0.run_folder import read_manifest\n"
        "if os.getuid() == 0:\n"
        "    os.setgid(65534); os.setuid(65534)\n"
        "try:\n"
        "    read_manifest(Path(sys.argv[1]))\n"
        "except errors.Error as e:\n"
        "    print(type(e).__name__)\n"
    )
    if os.getuid() != 0:
        secret.chmod(0)
    out = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if out.returncode != 0 and "PermissionError" in out.stderr and "setuid" in out.stderr:
        pytest.skip("cannot drop privileges here")
    assert out.stdout.strip() == "AccessDenied", out.stderr


def test_a_tampered_manifest_is_still_an_integrity_error(tmp_path: Path) -> None:
    (tmp_path / MANIFEST).write_bytes(b"\xff\xfe not json")
    with pytest.raises(errors.IntegrityError, match="not a readable manifest"):
        read_manifest(tmp_path)
