# Shared settings of the benchmark scripts (sourced, not run): where the data and results
# live, how many processes, and `run`, which starts blinddps under torchrun when NPROC > 1.
SHARED="${BLINDDPS_SHARED:-../shared}"
OUT_ROOT="${OUT_ROOT:-benchmarks/results}"
NPROC="${NPROC:-2}"
THREADS="${THREADS:-1}"
PYTHON="${PYTHON:-python}"

run() {
  if [ "$NPROC" -gt 1 ]; then
    "$PYTHON" -m torch.distributed.run --standalone --nproc-per-node "$NPROC" -m blinddps "$@"
  else
    "$PYTHON" -m blinddps "$@"
  fi
}
