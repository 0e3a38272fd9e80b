"""BlindDPS's setup from the task's settings: the unknowns, the solver's config, the kernel's
regularisers and a kernel size the kernel network accepts (method "dps")."""
from __future__ import annotations

from dataclasses import replace

from ..priors import DiffusionPrior
from ..priors.transforms import ImageTransform, KernelTransform, TiltTransform
from ..solvers import KernelSparsity, SolverConfig, Unknown
from ..solvers.guidance import KernelCentring, Sum
from .config import RestoreConfig


def dps_config(config: RestoreConfig) -> SolverConfig:
    """BlindDPS's solver settings from the task's (config resolved: zeta set)."""
    dps = config.dps
    return SolverConfig(step_size=dps.step_size, zeta=dps.zeta, sampler=dps.sampler, record_every=config.record_every,
                        autocast=bool(config.autocast))


def dps_unknowns(priors, config: RestoreConfig, shape: tuple[int, int], tilt: bool) -> dict[str, Unknown]:
    h, w = shape
    k = config.kernel_size
    unknowns = {"image": Unknown((3, h, w), ImageTransform(), priors["image"]),
                "kernel": Unknown((1, k, k), KernelTransform(), priors.get("kernel"), step_scale=config.dps.zeta_kernel)}
    if tilt:
        unknowns["tilt"] = Unknown((2, h, w), priors["tilt"].transform if "tilt" in priors else TiltTransform(),
                                   priors.get("tilt"), step_scale=config.dps.zeta_tilt)
    return unknowns


def kernel_regularisers(config: RestoreConfig) -> dict:
    terms = []
    if config.dps.kernel_sparsity > 0:
        terms.append(KernelSparsity(config.dps.kernel_sparsity))
    if config.dps.kernel_centring > 0:
        terms.append(KernelCentring(config.dps.kernel_centring))
    return {"kernel": Sum(*terms)} if terms else {}


def fit_kernel_size(config: RestoreConfig, priors: dict[str, DiffusionPrior]) -> RestoreConfig:
    """Round the kernel size up to a multiple the kernel network accepts (a larger support
    only adds pixels the estimate may leave at zero)."""
    if "kernel" not in priors:
        return config
    m = priors["kernel"].network.config.spatial_multiple
    size = -(-config.kernel_size // m) * m
    return config if size == config.kernel_size else replace(config, kernel_size=size)
