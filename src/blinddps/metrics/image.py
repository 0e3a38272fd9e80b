"""Image quality metrics: PSNR and SSIM (Wang et al. 2004), per sample, vectorised.

Images are (B, C, H, W) tensors, nominally in [0, 1] (`data_range` = 1); any channel count.
Colour convention: a colour PSNR is computed over all channels together (one MSE per sample);
a colour SSIM is the mean over channels of the per-channel SSIM. With `gray=True` an RGB image
is first converted to BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B (same range as the input,
no 16-235 offset). `crop` removes that many pixels at every border before measuring.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["psnr", "ssim", "rgb_to_luma", "gaussian_window"]

_LUMA = (0.299, 0.587, 0.114)


def rgb_to_luma(x: Tensor) -> Tensor:
    """(B, 3, H, W) RGB -> (B, 1, H, W) ITU-R BT.601 luma; 1-channel input is returned unchanged."""
    if x.shape[1] == 1:
        return x
    if x.shape[1] != 3:
        raise ValueError(f"luma conversion needs 1 or 3 channels, got {x.shape[1]}")
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def _prepare(x: Tensor, y: Tensor, crop: int, gray: bool) -> tuple[Tensor, Tensor]:
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"need two (B, C, H, W) tensors of equal shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    dtype = torch.promote_types(x.dtype, torch.float32)
    x, y = x.to(dtype), y.to(dtype)
    if gray:
        x, y = rgb_to_luma(x), rgb_to_luma(y)
    if crop > 0:
        x, y = x[..., crop:-crop, crop:-crop], y[..., crop:-crop, crop:-crop]
    return x, y


def psnr(x: Tensor, y: Tensor, data_range: float = 1.0, crop: int = 0, gray: bool = False) -> Tensor:
    """Peak signal-to-noise ratio per sample: 10 log10(data_range^2 / MSE), MSE over (C, H, W).

    x, y (B, C, H, W) -> (B,) in dB; +inf where the images are identical.
    """
    x, y = _prepare(x, y, crop, gray)
    mse = ((x - y) ** 2).flatten(1).mean(dim=1)
    return 10 * torch.log10(data_range**2 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float64) -> Tensor:
    """(size, size) normalised Gaussian window (the SSIM paper's 11x11, std 1.5)."""
    t = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def _filter_valid(x: Tensor, window: Tensor) -> Tensor:
    """Gaussian-weighted local mean over 'valid' positions: (N, 1, H, W) -> (N, 1, H-10, W-10)."""
    return F.conv2d(x, window[None, None].to(x.dtype))


def ssim(
    x: Tensor,
    y: Tensor,
    data_range: float = 1.0,
    crop: int = 0,
    gray: bool = False,
    *,
    win_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    """Structural similarity (Wang, Bovik, Sheikh, Simoncelli, IEEE TIP 2004), mean SSIM per sample.

        SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2)),
    C1 = (K1 L)^2, C2 = (K2 L)^2, K1 = 0.01, K2 = 0.03, L = data_range; local statistics
    weighted by an 11x11 Gaussian window of std 1.5 (population, not sample, covariance) and
    evaluated at 'valid' positions only (as the authors' MATLAB ssim_index). The SSIM map is
    averaged over positions, then over channels. x, y (B, C, H, W) -> (B,); 1.0 for identical.
    """
    x, y = _prepare(x, y, crop, gray)
    out_dtype = x.dtype
    # float64: the variances are differences of nearly equal local moments.
    x, y = x.double(), y.double()
    b, c, h, w = x.shape
    if h < win_size or w < win_size:
        raise ValueError(f"images {h}x{w} smaller than the {win_size}x{win_size} SSIM window")
    win = gaussian_window(win_size, sigma, x.dtype).to(x.device)
    # Channels folded into the batch: one depthwise filtering for everything.
    xs, ys = x.reshape(b * c, 1, h, w), y.reshape(b * c, 1, h, w)
    mu_x, mu_y = _filter_valid(xs, win), _filter_valid(ys, win)
    var_x = _filter_valid(xs * xs, win) - mu_x**2
    var_y = _filter_valid(ys * ys, win) - mu_y**2
    cov = _filter_valid(xs * ys, win) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return (num / den).reshape(b, c, -1).mean(dim=2).mean(dim=1).to(out_dtype)
