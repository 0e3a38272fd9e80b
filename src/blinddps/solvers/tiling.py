"""The image prior as a denoiser over overlapping tiles, blended without seams.

A whole-photo network pass needs activations that grow with the photo (many GB at 12 MP);
tiles bound them by the tile's size. Tiles of side at most `tile` overlap by at least
`overlap` pixels (`tile_layout`); each tile's x0 estimate is weighted by a ramp that rises
from the tile's inner edges over the overlap (weight 1 where no other tile covers the pixel,
e.g. at the photo's borders), and the weighted estimates are averaged, so the seams fade
over the overlap. The networks here are convolutional with group normalisation: a tile sees
the statistics of its own window, so the tiled estimate differs slightly from the
whole-image one everywhere, and exactly equals it when one tile covers the image.

Shapes: x_t (B, C, H, W) in network units; tiles are cut with sides that are multiples of
the network's spatial multiple (the photo's grid already is one).
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..priors import DiffusionPrior


def tile_layout(size: int, tile: int, overlap: int, multiple: int = 1) -> tuple[int, list[int]]:
    """(side, starts) of the fewest tiles of side at most `tile` covering [0, size) with
    neighbours overlapping by at least `overlap`: the side shrunk to what that many tiles need
    (a multiple of `multiple`) and the starts spread evenly, so that no tile is spent on a
    sliver at the end (the network's time is proportional to the pixels it sees). One tile
    of side `size` when it fits."""
    if tile >= size:
        return size, [0]
    # in units of `multiple`: n units to cover with tiles of at most t units overlapping by o
    n, t, o = -(-size // multiple), tile // multiple, -(-overlap // multiple)
    count = -(-(n - o) // (t - o))
    side = -(-(n + (count - 1) * o) // count)  # count * side >= n + (count - 1) o: every gap <= side - o
    gaps = [(n - side) * (i + 1) // (count - 1) - (n - side) * i // (count - 1) for i in range(count - 1)]
    starts = [multiple * sum(gaps[:i]) for i in range(count - 1)]
    return side * multiple, starts + [size - side * multiple]


def ramp(length: int, start: int, size: int, overlap: int, dtype=torch.float32, device=None) -> Tensor:
    """Blending weights (length,) of a tile at `start` along an axis of `size`: rising over
    `overlap` pixels from each inner edge, 1 at an edge that is the photo's own border."""
    i = torch.arange(length, dtype=dtype, device=device)
    w = torch.ones(length, dtype=dtype, device=device)
    if overlap > 0 and start > 0:
        w = torch.minimum(w, (i + 1) / (overlap + 1))
    if overlap > 0 and start + length < size:
        w = torch.minimum(w, (length - i) / (overlap + 1))
    return w


def cuts_tiles(shape: tuple[int, int], tile: int) -> bool:
    """Whether `tiled` cuts an (H, W) image into tiles of side `tile` (0: never; a tile as
    large as the image: one call on the whole)."""
    return tile > 0 and (tile < shape[0] or tile < shape[1])


def tiled(fn, x: Tensor, tile: int, overlap: int, multiple: int = 1) -> Tensor:
    """fn(x) (B, C, H, W) -> (B, C', H, W), computed on overlapping tiles, one at a time (the
    network's time per pixel does not depend on how many go together), and blended (see the
    module docstring). Where `cuts_tiles` says no: one call of fn on the whole x."""
    h, w = x.shape[-2:]
    if not cuts_tiles((h, w), tile):
        return fn(x)
    (th, tops), (tw, lefts) = (tile_layout(n, tile, overlap, multiple) for n in (h, w))
    out = weight = None
    for top in tops:
        for left in lefts:
            result = fn(x[..., top:top + th, left:left + tw])
            if out is None:
                out = x.new_zeros(x.shape[0], result.shape[1], h, w, dtype=result.dtype)
                weight = x.new_zeros(1, 1, h, w, dtype=result.dtype)
            wy = ramp(th, top, h, overlap, result.dtype, x.device)
            wts = wy[:, None] * ramp(tw, left, w, overlap, result.dtype, x.device)[None, :]
            out[..., top:top + th, left:left + tw] += result * wts
            weight[..., top:top + th, left:left + tw] += wts
    return out / weight


def tiled_x0(prior: DiffusionPrior, x_t: Tensor, t: int, *, tile: int, overlap: int, autocast: bool = False) -> Tensor:
    """The prior's x0 estimate (float32) of x_t at chain index t over overlapping tiles."""
    # channels-last lets oneDNN's convolutions skip their layout reorders (2.2 -> 1.6 us per
    # pixel in bf16) but rounds differently; only when tiles are cut (large photos), so that a
    # whole-grid call equals prior.denoise exactly and small photos keep their measured numbers
    channels_last = cuts_tiles(x_t.shape[-2:], tile)

    def x0(part: Tensor) -> Tensor:
        if channels_last:
            part = part.contiguous(memory_format=torch.channels_last)
        with torch.autocast(part.device.type, dtype=torch.bfloat16, enabled=autocast):
            return prior.denoise(part, t).x0.float().contiguous()
    return tiled(x0, x_t, tile, overlap, prior.network.config.spatial_multiple)
