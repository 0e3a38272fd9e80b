"""Trial (for the record): the shipped single search with linkprune.linked_prune in place of Pan's pruning, on the
kernel_proxy cases (ramp 0) and the dim-end variant (tail_proxy.py, ramp 3). Run from benchmarks/trials with /tmp/tr
replaced by this folder:  python link_proxy.py "0.01@0@search:65:1,0.02@0@search:65:1,0.01@3@search:65:1" out.jsonl
(names: low level | pan @ ramp @ method)."""
import sys, json, time, functools
import multiprocessing as mp
sys.path.insert(0, '/work/main/benchmarks'); sys.path.insert(0, '/work/main/benchmarks/trials')
def run(job):
    i, names, out = job
    import torch
    torch.set_num_threads(1)
    import kernel_proxy as kp
    import tail_proxy as tp
    import linkprune as lp
    import blinddps.baselines.pan_l0 as pl
    from blinddps.estimation.cleanup import prune_components
    from blinddps.bench.data import center_crop
    from blinddps.io.images import read_image, list_images
    from blinddps.metrics.image import rgb_to_luma
    from blinddps.physics.fft import conv_circular
    from pathlib import Path
    from blinddps.metrics import kernel_mnc
    from blinddps.metrics.error_ratio import error_ratios, levin_deconv
    orig_est = pl.estimate_kernel
    ps = list_images([Path('/work/shared/data/train/bsds500')])
    row = {"index": i}
    for n in names:
        rule, ramp, method = n.split("@")
        if rule == "pan":
            pl.estimate_kernel, pl.prune_components = orig_est, prune_components
        else:
            pl.estimate_kernel = lp.estimate_kernel_recording
            pl.prune_components = functools.partial(lp.linked_prune, low=float(rule))
        x = center_crop(rgb_to_luma(read_image(ps[i]).tensor.double()), kp.CROP)
        kt = tp.tail_kernel(kp.SIZES[i % 4], i, float(ramp)) if float(ramp) > 0 else kp.shake_kernel(kp.SIZES[i % 4], i)
        y = (conv_circular(x, kt[None, None]).clamp(0, 1) * 255).round() / 255
        t = time.perf_counter()
        k = kp.estimate(method, y)
        row[n] = [float(error_ratios(x, y, k, kt[None, None], levin_deconv, subpixels=(4,), crop=15)[4][0]),
                  float(kernel_mnc(k.float(), kt[None, None].float())[0]), time.perf_counter() - t]
    open(out, 'a').write(json.dumps(row) + "\n")
if __name__ == "__main__":
    names = sys.argv[1].split(",")
    with mp.get_context("spawn").Pool(2) as pool:
        list(pool.imap_unordered(run, [(i, names, sys.argv[2]) for i in range(340, 364)]))
