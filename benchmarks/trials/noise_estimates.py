import sys, math, torch
sys.path.insert(0, '/work/main/benchmarks')
import kernel_stability as ks
from pathlib import Path
from blinddps.io.images import list_images
from blinddps.physics import Blur
from blinddps.generators.motion import MotionKernelGenerator
import torch.nn.functional as F

def hh(y):
    h, w = y.shape[-2:]; y = y[..., :h-h%2, :w-w%2]
    return (y[..., 0::2, 0::2] - y[..., 0::2, 1::2] - y[..., 1::2, 0::2] + y[..., 1::2, 1::2]) / 2

def mad(c): return float(c.flatten().abs().median() / 0.6745)

def trimmed(c, iters=3):
    c = c.flatten().double()
    s = float(c.abs().median() / 0.6745)
    for _ in range(iters):
        t = 3 * s
        keep = c.abs() < t
        s = math.sqrt(float((c[keep] ** 2).mean()) / 0.97334)
    return s

def est(y, kind):
    if kind == 'mad1': return mad(hh(y))
    if kind == 'trim1': return trimmed(hh(y))
    y2 = F.avg_pool2d(y, 2) * 2  # 2x2 mean x2: noise std kept
    if kind == 'mad2': return mad(hh(y2))
    if kind == 'trim2': return trimmed(hh(y2))

ps = list_images([Path('/work/shared/data/train/bsds500')])
kinds = ('mad1', 'trim1', 'mad2', 'trim2')
for blur in (True, False):
    for sigma in (0.005, 0.01, 0.02):
        acc = {k: [] for k in kinds}
        for i in range(300, 308):
            x = ks.read_image(ps[i]).tensor[..., :256, :256]
            if blur:
                k = MotionKernelGenerator(size=64, intensity=0.5).sample(1, generator=torch.Generator().manual_seed(i))["kernel"][0, 0]
                x = Blur('reflect')(x, kernel=k)
            y = x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(i))
            y = (y.clamp(0, 1) * 255).round() / 255
            j = ks.jpeg95(y)
            for kd in kinds:
                acc[kd].append((est(y, kd) / sigma, est(j, kd) / sigma, est(y[..., 1:, 1:], kd) / sigma))
        print(f"blur={blur} sigma={sigma}: " + "  ".join(
            f"{kd} png {sum(a[0] for a in v)/8:.2f} jpeg {sum(a[1] for a in v)/8:.2f} |shift-base| {sum(abs(a[2]-a[0]) for a in v)/8:.3f}" for kd, v in acc.items()))
