"""Pan-L0: blind deblurring with L0-regularised intensity and gradient prior (Pan et al., CVPR 2014).

    min_{x,k} ||x * k - y||^2 + gamma ||k||^2 + lambda (sigma ||x||_0 + ||grad x||_0)

solved by alternating the latent image step (`l0_deblur`, Algorithm 1) and the kernel step in
the gradient domain (`estimate_kernel`), coarse to fine. Published parameters (the
authors' code): lambda_pixel = lambda_grad = 4e-3, each divided by 1.1 after every x/k
alternation (floor 1e-4), gamma = 2, 5 alternations per level, kernel values < 0.05 max zeroed
after each kernel step, connected components of mass < 0.1 pruned, kernel centred after each
level, pyramid ratio sqrt(0.5) down to a 5-pixel kernel, values < max/20 zeroed at the end.
The kernel is estimated on the luma; the final non-blind step restores every channel.
This is one of the paper's classical baselines ("Pan-l0", kernel MNC 0.27-0.52 on FFHQ).

Differences from the authors' MATLAB code: the border extension is `pad_periodic` (a linear
blend) instead of Liu & Jia's wrap boundary; Cho & Lee's gradient thresholding before the
kernel step (the authors' later v4.0 option) is optional (`PanL0Params.edge_keep`, off); the
pyramid uses antialiased bilinear resampling. Measured here on Levin 2009 (images 1-4 x kernels
1, 4, 8, circular boundary, one CPU core): kernel MNC 0.46-0.78 (mean 0.68; a delta kernel
scores 0.43-0.53), 15-45 s per 255x255 image with K = 19-27.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from blinddps.physics.fft import pad_periodic
from blinddps.metrics.image import rgb_to_luma as luma
from blinddps.physics.blur import fast_fft_size as fft_friendly
from blinddps.baselines._l0_ops import (
    bilateral,
    centre_kernel,
    estimate_kernel,
    final_threshold,
    l0_deblur,
    prune_components,
    resize_kernel,
    select_edges,
)
from blinddps.baselines.deconv import deconv_hyper_laplacian

LatentFn = Callable[[Tensor, Tensor, float, float], Tensor]
RefineFn = Callable[[Tensor], Tensor]

__all__ = ["PanL0Params", "pan_l0_deblur", "pan_l0_kernel", "ringing_suppressed_deconv"]


@dataclass(frozen=True)
class PanL0Params:
    """Parameters of Pan-L0 with the published values (see the module docstring).

    final: "ringing" = Pan's final step (TV deconvolution minus the bilateral-filtered
    difference to an L0-gradient deconvolution, weights lambda_tv, lambda_l0, weight_ring);
    "hyper_laplacian" = Krishnan & Fergus with alpha 2/3, lam 2e3.
    boundary: "pad" (real photos: periodic extension by about K pixels) or "circular".
    edge_keep: 0 (published: the kernel step sees every gradient of the latent image) or r > 0:
    the kernel step sees only the latent's strongest gradients, at least r K pixels per
    orientation bin at a level with a K x K kernel (`select_edges`; Cho & Lee 2009 use r = 2),
    that count multiplied by edge_growth after each alternation (more edges as the latent
    sharpens; Cho & Lee lower their threshold likewise). Off in the product's search: with 64 px
    blur r = 4 tied with the higher lambda floor and added nothing to it (EXPERIMENTS.md section 4).
    """

    lambda_pixel: float = 4e-3
    lambda_grad: float = 4e-3
    gamma: float = 2.0
    xk_iter: int = 5
    lambda_decay: float = 1.1
    lambda_min: float = 1e-4
    pyramid_ratio: float = math.sqrt(0.5)
    coarsest_kernel: int = 5
    k_thresh: float = 20.0
    final: str = "ringing"
    lambda_tv: float = 1e-3
    lambda_l0: float = 1e-3
    weight_ring: float = 1.0
    boundary: str = "pad"
    edge_keep: float = 0.0
    edge_growth: float = 1.1


def _pyramid(kernel_size: int, ratio: float, coarsest: int) -> list[tuple[float, int]]:
    """(image scale, odd kernel size) per level, coarsest first (Pan: ceil(K r^s), made odd)."""
    levels = max(int(math.floor(math.log(coarsest / kernel_size) / math.log(ratio))), 0) + 1
    out = []
    for s in range(levels - 1, -1, -1):
        k = math.ceil(kernel_size * ratio**s)
        out.append((ratio**s, k + (k % 2 == 0)))
    return out


def _forward_diff_valid(x: Tensor) -> tuple[Tensor, Tensor]:
    """Non-circular forward differences, both cropped to (H-1, W-1)."""
    return x[..., :-1, 1:] - x[..., :-1, :-1], x[..., 1:, :-1] - x[..., :-1, :-1]


def _latent(y: Tensor, k: Tensor, lp: float, lg: float, boundary: str) -> Tensor:
    """L0 latent image on a padded (or circular) domain, cropped back and clipped to [0, 1]."""
    h, w = y.shape[-2:]
    if boundary == "pad":
        size = k.shape[-1]
        y = pad_periodic(y, max(fft_friendly(max(h, w) + size) - max(h, w), size))
    # float32 suffices for the image step (3x faster than float64 on CPU); the kernel step is float64.
    x = l0_deblur(y.float(), k.float(), lp, lg)
    return x[..., :h, :w].clamp(0, 1).to(k.dtype)


def _level(y: Tensor, k: Tensor, lp: float, lg: float, p: PanL0Params,
           latent: LatentFn | None = None, refine: RefineFn | None = None) -> tuple[Tensor, float, float]:
    """x/k alternations at one pyramid level; returns the kernel and the decayed lambdas."""
    bx, by = _forward_diff_valid(y)
    for i in range(p.xk_iter):
        x = _latent(y, k, lp, lg, p.boundary) if latent is None else latent(y, k, lp, lg)
        sx, sy = _forward_diff_valid(x)
        if p.edge_keep > 0:
            sx, sy = select_edges(sx, sy, round(p.edge_keep * k.shape[-1] * p.edge_growth**i))
        k = estimate_kernel(bx, by, sx, sy, k.shape[-1], p.gamma)
        k = prune_components(k if refine is None else refine(k))
        lp = max(lp / p.lambda_decay, p.lambda_min) if lp > 0 else 0.0
        lg = max(lg / p.lambda_decay, p.lambda_min) if lg > 0 else 0.0
    return centre_kernel(k), lp, lg


def pan_l0_kernel(y: Tensor, kernel_size: int, *, params: PanL0Params | None = None,
                  latent: LatentFn | None = None, refine: RefineFn | None = None) -> Tensor:
    """Estimate the blur kernel, coarse to fine. y (B, C, H, W) in [0, 1] -> k (B, 1, K, K), sum 1.

    The kernel follows the project's convention (true convolution, origin floor(K/2)).
    params None -> PanL0Params() (the published values). latent: replaces the L0 latent-image
    step, latent(y, k, lambda_pixel, lambda_grad) -> x, all (B, 1, h, w) float64 luma in [0, 1]
    at the pyramid level's size, k (B, 1, K_l, K_l) (e.g. a diffusion prior's deconvolution).
    refine: applied to each kernel step's estimate before the pruning, refine(k) -> k, both
    (B, 1, K_l, K_l) non-negative summing to 1 (e.g. a kernel prior as a denoiser).
    """
    params = PanL0Params() if params is None else params
    if params.boundary not in ("pad", "circular"):
        raise ValueError(f"boundary must be 'pad' or 'circular', got {params.boundary!r}")
    gray = luma(y).to(torch.float64)
    h, w = gray.shape[-2:]
    levels = _pyramid(kernel_size, params.pyramid_ratio, params.coarsest_kernel)
    lp, lg = params.lambda_pixel, params.lambda_grad
    k = None
    for scale, ks in levels:
        if k is None:
            # Pan's initial kernel: two horizontal pixels next to the centre.
            k = torch.zeros(gray.shape[0], 1, ks, ks, dtype=gray.dtype, device=gray.device)
            k[..., ks // 2, ks // 2 - 1 : ks // 2 + 1] = 0.5
        else:
            k = resize_kernel(k, 1 / params.pyramid_ratio, ks)
        size = (max(round(h * scale), ks + 2), max(round(w * scale), ks + 2))
        if scale == 1:
            ys = gray
        else:
            ys = F.interpolate(gray, size=size, mode="bilinear", antialias=True, align_corners=False)
        k, lp, lg = _level(ys, k, lp, lg, params, latent, refine)
    return final_threshold(k, params.k_thresh).to(y.dtype)


def ringing_suppressed_deconv(
    y: Tensor,
    kernel: Tensor,
    lambda_tv: float = 1e-3,
    lambda_l0: float = 1e-3,
    weight_ring: float = 1.0,
    boundary: str = "pad",
) -> Tensor:
    """Pan's final non-blind step: x = x_tv - weight_ring * bilateral(x_tv - x_l0).

    x_tv: TV deconvolution  min lambda_tv |grad x|_1 + 1/2 ||k * x - y||^2  (Krishnan-Fergus
    splitting with alpha = 1, lam = 1 / lambda_tv); x_l0: L0-gradient deconvolution with weight
    lambda_l0. Their difference is mostly ringing, which the bilateral filter (sigma_s 3,
    sigma_r 0.1) keeps while removing the fine detail only x_tv holds.
    y (B, C, H, W) in [0, 1], kernel (B|1, 1, K, K) -> x (B, C, H, W).
    """
    if boundary not in ("pad", "circular"):
        raise ValueError(f"boundary must be 'pad' or 'circular', got {boundary!r}")
    h, w = y.shape[-2:]
    size = kernel.shape[-1]
    pad = max(fft_friendly(max(h, w) + size) - max(h, w), size) if boundary == "pad" else 0
    yp = pad_periodic(y, pad)
    x_tv = deconv_hyper_laplacian(yp, kernel, lam=1.0 / lambda_tv, alpha=1.0)[..., :h, :w]
    if weight_ring == 0:
        return x_tv
    x_l0 = l0_deblur(yp, kernel.to(y.dtype), 0.0, lambda_l0)[..., :h, :w]
    return x_tv - weight_ring * bilateral(x_tv - x_l0)


def pan_l0_deblur(y: Tensor, kernel_size: int, *, params: PanL0Params | None = None) -> tuple[Tensor, Tensor]:
    """Blind deblurring with Pan-L0. y (B, C, H, W) in [0, 1]; kernel_size odd K.

    The kernel is estimated on the BT.601 luma (`pan_l0_kernel`), then every channel is
    restored with it by the final non-blind step `params.final`.
    Returns (x_est (B, C, H, W) clipped to [0, 1], k_est (B, 1, K, K), sum 1, origin floor(K/2)).
    """
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd, got {kernel_size}")
    params = PanL0Params() if params is None else params
    k = pan_l0_kernel(y, kernel_size, params=params)
    if params.final == "ringing":
        x = ringing_suppressed_deconv(y, k, params.lambda_tv, params.lambda_l0, params.weight_ring, params.boundary)
    elif params.final == "hyper_laplacian":
        x = deconv_hyper_laplacian(y, k, boundary=params.boundary)
    else:
        raise ValueError(f"final must be 'ringing' or 'hyper_laplacian', got {params.final!r}")
    return x.clamp(0, 1), k
