"""Trial: single kernel searches with parameter variants on the shake proxy (error ratio, circular)."""
import sys, json, time
import multiprocessing as mp
from dataclasses import replace
sys.path.insert(0, '/tmp/sup')

VARIANTS = {
    "base65": dict(size=65),
    "floor4_65": dict(size=65, lambda_min=1e-4),
    "pan65": dict(size=65, pan=True),
    "base31": dict(size=31),
    "edges65": dict(size=65, edge_keep=2.0),
    "edges_floor4_65": dict(size=65, edge_keep=2.0, lambda_min=1e-4),
    "nodenoise65": dict(size=65, denoise=False),
    "floor02_65": dict(size=65, k_floor=0.02),
    "thresh50_65": dict(size=65, k_thresh=50.0),
    "floor02_thresh50_65": dict(size=65, k_floor=0.02, k_thresh=50.0),
    "floor10_65": dict(size=65, k_floor=0.10),
    "gamma05_65": dict(size=65, gamma=0.5),
    "hyst01_65": dict(size=65, k_low=0.01),
    "hyst02_65": dict(size=65, k_low=0.02),
    "hyst005_65": dict(size=65, k_low=0.005),
    "soft05_65": dict(size=65, k_soft=True),
    "soft02_65": dict(size=65, k_soft=True, k_floor=0.02),
    "soft10_65": dict(size=65, k_soft=True, k_floor=0.10),
}

def run(job):
    i, names, noise = job
    import torch
    torch.set_num_threads(1)
    from shakeproxy import setup
    from blinddps.metrics import kernel_mnc
    from blinddps.metrics.error_ratio import error_ratios, levin_deconv
    from blinddps.priors.bundle import load_prior
    from blinddps.baselines.pan_l0 import PanL0Params
    from blinddps.solvers.kernel_search import KernelSearchConfig, search_kernel, search_params
    x, y, kt = setup(i)
    if noise:
        y = ((y + noise * torch.randn(y.shape, generator=torch.Generator().manual_seed(i), dtype=y.dtype)).clamp(0, 1) * 255).round() / 255
    prior = load_prior("natural-rgb-3", kind="image")
    row = {"index": i, "ks": kt.shape[-1]}
    for name in names:
        v = dict(VARIANTS[name]); size = v.pop("size")
        cfg = KernelSearchConfig(views=1, autocast=True, denoise=v.pop("denoise", True))
        params = PanL0Params(lambda_pixel=0.0) if v.pop("pan", False) else search_params(cfg, size)
        params = replace(params, **v)
        t = time.perf_counter()
        k = search_kernel(y.float().expand(1, 3, *y.shape[-2:]), size, image_prior=prior, config=cfg, params=params).kernel.double()
        row[name] = {"ratio": float(error_ratios(x, y, k, kt[None, None], levin_deconv, subpixels=(4,), crop=15)[4][0]),
                     "mnc": float(kernel_mnc(k.float(), kt[None, None].float())[0]), "s": time.perf_counter() - t}
    print(json.dumps(row), flush=True)
    return row

if __name__ == "__main__":
    names = sys.argv[1].split(",")
    noise = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    jobs = [(i, names, noise) for i in range(int(sys.argv[2]), int(sys.argv[3]))]
    with mp.get_context("spawn").Pool(2) as pool:
        for row in pool.imap_unordered(run, jobs):
            open(sys.argv[4], 'a').write(json.dumps(row) + "\n")
