"""Triton kernels against their torch references: under the Triton interpreter on the CPU
(CI), or compiled for the GPU with ``TRITON_INTERPRET=0`` where one is present.

TRITON_INTERPRET must be set before triton is imported, so this module sets it first; the
tolerances are the ones documented in each kernel module. Inputs are made on the CPU, run on
the kernels' device, and compared on the CPU against the reference.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest

torch = pytest.importorskip("torch", reason="torch absent: pip install 'system0[torch]'")
pytest.importorskip("triton", reason="triton absent (it comes with torch on Linux)")

from system0.kernels.featurize import featurize, featurize_reference  # noqa: E402
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
def test_featurize_matches_reference(c: int, n: int, pad_rows: int, pad_cols: int) -> None:
    g = torch.Generator().manual_seed(c * 1000 + n)
    cols = torch.randn((c, n), generator=g) * 1000
    scale = torch.rand(c, generator=g) * 0.01
    mean = torch.randn(c, generator=g)
    inv = torch.rand(c, generator=g) + 0.5
    got = featurize(*on(cols, scale, mean, inv), 3.0, pad_rows, pad_cols).cpu()
    want = featurize_reference(cols, scale, mean, inv, 3.0, pad_rows, pad_cols)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    assert torch.all(got[n:] == 0) and torch.all(got[:, c:] == 0)
    assert got.abs().max() <= 3.0


def test_featurize_reads_a_strided_column_view() -> None:
    (base,) = on(torch.randn((12, 100)))
    cols = base[:, 10:60]  # rows of the columnar array are not contiguous with each other
    one = torch.ones(12)
    got = featurize(cols, *on(one, torch.zeros(12), one), 10.0, 64, 16).cpu()
    torch.testing.assert_close(
        got, featurize_reference(cols.cpu(), one, torch.zeros(12), one, 10.0, 64, 16)
    )


def test_featurize_rejects_bad_padding_and_dtype() -> None:
    one = torch.ones(12)
    with pytest.raises(ValueError, match="padding"):
        featurize(torch.zeros((12, 10)), one, one, one, 1.0, 5, 16)
    with pytest.raises(ValueError, match="float32"):
        featurize(torch.zeros((12, 10), dtype=torch.float64), one, one, one, 1.0, 16, 16)


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


def test_featurize_reads_a_row_major_batch_through_its_transpose() -> None:
    x = torch.randn((37, 12)) * 100
    mean, inv = torch.randn(12), torch.rand(12) + 0.5
    one = torch.ones(12)
    (xd,) = on(x)
    got = featurize(xd.T, *on(one, mean, inv), 4.0, 37, 12).cpu()
    torch.testing.assert_close(got, ((x - mean) * inv).clamp(-4.0, 4.0), rtol=1e-6, atol=1e-6)


def test_the_torch_policy_with_both_kernels_matches_numpy() -> None:
    import numpy as np

    from system0.game.policy import policy_weights_path
    from system0.interfaces.model_interface import NumpyModelInterface, load_mlp
    from system0.interfaces.torch_model import build_torch_mlp

    mlp = load_mlp(policy_weights_path())
    module = build_torch_mlp(mlp, DEV, fused_head=True)  # the GPU path (interpreted on CI)
    x = np.random.default_rng(0).normal(size=(9, 12)).astype(np.float32) * 500
    with torch.inference_mode():
        got = module(torch.from_numpy(x).to(DEV)).cpu().numpy()
    np.testing.assert_allclose(got, NumpyModelInterface(mlp).infer(x), rtol=1e-5, atol=1e-6)
