"""Trial: shake-like kernels with a dim END (a brightness ramp across the kernel in a random
direction on top of the smooth field) - closer to Levin's dim tails?"""
import sys, json, time, math
import multiprocessing as mp
sys.path.insert(0, '/work/main/benchmarks')

def tail_kernel(size, seed, ramp):
    import torch, torch.nn.functional as F
    import kernel_proxy as kp
    k = kp.shake_kernel(size, seed)
    g = torch.Generator().manual_seed(seed + 7777)
    theta = float(torch.rand(1, generator=g)) * 2 * math.pi
    c = torch.arange(size, dtype=torch.float64) - size // 2
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    # the ramp over the kernel's own extent, centred on its centre of mass
    m = k / k.sum()
    cy, cx = float((m * yy).sum()), float((m * xx).sum())
    s = (xx - cx) * math.cos(theta) + (yy - cy) * math.sin(theta)
    ext = float(s[k > 0].abs().max()) or 1.0
    k = k * torch.exp(ramp * s / ext)
    return k / k.sum()

def run(job):
    i, names, out = job
    import torch
    torch.set_num_threads(1)
    import kernel_proxy as kp
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
        ramp, method = n.split("@")
        x = center_crop(rgb_to_luma(read_image(ps[i]).tensor.double()), kp.CROP)
        kt = tail_kernel(kp.SIZES[i % 4], i, float(ramp))
        y = (conv_circular(x, kt[None, None]).clamp(0, 1) * 255).round() / 255
        t = time.perf_counter()
        k = kp.estimate(method, y)
        dim = float(kt[kt < kt.max() / 5].sum())
        row[n] = [float(error_ratios(x, y, k, kt[None, None], levin_deconv, subpixels=(4,), crop=15)[4][0]),
                  float(kernel_mnc(k.float(), kt[None, None].float())[0]), time.perf_counter() - t, dim]
    open(out, 'a').write(json.dumps(row) + "\n")

if __name__ == "__main__":
    names = sys.argv[1].split(",")
    with mp.get_context("spawn").Pool(2) as pool:
        list(pool.imap_unordered(run, [(i, names, sys.argv[2]) for i in range(340, 364)]))
