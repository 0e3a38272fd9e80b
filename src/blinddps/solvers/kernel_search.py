"""Coarse-to-fine blind kernel search: Pan-L0's pyramid loop with the diffusion priors in it.

The proximal sampler's own kernel step cannot leave the delta kernel (joint MAP's no-blur
fixed point: an image fitted through the delta explains the photo exactly). Classical blind
methods escape it with a coarse-to-fine pyramid and a latent image that favours sharp edges
(Pan et al. 2014: an L0 prior on gradients). This module keeps that loop
(`baselines.pan_l0.pan_l0_kernel`) and lets the priors in at three places:

- the input: y denoised by one call of the image prior first (the default: on photos noise,
  not the loop, is what spoils Pan's kernels);
- the latent image: the proximal sampler's non-blind restoration of the level's image with
  the current kernel (`image_prior` as the denoiser; it removes the noise that Pan's L0
  latent keeps), optionally L0-gradient smoothed (Xu et al. 2011) for Pan's sharp edges;
- the kernel: each kernel step's estimate denoised by the kernel prior (`denoise_kernel`).

Images in [0, 1]; kernels non-negative, summing to 1, origin K // 2.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Callable, NamedTuple

import torch
from torch import Tensor

from ..baselines._l0_ops import final_threshold, l0_deblur
from ..baselines.pan_l0 import LatentFn, PanL0Params, RefineFn, pan_l0_kernel
from ..metrics.kernel import kernel_mnc
from ..physics.kernel_geometry import align_kernel, delta_kernel, pad_kernel_to
from ..physics.solves import Domain, solve_kernel
from ..priors import DiffusionPrior
from .proximal import ProximalConfig, ProximalSampler, denoise_kernel, estimate_noise

LATENTS = ("l0", "prox", "prox-l0")
# The search's views of the photo, in the order `KernelSearchConfig.views` takes them:
# (transposed, rotated by 180 degrees). Pan's initial kernel (two horizontal pixels, left of
# and on the origin) is neither symmetric under transposition nor under the rotation, so each
# view starts the chaotic coarse-to-fine loop elsewhere; the kernel is mapped back after.
VIEWS = ((False, False), (True, False), (False, True), (True, True))
MERGE = "geometric-mean"  # how `merge_kernels` merges the views' kernels (recorded by `to_dict`)


@dataclass(frozen=True)
class KernelSearchConfig:
    """Settings of the coarse-to-fine kernel search (`KernelSearch`).

    latent: the latent image of each x/k alternation (`LATENTS`): "l0" (default, Pan's own),
        "prox" (the proximal sampler's restoration with the current kernel) or "prox-l0" (that
        restoration, L0-gradient smoothed).
    latent_steps, latent_t_start, latent_lam: that restoration's steps (>= 1, default 6), first
        timestep (1..999, default 250) and lambda (> 0, default 1.5); see `ProximalConfig`.
    kernel_prior_t: timestep at which the kernel prior denoises every kernel estimate (0..999;
        default 0: the kernel prior is not used).
    autocast: bf16 network passes (default False).
    denoise: search on y denoised first by one call of the image prior at y's estimated noise
        level (`prior_denoised`; default True): Pan's L0 latent keeps the noise and the kernel
        step fits it (kernel MNC 0.70 -> 0.84 on training photos; EXPERIMENTS.md section 3).
    lambda_pixel: Pan's L0 weight on intensities, >= 0 (default 0; the published 4e-3 suits
        text: on training photos 0 gave a higher MNC and is 8x faster, without an inner loop).
    large_kernel: kernels larger than this many pixels (default 48) get a finer pyramid (ratio
        0.8 instead of sqrt(0.5)) and 10 x/k alternations per level instead of 5 (+1.9 dB with
        64 px blur on training photos, -0.3 with 32 px; EXPERIMENTS.md section 3).
    k_thresh: the final kernel keeps the values of at least max / k_thresh, >= 1 (default
        Pan's 20: 5 gained on training photos but cut the faint tails of Levin's camera shake,
        28.04 -> 27.04 dB aligned; EXPERIMENTS.md section 3).
    refit / refit_margin: after the search, search again at the size the found kernel fills
        (its extent plus refit_margin pixels per side, default 6, odd) when that is under 3/4
        of kernel_size, the result padded back. Off by default: the kernels' MNC rose on the
        photo benchmarks but aligned PSNR fell (EXPERIMENTS.md section 3).
    lambda_decay: Pan's latent weights are divided by this after every x/k alternation, >= 1
        (default Pan's 1.1; `ProxSettings.search_decays` runs one search per decay).
    large_lambda_min: the floor of Pan's latent weights for kernels larger than large_kernel,
        > 0 (default 1e-3; Pan's 1e-4 lets the latent keep the blur's ramps, and a kernel
        smaller than the blur then explains the photo as well: EXPERIMENTS.md section 4).
    views: how many views of the photo (`VIEWS`: as is, transposed, rotated by 180 degrees,
        both) the search runs on, 1-4 (default 1); their kernels, mapped back and aligned to the
        first, are merged by their geometric mean (`merge_kernels`): the loop is chaotic in its
        start, and what the views share is more likely the blur.
    """

    latent: str = "l0"
    latent_steps: int = 6
    latent_t_start: int = 250
    latent_lam: float = 1.5
    kernel_prior_t: int = 0
    autocast: bool = False
    denoise: bool = True
    lambda_pixel: float = 0.0
    large_kernel: int = 48
    k_thresh: float = 20.0
    refit: bool = False
    refit_margin: int = 6
    lambda_decay: float = 1.1
    large_lambda_min: float = 1e-3
    views: int = 1

    def __post_init__(self):
        if self.latent not in LATENTS:
            raise ValueError(f"latent must be one of {', '.join(LATENTS)}, got {self.latent!r}")
        if self.latent_steps < 1 or not 0 < self.latent_t_start < 1000 or self.latent_lam <= 0:
            raise ValueError("latent_steps >= 1, 0 < latent_t_start < 1000 and latent_lam > 0 are required")
        if self.lambda_pixel < 0:
            raise ValueError(f"lambda_pixel must be >= 0, got {self.lambda_pixel}")
        if not 0 <= self.kernel_prior_t < 1000:
            raise ValueError(f"kernel_prior_t must be in [0, 1000), got {self.kernel_prior_t}")
        if self.k_thresh < 1 or self.refit_margin < 0:
            raise ValueError("k_thresh >= 1 and refit_margin >= 0 are required")
        if self.lambda_decay < 1:
            raise ValueError(f"lambda_decay must be >= 1, got {self.lambda_decay}")
        if self.large_lambda_min <= 0:
            raise ValueError(f"large_lambda_min must be > 0, got {self.large_lambda_min}")
        if self.views not in range(1, len(VIEWS) + 1):
            raise ValueError(f"views must be 1..{len(VIEWS)}, got {self.views}")

    def to_dict(self) -> dict:
        """The fields, and with several views how their kernels are merged (so that a record,
        or a bench cache key, made with another merge is not mistaken for this one)."""
        return {**asdict(self), **({"merge": MERGE} if self.views > 1 else {})}


def prox_latent(image_prior: DiffusionPrior, config: KernelSearchConfig, generator: torch.Generator,
                tally: list[int] | None = None) -> LatentFn:
    """A latent-image step for `pan_l0_kernel`: the level's luma (B, 1, h, w) in [0, 1] restored
    by the proximal sampler with the current kernel ('valid' borders, grey run through the RGB
    prior), L0-gradient smoothed with Pan's current weight when config.latent is "prox-l0".
    tally: each call appends its network evaluations per image."""
    settings = ProximalConfig(steps=config.latent_steps, t_start=config.latent_t_start, lam=config.latent_lam,
                              zeta=1.0, autocast=config.autocast)
    multiple = image_prior.network.config.spatial_multiple

    def latent(y: Tensor, k: Tensor, lambda_pixel: float, lambda_grad: float) -> Tensor:
        h, w = y.shape[-2:]
        domain = Domain.for_measurement((h, w), k.shape[-1], "valid", multiple)
        grid = domain.embed(y.float().expand(-1, 3, h, w) * 2 - 1)
        result = ProximalSampler(image_prior, domain, settings).solve(
            grid, known={"kernel": k.float()}, generator=generator)
        if tally is not None:
            tally.append(result.nfe)
        x = (domain.crop(result.estimates["image"]).mean(dim=1, keepdim=True) + 1) / 2
        if config.latent == "prox-l0":
            x = l0_deblur(x, delta_kernel(1, leading=(1, 1), dtype=x.dtype, device=x.device), 0.0, lambda_grad)
        return x.clamp(0, 1).to(y.dtype)
    return latent


@torch.no_grad()
def prior_denoised(y: Tensor, image_prior: DiffusionPrior, *, autocast: bool = False, scale: float = 1.0) -> Tensor:
    """y (B, C, H, W) in [0, 1] denoised by one call of the image prior per image, at `scale`
    times that image's noise level (`estimate_noise`, x2 for the network's [-1, 1] units); grey images
    run through an RGB prior as three equal channels and come back grey. An image whose
    estimated noise is 0 comes back unchanged."""
    out = []
    for image in y:
        sigma = 2 * scale * float(estimate_noise(image[None]))
        if sigma <= 0:
            out.append(image)
            continue
        x = image.expand(image_prior.channels, *image.shape[1:]) if image.shape[0] != image_prior.channels else image
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
            d = image_prior.denoise_sigma(x[None].float() * 2 - 1, sigma)[0].float()
        d = d.mean(dim=0, keepdim=True) if image.shape[0] != image_prior.channels else d
        out.append(((d + 1) / 2).clamp(0, 1).to(y.dtype))
    return torch.stack(out)


def prior_refiner(kernel_prior: DiffusionPrior, t: int, *, autocast: bool = False,
                  tally: list[int] | None = None) -> RefineFn:
    """A kernel refinement for `pan_l0_kernel`: the kernel prior's estimate at timestep t of
    each (B, 1, K_l, K_l) kernel, padded to the prior's size and back. Kernels larger than the
    prior's size pass unchanged (cropping them would cut the blur; the prior never saw them).
    tally: each network call appends 1."""
    size = kernel_prior.network.config.image_size

    def refine(k: Tensor) -> Tensor:
        if k.shape[-1] > size:
            return k
        if tally is not None:
            tally.append(1)
        return denoise_kernel(kernel_prior, k.float(), t, size=size, autocast=autocast).to(k.dtype)
    return refine


def search_params(config: KernelSearchConfig, kernel_size: int) -> PanL0Params:
    """Pan's published settings with config's lambda_pixel, k_thresh and lambda_decay, and for
    kernels larger than config.large_kernel a finer pyramid with more alternations per level
    and config's large_lambda_min."""
    common = {"lambda_pixel": config.lambda_pixel, "k_thresh": config.k_thresh, "lambda_decay": config.lambda_decay}
    if kernel_size > config.large_kernel:
        return PanL0Params(pyramid_ratio=0.8, xk_iter=10, lambda_min=config.large_lambda_min, **common)
    return PanL0Params(**common)


