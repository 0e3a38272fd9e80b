"""Value transforms between a prior's network space ([-1, 1]) and the operator's domain.

Each transform states both ranges.  `to_operator` is differentiable: the solver's guidance
gradient flows through it back to the network-space state.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


def closed_clamp(x: torch.Tensor, lower: float | None = None, upper: float | None = None) -> torch.Tensor:
    """x.clamp(lower, upper)'s values, with a gradient that this code defines, not autograd's
    version: 1 on the closed interval [lower, upper] (bounds included), 0 strictly outside.

    Where it matters: a state that sits exactly on a bound (a prior-less unknown projected
    onto [-1, 1], a kernel pixel at exactly 0) must still receive the gradient that points
    back inside, else it freezes there.  torch <= 2.13 gave clamp a gradient of 1 at the
    bound, torch 2.14 gives 0; this keeps the <= 2.13 convention on every version.
    Any shape; NaN stays NaN (with zero gradient).
    """
    inside = torch.ones_like(x, dtype=torch.bool)
    if lower is not None:
        inside = inside & (x >= lower)
    if upper is not None:
        inside = inside & (x <= upper)
    # torch.where passes the gradient to the branch it takes: x inside, a constant outside.
    return torch.where(inside, x, x.detach().clamp(lower, upper))


@dataclass(frozen=True)
class ImageTransform:
    """Images: network space [-1, 1].  The operator acts on the same [-1, 1] values (as the
    paper's code does: zero padding is mid-grey); the public API converts [0, 1] <-> [-1, 1]."""

    kind: str = "image"

    def to_net(self, value: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [-1, 1] -> the same."""
        return value

    def to_operator(self, z: torch.Tensor) -> torch.Tensor:
        return z


@dataclass(frozen=True)
class KernelTransform:
    """Blur kernels: network space [-1, 1] <-> non-negative kernels summing to 1 per sample.

    to_net scales by the kernel maximum (k / max k * 2 - 1), the consistent inverse of
    to_operator ((z + 1) / 2, then divided by its sum per sample: BlindDPS section 3.2).
    """

    kind: str = "kernel"
    eps: float = 1e-8

    def to_net(self, kernel: torch.Tensor) -> torch.Tensor:
        """(B, 1, K, K) non-negative -> (B, 1, K, K) in [-1, 1] (the maximum maps to 1)."""
        peak = kernel.amax(dim=(-2, -1), keepdim=True).clamp_min(self.eps)
        return kernel / peak * 2 - 1

    def unnormalised(self, z: torch.Tensor) -> torch.Tensor:
        """(z + 1) / 2 clamped at 0: the kernel before sum normalisation, in [0, 1].
        A pixel at exactly 0 (z = -1) keeps its gradient (closed_clamp)."""
        return closed_clamp((z + 1) / 2, lower=0)

    def to_operator(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 1, K, K) in [-1, 1] -> non-negative, each sample summing to 1."""
        # + eps: a state that is -1 everywhere gives the uniform kernel, not an all-zero one
        # (which would blur every image to black); for real kernels the shift is ~1e-8 / sum.
        k = self.unnormalised(z) + self.eps
        return k / k.sum(dim=(-2, -1), keepdim=True)


@dataclass(frozen=True)
class TiltTransform:
    """Turbulence tilt fields: network space [-1, 1] <-> pixels, tilt = scale * z.

    The default scale 2.5 px matches the generator's clip (|tilt| <= 2.5 px)."""

    kind: str = "tilt"
    scale: float = 2.5

    def to_net(self, tilt: torch.Tensor) -> torch.Tensor:
        """(B, 2, H, W) pixels -> (B, 2, H, W) in [-1, 1] (values beyond the scale clipped)."""
        return (tilt / self.scale).clamp(-1, 1)

    def to_operator(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.scale


Transform = ImageTransform | KernelTransform | TiltTransform


def transform_from_dict(d: dict) -> Transform:
    """Rebuild a transform from its serialised form ({'kind': ..., fields})."""
    d = dict(d)
    kind = d.pop("kind", None)
    classes = {"image": ImageTransform, "kernel": KernelTransform, "tilt": TiltTransform}
    if kind not in classes:
        raise ValueError(f"unknown transform kind {kind!r}: expected one of {sorted(classes)}")
    return classes[kind](**d)
