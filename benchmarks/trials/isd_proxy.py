"""Trial (for the record): after the shipped single search (65 px, 1 view), Xu & Jia 2010's iterative support
detection on the search's final L0 latent: kernel values inside the detected support are free,
outside they carry an l1 weight gamma (IRLS); the support is what lies above the first significant
jump of the sorted kernel values (jump > max / (2 h i), h the kernel side, i the ISD round). On the kernel_proxy cases and their
dim-end variant (tail_proxy.py, ramp 3): python benchmarks/trials/isd_proxy.py 0.01,0.05,0.2 out.jsonl (gamma values)."""
import sys, json, time
import multiprocessing as mp
sys.path.insert(0, '/work/main/benchmarks'); sys.path.insert(0, '/work/main/benchmarks/trials')

def first_jump(k, h, i):
    import torch
    v = k.flatten().sort().values
    d = v[1:] - v[:-1]
    big = torch.nonzero(d > float(v[-1]) / (2 * h * i))
    return float(v[int(big[0]) + 1]) if big.numel() else 0.0

def isd(bx, by, sx, sy, k0, gamma, rounds=3, irls=3, cg_iters=30):
    import torch
    from blinddps.physics.fft import kernel_otf, otf_to_kernel
    from blinddps.estimation.cleanup import normalise
    size = k0.shape[-1]; shape = bx.shape[-2:]
    fsx, fsy = torch.fft.rfft2(sx), torch.fft.rfft2(sy)
    rhs = otf_to_kernel(fsx.conj() * torch.fft.rfft2(bx) + fsy.conj() * torch.fft.rfft2(by), (size, size), shape)
    gram = fsx.abs() ** 2 + fsy.abs() ** 2
    k = k0.clone()
    for i in range(1, rounds + 1):
        eps = first_jump(k[0, 0], size, i)
        inside = k > eps
        for _ in range(irls):
            w = torch.where(inside, torch.zeros_like(k), gamma / k.abs().clamp_min(1e-4))
            A = lambda v: otf_to_kernel(gram * kernel_otf(v, shape), (size, size), shape) + (w + 1e-3) * v
            x = k.clone(); r = rhs - A(x); p = r; rs = (r * r).sum()
            for _ in range(cg_iters):
                ap = A(p); a = rs / (p * ap).sum(); x = x + a * p; r = r - a * ap
                new = (r * r).sum(); p = r + new / rs * p; rs = new
            k = normalise(x.clamp_min(0))
    return k

def run(job):
    i, names, out = job
    import torch
    torch.set_num_threads(1)
    import kernel_proxy as kp
    import tail_proxy as tp
    from blinddps import RestoreConfig
    from blinddps.priors.bundle import load_prior
    from blinddps.solvers.kernel_search import KernelSearchConfig, search_kernel, prior_denoised
    from blinddps.baselines.pan_l0 import _latent, _forward_diff_valid
    from blinddps.estimation.cleanup import final_threshold, centre_kernel, prune_components
    from blinddps.metrics.image import rgb_to_luma
    from blinddps.bench.data import center_crop
    from blinddps.io.images import read_image, list_images
    from blinddps.physics.fft import conv_circular
    from pathlib import Path
    from blinddps.metrics import kernel_mnc
    from blinddps.metrics.error_ratio import error_ratios, levin_deconv
    ps = list_images([Path('/work/shared/data/train/bsds500')])
    prior = load_prior(RestoreConfig().prox.search_prior, kind="image")
    row = {"index": i}
    for ramp in (0.0, 3.0):
        x = center_crop(rgb_to_luma(read_image(ps[i]).tensor.double()), kp.CROP)
        kt = tp.tail_kernel(kp.SIZES[i % 4], i, ramp) if ramp > 0 else kp.shake_kernel(kp.SIZES[i % 4], i)
        y = (conv_circular(x, kt[None, None]).clamp(0, 1) * 255).round() / 255
        er = lambda k: float(error_ratios(x, y, k, kt[None, None], levin_deconv, subpixels=(4,), crop=15)[4][0])
        mn = lambda k: float(kernel_mnc(k.float(), kt[None, None].float())[0])
        yd = prior_denoised(y.float().expand(1, 3, *y.shape[-2:]), prior, autocast=True)
        k0 = search_kernel(yd, 65, config=KernelSearchConfig(views=1, autocast=True, denoise=False)).kernel.double()
        row[f"base@{ramp:g}"] = [er(k0), mn(k0), 0.0]
        g = rgb_to_luma(yd).double()
        bx, by = _forward_diff_valid(g)
        lat = _latent(g, k0, 1e-3, 1e-3, "pad")
        sx, sy = _forward_diff_valid(lat)
        for n in names:
            t = time.perf_counter()
            k = isd(bx, by, sx, sy, k0, float(n))
            k = final_threshold(centre_kernel(prune_components(k, 0.02)), 50.0)
            row[f"isd{n}@{ramp:g}"] = [er(k), mn(k), time.perf_counter() - t]
    open(out, 'a').write(json.dumps(row) + "\n")

if __name__ == "__main__":
    names = sys.argv[1].split(",")
    with mp.get_context("spawn").Pool(2) as pool:
        list(pool.imap_unordered(run, [(i, names, sys.argv[2]) for i in range(340, 364)]))
