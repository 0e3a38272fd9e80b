"""blinddps: blind inverse problems (deblurring, turbulence) with parallel diffusion priors.

Layout: `diffusion` (noise schedule and process), `networks` (the ADM U-Net and checkpoint
loading), `priors` (a network + process + value transform; bundled defaults), `physics`
(blur, turbulence, noise), `generators` (random kernels and tilt maps), `solvers`
(BlindDPS, DPS), `tasks` (photos in, photos out), `training`, `metrics`, `baselines`, `bench`.
"""
from .diffusion import DiffusionConfig, VPProcess
from .networks import ADMUNet, UNetConfig, load_adm, save_adm
from .physics import Blur, GaussianNoise, PoissonNoise, Turbulence
from .priors import DiffusionPrior, ImageTransform, KernelTransform, TiltTransform
from .priors.bundle import load_prior, save_prior
from .solvers import DPS, BlindDPS, KernelSparsity, SolverConfig, Unknown
from .tasks import DPSSettings, ProxSettings, RestoreConfig, RestoreResult, deblur, restore_turbulence, simulate

__version__ = "0.1.0"

__all__ = [
    "ADMUNet", "BlindDPS", "Blur", "DPS", "DPSSettings", "DiffusionConfig", "DiffusionPrior", "GaussianNoise", "ImageTransform",
    "KernelSparsity", "KernelTransform", "PoissonNoise", "ProxSettings", "RestoreConfig", "RestoreResult", "SolverConfig",
    "TiltTransform", "Turbulence", "UNetConfig", "Unknown", "VPProcess", "deblur", "load_adm", "load_prior",
    "restore_turbulence", "save_adm", "save_prior", "simulate",
]
