"""Preview grids of unconditional samples, written at training checkpoints."""
from __future__ import annotations

from pathlib import Path

import torch

from ..io.figures import image_grid, save_figure
from ..priors import DiffusionPrior
from ..solvers import sample_prior


def samples_for_display(prior: DiffusionPrior, z: torch.Tensor) -> torch.Tensor:
    """Network-space samples (n, C, H, W) -> displayable (n, 1 or 3, H, W) in [0, 1]:
    kernels scaled by their maximum, tilt fields as their horizontal component."""
    kind = prior.transform.kind
    if kind == "kernel":
        k = prior.transform.to_operator(z)
        return k / k.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    if kind == "tilt":
        return (z[:, :1] + 1) / 2
    return (z + 1) / 2


def save_preview(prior: DiffusionPrior, path: Path, size: int, seed: int, n: int = 16) -> None:
    g = torch.Generator().manual_seed(seed)
    z = sample_prior(prior, n, (prior.channels, size, size), generator=g,
                     device=next(prior.network.parameters()).device, sampler="ddim")
    save_figure(image_grid(samples_for_display(prior, z.float().cpu()), nrow=4), path)
