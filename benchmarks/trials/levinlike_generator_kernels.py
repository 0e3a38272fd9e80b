"""Trial: Levin-like training condition: grey 255 px bsds500 crops, circular blur by generator kernels
13-27 px, noise-free, 8-bit; default deblur (kernel size 64) vs search_support; error ratio (circular)."""
import sys, json, time
import multiprocessing as mp
from dataclasses import replace
from pathlib import Path

def run(job):
    i, arm = job
    import torch
    torch.set_num_threads(1)
    from blinddps import RestoreConfig, deblur
    from blinddps.io.images import list_images, read_image
    from blinddps.metrics import kernel_mnc
    from blinddps.metrics.image import rgb_to_luma
    from blinddps.metrics.error_ratio import error_ratios, levin_deconv
    from blinddps.generators.motion import MotionKernelGenerator
    from blinddps.physics.fft import conv_circular
    ps = list_images([Path('/work/shared/data/train/bsds500')])
    x = rgb_to_luma(read_image(ps[i]).tensor.double())
    h, w = x.shape[-2:]; S = 255
    x = x[..., (h - S)//2:(h - S)//2 + S, (w - S)//2:(w - S)//2 + S]
    ks = (13, 17, 19, 21, 23, 27)[i % 6]
    kt = MotionKernelGenerator(size=ks, intensity=0.5).sample(1, generator=torch.Generator().manual_seed(i))["kernel"][0, 0].double()
    y = conv_circular(x, kt[None, None])
    y = (y.clamp(0, 1) * 255).round() / 255
    config = RestoreConfig(kernel_size=64, seed=0)
    if arm == "support":
        config = replace(config, prox=replace(config.prox, search_support=True))
    t = time.perf_counter()
    r = deblur(y.float(), config)
    s = time.perf_counter() - t
    k = r.kernel.reshape(1, 1, *r.kernel.shape[-2:]).double()
    ratio = float(error_ratios(x, y, k, kt[None, None], levin_deconv, subpixels=(4,), crop=15)[4][0])
    search = r.info.get("search", r.info)
    row = {"index": i, "arm": arm, "ks": ks, "mnc": float(kernel_mnc(k.float(), kt[None, None].float())[0]), "ratio": ratio, "s": s,
           "search_size": search.get("search_size")}
    torch.save({"k": k, "kt": kt}, f"/tmp/sup/k_{arm}_{i}.pt")
    print(json.dumps(row), flush=True)
    return row

if __name__ == "__main__":
    arms = sys.argv[1].split(",")
    jobs = [(i, a) for i in range(320, 320 + int(sys.argv[2])) for a in arms]
    with mp.get_context("spawn").Pool(2) as pool:
        for row in pool.imap_unordered(run, jobs):
            open('/tmp/sup/levinlike.jsonl', 'a').write(json.dumps(row) + "\n")
