"""LPIPS and FID: not implemented here, and said so explicitly.

Both need pretrained networks (AlexNet/VGG + LPIPS linear heads; Inception-v3 for FID) whose
weights this project neither ships nor can download. These functions let evaluation code
report the absence instead of failing or silently skipping.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Availability", "lpips_available", "fid_available"]


@dataclass(frozen=True)
class Availability:
    """Whether a metric can be computed, and why not. Falsy when unavailable."""

    available: bool
    reason: str

    def __bool__(self) -> bool:
        return self.available


def lpips_available() -> Availability:
    """LPIPS (Zhang et al. 2018): unavailable, no local backbone or LPIPS weights."""
    return Availability(
        False, "LPIPS needs pretrained AlexNet/VGG and LPIPS linear-layer weights; none are available locally"
    )


def fid_available() -> Availability:
    """FID (Heusel et al. 2017): unavailable, no local Inception-v3 (pt_inception-2015-12-05) weights."""
    return Availability(
        False, "FID needs the pretrained Inception-v3 feature network; its weights are not available locally"
    )
