"""Noise schedules of the variance-preserving (VP) process and timestep respacing.

A schedule is a float64 vector of betas, beta_t in (0, 1), t = 0 .. T-1.  Respacing keeps
a subset of the original timesteps and recomputes betas from the kept cumulative alphas,
so that a short sampler walks the same marginals q(x_t | x_0) as the full process.
"""
from __future__ import annotations

import math

import numpy as np


def linear_betas(steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """Linear betas of Ho et al. (2020), rescaled so that any step count keeps the same
    total noise as the 1000-step schedule (beta * 1000 / steps)."""
    scale = 1000.0 / steps
    return np.linspace(scale * beta_start, scale * beta_end, steps, dtype=np.float64)


def cosine_betas(steps: int, offset: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """Cosine schedule of Nichol & Dhariwal (2021): abar(t) = cos^2((t/T + s) / (1 + s) * pi/2)."""
    def abar(u: float) -> float:
        return math.cos((u + offset) / (1 + offset) * math.pi / 2) ** 2

    betas = [min(1 - abar((i + 1) / steps) / abar(i / steps), max_beta) for i in range(steps)]
    return np.asarray(betas, dtype=np.float64)


def make_betas(schedule: str, steps: int) -> np.ndarray:
    """Betas for a named schedule: "linear" (the paper's priors) or "cosine"."""
    if schedule == "linear":
        return linear_betas(steps)
    if schedule == "cosine":
        return cosine_betas(steps)
    raise ValueError(f"unknown noise schedule {schedule!r}: expected 'linear' or 'cosine'")


def respaced_timesteps(spec: str | int | None, steps: int) -> list[int]:
    """The original timesteps kept by a respacing spec, in increasing order.

    - None, "" or str(steps): all timesteps.
    - "N" (or an int): N timesteps evenly strided over [0, steps - 1], rounded.
    - "N1,N2,...": the range split into equal sections, each strided as above.
    - "ddimN": range(0, steps, stride) for the integer stride that gives exactly N.
    """
    if spec is None or spec == "":
        return list(range(steps))
    spec = str(spec).strip()
    if spec.startswith("ddim"):
        return _ddim_timesteps(int(spec[4:]), steps)
    counts = [int(c) for c in spec.split(",")]
    return _sectioned_timesteps(counts, steps)


def _ddim_timesteps(count: int, steps: int) -> list[int]:
    for stride in range(1, steps + 1):
        kept = list(range(0, steps, stride))
        if len(kept) == count:
            return kept
    raise ValueError(f"cannot keep exactly {count} of {steps} steps with an integer stride")


def _sectioned_timesteps(counts: list[int], steps: int) -> list[int]:
    size, extra = divmod(steps, len(counts))
    kept: list[int] = []
    start = 0
    for section, count in enumerate(counts):
        length = size + (1 if section < extra else 0)
        if count > length or count < 1:
            raise ValueError(f"cannot keep {count} steps out of a section of {length}")
        stride = (length - 1) / (count - 1) if count > 1 else 0.0
        kept.extend(start + round(j * stride) for j in range(count))
        start += length
    return kept
