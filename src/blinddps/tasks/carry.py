"""A blind kernel found on a down-scaled view, carried up to the photo's resolution.

Resampling alone cannot restore what the view lost: a motion blur of 101 px on a
4000 px photo is 13 px on a 512 px view, and even the TRUE kernel taken down to that view and
back up matches itself with an MNC of only about 0.67 (0.87 from a 1024 px view, 0.97 from
2048). So the kernel climbs a ladder of scales, doubling from the view's up to the photo's
own: at each rung it is resampled (`upscale_kernel`), its support widened by a margin, and
refit on one region of the photo at that scale (the caller's `refit`: in the product a
restoration of the region with the kernel, and the kernel refit to it). The region is the
photo's most textured window (edges fix a kernel; flat sky does not), the same part of the
scene at every rung, a fixed number of pixels at each scale, so a rung costs the same on any
photo.

Images (1, C, H, W) in [0, 1]; kernels (K, K), non-negative, summing to 1, origin K // 2.
"""
from __future__ import annotations

import math
from typing import Callable

import torch.nn.functional as F
from torch import Tensor

from ..metrics.image import rgb_to_luma
from ..physics.kernel_geometry import pad_kernel_to
from .resolution import upscale_kernel

RefitFn = Callable[[Tensor, Tensor], Tensor]
# Views at this scale or above carry their kernel by resampling alone: the true kernel taken to
# a view at 0.5 and back still scores MNC 0.96-0.98 (0.87 at 0.25, 0.67 at 0.128), so a refit has
# little to win there, and on Lai et al. 2016's ~1000 px photos (view scale 0.52) it lost 0.44 dB
# on average (one kernel of 20 lost: RESULTS.md; this limit was set after that measurement)
REFIT_BELOW = 0.5


def rungs(view_scale: float) -> list[float]:
    """The scales above the view's up to 1, spread evenly in log scale, each at most about
    twice the one before (up to 2.4x, so that a view at 0.48 does not cost a rung at 0.97):
    0.128 -> [0.254, 0.504, 1.0]; 0.48 or 0.6 -> [1.0]; 1 -> []."""
    if view_scale >= 1:
        return []
    count = max(1, math.ceil(math.log2(1 / view_scale) - 0.25))
    return [view_scale ** (1 - i / count) for i in range(1, count)] + [1.0]


def textured_centre(view: Tensor, window: int) -> tuple[float, float]:
    """The centre (row, col), as fractions of the height and width, of the window x window
    square of view (1, C, h, w) in [0, 1] with the most gradient energy (of the luma); the
    square kept inside the view."""
    luma = rgb_to_luma(view) if view.shape[1] == 3 else view.mean(dim=1, keepdim=True)
    gy, gx = luma.diff(dim=-2)[..., :, :-1], luma.diff(dim=-1)[..., :-1, :]
    energy = gx**2 + gy**2
    h, w = energy.shape[-2:]
    wh, ww = min(window, h), min(window, w)
    mean = F.avg_pool2d(energy, (wh, ww), stride=1)[0, 0]  # (h - wh + 1, w - ww + 1): every placement
    index = int(mean.flatten().argmax())
    top, left = divmod(index, mean.shape[-1])
    return (top + wh / 2) / (h + 1), (left + ww / 2) / (w + 1)


def region(y01: Tensor, centre: tuple[float, float], scale: float, side: int) -> Tensor:
    """The photo's region about `centre` that is side x side pixels at `scale` (cut at full
    resolution, kept inside the photo, then down-scaled, antialiased): (1, C, <= side, <= side)."""
    h, w = y01.shape[-2:]
    rh, rw = min(h, round(side / scale)), min(w, round(side / scale))
    top = min(max(round(centre[0] * h - rh / 2), 0), h - rh)
    left = min(max(round(centre[1] * w - rw / 2), 0), w - rw)
    crop = y01[..., top:top + rh, left:left + rw]
    if scale >= 1:
        return crop
    size = (max(1, round(rh * scale)), max(1, round(rw * scale)))
    return F.interpolate(crop, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


def carry_kernel(y01: Tensor, view: Tensor, kernel: Tensor, view_scale: float, refit: RefitFn, *,
                 side: int = 512, margin: float = 0.1) -> tuple[Tensor, list[dict]]:
    """The kernel (K, K) found on `view` (the photo y01 down-scaled by view_scale) carried rung
    by rung (`rungs`) to the photo's resolution: resampled, zero-padded by `margin` times its
    side on every side (the blur's detail the view could not hold may reach past it), and
    refit(region, kernel) -> kernel on the `side` px region about the view's most textured
    window. Returns the photo's kernel and, per rung, its scale and the kernel's side."""
    centre = textured_centre(view, side)
    record = []
    scale = view_scale
    for rung in rungs(view_scale):
        kernel = upscale_kernel(kernel, scale / rung)
        size = kernel.shape[-1]
        kernel = pad_kernel_to(kernel, size + 2 * max(2, round(margin * size)))
        kernel = refit(region(y01, centre, rung, side), kernel)
        record.append({"scale": rung, "kernel_size": kernel.shape[-1]})
        scale = rung
    return kernel, record
