"""Imaging through turbulence: y = k * warp(x, tilt) (BLINDDPS.md sections 1 and 3).

The tilt is a per-pixel displacement field in pixels: channel 0 moves along columns (x),
channel 1 along rows (y). warp samples the image bilinearly at (col + tilt[0], row + tilt[1])
with zeros outside, exactly like the paper's code (F.grid_sample, align_corners=True).
Then the blur of :mod:`blinddps.physics.blur` is applied; with the default zero padding it
matches golden ``operators.npz`` ``turbulence/*`` when given the flipped reference kernel
(the reference blur is the cross-correlation ``F.conv2d(x, k_ref, padding='same')``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .blur import Blur, Method, Padding, linear_adjoint


def _sampling_grid(tilt: torch.Tensor) -> torch.Tensor:
    """Normalised grid_sample grid (B, H, W, 2) for pixel displacements tilt (B, 2, H, W).

    align_corners=True maps pixel index 0 -> -1 and N - 1 -> +1, so a displacement of one
    pixel is 2 / (N - 1) in normalised units.
    """
    h, w = tilt.shape[-2:]
    if h < 2 or w < 2:
        raise ValueError(f"warp needs an image of at least 2x2 pixels, got {h}x{w}")
    rows = torch.arange(h, dtype=tilt.dtype, device=tilt.device)[:, None]
    cols = torch.arange(w, dtype=tilt.dtype, device=tilt.device)
    gx = (cols + tilt[:, 0]) * (2.0 / (w - 1)) - 1.0
    gy = (rows + tilt[:, 1]) * (2.0 / (h - 1)) - 1.0
    return torch.stack((gx, gy), dim=-1)


def warp(x: torch.Tensor, tilt: torch.Tensor) -> torch.Tensor:
    """Displace x by a tilt field: out[r, c] = x(r + tilt[1, r, c], c + tilt[0, r, c]).

    Args:
        x: images (B, C, H, W), any range.
        tilt: (B or 1, 2, H, W) displacements in pixels (channel 0: columns, 1: rows);
            the batch dimension broadcasts against x.
    Returns:
        (B', C, H, W) bilinear samples, zero where the sample point falls outside the
        image. Differentiable w.r.t. x and tilt (piecewise linear in tilt).
    """
    if x.dim() != 4 or tilt.dim() != 4 or tilt.shape[1] != 2:
        raise ValueError(f"need x (B, C, H, W) and tilt (B, 2, H, W), got "
                         f"{tuple(x.shape)} and {tuple(tilt.shape)}")
    if tilt.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"tilt size {tuple(tilt.shape[-2:])} != image size {tuple(x.shape[-2:])}")
    b = torch.broadcast_shapes(x.shape[:1], tilt.shape[:1])[0]
    grid = _sampling_grid(tilt.to(x.dtype)).expand(b, -1, -1, -1)
    x = x.expand(b, *x.shape[1:])
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


class Turbulence:
    """Turbulence operator A(x; k, tilt) = k * warp(x, tilt) (paper, section 4.2).

    Args:
        padding, method: border handling and algorithm of the blur, see :class:`Blur`.

    Call: ``turb(x, kernel=k, tilt=t)`` with x (B, C, H, W), k (B or 1, C or 1, Kh, Kw),
    t (B or 1, 2, H, W) in pixels; returns (B', C', H, W) (smaller for padding "valid").
    Linear in x; differentiable in x, k and tilt.
    """

    def __init__(self, padding: Padding = "zeros", method: Method = "auto") -> None:
        self.blur = Blur(padding, method)

    def __repr__(self) -> str:
        return f"Turbulence(padding={self.blur.padding!r}, method={self.blur.method!r})"

    def __call__(self, x: torch.Tensor, *, kernel: torch.Tensor,
                 tilt: torch.Tensor) -> torch.Tensor:
        return self.blur(warp(x, tilt), kernel=kernel)

    def adjoint(self, y: torch.Tensor, *, kernel: torch.Tensor, tilt: torch.Tensor,
                ) -> torch.Tensor:
        """A^T y = warp^T(blur^T y): exact, as the vector-Jacobian product of the linear map."""
        z = self.blur.adjoint(y, kernel=kernel)
        return linear_adjoint(lambda x: warp(x, tilt), z, z.shape)
