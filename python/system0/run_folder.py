"""The run folder: everything one run of the main job leaves behind, and its manifest.

Layout (``RUN`` = ``--out``, default ``./system0-runs/<run id>``)::

    RUN/run.json              the manifest (below)
    RUN/config.yaml           the effective AIConfig (loads back to the same content hash);
    RUN/config.yaml.sig       its signature, when a signed config ran unchanged
    RUN/model/policy-*.safetensors   the weights that ran (named by their content hash)
    RUN/data/                 ScalableStorage root: datasets ``samples`` and ``decisions``,
                              each one version tagged with the run id
    RUN/audit/                the audit ledger (encrypted, Merkle-hashed, signed checkpoint)
    RUN/keys/keyring          the ledger's keyring, sealed by a KeyProvider:
    RUN/keys/master.key         a generated key file (0600), when no passphrase was given
    RUN/report.html           the HTML report

so that ``system0 data --root RUN/data list``, ``system0 audit verify RUN/audit`` and
``system0 config show RUN/config.yaml`` work on it as they are. The run id is the UTC start
time and the first 8 hex digits of the config hash (``20261207T093000Z-1a2b3c4d``).

The keyring's master key comes from the passphrase in ``$SYSTEM0_RUN_PASSPHRASE`` when it is
set (Argon2id), else from a key file generated beside the keyring (mode 0600). Opening a run
reads which one sealed it from the keyring itself: a passphrase-sealed run with the variable
unset is a :class:`ConfigError` naming the variable, never a new key.

The manifest (``run.json``) names the config hash, the policy hash, the data versions and the
ledger's root and checkpoint. Its body (every field but ``ledger``) is hashed (``sealed``) and
that hash is the last ledger entry before the signed checkpoint, so an edit to the manifest,
to the ledger or to the data each breaks a check that names it (:func:`verify_manifest`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from system0.errors import ConfigError, IntegrityError, from_os_error
from system0.security.encryption import Keyring, PassphraseKeyProvider
from system0.security.key_file import KeyFileProvider
from system0.security.key_provider import KeyProvider, decode_params

__all__ = [
    "FORMAT",
    "MANIFEST",
    "PASSPHRASE_ENV",
    "RunKeys",
    "body_hash",
    "create_keys",
    "file_sha256",
    "make_run_dir",
    "open_keys",
    "read_manifest",
    "run_id",
    "write_manifest",
]

FORMAT = "system0-run"
VERSION = 1
MANIFEST = "run.json"
CONFIG = "config.yaml"
DATA = "data"
AUDIT = "audit"
KEYRING = "keys/keyring"
KEY_FILE = "keys/master.key"
REPORT = "report.html"
PASSPHRASE_ENV = "SYSTEM0_RUN_PASSPHRASE"


def run_id(config_hash: str, now: datetime | None = None) -> str:
    """``<UTC time>-<first 8 hex digits of the config hash>``."""
    t = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{t:%Y%m%dT%H%M%SZ}-{config_hash.removeprefix('sha256:')[:8]}"


def make_run_dir(out: str | os.PathLike[str] | None, rid: str) -> tuple[Path, str]:
    """Create the run folder: ``out``, or ``./system0-runs/<rid>`` (with a ``-N`` suffix when
    a run of the same second and config exists). Returns the folder and the run id (its
    name). A folder that exists and is not empty is refused: a run folder holds one run."""
    if out is not None:
        path = Path(out)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise ConfigError(
                f"{path} exists and is not an empty folder; a run folder holds one run: choose "
                "another --out (replay an existing run with 'system0 replay')"
            )
        path.mkdir(parents=True, exist_ok=True)
        return path, rid
    base = Path("system0-runs")
    for n in range(1000):
        name = rid if n == 0 else f"{rid}-{n}"
        try:
            (base / name).mkdir(parents=True)
        except FileExistsError:
            continue
        return base / name, name
    raise ConfigError(f"{base}: 1000 runs named {rid}*; remove old runs or pass --out")


# keys ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunKeys:
    """The run's keyring and how it is sealed (``description`` is said in the report)."""

    keyring: Keyring
    provider: str  # "passphrase" or "keyfile"
    description: str

    def manifest(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"provider": self.provider, "keyring": KEYRING}
        if self.provider == "passphrase":
            doc["variable"] = PASSPHRASE_ENV
        else:
            doc["file"] = KEY_FILE
        return doc


