"""Errors raised by the Rust core are typed by what went wrong: an argument out of range is
``InvalidArgument`` (a ``ValueError`` too), a missing file is ``NotFound``, never a
``CryptoError`` or an ``IntegrityError``; ``except system0.Error`` catches each of them."""

from __future__ import annotations

from pathlib import Path

import pytest

import system0
from system0 import _core, errors
from system0.core import telemetry
from system0.core.error_handling import BoundedQueue, ConcurrencyLimiter, TokenBucket


@pytest.mark.parametrize(
    "build",
    [
        lambda: BoundedQueue(0, name="bad-capacity"),
        lambda: BoundedQueue(4, "sideways", name="bad-policy"),
        lambda: ConcurrencyLimiter(0, name="bad-limit"),
        lambda: BoundedQueue(4, name="bad-timeout").get(timeout=-1.0),
        lambda: TokenBucket(rate=10, name="bad-timeout-b").acquire(timeout=float("nan")),
    ],
)
def test_argument_errors_are_invalid_argument(build: object) -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        build()  # type: ignore[operator]
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, system0.Error)
    assert str(caught.value)  # the message names the argument


def test_metric_label_misuse_is_invalid_argument() -> None:
    c = telemetry.counter("system0_test_error_kinds_total", labels=("route",))
    with pytest.raises(errors.InvalidArgument, match="needs a value for label 'route'"):
        c.labels(path="/x")


def test_a_missing_keyring_file_is_not_found_not_a_crypto_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent.keyring"
    with pytest.raises(errors.NotFound, match=r"absent\.keyring") as caught:
        _core.Keyring.read_provider_params(missing)
    assert not isinstance(caught.value, errors.CryptoError)
    assert "check the path" in str(caught.value)
