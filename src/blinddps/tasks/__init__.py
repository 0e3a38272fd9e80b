"""End-user tasks on photos: blind deblurring, turbulence, and simulated measurements."""
from .config import RestoreConfig
from .restore import RestoreResult, deblur, load_priors, load_task_prior, restore, restore_turbulence
from .simulate import BLURS, simulate

__all__ = ["BLURS", "RestoreConfig", "RestoreResult", "deblur", "load_priors", "load_task_prior", "restore", "restore_turbulence", "simulate"]