def create_keys(run: Path, env: dict[str, str] | None = None) -> RunKeys:
    """A new keyring for ``run``, sealed by the passphrase in ``$SYSTEM0_RUN_PASSPHRASE``
    when set, else by a generated key file (0600)."""
    environ = os.environ if env is None else env
    keys = run / "keys"
    keys.mkdir(mode=0o700, exist_ok=True)
    passphrase = environ.get(PASSPHRASE_ENV)
    provider: KeyProvider
    if passphrase:
        provider = PassphraseKeyProvider(passphrase)
        kind, text = "passphrase", f"passphrase from ${PASSPHRASE_ENV} (Argon2id)"
    else:
        provider = KeyFileProvider(run / KEY_FILE)
        kind = "keyfile"
        text = (
            f"generated key file {run / KEY_FILE} (mode 0600; set ${PASSPHRASE_ENV} to seal "
            "with a passphrase instead)"
        )
    return RunKeys(Keyring.create(run / KEYRING, provider), kind, text)


def open_keys(run: Path, env: dict[str, str] | None = None) -> RunKeys:
    """The keyring of an existing run, opened by the provider that sealed it (read from the
    keyring file itself, not from the manifest)."""
    from system0._core import Keyring as CoreKeyring

    path = run / KEYRING
    if not path.is_file():
        raise IntegrityError(f"{path}: the run's keyring is missing; the ledger cannot be read")
    params = bytes(CoreKeyring.read_provider_params(path))
    try:
        kind = json.loads(params).get("provider")
    except (ValueError, AttributeError):
        kind = None
    if kind == "passphrase":
        decode_params(params, "passphrase")
        passphrase = (os.environ if env is None else env).get(PASSPHRASE_ENV)
        if not passphrase:
            raise ConfigError(
                f"{path} is sealed with a passphrase: set {PASSPHRASE_ENV} to the passphrase "
                "the run was made with"
            )
        provider: KeyProvider = PassphraseKeyProvider(passphrase)
        text = f"passphrase from ${PASSPHRASE_ENV}"
    elif kind == "keyfile":
        provider = KeyFileProvider(run / KEY_FILE)
        text = f"key file {run / KEY_FILE}"
    else:
        raise IntegrityError(f"{path}: sealed by an unknown key provider {kind!r}")
    return RunKeys(Keyring.load(path, provider), kind, text)


# manifest ------------------------------------------------------------------------------------


def _canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def body_hash(manifest: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the manifest without its ``ledger`` and ``sealed`` fields."""
    body = {k: v for k, v in manifest.items() if k not in ("ledger", "sealed")}
    return "sha256:" + hashlib.sha256(_canonical(body)).hexdigest()


def write_manifest(run: Path, manifest: dict[str, Any]) -> Path:
    path = run / MANIFEST
    tmp = path.with_name(MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_manifest(run: Path) -> dict[str, Any]:
    path = run / MANIFEST
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{run}: no {MANIFEST}; not a system0 run folder") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise IntegrityError(f"{path}: not a readable manifest ({e})") from None
    except OSError as e:  # unreadable is not tampered: a permission or a device error
        raise from_os_error(e, f"read {path}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise IntegrityError(f"{path}: not a system0 run manifest (format != {FORMAT!r})")
    if doc.get("version") != VERSION:
        raise IntegrityError(
            f"{path}: manifest version {doc.get('version')!r}; this release reads {VERSION}"
        )
    return doc


def file_sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
