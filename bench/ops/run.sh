#!/usr/bin/env bash
# Per-layer timing of the CNN's conv/pool kernels and the whole CNN through the graph
# (bench-ops), then PyTorch 1.13's own per-layer probe on the same shapes in the same run
# (../shared/peers/torch/layer_probe.py: batch 256 forward, torch 2 / OpenBLAS 1 and 1 / 1), and
# the whole CNN in PyTorch timed the way bench-ops times it (bench/ops/torch_cpu_probe.py).
#   bash bench/ops/run.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-ops}
probe=../shared/peers/torch/layer_probe.py

echo "## bench-ops, 2 threads"
OPENBLAS_NUM_THREADS=1 "$build/bench/ops/bench-ops" --threads 2
echo
echo "## bench-ops, 1 thread (graph only)"
OPENBLAS_NUM_THREADS=1 "$build/bench/ops/bench-ops" --threads 1 --graph-only
if [ -f "$probe" ] && /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo
  echo "## PyTorch layer probe (batch 256 forward), same run"
  /usr/bin/python3 "$probe" 2 1
  /usr/bin/python3 "$probe" 1 1
  echo
  echo "## PyTorch whole CNN, wall and CPU time like bench-ops, same run"
  /usr/bin/python3 bench/ops/torch_cpu_probe.py 2 1
  /usr/bin/python3 bench/ops/torch_cpu_probe.py 1 1
else
  echo "PyTorch peer not available (needs python3-torch and $probe): skipped"
fi
echo
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores, shared)"
