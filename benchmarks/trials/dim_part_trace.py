"""Diagnostic (for the record): where in the coarse-to-fine loop the dim part of the true kernel is lost (dim-end proxy, ramp 3).
Per pyramid level of the shipped single search, for the first and the last kernel step: the share of the
true kernel's dim part (values under a fifth of its peak, the truth area-resized to the level) that the
estimate covers after alignment, and the overlap of the two kernels.
    python benchmarks/trials/dim_part_trace.py 342,351,354 > out.txt"""
import sys, json
sys.path.insert(0, '/work/main/benchmarks'); sys.path.insert(0, '/work/main/benchmarks/trials')
import torch, torch.nn.functional as F
torch.set_num_threads(1)
import kernel_proxy as kp, tail_proxy as tp
import blinddps.baselines.pan_l0 as pl
from blinddps.bench.data import center_crop
from blinddps.io.images import read_image, list_images
from blinddps.metrics.image import rgb_to_luma
from blinddps.physics.fft import conv_circular
from blinddps.physics.kernel_geometry import align_kernel, pad_kernel_to
from pathlib import Path

def resized_truth(kt, size, scale):
    m = max(1, round(kt.shape[-1] * scale))
    k = F.interpolate(kt[None, None], size=(m, m), mode="area") if scale < 1 else kt[None, None]
    k = pad_kernel_to(k, size) if k.shape[-1] <= size else k
    return k / k.sum()

def dim_recall(est, truth):
    est = align_kernel(est, truth)
    dim = (truth > 0) & (truth < truth.max() / 5)
    return float(torch.minimum(est, truth)[dim].sum() / truth[dim].sum()), float(torch.minimum(est, truth).sum())

trace = []
orig_est = pl.estimate_kernel
ps = list_images([Path('/work/shared/data/train/bsds500')])
for i in map(int, sys.argv[1].split(",")):
    x = center_crop(rgb_to_luma(read_image(ps[i]).tensor.double()), kp.CROP)
    kt = tp.tail_kernel(kp.SIZES[i % 4], i, 3.0)
    y = (conv_circular(x, kt[None, None]).clamp(0, 1) * 255).round() / 255
    levels = []
    def est(bx, by, sx, sy, size, gamma):
        k = orig_est(bx, by, sx, sy, size, gamma)
        scale = (bx.shape[-1] + 1) / 255
        t = resized_truth(kt, size, scale)
        levels.append((size, round(scale, 3), *dim_recall(k.double(), t.double())))
        return k
    pl.estimate_kernel = est
    kp.estimate("search:65:1", y)
    pl.estimate_kernel = orig_est
    by_level = {}
    for size, scale, dr, overlap in levels:
        by_level.setdefault(scale, []).append((dr, overlap))
    print(i, "true size", kt.shape[-1])
    for scale, v in by_level.items():
        print(f"  scale {scale:.3f}: dim recall first/last {v[0][0]:.2f}/{v[-1][0]:.2f}  overlap first/last {v[0][1]:.2f}/{v[-1][1]:.2f}")