def kernel_extent(kernel: Tensor) -> int:
    """The side of the smallest square centred on the origin (K // 2) that holds every non-zero
    value of kernel (B, 1, K, K), the largest over the batch (odd, at most K)."""
    size = kernel.shape[-1]
    rows, cols = torch.nonzero(kernel.amax(dim=(0, 1)) > 0, as_tuple=True)
    if rows.numel() == 0:
        return 1
    reach = int(torch.cat([(rows - size // 2).abs(), (cols - size // 2).abs()]).max())
    return min(2 * reach + 1, size)


class KernelSearch(NamedTuple):
    """What `search_kernel` found.

    kernel: (B, 1, K, K), non-negative, summing to 1, origin K // 2.
    nfe: the network evaluations it cost per image (the denoising call, the prox latents'
        steps, the kernel prior's calls).
    agreement: (B,) in [0, 1] with several views: the smallest kernel MNC between the first
        view's kernel and another view's, before the merge (no truth needed: a confidence;
        high when the views found one blur, which may still be the wrong one). None with one view.
    """

    kernel: Tensor
    nfe: int
    agreement: Tensor | None


def search_kernel(y: Tensor, kernel_size: int, *, image_prior: DiffusionPrior | None = None,
                  kernel_prior: DiffusionPrior | None = None, config: KernelSearchConfig = KernelSearchConfig(),
                  generator: torch.Generator | None = None,
                  params: PanL0Params | None = None) -> KernelSearch:
    """Blind kernel estimate of y (B, C, H, W) in [0, 1]: (B, 1, K, K), K = kernel_size rounded
    up to odd (Pan's pyramid needs a centre pixel), non-negative, summing to 1, with its cost
    and the views' agreement (`KernelSearch`).

    image_prior: needed by the "prox" latents; kernel_prior: needed when config.kernel_prior_t > 0.
    params: the pyramid loop's settings (None: `search_params(config, kernel_size)`).
    """
    tally: list[int] = []
    if config.denoise:
        if image_prior is None:
            raise ValueError("a search with denoise=True needs an image prior")
        y = prior_denoised(y, image_prior, autocast=config.autocast)
        tally.append(1)
    latent = None
    if config.latent != "l0":
        if image_prior is None:
            raise ValueError(f"latent {config.latent!r} needs an image prior")
        latent = prox_latent(image_prior, config, generator or torch.Generator().manual_seed(0), tally)
    refine = None
    if config.kernel_prior_t > 0:
        if kernel_prior is None:
            raise ValueError("kernel_prior_t > 0 needs a kernel prior")
        refine = prior_refiner(kernel_prior, config.kernel_prior_t, autocast=config.autocast, tally=tally)
    size = kernel_size + 1 - kernel_size % 2

    def search(view: Tensor) -> Tensor:
        kernel = pan_l0_kernel(view, size, params=search_params(config, kernel_size) if params is None else params,
                               latent=latent, refine=refine)
        if config.refit:
            fitted = kernel_extent(kernel) + 2 * config.refit_margin
            if fitted < 0.75 * size:  # the blur is smaller than its support: search it at its size
                small = pan_l0_kernel(view, fitted, params=search_params(config, fitted) if params is None else params,
                                      latent=latent, refine=refine)
                kernel = pad_kernel_to(small, size)
        return kernel

    # Pan's latent has no randomness and no network in it: on the CPU its views may run side by side
    parallel = latent is None and refine is None and y.device.type == "cpu"
    kernels = _map_views(lambda v: _unview(search(_view(y, *v)), *v), VIEWS[: config.views], parallel)
    if len(kernels) == 1:
        return KernelSearch(kernels[0], sum(tally), None)
    agreement = torch.stack([kernel_mnc(k, kernels[0]) for k in kernels[1:]]).amin(dim=0)
    return KernelSearch(merge_kernels(kernels, config.k_thresh), sum(tally), agreement)


def _map_views(fn: Callable[[tuple], Tensor], views: tuple, parallel: bool) -> list[Tensor]:
    """[fn(v) for v in views], with several CPU threads one view per thread: the pyramid loop's
    FFTs are too small for torch's own threads to speed up (2 threads: 1.16x on a two-view
    search), side by side two views run 1.3-1.7x faster (measured on this project's 2-core CPU). Each view's arithmetic is the same (one thread each),
    so the kernels are identical to the sequential ones."""
    workers = min(torch.get_num_threads(), len(views))
    if not parallel or workers < 2:
        return [fn(v) for v in views]
    with _threads(1), ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, views))


@contextmanager
def _threads(n: int):
    """torch's intra-op thread count set to n for the block (a process-wide setting), then restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _view(image: Tensor, transposed: bool, rotated: bool) -> Tensor:
    """(..., H, W) seen transposed and/or rotated by 180 degrees."""
    image = image.transpose(-2, -1) if transposed else image
    return image.flip(-2, -1) if rotated else image


def _unview(kernel: Tensor, transposed: bool, rotated: bool) -> Tensor:
    """The blur of the original photo from the blur found in its view (odd K: the rotation
    about the origin is the flip; undone in the reverse order of `_view`)."""
    kernel = kernel.flip(-2, -1) if rotated else kernel
    return kernel.transpose(-2, -1).contiguous() if transposed else kernel


def merge_kernels(kernels: list[Tensor], k_thresh: float) -> Tensor:
    """Several estimates (B, 1, K, K) of one blur -> their geometric mean after aligning each
    to the first (whole pixels), then Pan's final threshold at max / k_thresh, summing to 1.
    The geometric mean keeps what the estimates share and drops what only one has (each
    search's halo of small values is its own): on 48 training photos with 64 px blur +0.28 dB
    aligned over one search (33 photos up, 9 down), the arithmetic mean +0.14 (29 up, 14
    down). Aligned at their correlation peak, non-zero estimates always share a pixel."""
    aligned = torch.stack([kernels[0], *(align_kernel(k, kernels[0]) for k in kernels[1:])])
    merged = aligned.clamp_min(0).log().mean(dim=0).exp()  # log 0 = -inf: a pixel one estimate lacks is 0
    return final_threshold(merged, k_thresh).to(kernels[0].dtype)


def refine_kernel(image: Tensor, y_grid: Tensor, kernel: Tensor, mask: Tensor | None, *, edge_fraction: float,
                  iters: int, k_thresh: float, margin: int | None = None) -> Tensor:
    """A found kernel (K, K) refit to a restoration made with it: `iters` iterations of
    constrained least squares (`physics.solves.solve_kernel`: gradient domain, k >= 0, sum 1)
    from the found kernel, on the restoration's strongest gradients only (the top
    `edge_fraction` of its pixels), then Pan's final threshold at max / k_thresh.

    image (B, C, P_h, P_w): the restoration on the working grid (the samples are averaged);
    y_grid (1, C, P_h, P_w) the photo on that grid and mask (1, 1, P_h, P_w) its observed
    pixels (None: circular); any common range (the fit is linear). margin: None, the fit on
    the whole K x K support; a number of pixels, the fit only inside the square about the
    kernel's origin that holds the found kernel's kept values (at least max / k_thresh) and
    `margin` pixels more (`support_box`), zero outside it. Returns (K, K) in the kernel's
    dtype. Why it helps: the search fits its kernel to Pan's L0 latent image of a
    coarse-to-fine level, while the prior's restoration is a better image of the photo; a
    few iterations from the found kernel move it towards that image's kernel (on training
    photos many iterations drift: the restoration's own errors enter the fit)."""
    x = image.double().mean(dim=0, keepdim=True)
    m = None if mask is None else mask.double()
    box = slice(None) if margin is None else support_box(kernel, k_thresh, margin)
    start = kernel.double()[box, box][None, None]
    refit = torch.zeros(1, 1, *kernel.shape, dtype=torch.float64, device=kernel.device)
    refit[..., box, box] = solve_kernel(x, y_grid.double(), start, m, iters=iters, edge_fraction=edge_fraction)
    return final_threshold(refit, k_thresh)[0, 0].to(kernel.dtype)


def support_box(kernel: Tensor, k_thresh: float, margin: int) -> slice:
    """The rows (and columns) of the smallest square centred on the kernel's origin floor(K/2)
    that holds its values of at least max / k_thresh, grown by `margin` pixels and cut to the
    K x K support. Centred on the origin so that the cropped kernel, whose origin is again its
    centre, blurs exactly as it did on the whole support."""
    size = kernel.shape[-1]
    origin = size // 2
    rows, cols = (kernel >= kernel.max() / k_thresh).nonzero(as_tuple=True)
    half = int(torch.cat([(rows - origin).abs(), (cols - origin).abs()]).max()) + margin
    half = min(half, origin, size - 1 - origin)
    return slice(origin - half, origin + half + 1)
