"""Random operator parameters: test operators and training data of the operator priors.

Every generator has ``sample(batch_size, generator=None, device=None) -> dict`` with named
parameters matching the physics keywords ({"kernel": ...} or {"tilt": ...}); ``generator``
is a torch.Generator or an int seed, and the same seed gives the same output.
"""
from .gaussian import GaussianKernelGenerator, gaussian_kernel, gaussian_kernels
from .mix import KernelMixGenerator
from .motion import MotionKernelGenerator
from .tilt import TiltGenerator

__all__ = [
    "MotionKernelGenerator", "GaussianKernelGenerator", "gaussian_kernel", "gaussian_kernels",
    "KernelMixGenerator", "TiltGenerator",
]
