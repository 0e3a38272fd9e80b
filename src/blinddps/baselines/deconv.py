"""Non-blind deconvolution: Tikhonov/Wiener (closed form) and hyper-Laplacian (Krishnan & Fergus 2009).

Both solve for x given y = k * x + n with the project's convention (true 2-D convolution,
origin floor(K/2)), in the Fourier domain, so the blur is taken as circular.
`boundary="circular"` is exact for circularly blurred data (the Levin 2009 files);
`boundary="pad"` first extends y by `pad_periodic` (K pixels by default) so that real photos,
whose blur is not circular, do not ring from the border jump; the result is cropped back.

Images (B, C, H, W) in [0, 1] (any real values work); kernels (B, 1, K, K) or (K, K),
non-negative, summing to 1, shared across the channels. Vectorised over batch and channels.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from blinddps.physics.fft import as_kernel_batch, grad, grad_otfs, kernel_otf, pad_periodic

__all__ = ["deconv_wiener", "deconv_hyper_laplacian", "shrink_hyper_laplacian"]


def _prepare(y: Tensor, kernel: Tensor, boundary: str, pad: int | None) -> tuple[Tensor, Tensor, int]:
    """Pad y for the chosen boundary and return (y_work, kernel (B|1,1,K,K), pad used)."""
    k = as_kernel_batch(kernel).to(y.dtype)
    if boundary == "circular":
        return y, k, 0
    if boundary != "pad":
        raise ValueError(f"boundary must be 'circular' or 'pad', got {boundary!r}")
    p = max(k.shape[-2:]) if pad is None else pad
    return pad_periodic(y, p), k, p


def _crop(x: Tensor, shape: torch.Size) -> Tensor:
    return x[..., : shape[-2], : shape[-1]]


def deconv_wiener(
    y: Tensor, kernel: Tensor, reg: float = 1e-3, *, boundary: str = "circular", pad: int | None = None
) -> Tensor:
    """Tikhonov-regularised deconvolution with a gradient regulariser, closed form in Fourier.

        x = argmin ||k * x - y||^2 + reg (||D_x x||^2 + ||D_y x||^2)
        X = conj(K) Y / (|K|^2 + reg (|D_x|^2 + |D_y|^2)),

    i.e. a Wiener filter whose image power spectrum is modelled as 1 / |grad|^2 and whose
    noise-to-signal ratio is `reg`. The DC term is kept exactly (|K(0)| = 1 for a kernel summing
    to 1). y (B, C, H, W), kernel (B|1, 1, K, K) or (K, K) -> x (B, C, H, W).
    """
    yw, k, _ = _prepare(y, kernel, boundary, pad)
    shape = yw.shape[-2:]
    otf = kernel_otf(k, shape)
    gx, gy = grad_otfs(shape, yw.dtype, yw.device)
    den = otf.abs() ** 2 + reg * (gx.abs() ** 2 + gy.abs() ** 2)
    # Guard the one case with no information at all (reg = 0 and a zero of K).
    den = den.clamp_min(torch.finfo(yw.dtype).tiny ** 0.5)
    x = torch.fft.irfft2(otf.conj() * torch.fft.rfft2(yw) / den, s=shape)
    return _crop(x, y.shape)


def shrink_hyper_laplacian(v: Tensor, beta: float, alpha: float, newton_steps: int = 10) -> Tensor:
    """Per-pixel solution of  w* = argmin_w |w|^alpha + beta/2 (w - v)^2,  0 < alpha <= 1.

    alpha = 1 is the soft threshold. For alpha < 1 the minimiser is 0 or the largest root u in
    (0, |v|] of  beta (u - |v|) + alpha u^(alpha-1) = 0  (Krishnan & Fergus 2009, Sec. 3); the
    left side is convex in u, so Newton from u = |v| descends monotonically onto that root.
    The energies of the root and of 0 are compared, which also covers the no-root case.
    """
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    a = v.abs()
    if alpha == 1:
        return torch.sign(v) * (a - 1.0 / beta).clamp_min(0)
    tiny = torch.finfo(v.dtype).eps
    u = a.clamp_min(tiny)
    for _ in range(newton_steps):
        f = beta * (u - a) + alpha * u ** (alpha - 1)
        df = beta + alpha * (alpha - 1) * u ** (alpha - 2)
        # A non-positive slope means no root to the left: leave u, the energy test rejects it.
        step = torch.where(df > 0, f / df, torch.zeros_like(f))
        u = (u - step).clamp(min=tiny).minimum(a.clamp_min(tiny))
    e_root = u**alpha + 0.5 * beta * (u - a) ** 2
    e_zero = 0.5 * beta * a**2
    return torch.where(e_root < e_zero, torch.sign(v) * u, torch.zeros_like(v))


def deconv_hyper_laplacian(
    y: Tensor,
    kernel: Tensor,
    lam: float = 2e3,
    alpha: float = 2 / 3,
    *,
    beta0: float = 1.0,
    beta_rate: float = 2 * math.sqrt(2),
    beta_max: float = 256.0,
    inner_iters: int = 1,
    boundary: str = "circular",
    pad: int | None = None,
) -> Tensor:
    """Fast image deconvolution using hyper-Laplacian priors (Krishnan & Fergus, NIPS 2009).

        min_x  lam/2 ||k * x - y||^2 + sum_i |D_x x|_i^alpha + |D_y x|_i^alpha,
    by half-quadratic splitting with auxiliary w ~ D x and weight beta:
        w-step: w = shrink_hyper_laplacian(D x, beta, alpha)               (per pixel)
        x-step: X = (conj(K) Y + (beta/lam) sum_d conj(D_d) W_d) / (|K|^2 + (beta/lam) sum_d |D_d|^2)
    with beta continued beta0, beta0*rate, ... while < beta_max. Published parameters:
    alpha = 2/3 (or 0.8), lam = 2e3 for images in [0, 1] with little noise (lower it for noisier
    data), beta0 = 1, rate = 2 sqrt(2), beta_max = 256, one inner iteration.
    y (B, C, H, W), kernel (B|1, 1, K, K) or (K, K) -> x (B, C, H, W).
    """
    yw, k, _ = _prepare(y, kernel, boundary, pad)
    shape = yw.shape[-2:]
    otf = kernel_otf(k, shape)
    gx, gy = grad_otfs(shape, yw.dtype, yw.device)
    num_data = otf.conj() * torch.fft.rfft2(yw)
    den_data = otf.abs() ** 2
    den_grad = gx.abs() ** 2 + gy.abs() ** 2
    x = yw
    beta = beta0
    while beta < beta_max:
        for _ in range(inner_iters):
            dx, dy = grad(x)
            wx = shrink_hyper_laplacian(dx, beta, alpha)
            wy = shrink_hyper_laplacian(dy, beta, alpha)
            w_spec = gx.conj() * torch.fft.rfft2(wx) + gy.conj() * torch.fft.rfft2(wy)
            x = torch.fft.irfft2((num_data + (beta / lam) * w_spec) / (den_data + (beta / lam) * den_grad), s=shape)
        beta *= beta_rate
    return _crop(x, y.shape)
