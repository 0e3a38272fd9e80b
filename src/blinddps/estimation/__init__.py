"""Blind kernel estimation: the blur kernel of a photo from the photo alone.

`kernel.estimate_kernel` is the estimator (coarse to fine, Pan et al. 2016's dark-channel
and L0-gradient latent image, Cho & Lee's edge selection, a gradient-domain kernel step);
`latent`, `edges` and `cleanup` are its steps, each testable on its own.
"""
from .kernel import KernelEstimate, KernelEstimator, estimate_kernel

__all__ = ["KernelEstimate", "KernelEstimator", "estimate_kernel"]
