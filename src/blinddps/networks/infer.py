"""Recover a UNetConfig from the keys and shapes of an ADM U-Net state dict.

The rule: infer only what the weights determine; where they leave a choice that changes the
network's outputs, take the paper's configuration when the shapes are exactly those of one
of its checkpoints (:data:`PUBLISHED`), and otherwise refuse (:class:`AmbiguousConfigError`)
rather than guess.

What the shapes fix: ``num_channels`` (time-embedding input), in/out channels (first conv,
head), ``learn_sigma`` (out = 2 * in), ``channel_mult`` (channels of each level's first
residual block), ``num_res_blocks`` (position of the first upsampler in the decoder),
``resblock_updown`` (upsampler is a ResBlock rather than a conv), ``use_scale_shift_norm``
(embedding projection of 2x the block's channels), the attention levels and middle attention.

What they leave open, and what is done about it:

- heads (``num_heads`` / ``num_head_channels``): the qkv shape is the same for every split of
  an attention layer's width, and the split changes the outputs (the golden networks read
  with a guessed split are off by 5-10%). Ambiguous when an attention layer (a level's or
  the middle one) exists whose width has more than one divisor, i.e. any width >= 2: then
  the published heads if the shapes are a published checkpoint's, else the caller's
  ``num_heads`` / ``num_head_channels``, else AmbiguousConfigError. Without attention there
  is nothing to split and the fields keep UNetConfig's defaults.
- ``image_size``: never in the weights (ADM has no positional embedding), and not part of
  the network's function: attention sits at the *levels* whose qkv keys exist, and
  ``attention_resolutions`` is written as ``image_size // 2 ** level`` for them, so any
  image size gives the same network. Hence never a reason to refuse: the published size
  for published shapes, else the caller's, else a nominal one (the size whose reference
  default ``channel_mult`` equals the inferred one, e.g. 256 for (1,1,2,2,4,4), else
  ``8 * 2 ** (levels - 1)``). Only defaults that read ``config.image_size`` (e.g. the sample
  size of ``blinddps sample``) see the nominal value.
- ``norm_groups``: 32, the reference architecture's only value (its GroupNorm32), whenever
  32 divides every level width, which every checkpoint of the reference code satisfies; else
  ``gcd(32, widths)``, the rule of :meth:`UNetConfig.small` (the reference cannot build such
  a network; this project's own write their config beside their weights).
- ``dropout`` (0), ``use_fp16`` and ``use_checkpoint`` (False): no trace in the weights, and
  none of them changes a float32 network's outputs in eval mode.
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


# The paper's checkpoints: their model YAMLs (golden/adm_manifest.json has their exact keys and
# shapes). Weights of exactly these shapes get these configs, heads and image size included.
PUBLISHED: dict[str, dict[str, Any]] = {
    "ffhq_10m.pt": dict(image_size=256, num_channels=128, num_res_blocks=1, channel_mult="",
                        learn_sigma=True, attention_resolutions="16", num_heads=4,
                        num_head_channels=64, use_scale_shift_norm=True, resblock_updown=True),
    "kernel_checkpoint.pt": dict(image_size=64, num_channels=64, num_res_blocks=1, channel_mult="",
                                 learn_sigma=True, attention_resolutions="16", num_heads=4,
                                 num_head_channels=64, use_scale_shift_norm=True,
                                 resblock_updown=True, grayscale=True),
    "tilt_checkpoint.pt": dict(image_size=256, num_channels=64, num_res_blocks=1, channel_mult="",
                               learn_sigma=True, attention_resolutions="16", num_heads=4,
                               num_head_channels=64, use_scale_shift_norm=True,
                               resblock_updown=True, twochan=True),
}
HEAD_KEYS = ("num_heads", "num_head_channels")


class AmbiguousConfigError(ValueError):
    """The weights leave open a config field that changes the network's outputs.

    ``missing``: the config keys that would settle it (any one of them suffices).
    """

    def __init__(self, message: str, missing: tuple[str, ...]):
        super().__init__(message)
        self.missing = missing


def _signature(cfg: UNetConfig) -> tuple:
    """What the shapes determine: configs with equal signatures build the same keys and shapes."""
    return (cfg.num_channels, cfg.num_res_blocks, tuple(cfg.channel_mult), cfg.in_channels,
            cfg.out_channels, cfg.use_scale_shift_norm, cfg.resblock_updown,
            tuple(sorted(set(cfg.attention_ds))), cfg.middle_attention)


def published_name(cfg: UNetConfig) -> str | None:
    """The published checkpoint whose shapes ``cfg`` builds, else None."""
    return next((name for name, published in PUBLISHED.items()
                 if _signature(UNetConfig.from_dict(published)) == _signature(cfg)), None)


def _nominal_image_size(channel_mult: tuple[float, ...]) -> int:
    for size, default in DEFAULT_CHANNEL_MULT.items():
        if tuple(default) == channel_mult:
            return size
    return 8 * 2 ** (len(channel_mult) - 1)


def _heads(attn_widths: Sequence[int], num_heads: int | None, num_head_channels: int | None,
           published: str | None) -> tuple[int, int]:
    """(num_heads, num_head_channels): the caller's, else the published ones, else refuse."""
    if num_head_channels is not None:
        return (num_heads or 4), num_head_channels
    if num_heads is not None:
        return num_heads, -1
    if published is not None:
        return PUBLISHED[published]["num_heads"], PUBLISHED[published]["num_head_channels"]
    if any(w >= 2 for w in attn_widths):  # a width w >= 2 splits into 1 or w heads at least
        raise AmbiguousConfigError(
            f"the weights do not fix the attention heads (num_heads or num_head_channels; "
            f"attention widths {sorted(set(attn_widths))}) and their shapes are not those of a "
            f"published checkpoint ({', '.join(PUBLISHED)})", HEAD_KEYS)
    return 1, -1  # no attention layer: nothing to split; UNetConfig's defaults


