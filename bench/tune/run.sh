#!/usr/bin/env bash
# The tune benchmark, side by side with Optuna 3.1 measured in the same run:
#   bash bench/tune/run.sh [BUILD_DIR] [SEEDS]
# Installs Debian's python3-optuna when missing, runs bench-tune (Fathom) and the peer's
# scripts (shared/peers/optuna) on seeds 1..SEEDS, then prints the tables (compare.py).
# Without Optuna it compares with the peer's recorded results_*.json and says so.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-tune}
seeds=${2:-20}
peer=$root/../shared/peers/optuna
out=$(mktemp -d /tmp/fth-bench-tune.XXXXXX)
export OPENBLAS_NUM_THREADS=1

if ! /usr/bin/python3 -c 'import optuna' 2>/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
    python3-optuna python3-numpy python3-scipy python3-cmaes >/dev/null || true
fi
meson compile -C "$build" bench/tune/bench-tune >/dev/null

nice "$build/bench/tune/bench-tune" --seeds "$seeds" --out "$out/fathom.jsonl"
if /usr/bin/python3 -c 'import optuna' 2>/dev/null; then
  (cd "$out" && nice /usr/bin/python3 "$peer/bench_functions.py" --seeds "$seeds" \
     --samplers tpe,tpe_mv,random --out "$out/optuna_functions.json" >/dev/null)
  (cd "$out" && nice /usr/bin/python3 "$peer/bench_pruning.py" --seeds "$seeds" \
     --configs tpe/none,tpe/median,tpe/sha,tpe/hyperband,random/sha,random/median \
     --out "$out/optuna_pruning.json" >/dev/null)
  source="Optuna $(/usr/bin/python3 -c 'import optuna; print(optuna.__version__)'), measured in this run"
else
  cp "$peer/results_functions.json" "$out/optuna_functions.json"
  cp "$peer/results_pruning.json" "$out/optuna_pruning.json"
  source="Optuna 3.1.0, recorded results in shared/peers/optuna (not rerun: not installed)"
fi
/usr/bin/python3 "$root/bench/tune/compare.py" "$out/fathom.jsonl" "$out/optuna_functions.json" \
  "$out/optuna_pruning.json" "$source"
echo "# raw results in $out" >&2
