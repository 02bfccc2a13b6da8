"""The command line's way to open a stored keyring: ``--keyring FILE`` plus the variable that
holds its passphrase (``--passphrase-env VAR``) or env secret (``--secret-env VAR``).

Secrets travel only through the environment, never through argv (where ``ps`` shows them).
Shared by ``system0 audit verify`` and ``system0 data verify``.
"""

from __future__ import annotations

import argparse
import os

from system0.errors import ConfigError
from system0.security.encryption import EnvKeyProvider, Keyring, PassphraseKeyProvider
from system0.security.key_provider import KeyProvider


def add_keyring_arguments(parser: argparse.ArgumentParser, purpose: str) -> None:
    """Add ``--keyring``, ``--passphrase-env`` and ``--secret-env`` to ``parser``."""
    parser.add_argument("--keyring", help=f"keyring file: {purpose}")
    parser.add_argument("--passphrase-env", help="variable holding the keyring's passphrase")
    parser.add_argument("--secret-env", help="variable holding the keyring's env secret")


def _provider(args: argparse.Namespace) -> KeyProvider:
    if args.passphrase_env:
        value = os.environ.get(args.passphrase_env)
        if not value:
            raise ConfigError(
                f"environment variable {args.passphrase_env} is empty or unset; set it to the "
                "keyring's passphrase"
            )
        return PassphraseKeyProvider(value)
    if args.secret_env:
        return EnvKeyProvider(args.secret_env)
    raise ConfigError("--keyring needs --passphrase-env VAR or --secret-env VAR")


def keyring_from_args(args: argparse.Namespace) -> Keyring | None:
    """The keyring named by ``--keyring`` (None when not given)."""
    if not args.keyring:
        if args.passphrase_env or args.secret_env:
            raise ConfigError("--passphrase-env / --secret-env need --keyring FILE")
        return None
    return Keyring.load(args.keyring, _provider(args))


__all__ = ["add_keyring_arguments", "keyring_from_args"]
