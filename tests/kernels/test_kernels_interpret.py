"""Triton kernels against their torch references: under the Triton interpreter on the CPU
(CI), or compiled for the GPU with ``TRITON_INTERPRET=0`` where one is present.

TRITON_INTERPRET must be set before triton is imported, so this module sets it first; the
tolerances are the ones documented in each kernel module. Inputs are made on the CPU, run on
the kernels' device, and compared on the CPU against the reference.
"""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest

torch = pytest.importorskip("torch", reason="torch absent: pip install 'system0[torch]'")
pytest.importorskip("triton", reason="triton absent (it comes with torch on Linux)")

from system0.kernels.featurize import (  # noqa: E402
    featurize,
    featurize_reference,
    kernel_inputs,
)
from system0.kernels.normalize import normalize, normalize_reference  # noqa: E402
from system0.kernels.policy_head import policy_head, policy_head_reference  # noqa: E402

if os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available():
    pytest.skip(
        "TRITON_INTERPRET=0 without a GPU: nothing can run the kernels", allow_module_level=True
    )

# interpreted kernels read CPU tensors; compiled ones need the GPU's
DEV = "cpu" if os.environ.get("TRITON_INTERPRET") == "1" else "cuda"


def on(*ts: torch.Tensor) -> list[torch.Tensor]:
    return [t.to(DEV) for t in ts]


@pytest.mark.parametrize(
    ("c", "n", "pad_rows", "pad_cols"),
    [(12, 1, 1, 16), (12, 37, 64, 16), (5, 300, 300, 5), (12, 129, 256, 32)],
)
def test_normalize_matches_reference(c: int, n: int, pad_rows: int, pad_cols: int) -> None:
    g = torch.Generator().manual_seed(c * 1000 + n)
    cols = torch.randn((c, n), generator=g) * 1000
    scale = torch.rand(c, generator=g) * 0.01
    mean = torch.randn(c, generator=g)
    inv = torch.rand(c, generator=g) + 0.5
    got = normalize(*on(cols, scale, mean, inv), 3.0, pad_rows, pad_cols).cpu()
    want = normalize_reference(cols, scale, mean, inv, 3.0, pad_rows, pad_cols)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    assert torch.all(got[n:] == 0) and torch.all(got[:, c:] == 0)
    assert got.abs().max() <= 3.0


def test_normalize_reads_a_strided_column_view() -> None:
    (base,) = on(torch.randn((12, 100)))
    cols = base[:, 10:60]  # rows of the columnar array are not contiguous with each other
    one = torch.ones(12)
    got = normalize(cols, *on(one, torch.zeros(12), one), 10.0, 64, 16).cpu()
    torch.testing.assert_close(
        got, normalize_reference(cols.cpu(), one, torch.zeros(12), one, 10.0, 64, 16)
    )


def test_normalize_rejects_bad_padding_and_dtype() -> None:
    one = torch.ones(12)
    with pytest.raises(ValueError, match="padding"):
        normalize(torch.zeros((12, 10)), one, one, one, 1.0, 5, 16)
    with pytest.raises(ValueError, match="float32"):
        normalize(torch.zeros((12, 10), dtype=torch.float64), one, one, one, 1.0, 16, 16)


@pytest.mark.parametrize("activation", ["none", "relu", "tanh"])
@pytest.mark.parametrize(("m", "k", "n"), [(1, 64, 8), (33, 64, 8), (64, 40, 19), (5, 16, 16)])
def test_policy_head_matches_reference(activation: str, m: int, k: int, n: int) -> None:
    g = torch.Generator().manual_seed(m * 100 + k + n)
    h = torch.randn((m, k), generator=g)
    w = torch.randn((n, k), generator=g) * 0.3
    b = torch.randn(n, generator=g)
    probs, idx = (t.cpu() for t in policy_head(*on(h, w, b), activation))
    want_p, want_i = policy_head_reference(h, w, b, activation)
    torch.testing.assert_close(probs, want_p, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(m), rtol=1e-5, atol=1e-5)
    z = torch.nn.functional.linear(h, w, b)
    top2 = z.topk(2, dim=1).values if n > 1 else None
    clear = (
        (top2[:, 0] - top2[:, 1]) > 1e-5 if top2 is not None else torch.ones(m, dtype=torch.bool)
    )
    assert torch.equal(idx[clear], want_i[clear])


