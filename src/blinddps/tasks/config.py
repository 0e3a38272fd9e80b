"""Typed settings of the restoration tasks (saved as JSON beside every output)."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class RestoreConfig:
    """Settings shared by blind deblurring and turbulence.

    kernel_size: side of the unknown kernel in pixels (the kernel prior's training size is
        best: 64 for kernel-64 and the paper's checkpoint).
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
    """

    image_prior: str = "natural-rgb"
    kernel_prior: str = "kernel-64"
    tilt_prior: str = "tilt"
    kernel_size: int = 64
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
    autocast: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    def resolved(self) -> "RestoreConfig":
        """A copy with every automatic value filled in (what the outputs' JSON records)."""
        zeta = default_zeta(self.steps) if self.zeta is None else self.zeta
        return RestoreConfig(**{**asdict(self), "zeta": zeta})


def default_zeta(steps: int) -> float:
    """Guidance scale for a respaced sampler: 500 / steps (0.5 x the released code's total)."""
    return 500.0 / steps
