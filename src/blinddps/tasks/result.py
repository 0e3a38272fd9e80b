"""What a restoration returns (`RestoreResult`), built from a solver's result in the public
ranges: images in [0, 1] cropped to the photo, kernels (K, K) summing to 1, tilt in pixels."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class RestoreResult:
    """image: (1, C, H, W) in [0, 1] (the mean over samples); std: per-pixel std over
    samples (1, C, H, W) or None; kernel: (K, K) summing to 1 (of the first sample);
    tilt: (2, H, W) pixels or None; frames: the recorded estimates of the first sample, each
    {"image": (1, C, H, W) in [0, 1], cropped like `image`, "kernel": (K, K) summing to 1, and
    "tilt": (2, H, W) pixels for turbulence}; info: nfe, seconds, ..."""

    image: torch.Tensor
    kernel: torch.Tensor
    std: torch.Tensor | None = None
    tilt: torch.Tensor | None = None
    kernels: torch.Tensor | None = None
    frames: list = field(default_factory=list)
    info: dict = field(default_factory=dict)


def package_result(result, channels: int, hw: tuple[int, int], n: int, info: dict) -> RestoreResult:
    h, w = hw
    images = ((result.estimates["image"][..., :h, :w] + 1) / 2).clamp(0, 1).cpu()
    if channels == 1:
        images = images.mean(dim=1, keepdim=True)
    kernels = result.estimates["kernel"][:, 0].cpu()
    tilt = result.estimates.get("tilt")
    info = {**info, "final_misfit": result.loss.tolist()}
    return RestoreResult(image=images.mean(0, keepdim=True), std=images.std(0, keepdim=True) if n > 1 else None,
                         kernel=kernels[0], kernels=kernels, tilt=None if tilt is None else tilt[0, :, :h, :w].cpu(),
                         frames=[public_frame(f, channels, hw) for f in result.frames], info=info)


def public_frame(frame: dict, channels: int, hw: tuple[int, int]) -> dict:
    """A solver's recorded x0 estimates (first sample; image in [-1, 1] on the working grid) in
    the public ranges and crop of the result."""
    h, w = hw
    image = ((frame["image"][:1, :, :h, :w].float() + 1) / 2).clamp(0, 1).cpu()
    out = {"image": image.mean(dim=1, keepdim=True) if channels == 1 else image}
    if "kernel" in frame:
        out["kernel"] = frame["kernel"][0, 0].float().cpu()
    if "tilt" in frame:
        out["tilt"] = frame["tilt"][0, :, :h, :w].float().cpu()
    return out
