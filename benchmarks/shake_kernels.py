"""Camera-shake kernels from an oscillating hand, for trials on TRAINING photos.

The project's motion generator (`blinddps.generators.motion`, the paper's) draws a polyline of
even brightness. A hand's tremor oscillates: the camera slows down and stops at every turn,
so a recorded shake kernel is uneven, brightest where the motion turned. This generator
models that and nothing more: each axis follows a sum of three sines of random frequency
(0.2-1.2 cycles per exposure), amplitude and phase plus a slow drift, sampled evenly in time
(so the light a pixel gets is the time the camera spends over it), scaled so that the
trajectory's longer side spans 50-90 % of the kernel, splatted bilinearly and blurred by a
Gaussian of 0.6 px (the lens). Used by the trial scripts' `--shake` option, to ask whether
what Levin's recorded kernels do to a method shows on kernels of this kind; it is not a model
fitted to any benchmark's kernels.
"""
from __future__ import annotations

import math

import torch


def shake_kernel(size: int, generator: torch.Generator, samples: int = 4000) -> torch.Tensor:
    """One kernel (size, size) float64, non-negative, summing to 1."""
    t = torch.linspace(0, 1, samples, dtype=torch.float64)
    axes = []
    for _ in range(2):
        rand = lambda n: torch.rand(n, generator=generator, dtype=torch.float64)
        freq, amp, phase = 0.2 + rand(3), rand(3) / torch.arange(1, 4), 2 * math.pi * rand(3)
        drift = 2 * rand(1) - 1
        axes.append((amp[:, None] * torch.sin(2 * math.pi * freq[:, None] * t + phase[:, None])).sum(0) + drift * t)
    path = torch.stack(axes, 1)
    path = path - path.mean(0)
    extent = (path.amax(0) - path.amin(0)).max().clamp_min(1e-9)
    span = (0.5 + 0.4 * torch.rand(1, generator=generator, dtype=torch.float64)) * (size - 4)
    path = path * span / extent + size // 2
    return _lens(_splat(path, size), 0.6)


def _splat(points: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear splat of (N, 2) (x, y) points onto a (size, size) grid, each point weight 1."""
    grid = torch.zeros(size * size, dtype=torch.float64)
    base = points.floor()
    frac = points - base
    for dx in (0, 1):
        for dy in (0, 1):
            x, y = base[:, 0].long() + dx, base[:, 1].long() + dy
            w = (frac[:, 0] if dx else 1 - frac[:, 0]) * (frac[:, 1] if dy else 1 - frac[:, 1])
            inside = (x >= 0) & (x < size) & (y >= 0) & (y < size)
            grid.index_add_(0, (y * size + x)[inside], w[inside])
    return grid.view(size, size)


def _lens(kernel: torch.Tensor, std: float) -> torch.Tensor:
    """Separable Gaussian blur (std px, 2 std either side), then normalised to sum 1."""
    r = max(1, math.ceil(2 * std))
    taps = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float64) / std) ** 2)
    taps = taps / taps.sum()
    k = torch.nn.functional.conv2d(kernel[None, None], taps.view(1, 1, 1, -1), padding=(0, r))
    k = torch.nn.functional.conv2d(k, taps.view(1, 1, -1, 1), padding=(r, 0))[0, 0]
    return k / k.sum()
