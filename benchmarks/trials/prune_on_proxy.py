"""Trial (for the record): the shipped single search (kernel_proxy's search:65:1) with Pan's
component pruning at mass 0.1 (shipped), 0.05 and 0 (off), on the kernel_proxy training cases.
    python benchmarks/trials/prune_on_proxy.py "0.1@search:65:1,0.05@search:65:1,0.0@search:65:1" out.jsonl
"""
import sys, json, time, functools
import multiprocessing as mp
sys.path.insert(0, '/work/main/benchmarks')
def run(job):
    i, names, out = job
    import torch
    torch.set_num_threads(1)
    import kernel_proxy as kp
    import blinddps.baselines.pan_l0 as pl
    from blinddps.estimation.cleanup import prune_components
    from blinddps.io.images import list_images
    from pathlib import Path
    from blinddps.metrics import kernel_mnc
    from blinddps.metrics.error_ratio import error_ratios, levin_deconv
    ps = list_images([Path('/work/shared/data/train/bsds500')])
    x, y, kt = kp.case(ps[i], i)
    row = {"index": i}
    for n in names:
        mass, method = n.split("@")
        pl.prune_components = functools.partial(prune_components, min_mass=float(mass))
        t = time.perf_counter()
        k = kp.estimate(method, y)
        row[n] = [float(error_ratios(x, y, k, kt[None, None], levin_deconv, subpixels=(4,), crop=15)[4][0]),
                  float(kernel_mnc(k.float(), kt[None, None].float())[0]), time.perf_counter() - t]
    open(out, 'a').write(json.dumps(row) + "\n")
if __name__ == "__main__":
    names = sys.argv[1].split(",")
    with mp.get_context("spawn").Pool(2) as pool:
        list(pool.imap_unordered(run, [(i, names, sys.argv[2]) for i in range(340, 364)]))
