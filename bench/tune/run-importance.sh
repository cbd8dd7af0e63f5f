#!/usr/bin/env bash
# Fathom's fANOVA parameter importances against Optuna 3.1's on the very same trials:
#   bash bench/tune/run-importance.sh [BUILD_DIR]
# Installs Debian's python3-optuna and python3-sklearn when missing (Optuna's fANOVA fits
# scikit-learn forests). The studies: synthetic ones of known structure that
# importance_peer.py writes as Fathom journals, and real TPE runs of bench-tune's test
# functions (`fathom tune --journal`). Each journal goes to bench-importance --journal (Fathom,
# forest seeds 0-4) and to optuna.importance (seeds 0-4, measured in this run); compare prints
# both vectors and the table (rank agreement, max difference, Optuna's own spread, times).
# Fathom also runs on each study rewritten in Optuna's coordinates (log parameters linear,
# integers on [low, high]): what is left of a difference there is not the scale.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-tuneimp}
out=$(mktemp -d /tmp/fth-bench-importance.XXXXXX)
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
py=/usr/bin/python3

if ! $py -c 'import optuna, sklearn' 2>/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
    python3-optuna python3-sklearn >/dev/null || true
fi
if ! $py -c 'import optuna, sklearn' 2>/dev/null; then
  echo "run-importance: $py lacks optuna or sklearn (apt-get install python3-optuna" \
       "python3-sklearn): no peer to compare with" >&2
  exit 77
fi
meson compile -C "$build" bench/tune/bench-importance app/cli/fathom >/dev/null

$py "$root/bench/tune/importance_peer.py" generate "$out"
journals=()
for f in one-of-5 two-additive three-additive tiny-values interacting pure-interaction log-lr \
         categorical int-layers conditional; do
  journals+=("$out/$f.jsonl")
done
# Real studies: Fathom's TPE on the benchmark functions, at their benchmark budgets.
for f in branin hartmann6 rosenbrock4 ackley5 lc2; do
  "$build/app/cli/fathom" tune --objective "$f" --sampler tpe --seed 1 \
    --journal "$out/tpe-$f.jsonl" >"$out/tpe-$f.log" 2>&1
  journals+=("$out/tpe-$f.jsonl")
done
# Fathom on each study as it is, and on the same trials in Optuna's coordinates.
for j in "${journals[@]}"; do
  nice "$build/bench/tune/bench-importance" --journal "$j" 5 >>"$out/fathom.jsonl"
  $py "$root/bench/tune/importance_peer.py" optuna-coords "$j" "${j%.jsonl}.oc.jsonl"
  nice "$build/bench/tune/bench-importance" --journal "${j%.jsonl}.oc.jsonl" 5 \
    >>"$out/fathom-oc.jsonl"
done
nice $py "$root/bench/tune/importance_peer.py" compare "$out/fathom.jsonl" \
  "$out/fathom-oc.jsonl" "${journals[@]}"
echo "# journals and Fathom's runs in $out" >&2
