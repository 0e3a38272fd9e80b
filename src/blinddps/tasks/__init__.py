"""End-user tasks on photos: blind deblurring, turbulence, and simulated measurements."""
from .config import SAMPLERS, DPSSettings, ProxSettings, RestoreConfig
from .kernels import check_kernel
from .priors import load_priors, load_task_prior
from .restore import deblur, restore, restore_turbulence
from .result import RestoreResult
from .simulate import BLURS, simulate

__all__ = ["BLURS", "SAMPLERS", "DPSSettings", "ProxSettings", "RestoreConfig", "RestoreResult", "check_kernel", "deblur", "load_priors", "load_task_prior", "restore", "restore_turbulence", "simulate"]
