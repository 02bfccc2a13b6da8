#!/usr/bin/env bash
# Everything that needs a GPU, in one go: the GPU tests, the Triton kernel tests compiled for
# the device (not interpreted), the kernel benchmark and the engine benchmark.
#     bash benches/gpu/run_all.sh [OUTDIR]
# JSON results land in OUTDIR (default: the current folder). PYTHON picks the interpreter.
set -u
out=${1:-.}
py=${PYTHON:-python3}
if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "skipped: no NVIDIA driver here (nvidia-smi absent); these run on a GPU machine"
    exit 0
fi
status=0
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || status=1
TRITON_INTERPRET=0 "$py" -m pytest -q -p no:cacheprovider tests/gpu tests/kernels \
    tests/utils tests/interfaces || status=1
"$py" benches/gpu/bench_kernels.py --json "$out/kernels.json" || status=1
"$py" benches/gpu/bench_engine.py --json "$out/engine.json" || status=1
exit $status
