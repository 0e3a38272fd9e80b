"""Gaussian blur kernels (BLINDDPS.md section 4): the paper's Gaussian test operator
(64x64, std 3.0) and the Gaussian part of the kernel prior's training data (std U(0.1, 5)).

The reference builds a kernel as a unit impulse at index size // 2 filtered by a Gaussian
truncated at 4 std (scipy.ndimage.gaussian_filter): the sampled, separable Gaussian
exp(-d^2 / (2 std^2)) on offsets |d| <= floor(4 std + 0.5) from the centre, normalised to
sum 1. We compute that directly, vectorised over per-sample stds, and renormalise after
cropping to the grid (only matters when 4 std exceeds size / 2).
"""
from __future__ import annotations

import math

import torch

from ._random import Seed, as_generator, sample_range, uniform


def _offsets(size: int, device: torch.device | None = None) -> torch.Tensor:
    """Pixel offsets from the kernel centre size // 2: (size,) float64."""
    return torch.arange(size, dtype=torch.float64, device=device) - size // 2


def gaussian_kernels(size: int, std_y: torch.Tensor, std_x: torch.Tensor | None = None,
                     angle: torch.Tensor | None = None) -> torch.Tensor:
    """A batch of (possibly anisotropic, rotated) Gaussian kernels.

    Args:
        size: kernel side S; the centre is at index S // 2 (32 for S = 64).
        std_y, std_x: (N,) standard deviations in pixels along the kernel's own axes
            (std_x defaults to std_y: isotropic).
        angle: (N,) rotation of those axes in radians (default 0).
    Returns:
        (N, S, S) float64, non-negative, each summing to 1. Truncated to the box
        |dy|, |dx| <= floor(4 max(std) + 0.5): for equal stds this is exactly the
        reference's separable truncated Gaussian.
    """
    std_y = std_y.to(torch.float64)
    std_x = std_y if std_x is None else std_x.to(torch.float64)
    angle = torch.zeros_like(std_y) if angle is None else angle.to(torch.float64)
    d = _offsets(size, std_y.device)
    dy, dx = d[:, None], d[None, :]
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    # Coordinates in the rotated frame of the Gaussian's principal axes.
    u = cos * dy + sin * dx
    v = -sin * dy + cos * dx
    q = (u / std_y[:, None, None]) ** 2 + (v / std_x[:, None, None]) ** 2
    radius = torch.floor(4.0 * torch.maximum(std_y, std_x) + 0.5)[:, None, None]
    inside = (dy.abs() <= radius) & (dx.abs() <= radius)
    k = torch.where(inside, torch.exp(-0.5 * q), torch.zeros_like(q))
    return k / k.sum((-2, -1), keepdim=True)


def gaussian_kernel(size: int = 64, std: float = 3.0) -> torch.Tensor:
    """One isotropic Gaussian PSF, (size, size) float32, sum 1 (paper's test: 64, 3.0)."""
    return gaussian_kernels(size, torch.tensor([float(std)]))[0].to(torch.float32)


class GaussianKernelGenerator:
    """Random Gaussian blur kernels, per-sample parameters, vectorised.

    Args:
        size: kernel side S.
        std: a float (3.0: the paper's test kernel) or a (lo, hi) range drawn per kernel
            ((0.1, 5.0): the kernel prior's training data).
        anisotropic: if True, each kernel gets two stds drawn independently from `std` and
            a rotation angle U(0, pi); otherwise one std for both axes.

    ``sample(batch_size, generator=None)`` returns {"kernel": (B, 1, S, S) float32},
    non-negative, each summing to 1.
    """

    def __init__(self, size: int = 64, std: float | tuple[float, float] = 3.0,
                 anisotropic: bool = False) -> None:
        self.size = size
        self.std = std
        self.anisotropic = anisotropic

    def __repr__(self) -> str:
        return (f"GaussianKernelGenerator(size={self.size}, std={self.std}, "
                f"anisotropic={self.anisotropic})")

    def sample(self, batch_size: int, generator: Seed = None,
               device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        g = as_generator(generator)
        std_y = sample_range(g, batch_size, self.std)
        std_x, angle = None, None
        if self.anisotropic:
            std_x = sample_range(g, batch_size, self.std)
            angle = uniform(g, batch_size, 0.0, math.pi)
        kernel = gaussian_kernels(self.size, std_y, std_x, angle).to(torch.float32)[:, None]
        return {"kernel": kernel.to(device) if device is not None else kernel}
