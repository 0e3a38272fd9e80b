"""Trial: an ensemble of kernel searches (views x decays) with the medoid kept, against the cascade.
Training photos, paper protocol (kernel_stability.photo). Prints JSON per photo."""
import json, sys, time
from pathlib import Path
import torch
sys.path.insert(0, "/work/main/benchmarks")
import kernel_stability as ks
from blinddps.io.images import list_images
from blinddps.metrics import kernel_mnc
from blinddps.priors.bundle import load_prior
from blinddps.solvers.kernel_search import KernelSearchConfig, search_kernel, _view, _unview, VIEWS, merge_kernels
from blinddps.physics.kernel_geometry import align_kernel

torch.set_num_threads(1)
prior = load_prior("natural-rgb-3", kind="image")
DECAYS = (1.1, 1.032, 1.05)

def runs(y):
    out = []
    for d in DECAYS:
        cfg = KernelSearchConfig(views=1, lambda_decay=d, autocast=True)
        for v in VIEWS[:2]:
            k = search_kernel(_view(y, *v), 64, image_prior=prior, config=cfg).kernel
            out.append(_unview(k, *v))
    return out

def mnc(a, b):
    return float(kernel_mnc(a, b)[0])

def medoid(ks_):
    n = len(ks_)
    m = torch.tensor([[mnc(ks_[i], ks_[j]) if i != j else 0.0 for j in range(n)] for i in range(n)])
    score = m.sum(1) / (n - 1)
    return int(score.argmax()), score

start, n = int(sys.argv[1]), int(sys.argv[2])
paths = list_images([Path("/work/shared/data/train/bsds500")])
for i in range(start, start + n):
    x, y, kt = ks.photo(paths[i], i)
    t = time.perf_counter()
    res = {}
    for name, yy in (("base", y), ("shift", y[..., 1:, 1:]), ("jpeg", ks.jpeg95(y))):
        kk = runs(yy)
        j, score = medoid(kk)
        pairs = [merge_kernels(kk[2 * a: 2 * a + 2], 20.0) for a in range(3)]
        res[name] = {"kernels": kk, "medoid": kk[j], "gm_all": merge_kernels(kk, 20.0), "pairs": pairs}
    row = {"photo": paths[i].name, "index": i, "s": round(time.perf_counter() - t)}
    kt4 = kt[None, None]
    for name in ("base", "shift", "jpeg"):
        r = res[name]
        row[name] = {"runs_true": [round(mnc(k, kt4), 3) for k in r["kernels"]],
                     "pairs_true": [round(mnc(k, kt4), 3) for k in r["pairs"]],
                     "medoid_true": round(mnc(r["medoid"], kt4), 3), "gm_all_true": round(mnc(r["gm_all"], kt4), 3)}
        if name != "base":
            row[name]["medoid_vs_base"] = round(mnc(r["medoid"], res["base"]["medoid"]), 3)
            row[name]["gm_all_vs_base"] = round(mnc(r["gm_all"], res["base"]["gm_all"]), 3)
            row[name]["pairs_vs_base"] = [round(mnc(a, b), 3) for a, b in zip(r["pairs"], res["base"]["pairs"])]
    print(json.dumps(row), flush=True)
