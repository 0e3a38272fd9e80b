"""The noise level of a photo, from the photo alone."""
from __future__ import annotations

import torch


def estimate_noise(y: torch.Tensor) -> torch.Tensor:
    """Noise std of each image (B, C, H, W) -> (B,), in y's units, by the median absolute
    deviation of its finest diagonal Haar coefficients (Donoho's estimator: those
    coefficients are mostly noise, and the median ignores the few that edges make large)."""
    h, w = y.shape[-2:]
    y = y[..., : h - h % 2, : w - w % 2]
    hh = (y[..., 0::2, 0::2] - y[..., 0::2, 1::2] - y[..., 1::2, 0::2] + y[..., 1::2, 1::2]) / 2
    return hh.flatten(1).abs().median(dim=1).values / 0.6745
