"""Levin et al. 2009 error ratio of an estimated blur kernel, and the success rates built on it.

Levin, Weiss, Durand, Freeman, "Understanding and evaluating blind deconvolution algorithms",
CVPR 2009: deconvolve the blurred image non-blindly with the estimated kernel and with the
true kernel (the same deconvolution for both), and compare the errors to the sharp image,
    r = ||deconv(y, k_est) - x||^2 / ||deconv(y, k_true) - x||^2   (>= about 1; lower is better).
An estimated kernel may be translated, which translates its deconvolution: as in Levin's
`comp_upto_shift`, each deconvolved image is aligned to the truth first (the minimum SSE over
shifts, on the image with a border of `crop` pixels removed, default 15 as Levin). Shifts
are searched over +-max_shift pixels (default floor(K_est/2), enough for any translation of a
kernel inside its own support; Levin used +-4) in steps of 1/subpixel pixel (Levin: 1/4;
fractional shifts are Fourier phase shifts, consistent with our circular deconvolution).
Levin report success as the fraction of images with r <= 2 (and <= 3): `success_rate`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from blinddps.baselines.deconv import deconv_hyper_laplacian

__all__ = ["error_ratio", "error_ratios", "sse_upto_shift", "success_rate", "levin_deconv"]


def levin_deconv(y: Tensor, kernel: Tensor) -> Tensor:
    """Default non-blind step: hyper-Laplacian deconvolution, alpha = 0.8, lam = 2e3, circular.

    Krishnan & Fergus' fast solver of the sparse (|grad|^0.8) prior that Levin et al. use
    for their error ratios. y (B, C, H, W) in [0, 1], kernel (B|1, 1, K, K) -> (B, C, H, W).
    """
    return deconv_hyper_laplacian(y, kernel, lam=2e3, alpha=0.8)


def _fractional_shift(spec: Tensor, fy: float, fx: float, shape: tuple[int, int]) -> Tensor:
    """Spectrum of a(n + f) (circular, fractional f) from the rfft2 spectrum of a(n)."""
    h, w = shape
    ky = torch.fft.fftfreq(h, device=spec.device, dtype=torch.float64).view(-1, 1)
    kx = torch.fft.rfftfreq(w, device=spec.device, dtype=torch.float64).view(1, -1)
    return spec * torch.exp(2j * torch.pi * (ky * fy + kx * fx)).to(spec.dtype)


def sse_upto_shift(x_est: Tensor, x_true: Tensor, max_shift: int = 4, subpixel: int = 1, crop: int = 15) -> Tensor:
    """min over shifts s of sum_{n in R, c} (x_est[c, n + s] - x_true[c, n])^2, R = image minus `crop` border.

    For each fractional offset all integer shifts come at once from FFT correlations:
        E(s) = corr(a^2, m)(s) - 2 corr(a, m x)(s) + sum m x^2,   m = indicator of R.
    x_est, x_true (B, C, H, W) -> (B,). Shifts are circular (|s| <= max_shift).
    """
    if x_est.shape != x_true.shape:
        raise ValueError(f"shapes differ: {tuple(x_est.shape)} vs {tuple(x_true.shape)}")
    a, x = x_est.double(), x_true.double()
    h, w = x.shape[-2:]
    mask = torch.zeros(h, w, dtype=x.dtype, device=x.device)
    mask[crop : h - crop, crop : w - crop] = 1.0
    spec_m = torch.fft.rfft2(mask).conj()
    spec_mx = torch.fft.rfft2(mask * x).conj()
    const = (mask * x * x).sum(dim=(1, 2, 3))
    spec_a = torch.fft.rfft2(a)
    idx_y = torch.arange(-max_shift, max_shift + 1, device=x.device) % h
    idx_x = torch.arange(-max_shift, max_shift + 1, device=x.device) % w
    best = torch.full_like(const, float("inf"))
    for i in range(subpixel):
        for j in range(subpixel):
            a_f = torch.fft.irfft2(_fractional_shift(spec_a, i / subpixel, j / subpixel, (h, w)), s=(h, w))
            e = torch.fft.irfft2(torch.fft.rfft2(a_f * a_f) * spec_m - 2 * torch.fft.rfft2(a_f) * spec_mx, s=(h, w))
            e = e.sum(dim=1)[:, idx_y][:, :, idx_x]
            best = torch.minimum(best, e.flatten(1).amin(dim=1) + const)
    return best.clamp_min(0)


def psnr_upto_shift(x_est: Tensor, x_true: Tensor, max_shift: int, crop: int) -> Tensor:
    """PSNR (data range 1) after the best integer shift |s| <= max_shift, over the image minus
    `crop` pixels at each side (crop >= max_shift keeps the circular shifts' wrap outside).
    x_est, x_true (B, C, H, W) in [0, 1] -> (B,) in dB; a blind estimate is defined only up
    to a translation, which plain PSNR would score as error."""
    c, h, w = x_true.shape[-3:]
    mse = sse_upto_shift(x_est, x_true, max_shift=max_shift, crop=crop) / (c * (h - 2 * crop) * (w - 2 * crop))
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-20))


def error_ratio(x_true: Tensor, y: Tensor, k_est: Tensor, k_true: Tensor,
                deconv: Callable[[Tensor, Tensor], Tensor] = levin_deconv, *, subpixel: int = 1, **options) -> Tensor:
    """Levin 2009 error ratio per sample (see module docstring): `error_ratios` at one alignment
    step (1/subpixel pixel); options: max_shift, crop as there.

    x_true, y (B, C, H, W) in [0, 1]; k_est, k_true (B|1, 1, K, K) or (K, K), sizes may differ;
    deconv(y, kernel) -> x. Returns (B,), >= ~1.
    """
    return error_ratios(x_true, y, k_est, k_true, deconv, subpixels=(subpixel,), **options)[subpixel]


def error_ratios(
    x_true: Tensor,
    y: Tensor,
    k_est: Tensor,
    k_true: Tensor,
    deconv: Callable[[Tensor, Tensor], Tensor] = levin_deconv,
    *,
    max_shift: int | None = None,
    subpixels: Sequence[int] = (1, 4),
    crop: int = 15,
) -> dict[int, Tensor]:
    """`error_ratio` at several alignment steps (1/subpixel pixel) from ONE pair of
    deconvolutions (the costly part): {subpixel: (B,)}."""
    if max_shift is None:
        max_shift = k_est.shape[-1] // 2
    est, ref = deconv(y, k_est), deconv(y, k_true)
    out = {}
    for s in subpixels:
        sse_true = sse_upto_shift(ref, x_true, max_shift, s, crop)
        out[s] = sse_upto_shift(est, x_true, max_shift, s, crop) / sse_true.clamp_min(torch.finfo(sse_true.dtype).tiny)
    return out


def success_rate(ratios: Tensor | Sequence[float], thresholds: Sequence[float] = (2.0, 3.0)) -> dict[float, float]:
    """Fraction of error ratios <= each threshold (Levin 2009 report 2 and 3): {threshold: fraction}."""
    r = torch.as_tensor(ratios, dtype=torch.float64).flatten()
    return {float(t): float((r <= t).double().mean()) for t in thresholds}
