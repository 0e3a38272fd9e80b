"""Measurement noise models: y = A(x) + n (BLINDDPS.md sections 1 and 6).

Both take an optional ``torch.Generator`` so measurements are reproducible; without one
they use torch's global RNG. The input is never modified in place.
"""
from __future__ import annotations

import torch


class GaussianNoise:
    """Additive white Gaussian noise: y + sigma * z, z ~ N(0, I).

    Args:
        sigma: standard deviation in the units of y: a float, or a tensor broadcasting
            against y (e.g. (B, 1, 1, 1) for a per-sample level). The paper uses 0.02 for
            images in [-1, 1], i.e. 0.01 for images in [0, 1].

    Call: ``noise(y, generator=g)``: y any shape and range; returns the same shape.
    """

    def __init__(self, sigma: float | torch.Tensor) -> None:
        self.sigma = sigma

    def __repr__(self) -> str:
        return f"GaussianNoise(sigma={self.sigma})"

    def __call__(self, y: torch.Tensor, *, generator: torch.Generator | None = None,
                 ) -> torch.Tensor:
        z = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
        return y + self.sigma * z


class PoissonNoise:
    """Photon (shot) noise: Poisson(rate * y) / rate, so the mean stays y.

    Args:
        rate: photons per unit intensity (float > 0); larger means less noise (the
            relative noise std is 1 / sqrt(rate * y)).

    Call: ``noise(y, generator=g)``: y with values in [0, 1] (negative values are treated
    as 0); returns non-negative values in the same units, same shape. Sampled with
    ``torch.poisson(..., generator=g)``, so a seeded generator reproduces it exactly.
    Not differentiable (sampling); it is meant for synthesising measurements.
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate

    def __repr__(self) -> str:
        return f"PoissonNoise(rate={self.rate})"

    def __call__(self, y: torch.Tensor, *, generator: torch.Generator | None = None,
                 ) -> torch.Tensor:
        counts = torch.poisson(y.detach().clamp_min(0) * self.rate, generator=generator)
        return counts / self.rate
