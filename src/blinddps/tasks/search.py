"""The blind kernel search of the task: its settings from the task's, its image prior, and one
search of a photo with what to record of it (`solvers.kernel_search` does the search)."""
from __future__ import annotations

import time

import torch

from ..priors import DiffusionPrior
from ..solvers.kernel_search import KernelSearchConfig, search_kernel
from .config import RestoreConfig
from .priors import load_task_prior


def kernel_search_config(config: RestoreConfig, autocast: bool,
                         lambda_decay: float | None = None) -> KernelSearchConfig:
    """The blind kernel search's settings from the task's (config.prox.search != "none"), with
    this lambda decay (None: the first of config.prox.search_decays)."""
    return KernelSearchConfig(latent=config.prox.search, latent_steps=config.prox.search_steps,
                              kernel_prior_t=config.prox.kernel_prior_t, denoise=config.prox.search_denoise,
                              refit=config.prox.search_refit, views=config.prox.search_views,
                              lambda_decay=config.prox.search_decays[0] if lambda_decay is None else lambda_decay,
                              large_lambda_min=config.prox.search_lambda_min, autocast=autocast)


def search_prior(config: RestoreConfig, image_prior: DiffusionPrior,
                 priors: dict[str, DiffusionPrior] | None) -> DiffusionPrior:
    """The image prior of the blind kernel search: priors["search"] when given, else the one
    named by config.prox.search_prior, else (that name empty) the restoring `image_prior`."""
    if (priors or {}).get("search") is not None:
        return priors["search"]
    if not config.prox.search_prior:
        return image_prior
    return load_task_prior("image", config.prox.search_prior, config.device, "")


def search_kernel_of(y01, config: RestoreConfig, image_prior, priors, autocast: bool,
                   lambda_decay: float | None = None) -> tuple[torch.Tensor, dict]:
    """The blind kernel (K, K), K = kernel_size rounded up to odd, by `solvers.kernel_search`
    (seeded from config.seed), and what to record of it (with several views their agreement,
    "search_agreement", in [0, 1])."""
    start = time.perf_counter()
    settings = kernel_search_config(config, autocast, lambda_decay)
    kernel_prior = None
    if settings.kernel_prior_t > 0:
        kernel_prior = (priors or {}).get("kernel") or load_task_prior("kernel", config.kernel_prior, config.device, "")
    h, w = y01.shape[-2:]
    found = search_kernel(y01.expand(1, 3, h, w).to(config.device), config.kernel_size, image_prior=image_prior,
                          kernel_prior=kernel_prior, config=settings,
                          generator=torch.Generator().manual_seed(config.seed * 7919 + 104729))
    info = {"kernel_search": settings.to_dict(), "search_seconds": time.perf_counter() - start,
            "search_nfe": found.nfe}
    if found.agreement is not None:
        info["search_agreement"] = float(found.agreement[0])
    return found.kernel[0, 0].float(), info
