"""The kernel step: the blur kernel that best maps a latent image's gradients onto the photo's.

    min_k ||sx * k - bx||^2 + ||sy * k - by||^2 + gamma ||k||^2   over a K x K support

(the gradient-domain least squares of Cho & Lee 2009 and Pan et al. 2014/2016; gradients
rather than intensities because they are sparse, which conditions the normal equations).
Solved by conjugate gradients on the support, the products taken circularly by FFT.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..physics.fft import kernel_otf, otf_to_kernel
from .cleanup import normalise

def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).flatten(1).sum(dim=1).view(-1, 1, 1, 1)
def kernel_step(
    bx: Tensor, by: Tensor, sx: Tensor, sy: Tensor, size: int, gamma: float = 2.0, cg_iters: int = 20
) -> Tensor:
    """min_k ||sx * k - bx||^2 + ||sy * k - by||^2 + gamma ||k||^2 over a K x K support (Pan et al. 2014).

    Gradients of the blurred (b) and latent (s) images, (B, 1, H, W), taken as circular. The
    normal equations (S^T S + gamma) k = S^T b are solved by `cg_iters` conjugate-gradient steps
    from the uniform kernel (gamma = 2, 20 steps as published); then values below 0.05 max are
    zeroed and k is normalised to sum 1. Returns (B, 1, K, K).
    """
    shape = bx.shape[-2:]
    fsx, fsy = torch.fft.rfft2(sx), torch.fft.rfft2(sy)
    rhs = otf_to_kernel(fsx.conj() * torch.fft.rfft2(bx) + fsy.conj() * torch.fft.rfft2(by), (size, size), shape)
    gram = fsx.abs() ** 2 + fsy.abs() ** 2

    def apply(k: Tensor) -> Tensor:
        return otf_to_kernel(gram * kernel_otf(k, shape), (size, size), shape) + gamma * k

    k = torch.full_like(rhs, 1.0 / size**2)
    r = rhs - apply(k)
    p = r
    rs = _dot(r, r)
    for _ in range(cg_iters):
        ap = apply(p)
        step = rs / _dot(p, ap).clamp_min(1e-30)
        k = k + step * p
        r = r - step * ap
        rs_new = _dot(r, r)
        p = r + (rs_new / rs.clamp_min(1e-30)) * p
        rs = rs_new
    k = k * (k >= 0.05 * k.flatten(1).amax(dim=1).view(-1, 1, 1, 1))
    return normalise(k)