"""Unconditional sampling from one prior: to see what it has learned (no measurement)."""
from __future__ import annotations

from typing import Callable

import torch

from ..priors import DiffusionPrior


@torch.no_grad()
def sample_prior(prior: DiffusionPrior, n: int, shape: tuple[int, ...], *, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu", sampler: str = "ddpm", eta: float = 0.0,
                 callback: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """n samples (n, *shape) in the prior's NETWORK space [-1, 1] (apply
    prior.transform.to_operator for kernels / tilts in their natural units)."""
    gen_device = generator.device if generator is not None else device
    x = torch.randn((n, *shape), generator=generator, device=gen_device).to(device)
    for step, i in enumerate(range(prior.num_steps - 1, -1, -1)):
        d = prior.denoise(x, i)
        noise = torch.randn(x.shape, generator=generator, device=gen_device).to(device)
        if sampler == "ddim":
            x = prior.process.ddim_step(x, i, d.x0, d.eps, noise, eta=eta)
        else:
            x = prior.process.ddpm_step(x, i, d.x0, d.log_var, noise)
        if callback is not None:
            callback(step, prior.num_steps)
    return x.clamp(-1, 1)