def _read_shapes(shapes: Shapes) -> tuple[dict[str, Any], list[int], list[int]]:
    """(UNetConfig fields the shapes fix, level widths, attention levels)."""
    mc = _get(shapes, "time_embed.0.weight")[1]
    in_ch = _get(shapes, "input_blocks.0.0.weight")[1]
    out_ch = _get(shapes, "out.2.weight")[0]
    levels, nrb, updown = _layout(shapes)
    first_blocks = [1 + level * (nrb + 1) for level in range(levels)]
    widths = [_get(shapes, f"input_blocks.{b}.0.out_layers.3.weight")[0] for b in first_blocks]
    attn_levels = [lv for lv, b in enumerate(first_blocks)
                   if f"input_blocks.{b}.1.qkv.weight" in shapes]
    emb_out = _get(shapes, "input_blocks.1.0.emb_layers.1.weight")[0]
    fields = dict(
        num_channels=mc, num_res_blocks=nrb, channel_mult=tuple(_as_number(w / mc) for w in widths),
        learn_sigma=out_ch == 2 * in_ch, use_scale_shift_norm=emb_out == 2 * widths[0],
        resblock_updown=updown, grayscale=in_ch == 1, twochan=in_ch == 2, in_channels=in_ch,
        out_channels=out_ch, middle_attention="middle_block.1.qkv.weight" in shapes)
    return fields, widths, attn_levels


def infer_config(state: Mapping[str, Any], *, image_size: int | None = None,
                 num_heads: int | None = None, num_head_channels: int | None = None,
                 norm_groups: int | None = None) -> UNetConfig:
    """The UNetConfig of an ADM U-Net state dict (tensors, or key -> shape).

    The keyword arguments settle what the shapes leave open (they win over the published
    values). Raises AmbiguousConfigError when the heads are open (see the module
    docstring), ValueError when the keys do not follow the ADM U-Net layout.
    """
    fields, widths, attn_levels = _read_shapes(_shapes(state))
    # The shapes alone, at a nominal size and heads: enough to compare with the published ones.
    size = _nominal_image_size(fields["channel_mult"])
    shaped = UNetConfig(image_size=size, attention_resolutions=[size // 2 ** lv for lv in attn_levels],
                        num_head_channels=1, **fields)
    published = published_name(shaped)
    size = image_size or (PUBLISHED[published]["image_size"] if published else size)
    attn_widths = [widths[lv] for lv in attn_levels] + ([widths[-1]] if fields["middle_attention"] else [])
    heads, head_ch = _heads(attn_widths, num_heads, num_head_channels, published)
    groups = norm_groups or (32 if all(w % 32 == 0 for w in widths) else math.gcd(32, *widths))
    return UNetConfig(image_size=size, attention_resolutions=tuple(size // 2 ** lv for lv in attn_levels),
                      num_heads=heads, num_head_channels=head_ch, norm_groups=groups, **fields)
