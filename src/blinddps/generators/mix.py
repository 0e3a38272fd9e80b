"""Training data of the kernel prior: a mix of motion and Gaussian kernels.

The paper trained its 64x64 kernel prior on 60k kernels: 50k motion kernels (intensity
U(0.2, 1.0)) and 10k Gaussian kernels (std U(0.1, 5.0)), i.e. a 5/6 motion fraction.
"""
from __future__ import annotations

import torch

from ._random import Seed, as_generator, uniform
from .gaussian import GaussianKernelGenerator
from .motion import MotionKernelGenerator


class KernelMixGenerator:
    """Each kernel is a motion kernel with probability `motion_fraction`, else a Gaussian.

    Args:
        size: kernel side S (64).
        motion_fraction: probability of a motion kernel (5/6, the paper's 50k:10k).
        motion_intensity: intensity value or (lo, hi) range of the motion kernels.
        gaussian_std: std value or (lo, hi) range of the Gaussian kernels.
        anisotropic: whether the Gaussian kernels are anisotropic (paper: isotropic).

    ``sample(batch_size, generator=None)`` returns {"kernel": (B, 1, S, S) float32},
    non-negative, each summing to 1 (scale to [-1, 1], e.g. by the kernel maximum, before
    feeding a diffusion network).
    """

    def __init__(self, size: int = 64, motion_fraction: float = 5 / 6,
                 motion_intensity: float | tuple[float, float] = (0.2, 1.0),
                 gaussian_std: float | tuple[float, float] = (0.1, 5.0),
                 anisotropic: bool = False) -> None:
        self.size = size
        self.motion_fraction = motion_fraction
        self.motion = MotionKernelGenerator(size, motion_intensity)
        self.gaussian = GaussianKernelGenerator(size, gaussian_std, anisotropic)

    def __repr__(self) -> str:
        return (f"KernelMixGenerator(size={self.size}, motion_fraction={self.motion_fraction}, "
                f"motion={self.motion!r}, gaussian={self.gaussian!r})")

    def sample(self, batch_size: int, generator: Seed = None,
               device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        g = as_generator(generator)
        is_motion = (uniform(g, batch_size) < self.motion_fraction).cpu()
        kernel = torch.empty(batch_size, 1, self.size, self.size)
        n_motion = int(is_motion.sum())
        if n_motion:
            kernel[is_motion] = self.motion.sample(n_motion, g)["kernel"]
        if n_motion < batch_size:
            kernel[~is_motion] = self.gaussian.sample(batch_size - n_motion, g)["kernel"].cpu()
        return {"kernel": kernel.to(device) if device is not None else kernel}
