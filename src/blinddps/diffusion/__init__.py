"""Noise schedules and the VP diffusion process (kept apart from networks and samplers)."""
from .process import DiffusionConfig, VPProcess
from .schedule import cosine_betas, linear_betas, make_betas, respaced_timesteps

__all__ = ["DiffusionConfig", "VPProcess", "cosine_betas", "linear_betas", "make_betas", "respaced_timesteps"]
