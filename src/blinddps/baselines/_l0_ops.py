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

from blinddps.physics.fft import grad, grad_adjoint, grad_otfs, kernel_otf, otf_to_kernel
from blinddps.physics.kernel_geometry import centre_kernel as _centre_kernel
from blinddps.physics.kernel_geometry import pad_kernel_to


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


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).flatten(1).sum(dim=1).view(-1, 1, 1, 1)


def estimate_kernel(
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
