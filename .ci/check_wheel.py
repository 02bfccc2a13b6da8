"""Prove the installed wheel carries everything: the extension, its stubs, py.typed, kernels."""

import importlib.resources as resources
import pathlib

import system0
import system0._core as core
import system0.kernels

root = resources.files("system0")
for name in (
    "_core.pyi",
    "py.typed",
    "kernels/__init__.py",
    "kernels/featurize.py",
    "kernels/normalize.py",
    "kernels/policy_head.py",
    "data/game_state.proto",
    "serving/dashboard.html",
    "testing/golden/policy-f8381c0bbe41.json",
    "testing/baselines/perf.json",
):
    assert (root / name).is_file(), f"wheel lacks system0/{name}"
assert "site-packages" in str(pathlib.Path(core.__file__)), f"not the wheel: {core.__file__}"
assert system0.__version__ == core.__version__
assert list((root / "testing" / "red_team").iterdir()), "wheel lacks the red-team scenarios"
weights = list((root / "game" / "weights").iterdir())
assert any(w.name.startswith("policy-") for w in weights), "wheel lacks the demo policy weights"
from system0.data.serialization import FEATURE_NAMES  # noqa: E402
from system0.game.policy import load_policy  # noqa: E402

assert load_policy("numpy").infer([[0.5] * len(FEATURE_NAMES)]).shape == (1, 8)
print("wheel ok:", core.__file__)
