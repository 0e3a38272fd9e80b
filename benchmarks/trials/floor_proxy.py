"""Trial (for the record): the shipped single search with a higher floor of the latent weights for large kernels
(KernelSearchConfig.large_lambda_min; shipped 1e-3, Pan 1e-4, the start 4e-3 = no decay) or fewer
alternations per level (shipped 10 for kernels over 48 px), on the proxy and its dim-end variant.
    python benchmarks/trials/floor_proxy.py "2e-3@10@0,4e-3@10@0,1e-3@5@0,2e-3@10@3,4e-3@10@3,1e-3@5@3" out.jsonl (floor @ alternations @ ramp)"""
import sys, json, time
import multiprocessing as mp
sys.path.insert(0, '/work/main/benchmarks'); sys.path.insert(0, '/work/main/benchmarks/trials'); sys.path.insert(0, '/work/main/benchmarks/trials')

def run(job):
    i, names, out = job
    import torch
    from dataclasses import replace
    torch.set_num_threads(1)
    import kernel_proxy as kp
    import tail_proxy as tp
    import blinddps.solvers.kernel_search as ks
    from blinddps import RestoreConfig
    from blinddps.priors.bundle import load_prior
    from blinddps.bench.data import center_crop
    from blinddps.io.images import read_image, list_images
    from blinddps.metrics.image import rgb_to_luma
    from blinddps.physics.fft import conv_circular
    from pathlib import Path
    from blinddps.metrics import kernel_mnc
    from blinddps.metrics.error_ratio import error_ratios, levin_deconv
    prior = load_prior(RestoreConfig().prox.search_prior, kind="image")
    orig_params = ks.search_params
    ps = list_images([Path('/work/shared/data/train/bsds500')])
    row = {"index": i}
    for n in names:
        floor, iters, ramp = n.split("@")
        ks.search_params = (orig_params if iters == "10" else
                            (lambda c, s, it=int(iters): replace(orig_params(c, s), xk_iter=it)))
        x = center_crop(rgb_to_luma(read_image(ps[i]).tensor.double()), kp.CROP)
        kt = tp.tail_kernel(kp.SIZES[i % 4], i, float(ramp)) if float(ramp) > 0 else kp.shake_kernel(kp.SIZES[i % 4], i)
        y = (conv_circular(x, kt[None, None]).clamp(0, 1) * 255).round() / 255
        t = time.perf_counter()
        config = ks.KernelSearchConfig(views=1, autocast=True, large_lambda_min=float(floor))
        k = ks.search_kernel(y.float().expand(1, 3, *y.shape[-2:]), 65, image_prior=prior, config=config).kernel.double()
        row[n] = [float(error_ratios(x, y, k, kt[None, None], levin_deconv, subpixels=(4,), crop=15)[4][0]),
                  float(kernel_mnc(k.float(), kt[None, None].float())[0]), time.perf_counter() - t]
    open(out, 'a').write(json.dumps(row) + "\n")

if __name__ == "__main__":
    names = sys.argv[1].split(",")
    with mp.get_context("spawn").Pool(2) as pool:
        list(pool.imap_unordered(run, [(i, names, sys.argv[2]) for i in range(340, 364)]))
