#!/bin/sh
# Simulated active learning on Fashion-MNIST (bench/RESULTS.md, "Active learning").
# Usage: bench/active/run.sh BUILD_DIR OUT_DIR
# What fits a session on the shared 2-core machine, in two sessions' steps: random and margin
# with 3 seeds (random over 25 rounds = 2,600 labels, margin's seeds 2-3 over 16 rounds = 1,700),
# the other five strategies with 3 seeds over 8 rounds (900 labels), and hybrid and
# least-confidence, the best two of those five at 900 labels on seed 1, again with 3 seeds over
# 16 rounds (1,700 labels). Each
# step writes its CSV row by row, so a cut-short run still summarises; the last step merges them
# into the table and the plot (a strategy and seed that a later file has again, a longer run,
# take that file's rows: h16.csv and lc16.csv come last).
set -eu
build=${1:-build-active}
out=${2:-bench/active/out}
bench="$build/bench/active/bench-active"
mkdir -p "$out"
nice "$bench" --strategies random,margin --seeds 1 --first-seed 1 --rounds 25 \
  --csv "$out/a1.csv" > "$out/a1.log"
nice "$bench" --strategies entropy,least-confidence,bald,coreset,hybrid --seeds 1 --rounds 8 \
  --csv "$out/b1.csv" > "$out/b1.log"
nice "$bench" --strategies margin --seeds 2 --first-seed 2 --rounds 16 \
  --csv "$out/m23.csv" > "$out/m23.log"
nice "$bench" --strategies random --seeds 2 --first-seed 2 --rounds 25 \
  --csv "$out/r23.csv" > "$out/r23.log"
for s in least-confidence bald coreset entropy; do
  nice "$bench" --strategies $s --seeds 2 --first-seed 2 --rounds 8 \
    --csv "$out/$s-23.csv" > "$out/$s-23.log"
done
nice "$bench" --strategies hybrid --seeds 3 --first-seed 1 --rounds 16 \
  --csv "$out/h16.csv" > "$out/h16.log"
nice "$bench" --strategies least-confidence --seeds 3 --first-seed 1 --rounds 16 \
  --csv "$out/lc16.csv" > "$out/lc16.log"
"$bench" --from-csv "$out/a1.csv,$out/m23.csv,$out/r23.csv,$out/b1.csv,$out/least-confidence-23.csv,$out/bald-23.csv,$out/coreset-23.csv,$out/entropy-23.csv,$out/h16.csv,$out/lc16.csv" \
  --png "$out/curves.png" | tee "$out/summary.txt"