def test_policy_head_ties_pick_the_first_index() -> None:
    h = torch.zeros((3, 16))
    w = torch.zeros((8, 16))
    b = torch.tensor([0.0, 2.0, 2.0, 1.0, 0.0, 2.0, 0.0, 0.0])
    _, idx = policy_head(*on(h, w, b))
    assert idx.cpu().tolist() == [1, 1, 1]


def test_policy_head_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="chain"):
        policy_head(torch.zeros((2, 8)), torch.zeros((4, 9)), torch.zeros(4))
    with pytest.raises(ValueError, match="activation"):
        policy_head(torch.zeros((2, 8)), torch.zeros((4, 8)), torch.zeros(4), "gelu")


def test_normalize_reads_a_row_major_batch_through_its_transpose() -> None:
    x = torch.randn((37, 12)) * 100
    mean, inv = torch.randn(12), torch.rand(12) + 0.5
    one = torch.ones(12)
    (xd,) = on(x)
    got = normalize(xd.T, *on(one, mean, inv), 4.0, 37, 12).cpu()
    torch.testing.assert_close(got, ((x - mean) * inv).clamp(-4.0, 4.0), rtol=1e-6, atol=1e-6)


def test_the_torch_policy_with_both_kernels_matches_numpy() -> None:
    from system0.game.policy import policy_weights_path
    from system0.game.simulator import MatchSimulator
    from system0.interfaces.model_interface import NumpyModelInterface, load_mlp
    from system0.interfaces.torch_model import build_torch_mlp

    mlp = load_mlp(policy_weights_path())
    module = build_torch_mlp(mlp, DEV, fused_head=True)  # the GPU path (interpreted on CI)
    x = np.concatenate([t.features for t in MatchSimulator(0).run(2)])[:9]
    with torch.inference_mode():
        got = module(torch.from_numpy(x).to(DEV)).cpu().numpy()
    np.testing.assert_allclose(got, NumpyModelInterface(mlp).infer(x), rtol=1e-5, atol=1e-6)


# --- featurize: the documented 52 columns, against rust/features ------------------------------


def _states(n: int, seed: int) -> list[dict[str, object]]:
    """GameStates spanning the contract: magnitudes from 1e-300 to the bounds, awkward
    fractions, empty and full inventories (drawn from a seeded generator)."""
    from system0.data.models import ABILITY_SLOTS, ITEM_VOCABULARY, MAX_INVENTORY

    rng = np.random.default_rng(seed)

    def mag(hi: float) -> float:
        v = float(10 ** rng.uniform(-300, np.log10(hi))) if rng.random() < 0.3 else 0.0
        return v if rng.random() < 0.5 else float(rng.uniform(0, hi))

    out: list[dict[str, object]] = []
    for i in range(n):
        k = int(rng.integers(0, MAX_INVENTORY + 1))
        items = rng.choice(len(ITEM_VOCABULARY), size=k, replace=False)
        out.append(
            {
                "timestamp": "2024-05-01T12:00:00Z",
                "champion": f"c{i}",
                "position": {"x": float(rng.random()), "y": mag(1.0)},
                "health": mag(100_000.0),
                "mana": mag(100_000.0),
                "cooldowns": {s: mag(3600.0) for s in ABILITY_SLOTS},
                "inventory": [ITEM_VOCABULARY[j] for j in items],
                "vision_score": mag(10_000.0),
                "gold_advantage": mag(1e6) * (1 if rng.random() < 0.5 else -1),
            }
        )
    # the bounds themselves and values whose quotient is not representable
    out[0].update(health=100_000.0, mana=1 / 3, vision_score=10_000.0, gold_advantage=-1e6)
    out[0]["cooldowns"] = dict.fromkeys(ABILITY_SLOTS, 3600.0)
    out[-1].update(health=0.1, mana=0.0, vision_score=0.7, gold_advantage=1e6, inventory=[])
    return out


