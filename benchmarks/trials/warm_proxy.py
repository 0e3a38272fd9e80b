"""Trial (for the record): the shipped single search with its kernel step tied to the kernel the level started from
(the previous level's kernel, upsampled), which holds the dim part the coarse levels saw:
  "warm": the conjugate gradients start from the current kernel instead of the uniform one;
  "tieG": min ||S k - B||^2 + G ||k - k_level||^2 (Pan: G ||k||^2 with G = 2), from the uniform kernel.
On the kernel_proxy cases and their dim-end variant:
    python benchmarks/trials/warm_proxy.py "warm@0,tie2@0,tie20@0,warm@3,tie2@3,tie20@3" out.jsonl (mode @ ramp)."""
import sys, json, time
import multiprocessing as mp
sys.path.insert(0, '/work/main/benchmarks'); sys.path.insert(0, '/work/main/benchmarks/trials')

def kstep(bx, by, sx, sy, start, anchor, gamma, iters=20):
    import torch
    from blinddps.physics.fft import kernel_otf, otf_to_kernel
    from blinddps.estimation.cleanup import normalise
    size = start.shape[-1]; shape = bx.shape[-2:]
    fsx, fsy = torch.fft.rfft2(sx), torch.fft.rfft2(sy)
    rhs = otf_to_kernel(fsx.conj() * torch.fft.rfft2(bx) + fsy.conj() * torch.fft.rfft2(by), (size, size), shape)
    gram = fsx.abs() ** 2 + fsy.abs() ** 2
    rhs = rhs + gamma * anchor
    A = lambda k: otf_to_kernel(gram * kernel_otf(k, shape), (size, size), shape) + gamma * k
    dot = lambda a, c: (a * c).flatten(1).sum(1).view(-1, 1, 1, 1)
    k = start.clone(); r = rhs - A(k); p = r; rs = dot(r, r)
    for _ in range(iters):
        ap = A(p); a = rs / dot(p, ap).clamp_min(1e-30); k = k + a * p; r = r - a * ap
        new = dot(r, r); p = r + new / rs.clamp_min(1e-30) * p; rs = new
    k = k * (k >= 0.05 * k.flatten(1).amax(1).view(-1, 1, 1, 1))
    return normalise(k)

def make_level(mode):
    import torch
    import blinddps.baselines.pan_l0 as pl
    def _level(y, k, lp, lg, p, latent=None, refine=None):
        bx, by = pl._forward_diff_valid(y)
        k_level = k.clone()
        for i in range(p.xk_iter):
            x = pl._latent(y, k, lp, lg, p.boundary) if latent is None else latent(y, k, lp, lg)
            sx, sy = pl._forward_diff_valid(x)
            uniform = torch.full_like(k, 1.0 / k.shape[-1] ** 2)
            if mode == "warm":
                k = kstep(bx, by, sx, sy, k, torch.zeros_like(k), p.gamma)
            else:
                k = kstep(bx, by, sx, sy, uniform, k_level, float(mode[3:]))
            k = pl.prune_components(k)
            lp = max(lp / p.lambda_decay, p.lambda_min) if lp > 0 else 0.0
            lg = max(lg / p.lambda_decay, p.lambda_min) if lg > 0 else 0.0
        return pl.centre_kernel(k), lp, lg
    return _level

def run(job):
    i, names, out = job
    import torch
    torch.set_num_threads(1)
    import kernel_proxy as kp
    import tail_proxy as tp
    import blinddps.baselines.pan_l0 as pl
    from blinddps.bench.data import center_crop
    from blinddps.io.images import read_image, list_images
    from blinddps.metrics.image import rgb_to_luma
    from blinddps.physics.fft import conv_circular
    from pathlib import Path
    from blinddps.metrics import kernel_mnc
    from blinddps.metrics.error_ratio import error_ratios, levin_deconv
    ps = list_images([Path('/work/shared/data/train/bsds500')])
    row = {"index": i}
    for n in names:
        mode, ramp = n.split("@")
        pl._level = make_level(mode)
        x = center_crop(rgb_to_luma(read_image(ps[i]).tensor.double()), kp.CROP)
        kt = tp.tail_kernel(kp.SIZES[i % 4], i, float(ramp)) if float(ramp) > 0 else kp.shake_kernel(kp.SIZES[i % 4], i)
        y = (conv_circular(x, kt[None, None]).clamp(0, 1) * 255).round() / 255
        t = time.perf_counter()
        k = kp.estimate("search:65:1", y)
        row[n] = [float(error_ratios(x, y, k, kt[None, None], levin_deconv, subpixels=(4,), crop=15)[4][0]),
                  float(kernel_mnc(k.float(), kt[None, None].float())[0]), time.perf_counter() - t]
    open(out, 'a').write(json.dumps(row) + "\n")

if __name__ == "__main__":
    names = sys.argv[1].split(",")
    with mp.get_context("spawn").Pool(2) as pool:
        list(pool.imap_unordered(run, [(i, names, sys.argv[2]) for i in range(340, 364)]))
