"""Trial (for the record): after the shipped single search (65 px, 1 view), one kernel step from a STRONGER-L0 latent
(ghost edges of a missed dim part wiped from the latent, so the kernel must explain them), its values
kept by hysteresis (>= 0.05 max, or >= low * max and 8-connected to those), final threshold max/50. On the
kernel_proxy training cases: python benchmarks/trials/strong_latent_step_on_proxy.py "1e-3:0.02,3e-3:0.02,3e-4:0.02" out.jsonl
(names: latent lambda : hysteresis low level)."""
import sys, json, time
import multiprocessing as mp
sys.path.insert(0, '/work/main/benchmarks')

def hysteresis(k, low):
    import torch, torch.nn.functional as F
    peak = k.flatten(1).amax(1).view(-1, 1, 1, 1)
    strong = k >= 0.05 * peak
    weak = k >= low * peak
    keep = strong
    while True:
        grown = (F.max_pool2d(keep.double(), 3, stride=1, padding=1) > 0) & weak
        if torch.equal(grown, keep):
            return k * keep
        keep = grown

def kstep(bx, by, sx, sy, size, gamma=2.0, iters=20):
    import torch
    from blinddps.physics.fft import kernel_otf, otf_to_kernel
    shape = bx.shape[-2:]
    fsx, fsy = torch.fft.rfft2(sx), torch.fft.rfft2(sy)
    rhs = otf_to_kernel(fsx.conj() * torch.fft.rfft2(bx) + fsy.conj() * torch.fft.rfft2(by), (size, size), shape)
    gram = fsx.abs() ** 2 + fsy.abs() ** 2
    A = lambda k: otf_to_kernel(gram * kernel_otf(k, shape), (size, size), shape) + gamma * k
    dot = lambda a, b: (a * b).sum()
    k = torch.full_like(rhs, 1.0 / size**2); r = rhs - A(k); p = r; rs = dot(r, r)
    for _ in range(iters):
        ap = A(p); a = rs / dot(p, ap); k = k + a * p; r = r - a * ap; new = dot(r, r); p = r + new / rs * p; rs = new
    return k

def run(job):
    i, names, out = job
    import torch
    torch.set_num_threads(1)
    import kernel_proxy as kp
    from blinddps import RestoreConfig
    from blinddps.priors.bundle import load_prior
    from blinddps.solvers.kernel_search import KernelSearchConfig, search_kernel, prior_denoised
    from blinddps.baselines.pan_l0 import _latent, _forward_diff_valid
    from blinddps.estimation.cleanup import prune_components, final_threshold, normalise, centre_kernel
    from blinddps.metrics.image import rgb_to_luma
    from blinddps.io.images import list_images
    from pathlib import Path
    from blinddps.metrics import kernel_mnc
    from blinddps.metrics.error_ratio import error_ratios, levin_deconv
    ps = list_images([Path('/work/shared/data/train/bsds500')])
    x, y, kt = kp.case(ps[i], i)
    prior = load_prior(RestoreConfig().prox.search_prior, kind="image")
    t0 = time.perf_counter()
    yd = prior_denoised(y.float().expand(1, 3, *y.shape[-2:]), prior, autocast=True)
    k0 = search_kernel(yd, 65, config=KernelSearchConfig(views=1, autocast=True, denoise=False)).kernel.double()
    base_s = time.perf_counter() - t0
    g = rgb_to_luma(yd).double()
    bx, by = _forward_diff_valid(g)
    er = lambda k: float(error_ratios(x, y, k, kt[None, None], levin_deconv, subpixels=(4,), crop=15)[4][0])
    mn = lambda k: float(kernel_mnc(k.float(), kt[None, None].float())[0])
    row = {"index": i, "base": [er(k0), mn(k0), base_s]}
    for n in names:
        lam, low = (float(v) for v in n.split(":"))
        t = time.perf_counter()
        lat = _latent(g, k0, lam, lam, "pad")
        sx, sy = _forward_diff_valid(lat)
        k = normalise(kstep(bx, by, sx, sy, 65).clamp_min(0))
        k = prune_components(normalise(hysteresis(k, low)))
        k = final_threshold(centre_kernel(k), 50.0)
        row[n] = [er(k), mn(k), time.perf_counter() - t]
    open(out, 'a').write(json.dumps(row) + "\n")

if __name__ == "__main__":
    names = sys.argv[1].split(",")
    with mp.get_context("spawn").Pool(2) as pool:
        list(pool.imap_unordered(run, [(i, names, sys.argv[2]) for i in range(340, 364)]))
