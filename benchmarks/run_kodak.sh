#!/usr/bin/env bash
# The paper's motion-deblurring protocol on held-out photos: 256x256 centre crops, the paper's
# test kernels (64x64, intensity 0.5; kernel j of golden/motion_kernels_64_i0.5_ref.npz blurs
# image j), reflect borders, Gaussian noise std 0.01 in [0, 1] (0.02 in [-1, 1]), every method.
#   1. Kodak24 (24 images)           -> benchmarks/results/kodak24/
#   2. CBSD68, first 8 images       -> benchmarks/results/cbsd68-8/
# The BlindDPS references in benchmarks/results/RESULTS.md are this command with the priors of
# 2026-11-27 (their folders are at commit 595c1c5); the product's rows: benchmarks/run_prox.sh.
#
#   benchmarks/run_kodak.sh                      # 2 processes (torchrun), 1 thread each
#   NPROC=1 THREADS=2 benchmarks/run_kodak.sh    # one process
#   OUT_ROOT=/tmp/smoke benchmarks/run_kodak.sh --limit 1 --steps 5   # extra options override
# Rerunning the same command resumes: finished (method, image) items are read from cache/.
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/common.sh
KERNELS="$SHARED/golden/motion_kernels_64_i0.5_ref.npz"

common=(--task motion --crop 256 --kernel-size 64 --intensity 0.5 --noise 0.01 --kernels "$KERNELS"
        --padding reflect --methods blinddps,dps-oracle,pan-l0,blurry
        --steps 50 --seed 0 --image-prior natural-rgb --kernel-prior kernel-64 --threads "$THREADS")

run bench --images "$SHARED/data/bench/kodak24" "${common[@]}" -o "$OUT_ROOT/kodak24" "$@"
run bench --images "$SHARED/data/bench/cbsd68" --limit 8 "${common[@]}" -o "$OUT_ROOT/cbsd68-8" "$@"
