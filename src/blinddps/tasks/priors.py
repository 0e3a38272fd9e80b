"""The task's priors by bundled name or path, checked for the channel count of their kind."""
from __future__ import annotations

from typing import Callable

from ..priors import DiffusionPrior
from ..priors.bundle import load_prior
from .config import RestoreConfig

CHANNELS = {"image": 3, "kernel": 1, "tilt": 2}


def load_task_prior(kind: str, name: str, device: str, respacing: str) -> DiffusionPrior:
    """One prior by bundled name or path, checked to have the channel count its kind needs."""
    prior = load_prior(name, kind=kind, device=device, respacing=respacing)
    if prior.channels != CHANNELS[kind]:
        raise ValueError(f"{name}: the network has {prior.channels} channel(s) but {'an' if kind == 'image' else 'a'} "
                         f"{kind} prior needs {CHANNELS[kind]}: wrong checkpoint?")
    return prior


def load_priors(config: RestoreConfig, turbulence: bool = False,
                loader: Callable[[str, str, str, str], DiffusionPrior] = load_task_prior) -> dict[str, DiffusionPrior]:
    """Every prior the task needs, by the names in config, respaced for DPS (config.dps).

    A kernel or tilt prior named "uniform" is left out (that unknown then follows the
    guidance gradient alone).  loader(kind, name, device, respacing) loads one prior."""
    steps = config.dps.respacing
    names = {"image": config.image_prior, "kernel": config.kernel_prior}
    if turbulence:
        names["tilt"] = config.tilt_prior
    return {kind: loader(kind, name, config.device, steps)
            for kind, name in names.items() if not (name == "uniform" and kind != "image")}
