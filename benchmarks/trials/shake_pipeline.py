"""Trial: Levin-like proxy with shake-like kernels (brightness varying along the path): where does the
pipeline lose the error ratio? Final deblur kernel vs single searches."""
import sys, json, time
import multiprocessing as mp
from dataclasses import replace
from pathlib import Path
sys.path.insert(0, '/tmp/sup')

def setup(i):
    import torch
    from blinddps.io.images import list_images, read_image
    from blinddps.metrics.image import rgb_to_luma
    from blinddps.physics.fft import conv_circular
    from shake import shake_kernel
    ps = list_images([Path('/work/shared/data/train/bsds500')])
    x = rgb_to_luma(read_image(ps[i]).tensor.double())
    h, w = x.shape[-2:]; S = 255
    x = x[..., (h - S)//2:(h - S)//2 + S, (w - S)//2:(w - S)//2 + S]
    kt = shake_kernel((15, 19, 23, 27)[i % 4], i)
    y = conv_circular(x, kt[None, None])
    y = (y.clamp(0, 1) * 255).round() / 255
    return x, y, kt

def run(job):
    i, arms = job
    import torch
    torch.set_num_threads(1)
    from blinddps import RestoreConfig, deblur
    from blinddps.metrics import kernel_mnc
    from blinddps.metrics.error_ratio import error_ratios, levin_deconv
    from blinddps.priors.bundle import load_prior
    from blinddps.solvers.kernel_search import KernelSearchConfig, search_kernel
    x, y, kt = setup(i)
    def score(k):
        k = k.reshape(1, 1, *k.shape[-2:]).double()
        return {"ratio": float(error_ratios(x, y, k, kt[None, None], levin_deconv, subpixels=(4,), crop=15)[4][0]),
                "mnc": float(kernel_mnc(k.float(), kt[None, None].float())[0])}
    row = {"index": i, "ks": kt.shape[-1]}
    kernels = {}
    for arm in arms:
        t = time.perf_counter()
        if arm.startswith("deblur"):
            config = RestoreConfig(kernel_size=64, seed=0)
            if arm == "deblur_support":
                config = replace(config, prox=replace(config.prox, search_support=True))
            if arm == "deblur_norefit":
                config = replace(config, prox=replace(config.prox, search_refine=None))
            k = deblur(y.float(), config).kernel
        else:
            name, size, views = arm.split(":")
            prior = load_prior("natural-rgb-3", kind="image")
            k = search_kernel(y.float().expand(1, 3, *y.shape[-2:]), int(size), image_prior=prior,
                              config=KernelSearchConfig(views=int(views), autocast=True)).kernel
        kernels[arm] = k
        row[arm] = {**score(k), "s": time.perf_counter() - t}
    torch.save(kernels, f"/tmp/sup/shk_{i}.pt")
    print(json.dumps(row), flush=True)
    return row

if __name__ == "__main__":
    arms = sys.argv[1].split(",")
    jobs = [(i, arms) for i in range(int(sys.argv[2]), int(sys.argv[3]))]
    with mp.get_context("spawn").Pool(2) as pool:
        for row in pool.imap_unordered(run, jobs):
            open(sys.argv[4], 'a').write(json.dumps(row) + "\n")
