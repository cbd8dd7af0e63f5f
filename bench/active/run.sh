#!/bin/sh
# Simulated active learning on Fashion-MNIST (bench/RESULTS.md, "Active learning").
# Usage: bench/active/run.sh BUILD_DIR OUT_DIR
# What fit three sessions on the shared 2-core machine: margin with 3 seeds to 1,700 labels (seed 1
# to 2,600, with random), hybrid and least-confidence with 3 seeds to 1,700, bald, core-set and
# entropy with 3 seeds to 1,700 (one process per seed, two at a time, concatenated; entropy seed 3
# again to 2,100, it was at 0.8471 at 1,700), random with 3 seeds to 3,500. Each step writes its
# CSV row by row, so a cut-short run still summarises; the last step merges them into the table
# and the plot (a strategy and seed that a later file has again, a longer run, take that file's
# rows). b1.csv, r23.csv and the *-23.csv files in results/ are the earlier builds' shorter runs
# of those strategies, superseded by the later files and kept for the record.
set -eu
build=${1:-build-active}
out=${2:-bench/active/out}
bench="$build/bench/active/bench-active"
mkdir -p "$out"
nice "$bench" --strategies random,margin --seeds 1 --first-seed 1 --rounds 25 \
  --csv "$out/a1.csv" > "$out/a1.log"
nice "$bench" --strategies margin --seeds 2 --first-seed 2 --rounds 16 \
  --csv "$out/m23.csv" > "$out/m23.log"
nice "$bench" --strategies hybrid --seeds 3 --first-seed 1 --rounds 16 \
  --csv "$out/h16.csv" > "$out/h16.log"
nice "$bench" --strategies least-confidence --seeds 3 --first-seed 1 --rounds 16 \
  --csv "$out/lc16.csv" > "$out/lc16.log"
# One process per seed (that is how they ran); concatenated into one file per strategy.
third() { # STRATEGY ROUNDS FILE SEED...
  s=$1 r=$2 f=$3
  shift 3
  echo strategy,seed,round,labels,accuracy,fit_s,score_s,round_s,cpu_s > "$out/$f.csv"
  for seed in "$@"; do
    nice "$bench" --strategies $s --seeds 1 --first-seed $seed --rounds $r \
      --csv "$out/$f-$seed.csv" > "$out/$f-$seed.log"
    tail -n +2 "$out/$f-$seed.csv" >> "$out/$f.csv"
  done
}
for s in bald coreset entropy; do
  third $s 16 ${s}16 1 2 3
done
third random 34 r35 1 2 3
nice "$bench" --strategies entropy --seeds 1 --first-seed 3 --rounds 20 \
  --csv "$out/e3-20.csv" > "$out/e3-20.log"
"$bench" --from-csv "$out/a1.csv,$out/m23.csv,$out/h16.csv,$out/lc16.csv,$out/bald16.csv,$out/coreset16.csv,$out/entropy16.csv,$out/e3-20.csv,$out/r35.csv" \
  --png "$out/curves.png" | tee "$out/summary.txt"
