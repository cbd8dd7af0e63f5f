#!/usr/bin/python3
"""Table of bench/text/run.sh's results: per recipe, Fathom against PyTorch at 1 and 2 threads
and against PyTorch's best of the two for each measure, as a ratio (> 1: Fathom better).

  compare.py DIR    (DIR holds fathom_RECIPE.json and torch_RECIPE_t{1,2}.json)
"""
import glob
import json
import os
import sys

# name, key, higher is better, format
MEASURES = [("training, sequences/s", "train_sps", True, "{:.0f}"),
            ("inference batch 1, latency ms", "b1_latency_ms", False, "{:.3f}"),
            ("inference batch 256, sequences/s", "b256_sps", True, "{:.0f}"),
            ("peak RSS, MiB", "peak_rss_mib", False, "{:.0f}"),
            ("test accuracy, %", "test_acc", True, "{:.2f}")]


def load(path):
    return json.load(open(path)) if os.path.exists(path) else None


def main(d):
    print("| model | measure | PyTorch 1 thread | PyTorch 2 threads | Fathom "
          "| Fathom vs PyTorch best (> 1: Fathom better) |")
    print("|---|---|---|---|---|---|")
    for path in sorted(glob.glob(os.path.join(d, "fathom_*.json"))):
        ours = load(path)
        recipe = ours["recipe"]
        peers = [load(os.path.join(d, f"torch_{recipe}_t{t}.json")) for t in (1, 2)]
        for name, key, higher, fmt in MEASURES:
            scale = 100 if key == "test_acc" else 1
            cells = [fmt.format(p[key] * scale) if p else "-" for p in peers]
            vals = [p[key] for p in peers if p]
            ratio = "-"
            if vals:
                best = max(vals) if higher else min(vals)
                r = ours[key] / best if higher else best / ours[key]
                ratio = f"{r:.2f}x"
            print(f"| {recipe} ({ours['threads']} threads) | {name} | {cells[0]} | {cells[1]} | "
                  f"{fmt.format(ours[key] * scale)} | {ratio} |")


if __name__ == "__main__":
    main(sys.argv[1])
