"""A few-step proximal sampler for (blind) deblurring: priors as denoisers, data terms in closed form.

Per step i (timesteps t_0 > t_1 > ... > t_{N-1} of the 1000-step process), DiffPIR-style
(Zhu et al., CVPR 2023) for the image and an EM-style M-step for the kernel (as in Fast
Diffusion EM, Laroche et al., WACV 2024):
  1. x0 = D_img(x_t, t)                                     (one forward pass, no backward pass)
  2. x0 <- argmin ||M (k * x) - y||^2 + rho_t ||x - x0||^2,  rho_t = lambda sigma_n^2 / sigma_t^2
     (`physics.solves.solve_image`: an FFT division for circular blur, preconditioned CG for
     'valid' borders), sigma_t = sqrt((1 - abar_t) / abar_t) the denoiser's noise level;
  3. blind, from the step `kernel_start` on: k <- projected-gradient least squares in the
     gradient domain on the K x K support, k >= 0, sum 1 (`solve_kernel`), optionally pulled
     towards the kernel prior's denoised estimate of k (one forward pass of the kernel prior);
  4. x_{t_{i+1}} = sqrt(abar') x0 + sqrt(1 - abar') (sqrt(1 - zeta) eps_hat + sqrt(zeta) z),
     eps_hat = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t).
The image lives on the working grid of a `physics.solves.Domain` in the network space [-1, 1];
y is given on the same grid (zeros where unobserved), in [-1, 1].
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Mapping

import numpy as np
import torch

from ..physics.fft import conv_circular, grad
from ..physics.kernel_geometry import delta_kernel, pad_kernel_to
from ..estimation.noise import estimate_noise
from ..physics.solves import Domain, solve_image, solve_kernel
from ..priors import DiffusionPrior
from .blinddps import Generators, SolverResult, StepInfo, _randn
from .tiling import tiled_x0


@dataclass(frozen=True)
class ProximalConfig:
    """Settings of the proximal sampler.

    steps: network evaluations of the image prior.  t_start: the first timestep (999: start
    from pure noise).  lam: DiffPIR's lambda (the data term's weight against the prior).
    zeta: share of fresh noise when re-noising (0: deterministic, 1: ancestral).
    noise: measurement noise std in [-1, 1] units (None: estimated from y); noise_floor: the
    smallest value used (noise-free data would make the data step an unregularised inverse).
    kernel_start: fraction of the steps after which the kernel is updated (blind only).
    kernel_iters: projected-gradient iterations per kernel update; kernel_gamma: its l2 weight;
    kernel_edges: share of the image's strongest gradients the kernel step uses (1: all).
    kernel_prior_weight: pull towards the kernel prior's denoised kernel (0: prior unused).
    kernel_prior_t: timestep at which the kernel prior denoises the current kernel.
    kernel_chain: blind with a kernel prior: the kernel gets its own reverse diffusion on the
    image's timesteps, from pure noise: per step k_hat = D_kernel(k_t), the image's data step
    with k_hat, then the kernel step pulled towards k_hat with the weight kernel_chain_weight x
    E x sigma_t^2 (E: the energy of the image estimate's gradients, the data term's diagonal
    curvature; sigma_t^2 = (1 - abar_t) / abar_t), then k_t re-noised like the image.
    cg_iters: conjugate-gradient iterations of the image step ('valid' borders); None
    (default): `cg_iterations` of the grid (10, or 5 on grids over a megapixel).
    autocast: bf16 autocast of the network forward passes (CPUs with native bf16, CUDA).
    record_every: keep the x0 estimates every this many steps (0: none).
    tile, tile_overlap: the image prior runs on tiles of this side overlapping by this many
    pixels (`solvers.tiling`; 0: on the whole grid at once), which bounds the network's memory
    on large photos.
    """

    steps: int = 30
    t_start: int = 999
    lam: float = 7.0
    zeta: float = 0.3
    noise: float | None = None
    noise_floor: float = 0.01
    kernel_start: float = 0.0
    kernel_iters: int = 20
    kernel_edges: float = 1.0
    kernel_gamma: float = 0.0
    kernel_prior_weight: float = 0.0
    kernel_prior_t: int = 100
    kernel_chain: bool = False
    kernel_chain_weight: float = 1.0
    cg_iters: int | None = None
    autocast: bool = False
    record_every: int = 0
    tile: int = 0
    tile_overlap: int = 32

    def to_dict(self) -> dict:
        return asdict(self)


CG_FEWER_FROM = 1 << 20  # grid pixels from which the image step's CG runs fewer iterations


def cg_iterations(grid: tuple[int, int]) -> int:
    """The image step's conjugate-gradient iterations on a (P_h, P_w) grid: 10, and 5 on grids
    over CG_FEWER_FROM pixels. Why fewer there: the circular preconditioner is exact inside the
    photo, so what the iterations correct is the frame within the kernel's reach of its border,
    a shrinking share of a large grid; with the true kernel, 5 iterations gave results within
    44-58 dB of 10 and the same PSNR to +-0.05 dB (384x256 to 2000x1500 training photos,
    EXPERIMENTS.md section 6), and on a 12-megapixel photo they save about 2.5 s a step."""
    return 5 if grid[0] * grid[1] > CG_FEWER_FROM else 10


def timesteps(steps: int, t_start: int) -> list[int]:
    """`steps` distinct timesteps from t_start down to 0, evenly spaced."""
    ts = np.unique(np.round(np.linspace(t_start, 0, steps)).astype(int))[::-1]
    return [int(t) for t in ts]


class ProximalSampler:
    """Blind or non-blind deblurring with an image prior (and optionally a kernel prior) as denoisers.

    image_prior: the image prior on its full 1000-step process (any respacing is ignored:
    the sampler picks its own timesteps).  kernel_prior: optional, used as a denoiser of the
    kernel estimate.  domain: where the measurement sits on the image grid.
    """

    def __init__(self, image_prior: DiffusionPrior, domain: Domain, config: ProximalConfig = ProximalConfig(),
                 kernel_prior: DiffusionPrior | None = None):
        self.image_prior = image_prior.respaced("")
        self.kernel_prior = None if kernel_prior is None else kernel_prior.respaced("")
        self.domain = domain
        self.config = config
        self.ts = timesteps(config.steps, config.t_start)

    @property
    def num_steps(self) -> int:
        return len(self.ts)

    @property
    def cg_iters(self) -> int:
        """The image step's CG iterations on this sampler's grid (config.cg_iters, or when None
        `cg_iterations` of the grid)."""
        return cg_iterations(self.domain.grid) if self.config.cg_iters is None else self.config.cg_iters

    def _abar(self, t: int) -> float:
        return float(self.image_prior.process.alphas_cumprod[t])

    def _denoise_image(self, x_t: torch.Tensor, t: int, reach: tuple[slice, slice]) -> torch.Tensor:
        """The image prior's x0 on the part of the grid the measurement reads (`Domain.reach`),
        0 on the FFT padding beyond it (no data term and no later step reads it there; on a
        12-megapixel photo the padding is 8 % of the grid)."""
        rows, cols = reach
        if rows.stop - rows.start == x_t.shape[-2] and cols.stop - cols.start == x_t.shape[-1]:
            return self._denoise(self.image_prior, x_t, t)
        x0 = torch.zeros_like(x_t)
        x0[..., rows, cols] = self._denoise(self.image_prior, x_t[..., rows, cols], t)
        return x0

    def _denoise(self, prior: DiffusionPrior, x_t: torch.Tensor, t: int) -> torch.Tensor:
        if self.config.tile and prior is self.image_prior:
            return tiled_x0(prior, x_t, t, tile=self.config.tile, overlap=self.config.tile_overlap,
                            autocast=self.config.autocast)
        return denoise_x0(prior, x_t, t, autocast=self.config.autocast)

    @torch.no_grad()
    def solve(self, y: torch.Tensor, *, known: Mapping[str, torch.Tensor] | None = None,
              kernel_init: torch.Tensor | None = None, kernel_size: int = 0, generator: Generators = None,
              callback: Callable[[StepInfo], None] | None = None) -> SolverResult:
        """y: (B, 3, P_h, P_w) on the grid in [-1, 1] (zeros outside the observed window).

        known: {"kernel": (B|1, 1, K, K)} for non-blind deblurring.  Blind: kernel_init
        (B|1, 1, K, K) or kernel_size (start from the delta kernel).  Returns the image x0
        (B, 3, P_h, P_w) in [-1, 1] and the kernel (B, 1, K, K) summing to 1.
        """
        cfg, known = self.config, dict(known or {})
        batch, device = y.shape[0], y.device
        mask = self.domain.mask(device, y.dtype)
        blind = "kernel" not in known
        kernel = (known["kernel"] if not blind else _initial_kernel(kernel_init, kernel_size, device))
        kernel = kernel.to(device, y.dtype).expand(batch, 1, *kernel.shape[-2:]).clone()
        sigma_n = self._noise_level(y)
        reach = self.domain.reach(kernel.shape[-1])
        cg_iters = self.cg_iters
        x_t = _randn(tuple(y.shape[1:]), batch, generator, device)
        if cfg.t_start < 999:  # start from a noised first guess instead of pure noise
            abar = self._abar(self.ts[0])
            x_t = abar**0.5 * self.domain.extend(self.domain.crop(y)) + (1 - abar) ** 0.5 * x_t
        frames, nfe, start_kernel = [], 0, int(round(cfg.kernel_start * self.num_steps))
        chain = blind and cfg.kernel_chain and self.kernel_prior is not None
        if chain:  # the kernel's own chain starts from pure noise, whatever t_start
            k_t = _randn((1, *kernel.shape[-2:]), batch, generator, device)
        for step, t in enumerate(self.ts):
            abar = self._abar(t)
            x0 = self._denoise_image(x_t, t, reach)
            nfe += 1
            k_hat = None
            if chain:
                k_hat = self.kernel_prior.transform.to_operator(self._denoise(self.kernel_prior, k_t, t))
                kernel, nfe = k_hat, nfe + 1
            rho = cfg.lam * sigma_n**2 / ((1 - abar) / abar)
            x0 = solve_image(y, kernel, x0, rho, mask, iters=cg_iters, x_init=x0)
            if chain and step >= start_kernel:
                beta = cfg.kernel_chain_weight * _gradient_energy(x0, mask) * (1 - abar) / abar
                kernel = solve_kernel(x0, y, kernel, mask, iters=cfg.kernel_iters, anchor=k_hat, beta=beta)
            elif blind and step >= start_kernel:
                kernel, used = self._kernel_step(x0, y, kernel, mask)
                nfe += used
            if step + 1 < self.num_steps:
                x_t = self._renoise(x_t, x0, t, self.ts[step + 1], generator)
                if chain:
                    k_t = self._renoise(k_t, self.kernel_prior.transform.to_net(kernel), t, self.ts[step + 1], generator)
            if cfg.record_every and (step % cfg.record_every == 0 or step + 1 == self.num_steps):
                frames.append({"image": x0.cpu(), "kernel": kernel.cpu()})
            if callback is not None:
                loss = self._misfit(x0, y, kernel, mask)
                callback(StepInfo(step, self.num_steps, t, loss, {"image": x0, "kernel": kernel}))
        loss = self._misfit(x0, y, kernel, mask)
        return SolverResult(estimates={"image": x0.clamp(-1, 1), "kernel": kernel}, loss=loss,
                            nfe=nfe, frames=frames)

    # -- pieces ---------------------------------------------------------------------------
    def _noise_level(self, y: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if cfg.noise is not None:
            sigma = torch.full((y.shape[0],), float(cfg.noise), device=y.device)
        else:
            sigma = estimate_noise(self.domain.crop(y))
        return sigma.clamp_min(cfg.noise_floor).reshape(-1, 1, 1, 1)

    def _kernel_step(self, x0, y, kernel, mask) -> tuple[torch.Tensor, int]:
        cfg = self.config
        anchor, used = None, 0
        if self.kernel_prior is not None and cfg.kernel_prior_weight > 0:
            anchor, used = self._kernel_prior_estimate(kernel), 1
        kernel = solve_kernel(x0, y, kernel, mask, iters=cfg.kernel_iters, gamma=cfg.kernel_gamma,
                              anchor=anchor, beta=cfg.kernel_prior_weight, edge_fraction=cfg.kernel_edges)
        return kernel, used

    def _kernel_prior_estimate(self, kernel: torch.Tensor) -> torch.Tensor:
        return denoise_kernel(self.kernel_prior, kernel, self.config.kernel_prior_t, autocast=self.config.autocast)

    def _renoise(self, x_t, x0, t: int, t_next: int, generator) -> torch.Tensor:
        abar, abar_next = self._abar(t), self._abar(t_next)
        eps = (x_t - abar**0.5 * x0) / (1 - abar) ** 0.5
        z = _randn(tuple(x_t.shape[1:]), x_t.shape[0], generator, x_t.device)
        zeta = self.config.zeta
        return abar_next**0.5 * x0 + (1 - abar_next) ** 0.5 * ((1 - zeta) ** 0.5 * eps + zeta**0.5 * z)

    @staticmethod
    def _misfit(x0, y, kernel, mask) -> torch.Tensor:
        residual = conv_circular(x0, kernel) - y
        if mask is not None:
            residual = residual * mask
        return residual.flatten(1).norm(dim=1)


@torch.no_grad()
def denoise_x0(prior: DiffusionPrior, x_t: torch.Tensor, t: int, *, autocast: bool = False) -> torch.Tensor:
    """The prior's x0 estimate of x_t at chain index t (float32), its forward pass under bf16
    autocast when asked (the sampler's one network call per prior and step)."""
    with torch.autocast(x_t.device.type, dtype=torch.bfloat16, enabled=autocast):
        return prior.denoise(x_t, t).x0.float()


@torch.no_grad()
def denoise_kernel(prior: DiffusionPrior, kernel: torch.Tensor, t: int, *, size: int | None = None,
                   autocast: bool = False) -> torch.Tensor:
    """A kernel prior's x0 estimate of `kernel` (B, 1, K, K), non-negative, sum 1 -> the same.

    The kernel enters at timestep t of the full process deterministically, as the noise-free
    state sqrt(abar_t) z (a denoiser's input at that level, without the noise): the prior pulls
    it towards the kernels it knows. size: the prior's kernel size when it differs from K (the
    kernel is zero-padded or cropped around its origin to it, and brought back the same way).
    """
    full = prior.respaced("")
    own = kernel.shape[-1]
    z = full.transform.to_net(pad_kernel_to(kernel, size or own))
    abar = float(full.process.alphas_cumprod[t])
    z0 = denoise_x0(full, abar**0.5 * z, t, autocast=autocast)
    k = pad_kernel_to(full.transform.to_operator(z0), own)
    return k / k.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)


def _gradient_energy(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """sum_d ||M (d x)||^2 per sample, (B,): the diagonal of the kernel data term's curvature
    (d: circular forward differences, M the observed window)."""
    gx, gy = grad(x)
    if mask is not None:
        gx, gy = gx * mask, gy * mask
    return (gx.pow(2) + gy.pow(2)).flatten(1).sum(dim=1)


def _initial_kernel(kernel_init: torch.Tensor | None, size: int, device) -> torch.Tensor:
    if kernel_init is not None:
        k = kernel_init if kernel_init.dim() == 4 else kernel_init[None, None]
        return k.to(device)
    if size < 1:
        raise ValueError("blind deblurring needs kernel_init or kernel_size")
    return delta_kernel(size, leading=(1, 1), device=device)
