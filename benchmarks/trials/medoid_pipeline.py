"""Trial: medoid of six searches -> restore (lambda 3 if the medoid's mean MNC to the others >= 0.9, else 12)
-> refit -> restore, against the default pipeline, on training photos (paper protocol)."""
import sys, json, time, importlib
import multiprocessing as mp
from dataclasses import replace
sys.path.insert(0, '/work/main/benchmarks')
from pathlib import Path

def run(i):
    import torch
    torch.set_num_threads(1)
    import kernel_stability as ks
    from blinddps import RestoreConfig, deblur
    from blinddps.io.images import list_images
    from blinddps.metrics import kernel_mnc
    from blinddps.metrics.error_ratio import psnr_upto_shift
    from blinddps.priors.bundle import load_prior
    from blinddps.solvers.kernel_search import KernelSearchConfig, search_kernel, _view, _unview, VIEWS
    R = importlib.import_module("blinddps.tasks.restore")
    ps = list_images([Path('/work/shared/data/train/bsds500')])
    x, y, kt = ks.photo(ps[i], i)
    def mnc(a, b): return float(kernel_mnc(a.reshape(1, 1, *a.shape[-2:]), b.reshape(1, 1, *b.shape[-2:]))[0])
    def aligned(img): return float(psnr_upto_shift(img.double(), x.double(), max_shift=16, crop=16)[0])
    row = {"index": i}
    if len(sys.argv) > 2 and i >= int(sys.argv[2]):
        t = time.perf_counter(); r = deblur(y, RestoreConfig(kernel_size=64, seed=0))
        row["cascade"] = {"psnr": aligned(r.image), "mnc": mnc(r.kernel, kt), "s": time.perf_counter() - t}
    t = time.perf_counter()
    searcher = load_prior("natural-rgb-3", kind="image")
    ks_ = []
    for d in (1.1, 1.032, 1.05):
        cfg = KernelSearchConfig(views=1, lambda_decay=d, autocast=True)
        for v in VIEWS[:2]:
            ks_.append(_unview(search_kernel(_view(y, *v), 64, image_prior=searcher, config=cfg).kernel, *v)[0, 0].float())
    n = len(ks_)
    score = [sum(mnc(ks_[a], ks_[b]) for b in range(n) if b != a) / (n - 1) for a in range(n)]
    j = max(range(n), key=score.__getitem__)
    lam = 3.0 if score[j] >= 0.9 else 12.0
    config = RestoreConfig(kernel_size=64, seed=0).resolved()
    prior = R._image_prior(config, None)
    settings = replace(R.prox_config(config), lam=lam)
    result, _, domain = R._prox_solve(y, ks_[j], settings, prior, config, None)
    first = aligned(((domain.crop(result.estimates["image"]) + 1) / 2).clamp(0, 1).mean(0, keepdim=True))
    refit = R._refined(result, domain, y, config).cpu()
    final = deblur(y, replace(config, prox=replace(config.prox, lam=lam)), kernel=refit)
    row["medoid"] = {"psnr": aligned(final.image), "psnr_before_refit": first, "mnc": mnc(refit, kt),
                     "mnc_before_refit": mnc(ks_[j], kt), "consensus": score[j], "lam": lam,
                     "s": time.perf_counter() - t}
    print(json.dumps(row), flush=True)
    return row

if __name__ == "__main__":
    start, n = int(sys.argv[1]), 16
    with mp.get_context("spawn").Pool(2) as pool:
        rows = pool.map(run, range(start, start + n))
    json.dump(rows, open("/tmp/ens/medoid_pipeline.json", "w"))
