"""Random turbulence tilt maps (BLINDDPS.md section 4), vectorised.

One map: u = v = 0 (H x W); num_patches times: a random patch x patch window inside the
image, a strength S ~ U(0.1, 0.4), two white-noise patches each smoothed by a 7x7 Gaussian
(std 1, zero padding), added times S to u and v in that window; finally clipped to +-2.5 px.

The reference loops over the 500 patches in Python; here all patches of a map are drawn at
once, smoothed by two batched matrix products (a zero-padded separable convolution is
G @ noise @ G^T with a banded Toeplitz G) and scatter-added into the map with one
index_add_. About 0.15 s per 256x256 map on one CPU core.

Two details of the reference are kept because its statistics show them (and the published
tilt prior was trained on them): the smoothing pads each patch with zeros (the patch rims
have less variance), and window corners are drawn in [0, H - patch) (exclusive), so the
last row and column of every map are never covered and stay 0.
"""
from __future__ import annotations

import torch

from ._random import Seed, as_generator, uniform

_MAX_PATCHES_PER_CHUNK = 1024  # bounds memory: 1024 x 2 x 64 x 64 float32 = 32 MiB of noise


def smoothing_matrix(patch: int, size: int, std: float, device=None) -> torch.Tensor:
    """(patch, patch) G such that G @ z is z convolved with a 1-D Gaussian, zero padded.

    The 1-D taps are the normalised sampled Gaussian of `size` taps (7 taps, std 1); the
    2-D kernel is their outer product, normalised to sum 1 like the reference's 7x7 kernel.
    """
    taps = torch.exp(-0.5 * ((torch.arange(size, dtype=torch.float64) - size // 2) / std) ** 2)
    taps = taps / taps.sum()
    offset = torch.arange(patch)[None, :] - torch.arange(patch)[:, None] + size // 2
    inside = (offset >= 0) & (offset < size)
    return torch.where(inside, taps[offset.clamp(0, size - 1)], 0.0).to(device)


class TiltGenerator:
    """Random tilt (displacement) maps for the turbulence operator and its prior.

    Args:
        height, width: map size (256 x 256 in the paper).
        num_patches: noise patches added per map (500).
        patch: patch side (64).
        strength: (lo, hi) range of the per-patch factor S (0.1, 0.4).
        smooth_size, smooth_std: the Gaussian smoothing each noise patch gets (7, 1.0).
        clip: the map is clipped to [-clip, clip] pixels (2.5).

    ``sample(batch_size, generator=None)`` returns {"tilt": (B, 2, H, W) float32} in pixels
    (channel 0: column displacement, 1: row displacement, as :func:`physics.warp` expects).
    """

    def __init__(self, height: int = 256, width: int = 256, num_patches: int = 500,
                 patch: int = 64, strength: tuple[float, float] = (0.1, 0.4),
                 smooth_size: int = 7, smooth_std: float = 1.0, clip: float = 2.5) -> None:
        if patch >= height or patch >= width:
            raise ValueError(f"patch {patch} must be smaller than the map {height}x{width}")
        self.height, self.width = height, width
        self.num_patches, self.patch = num_patches, patch
        self.strength = strength
        self.smooth_size, self.smooth_std = smooth_size, smooth_std
        self.clip = clip

    def __repr__(self) -> str:
        return (f"TiltGenerator(height={self.height}, width={self.width}, "
                f"num_patches={self.num_patches}, patch={self.patch}, strength={self.strength}, "
                f"smooth_size={self.smooth_size}, smooth_std={self.smooth_std}, clip={self.clip})")

    def _patches(self, g: torch.Generator, n: int) -> torch.Tensor:
        """(n, 2, patch, patch) smoothed white noise, scaled per patch by S ~ U(strength)."""
        p = self.patch
        noise = torch.randn((n, 2, p, p), generator=g, device=g.device)
        smooth = smoothing_matrix(p, self.smooth_size, self.smooth_std, g.device).float()
        lo, hi = self.strength
        scale = uniform(g, n, lo, hi).float()[:, None, None, None]
        return scale * (smooth @ noise @ smooth.T)

    def _maps(self, g: torch.Generator, batch: int) -> torch.Tensor:
        """(batch, 2, H, W) tilt maps before clipping, all patches at once."""
        h, w, p, n = self.height, self.width, self.patch, self.num_patches
        top = torch.randint(0, h - p, (batch, n), generator=g, device=g.device)
        left = torch.randint(0, w - p, (batch, n), generator=g, device=g.device)
        values = self._patches(g, batch * n).view(batch, n, 2, p * p)
        # Flat index of every patch pixel in the (batch, 2, H, W) map.
        d = torch.arange(p, device=g.device)
        pixel = ((top[..., None, None] + d[:, None]) * w + left[..., None, None] + d).view(batch, n, 1, p * p)
        plane = (torch.arange(batch, device=g.device)[:, None, None, None] * 2
                 + torch.arange(2, device=g.device)[None, None, :, None])
        index = (plane * (h * w) + pixel).expand(batch, n, 2, p * p)
        out = torch.zeros(batch * 2 * h * w, device=g.device)
        out.index_add_(0, index.reshape(-1), values.reshape(-1))
        return out.view(batch, 2, h, w)

    def sample(self, batch_size: int, generator: Seed = None,
               device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        g = as_generator(generator)
        chunk = max(1, _MAX_PATCHES_PER_CHUNK // self.num_patches)
        maps = [self._maps(g, min(chunk, batch_size - start))
                for start in range(0, batch_size, chunk)]
        tilt = torch.cat(maps).clamp(-self.clip, self.clip)
        return {"tilt": tilt.to(device) if device is not None else tilt}
