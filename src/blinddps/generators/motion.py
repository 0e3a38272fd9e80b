"""Random camera-shake (motion blur) kernels from a random trajectory (BLINDDPS.md section 4).

The paper's test kernels are 64x64 at intensity 0.5; the kernel prior was trained on
intensities U(0.2, 1.0). One kernel of size S at intensity I:

1. canvas 2S x 2S, diagonal D = 2S sqrt(2); path budget L = 0.75 D (U(0, 1) + U(0, I^2));
2. step lengths Beta(1, 30) (1 - I + 0.1) D, drawn until their sum reaches L (a draw
   longer than L is discarded; the last kept step crosses L);
3. angles: A_max ~ U(0, I pi), flip probability p ~ Beta(2, 20), first angle
   U(-A_max, A_max), next magnitudes Triangular(0, I A_max, A_max + 0.1), each with the
   previous angle's sign flipped with probability p, else kept;
4. path = cumsum(s e^{i theta}), minus the mean of its points, rotated by U(0, pi), moved to
   the canvas centre;
5. drawn as a white polyline of width max(1, floor(D / 150)) on a black 8-bit canvas, Gaussian
   blurred with Pillow radius floor(0.01 D), Lanczos-downsampled to S x S (still 8-bit, as
   the reference generator: small values are quantised away), normalised to sum 1.

All random numbers come from one torch.Generator (see ``_random``), so a seed reproduces the
kernels exactly. Rasterisation uses Pillow, as the reference does, one kernel at a time:
64 kernels of 64x64 at I = 0.5 take about 0.25 s on one (shared) CPU core; I = 1.0 paths
have ~20x more steps and take about 4x longer.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from ._random import Seed, as_generator, beta_integer, beta_one, sample_range, triangular, uniform

_STEP_CHUNK = 128  # step lengths are drawn in chunks; about 25 steps are needed at I = 0.5


def _step_lengths(g: torch.Generator, diagonal: float, intensity: float) -> torch.Tensor:
    """Step lengths whose running sum first reaches the path budget L (step 1-2 above)."""
    budget = 0.75 * diagonal * float(uniform(g, 1) + uniform(g, 1, 0.0, intensity ** 2))
    steps: list[torch.Tensor] = []
    total = 0.0
    while total < budget:
        draw = beta_one(g, _STEP_CHUNK, 30.0) * (1.0 - intensity + 0.1) * diagonal
        draw = draw[draw < budget]
        reached = torch.nonzero(total + torch.cumsum(draw, 0) >= budget)
        if len(reached):
            draw = draw[: int(reached[0]) + 1]
        steps.append(draw)
        total += float(draw.sum())
    return torch.cat(steps)


def _angles(g: torch.Generator, n: int, intensity: float) -> torch.Tensor:
    """n turning angles (step 3): a random walk in angle with occasional sign flips."""
    max_angle = float(uniform(g, 1, 0.0, intensity * math.pi))
    flip_prob = float(beta_integer(g, 1, 2, 20))
    first = uniform(g, 1, -max_angle, max_angle)
    magnitude = triangular(g, n - 1, 0.0, intensity * max_angle, max_angle + 0.1)
    flips = uniform(g, n - 1) < flip_prob
    # Each sign is the previous one, negated on a flip: a running product of +-1.
    signs = torch.sign(first) * torch.cumprod(torch.where(flips, -1.0, 1.0), 0)
    return torch.cat([first, magnitude * signs.to(magnitude.dtype)])


def motion_path(g: torch.Generator, size: int, intensity: float) -> np.ndarray:
    """Camera trajectory on the 2S x 2S canvas (steps 1-4): (N, 2) float64 (x, y) pixels."""
    diagonal = 2 * size * math.sqrt(2.0)
    steps = _step_lengths(g, diagonal, intensity)
    angles = _angles(g, len(steps), intensity)
    path = torch.cumsum(torch.polar(steps, angles), 0)
    path = (path - path.mean()) * torch.exp(1j * uniform(g, 1, 0.0, math.pi))
    path = path + complex(size, size)
    return torch.stack([path.real, path.imag], 1).cpu().numpy()


def rasterize_path(path: np.ndarray, size: int) -> np.ndarray:
    """Draw, blur and downsample a canvas path (step 5): (S, S) float64, sum 1."""
    diagonal = 2 * size * math.sqrt(2.0)
    canvas = Image.new("L", (2 * size, 2 * size))
    # The reference's width floor(D / 150) is 0 (Pillow then draws nothing) for S < 54;
    # at least 1 px keeps small kernels usable and changes nothing for S >= 54.
    width = max(1, int(diagonal / 150))
    ImageDraw.Draw(canvas).line([tuple(p) for p in path], fill=255, width=width)
    canvas = canvas.filter(ImageFilter.GaussianBlur(radius=int(0.01 * diagonal)))
    kernel = np.asarray(canvas.resize((size, size), Image.Resampling.LANCZOS), np.float64)
    total = kernel.sum()
    if total == 0:  # a path entirely off the canvas (never seen in practice): a delta
        kernel[size // 2, size // 2] = total = 1.0
    return kernel / total


class MotionKernelGenerator:
    """Random motion-blur kernels (the paper's test operator and kernel-prior training data).

    Args:
        size: kernel side S (64 in the paper).
        intensity: shake intensity I in (0, 1]: a float (0.5: the paper's test kernels), or a
            (lo, hi) range drawn per kernel ((0.2, 1.0): the kernel prior's training data).

    ``sample(batch_size, generator=None)`` returns {"kernel": (B, 1, S, S) float32}, each
    kernel non-negative and summing to 1. ``generator`` is a torch.Generator or an int seed.
    """

    def __init__(self, size: int = 64, intensity: float | tuple[float, float] = 0.5) -> None:
        self.size = size
        self.intensity = intensity

    def __repr__(self) -> str:
        return f"MotionKernelGenerator(size={self.size}, intensity={self.intensity})"

    def sample(self, batch_size: int, generator: Seed = None,
               device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        g = as_generator(generator)
        intensities = sample_range(g, batch_size, self.intensity).tolist()
        kernels = [rasterize_path(motion_path(g, self.size, i), self.size) for i in intensities]
        kernel = torch.from_numpy(np.stack(kernels)).to(torch.float32)[:, None]
        return {"kernel": kernel.to(device) if device is not None else kernel}