def _decoded(states: list[dict[str, object]]) -> object:
    import json

    from system0.data.serialization import decode_game_states

    decoded = decode_game_states(json.dumps(states).encode())
    assert not decoded.errors, decoded.errors[:3]
    return decoded


@pytest.mark.parametrize(("n", "pad"), [(1, None), (37, None), (200, 256), (64, 64)])
def test_featurize_is_bit_identical_to_rust_features(n: int, pad: int | None) -> None:
    # exact, not close: both divide in float64 (IEEE, correctly rounded) and round once to
    # float32 (to nearest); positions divide by 1 and the multi-hot is 0.0 or 1.0
    from system0.data.serialization import FEATURE_NAMES, features

    decoded = _decoded(_states(n, seed=n))
    want = torch.from_numpy(features(decoded, pad_rows_to=pad).copy())
    dense, items = kernel_inputs(decoded, DEV)
    got = featurize(dense, items, pad).cpu()
    assert got.shape == (pad or n, len(FEATURE_NAMES)) == want.shape
    assert torch.equal(got, want)
    assert torch.equal(featurize_reference(*kernel_inputs(decoded), pad), want)


def test_featurize_matches_the_simulators_ticks() -> None:
    from system0.game.simulator import MatchSimulator

    ticks = list(MatchSimulator(11).run(40))
    states = [s for t in ticks for s in t.states]
    got = featurize(*kernel_inputs(_decoded(states), DEV)).cpu().numpy()
    np.testing.assert_array_equal(got, np.concatenate([t.features for t in ticks]))


def test_featurize_remaps_a_foreign_inventory_dictionary() -> None:
    # a batch rebuilt by another library carries its own dictionary (here: first-seen order)
    import pyarrow as pa
    import pyarrow.compute as pc

    from system0.data.serialization import features

    rb = pa.record_batch(_decoded(_states(50, seed=3)))
    inv = rb.column("inventory")
    words = inv.values.cast(pa.utf8())
    local = pc.dictionary_encode(words).cast(pa.dictionary(pa.uint16(), pa.utf8()))
    assert local.dictionary.to_pylist() != sorted(local.dictionary.to_pylist())
    rebuilt = pa.ListArray.from_arrays(inv.offsets, local)
    other = rb.set_column(rb.schema.get_field_index("inventory"), "inventory", rebuilt)
    got = featurize(*kernel_inputs(other, DEV)).cpu().numpy()
    np.testing.assert_array_equal(got, features(other))


def test_featurize_reads_dense_columns_through_their_strides() -> None:
    decoded = _decoded(_states(40, seed=5))
    dense, items = kernel_inputs(decoded, DEV)
    row_major = dense.T.contiguous()  # (N, 12): the columns are its transpose, stride (1, 12)
    assert not row_major.T.is_contiguous()
    assert torch.equal(featurize(row_major.T, items).cpu(), featurize(dense, items).cpu())


def test_featurize_refuses_bad_inputs() -> None:
    from system0.errors import ValidationError

    dense, items = kernel_inputs(_decoded(_states(4, seed=1)))
    with pytest.raises(ValidationError, match="float64"):
        featurize(dense.float(), items)
    with pytest.raises(ValidationError, match="int32"):
        featurize(dense, items.long())
    bad = items.clone()
    bad[0, 0] = 40
    with pytest.raises(ValidationError, match="vocabulary indices"):
        featurize(dense, bad)
    with pytest.raises(ValidationError, match="smaller"):
        featurize(dense, items, 3)
    with pytest.raises(ValidationError, match="no column"):
        import pyarrow as pa

        kernel_inputs(pa.record_batch({"health": [1.0]}))
