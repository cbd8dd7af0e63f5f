#!/usr/bin/env bash
# Engine vs PyTorch on Fashion-MNIST, in one run: the peer script (../shared/peers/torch/
# fmnist_cnn.py) in its two configurations and bench-fmnist on the same models, batch, data and
# optimizer; then the best recipe found toward 92.5% test accuracy. Prints the side-by-side
# table with ratios (compare.py).
#
#   bench/engine/run.sh [BUILD_DIR]        (default build-nn; run from anywhere, with nice)
#
# Environment: EPOCHS (2), BEST_RECIPE (fmnist-best), SKIP_BEST=1 to leave the long run out,
# LIMIT=N to train on the first N images only (a quick check of the script, not a benchmark).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-nn}
[ -d "$build" ] || build=$root/$1
peer=$(cd "$root/../shared/peers/torch" 2>/dev/null && pwd || true)
[ -f "$peer/fmnist_cnn.py" ] || { echo "run.sh: ../shared/peers/torch/fmnist_cnn.py not found" >&2; exit 1; }
bench=$build/bench/engine/bench-fmnist
[ -x "$bench" ] || { echo "run.sh: $bench not built (meson compile -C $build)" >&2; exit 1; }
epochs=${EPOCHS:-2}
limit=()
[ -n "${LIMIT:-}" ] && limit=(--limit-train "$LIMIT")
out=$(mktemp -d /tmp/fathom-bench-engine.XXXXXX)

# The peer needs Debian's PyTorch; it is large, so it is installed here, not by setup-deps.sh.
if ! /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
  echo "== installing python3-torch (large, once)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq python3-torch python3-numpy >/dev/null
fi

load() { awk '{print $1}' /proc/loadavg; }
echo "== machine: $(nproc) cores, load before: $(load) (1-min average; >0.3 means others are busy)"

peer_run() { # name, args...
  local name=$1; shift
  echo "== torch $name: fmnist_cnn.py $*  (load $(load))"
  (cd "$out" && /usr/bin/python3 "$peer/fmnist_cnn.py" "$@" "${limit[@]}" --json "$out/torch_$name.json" \
     > "$out/torch_$name.log" 2>&1) || { tail -5 "$out/torch_$name.log"; exit 1; }
  grep -E '^epoch|^inference' "$out/torch_$name.log" | sed 's/^/   /'
}
ours_run() { # name, args...
  local name=$1; shift
  echo "== fathom $name: bench-fmnist $*  (load $(load))"
  OPENBLAS_NUM_THREADS=1 FTH_SOURCE_DIR=$root "$bench" "$@" "${limit[@]}" > "$out/fathom_$name.log" 2>&1 \
    || { tail -5 "$out/fathom_$name.log"; exit 1; }
  grep -E '^epoch|^train steady' "$out/fathom_$name.log" | sed 's/^/   /'
  grep '^RESULT_JSON ' "$out/fathom_$name.log" | sed 's/^RESULT_JSON //' > "$out/fathom_$name.json"
}

# Interleaved, most important pairs first: on a shared machine the load drifts, and pairs run
# close together see similar load; compare.py prints whatever has finished.
ours_run cnn --recipe fmnist-cnn --epochs "$epochs" --batch 64 --lr 0.05 --threads 2
peer_run cnn_best --model cnn --epochs "$epochs" --threads 2 --blas-threads 1
ours_run mlp --recipe mlp --epochs "$epochs" --batch 64 --lr 0.05 --threads 2
peer_run mlp_best --model mlp --epochs "$epochs" --threads 1
ours_run mlp_t1 --recipe mlp --epochs "$epochs" --batch 64 --lr 0.05 --threads 1
peer_run cnn_user --model cnn --epochs "$epochs" --threads 2
peer_run mlp_user --model mlp --epochs "$epochs" --threads 2
if [ "${SKIP_BEST:-0}" != 1 ]; then
  ours_run best --recipe "${BEST_RECIPE:-fmnist-best}" --threads 2
fi
echo "== load after: $(load)"
/usr/bin/python3 "$root/bench/engine/compare.py" "$out"
echo "(raw logs and JSON in $out)"
