"""The contract suite: a generated corpus of malformed and extreme game states, sent through an
engine serving the candidate, each refused with reason codes and none of them a crash.

The corpus (:func:`contract_corpus`, fixed by a seed) holds, for a valid state:

* every bounded leaf of ``contract.RANGES`` one ulp outside each bound, far outside, NaN,
  infinite, a string, a bool and null, each refused; when the rule is a range, with exactly
  ``greater_than_equal:{path}`` / ``less_than_equal:{path}``, otherwise with a reason on the path;
* every bounded leaf exactly at each bound, and all of them at once: admitted, and the model
  must answer finite probabilities on them (the extremes a client may legally send);
* each required field missing, an unknown field, unknown and too many items, bad champion
  names and timestamps;
* malformed bytes: invalid and truncated JSON, non-object JSON, seeded random bytes, a cut
  msgpack map; and the valid states again as JSON bytes.

A case that raises anything but :class:`~system0.interfaces.inference_engine.InvalidRequest`
is a crash, and fails the suite with the case named.
"""

from __future__ import annotations

import copy
import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from system0.data import contract
from system0.game.contract import state_validator
from system0.game.heuristic import heuristic_probabilities
from system0.interfaces.inference_engine import InferenceEngine, InvalidRequest
from system0.interfaces.model_interface import AIModelInterface
from system0.testing.results import Check, SuiteResult
from system0.testing.states import match_states

__all__ = ["ContractCase", "contract_corpus", "contract_suite"]

BUDGET_S = 5.0


@dataclass(frozen=True, slots=True)
class ContractCase:
    """One request; ``expect``: None for a case that must be admitted, else the reasons it
    must be refused with (``exact``) or a path one of its reasons must name."""

    label: str
    request: Any
    expect: frozenset[str] | None
    exact: bool = True


