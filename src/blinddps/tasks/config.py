"""Typed settings of the restoration tasks (saved as JSON beside every output)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..priors.bundle import kernel_prior_size
from ..solvers.kernel_search import LATENTS


@dataclass
class RestoreConfig:
    """Settings shared by blind deblurring and turbulence.

    kernel_size: side of the unknown kernel in pixels; None (the default): the kernel prior's
        training size (`priors.bundle.kernel_prior_size`: 32 for kernel-32, 64 for kernel-64
        and the paper's checkpoint), the size it knows best.
    steps: respaced diffusion steps ("N" or "ddimN" semantics via `sampler`).
    step_size / zeta: guidance step rule ("sqrt_abar": the released code; "constant": the paper)
        and its scale.  zeta None means `default_zeta(steps)` = 500 / steps: the released code
        runs zeta = 1 over 1000 steps, and fewer steps need proportionally larger ones (at 50
        steps zeta 10 beat 1, 3 and 20 with our priors; see docs/priors.md).
    zeta_kernel / zeta_tilt: extra factors on the operator unknowns' steps.
    kernel_sparsity: weight of the l1 prior on the unnormalised kernel (0 disables it; 1.0 by
        default: with the bundled kernel prior it raised the kernel MNC in our tests).
    kernel_centring: weight of the penalty on the kernel's centre of mass away from its
        origin (pixels^2; 0 disables it).  0.1 by default: in paired runs with the bundled
        priors it kept the kernel from drifting to the border (MNC 0.21 -> 0.69 and PSNR
        13.1 -> 17.2 dB on one crop; 19.8 -> 22.4 dB on another).
    padding: blur boundary ("reflect" suits photos; "circular"; "zeros" as the paper).
    max_size: photos whose long side exceeds it are processed at that resolution (Lanczos
        down-scaling) and the outputs are written at that resolution; 0 disables the bound.
    samples: posterior samples; with several the mean image and a per-pixel std are written.
    method: the sampler by name (`SAMPLERS`): "dps" (BlindDPS, the paper's algorithm: a forward
        and a backward pass of every prior per step), "prox" (the proximal sampler: the image
        prior as a denoiser, the data term solved in closed form, no backward pass), or "auto":
        "prox" for deblurring, blind (the kernel found first by `prox_search`) or with a known
        kernel; "dps" for turbulence (no proximal tilt step yet).  Blind, the proximal sampler
        beat BlindDPS with the bundled priors on every benchmark we ran (benchmarks/results/README.md).
    prox_steps, prox_lambda, prox_t_start, prox_renoise: the proximal sampler's network
        evaluations, data weight lambda, first timestep and share of fresh noise (see
        solvers.proximal.ProximalConfig).  Defaults chosen on training photos with the true
        kernel (benchmarks/results/sweep-prox-bsds500-3*.md: lambda 1.5 and t_start 250 beat
        lambda 0.5-16 and t_start 150-500 by 0.1-1.8 dB; renoise 1.0 beat 0.9 by 0.4 dB and 0.5
        by 1.4 dB).
    border: the proximal sampler's border model: "valid" (the blur only where the kernel fits,
        as a camera makes it: the image is estimated on a larger grid and no border is assumed)
        or "circular" (periodic photos, e.g. the Levin files).
    noise: measurement noise std in [0, 1] for the proximal sampler (None: estimated from the photo).
    autocast: bf16 autocast of the network forward passes; None: on for the proximal sampler
        where the hardware has native bf16 (the same PSNR to 0.01 dB on training photos, 1.5x
        faster on this project's CPU: benchmarks/results/sweep-prox-bsds500-3d.md), off for DPS
        (its gradients through the networks were not measured under bf16).
    prox_search, prox_search_steps, prox_kernel_prior_t, prox_search_denoise: how the blind
        proximal sampler finds the kernel (KERNEL_SEARCHES below;
        `solvers.kernel_search.KernelSearchConfig`'s latent, latent_steps, kernel_prior_t and
        denoise, the kernel prior being `kernel_prior`).  Default: "l0" on the photo denoised by
        the image prior (Pan-L0's coarse-to-fine loop without its intensity term), then the
        image restored with that kernel (benchmarks/results/blind-kernel-trials.md).
    prox_search_lambda: lambda of that restoration (in place of prox_lambda): a found kernel
        is never exact, and more weight on the prior forgives its errors (on 8 training photos
        with found kernels: with 32 px blur 3-12 within 0.2 dB of each other and above 1.5;
        with 64 px blur 12 and 24 within 0.1 dB, 1.5 and 6 several dB under;
        benchmarks/results/blind-kernel-trials.md).
    """

    image_prior: str = "natural-rgb"
    kernel_prior: str = "kernel-64"
    tilt_prior: str = "tilt"
    kernel_size: int | None = None
    steps: int = 100
    sampler: str = "ddpm"
    step_size: str = "sqrt_abar"
    zeta: float | None = None
    zeta_kernel: float = 1.0
    zeta_tilt: float = 1.0
    kernel_sparsity: float = 1.0
    kernel_centring: float = 0.1
    padding: str = "reflect"
    max_size: int = 512
    samples: int = 1
    seed: int = 0
    record_every: int = 0
    device: str = "cpu"
    autocast: bool | None = None
    method: str = "auto"
    prox_steps: int = 20
    prox_lambda: float = 1.5
    prox_t_start: int = 250
    prox_renoise: float = 1.0
    border: str = "valid"
    noise: float | None = None
    prox_search: str = "l0"
    prox_search_steps: int = 6
    prox_kernel_prior_t: int = 0
    prox_search_denoise: bool = True
    prox_search_lambda: float = 12.0

    def __post_init__(self) -> None:
        if self.method not in ("auto", *SAMPLERS):
            raise ValueError(f"unknown method {self.method!r}: expected auto or one of {', '.join(SAMPLERS)}")
        if self.border not in ("valid", "circular"):
            raise ValueError(f"border must be 'valid' or 'circular', got {self.border!r}")
        checks = {"prox_steps must be at least 1": self.prox_steps >= 1,
                  "prox_t_start must be in 0..999": 0 <= self.prox_t_start <= 999,
                  "prox_lambda must be positive": self.prox_lambda > 0,
                  "prox_renoise must be in [0, 1]": 0 <= self.prox_renoise <= 1,
                  "noise must be >= 0": self.noise is None or self.noise >= 0,
                  f"prox_search must be one of {', '.join(KERNEL_SEARCHES)}": self.prox_search in KERNEL_SEARCHES,
                  "prox_search_steps must be at least 1": self.prox_search_steps >= 1,
                  "prox_search_lambda must be positive": self.prox_search_lambda > 0,
                  "prox_kernel_prior_t must be in 0..999": 0 <= self.prox_kernel_prior_t <= 999}
        for message, ok in checks.items():
            if not ok:
                raise ValueError(message)

    def sampler_name(self, blind: bool, turbulence: bool = False) -> str:
        """The sampler that runs: `method`, with "auto" resolved: the proximal sampler for
        deblurring (blind or not), DPS for turbulence (the proximal sampler has no tilt step)."""
        if self.method != "auto":
            return self.method
        return "dps" if turbulence else "prox"

    def to_dict(self) -> dict:
        return asdict(self)

    def resolved(self) -> "RestoreConfig":
        """A copy with every automatic value filled in (what the outputs' JSON records)."""
        zeta = default_zeta(self.steps) if self.zeta is None else self.zeta
        size = kernel_prior_size(self.kernel_prior) if self.kernel_size is None else self.kernel_size
        return RestoreConfig(**{**asdict(self), "zeta": zeta, "kernel_size": size})


# How the proximal sampler finds the kernel when it is blind: "none", its own kernel M-step from
# the delta kernel; otherwise `solvers.kernel_search` first (Pan-L0's coarse-to-fine loop with
# this latent image: "l0" Pan's own, "prox" / "prox-l0" the image prior's restoration), then the
# image restored with that kernel.
KERNEL_SEARCHES = ("none", *LATENTS)

# The samplers by name: what `method` selects (the CLI's --method, the bench's rows).
SAMPLERS = {
    "dps": "BlindDPS / DPS (Chung et al.): guidance gradients through every prior, `steps` steps",
    "prox": "proximal sampler: priors as denoisers, closed-form data steps, `prox_steps` steps",
}


def default_zeta(steps: int) -> float:
    """Guidance scale for a respaced sampler: 500 / steps (0.5 x the released code's total)."""
    return 500.0 / steps
