"""Make test measurements the way the paper did: blur (motion / Gaussian / turbulence) + noise."""
from __future__ import annotations

import torch

from ..generators import GaussianKernelGenerator, MotionKernelGenerator, TiltGenerator
from ..physics import Blur, GaussianNoise, Turbulence

BLURS = ("motion", "gaussian", "turbulence")


def simulate(image: torch.Tensor, *, blur: str = "motion", kernel_size: int = 64, intensity: float = 0.5,
             std: float = 3.0, noise: float = 0.01, padding: str = "reflect",
             seed: int | torch.Generator = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Blurred, noisy measurement of `image` (1, C, H, W) in [0, 1].

    blur: "motion" (random trajectory, size kernel_size, intensity), "gaussian" (std px),
        or "turbulence" (a tilt map, then a Gaussian blur of std px).
    noise: Gaussian noise std in [0, 1] units (the paper: 0.01, i.e. 0.02 in [-1, 1]).
    Returns (y clipped to [0, 1], {"kernel": (K, K), "tilt": (2, H, W) for turbulence}).
    """
    if blur not in BLURS:
        raise ValueError(f"unknown blur {blur!r}: expected one of {', '.join(BLURS)}")
    image = image if image.dim() == 4 else image.unsqueeze(0)
    h, w = image.shape[-2:]
    if kernel_size > min(h, w):
        raise ValueError(f"kernel size {kernel_size} is larger than the image ({w}x{h})")
    g = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(int(seed))
    if blur == "motion":
        kernel = MotionKernelGenerator(size=kernel_size, intensity=intensity).sample(1, generator=g)["kernel"]
    else:
        kernel = GaussianKernelGenerator(size=kernel_size, std=std).sample(1, generator=g)["kernel"]
    params = {"kernel": kernel[0, 0]}
    if blur == "turbulence":
        # The paper's 64 px windows; smaller images get windows that fit inside them.
        tilt = TiltGenerator(height=h, width=w, patch=min(64, min(h, w) - 1)).sample(1, generator=g)["tilt"]
        y = Turbulence(padding=padding)(image, kernel=kernel, tilt=tilt)
        params["tilt"] = tilt[0]
    else:
        y = Blur(padding=padding)(image, kernel=kernel)
    y = GaussianNoise(noise)(y, generator=g) if noise > 0 else y
    return y.clamp(0, 1), params
