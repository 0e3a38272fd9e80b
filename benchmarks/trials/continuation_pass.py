"""Trial: extra full-scale alternations after the shipped search at a lower latent floor (continuation)."""
import sys, json, time
import multiprocessing as mp
sys.path.insert(0, '/work/main/benchmarks')

def run(job):
    i, variants = job
    import torch
    torch.set_num_threads(1)
    from kernel_proxy import case
    from blinddps.io.images import list_images
    from pathlib import Path
    from blinddps.metrics import kernel_mnc
    from blinddps.metrics.error_ratio import error_ratios, levin_deconv
    from blinddps.metrics.image import rgb_to_luma
    from blinddps.priors.bundle import load_prior
    from blinddps.solvers.kernel_search import KernelSearchConfig, search_kernel, prior_denoised, search_params
    from blinddps.baselines.pan_l0 import _forward_diff_valid, _latent
    from blinddps.baselines._l0_ops import estimate_kernel, prune_components, centre_kernel, final_threshold
    ps = list_images([Path('/work/shared/data/train/bsds500')])
    x, y, kt = case(ps[i], i)
    prior = load_prior("natural-rgb-3", kind="image")
    y3 = y.float().expand(1, 3, *y.shape[-2:])
    cfg = KernelSearchConfig(views=1, autocast=True)
    k0 = search_kernel(y3, 65, image_prior=prior, config=cfg).kernel.double()
    yd = rgb_to_luma(prior_denoised(y3, prior, autocast=True)).double()
    def score(k):
        return [float(error_ratios(x, y, k, kt[None, None], levin_deconv, subpixels=(4,), crop=15)[4][0]),
                float(kernel_mnc(k.float(), kt[None, None].float())[0])]
    row = {"index": i, "base": score(k0)}
    bx, by = _forward_diff_valid(yd)
    for name, (start, end, n, gamma) in variants.items():
        k = k0
        lg = start
        for it in range(n):
            s = _latent(yd, k, 0.0, lg, "pad")
            sx, sy = _forward_diff_valid(s)
            k = prune_components(estimate_kernel(bx, by, sx, sy, 65, gamma))
            lg = max(lg / 1.1, end)
        row[name] = score(final_threshold(centre_kernel(k), 20.0))
    print(json.dumps(row), flush=True)
    return row

VARIANTS = {"same1e3_5": (1e-3, 1e-3, 5, 2.0), "cont_3e4_10": (1e-3, 3e-4, 10, 2.0), "cont_1e4_15": (1e-3, 1e-4, 15, 2.0),
            "at3e4_5": (3e-4, 3e-4, 5, 2.0)}
if __name__ == "__main__":
    jobs = [(i, VARIANTS) for i in range(340, 364)]
    with mp.get_context("spawn").Pool(2) as pool:
        for row in pool.imap_unordered(run, jobs):
            open('/tmp/sup2/final.jsonl', 'a').write(json.dumps(row) + "\n")
