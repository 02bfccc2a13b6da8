"""The gate's own FGSM and PGD agree with the Adversarial Robustness Toolbox's
``FastGradientMethod`` and ``ProjectedGradientDescent`` over a ``PyTorchClassifier`` of the same
MLP, with the same budgets (per column, in normalized units), the same contract box and the
same mask. Skipped, with the reason, where torch or ART is not installed (the light install)."""

from __future__ import annotations

import numpy as np
import pytest
from gate_variants import sawtooth_mlp, shipped_mlp

from system0.interfaces.model_interface import MLPWeights, NumpyModelInterface
from system0.testing.adversarial import (
    EPSILONS,
    contract_box,
    fgsm,
    loss_gradient,
    normalized_units,
    perturbable,
    pgd,
)
from system0.testing.states import feature_rows, match_states

torch = pytest.importorskip("torch", reason="the ART agreement test needs torch (system0[torch])")
attacks = pytest.importorskip(
    "art.attacks.evasion", reason="needs adversarial-robustness-toolbox (system0[gate])"
)
estimators = pytest.importorskip("art.estimators.classification")


def torch_mlp(mlp: MLPWeights) -> torch.nn.Module:
    """The MLP as torch layers, returning logits (ART's classifier applies the loss)."""

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mean = torch.nn.Buffer(torch.tensor(mlp.mean))
            self.std = torch.nn.Buffer(torch.tensor(mlp.std))
            self.layers = torch.nn.ModuleList()
            for w, b in zip(mlp.weights, mlp.biases, strict=True):
                lin = torch.nn.Linear(w.shape[1], w.shape[0])
                lin.weight.data = torch.tensor(w)
                lin.bias.data = torch.tensor(b)
                self.layers.append(lin)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.clamp((x - self.mean) / self.std, -mlp.clip, mlp.clip)
            for i, layer in enumerate(self.layers):
                h = layer(h)
                if i < len(self.layers) - 1:
                    h = torch.relu(h)
            return h

    return Net().eval()


def classifier(mlp: MLPWeights) -> object:
    lo, hi = contract_box()
    return estimators.PyTorchClassifier(
        model=torch_mlp(mlp),
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=(mlp.in_features,),
        nb_classes=mlp.out_features,
        clip_values=(lo, hi),
        device_type="cpu",
    )


@pytest.fixture(scope="module")
def setup() -> tuple[MLPWeights, np.ndarray, np.ndarray, np.ndarray]:
    mlp = sawtooth_mlp(shipped_mlp())  # a model where the attacks find plenty
    x = feature_rows(match_states(256, seed=15))
    labels = NumpyModelInterface(mlp).infer(x).argmax(axis=1)
    return mlp, x, labels, normalized_units(x)


def art_budget(eps: float, unit: np.ndarray) -> np.ndarray:
    """``eps`` normalized units per column for ART, which wants every step positive: the
    masked item columns get any positive budget, the mask keeps them still."""
    return np.where(unit > 0, eps * unit, 1.0).astype(np.float32)


def one_hot(labels: np.ndarray, n: int) -> np.ndarray:
    return np.eye(n, dtype=np.float32)[labels]


def flip_rate(mlp: MLPWeights, x_adv: np.ndarray, labels: np.ndarray) -> float:
    return float((NumpyModelInterface(mlp).infer(x_adv).argmax(axis=1) != labels).mean())


@pytest.mark.parametrize("eps", EPSILONS)
def test_fgsm_agrees_with_art(setup: tuple, eps: float) -> None:
    mlp, x, labels, unit = setup
    ours = fgsm(mlp, x, labels, eps, unit)
    budget = art_budget(eps, unit)
    art = attacks.FastGradientMethod(
        classifier(mlp), norm=np.inf, eps=budget, eps_step=budget, batch_size=len(x)
    ).generate(x, y=one_hot(labels, mlp.out_features), mask=perturbable())
    # the same step on every row whose gradient is above float32 noise (on a row the model
    # is certain of, p = 1.0 in float32, torch's gradient is rounding noise and its signs too)
    live = np.abs(loss_gradient(mlp, x, labels)).max(axis=1) > 1e-4
    assert live.mean() > 0.5
    same = np.isclose(ours, art, atol=1e-6, rtol=1e-6)[live]
    assert same.mean() > 0.999, np.argwhere(~same)[:5]
    model = NumpyModelInterface(mlp)
    ours_flip = model.infer(ours).argmax(axis=1) != labels
    art_flip = model.infer(art).argmax(axis=1) != labels
    assert (ours_flip == art_flip)[live].mean() > 0.99


@pytest.mark.parametrize("eps", EPSILONS)
def test_pgd_agrees_with_art(setup: tuple, eps: float) -> None:
    mlp, x, labels, unit = setup
    y = one_hot(labels, mlp.out_features)
    budget = art_budget(eps, unit)

    def art_pgd(random: bool) -> np.ndarray:
        attack = attacks.ProjectedGradientDescent(
            classifier(mlp),
            norm=np.inf,
            eps=budget,
            eps_step=budget / 4,
            max_iter=20,
            num_random_init=1 if random else 0,
            batch_size=len(x),
            verbose=False,
        )
        out: np.ndarray = attack.generate(x, y=y, mask=perturbable())
        return out

    # without the random start both are deterministic: the same iterates, step for step
    ours = pgd(mlp, x, labels, eps, unit, random_start=False, stop_on_flip=False)
    theirs = art_pgd(random=False)
    # (rows the model is certain of excepted, as for FGSM: their gradients are float32 noise)
    live = np.abs(loss_gradient(mlp, x, labels)).max(axis=1) > 1e-4
    same = np.isclose(ours, theirs, atol=1e-5, rtol=1e-5).all(axis=1)
    assert same[live].mean() > 0.97
    # with it, the starts differ, the success rates do not
    ours_r = pgd(mlp, x, labels, eps, unit, rng=np.random.default_rng(1), stop_on_flip=False)
    rate, art_rate = flip_rate(mlp, ours_r, labels), flip_rate(mlp, art_pgd(random=True), labels)
    assert rate == pytest.approx(art_rate, abs=0.05)
    # and the gate's early stop only ever keeps more flips than plain PGD
    stop = pgd(mlp, x, labels, eps, unit, rng=np.random.default_rng(1))
    assert flip_rate(mlp, stop, labels) >= rate - 0.02
