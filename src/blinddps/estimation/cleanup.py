"""Kernel clean-ups between the estimator's steps: normalising, thresholding, removing
disconnected specks, centring, resizing between pyramid levels.

Kernels are (B, 1, K, K), batch-first and vectorised; after each function they are
non-negative and sum to 1 (an all-zero kernel becomes the centred delta), origin K // 2.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..physics.kernel_geometry import centre_kernel as _centre_kernel
from ..physics.kernel_geometry import pad_kernel_to

def normalise(k: Tensor) -> Tensor:
    """Clip negatives and divide by the sum; an all-zero kernel becomes a centred delta."""
    k = k.clamp_min(0)
    s = k.flatten(1).sum(dim=1).view(-1, 1, 1, 1)
    delta = torch.zeros_like(k)
    delta[..., k.shape[-2] // 2, k.shape[-1] // 2] = 1.0
    return torch.where(s > 0, k / s.clamp_min(1e-30), delta)
def final_threshold(k: Tensor, k_thresh: float) -> Tensor:
    """Pan's last step: the values of each kernel (B, 1, K, K) under max / k_thresh zeroed (in
    k's dtype), then normalised in float64 (`normalise`)."""
    k = k * (k >= k.flatten(1).amax(dim=1).view(-1, 1, 1, 1) / k_thresh)
    return normalise(k.double())
def prune_components(k: Tensor, min_mass: float = 0.1) -> Tensor:
    """Zero the 8-connected components of the support whose mass is < min_mass, then normalise.

    Pan's "pruning isolated noise in kernel" (threshold 0.1 of a kernel summing to 1). Components
    are labelled by propagating the maximum pixel index through 3x3 neighbourhoods inside the
    support until it stops changing (vectorised over the batch).
    """
    b, _, k1, k2 = k.shape
    support = k > 0
    ids = torch.arange(1, k1 * k2 + 1, dtype=k.dtype, device=k.device).view(1, 1, k1, k2)
    labels = torch.where(support, ids.expand_as(k), torch.zeros_like(k))
    while True:
        new = torch.where(support, F.max_pool2d(labels, 3, stride=1, padding=1), labels)
        if torch.equal(new, labels):
            break
        labels = new
    flat = labels.long().view(b, -1)
    mass = torch.zeros(b, k1 * k2 + 1, dtype=k.dtype, device=k.device).scatter_add_(1, flat, k.reshape(b, -1))
    keep = torch.gather(mass, 1, flat).view_as(k) >= min_mass
    return normalise(k * keep)
def centre_kernel(k: Tensor) -> Tensor:
    """Move the rounded centre of mass onto the origin floor(K/2) (Pan's adjust_psf_center).

    Zero-filled shift (mass pushed past the border is dropped), half-up
    rounding, mass clamped at 1e-30 (this baseline's historical epsilon), then normalised.
    """
    return normalise(_centre_kernel(k, mode="zeros", rounding="half_up", eps=1e-30))
def resize_kernel(k: Tensor, scale: float, size: int) -> Tensor:
    """Upsample a kernel by `scale` (bilinear) and fit it, centred, into size x size; sum 1.

    Centred: the upsampled kernel's origin m // 2 lands on size // 2 (pad or crop).
    """
    m = max(1, round(k.shape[-1] * scale))
    up = F.interpolate(k, size=(m, m), mode="bilinear", align_corners=False)
    return normalise(pad_kernel_to(up, size))