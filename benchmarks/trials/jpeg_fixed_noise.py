"""Diagnostic: the JPEG change with the noise estimate held at the PNG photo's (search and sampler)."""
import sys, json, importlib, torch
sys.path.insert(0, '/work/main/benchmarks')
import kernel_stability as ks
from pathlib import Path
from blinddps import RestoreConfig, deblur
from blinddps.io.images import list_images
from blinddps.metrics import kernel_mnc
from blinddps.metrics.error_ratio import psnr_upto_shift
from blinddps.estimation.noise import estimate_noise
KS = importlib.import_module("blinddps.solvers.kernel_search")
PX = importlib.import_module("blinddps.solvers.proximal")
torch.set_num_threads(1)
base = {json.loads(l)["index"]: json.loads(l) for l in open('/tmp/stability.log') if l.startswith('{')}
saved = json.load(open('/work/main/benchmarks/results/kernel-stability/results.json'))
ps = list_images([Path('/work/shared/data/train/bsds500')])
for i in range(200, 208):
    x, y, kt = ks.photo(ps[i], i)
    fixed = float(estimate_noise(y)[0])
    KS.estimate_noise = PX.estimate_noise = lambda v, fixed=fixed: torch.full((v.shape[0],), fixed)
    base_k = deblur(y, RestoreConfig(kernel_size=64, seed=0)).kernel  # unchanged run (estimate = its own)
    r = deblur(ks.jpeg95(y), RestoreConfig(kernel_size=64, seed=0))
    p = float(psnr_upto_shift(r.image.double(), x.double(), max_shift=16, crop=16)[0])
    print(json.dumps({"index": i, "mnc_base": round(float(kernel_mnc(r.kernel[None, None], base_k[None, None])[0]), 3),
                      "psnr": round(p, 2), "psnr_base": round(base[i]["base"]["psnr"], 2),
                      "jpeg_default_mnc_base": round(base[i]["jpeg"]["mnc_base"], 3)}), flush=True)
