"""Canonical JSON (RFC 8785, the JSON Canonicalization Scheme) and content hashes.

A configuration is named by the sha256 of its canonical form, so the form must be the same
on every machine and in every language that checks a signature. RFC 8785 fixes it: object
keys sorted, no whitespace, UTF-8, strings escaped as ECMAScript's ``JSON.stringify`` does,
and numbers written as ECMAScript's ``Number.prototype.toString`` writes them (``1e+21``,
``0.000001``, ``1e-7``, ``4.5``; an integral float such as ``2.0`` is ``2``). Python's own
``json.dumps`` differs only in that last point, so numbers are formatted here.

Limits, by design of the values a configuration holds: keys are sorted by code point, which
equals RFC 8785's UTF-16 order for every key outside the astral planes; integers are written
exactly (RFC 8785 would round those beyond 2**53 through a double); NaN and infinities are
refused, as JSON has no spelling for them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from system0.errors import InvalidArgument


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of a JSON value (dict, list, str, number, bool, None).

    Raises :class:`ValueError` for NaN or infinity and :class:`TypeError` for a value JSON
    cannot hold.
    """
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts).encode("utf-8")


def content_hash(canonical: bytes) -> str:
    """``"sha256:<hex>"`` of canonical bytes: the id of what they encode."""
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def _write(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, float):
        out.append(format_number(value))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, key in enumerate(sorted(value)):
            if not isinstance(key, str):
                raise InvalidArgument(
                    f"object key {key!r} is a {type(key).__name__}; keys must be str"
                )
            if i:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _write(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise InvalidArgument(f"{type(value).__name__} {value!r} is not a JSON value")


def format_number(x: float) -> str:
    """``x`` as ECMAScript's ``Number.prototype.toString`` writes it (RFC 8785 section 3.2.2.3)."""
    if not math.isfinite(x):
        raise InvalidArgument(f"{x!r} has no JSON form; use a finite number")
    if x == 0:
        return "0"  # also for -0.0
    sign = "-" if x < 0 else ""
    # repr() gives the shortest digits that round-trip, as ECMAScript requires.
    _, digit_tuple, exponent = Decimal(repr(abs(x))).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple))
    k = len(digits)
    n = k + exponent  # the value is 0.<digits> * 10**n
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        body = f"{mantissa}e{'+' if e > 0 else '-'}{abs(e)}"
    return sign + body


__all__ = ["canonical_json", "content_hash", "format_number"]
