"""FFT machinery of the blur: kernel <-> OTF, circular convolution, gradient filters, periodic padding.

Convention (the project's): a blur is the TRUE 2-D convolution with origin c = floor(K/2),
    y[n] = sum_m k[m] x[n - m + c],
taken circularly here. Images are (B, C, H, W); kernels (B, 1, K, K) or (K, K), broadcast
over channels (and over the batch when B == 1).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .kernel_geometry import embed_periodic


def as_kernel_batch(kernel: Tensor) -> Tensor:
    """(K1, K2) or (B, 1, K1, K2) -> (B, 1, K1, K2)."""
    if kernel.dim() == 2:
        return kernel[None, None]
    if kernel.dim() != 4 or kernel.shape[1] != 1:
        raise ValueError(f"kernel must be (K, K) or (B, 1, K, K), got {tuple(kernel.shape)}")
    return kernel


def kernel_otf(kernel: Tensor, shape: tuple[int, int]) -> Tensor:
    """psf2otf: rfft2 of the kernel zero-padded to `shape` with its origin floor(K/2) moved to 0.

    kernel (B, 1, K1, K2) or (K1, K2) -> complex (B, 1, H, W // 2 + 1). Needs K <= (H, W).
    """
    k = as_kernel_batch(kernel)
    k1, k2 = k.shape[-2:]
    h, w = shape
    if k1 > h or k2 > w:
        raise ValueError(f"kernel {k1}x{k2} larger than the image {h}x{w}")
    return torch.fft.rfft2(embed_periodic(k, (h, w)))


def otf_to_kernel(spectrum: Tensor, size: tuple[int, int], shape: tuple[int, int]) -> Tensor:
    """otf2psf, the adjoint of `kernel_otf`: (..., H, W//2+1) spectrum -> (..., K1, K2) kernel."""
    k1, k2 = size
    full = torch.fft.irfft2(spectrum, s=shape)
    full = torch.roll(full, shifts=(k1 // 2, k2 // 2), dims=(-2, -1))
    return full[..., :k1, :k2]


def conv_circular(x: Tensor, kernel: Tensor) -> Tensor:
    """Circular true convolution: x (B, C, H, W), kernel (B|1, 1, K, K) or (K, K) -> (B, C, H, W)."""
    shape = x.shape[-2:]
    otf = kernel_otf(kernel.to(x.dtype), shape)
    return torch.fft.irfft2(torch.fft.rfft2(x) * otf, s=shape)


def grad_otfs(shape: tuple[int, int], dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    """Spectra (H, W//2+1) of the circular forward differences x[i, j+1] - x[i, j] and x[i+1, j] - x[i, j]."""
    h, w = shape
    dx = torch.zeros(h, w, dtype=dtype, device=device)
    dy = torch.zeros(h, w, dtype=dtype, device=device)
    # d[n] with (d * x)[n] = x[n+1] - x[n]: d[0] = -1 and d[-1] = +1.
    dx[0, 0], dx[0, -1] = -1.0, 1.0
    dy[0, 0], dy[-1, 0] = -1.0, 1.0
    return torch.fft.rfft2(dx), torch.fft.rfft2(dy)


def grad(x: Tensor) -> tuple[Tensor, Tensor]:
    """Circular forward differences (horizontal, vertical) of (..., H, W)."""
    return torch.roll(x, -1, dims=-1) - x, torch.roll(x, -1, dims=-2) - x


def grad_adjoint(gx: Tensor, gy: Tensor) -> Tensor:
    """Adjoint of `grad` (a negative divergence): D_x^T gx + D_y^T gy."""
    return (torch.roll(gx, 1, dims=-1) - gx) + (torch.roll(gy, 1, dims=-2) - gy)


def pad_periodic(y: Tensor, pad: int) -> Tensor:
    """Extend (B, C, H, W) to (B, C, H + pad, W + pad) so that it is continuous when tiled.

    The added rows/columns (bottom/right) blend linearly from the last row/column to the
    first, so circular FFT deconvolution sees no jump at the border (a simple stand-in for
    edge tapering / Liu-Jia wrap boundaries). Crop back with [..., :H, :W].
    """
    if pad <= 0:
        return y
    t = torch.arange(1, pad + 1, dtype=y.dtype, device=y.device) / (pad + 1)
    first, last = y[..., :1, :], y[..., -1:, :]
    rows = (1 - t.view(-1, 1)) * last + t.view(-1, 1) * first
    y = torch.cat([y, rows], dim=-2)
    first, last = y[..., :, :1], y[..., :, -1:]
    cols = (1 - t) * last + t * first
    return torch.cat([y, cols], dim=-1)