def _set(state: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(state)
    head, _, leaf = path.partition(".")
    if leaf:
        out[head][leaf] = value
    else:
        out[head] = value
    return out


def contract_corpus(seed: int = 15) -> list[ContractCase]:
    """The generated corpus (see the module docs); the same seed gives the same cases."""
    rng = np.random.default_rng(seed)
    base = match_states(1, seed)[0]
    cases: list[ContractCase] = []
    every_lo, every_hi = copy.deepcopy(base), copy.deepcopy(base)
    for path, (lo, hi) in sorted(contract.RANGES.items()):
        below, above = f"greater_than_equal:{path}", f"less_than_equal:{path}"
        for value, reason in (
            (math.nextafter(lo, -math.inf), below),
            (math.nextafter(hi, math.inf), above),
            (lo - 1e300, below),
            (hi + abs(hi) * 10 + 1, above),
            (-(10**30), below),
            (10**30, above),
        ):
            cases.append(
                ContractCase(f"{path}={value!r}", _set(base, path, value), frozenset([reason]))
            )
        for bad in (math.nan, math.inf, -math.inf, "12", True, None):
            cases.append(
                ContractCase(f"{path}={bad!r}", _set(base, path, bad), frozenset([path]), False)
            )
        for value in (lo, hi, float(rng.uniform(lo, hi))):
            cases.append(
                ContractCase(f"{path}={value!r} (in range)", _set(base, path, value), None)
            )
        every_lo, every_hi = _set(every_lo, path, lo), _set(every_hi, path, hi)
    cases.append(ContractCase("every bounded leaf at its low bound", every_lo, None))
    cases.append(ContractCase("every bounded leaf at its high bound", every_hi, None))
    for field in contract.GAME_STATE_FIELDS:
        if field in contract.GAME_STATE_OPTIONAL:
            continue
        gone = {k: v for k, v in base.items() if k != field}
        cases.append(ContractCase(f"{field} missing", gone, frozenset([f"missing:{field}"])))
    cases.append(
        ContractCase(
            "unknown field", {**base, "wallhack": 1}, frozenset(["extra_forbidden:wallhack"])
        )
    )
    items = list(contract.ITEM_VOCABULARY)
    too_many = [items[i % len(items)] for i in range(contract.MAX_INVENTORY + 1)]
    for label, state in (
        ("unknown item", {**base, "inventory": ["infinity_gauntlet"]}),
        ("too many items", {**base, "inventory": too_many}),
        ("empty champion", {**base, "champion": ""}),
        ("champion too long", {**base, "champion": "x" * (contract.MAX_CHAMPION + 1)}),
        ("timestamp not a time", {**base, "timestamp": "yesterday"}),
        ("timestamp before the range", {**base, "timestamp": "1800-01-01T00:00:00Z"}),
        ("position not an object", {**base, "position": [0.5, 0.5]}),
        ("cooldowns not an object", {**base, "cooldowns": 3}),
    ):
        field = "inventory" if "item" in label else label.split()[0]
        if label.startswith("empty") or "too long" in label:
            field = "champion"
        cases.append(ContractCase(label, state, frozenset([field]), False))
    text = json.dumps(base).encode()
    for label, raw in (
        ("invalid JSON", b"{health: 1}"),
        ("truncated JSON", text[: len(text) // 2]),
        ("empty bytes", b""),
        ("JSON array", b"[]"),
        ("JSON number", b"42"),
        ("JSON string", b'"state"'),
        ("cut msgpack map", b"\x89\xa6health"),
        ("random bytes", rng.integers(0, 256, 64, dtype=np.uint8).tobytes()),
    ):
        cases.append(ContractCase(label, raw, frozenset(), False))
    # the valid extremes once more, as the JSON bytes a client sends
    for case in list(cases):
        if case.expect is None:
            cases.append(
                ContractCase(f"{case.label} as JSON", json.dumps(case.request).encode(), None)
            )
    return cases


def _judge(case: ContractCase, reasons: tuple[str, ...]) -> bool:
    if case.expect is None or not reasons:
        return False
    if case.exact:
        return set(reasons) == set(case.expect)
    if not case.expect:
        return True  # a root-level failure: any reason code will do
    return any(
        r.partition(":")[2].split(".")[0] in {p.split(".")[0] for p in case.expect} for r in reasons
    )


def contract_suite(model: AIModelInterface, seed: int = 15) -> SuiteResult:
    corpus = contract_corpus(seed)
    bad_cases = [c for c in corpus if c.expect is not None]
    crashes: list[str] = []
    unrefused: list[str] = []
    wrong: list[str] = []
    non_finite: list[str] = []
    codes: Counter[str] = Counter()
    with InferenceEngine(
        model,
        validator=state_validator(),
        fallback=heuristic_probabilities,
        name="gate-contract",
        max_wait=0.0,
    ) as engine:
        for case in corpus:
            try:
                result = engine.infer(case.request, BUDGET_S)
            except InvalidRequest as exc:
                codes.update(r.partition(":")[0] for r in exc.reasons)
                if case.expect is None:
                    wrong.append(f"{case.label}: refused ({', '.join(exc.reasons)}) but valid")
                elif not _judge(case, exc.reasons):
                    want = ", ".join(sorted(case.expect)) or "any reason"
                    wrong.append(f"{case.label}: reasons {list(exc.reasons)}, expected {want}")
                continue
            except Exception as exc:
                crashes.append(f"{case.label}: {type(exc).__name__}: {exc}")
                continue
            if case.expect is not None:
                unrefused.append(case.label)
            elif result.fallback or not np.isfinite(result.outputs).all():
                non_finite.append(f"{case.label}: {result.reason or 'non-finite outputs'}")
        atomic = _tick_refused(engine, corpus)
    checks = [
        Check("no crash", not crashes, _list(crashes, f"{len(corpus)} cases, none crashed")),
        Check(
            "malformed states refused",
            not unrefused,
            _list(unrefused, f"{len(bad_cases)} of {len(bad_cases)} refused"),
        ),
        Check(
            "reason codes", not wrong, _list(wrong, "every refusal gave the expected reason codes")
        ),
        Check(
            "valid extremes answered",
            not non_finite,
            _list(non_finite, f"{len(corpus) - len(bad_cases)} in-range extremes: finite answers"),
        ),
        Check("a tick with one bad state is refused whole", atomic[0], atomic[1]),
    ]
    return SuiteResult(
        "contract",
        checks,
        {
            "cases": len(corpus),
            "refused": len(bad_cases),
            "reason_codes": dict(sorted(codes.items())),
        },
    )


def _tick_refused(engine: InferenceEngine, corpus: list[ContractCase]) -> tuple[bool, str]:
    good = [c.request for c in corpus if c.expect is None][:8]
    bad = next(c for c in corpus if c.expect)
    before = engine.stats.submitted
    try:
        engine.submit_many([*good, bad.request], BUDGET_S)
    except InvalidRequest as exc:
        ok = exc.index == len(good) and engine.stats.submitted == before
        return ok, f"refused at index {exc.index} with nothing queued ({exc.reasons[:2]})"
    except Exception as exc:
        return False, f"crashed: {type(exc).__name__}: {exc}"
    return False, f"a tick holding {bad.label!r} was queued"


def _list(items: list[str], ok: str, most: int = 5) -> str:
    if not items:
        return ok
    more = f" (+{len(items) - most} more)" if len(items) > most else ""
    return "; ".join(items[:most]) + more
