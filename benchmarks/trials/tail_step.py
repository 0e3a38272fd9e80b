"""Trial: one more kernel step at full scale after the shipped search, kept with hysteresis
(strong: >= 0.05 max, weak: >= low max, 8-connected), no feedback into the loop."""
import sys, json
import multiprocessing as mp
sys.path.insert(0, '/work/main/benchmarks')

def run(job):
    i, lows = job
    import torch
    torch.set_num_threads(1)
    from kernel_proxy import case
    from blinddps.io.images import list_images
    from pathlib import Path
    from blinddps.metrics import kernel_mnc
    from blinddps.metrics.error_ratio import error_ratios, levin_deconv
    from blinddps.metrics.image import rgb_to_luma
    from blinddps.priors.bundle import load_prior
    from blinddps.solvers.kernel_search import KernelSearchConfig, search_kernel, prior_denoised
    from blinddps.baselines.pan_l0 import _forward_diff_valid, _latent
    from blinddps.baselines._l0_ops import estimate_kernel, centre_kernel
    from blinddps.estimation.cleanup import hysteresis, normalise
    ps = list_images([Path('/work/shared/data/train/bsds500')])
    x, y, kt = case(ps[i], i)
    prior = load_prior("natural-rgb-3", kind="image")
    y3 = y.float().expand(1, 3, *y.shape[-2:])
    k0 = search_kernel(y3, 65, image_prior=prior, config=KernelSearchConfig(views=1, autocast=True)).kernel.double()
    yd = rgb_to_luma(prior_denoised(y3, prior, autocast=True)).double()
    def score(k):
        return [float(error_ratios(x, y, k, kt[None, None], levin_deconv, subpixels=(4,), crop=15)[4][0]),
                float(kernel_mnc(k.float(), kt[None, None].float())[0])]
    row = {"index": i, "base": score(k0)}
    bx, by = _forward_diff_valid(yd)
    for lg in (1e-3, 3e-4):
        s = _latent(yd, k0, 0.0, lg, "pad")
        sx, sy = _forward_diff_valid(s)
        raw = estimate_kernel(bx, by, sx, sy, 65, 2.0, low=1e-9)  # floor ~0: keep the LS solution (>0)
        for low in lows:
            peak = raw.flatten(1).amax(dim=1).view(-1, 1, 1, 1)
            k = normalise(raw * hysteresis((k0 > 0) & (raw >= 0.05 * peak), raw >= low * peak))
            row[f"lg{lg:g}_low{low:g}"] = score(centre_kernel(k))
        k = normalise(raw * (raw >= 0.05 * raw.flatten(1).amax(dim=1).view(-1, 1, 1, 1)))
        row[f"lg{lg:g}_plain"] = score(centre_kernel(k))
    print(json.dumps(row), flush=True)
    return row

if __name__ == "__main__":
    jobs = [(i, (0.01, 0.02, 0.03)) for i in range(340, 364)]
    with mp.get_context("spawn").Pool(2) as pool:
        for row in pool.imap_unordered(run, jobs):
            open('/tmp/sup2/tail.jsonl', 'a').write(json.dumps(row) + "\n")
