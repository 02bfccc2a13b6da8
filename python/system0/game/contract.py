"""The engine's request contract for the demo policy: a GameState record, or a feature row.

:func:`state_validator` returns the ``validator`` an ``InferenceEngine`` takes. A request is a
GameState record (a dict, or a model with ``model_dump``) or a feature row in the
documented layout (``len(FEATURE_NAMES)`` numbers).
A record is checked against the GameState contract: with ``system0.data.models`` present, by
its pydantic model (each error's type and location become a reason code such as
``greater_than_equal:health``); otherwise by the same rules written out here (finite numbers,
position in [0, 1], non-negative health, mana, cooldowns and vision, no extra fields). Every
rule broken is reported at once, so a producer fixes its records in one round.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from system0.data.models import ABILITY_SLOTS as SLOTS
from system0.data.serialization import FEATURE_NAMES, features_from_records
from system0.errors import ValidationError
from system0.interfaces.inference_engine import InvalidRequest

__all__ = ["check_state", "state_validator"]

_FIELDS = {
    "schema_version",
    "timestamp",
    "champion",
    "position",
    "health",
    "mana",
    "cooldowns",
    "inventory",
    "vision_score",
    "gold_advantage",
}
_REQUIRED = _FIELDS - {"schema_version"}


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def check_state(state: dict[str, Any]) -> list[str]:
    """Reason codes for every rule ``state`` breaks (empty when it keeps the contract)."""
    reasons = [f"missing:{k}" for k in sorted(_REQUIRED - state.keys())]
    reasons += [f"extra_forbidden:{k}" for k in sorted(state.keys() - _FIELDS)]

    def num(path: str, v: Any, lo: float | None = None, hi: float | None = None) -> None:
        if not _number(v):
            reasons.append(f"type:{path}")
        elif (lo is not None and v < lo) or (hi is not None and v > hi):
            reasons.append(f"range:{path}")

    pos = state.get("position")
    if isinstance(pos, dict):
        num("position.x", pos.get("x"), 0.0, 1.0)
        num("position.y", pos.get("y"), 0.0, 1.0)
    elif "position" in state:
        reasons.append("type:position")
    for key in ("health", "mana", "vision_score"):
        if key in state:
            num(key, state[key], 0.0)
    if "gold_advantage" in state:
        num("gold_advantage", state["gold_advantage"])
    cds = state.get("cooldowns")
    if isinstance(cds, dict):
        for slot in SLOTS:
            num(f"cooldowns.{slot}", cds.get(slot), 0.0)
    elif "cooldowns" in state:
        reasons.append("type:cooldowns")
    champ = state.get("champion")
    if "champion" in state and not (isinstance(champ, str) and 1 <= len(champ) <= 32):
        reasons.append("type:champion")
    return reasons


def _pydantic_reasons(model: Any, state: dict[str, Any]) -> list[str]:
    from pydantic import ValidationError as PydanticError

    try:
        model.model_validate(state)
    except PydanticError as exc:
        return [f"{e['type']}:{'.'.join(str(p) for p in e['loc'])}" for e in exc.errors()]
    return []


def state_validator(*, use_data_models: bool = True) -> Callable[[Any], npt.NDArray[np.float32]]:
    """A validator for ``InferenceEngine(validator=...)`` over GameState records and rows."""
    model: Any = None
    if use_data_models and importlib.util.find_spec("system0.data.models") is not None:
        # imported by name: the data contracts ship in another part of system0
        models = importlib.import_module("system0.data.models")
        model = getattr(models, "GameState", None)

    def validate(request: Any) -> npt.NDArray[np.float32]:
        if hasattr(request, "model_dump"):
            request = request.model_dump(mode="json")
        if isinstance(request, dict):
            reasons = (
                _pydantic_reasons(model, request) if model is not None else check_state(request)
            )
            if reasons:
                raise InvalidRequest(
                    f"GameState breaks its contract: {', '.join(reasons)}", reasons
                )
            try:  # the codec featurizes, and refuses what the rules above do not cover
                features: npt.NDArray[np.float32] = features_from_records([request])[0]
            except ValidationError as exc:
                raise InvalidRequest(str(exc), ("codec",)) from exc
            return features
        try:
            row = np.asarray(request, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"request is not numeric: {exc}", ("not_numeric",)) from exc
        if row.shape != (len(FEATURE_NAMES),):
            raise InvalidRequest(
                f"a feature row has {len(FEATURE_NAMES)} values, got shape {row.shape}", ("shape",)
            )
        if not np.isfinite(row).all():
            raise InvalidRequest("feature row holds NaN or infinity", ("non_finite",))
        return row

    return validate
