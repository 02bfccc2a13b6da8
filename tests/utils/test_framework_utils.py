"""torch_utils and jax_utils: the switches do what they say (each skips without its framework)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from system0.utils import jax_utils, torch_utils


def test_bucket_for_picks_the_smallest_bucket_that_fits() -> None:
    assert jax_utils.bucket_for(1, (1, 4, 16)) == 1
    assert jax_utils.bucket_for(5, (1, 4, 16)) == 16
    with pytest.raises(ValueError, match="largest bucket 16"):
        jax_utils.bucket_for(17, (1, 4, 16))


def test_xla_flags_are_merged_and_checked_before_jax_starts() -> None:
    pytest.importorskip("jax", reason="jax absent: pip install 'system0[jax]'")
    flag = "--xla_force_host_platform_device_count=2"
    code = (
        "import os; os.environ['XLA_FLAGS'] = '--xla_cpu_enable_fast_math=false'\n"
        "from system0.utils import jax_utils as j\n"
        f"print(j.set_xla_flags(['{flag}']))\n"
        "import jax; print(jax.device_count('cpu'))\n"
        "try:\n"
        "    j.set_xla_flags(['--xla_dump_to=/tmp/x'])\n"
        "except RuntimeError as e:\n"
        "    print('late:', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    ).stdout.splitlines()
    assert out[0] == f"--xla_cpu_enable_fast_math=false {flag}"
    assert out[1] == "2"  # the flag reached XLA: two host devices (beside any GPU)
    assert out[2].startswith("late: jax already started")
    with pytest.raises(ValueError, match="--xla"):
        jax_utils.set_xla_flags(["-O3"])


def test_persistent_cache_and_precision(tmp_path: pathlib.Path) -> None:
    jax = pytest.importorskip("jax", reason="jax absent: pip install 'system0[jax]'")
    old_dir = jax.config.jax_compilation_cache_dir
    old_prec = jax.config.jax_default_matmul_precision
    try:
        jax_utils.enable_compilation_cache(tmp_path / "xla")
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "xla")
        jax_utils.set_precision("highest")
        assert jax.config.jax_default_matmul_precision == "highest"
        with pytest.raises(ValueError, match="precision"):
            jax_utils.set_precision("fp8")
    finally:
        jax.config.update("jax_compilation_cache_dir", old_dir)
        jax.config.update("jax_default_matmul_precision", old_prec)


def test_pinned_pool_reuses_buffers() -> None:
    torch = pytest.importorskip("torch", reason="torch absent: pip install 'system0[torch]'")
    pool = torch_utils.PinnedBufferPool(max_per_key=1)
    a = pool.acquire((4, 12))
    pool.release(a)
    b = pool.acquire((4, 12))
    assert b.data_ptr() == a.data_ptr() and pool.allocations == 1
    c = pool.acquire((4, 12))
    assert c.data_ptr() != b.data_ptr() and pool.allocations == 2
    assert pool.pinned == torch.cuda.is_available() == c.is_pinned()


def test_compile_switch_honours_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSTEM0_TORCH_COMPILE", "0")
    assert not torch_utils.compile_enabled(True)
    marker = object()
    assert torch_utils.maybe_compile(marker, True) is marker
    monkeypatch.delenv("SYSTEM0_TORCH_COMPILE")
    assert torch_utils.compile_enabled(True) and not torch_utils.compile_enabled(False)


def test_cuda_graphs_need_a_gpu() -> None:
    torch = pytest.importorskip("torch", reason="torch absent: pip install 'system0[torch]'")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present; tests/gpu exercises the GPU path")
    with pytest.raises(RuntimeError, match="CUDA"):
        torch_utils.CUDAGraphRunner(torch.nn.Identity(), (1,), 4, "cpu")


def test_deterministic_mode_repeats_a_run() -> None:
    code = (
        "import torch\nfrom system0.utils.torch_utils import set_deterministic\n"
        "set_deterministic(7)\nprint(torch.are_deterministic_algorithms_enabled(), "
        "torch.randn(3).tolist())\n"
    )
    pytest.importorskip("torch", reason="torch absent: pip install 'system0[torch]'")
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    runs = [
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env=env,
        ).stdout
        for _ in range(2)
    ]
    assert runs[0] == runs[1] and runs[0].startswith("True")
