"""Value transforms between a prior's network space ([-1, 1]) and the operator's domain.

Each transform states both ranges.  `to_operator` is differentiable: the solver's guidance
gradient flows through it back to the network-space state.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


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
        """(z + 1) / 2 clamped at 0: the kernel before sum normalisation, in [0, 1]."""
        return ((z + 1) / 2).clamp_min(0)

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
