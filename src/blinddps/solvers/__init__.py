"""Samplers for inverse problems: BlindDPS (parallel priors) and non-blind DPS."""
from .blinddps import BlindDPS, SamplingDivergedError, SolverConfig, SolverResult, StepInfo, Unknown
from .dps import DPS
from .guidance import KernelSparsity, misfit, step_size
from .unconditional import sample_prior

__all__ = ["BlindDPS", "DPS", "KernelSparsity", "SamplingDivergedError", "SolverConfig", "SolverResult",
           "StepInfo", "Unknown", "misfit", "sample_prior", "step_size"]
