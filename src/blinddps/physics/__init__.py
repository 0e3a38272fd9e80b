"""Forward operators A(x; params) with named parameters, and measurement noise.

Images are batch-first (B, C, H, W); parameters are passed by keyword
(``Blur()(x, kernel=k)``, ``Turbulence()(x, kernel=k, tilt=t)``), per sample, and
everything is differentiable w.r.t. the image and the parameters. Kernel geometry (pad, flip,
shift, centre of mass, centring) is in ``blinddps.physics.kernel_geometry``.
"""
from .blur import FFT_MIN_KERNEL_SIZE, Blur, blur, linear_adjoint
from .kernel_geometry import center_kernel, flip_kernel, pad_kernel_to
from .noise import GaussianNoise, PoissonNoise
from .turbulence import Turbulence, warp

__all__ = [
    "Blur", "blur", "flip_kernel", "pad_kernel_to", "center_kernel", "linear_adjoint",
    "FFT_MIN_KERNEL_SIZE", "Turbulence", "warp", "GaussianNoise", "PoissonNoise",
]
