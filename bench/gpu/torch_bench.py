#!/usr/bin/env python3
"""PyTorch's side of bench/gpu/check.sh, on the same GPU in the same run, printing the same
"key value" lines as bench-gpu: torch.matmul in bf16 (8192^3, random data, median of 5 x 10) and
training throughput of the same two models at batch 256, eager mode with AMP (bf16 autocast)
and with TF32, SGD with momentum, the whole step timed after 5 warm-up steps."""
import sys
import time

import torch
import torch.nn as nn


def fmnist_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return torch.relu(y + (x if self.short is None else self.short(x)))


def resnet20(width=16, blocks=3):
    layers = [nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    cin = width
    for stage, w in enumerate([width, 2 * width, 4 * width]):
        for b in range(blocks):
            layers.append(Block(cin, w, 2 if (stage > 0 and b == 0) else 1))
            cin = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10)]
    return nn.Sequential(*layers)


def gemm(n):
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        torch.matmul(a, b)
    torch.cuda.synchronize()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(10):
            torch.matmul(a, b)
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) / 10)
    times.sort()
    print(f"gemm_bf16_tflops {2 * n ** 3 / times[2] * 1e-12:.1f}")


def train(label, model, shape, math, steps, batch=256):
    torch.manual_seed(7)
    torch.backends.cuda.matmul.allow_tf32 = math == "tf32"
    torch.backends.cudnn.allow_tf32 = math == "tf32"
    model = model.cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, *shape, device="cuda")
    t = torch.randint(0, 10, (batch,), device="cuda")
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=math == "bf16"):
            loss = loss_fn(model(x), t)
        loss.backward()
        opt.step()
        return loss

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    print(f"train_{label}_{math}_sps {steps * batch / dt:.0f}")
    print(f"train_{label}_{math}_loss {loss.item():.4f}")


def main():
    quick = "--quick" in sys.argv
    print(f"device {torch.cuda.get_device_name(0)}")
    gemm(4096 if quick else 8192)
    steps = 10 if quick else 50
    for math in ("bf16", "tf32"):
        train("fmnist_cnn", fmnist_cnn(), (1, 28, 28), math, steps)
        train("resnet20", resnet20(), (3, 32, 32), math, steps)


if __name__ == "__main__":
    main()
