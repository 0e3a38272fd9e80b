#!/usr/bin/env bash
# Levin et al. 2009 blind-deblurring benchmark: all 32 cases (4 grey 255x255 images x 8 real
# camera-shake kernels, 13..27 px), the provided noise-free circular blurs, every method.
# Results: benchmarks/results/levin09/ (see benchmarks/README.md). The BlindDPS reference in
# benchmarks/results/RESULTS.md is this command with the priors of 2026-11-27 (its folder is at
# commit 595c1c5); the product's rows: benchmarks/run_prox.sh.
#
#   benchmarks/run_levin.sh                      # 2 processes (torchrun), 1 thread each
#   NPROC=1 THREADS=2 benchmarks/run_levin.sh    # one process
#   benchmarks/run_levin.sh --limit 1 --steps 5  # extra options override the defaults
# Rerunning the same command resumes: finished (method, image) items are read from cache/.
set -euo pipefail
cd "$(dirname "$0")/.."
. benchmarks/common.sh

run bench --images "$SHARED/data/bench/levin09" --task levin \
  --methods blinddps,dps-oracle,pan-l0,blurry \
  --steps 50 --kernel-size 64 --noise 0 --seed 0 \
  --image-prior natural-rgb --kernel-prior kernel-64 \
  --threads "$THREADS" -o "$OUT_ROOT/levin09" "$@"
