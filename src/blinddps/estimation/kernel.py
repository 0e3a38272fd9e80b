"""The blind kernel estimator: a photo's blur kernel from the photo alone, coarse to fine.

At each level of an image pyramid (ratio sqrt(1/2), the kernel 5 px at the coarsest) it
alternates a few times:

1. latent image: the dark-channel + L0-gradient latent of the level's photo with the current
   kernel (`latent.dark_l0_latent`), sharp and piecewise flat;
2. edges: only its gradients above a threshold kept (`edges.select_edges`), the threshold
   lowered after every kernel step;
3. kernel: least squares in the gradient domain with an l2 weight (`kernel_step`), values
   under 5 % of the peak zeroed, small disconnected specks removed (`cleanup.prune_components`);

then centres the kernel and carries it, upsampled, to the next level. The latent weights are
divided by `decay` after every alternation down to a floor that grows with the photo's noise
(estimated from the photo): under noise a weak L0 prior lets the latent keep the noise and
the kernel fit it. At the end, values under max / k_thresh are zeroed. Deterministic: no
random numbers, no network.

Anchors: Pan, Sun, Pfister, Yang, "Blind image deblurring using dark channel prior", CVPR
2016 (the latent step, the schedule and their published weights); Cho & Lee 2009 (edge
selection); Anger, Facciolo, Delbracio 2019 (noise-dependent weights).

Photos (B, C, H, W) in [0, 1] (the luma is used); kernels (B, 1, K, K) non-negative, summing
to 1, origin K // 2 (the project's true-convolution convention).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..metrics.image import rgb_to_luma
from ..physics.blur import fast_fft_size
from ..baselines.deconv import deconv_hyper_laplacian
from ..physics.fft import pad_periodic
from ..physics.solves import solve_kernel
from ..physics.kernel_geometry import align_kernel, pad_kernel_to
from .cleanup import centre_kernel, final_threshold, prune_components, resize_kernel
from .edges import edge_threshold, select_edges, valid_gradients
from .kernel_step import kernel_step
from .latent import dark_l0_latent
from .noise import estimate_noise


# The photo seen as it is, transposed, rotated by 180 degrees, and both: (transposed, rotated).
VIEWS = ((False, False), (True, False), (False, True), (True, True))


@dataclass(frozen=True)
class KernelEstimator:
    """Settings of the estimator (defaults: Pan et al. 2016's published values, except the
    noise-dependent floor).

    lambda_dark, lambda_grad: first weights of the L0 priors on the dark channel and on the
        gradients; divided by `decay` after every alternation, down to
        max(lambda_min, noise_floor * sigma), sigma the photo's estimated noise std in [0, 1] units.
    gamma: the kernel step's l2 weight. iterations: alternations per pyramid level.
    pyramid_ratio: scale between levels; coarsest: the kernel's size at the coarsest level.
    edges_per_bin: the first edge threshold keeps at least this many pixels times K per
        orientation bin; edge_decay: the threshold is divided by it after every kernel step.
    dark_patch: side of the dark channel's patch (0: no dark-channel term, Pan 2014's L0).
    prune_mass: disconnected parts of the kernel lighter than this are removed.
    k_thresh: the final kernel keeps its values of at least max / k_thresh.
    """

    lambda_dark: float = 4e-3
    lambda_grad: float = 4e-3
    decay: float = 1.1
    lambda_min: float = 1e-4
    noise_floor: float = 0.0
    gamma: float = 2.0
    iterations: int = 5
    pyramid_ratio: float = math.sqrt(0.5)
    coarsest: int = 5
    edges_per_bin: float = 20.0
    edge_decay: float = 1.1
    dark_patch: int = 35
    prune_mass: float = 0.1
    k_thresh: float = 20.0
    views: int = 1
    decays: str = ""
    merge: str = "geometric"
    refine_rounds: int = 0
    scale_patch: int = 0
    support_grow: int = 0
    resize_margin: int = -1
    refine_edges: float = 0.1
    refine_iters: int = 50
    refine_lam: float = 2e3

    def __post_init__(self) -> None:
        checks = {
            "lambda_dark >= 0 and lambda_grad > 0": self.lambda_dark >= 0 and self.lambda_grad > 0,
            "decay >= 1 and edge_decay >= 1": self.decay >= 1 and self.edge_decay >= 1,
            "lambda_min > 0 and noise_floor >= 0": self.lambda_min > 0 and self.noise_floor >= 0,
            "gamma >= 0 and iterations >= 1": self.gamma >= 0 and self.iterations >= 1,
            "0 < pyramid_ratio < 1 and coarsest >= 3": 0 < self.pyramid_ratio < 1 and self.coarsest >= 3,
            "views in 1..4": self.views in range(1, len(VIEWS) + 1),
            "edges_per_bin >= 0, dark_patch >= 0, prune_mass >= 0, k_thresh >= 1":
                self.edges_per_bin >= 0 and self.dark_patch >= 0 and self.prune_mass >= 0 and self.k_thresh >= 1,
        }
        failed = [rule for rule, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"KernelEstimator needs {failed[0]}")

    def to_dict(self) -> dict:
        return asdict(self)


class KernelEstimate(NamedTuple):
    """kernel: (B, 1, K, K) non-negative, summing to 1, origin K // 2. noise: (B,) the photo's
    estimated noise std in [0, 1] units (what set the latent weights' floor)."""

    kernel: Tensor
    noise: Tensor


def pyramid(kernel_size: int, ratio: float, coarsest: int) -> list[tuple[float, int]]:
    """(image scale, odd kernel size) of each level, coarsest first: the kernel is
    ceil(K ratio^s) made odd, down to the level where it is about `coarsest` pixels."""
    levels = max(int(math.floor(math.log(coarsest / kernel_size) / math.log(ratio))), 0) + 1
    out = []
    for s in range(levels - 1, -1, -1):
        k = math.ceil(kernel_size * ratio**s)
        out.append((ratio**s, k + (k % 2 == 0)))
    return out


def estimate_kernel(y: Tensor, kernel_size: int, settings: KernelEstimator = KernelEstimator()) -> KernelEstimate:
    """The blur kernel of each photo y (B, C, H, W) in [0, 1]: `KernelEstimate` with kernels of
    size K = kernel_size rounded up to odd (the pyramid needs a centre pixel).

    Each photo is estimated on its own (its noise sets its own weights and its edge
    threshold its own schedule); the kernel step runs in float64, the latent step in float32.
    """
    if y.dim() != 4:
        raise ValueError(f"y must be (B, C, H, W), got {tuple(y.shape)}")
    size = kernel_size + (kernel_size % 2 == 0)
    if size > min(y.shape[-2:]):
        raise ValueError(f"kernel size {size} is larger than the photo ({y.shape[-1]}x{y.shape[-2]})")
    gray = (rgb_to_luma(y) if y.shape[1] == 3 else y.mean(dim=1, keepdim=True)).double()
    noise = estimate_noise(gray)
    kernels = [_refine(g[None], _sized(g[None], size, float(s), settings), settings) for g, s in zip(gray, noise)]
    return KernelEstimate(torch.cat(kernels).to(y.dtype), noise.to(y.dtype))


def _estimate_views(gray: Tensor, size: int, sigma: float, s: KernelEstimator) -> Tensor:
    """The kernel (1, 1, K, K) of one photo's luma from s.views views of it: each view's
    kernel mapped back to the photo, aligned to the first, merged by their geometric mean (what
    the views share), thresholded again."""
    runs = [replace(s, decay=float(d)) for d in s.decays.split(",")] if s.decays else [s]
    kernels = [_unview(_estimate_one(_view(gray, *v), size, sigma, r), *v) for v in VIEWS[:s.views] for r in runs]
    if len(kernels) == 1:
        return kernels[0]
    aligned = torch.stack([kernels[0], *(align_kernel(k, kernels[0]) for k in kernels[1:])])
    if s.merge == "geometric":
        merged = aligned.clamp_min(0).log().mean(dim=0).exp()
    elif s.merge == "median":
        merged = aligned.median(dim=0).values
    else:
        merged = aligned.mean(dim=0)
    return final_threshold(centre_kernel(final_threshold(merged, s.k_thresh)), s.k_thresh)


def _sized(gray: Tensor, size: int, sigma: float, s: KernelEstimator) -> Tensor:
    """The kernel at `size`, and with s.resize_margin >= 0 estimated again at the size its
    first estimate fills (its extent plus the margin each side) when that is smaller."""
    kernel = _estimate_views(gray, size, sigma, s)
    if s.resize_margin < 0:
        return kernel
    rows, cols = torch.nonzero(kernel[0, 0] > 0, as_tuple=True)
    reach = int(torch.cat([(rows - size // 2).abs(), (cols - size // 2).abs()]).max()) if rows.numel() else 0
    fitted = 2 * (reach + s.resize_margin) + 1
    if fitted >= size:
        return kernel
    return pad_kernel_to(_estimate_views(gray, max(fitted, s.coarsest), sigma, s), size)


def _refine(gray: Tensor, kernel: Tensor, s: KernelEstimator) -> Tensor:
    """The kernel refit, s.refine_rounds times, to the photo's hyper-Laplacian deconvolution
    with it: constrained least squares (k >= 0, sum 1) on that image's strongest gradients,
    only where the blur of the interior is fully observed."""
    if s.refine_rounds == 0:
        return kernel
    h, w = gray.shape[-2:]
    size = kernel.shape[-1]
    pad = max(fast_fft_size(max(h, w) + size) - max(h, w), size)
    r = size // 2
    mask = torch.zeros(1, 1, h, w, dtype=gray.dtype)
    mask[..., r:h - r, r:w - r] = 1
    for _ in range(s.refine_rounds):
        x = deconv_hyper_laplacian(pad_periodic(gray, pad), kernel, lam=s.refine_lam, alpha=0.8)[..., :h, :w]
        kernel = solve_kernel(x, gray, kernel, mask, iters=s.refine_iters, edge_fraction=s.refine_edges)
        kernel = final_threshold(kernel, s.k_thresh)
    return kernel


def _view(image: Tensor, transposed: bool, rotated: bool) -> Tensor:
    image = image.transpose(-2, -1) if transposed else image
    return image.flip(-2, -1) if rotated else image


def _unview(kernel: Tensor, transposed: bool, rotated: bool) -> Tensor:
    kernel = kernel.flip(-2, -1) if rotated else kernel
    return kernel.transpose(-2, -1).contiguous() if transposed else kernel


def _estimate_one(gray: Tensor, size: int, sigma: float, s: KernelEstimator) -> Tensor:
    """One photo's luma (1, 1, H, W) float64 -> its kernel (1, 1, K, K) float64."""
    h, w = gray.shape[-2:]
    floor = max(s.lambda_min, s.noise_floor * sigma)
    lambdas = (s.lambda_dark, s.lambda_grad)
    kernel = threshold = None
    for scale, ks in pyramid(size, s.pyramid_ratio, s.coarsest):
        level = gray if scale == 1 else F.interpolate(
            gray, size=(max(round(h * scale), ks + 2), max(round(w * scale), ks + 2)),
            mode="bilinear", antialias=True, align_corners=False)
        if kernel is None:
            kernel = _initial_kernel(ks, gray)
            threshold = edge_threshold(level, ks, s.edges_per_bin)
        else:
            kernel = resize_kernel(kernel, 1 / s.pyramid_ratio, ks)
        kernel, lambdas, threshold = _level(level, kernel, lambdas, threshold, floor, s, scale)
        kernel = centre_kernel(kernel)
    return final_threshold(kernel, s.k_thresh)


def _initial_kernel(size: int, like: Tensor) -> Tensor:
    """Two horizontal pixels, left of and on the centre (Pan's start: not a delta, which is
    the no-blur fixed point of the alternation)."""
    k = torch.zeros(1, 1, size, size, dtype=like.dtype, device=like.device)
    k[..., size // 2, size // 2 - 1:size // 2 + 1] = 0.5
    return k


def _level(y: Tensor, kernel: Tensor, lambdas: tuple[float, float], threshold: Tensor, floor: float,
           s: KernelEstimator, scale: float = 1.0) -> tuple[Tensor, tuple[float, float], Tensor]:
    """`s.iterations` latent / edges / kernel alternations on one level's photo y (1, 1, h, w)."""
    h, w = y.shape[-2:]
    size = kernel.shape[-1]
    padded = pad_periodic(y, max(fast_fft_size(max(h, w) + size) - max(h, w), size)).float()
    bx, by = valid_gradients(y)
    lambda_dark, lambda_grad = lambdas
    support = None
    if s.support_grow and not bool((kernel[..., size // 2, size // 2 - 1:size // 2 + 1] == 0.5).all()):
        r = s.support_grow
        support = (F.max_pool2d((kernel > 0).to(kernel.dtype), 2 * r + 1, stride=1, padding=r) > 0).to(kernel.dtype)
    for _ in range(s.iterations):
        latent = dark_l0_latent(padded, kernel.float(), lambda_dark if s.dark_patch else 0.0, lambda_grad,
                                patch=max(int(round(s.dark_patch * scale)) | 1, 3) if s.scale_patch else max(s.dark_patch, 1))[..., :h, :w].clamp(0, 1).double()
        sx, sy, threshold = select_edges(*valid_gradients(latent), threshold)
        step = kernel_step(bx, by, sx, sy, size, s.gamma)
        if s.support_grow and support is not None:
            step = step * support
            step = step / step.sum().clamp_min(1e-30)
        kernel = prune_components(step, s.prune_mass)
        lambda_dark = max(lambda_dark / s.decay, floor)
        lambda_grad = max(lambda_grad / s.decay, floor)
        threshold = threshold / s.edge_decay
    return kernel, (lambda_dark, lambda_grad), threshold
