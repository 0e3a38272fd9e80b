#!/usr/bin/env bash
# The shipped rows of benchmarks/results/RESULTS.md: the product (`prox`, blind, default
# settings) and the proximal sampler given the TRUE kernel (`prox-oracle`), each beside the
# blurry input, with the commands RESULTS.md lists.
#   1. Levin 2009, 32 cases, noise-free      -> benchmarks/results/levin09-blind/
#   2. Kodak24, 256 px crops, 64 px kernels  -> benchmarks/results/kodak24-blind/
#   3. CBSD68, first 24, the same protocol   -> benchmarks/results/cbsd68-24-blind/
#   4. Kodak24 through turbulence            -> benchmarks/results/kodak24-turbulence/
#   5. Levin 2009, TRUE kernel               -> benchmarks/results/levin09-true-kernel/
#   6. Kodak24, TRUE kernel                  -> benchmarks/results/kodak24-true-kernel/
#   7. CBSD68, first 8, TRUE kernel          -> benchmarks/results/cbsd68-8-true-kernel/
#
#   benchmarks/run_prox.sh                      # 2 processes (torchrun), 1 thread each
#   OUT_ROOT=/tmp/smoke benchmarks/run_prox.sh --limit 1   # extra options override
# BLIND_METHODS / ORACLE_METHODS set the methods of the blind and the TRUE-kernel runs; the
# references RESULTS.md quotes (Pan-L0, the Wiener oracle) come from adding them, e.g.
#   BLIND_METHODS=prox,pan-l0,blurry ORACLE_METHODS=prox-oracle,wiener-oracle,blurry \
#     OUT_ROOT=/tmp/ref benchmarks/run_prox.sh
# The proximal rows ignore --steps (they run RestoreConfig's prox_steps, 20).
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/common.sh
KERNELS="$SHARED/golden/motion_kernels_64_i0.5_ref.npz"
BLIND="${BLIND_METHODS:-prox,blurry}"
ORACLE="${ORACLE_METHODS:-prox-oracle,blurry}"

levin=(--images "$SHARED/data/bench/levin09" --task levin --kernel-size 64 --noise 0 --seed 0
       --threads "$THREADS")
photos=(--task motion --crop 256 --kernel-size 64 --intensity 0.5 --noise 0.01 --kernels "$KERNELS"
        --padding reflect --seed 0 --threads "$THREADS")

run bench "${levin[@]}" --methods "$BLIND" -o "$OUT_ROOT/levin09-blind" "$@"
run bench --images "$SHARED/data/bench/kodak24" "${photos[@]}" --methods "$BLIND" \
  -o "$OUT_ROOT/kodak24-blind" "$@"
run bench --images "$SHARED/data/bench/cbsd68" --limit 24 "${photos[@]}" --methods "$BLIND" \
  -o "$OUT_ROOT/cbsd68-24-blind" "$@"
run bench --images "$SHARED/data/bench/kodak24" --task turbulence --crop 256 --kernel-size 64 \
  --gaussian-std 3.0 --noise 0.01 --padding reflect --seed 0 --threads "$THREADS" \
  --methods "$BLIND" -o "$OUT_ROOT/kodak24-turbulence" "$@"

run bench "${levin[@]}" --methods "$ORACLE" -o "$OUT_ROOT/levin09-true-kernel" "$@"
run bench --images "$SHARED/data/bench/kodak24" "${photos[@]}" --methods "$ORACLE" \
  -o "$OUT_ROOT/kodak24-true-kernel" "$@"
run bench --images "$SHARED/data/bench/cbsd68" --limit 8 "${photos[@]}" --methods "$ORACLE" \
  -o "$OUT_ROOT/cbsd68-8-true-kernel" "$@"
