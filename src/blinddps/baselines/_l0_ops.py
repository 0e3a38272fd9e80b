"""Building blocks of Pan et al. 2014 (L0-regularised intensity and gradient prior).

Pan, Hu, Su, Yang, "Deblurring Text Images via L0-Regularized Intensity and Gradient Prior",
CVPR 2014. Latent image step (their Algorithm 1: half-quadratic splitting after Xu et al. 2011),
kernel step (gradient-domain least squares with an l2 penalty, solved on the kernel's
support by conjugate gradients), and the kernel clean-ups of their pipeline. All functions are
batch-first and vectorised over the batch; kernels are (B, 1, K, K) with origin floor(K/2).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from blinddps.estimation.cleanup import centre_kernel, final_threshold, normalise, prune_components, resize_kernel
from blinddps.estimation.kernel_step import kernel_step as estimate_kernel
from blinddps.physics.fft import grad, grad_adjoint, grad_otfs, kernel_otf

__all__ = ["l0_deblur", "select_edges", "bilateral", "centre_kernel", "final_threshold", "normalise",
           "prune_components", "resize_kernel", "estimate_kernel"]


def l0_deblur(
    y: Tensor,
    kernel: Tensor,
    lambda_pixel: float,
    lambda_grad: float,
    *,
    kappa: float = 2.0,
    beta_max: float = 2e3,
    mu_max: float = 1e5,
) -> Tensor:
    """min_x ||k * x - y||^2 + lambda_pixel ||x||_0 + lambda_grad ||grad x||_0   (Pan et al. 2014).

    Splitting with u ~ x (weight beta) and g ~ grad x (weight mu):
        u = x where x^2 >= lambda_pixel / beta, else 0
        g = grad x where |grad x|^2 >= lambda_grad / mu, else 0
        X = (conj(K) Y + beta U + mu F(D^T g)) / (|K|^2 + beta + mu |D|^2)
    beta = 2 lambda_pixel, x kappa, while < beta_max = 2e3 (outer); mu = 2 lambda_grad, x kappa,
    while < mu_max = 1e5 (inner), as published. lambda_pixel = 0 gives the gradient-only L0
    deconvolution (one outer pass, beta = 0); lambda_grad = 0 one inner pass. Thresholds are
    joint over channels. Circular: pad y beforehand. y (B, C, H, W), kernel (B|1, 1, K, K) -> x (B, C, H, W).
    """
    shape = y.shape[-2:]
    otf = kernel_otf(kernel.to(y.dtype), shape)
    gx, gy = grad_otfs(shape, y.dtype, y.device)
    num_data = otf.conj() * torch.fft.rfft2(y)
    den_data = otf.abs() ** 2
    den_grad = gx.abs() ** 2 + gy.abs() ** 2
    x = y
    beta = 2 * lambda_pixel
    while True:
        u = x * ((x * x).sum(dim=1, keepdim=True) >= lambda_pixel / beta) if beta > 0 else torch.zeros_like(x)
        num = num_data + beta * torch.fft.rfft2(u)
        mu = 2 * lambda_grad
        while True:
            hx, hy = grad(x)
            keep = (hx * hx + hy * hy).sum(dim=1, keepdim=True) >= (lambda_grad / mu if mu > 0 else 0.0)
            spec_g = torch.fft.rfft2(grad_adjoint(hx * keep, hy * keep))
            x = torch.fft.irfft2((num + mu * spec_g) / (den_data + beta + mu * den_grad), s=shape)
            mu *= kappa
            if mu == 0 or mu >= mu_max:  # mu == 0: no gradient prior, one pass
                break
        beta *= kappa
        if beta == 0 or beta >= beta_max:
            return x


def select_edges(sx: Tensor, sy: Tensor, keep: int) -> tuple[Tensor, Tensor]:
    """The latent image's strongest gradients only (Cho & Lee 2009): sx, sy (B, 1, H, W) zeroed
    where the gradient magnitude is under a threshold chosen per image so that each of four
    orientation bins (0, 45, 90 and 135 degrees, sign ignored) keeps at least `keep` pixels
    (all of its pixels where it holds fewer).
    Weak gradients are where a latent image that is still blurred or noisy misleads the kernel
    step; keeping every orientation keeps the kernel constrained in every direction."""
    magnitude = torch.sqrt(sx**2 + sy**2)
    mag = magnitude.flatten(1)
    angle = torch.remainder(torch.atan2(sy, sx).flatten(1), torch.pi)
    bins = torch.remainder(torch.round(angle / (torch.pi / 4)), 4).long()
    n = min(keep, mag.shape[1])
    per_bin = torch.stack([torch.where(bins == b, mag, torch.full_like(mag, -1.0)) for b in range(4)], dim=1)
    # each bin's n-th strongest magnitude, or its weakest where it holds fewer than n pixels
    counts = (per_bin >= 0).sum(dim=2, keepdim=True).clamp(1, n)
    kth = per_bin.topk(n, dim=2).values.gather(2, counts - 1).squeeze(2)  # (B, 4); -1: an empty bin
    kth = torch.where(kth < 0, torch.full_like(kth, float("inf")), kth)
    threshold = kth.amin(dim=1).view(-1, 1, 1, 1)
    mask = magnitude >= threshold
    return sx * mask, sy * mask


def bilateral(x: Tensor, sigma_s: float = 3.0, sigma_r: float = 0.1) -> Tensor:
    """Bilateral filter of (B, C, H, W) (per channel, radius 2 sigma_s, replicate borders)."""
    r = int(round(2 * sigma_s))
    xp = F.pad(x, (r, r, r, r), mode="replicate")
    h, w = x.shape[-2:]
    num = torch.zeros_like(x)
    den = torch.zeros_like(x)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            nb = xp[..., r + dy : r + dy + h, r + dx : r + dx + w]
            wgt = torch.exp(-(dy * dy + dx * dx) / (2 * sigma_s**2) - (nb - x) ** 2 / (2 * sigma_r**2))
            num += wgt * nb
            den += wgt
    return num / den
