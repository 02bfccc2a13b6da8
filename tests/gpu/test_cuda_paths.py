"""The GPU paths, on a real CUDA device: the fused Triton kernels compiled (not interpreted)
inside the torch policy, CUDA graphs, pinned copies, the engine over a CUDA model, NCCL, and
jax on the GPU. Each is checked against the numpy policy, which runs the same function on the
CPU. Without a CUDA device the module is skipped with that reason (CI has none; these run
where a GPU is lent: ``pytest tests/gpu``).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch absent: pip install 'system0[torch]'")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device: the GPU paths need one", allow_module_level=True)

from system0.game.policy import load_policy  # noqa: E402
from system0.game.simulator import MatchSimulator  # noqa: E402
from system0.interfaces.inference_engine import InferenceEngine  # noqa: E402
from system0.interfaces.torch_model import TorchModelInterface, build_torch_mlp  # noqa: E402
from system0.utils import distributed_utils as du  # noqa: E402
from system0.utils import torch_utils  # noqa: E402

# float32 on different hardware and summation orders; the kernels' own tolerances are tighter
RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    sim = MatchSimulator(seed=5)
    return np.concatenate([t.features for t in sim.run(60)])[:300].astype(np.float32)


@pytest.fixture(scope="module")
def reference() -> object:
    return load_policy("numpy")


@pytest.fixture(scope="module")
def cuda_model() -> TorchModelInterface:
    model = load_policy("torch", device="cuda")
    assert isinstance(model, TorchModelInterface)
    return model


def test_cuda_policy_runs_the_fused_kernels_and_matches_numpy(
    cuda_model: TorchModelInterface, reference: object, rows: np.ndarray
) -> None:
    assert cuda_model._module.fused, "on CUDA the policy runs the Triton kernels"
    assert cuda_model.introspect().device.startswith("cuda")
    # captured sizes (1, 64), padded sizes (3 -> 4) and an uncaptured, eager size (300)
    for n in (1, 3, 64, 300):
        got = cuda_model.infer(rows[:n])
        want = reference.infer(rows[:n])  # type: ignore[attr-defined]
        assert got.shape == want.shape == (n, want.shape[1])
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
        assert np.array_equal(got.argmax(1), want.argmax(1))


def test_fused_and_plain_torch_modules_agree(rows: np.ndarray) -> None:
    from system0.game.policy import policy_weights_path
    from system0.interfaces.model_interface import load_mlp

    mlp = load_mlp(policy_weights_path())
    fused = build_torch_mlp(mlp, "cuda", fused_head=True)
    plain = build_torch_mlp(mlp, "cuda", fused_head=False)
    x = torch.from_numpy(rows).cuda()
    with torch.inference_mode():
        torch.testing.assert_close(fused(x), plain(x), rtol=1e-5, atol=1e-6)


def test_cuda_graph_replays_fresh_inputs_each_call(
    cuda_model: TorchModelInterface, rows: np.ndarray
) -> None:
    runner = cuda_model._runner
    assert runner is not None and 1 in runner.sizes
    # the graph's output buffer is reused on every replay: each answer must be its own copy
    a = cuda_model.infer(rows[:1])
    b = cuda_model.infer(rows[1:2])
    a_again = cuda_model.infer(rows[:1])
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, a_again)


def test_pinned_pool_hands_out_page_locked_buffers() -> None:
    pool = torch_utils.PinnedBufferPool()
    buf = pool.acquire((8, 52))
    assert pool.pinned and buf.is_pinned()


def test_engine_batches_a_cuda_model(
    cuda_model: TorchModelInterface, reference: object, rows: np.ndarray
) -> None:
    with InferenceEngine(cuda_model, max_batch=64, max_wait=0.002, name="gpu-test") as engine:
        engine.warmup()
        futs = [engine.submit(r, 5.0) for r in rows]
        results = [f.result(timeout=30) for f in futs]
        inline = engine.infer(rows[0], 5.0)
    want = reference.infer(rows)  # type: ignore[attr-defined]
    got = np.stack([r.outputs for r in results])
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    assert not any(r.fallback for r in results)
    assert max(r.batch_size for r in results) > 1, "concurrent requests were batched"
    np.testing.assert_allclose(inline.outputs, want[0], rtol=RTOL, atol=ATOL)


def test_deterministic_mode_gives_identical_bits_on_cuda(rows: np.ndarray) -> None:
    model = load_policy("torch", device="cuda", deterministic=True)
    first = model.infer(rows)
    assert np.array_equal(first, model.infer(rows))


def test_torch_compile_on_cuda_matches(reference: object, rows: np.ndarray) -> None:
    model = load_policy("torch", device="cuda", compile=True)
    np.testing.assert_allclose(
        model.infer(rows[:64]),
        reference.infer(rows[:64]),  # type: ignore[attr-defined]
        rtol=RTOL,
        atol=ATOL,
    )


def _nccl_rank(rank: int, world: int, port: int, out: object) -> None:
    with du.process_group(rank, world, backend="nccl", master_port=port) as info:
        t = torch.full((4,), float(rank + 1), device=info.device)
        torch.distributed.all_reduce(t)
        out.put((info.backend, info.device, t.cpu().tolist()))  # type: ignore[attr-defined]


def test_nccl_all_reduce_on_the_gpu() -> None:
    import multiprocessing as mp

    # NCCL allows one rank per device: a one-GPU machine forms a world of one
    world = torch.cuda.device_count()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    port = du.free_port()
    procs = [ctx.Process(target=_nccl_rank, args=(r, world, port, out)) for r in range(world)]
    for p in procs:
        p.start()
    got = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    total = float(sum(range(1, world + 1)))
    assert all(g[0] == "nccl" and g[1].startswith("cuda") and g[2] == [total] * 4 for g in got)


def test_jax_runs_the_policy_on_the_gpu(reference: object, rows: np.ndarray) -> None:
    jax = pytest.importorskip("jax", reason="jax absent: pip install 'system0[jax]'")
    if os.environ.get("JAX_PLATFORMS", "") == "cpu" or jax.default_backend() != "gpu":
        pytest.skip(f"jax runs on {jax.default_backend()} here, not on the GPU")
    model = load_policy("jax")
    assert "cuda" in model.introspect().device.lower() or "gpu" in model.introspect().device
    np.testing.assert_allclose(
        model.infer(rows[:64]),
        reference.infer(rows[:64]),  # type: ignore[attr-defined]
        rtol=RTOL,
        atol=ATOL,
    )


def test_captured_copies_run_host_batches_and_refuse_larger_ones(
    cuda_model: TorchModelInterface, reference: object, rows: np.ndarray
) -> None:
    runner = cuda_model._runner
    assert runner is not None
    assert runner.run_host(rows[: runner.sizes[-1] + 1]) is None  # the eager path's work
    got = runner.run_host(rows[:3])  # padded up to the captured 4
    want = reference.infer(rows[:3])  # type: ignore[attr-defined]
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_threads_sharing_a_cuda_model_each_get_their_own_answer(
    cuda_model: TorchModelInterface, reference: object, rows: np.ndarray
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda i: cuda_model.infer(rows[i : i + 1]), range(200)))
    want = reference.infer(rows[:200])  # type: ignore[attr-defined]
    np.testing.assert_allclose(np.concatenate(got), want, rtol=RTOL, atol=ATOL)


def test_nvml_measures_the_gpus_joules() -> None:
    from system0.core import energy

    nvml = next(s for s in energy.energy_sources() if s.name == "nvml")
    if not nvml.available:
        pytest.skip(f"NVML energy unreadable here: {nvml.reason}")
    a = torch.randn(4096, 4096, device="cuda")
    with energy.measure(cpu=False) as m:
        for _ in range(200):  # long enough for NVML's counter (and the sampler) to move
            a @ a
        torch.cuda.synchronize()
    assert m.joules is not None and m.joules.get("gpu_0", 0.0) > 0.0
