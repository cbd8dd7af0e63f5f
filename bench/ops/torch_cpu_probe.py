#!/usr/bin/python3
"""PyTorch 1.13 peer for bench-ops on a shared machine: the Fashion-MNIST CNN's forward at
batch 1 and 256 (inference_mode) and one training step's forward + backward at batch 64 (no
optimizer step), timed by wall clock (best round) and by process CPU time (mean), the same two
measures bench-ops prints. Mirrors ../shared/peers/torch/layer_probe.py (random weights/inputs).
Usage: torch_cpu_probe.py THREADS [BLAS_THREADS]"""
import os, sys, time
th = int(sys.argv[1]); ob = sys.argv[2] if len(sys.argv) > 2 else str(th)
os.environ["OMP_NUM_THREADS"] = str(th); os.environ["OPENBLAS_NUM_THREADS"] = ob
import torch, torch.nn as nn, torch.nn.functional as F  # noqa: E402
torch.set_num_threads(th); torch.manual_seed(0)
m = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                  nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                  nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))


def measure(fn, min_s=0.3):
    fn(); fn()
    best, total, calls = 1e30, 0.0, 0
    c0 = time.process_time()
    while total < min_s:
        t = time.perf_counter(); fn(); dt = time.perf_counter() - t
        total += dt; calls += 1; best = min(best, dt)
    return best * 1e3, (time.process_time() - c0) * 1e3 / calls


print(f"# torch {torch.__version__}: {th} threads, OpenBLAS {ob}")
print("| torch | batch | pass | ms/batch (best) | throughput | CPU ms/batch (mean) |")
print("|---|---|---|---|---|---|")
m.eval()
for b in (1, 256):
    x = torch.rand(b, 1, 28, 28)
    def infer():
        with torch.inference_mode():
            m(x)
    ms, cpu = measure(infer)
    print(f"| CNN torch | {b:5d} | inference | {ms:9.3f} | {b / ms * 1e3:7.0f} img/s | {cpu:9.3f} |")
m.train()
x = torch.rand(64, 1, 28, 28); y = torch.arange(64) % 10
def step():
    m.zero_grad(set_to_none=True)
    F.cross_entropy(m(x), y).backward()
ms, cpu = measure(step)
print(f"| CNN torch | {64:5d} | train fwd+bwd | {ms:9.3f} | {64 / ms * 1e3:7.0f} img/s | {cpu:9.3f} |")
