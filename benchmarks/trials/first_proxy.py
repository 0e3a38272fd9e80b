"""Trial (for the record): the single search with its finest level cut to its first m alternations (the dim part is largest
after the first kernel step of a level), the coarser levels as shipped. On the proxy and its dim-end variant:
    python benchmarks/trials/first_proxy.py "1@0,2@0,4@0,1@3,2@3,4@3" out.jsonl (m @ ramp)"""
import sys, json, time
import multiprocessing as mp
sys.path.insert(0, '/work/main/benchmarks'); sys.path.insert(0, '/work/main/benchmarks/trials'); sys.path.insert(0, '/work/main/benchmarks/trials')

def make_level(m):
    import blinddps.baselines.pan_l0 as pl
    def _level(y, k, lp, lg, p, latent=None, refine=None):
        bx, by = pl._forward_diff_valid(y)
        steps = []
        for i in range(p.xk_iter):
            x = pl._latent(y, k, lp, lg, p.boundary) if latent is None else latent(y, k, lp, lg)
            sx, sy = pl._forward_diff_valid(x)
            k = pl.estimate_kernel(bx, by, sx, sy, k.shape[-1], p.gamma)
            k = pl.prune_components(k if refine is None else refine(k))
            steps.append(k)
            lp = max(lp / p.lambda_decay, p.lambda_min) if lp > 0 else 0.0
            lg = max(lg / p.lambda_decay, p.lambda_min) if lg > 0 else 0.0
        final = y.shape[-1] >= _full[0] - 1
        out = steps[min(m, len(steps)) - 1] if final else k
        return pl.centre_kernel(out), lp, lg
    return _level
_full = [0]

def run(job):
    i, names, out = job
    import torch
    torch.set_num_threads(1)
    import kernel_proxy as kp
    import tail_proxy as tp
    import blinddps.baselines.pan_l0 as pl
    orig = pl._level
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
        m, ramp = n.split("@")
        x = center_crop(rgb_to_luma(read_image(ps[i]).tensor.double()), kp.CROP)
        _full[0] = x.shape[-1]
        pl._level = orig if m == "0" else make_level(int(m))
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
