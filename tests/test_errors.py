"""The error hierarchy: one root, typed attributes, builtin bases where a value was bad."""

import pytest

import system0
from system0 import errors


@pytest.mark.parametrize("name", errors.__all__)
def test_every_error_derives_from_the_root(name: str) -> None:
    assert issubclass(getattr(errors, name), system0.Error)


def test_overloaded_carries_depth_and_retry_hint() -> None:
    e = errors.Overloaded("queue 'requests' is full (1024 items); retry later", 1024, 0.05)
    assert (e.depth, e.retry_after) == (1024, 0.05)
    assert "retry" in str(e)


def test_value_errors_stay_value_errors() -> None:
    assert issubclass(errors.ValidationError, ValueError)
    assert issubclass(errors.CardinalityError, ValueError)
    assert issubclass(errors.DeadlineExceeded, TimeoutError)
