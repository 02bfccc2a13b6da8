"""The adversarial suite: FGSM and PGD on the policy's feature rows, inside the contract.

Budgets are L-infinity balls of ``EPSILONS`` (0.01, 0.03, 0.1) in normalized feature units:
each column of the codec's feature row divided by its standard deviation over the gate's
reference states (:func:`normalized_units`), so that one budget means as much on position as
on gold. The unit is the gate's, never the candidate's own normalization layer: a model that
declared a wider ``std`` would otherwise shrink the ball it is attacked in. Every adversarial
row is clipped to the contract's valid ranges, converted to feature units through
``DENSE_SCALES``: a state the contract refuses is what validation answers, not a question of
robustness. The multi-hot inventory columns are not
perturbed (an item is held or not; half an item is no state at all).

* FGSM: one step ``x + eps * sign(grad)``.
* PGD: a uniform random start in the ball, then ``PGD_STEPS`` (20) steps of ``eps / 4``, each
  clipped to the contract's box and projected back into the ball (ART's order). A row whose
  action has flipped stops moving (``stop_on_flip``): PGD maximizes the loss, and a later step
  of higher loss may land back on the clean action; the plain form (``stop_on_flip=False``) is
  ART's ``ProjectedGradientDescent``, step for step.

The loss is the cross-entropy of the model's logits against its own clean action (untargeted).
Its gradient is analytic: the MLP (``normalize -> clip -> (linear, relu|tanh)* -> linear``)
is differentiated in numpy, so the suite runs on the light install. The adversarial rows are
then answered by the candidate itself (``model.infer``), and the suite measures the
action-flip rate and the drop in confidence of the clean action, against thresholds. PGD must
flip at least as many rows as FGSM at each budget: when it does not, the gradient is lying
(gradient masking), and the robustness figures cannot be trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from system0.data.contract import RANGES
from system0.data.serialization import DENSE_SCALES, FEATURE_NAMES
from system0.errors import ValidationError
from system0.interfaces.model_interface import AIModelInterface, MLPWeights
from system0.testing.results import Check, SuiteResult
from system0.testing.states import feature_rows, match_states

__all__ = [
    "EPSILONS",
    "AttackLimits",
    "adversarial_suite",
    "contract_box",
    "fgsm",
    "loss_gradient",
    "normalized_units",
    "perturbable",
    "pgd",
]

EPSILONS = (0.01, 0.03, 0.1)
PGD_STEPS = 20
ROWS = 512
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class AttackLimits:
    """The most action flips and the largest mean confidence drop allowed, per budget."""

    max_flip_rate: dict[float, float] = field(
        default_factory=lambda: {0.01: 0.10, 0.03: 0.25, 0.1: 0.65}
    )
    max_confidence_drop: dict[float, float] = field(
        default_factory=lambda: {0.01: 0.06, 0.03: 0.15, 0.1: 0.50}
    )


def _range_path(column: str) -> str:
    if column.startswith("position_"):
        return f"position.{column.removeprefix('position_')}"
    if column.startswith("cooldown_"):
        return f"cooldowns.{column.removeprefix('cooldown_')}"
    return column


def contract_box() -> tuple[F32, F32]:
    """Per feature column, the lowest and highest value a valid state gives (feature units):
    the contract's range over the column's scale; the item columns are 0 or 1."""
    n_dense = len(DENSE_SCALES)
    lo = np.zeros(len(FEATURE_NAMES), np.float32)
    hi = np.ones(len(FEATURE_NAMES), np.float32)
    for i, (name, scale) in enumerate(zip(FEATURE_NAMES[:n_dense], DENSE_SCALES, strict=True)):
        a, b = RANGES[_range_path(name)]
        lo[i], hi[i] = a / scale, b / scale
    return lo, hi


def perturbable() -> F32:
    """1.0 on the dense columns an attack may move, 0.0 on the inventory multi-hot."""
    mask = np.zeros(len(FEATURE_NAMES), np.float32)
    mask[: len(DENSE_SCALES)] = 1.0
    return mask


def _mlp_of(model: AIModelInterface) -> MLPWeights:
    mlp = getattr(model, "mlp", None)
    if not isinstance(mlp, MLPWeights):
        raise ValidationError(
            f"the adversarial suite differentiates the model analytically and needs its "
            f"MLPWeights (model.mlp); {type(model).__name__} {model.name!r} exposes none"
        )
    return mlp


def normalized_units(x: F32) -> F64:
    """Feature units per normalized unit: each perturbable column's standard deviation over
    the rows ``x`` (0 on the inventory columns, which are not perturbed)."""
    unit: F64 = x.astype(np.float64).std(axis=0) * perturbable()
    return unit


def loss_gradient(mlp: MLPWeights, x: F32, labels: npt.NDArray[np.int64]) -> F64:
    """d cross-entropy(logits(x), labels) / dx, row by row, for the MLP (float64)."""
    return _forward_backward(mlp, x, labels)[1]


def _forward_backward(mlp: MLPWeights, x: F32, labels: npt.NDArray[np.int64]) -> tuple[F64, F64]:
    """The logits of ``x`` and the loss gradient."""
    z = (x.astype(np.float64) - mlp.mean) / mlp.std
    inside = np.abs(z) < mlp.clip  # np.clip passes no gradient where it clips
    h = np.clip(z, -mlp.clip, mlp.clip)
    pre: list[F64] = []
    acts: list[F64] = [h]
    last = len(mlp.weights) - 1
    for i, (w, b) in enumerate(zip(mlp.weights, mlp.biases, strict=True)):
        a = acts[-1] @ w.T.astype(np.float64) + b
        pre.append(a)
        if i < last:
            acts.append(np.maximum(a, 0.0) if mlp.activation == "relu" else np.tanh(a))
    logits = pre[-1]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    g = p
    g[np.arange(len(g)), labels] -= 1.0  # d CE / d logits = softmax - onehot
    for i in range(last, -1, -1):
        g = g @ mlp.weights[i].astype(np.float64)
        if i > 0:
            a = pre[i - 1]
            g = g * (a > 0) if mlp.activation == "relu" else g * (1.0 - np.tanh(a) ** 2)
    grad: F64 = g * inside / mlp.std
    return logits, grad


def _project(x_adv: F64, x: F32, radius: F64, lo: F32, hi: F32) -> F64:
    box = np.clip(x_adv, lo, hi)
    out: F64 = x.astype(np.float64) + np.clip(box - x, -radius, radius)
    return out


def fgsm(mlp: MLPWeights, x: F32, labels: npt.NDArray[np.int64], eps: float, unit: F64) -> F32:
    """One signed-gradient step of ``eps`` normalized units (``unit``: feature units per
    normalized unit, 0 where nothing may move), in the contract box."""
    lo, hi = contract_box()
    step = eps * unit * np.sign(loss_gradient(mlp, x, labels))
    return np.clip(x + step, lo, hi).astype(np.float32)


def pgd(
    mlp: MLPWeights,
    x: F32,
    labels: npt.NDArray[np.int64],
    eps: float,
    unit: F64,
    *,
    steps: int = PGD_STEPS,
    step_size: float | None = None,
    random_start: bool = True,
    stop_on_flip: bool = True,
    rng: np.random.Generator | None = None,
) -> F32:
    """Projected gradient descent in the L-infinity ball of ``eps`` normalized units (steps of
    ``eps / 4``), from a uniform random start."""
    lo, hi = contract_box()
    alpha = eps / 4 if step_size is None else step_size
    x_adv = x.astype(np.float64)
    if random_start:
        gen = rng if rng is not None else np.random.default_rng(0)
        x_adv = np.clip(x_adv + gen.uniform(-eps, eps, x.shape) * unit, lo, hi)
    moving = np.ones((len(x), 1))
    for _ in range(steps):
        logits, grad = _forward_backward(mlp, x_adv.astype(np.float32), labels)
        if stop_on_flip:
            moving = (logits.argmax(axis=1) == labels)[:, None].astype(np.float64)
        step = alpha * unit * np.sign(grad) * moving
        x_adv = _project(x_adv + step, x, eps * unit, lo, hi)
    return x_adv.astype(np.float32)


def _measure(model: AIModelInterface, x: F32, clean: F32, x_adv: F32) -> tuple[float, float, int]:
    labels = clean.argmax(axis=1)
    adv = np.asarray(model.infer(x_adv), dtype=np.float32)
    flips = int((adv.argmax(axis=1) != labels).sum())
    rows = np.arange(len(x))
    drop = float(np.mean(clean[rows, labels] - adv[rows, labels]))
    return flips / len(x), drop, flips


def _inside(unit: F64, x: F32, x_adv: F32, eps: float) -> bool:
    lo, hi = contract_box()
    moved = np.abs(x_adv.astype(np.float64) - x)
    items_still = bool(np.all(moved[:, perturbable() == 0] == 0))
    in_box = bool(np.all((x_adv >= lo) & (x_adv <= hi)))
    in_ball = bool(np.all(moved <= eps * unit * (1 + 1e-5) + 1e-7))
    return items_still and in_box and in_ball


def adversarial_suite(
    model: AIModelInterface,
    limits: AttackLimits | None = None,
    *,
    rows: int = ROWS,
    seed: int = 15,
) -> SuiteResult:
    lim = limits or AttackLimits()
    mlp = _mlp_of(model)
    x = feature_rows(match_states(rows, seed))
    clean = np.asarray(model.infer(x), dtype=np.float32)
    labels = clean.argmax(axis=1).astype(np.int64)
    unit = normalized_units(x)
    rng = np.random.default_rng(seed)
    checks: list[Check] = []
    data: dict[str, Any] = {"rows": rows, "epsilons": list(EPSILONS), "fgsm": [], "pgd": []}
    contained = True
    for eps in EPSILONS:
        fx = fgsm(mlp, x, labels, eps, unit)
        px = pgd(mlp, x, labels, eps, unit, rng=rng)
        contained &= _inside(unit, x, fx, eps) and _inside(unit, x, px, eps)
        f_rate, f_drop, f_flips = _measure(model, x, clean, fx)
        p_rate, p_drop, p_flips = _measure(model, x, clean, px)
        data["fgsm"].append({"eps": eps, "flip_rate": f_rate, "confidence_drop": f_drop})
        data["pgd"].append({"eps": eps, "flip_rate": p_rate, "confidence_drop": p_drop})
        worst_rate, worst_drop = max(f_rate, p_rate), max(f_drop, p_drop)
        max_rate, max_drop = lim.max_flip_rate[eps], lim.max_confidence_drop[eps]
        checks += [
            Check(
                f"flip rate eps={eps}",
                worst_rate <= max_rate,
                f"FGSM {f_rate:.1%}, PGD {p_rate:.1%} of {rows} rows change action; "
                f"limit {max_rate:.0%}",
            ),
            Check(
                f"confidence drop eps={eps}",
                worst_drop <= max_drop,
                f"mean drop of the clean action's probability: FGSM {f_drop:.3f}, PGD "
                f"{p_drop:.3f}; limit {max_drop:.2f}",
            ),
            Check(
                f"PGD >= FGSM eps={eps}",
                p_flips >= f_flips,
                f"PGD flips {p_flips}, FGSM {f_flips}"
                + ("" if p_flips >= f_flips else ": the gradient misleads PGD (gradient masking?)"),
            ),
        ]
    data["limits"] = {
        "max_flip_rate": [lim.max_flip_rate[e] for e in EPSILONS],
        "max_confidence_drop": [lim.max_confidence_drop[e] for e in EPSILONS],
    }
    checks.append(
        Check(
            "attacks stay inside the contract",
            contained,
            "every adversarial row is within its eps ball, the contract's ranges, items untouched",
        )
    )
    return SuiteResult("adversarial", checks, data)
