"""Pieces of the DPS guidance: step-size rules, the measurement misfit and kernel sparsity.

BlindDPS (Chung et al. 2023, eq. 12-13) moves every unknown against the gradient of
    loss = ||y - A(x0_img; phi0)||_2 + lambda R(k0)
taken w.r.t. each unknown's NOISY state x_t, through its network's x0 estimate.
"""
from __future__ import annotations

import torch

from ..physics.kernel_geometry import centre_of_mass
from ..priors.transforms import closed_clamp

STEP_SIZE_RULES = ("sqrt_abar", "constant")


def step_size(rule: str, zeta: float, alpha_cumprod: torch.Tensor) -> float:
    """zeta_t of one step.

    "constant": zeta (the paper reports 0.3).
    "sqrt_abar": zeta * sqrt(abar_t), what the released code actually runs (with zeta = 1):
        small steps while the state is mostly noise, full steps near the end.
    """
    if rule == "constant":
        return float(zeta)
    if rule == "sqrt_abar":
        return float(zeta * alpha_cumprod.sqrt())
    raise ValueError(f"unknown step-size rule {rule!r}: expected one of {STEP_SIZE_RULES}")


def misfit(y: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
    """Per-sample residual norm ||y_b - A(x)_b||_2 (the norm, not its square), shape (B,).

    Summing these over the batch keeps every sample's gradient its own."""
    return (y - prediction).flatten(1).norm(dim=1)


class KernelSparsity:
    """lambda * ||k||_1 on the kernel BEFORE sum normalisation, shape (B,).

    After normalisation ||k||_1 == 1 for every kernel, so the paper code's l1 term on the
    normalised kernel has zero gradient.  On the unnormalised kernel (z + 1) / 2 in [0, 1]
    it pulls the background towards exactly 0 (z -> -1) and so acts as intended.
    """

    def __init__(self, weight: float = 1.0):
        self.weight = float(weight)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, 1, K, K) kernel state's x0 estimate in network space [-1, 1].  Pixels at
        exactly -1 keep the gradient 0.5 * weight (closed_clamp), on every torch version."""
        return self.weight * closed_clamp((z + 1) / 2, lower=0).flatten(1).sum(dim=1)


class KernelCentring:
    """lambda * squared distance (pixels^2) of the kernel's centre of mass from its origin
    floor(K/2), shape (B,).

    Blind deblurring cannot tell a shifted kernel from a shifted image; a strong kernel prior
    keeps kernels centred, a weak one lets the mass drift to the border (then the kernel
    support is wasted and the image is shifted).  This pulls the mass back to the origin.
    """

    def __init__(self, weight: float = 0.1):
        self.weight = float(weight)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, 1, K, K) kernel x0 estimate in network space [-1, 1]."""
        # closed_clamp: empty pixels (z = -1) still feel the pull, so mass can move there.
        k = closed_clamp((z + 1) / 2, lower=0)
        k = k / k.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-8)
        # Already normalised above (with its own 1e-8 clamp), so no second division; the
        # centre of mass relative to the origin, (B, 1, 2), differentiable in k.
        com = centre_of_mass(k, relative=True, normalised=True)
        cy = com[..., 0].flatten(1).sum(dim=1)
        cx = com[..., 1].flatten(1).sum(dim=1)
        return self.weight * (cy**2 + cx**2)


class Sum:
    """The sum of several regularisers of one unknown, shape (B,)."""

    def __init__(self, *terms):
        self.terms = terms

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return sum(term(z) for term in self.terms)
