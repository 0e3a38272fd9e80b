"""Checks of the task's sizes and of a user's known kernel (non-negative, summing to 1),
and the known kernel resampled with the photo."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..physics import pad_kernel_to
from .config import RestoreConfig


def check_sizes(image: torch.Tensor, config: RestoreConfig) -> None:
    h, w = image.shape[-2:]
    if config.kernel_size < 3:
        raise ValueError(f"kernel size must be at least 3, got {config.kernel_size}")
    if config.kernel_size > min(h, w):
        raise ValueError(f"kernel size {config.kernel_size} is larger than the image ({w}x{h})")


def check_kernel(kernel: torch.Tensor) -> torch.Tensor:
    """A user's known kernel (K, K) or (1, 1, K, K), any non-negative scale -> (K, K) float32
    summing to 1; ValueError with the reason for anything else."""
    k = torch.as_tensor(kernel)
    if k.dim() == 4 and k.shape[:2] == (1, 1):
        k = k[0, 0]
    if k.dim() != 2:
        raise ValueError(f"a kernel must be a 2-D array (K, K), got shape {tuple(k.shape)}")
    if min(k.shape) < 1:
        raise ValueError("the kernel is empty")
    k = k.double()
    if not torch.isfinite(k).all():
        raise ValueError("the kernel contains NaN or Inf values")
    if (k < 0).any():
        raise ValueError(f"the kernel has negative values (min {float(k.min()):.3g}): a blur kernel is non-negative")
    if float(k.sum()) <= 0:
        raise ValueError("the kernel is all zeros")
    return (k / k.sum()).float()


def fit_known_kernel(kernel: torch.Tensor, scale: float) -> torch.Tensor:
    """A checked kernel (Kh, Kw) summing to 1 -> square (K, K), K = max(Kh, Kw) (zero-padded
    around its origin: the same blur), resampled by `scale` when the photo was down-scaled to
    max_size (the blur shrinks with the photo), still non-negative and summing to 1."""
    kernel = pad_kernel_to(kernel, max(kernel.shape))
    if scale >= 1:
        return kernel
    size = max(1, round(kernel.shape[-1] * scale))
    size += (size % 2 == 0) and kernel.shape[-1] % 2 == 1  # keep an odd kernel odd (a centred origin)
    small = F.interpolate(kernel[None, None].double(), size=(size, size), mode="area")[0, 0].clamp_min(0)
    return (small / small.sum()).float()
