#!/usr/bin/python3
"""Table of bench/text/run.sh's results: per recipe and measure, Fathom and PyTorch at 1 and 2
threads, and Fathom's best thread count against PyTorch's as a ratio (> 1: Fathom better).

  compare.py DIR    (DIR holds {fathom,torch}_RECIPE_t{1,2}.json)
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


def best(runs, key, higher):
    vals = [r[key] for r in runs if r]
    if not vals:
        return None
    return max(vals) if higher else min(vals)


def main(d):
    print("| model | measure | PyTorch 1 thread | PyTorch 2 threads | Fathom 1 thread "
          "| Fathom 2 threads | best vs best (> 1: Fathom better) |")
    print("|---|---|---|---|---|---|---|")
    recipes = sorted({os.path.basename(p)[len("fathom_"):].rsplit("_t", 1)[0]
                      for p in glob.glob(os.path.join(d, "fathom_*_t*.json"))})
    for recipe in recipes:
        peers = [load(os.path.join(d, f"torch_{recipe}_t{t}.json")) for t in (1, 2)]
        ours = [load(os.path.join(d, f"fathom_{recipe}_t{t}.json")) for t in (1, 2)]
        for name, key, higher, fmt in MEASURES:
            scale = 100 if key == "test_acc" else 1
            cells = [fmt.format(r[key] * scale) if r else "-" for r in peers + ours]
            b_peer, b_ours = best(peers, key, higher), best(ours, key, higher)
            ratio = "-"
            if b_peer and b_ours:
                ratio = f"{(b_ours / b_peer if higher else b_peer / b_ours):.2f}x"
            print(f"| {recipe} | {name} | {' | '.join(cells)} | {ratio} |")


if __name__ == "__main__":
    main(sys.argv[1])
