#!/usr/bin/python3
"""PyTorch peer of bench-text train: the same recipe (data/recipes/NAME.json, its variables
"tokens" and "vocab" from the data file) built as the same modules, trained on the same token
ids with the same batch, AdamW settings (decay on weights of 2 and more dimensions), learning
rate schedule (warm-up, then constant or cosine to 0, per step), gradient clipping and epochs,
without augmentation; measured as bench-text measures itself: training sequences/s over the
epochs' wall time, test accuracy after the last epoch, batch-1 latency (median over 500 test
sequences after 50 warm-up) and batch-256 throughput (median of 5 passes after one warm-up),
peak RSS.

  text_peer.py --data FILE --recipe NAME --threads N [--epochs N] [--seed N] [--json OUT]
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_data(path):
    with open(path, "rb") as f:
        if f.read(8) != b"FTHTXT01":
            sys.exit(f"text_peer.py: {path}: not a bench-text data file")
        n_train, n_test, t, vocab, classes = np.frombuffer(f.read(20), dtype="<i4")
        ints = lambda n: np.frombuffer(f.read(4 * int(n)), dtype="<i4").astype(np.int64)
        tr = ints(n_train * t).reshape(n_train, t)
        tr_y = ints(n_train)
        te = ints(n_test * t).reshape(n_test, t)
        te_y = ints(n_test)
    return tr, tr_y, te, te_y, int(t), int(vocab), int(classes)


def load_recipe(name, overrides):
    recipe = json.load(open(os.path.join(ROOT, "data", "recipes", name + ".json")))
    env = dict(recipe.get("vars", {}))
    env.update(overrides)

    def resolve(v):
        if isinstance(v, str) and v.startswith("$"):
            return env[v[1:]]
        if isinstance(v, dict):
            return {k: resolve(x) for k, x in v.items()}
        if isinstance(v, list):
            return [resolve(x) for x in v]
        return v
    return resolve(recipe)


def bert_linear(i, o):
    m = nn.Linear(i, o)
    nn.init.normal_(m.weight, 0.0, 0.02)
    nn.init.zeros_(m.bias)
    return m


class Embeddings(nn.Module):
    def __init__(self, spec, tokens, vocab):
        super().__init__()
        d = spec["dim"]
        self.word = nn.Embedding(vocab, d, padding_idx=0)
        nn.init.normal_(self.word.weight, 0.0, 0.02)
        with torch.no_grad():
            self.word.weight[0].zero_()
        self.pos = nn.Parameter(torch.randn(tokens, d) * 0.02) if spec.get("positions", True) else None
        self.norm = nn.LayerNorm(d, eps=1e-12) if spec.get("layer_norm", False) else None
        self.drop = nn.Dropout(spec.get("dropout", 0.0))

    def forward(self, ids):
        x = self.word(ids)
        if self.pos is not None:
            x = x + self.pos
        if self.norm is not None:
            x = self.norm(x)
        return self.drop(x)


class EncoderLayer(nn.Module):
    """Post-norm BERT layer: masked multi-head attention (no dropout on the probabilities),
    dropout, residual, LayerNorm; GELU feed-forward, dropout, residual, LayerNorm."""

    def __init__(self, d, heads, ffn, p, eps):
        super().__init__()
        self.h = heads
        self.q, self.k, self.v, self.o = (bert_linear(d, d) for _ in range(4))
        self.ln1 = nn.LayerNorm(d, eps=eps)
        self.ff1, self.ff2 = bert_linear(d, ffn), bert_linear(ffn, d)
        self.ln2 = nn.LayerNorm(d, eps=eps)
        self.drop = nn.Dropout(p)

    def forward(self, x, pad):
        n, t, d = x.shape
        split = lambda y: y.view(n, t, self.h, d // self.h).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(d // self.h))
        s = s.masked_fill(pad[:, None, None, :], float("-inf"))
        a = (s.softmax(-1) @ v).transpose(1, 2).reshape(n, t, d)
        x = self.ln1(x + self.drop(self.o(a)))
        return self.ln2(x + self.drop(self.ff2(F.gelu(self.ff1(x)))))


class TextCNN(nn.Module):
    def __init__(self, d, spec):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(d, spec["channels"], k) for k in spec["kernels"])

    def forward(self, x):
        x = x.transpose(1, 2)
        return torch.cat([F.relu(c(x)).amax(dim=2) for c in self.convs], 1)


class Model(nn.Module):
    def __init__(self, recipe, tokens, vocab, classes):
        super().__init__()
        self.layers = nn.ModuleList()
        self.kinds = []
        d = None
        for spec in recipe["layers"]:
            kind = spec["type"]
            reps = spec.get("repeat", 1)
            for _ in range(reps):
                if kind == "embedding":
                    m, d = Embeddings(spec, tokens, vocab), spec["dim"]
                elif kind == "transformer_encoder":
                    m = EncoderLayer(d, spec["heads"], spec["ffn"], spec.get("dropout", 0.1),
                                     spec.get("eps", 1e-12))
                elif kind == "text_cnn":
                    m, d = TextCNN(d, spec), spec["channels"] * len(spec["kernels"])
                elif kind == "dropout":
                    m = nn.Dropout(spec["p"])
                elif kind == "pool":
                    if spec["mode"] != "cls":
                        raise SystemExit(f"text_peer.py: pool mode {spec['mode']} not supported")
                    m = None
                elif kind == "linear":
                    out = classes if spec["out_features"] == "classes" else spec["out_features"]
                    m, d = nn.Linear(d, out), out
                elif kind == "tanh":
                    m = nn.Tanh()
                else:
                    raise SystemExit(f"text_peer.py: layer {kind} not supported")
                self.kinds.append(kind)
                self.layers.append(m if m is not None else nn.Identity())

    def forward(self, ids):
        pad = ids == 0
        x = ids
        for kind, m in zip(self.kinds, self.layers):
            if kind == "transformer_encoder":
                x = m(x, pad)
            elif kind == "pool":
                x = x[:, 0]
            else:
                x = m(x)
        return x


def lr_at(train, base, step, total):
    warm = train.get("warmup_steps", 0)
    if train.get("schedule", "constant") == "cosine":
        body = lambda s: 0.5 * base * (math.cos(math.pi * min(s / max(total - warm, 1), 1.0)) + 1.0)
    elif train.get("schedule", "constant") == "constant":
        body = lambda s: base
    else:
        raise SystemExit(f"text_peer.py: schedule {train['schedule']} not supported")
    if step < warm:
        return body(0) * (step + 1) / warm
    return body(step - warm)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--epochs", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    tr, tr_y, te, te_y, t, vocab, classes = load_data(a.data)
    recipe = load_recipe(a.recipe, {"tokens": t, "vocab": vocab})
    train = recipe["train"]
    batch, epochs = train["batch"], a.epochs or train["epochs"]
    base_lr = train["lr"]
    model = Model(recipe, t, vocab, classes)
    decay = [p for p in model.parameters() if p.dim() > 1]
    rest = [p for p in model.parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": train.get("weight_decay", 0.01)},
                             {"params": rest, "weight_decay": 0.0}], lr=base_lr,
                            betas=(train.get("beta1", 0.9), train.get("beta2", 0.999)),
                            eps=train.get("eps", 1e-8))
    clip = train.get("clip_norm", 0)
    tr_x, tr_t = torch.from_numpy(tr), torch.from_numpy(tr_y)
    te_x, te_t = torch.from_numpy(te), torch.from_numpy(te_y)
    n = len(tr_x)
    steps_per_epoch = (n + batch - 1) // batch
    total = steps_per_epoch * epochs
    print(f"recipe {recipe['name']}: {n} train / {len(te_x)} test sequences of {t} tokens, vocab "
          f"{vocab}, batch {batch}, epochs {epochs}, lr {base_lr}, torch {torch.__version__} "
          f"threads {torch.get_num_threads()}", flush=True)
    step, train_wall = 0, 0.0
    for e in range(epochs):
        model.train()
        perm = torch.randperm(n)
        t0 = time.perf_counter()
        loss_sum, right = 0.0, 0
        for b in range(steps_per_epoch):
            idx = perm[b * batch:(b + 1) * batch]
            for g in opt.param_groups:
                g["lr"] = lr_at(train, base_lr, step, total)
            logits = model(tr_x[idx])
            loss = F.cross_entropy(logits, tr_t[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            step += 1
            loss_sum += loss.item() * len(idx)
            right += (logits.argmax(1) == tr_t[idx]).sum().item()
        dt = time.perf_counter() - t0
        train_wall += dt
        print(f"epoch {e + 1}: {dt:.2f} s, train loss {loss_sum / n:.4f}, train acc "
              f"{right / n:.4f}", flush=True)
    model.eval()
    with torch.no_grad():
        right = sum((model(te_x[i:i + 256]).argmax(1) == te_t[i:i + 256]).sum().item()
                    for i in range(0, len(te_x), 256))
        acc = right / len(te_x)
        lat = []
        for i in range(min(550, len(te_x))):
            s0 = time.perf_counter()
            model(te_x[i:i + 1])
            lat.append(time.perf_counter() - s0)
        b1_ms = float(np.median(lat[50:])) * 1e3
        rates = []
        for _ in range(6):
            s0 = time.perf_counter()
            for i in range(0, len(te_x), 256):
                model(te_x[i:i + 256])
            rates.append(len(te_x) / (time.perf_counter() - s0))
        b256 = float(np.median(rates[1:]))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    train_sps = n * epochs / train_wall
    print(f"train {train_sps:.0f} seq/s | test acc {acc * 100:.2f}% | batch-1 latency {b1_ms:.3f} "
          f"ms | batch-256 {b256:.0f} seq/s | peak RSS {rss:.0f} MiB")
    r = {"engine": "torch", "recipe": recipe["name"], "threads": a.threads, "batch": batch,
         "epochs": epochs, "train_sps": train_sps, "train_wall_s": train_wall, "test_acc": acc,
         "b1_latency_ms": b1_ms, "b256_sps": b256, "peak_rss_mib": rss}
    if a.json:
        json.dump(r, open(a.json, "w"))


if __name__ == "__main__":
    main()
