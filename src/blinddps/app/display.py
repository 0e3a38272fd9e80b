"""Tensors -> 8-bit pictures for the page (display only: the files to download are written
by the CLI's writers at full precision).

Every function returns a numpy uint8 array, (H, W, 3) for photos and (H, W) for maps and
kernels, which Gradio shows as it is.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..io import kernel_to_image

KERNEL_DISPLAY = 192  # kernels are shown at about this many pixels a side (nearest-neighbour)


def working_size(hw: tuple[int, int], max_size: int) -> tuple[int, int]:
    """(H, W) a photo is restored at under the --max-size rule: the long side down to
    max_size (0: no limit), rounded as `tasks.restore` does."""
    h, w = hw
    if not max_size or max(h, w) <= max_size:
        return h, w
    scale = max_size / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def photo(image: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) or (C, H, W) in [0, 1], C = 1 or 3 -> (H, W, 3) uint8 (grey repeated)."""
    x = image[0] if image.dim() == 4 else image
    x = x.detach().float().cpu().clamp(0, 1).expand(3, *x.shape[-2:])
    return (x * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def resized_photo(image: torch.Tensor, hw: tuple[int, int]) -> np.ndarray:
    """(1, C, H, W) in [0, 1] resized (antialiased bicubic, as the restoration does) to hw
    -> (h, w, 3) uint8: the input beside a result restored at the working size."""
    if tuple(image.shape[-2:]) != tuple(hw):
        image = F.interpolate(image.float(), size=hw, mode="bicubic", antialias=True, align_corners=False)
    return photo(image)


def estimate(x0: torch.Tensor, hw: tuple[int, int], method: str, channels: int, view: int = 0) -> np.ndarray:
    """A sampler's current image estimate x0 (B, 3, h', w') in [-1, 1] -> the first sample
    at the working size hw as (H, W, 3) uint8.  DPS pads at the bottom / right, so its
    photo is the top-left corner; the proximal sampler's grid has the photo in the middle.
    view: a grid smaller than hw is the blind kernel's view of the photo (its long side
    `view`): its photo window is cut out and shown enlarged to hw."""
    h, w = hw
    x = x0[0].detach().float().cpu()
    if view and (x.shape[-2] < h or x.shape[-1] < w):
        vh, vw = working_size(hw, view)
        top, left = (x.shape[-2] - vh) // 2, (x.shape[-1] - vw) // 2
        x = F.interpolate(x[None, :, top:top + vh, left:left + vw], size=(h, w), mode="bilinear",
                          align_corners=False)[0]
    else:
        top, left = (0, 0) if method == "dps" else ((x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2)
        x = x[:, top:top + h, left:left + w]
    x = ((x + 1) / 2).clamp(0, 1)
    return photo(x.mean(0, keepdim=True) if channels == 1 else x)


def kernel(k: torch.Tensor) -> np.ndarray:
    """A kernel (K, K) (leading singleton dims allowed), non-negative -> (K*s, K*s) uint8,
    peak white, each entry an s x s block with s making it about KERNEL_DISPLAY pixels."""
    size = k.shape[-1]
    return np.asarray(kernel_to_image(k.detach().cpu(), upscale=max(1, KERNEL_DISPLAY // size)))


def scaled_map(values: torch.Tensor) -> np.ndarray:
    """A non-negative map (H, W) -> (H, W) uint8 scaled by its maximum (all zero stays black)."""
    v = values.detach().float().cpu()
    top = float(v.max()) if v.numel() else 0.0
    v = v / top if top > 0 else v
    return (v.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def tilt(field: torch.Tensor, hw: tuple[int, int]) -> np.ndarray:
    """A tilt field (B, 2, h', w') or (2, h', w') in pixels -> its magnitude on the photo's
    top-left (H, W) (where DPS keeps it), scaled by its maximum, (H, W) uint8."""
    f = field[0] if field.dim() == 4 else field
    h, w = hw
    return scaled_map(f[:, :h, :w].float().norm(dim=0))
