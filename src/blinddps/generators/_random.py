"""Seeded random draws for the generators, all from one ``torch.Generator``.

``torch.distributions`` take no generator, so the few distributions the generators need
are drawn here from ``torch.rand`` by exact transforms (inverse CDFs, sums of
exponentials). Everything is float64 on the generator's device.
"""
from __future__ import annotations

import torch

Seed = torch.Generator | int | None


def as_generator(generator: Seed) -> torch.Generator:
    """A torch.Generator from a generator (returned as is), an int seed, or None.

    None draws a fresh seed from torch's global RNG, so ``torch.manual_seed`` still makes
    unseeded calls reproducible.
    """
    if isinstance(generator, torch.Generator):
        return generator
    if generator is None:
        generator = int(torch.randint(0, 2**62, (1,)).item())
    return torch.Generator().manual_seed(int(generator))


def uniform(g: torch.Generator, shape: int | tuple[int, ...], low: float | torch.Tensor = 0.0,
            high: float | torch.Tensor = 1.0) -> torch.Tensor:
    """U(low, high) samples, float64."""
    shape = (shape,) if isinstance(shape, int) else shape
    u = torch.rand(shape, generator=g, dtype=torch.float64, device=g.device)
    return low + (high - low) * u


def beta_one(g: torch.Generator, n: int, b: float) -> torch.Tensor:
    """Beta(1, b) samples by inverse CDF: F(x) = 1 - (1 - x)^b, so x = 1 - (1 - u)^(1/b)."""
    u = uniform(g, n)
    return -torch.expm1(torch.log1p(-u) / b)


def beta_integer(g: torch.Generator, n: int, a: int, b: int) -> torch.Tensor:
    """Beta(a, b) for integer a, b: G_a / (G_a + G_b) with Gamma(k) = sum of k Exp(1)."""
    e = -torch.log1p(-uniform(g, (n, a + b)))  # Exp(1) draws; log1p(-u) avoids log(0)
    ga = e[:, :a].sum(1)
    return ga / (ga + e[:, a:].sum(1))


def triangular(g: torch.Generator, n: int, low: float, mode: float, high: float) -> torch.Tensor:
    """Triangular(low, mode, high) samples by inverse CDF."""
    u = uniform(g, n)
    width = high - low
    split = (mode - low) / width
    left = low + torch.sqrt(u * width * (mode - low))
    right = high - torch.sqrt((1.0 - u) * width * (high - mode))
    return torch.where(u < split, left, right)


def sample_range(g: torch.Generator, n: int, value: float | tuple[float, float]) -> torch.Tensor:
    """n values: the constant `value`, or U(lo, hi) draws when `value` is a (lo, hi) pair."""
    if isinstance(value, (tuple, list)):
        lo, hi = value
        return uniform(g, n, lo, hi)
    return torch.full((n,), float(value), dtype=torch.float64, device=g.device)

