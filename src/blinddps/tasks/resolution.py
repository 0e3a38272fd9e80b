"""The photo and its kernel between resolutions: a photo down-scaled to a bound (a preview,
or the view a blind kernel is found on), and a kernel found on a view carried back up."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def bound_resolution(y: torch.Tensor, max_size: int) -> tuple[torch.Tensor, float]:
    """Down-scale (antialiased) so that the long side is at most max_size; returns the scale."""
    h, w = y.shape[-2:]
    if not max_size or max(h, w) <= max_size:
        return y, 1.0
    scale = max_size / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(y, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1), scale


def upscale_kernel(kernel: torch.Tensor, scale: float, k_thresh: float = 50.0) -> torch.Tensor:
    """A kernel (K, K) found on a view down-scaled by `scale` (< 1) -> the blur of the photo:
    resampled (bicubic) to about K / scale pixels, made odd so that its origin stays the
    centre, values under max / k_thresh dropped, cropped to the smallest centred square that
    holds the rest, non-negative and summing to 1."""
    size = int(round(kernel.shape[-1] / scale))
    size += size % 2 == 0
    big = F.interpolate(kernel[None, None].double(), size=(size, size), mode="bicubic", align_corners=False)
    big = big.clamp_min(0)[0, 0]
    big = big * (big >= big.max() / k_thresh)
    rows, cols = torch.nonzero(big, as_tuple=True)
    c = size // 2
    reach = int(torch.cat([(rows - c).abs(), (cols - c).abs()]).max()) if rows.numel() else 0
    big = big[c - reach:c + reach + 1, c - reach:c + reach + 1]
    return (big / big.sum()).float()
