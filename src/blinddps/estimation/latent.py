"""The latent-image step of the kernel estimator: a sharp, piecewise-flat image for the kernel step.

    min_x ||k * x - y||^2 + lambda_dark ||dark(x)||_0 + lambda_grad ||grad x||_0

(Pan, Sun, Pfister, Yang, CVPR 2016). dark(x) is the dark channel, the minimum of x over a
patch around each pixel: blur raises it (a blurred dark pixel mixes in brighter ones), so a
sparse dark channel favours the sharp image over the blurred one, which the gradient term
alone does not always do. Solved by half-quadratic splitting: u ~ x with the dark pixels
whose dark value is small set to 0 (weight beta), g ~ grad x with small gradients set to 0
(weight mu), each fixed point one division in Fourier space (circular: pad y first).

Images (B, 1, H, W) in [0, 1] (any range works, the thresholds are absolute); kernels
(B|1, 1, K, K) non-negative summing to 1, origin floor(K/2).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..physics.fft import grad, grad_adjoint, grad_otfs, kernel_otf

BETA_MAX = 8.0  # last weight of the dark-channel splitting (Pan 2016)
MU_MAX = 1e5  # last weight of the gradient splitting (Pan 2014)


def otsu_threshold(v: Tensor, bins: int = 256) -> Tensor:
    """Otsu's threshold of each image (B, C, H, W) with values in [0, 1] -> (B,) in [0, 1]:
    the level that maximises the between-class variance of a `bins`-bin histogram."""
    flat = v.flatten(1).clamp(0, 1)
    index = (flat * (bins - 1)).round().long()
    hist = torch.zeros(flat.shape[0], bins, dtype=flat.dtype, device=flat.device).scatter_add_(
        1, index, torch.ones_like(flat))
    p = hist / hist.sum(dim=1, keepdim=True)
    levels = torch.arange(bins, dtype=flat.dtype, device=flat.device)
    omega = p.cumsum(dim=1)
    mu = (p * levels).cumsum(dim=1)
    between = (mu[:, -1:] * omega - mu) ** 2 / (omega * (1 - omega)).clamp_min(1e-12)
    return between.argmax(dim=1).to(flat.dtype) / (bins - 1)


def min_filter(x: Tensor, patch: int) -> Tensor:
    """Minimum of (B, C, H, W) over the patch x patch square centred on each pixel (and over
    channels), replicate borders -> (B, 1, H, W). Separable: rows, then columns."""
    r = patch // 2
    x = -x.amin(dim=1, keepdim=True)
    x = F.max_pool2d(F.pad(x, (r, r, 0, 0), mode="replicate"), (1, patch), stride=1)
    x = F.max_pool2d(F.pad(x, (0, 0, r, r), mode="replicate"), (patch, 1), stride=1)
    return -x


def max_filter(x: Tensor, patch: int) -> Tensor:
    """Maximum of (B, 1, H, W) over the centred patch x patch square, replicate borders."""
    return -min_filter(-x, patch)


def dark_pixels_zeroed(x: Tensor, threshold: Tensor | float, patch: int) -> Tensor:
    """x (B, 1, H, W) with the pixels that are the minimum of some patch whose minimum v has
    v^2 < threshold set to 0 (the L0 step on the dark channel, mapped back to pixels).

    A pixel p lies in the patch of q exactly when q lies in the patch of p, and the patch
    minimum of every such q is <= x[p]; so p is the minimum of a qualifying patch exactly when
    the largest qualifying minimum around p equals x[p] (ties: every tied pixel is zeroed).
    Pixels within patch // 2 of the border keep their value (their patches are cut)."""
    dark = min_filter(x, patch)
    qualifying = torch.where(dark * dark < threshold, dark, torch.full_like(dark, -torch.inf))
    zeroed = torch.where(max_filter(qualifying, patch) == x, torch.zeros_like(x), x)
    r = patch // 2
    inner = torch.zeros_like(x, dtype=torch.bool)
    inner[..., r:x.shape[-2] - r, r:x.shape[-1] - r] = True
    return torch.where(inner, zeroed, x)


def dark_l0_latent(y: Tensor, kernel: Tensor, lambda_dark: float, lambda_grad: float, *, patch: int = 35,
                   kappa: float = 2.0) -> Tensor:
    """The latent image x (B, 1, H, W) of the module docstring's objective, circular.

    y (B, 1, H, W) blurred (periodically padded by the caller), kernel (B|1, 1, K, K).
    The dark-channel weight beta starts at lambda_dark / Otsu(y^2) per image (Pan 2016: the
    first threshold sits at Otsu's level of the squared intensities) and doubles up to
    BETA_MAX; for each, the gradient weight mu doubles from 2 lambda_grad up to MU_MAX.
    lambda_dark = 0: the gradient-only L0 latent (one outer pass, no dark term).
    """
    shape = y.shape[-2:]
    otf = kernel_otf(kernel.to(y.dtype), shape)
    gx, gy = grad_otfs(shape, y.dtype, y.device)
    num_data = otf.conj() * torch.fft.rfft2(y)
    den_data = otf.abs() ** 2
    den_grad = gx.abs() ** 2 + gy.abs() ** 2
    x = y
    if lambda_dark > 0:
        beta = (lambda_dark / otsu_threshold(y * y).clamp_min(1e-6)).view(-1, 1, 1, 1)
    else:
        beta = torch.zeros(y.shape[0], 1, 1, 1, dtype=y.dtype, device=y.device)
    while True:
        active = beta < BETA_MAX  # images whose dark splitting has not finished
        if lambda_dark > 0 and not bool(active.any()):
            return x
        u = dark_pixels_zeroed(x, lambda_dark / beta.clamp_min(1e-30), patch) if lambda_dark > 0 else x
        num = num_data + beta * torch.fft.rfft2(u)
        mu = 2 * lambda_grad
        x_new = x
        while True:
            hx, hy = grad(x_new)
            keep = (hx * hx + hy * hy) >= (lambda_grad / mu if mu > 0 else 0.0)
            spec_g = torch.fft.rfft2(grad_adjoint(hx * keep, hy * keep))
            x_new = torch.fft.irfft2((num + mu * spec_g) / (den_data + beta + mu * den_grad), s=shape)
            mu *= kappa
            if mu == 0 or mu >= MU_MAX:
                break
        x = torch.where(active, x_new, x) if lambda_dark > 0 else x_new
        if lambda_dark == 0:
            return x
        beta = beta * kappa
