"""Trial (for the record): the shipped single search (kernel_proxy's search:65:1) with its latent
step's border padded by the harmonic fill (harmonic_pad of the trial package, see
estimation_907477c.patch) instead of pad_periodic's linear blend, on the kernel_proxy training cases.
    python benchmarks/trials/harmonic_on_proxy.py "harm@search:65:1" out.jsonl
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
    from blinddps.physics.fft import pad_periodic
    from blinddps.estimation_old.kernel import harmonic_pad
    from blinddps.io.images import list_images
    from pathlib import Path
    from blinddps.metrics import kernel_mnc
    from blinddps.metrics.error_ratio import error_ratios, levin_deconv
    ps = list_images([Path('/work/shared/data/train/bsds500')])
    x, y, kt = kp.case(ps[i], i)
    row = {"index": i}
    for n in names:
        pad, method = n.split("@")
        pl.pad_periodic = harmonic_pad if pad == "harm" else pad_periodic
        t = time.perf_counter()
        k = kp.estimate(method, y)
        row[n] = [float(error_ratios(x, y, k, kt[None, None], levin_deconv, subpixels=(4,), crop=15)[4][0]),
                  float(kernel_mnc(k.float(), kt[None, None].float())[0]), time.perf_counter() - t]
    open(out, 'a').write(json.dumps(row) + "\n")
if __name__ == "__main__":
    names = sys.argv[1].split(",")
    with mp.get_context("spawn").Pool(2) as pool:
        list(pool.imap_unordered(run, [(i, names, sys.argv[2]) for i in range(340, 364)]))
