"""Trial (for the record): does the Pan et al. 2016 dark-channel estimator written anew at 907477c
reproduce Pan's PUBLISHED Levin kernels when given Pan's own supports?

A faithfulness check of a reimplementation against its authors' outputs on the same inputs: the
32 Levin files, each kernel estimated at the support the PMP authors' public Levin script gives
each of the 8 kernels (25, 25, 25, 31, 25, 25, 25, 25; "...29" variants: 29, the size of Pan's
published kernel files), compared with ../shared/data/bench/levin09/published/pan_cvpr_2016 by
the error ratio at 1/4 px (bench code: metrics.error_ratio, levin_deconv) and by MNC to Pan's
kernel. Nothing was tuned on it or adopted from it.

Needs the 907477c package restored beside the product as blinddps.estimation_old with
estimation_907477c.patch applied (options: edge_reset, Pan's edge threshold restarting at each
level as his blind_deconv_main does; clamp_latent; gamma_correct; circular: the exact circular model, no padding; harmonic: the harmonic (Laplace) fill of the padding, the idea of Liu and Jia's wrap boundary).
    python benchmarks/trials/pan_port_levin.py carry,reset,ncr out.jsonl
"""
import sys, json, time
import multiprocessing as mp
from dataclasses import replace
SIZES = [25, 25, 25, 31, 25, 25, 25, 25]
VARIANTS = {"p05_lr_harm": {"clamp_latent": False, "edge_reset": True, "prune_mass": 0.05, "levin_resample": True, "harmonic": True}, "ncr_lr_harm": {"clamp_latent": False, "edge_reset": True, "levin_resample": True, "harmonic": True}, "p05_lr_circ": {"clamp_latent": False, "edge_reset": True, "prune_mass": 0.05, "levin_resample": True, "circular": True}, "ncr_lr_circ": {"clamp_latent": False, "edge_reset": True, "levin_resample": True, "circular": True}, "ncr_lr": {"clamp_latent": False, "edge_reset": True, "levin_resample": True}, "p05_lr": {"clamp_latent": False, "edge_reset": True, "prune_mass": 0.05, "levin_resample": True}, "carry_lr": {"levin_resample": True}, "p05": {"clamp_latent": False, "edge_reset": True, "prune_mass": 0.05}, "p0": {"clamp_latent": False, "edge_reset": True, "prune_mass": 0.0}, "kt50": {"clamp_latent": False, "edge_reset": True, "k_thresh": 50.0}, "nc29": {"clamp_latent": False}, "ncr29": {"clamp_latent": False, "edge_reset": True}, "carry29": {}, "nc": {"clamp_latent": False}, "ncr": {"clamp_latent": False, "edge_reset": True}, "carry": {}, "reset": {"edge_reset": True}, "l0reset": {"dark_patch": 0, "edge_reset": True}, "noedge": {"edges_per_bin": 0.0}}
def run(job):
    i, names, out = job
    import torch
    torch.set_num_threads(1)
    from pathlib import Path
    from blinddps.bench.data import levin_cases
    from blinddps.bench.methods import published_kernel
    from blinddps.bench.evaluate import error_ratio_crop
    from blinddps.io.images import read_image
    from blinddps.metrics import kernel_mnc
    from blinddps.metrics.error_ratio import error_ratios, levin_deconv
    from blinddps.estimation_old import KernelEstimator, estimate_kernel
    import numpy as np
    root = Path('/work/shared/data/bench/levin09')
    c = levin_cases(root)[i]
    kt = torch.from_numpy(np.load(root / 'kernels.npz')[c.kernel_key].astype(np.float64)); kt = kt / kt.sum()
    x = read_image(c.sharp).tensor.double(); y = read_image(c.blurred).tensor.double()
    j = int(c.kernel_key[1:])
    def er(k):
        return float(error_ratios(x, y, k.double()[None, None], kt[None, None], levin_deconv, subpixels=(4,), crop=error_ratio_crop(x.shape[-2:]))[4][0])
    pan = published_kernel(c, 'pan_cvpr_2016').double()
    row = {"case": c.blurred.stem, "pan": [er(pan), float(kernel_mnc(pan[None, None].float(), kt[None, None].float())[0])]}
    for n in names:
        t = time.perf_counter()
        k = estimate_kernel(y.float(), (29 if n.endswith('29') else SIZES[j - 1]), replace(KernelEstimator(), **VARIANTS[n])).kernel[0, 0].double()
        row[n] = [er(k), float(kernel_mnc(k[None, None].float(), kt[None, None].float())[0]),
                  float(kernel_mnc(k[None, None].float(), pan[None, None].float())[0]), time.perf_counter() - t]
    open(out, 'a').write(json.dumps(row) + "\n")
if __name__ == "__main__":
    names = sys.argv[1].split(",")
    with mp.get_context("spawn").Pool(2) as pool:
        list(pool.imap_unordered(run, [(i, names, sys.argv[2]) for i in range(32)]))
