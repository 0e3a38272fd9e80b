"""Edge selection for the kernel step: only the latent image's strong gradients constrain the kernel.

Weak gradients are where a latent image that is still blurred or noisy misleads the kernel
step (Cho & Lee 2009; Xu & Jia 2010). The threshold is chosen once, at the coarsest level,
so that each of four orientation bins keeps at least `per_bin * K` pixels (every orientation
constrains the kernel), then lowered by a constant factor after every kernel step, so that
more edges enter as the latent image sharpens (Pan et al. 2016's schedule).

Gradients are the 'valid' forward differences (B, 1, H-1, W-1); thresholds are on the
squared magnitude, one per image (B,).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

BINS = 4


def valid_gradients(x: Tensor) -> tuple[Tensor, Tensor]:
    """Forward differences of (B, C, H, W) that need no border, both (B, C, H-1, W-1)."""
    return x[..., :-1, 1:] - x[..., :-1, :-1], x[..., 1:, :-1] - x[..., :-1, :-1]


def orientation_bins(px: Tensor, py: Tensor) -> Tensor:
    """Bin index 0..3 of each gradient's orientation, sign ignored: atan(py / px) in
    [0, 45), [45, 90], [-45, 0), [-90, -45) degrees."""
    angle = torch.atan(py / px.where(px != 0, torch.full_like(px, 1e-30)))
    quarter = math.pi / 4
    return torch.where(angle >= quarter, 1, torch.where(angle >= 0, 0, torch.where(angle >= -quarter, 2, 3)))


def edge_threshold(x: Tensor, kernel_size: int, per_bin: float = 20.0) -> Tensor:
    """The squared-magnitude threshold (B,) that keeps at least max(per_bin * K, 10) pixels of
    x (B, 1, H, W) in each orientation bin: the smallest over the bins of each bin's n-th
    largest squared magnitude; 0 (keep everything) where a bin holds fewer than n pixels."""
    px, py = valid_gradients(x)
    magnitude = (px * px + py * py).flatten(1)
    if per_bin <= 0:  # no selection: every gradient is kept
        return torch.zeros_like(magnitude[:, 0])
    bins = orientation_bins(px, py).flatten(1)
    n = int(max(per_bin * kernel_size, 10))
    out = []
    for b in range(BINS):
        in_bin = torch.where(bins == b, magnitude, torch.full_like(magnitude, -1.0))
        if n > in_bin.shape[1]:
            out.append(torch.zeros_like(magnitude[:, 0]))
            continue
        nth = in_bin.topk(n, dim=1).values[:, -1]
        out.append(nth.clamp_min(0))  # -1: the bin holds fewer than n pixels -> keep all
    return torch.stack(out, dim=1).amin(dim=1)


def select_edges(px: Tensor, py: Tensor, threshold: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """px, py (B, 1, h, w) zeroed where the squared magnitude is under the image's threshold
    (B,); a threshold that would zero every gradient is lowered (x 0.81) until some pass.
    Returns the kept gradients and the thresholds used."""
    magnitude = px * px + py * py
    peak = magnitude.flatten(1).amax(dim=1)
    threshold = threshold.clone()
    while True:
        empty = (threshold > peak) & (peak > 0)
        if not bool(empty.any()):
            break
        threshold = torch.where(empty, threshold * 0.81, threshold)
    keep = magnitude >= threshold.view(-1, 1, 1, 1)
    return px * keep, py * keep, threshold
