#!/usr/bin/env bash
# The proximal sampler on the three deblurring protocols, beside the classical references:
# prox (blind), prox-oracle (the TRUE kernel: non-blind), wiener-oracle (the TRUE kernel, the
# best regularisation weight per image), Pan-L0 and the blurry input.
#   1. Levin 2009, 32 cases (noise-free circular files)      -> benchmarks/results/levin09-prox/
#   2. Kodak24, 24 crops 256 px, the paper's kernels + 0.01  -> benchmarks/results/kodak24-prox/
#   3. CBSD68, first 8, the same protocol                    -> benchmarks/results/cbsd68-8-prox/
#
#   benchmarks/run_prox.sh                      # 2 processes (torchrun), 1 thread each
#   OUT_ROOT=/tmp/smoke benchmarks/run_prox.sh --limit 1   # extra options override
# The proximal rows ignore --steps (they run RestoreConfig's prox_steps, 20).
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/common.sh
KERNELS="$SHARED/golden/motion_kernels_64_i0.5_ref.npz"
METHODS="${METHODS:-prox,prox-oracle,wiener-oracle,pan-l0,blurry}"

run bench --images "$SHARED/data/bench/levin09" --task levin --methods "$METHODS" \
  --kernel-size 64 --noise 0 --seed 0 --image-prior natural-rgb \
  --threads "$THREADS" -o "$OUT_ROOT/levin09-prox" "$@"

photos=(--task motion --crop 256 --kernel-size 64 --intensity 0.5 --noise 0.01 --kernels "$KERNELS"
        --padding reflect --methods "$METHODS" --seed 0 --image-prior natural-rgb --threads "$THREADS")
run bench --images "$SHARED/data/bench/kodak24" "${photos[@]}" -o "$OUT_ROOT/kodak24-prox" "$@"
run bench --images "$SHARED/data/bench/cbsd68" --limit 8 "${photos[@]}" -o "$OUT_ROOT/cbsd68-8-prox" "$@"
