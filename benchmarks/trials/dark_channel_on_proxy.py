"""Trial: Pan 2016 dark-channel estimator written anew at 907477c (estimation_old) on the shake proxy."""
import sys, json, time
import multiprocessing as mp
from dataclasses import replace
sys.path.insert(0, '/work/main/benchmarks')
VARIANTS = {"dcp31": (31, {}), "dcp65": (65, {}), "l0_31": (31, {"dark_patch": 0}), "dcp31_noedges": (31, {"edges_per_bin": 0.0})}
def run(job):
    i, names = job
    import torch
    torch.set_num_threads(1)
    from kernel_proxy import case
    from blinddps.io.images import list_images
    from pathlib import Path
    from blinddps.metrics import kernel_mnc
    from blinddps.metrics.error_ratio import error_ratios, levin_deconv
    from blinddps.estimation_old import KernelEstimator, estimate_kernel
    ps = list_images([Path('/work/shared/data/train/bsds500')])
    x, y, kt = case(ps[i], i)
    row = {"index": i}
    for n in names:
        size, ch = VARIANTS[n]
        t = time.perf_counter()
        k = estimate_kernel(y, size, replace(KernelEstimator(), **ch)).kernel.double()
        row[n] = [float(error_ratios(x, y, k, kt[None, None], levin_deconv, subpixels=(4,), crop=15)[4][0]),
                  float(kernel_mnc(k.float(), kt[None, None].float())[0]), time.perf_counter() - t]
    print(json.dumps(row), flush=True)
    return row
if __name__ == "__main__":
    names = sys.argv[1].split(",")
    with mp.get_context("spawn").Pool(2) as pool:
        for row in pool.imap_unordered(run, [(i, names) for i in range(340, 364)]):
            open('/tmp/sup2/dcp.jsonl', 'a').write(json.dumps(row) + "\n")
