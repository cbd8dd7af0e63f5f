#!/usr/bin/env bash
# bf16 mixed precision on the CPU (the graph's bf16 GEMMs, AVX512_BF16) against fp32: the zoo's
# fmnist-cnn trained 2 epochs on Fashion-MNIST with the same seed, batch 64, SGD lr 0.05
# momentum 0.9, each precision in turn; prints the test accuracy and steady training images/s of
# both and their differences. Training throughput only: bench-fmnist's inference rows are fp32.
#
#   nice bench/engine/bf16.sh [BUILD_DIR]      (default build-nn; EPOCHS=N, LIMIT=N for a quick check)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-nn}
[ -d "$build" ] || build=$root/$1
bench=$build/bench/engine/bench-fmnist
[ -x "$bench" ] || { echo "bf16.sh: $bench not built (meson compile -C $build)" >&2; exit 1; }
grep -q avx512_bf16 /proc/cpuinfo || { echo "bf16.sh: this CPU has no AVX512_BF16" >&2; exit 1; }
limit=()
[ -n "${LIMIT:-}" ] && limit=(--limit-train "$LIMIT")
out=$(mktemp -d /tmp/fathom-bench-bf16.XXXXXX)
load() { awk '{print $1}' /proc/loadavg; }

for p in fp32 bf16; do
  echo "== $p: bench-fmnist --recipe fmnist-cnn --precision $p  (load $(load))"
  OPENBLAS_NUM_THREADS=1 FTH_SOURCE_DIR=$root "$bench" --recipe fmnist-cnn --epochs "${EPOCHS:-2}" \
    --batch 64 --lr 0.05 --seed 1234 --threads 2 --precision "$p" "${limit[@]}" > "$out/$p.log" 2>&1 \
    || { tail -5 "$out/$p.log"; exit 1; }
  grep -E '^epoch' "$out/$p.log" | sed 's/^/   /'
  grep '^RESULT_JSON ' "$out/$p.log" | sed 's/^RESULT_JSON //' > "$out/$p.json"
done
echo "== load after: $(load)"
/usr/bin/python3 - "$out" <<'PY'
import json, sys
r = {p: json.load(open(f"{sys.argv[1]}/{p}.json")) for p in ("fp32", "bf16")}
print("| precision | test accuracy % | training img/s (steady) |")
print("|---|---|---|")
for p in ("fp32", "bf16"):
    print(f"| {p} | {100 * r[p]['final_test_acc']:.2f} | {r[p]['train_ips_steady_all_epochs']:.0f} |")
d = 100 * (r["bf16"]["final_test_acc"] - r["fp32"]["final_test_acc"])
s = r["bf16"]["train_ips_steady_all_epochs"] / r["fp32"]["train_ips_steady_all_epochs"]
print(f"| bf16 - fp32 | {d:+.2f} points | {s:.2f}x |")
PY
echo "(logs in $out)"
