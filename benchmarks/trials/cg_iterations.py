"""PSNR of known-kernel restorations with 10 vs fewer CG iterations, by photo size (training photos)."""
import sys, time
from dataclasses import replace
from pathlib import Path
import torch, torch.nn.functional as F
import importlib; R = importlib.import_module("blinddps.tasks.restore")
from blinddps import RestoreConfig, deblur
from blinddps.devices import keep_freed_memory
from blinddps.generators.motion import MotionKernelGenerator
from blinddps.io.images import read_image, list_images
from blinddps.metrics import psnr
from blinddps.physics import Blur

keep_freed_memory()
orig = R.prox_config
photos = list_images([Path("/work/shared/data/train/bsds500")])
for (w, h, ks, idx) in [(384, 256, 31, 7), (768, 512, 51, 8), (1200, 800, 51, 9), (2000, 1500, 75, 10)]:
    x = F.interpolate(read_image(photos[idx]).tensor, size=(h, w), mode="bicubic", antialias=True).clamp(0, 1)
    k = MotionKernelGenerator(size=ks, intensity=0.5).sample(1, generator=torch.Generator().manual_seed(idx))["kernel"][0, 0]
    c = ks // 2
    y = Blur("valid")(F.pad(x, (c, ks - 1 - c, c, ks - 1 - c), mode="reflect"), kernel=k)
    y = (y + 0.01 * torch.randn(y.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    res = {}
    for it in (10, 5, 3):
        R.prox_config = lambda cfg, it=it: replace(orig(cfg), cg_iters=it)
        t = time.perf_counter()
        out = deblur(y, RestoreConfig(seed=0), kernel=k).image
        res[it] = (float(psnr(out, x, crop=c)[0]), time.perf_counter() - t, out)
    print(f"{w}x{h} K{ks}: " + ", ".join(f"cg{it} {p:.3f} dB {s:.0f}s (vs10 {float(psnr(o, res[10][2])[0]):.1f} dB)" for it, (p, s, o) in res.items()), flush=True)
