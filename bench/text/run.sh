#!/usr/bin/env bash
# Text models in Fathom against PyTorch, in one run: bench-text prepares the synthetic corpus
# and its token ids (tokenizer trained on the training split), then for each recipe trains it in
# Fathom (bench-text train) and in PyTorch (text_peer.py) on those ids, each with 1 and 2
# threads, and compare.py prints the table with ratios of the best thread counts.
#
#   bench/text/run.sh [BUILD_DIR]        (default build-textbench; run from anywhere, with nice)
#
# Environment: EPOCHS (the recipes' own, 10), DOCS (6000), MODELS ("text-cnn text-transformer").
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-textbench}
[ -d "$build" ] || build=$root/$1
bench=$build/bench/text/bench-text
[ -x "$bench" ] || { echo "run.sh: $bench not built (meson compile -C $build bench-text)" >&2; exit 1; }
epochs=()
[ -n "${EPOCHS:-}" ] && epochs=(--epochs "$EPOCHS")
out=$(mktemp -d /tmp/fathom-bench-text.XXXXXX)

# The peer needs Debian's PyTorch; it is large, so it is installed here, not by setup-deps.sh.
if ! /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
  echo "== installing python3-torch (large, once)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq python3-torch python3-numpy >/dev/null
fi

load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "== machine: $(nproc) cores, load before: $(load) (1, 5, 15 min; shared machine)"
"$bench" prepare --out "$out/corpus.bin" --docs "${DOCS:-6000}"

ours_run() { # recipe, threads
  echo "== fathom $1, $2 thread(s)  (load $(load))"
  OPENBLAS_NUM_THREADS=1 FTH_SOURCE_DIR=$root "$bench" train --data "$out/corpus.bin" --recipe "$1" \
    --threads "$2" "${epochs[@]}" > "$out/fathom_$1_t$2.log" 2>&1 \
    || { tail -5 "$out/fathom_$1_t$2.log"; exit 1; }
  grep '^train ' "$out/fathom_$1_t$2.log" | sed 's/^/   /'
  grep '^RESULT_JSON ' "$out/fathom_$1_t$2.log" | sed 's/^RESULT_JSON //' > "$out/fathom_$1_t$2.json"
}
peer_run() { # recipe, threads
  echo "== torch $1, $2 thread(s)  (load $(load))"
  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=$2 /usr/bin/python3 "$root/bench/text/text_peer.py" \
    --data "$out/corpus.bin" --recipe "$1" --threads "$2" "${epochs[@]}" \
    --json "$out/torch_$1_t$2.json" > "$out/torch_$1_t$2.log" 2>&1 \
    || { tail -5 "$out/torch_$1_t$2.log"; exit 1; }
  tail -1 "$out/torch_$1_t$2.log" | sed 's/^/   /'
}

# Interleaved: on a shared machine the load drifts, and runs close together see similar load.
for model in ${MODELS:-text-cnn text-transformer}; do
  ours_run "$model" 1
  peer_run "$model" 1
  ours_run "$model" 2
  peer_run "$model" 2
done
echo "== load after: $(load)"
/usr/bin/python3 "$root/bench/text/compare.py" "$out"
echo "(raw logs and JSON in $out)"
