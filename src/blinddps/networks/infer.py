"""Recover a UNetConfig from the keys and shapes of an ADM U-Net state dict.

What the shapes fix: ``num_channels`` (time-embedding input), in/out channels (first conv,
head), ``learn_sigma`` (out = 2 * in), ``channel_mult`` (channels of each level's first
residual block), ``num_res_blocks`` (position of the first upsampler in the decoder),
``resblock_updown`` (upsampler is a ResBlock rather than a conv), ``use_scale_shift_norm``
(embedding projection of 2x the block's channels), the attention levels and middle attention.

What they cannot fix, and the assumptions made (override with keyword arguments):

- ``image_size``: only the attention *resolutions* depend on it (the network itself does
  not). Guess: the size whose reference default ``channel_mult`` equals the inferred one
  (256 for (1,1,2,2,4,4), 64 for (1,2,3,4), ...), else ``8 * 2 ** (levels - 1)`` (an 8x8
  bottom level, as in every reference default but 32).
- heads: the qkv shape is the same for any head count. Default: the paper's
  ``num_head_channels=64`` when every attention layer's width is divisible by 64, else
  ``num_heads=4`` (1 when 4 does not divide).
- ``norm_groups``: 32 (the reference) when it divides every level width, else their gcd.
- ``dropout`` (0), ``use_fp16`` and ``use_checkpoint`` (False): no trace in the weights.
- Downsamplers are assumed to be convolutions (the reference always uses them).
"""
from __future__ import annotations

import math
import re
from typing import Any, Mapping, Sequence

from .config import DEFAULT_CHANNEL_MULT, UNetConfig, _as_number

Shapes = dict[str, tuple[int, ...]]


def _shapes(state: Mapping[str, Any]) -> Shapes:
    """Key -> shape from tensors or from (key -> shape) lists such as the golden manifest."""
    return {k: tuple(v.shape) if hasattr(v, "shape") else tuple(v) for k, v in state.items()}


def _get(shapes: Shapes, key: str) -> tuple[int, ...]:
    if key not in shapes:
        raise ValueError(f"state dict has no '{key}': it is not an ADM U-Net of the expected layout")
    return shapes[key]


def _block_indices(shapes: Shapes, prefix: str) -> list[int]:
    pattern = re.compile(rf"^{prefix}\.(\d+)\.")
    return sorted({int(m.group(1)) for k in shapes if (m := pattern.match(k))})


def _upsampler_kind(shapes: Shapes, block: int) -> str | None:
    """'resblock' / 'conv' when decoder block ``block`` ends with an upsampler, else None."""
    for sub in range(1, 3):
        prefix = f"output_blocks.{block}.{sub}."
        if prefix + "conv.weight" in shapes:
            return "conv"
        if prefix + "in_layers.2.weight" in shapes:
            return "resblock"
    return None


def _layout(shapes: Shapes) -> tuple[int, int, bool]:
    """(levels, num_res_blocks, resblock_updown) from the encoder / decoder block counts."""
    n_in = len(_block_indices(shapes, "input_blocks"))
    n_out = len(_block_indices(shapes, "output_blocks"))
    kinds = [_upsampler_kind(shapes, i) for i in range(n_out)]
    ups = [i for i, kind in enumerate(kinds) if kind]
    # The first level of the decoder has num_res_blocks + 1 blocks, the last one upsampling.
    num_res_blocks = ups[0] if ups else n_out - 1
    levels = n_out // (num_res_blocks + 1) if num_res_blocks >= 1 else 0
    if num_res_blocks < 1 or n_out != levels * (num_res_blocks + 1) or n_in != n_out:
        raise ValueError(f"cannot read the U-Net layout: {n_in} encoder and {n_out} decoder "
                         f"blocks, upsamplers at {ups}")
    return levels, num_res_blocks, bool(ups) and kinds[ups[0]] == "resblock"


def _guess_image_size(channel_mult: tuple[float, ...]) -> int:
    for size, default in DEFAULT_CHANNEL_MULT.items():
        if tuple(default) == channel_mult:
            return size
    return 8 * 2 ** (len(channel_mult) - 1)


def _heads(widths: Sequence[int], num_heads: int | None,
           num_head_channels: int | None) -> tuple[int, int]:
    """(num_heads, num_head_channels) for the attention layers of the given widths."""
    if num_head_channels is not None:
        return (num_heads or 4), num_head_channels
    if num_heads is not None:
        return num_heads, -1
    if all(w % 64 == 0 for w in widths):
        return 4, 64
    return (4 if all(w % 4 == 0 for w in widths) else 1), -1


def infer_config(state: Mapping[str, Any], *, image_size: int | None = None,
                 num_heads: int | None = None, num_head_channels: int | None = None,
                 norm_groups: int | None = None) -> UNetConfig:
    """The UNetConfig of an ADM U-Net state dict (tensors, or key -> shape).

    Raises ValueError when the keys do not follow the ADM U-Net layout. See the module
    docstring for what is assumed rather than read.
    """
    shapes = _shapes(state)
    mc = _get(shapes, "time_embed.0.weight")[1]
    in_ch = _get(shapes, "input_blocks.0.0.weight")[1]
    out_ch = _get(shapes, "out.2.weight")[0]
    levels, nrb, updown = _layout(shapes)
    first_blocks = [1 + level * (nrb + 1) for level in range(levels)]
    widths = [_get(shapes, f"input_blocks.{b}.0.out_layers.3.weight")[0] for b in first_blocks]
    mult = tuple(_as_number(w / mc) for w in widths)
    size = image_size or _guess_image_size(mult)
    attn_levels = [lv for lv, b in enumerate(first_blocks) if f"input_blocks.{b}.1.qkv.weight" in shapes]
    middle = "middle_block.1.qkv.weight" in shapes
    heads, head_ch = _heads([widths[lv] for lv in attn_levels] + ([widths[-1]] if middle else []),
                            num_heads, num_head_channels)
    emb_out = _get(shapes, "input_blocks.1.0.emb_layers.1.weight")[0]
    groups = norm_groups or (32 if all(w % 32 == 0 for w in widths) else math.gcd(32, *widths))
    return UNetConfig(
        image_size=size, num_channels=mc, num_res_blocks=nrb, channel_mult=mult,
        learn_sigma=out_ch == 2 * in_ch,
        attention_resolutions=tuple(size // 2 ** lv for lv in attn_levels),
        num_heads=heads, num_head_channels=head_ch, use_scale_shift_norm=emb_out == 2 * widths[0],
        resblock_updown=updown, grayscale=in_ch == 1, twochan=in_ch == 2,
        in_channels=in_ch, out_channels=out_ch, middle_attention=middle, norm_groups=groups)
