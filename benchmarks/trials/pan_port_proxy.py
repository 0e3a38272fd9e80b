"""Trial (for the record): the 907477c estimator with Pan's per-level edge threshold (edge_reset),
without the latent clamp and with a lighter pruning, on the kernel_proxy training cases
(bsds500 340-363, shake-like kernels). Same package set-up as pan_port_levin.py.
    python benchmarks/trials/pan_port_proxy.py dcp31r,dcp65r,p05_29,p05_65 out.jsonl
"""
import multiprocessing as mp
from dataclasses import replace
sys.path.insert(0, '/work/main/benchmarks')
VARIANTS = {"p05lr_29": (29, {"clamp_latent": False, "edge_reset": True, "prune_mass": 0.05, "levin_resample": True}), "rlr_31": (31, {"edge_reset": True, "levin_resample": True}), "p05_31": (31, {"clamp_latent": False, "edge_reset": True, "prune_mass": 0.05}), "p05_65": (65, {"clamp_latent": False, "edge_reset": True, "prune_mass": 0.05}), "p05_29": (29, {"clamp_latent": False, "edge_reset": True, "prune_mass": 0.05}), "dcp31": (31, {}), "dcp65": (65, {}), "dcp31r": (31, {"edge_reset": True}), "dcp65r": (65, {"edge_reset": True}),
            "l0_31r": (31, {"dark_patch": 0, "edge_reset": True}), "l0_65r": (65, {"dark_patch": 0, "edge_reset": True}),
            "dcp25r": (25, {"edge_reset": True}), "dcp41r": (41, {"edge_reset": True}),
            "dcp31rg": (31, {"edge_reset": True, "gamma_correct": 0.8})}
def run(job):
    i, names, out = job
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
    open(out, 'a').write(json.dumps(row) + "\n")
    return row
if __name__ == "__main__":
    names = sys.argv[1].split(",")
    out = sys.argv[2]
    with mp.get_context("spawn").Pool(2) as pool:
        list(pool.imap_unordered(run, [(i, names, out) for i in range(340, 364)]))
