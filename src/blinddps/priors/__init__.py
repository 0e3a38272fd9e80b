"""Diffusion priors: a network bound to its process and value transform; bundled defaults."""
from .prior import Denoised, DiffusionPrior
from .transforms import ImageTransform, KernelTransform, TiltTransform, transform_from_dict

__all__ = ["Denoised", "DiffusionPrior", "ImageTransform", "KernelTransform", "TiltTransform", "transform_from_dict"]
