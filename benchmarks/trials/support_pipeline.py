"""Trial: search support from the coarse levels (prox_search_support) vs default, training photos."""
import sys, json, time
import multiprocessing as mp
from dataclasses import replace
from pathlib import Path
sys.path.insert(0, '/work/main/benchmarks')

def photo(path, index, ksize, noise):
    import torch
    from blinddps.generators.motion import MotionKernelGenerator
    from blinddps.io.images import read_image
    from blinddps.physics import Blur
    SIZE = 256
    x = read_image(path).tensor
    h, w = x.shape[-2:]
    top, left = (h - SIZE) // 2, (w - SIZE) // 2
    kernel = MotionKernelGenerator(size=ksize, intensity=0.5).sample(1, generator=torch.Generator().manual_seed(index))["kernel"][0, 0]
    c = ksize // 2
    scene = torch.nn.functional.pad(x, (c, c, c, c), mode="reflect")[..., top:top + SIZE + ksize - 1, left:left + SIZE + ksize - 1]
    y = Blur("valid")(scene, kernel=kernel)
    y = y + noise * torch.randn(y.shape, generator=torch.Generator().manual_seed(10_000 + index))
    y = (y.clamp(0, 1) * 255).round() / 255
    return x[..., top:top + SIZE, left:left + SIZE], y, kernel

def run(job):
    i, cond, arm = job
    import torch
    torch.set_num_threads(1)
    from blinddps import RestoreConfig, deblur
    from blinddps.io.images import list_images
    from blinddps.metrics import kernel_mnc
    from blinddps.metrics.error_ratio import psnr_upto_shift, error_ratios
    from blinddps.baselines.deconv import deconv_hyper_laplacian
    ps = list_images([Path('/work/shared/data/train/bsds500')])
    if cond == "short":
        ksize = (15, 19, 23, 27)[i % 4]; noise = 0.005
    else:
        ksize = 64; noise = 0.01
    if cond == "paper":
        import kernel_stability as ks
        x, y, kt = ks.photo(ps[i], i)
    else:
        x, y, kt = photo(ps[i], i, ksize, noise)
    config = RestoreConfig(kernel_size=64, seed=0)
    if arm == "support":
        config = replace(config, prox=replace(config.prox, search_support=True))
    t = time.perf_counter()
    r = deblur(y, config)
    s = time.perf_counter() - t
    k = r.kernel.reshape(1, 1, *r.kernel.shape[-2:]).double()
    deconv = lambda b, kk: deconv_hyper_laplacian(b, kk, lam=2e3, alpha=0.8, boundary="pad")
    ratio = float(error_ratios(x.double(), y.double(), k, kt.double()[None, None], deconv, subpixels=(4,), crop=15)[4][0])
    row = {"index": i, "cond": cond, "arm": arm, "psnr": float(psnr_upto_shift(r.image.double(), x.double(), max_shift=16, crop=16)[0]),
           "blurry": float(psnr_upto_shift(y.double(), x.double(), max_shift=16, crop=16)[0]),
           "mnc": float(kernel_mnc(k.float(), kt[None, None])[0]), "ratio": ratio, "s": s,
           "search_size": [c.get("search_size") for c in [r.info.get("search", r.info)]] }
    print(json.dumps(row), flush=True)
    return row

if __name__ == "__main__":
    jobs = [(i, c, a) for c, a, rng in [("short", "support", range(300, 316)), ("short", "default", range(300, 316)),
                                        ("paper", "support", range(200, 216))] for i in rng]
    order = sorted(jobs, key=lambda j: (j[0] % 16, j[1], j[2]))
    with mp.get_context("spawn").Pool(2) as pool:
        for row in pool.imap_unordered(run, order):
            open('/tmp/sup/ab.jsonl', 'a').write(json.dumps(row) + "\n")
