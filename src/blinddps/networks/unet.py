"""ADMUNet: the ablated-diffusion-model U-Net of the paper's image, kernel and tilt priors.

Layout (state-dict prefixes in brackets): a time-embedding MLP [time_embed]; an encoder
[input_blocks] of ``num_res_blocks`` residual blocks per level (+ attention at the chosen
levels) and one downsampler between levels; a middle block [middle_block] of
ResBlock, attention, ResBlock; a decoder [output_blocks] of ``num_res_blocks + 1``
residual blocks per level, each fed the concatenation with the matching encoder output,
with one upsampler per level; and a head [out] of norm, SiLU, 3x3 conv.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .config import UNetConfig
from .layers import (AttentionBlock, Downsample, ResBlock, TimestepSequential, Upsample,
                     normalization, timestep_embedding, zero_module)


class ADMUNet(nn.Module):
    """Noise-prediction U-Net, state-dict compatible with the paper's published checkpoints.

    Args:
        config: the architecture.
        zero_init: zero the last conv of every residual branch, of every attention block
            and of the head, as the reference does for training. A fresh network then
            outputs exactly zero; pass False for random (non-zero) test networks.

    ``forward(x, t)``: x (B, in_channels, H, W) in [-1, 1], with H and W multiples of
    ``config.spatial_multiple`` (they need not equal ``image_size``); t the original
    timesteps, (B,) int or float, or one value for the whole batch. Returns
    (B, out_channels, H, W): epsilon, followed by the variance values (in [-1, 1] for
    the learned range) when ``learn_sigma``.
    """

    def __init__(self, config: UNetConfig, *, zero_init: bool = True):
        super().__init__()
        self.config = config
        mc = config.num_channels
        self.time_embed = nn.Sequential(nn.Linear(mc, 4 * mc), nn.SiLU(), nn.Linear(4 * mc, 4 * mc))
        skip_channels = self._build_encoder(zero_init)
        self._build_middle(zero_init)
        self._build_decoder(skip_channels, zero_init)
        head_ch = config.level_channels[0]
        self.out = nn.Sequential(
            normalization(head_ch, config.norm_groups), nn.SiLU(),
            zero_module(nn.Conv2d(head_ch, config.out_channels, 3, padding=1), zero_init))

    # ------------------------------------------------------------------ building
    def _resblock(self, ch: int, out: int, zero_init: bool, **updown: bool) -> ResBlock:
        cfg = self.config
        return ResBlock(ch, 4 * cfg.num_channels, out, dropout=cfg.dropout,
                        use_scale_shift_norm=cfg.use_scale_shift_norm, groups=cfg.norm_groups,
                        zero_init=zero_init, **updown)

    def _attention(self, ch: int, upsample: bool, zero_init: bool) -> AttentionBlock:
        heads = self.config.heads_for(ch, upsample=upsample)
        return AttentionBlock(ch, heads, groups=self.config.norm_groups, zero_init=zero_init)

    def _build_encoder(self, zero_init: bool) -> list[int]:
        """Creates ``input_blocks``; returns the channels of each block's output (skips)."""
        cfg = self.config
        ch = cfg.level_channels[0]
        self.input_blocks = nn.ModuleList(
            [TimestepSequential(nn.Conv2d(cfg.in_channels, ch, 3, padding=1))])
        skips = [ch]
        for level, (ds, level_ch) in enumerate(zip(cfg.level_ds, cfg.level_channels)):
            for _ in range(cfg.num_res_blocks):
                layers: list[nn.Module] = [self._resblock(ch, level_ch, zero_init)]
                ch = level_ch
                if ds in cfg.attention_ds:
                    layers.append(self._attention(ch, False, zero_init))
                self.input_blocks.append(TimestepSequential(*layers))
                skips.append(ch)
            if level != cfg.num_levels - 1:
                down = (self._resblock(ch, ch, zero_init, down=True) if cfg.resblock_updown
                        else Downsample(ch, use_conv=True))
                self.input_blocks.append(TimestepSequential(down))
                skips.append(ch)
        return skips

    def _build_middle(self, zero_init: bool) -> None:
        ch = self.config.level_channels[-1]
        layers: list[nn.Module] = [self._resblock(ch, ch, zero_init)]
        if self.config.middle_attention:
            layers.append(self._attention(ch, False, zero_init))
        layers.append(self._resblock(ch, ch, zero_init))
        self.middle_block = TimestepSequential(*layers)

    def _build_decoder(self, skips: list[int], zero_init: bool) -> None:
        cfg = self.config
        ch = cfg.level_channels[-1]
        self.output_blocks = nn.ModuleList()
        for level in reversed(range(cfg.num_levels)):
            level_ch = cfg.level_channels[level]
            for i in range(cfg.num_res_blocks + 1):
                layers: list[nn.Module] = [self._resblock(ch + skips.pop(), level_ch, zero_init)]
                ch = level_ch
                if cfg.level_ds[level] in cfg.attention_ds:
                    layers.append(self._attention(ch, True, zero_init))
                if level and i == cfg.num_res_blocks:
                    layers.append(self._resblock(ch, ch, zero_init, up=True) if cfg.resblock_updown
                                  else Upsample(ch, use_conv=True))
                self.output_blocks.append(TimestepSequential(*layers))

    # ------------------------------------------------------------------ running
    def forward(self, x: Tensor, t: Tensor | float | int) -> Tensor:
        """(B, C_in, H, W) in [-1, 1], timesteps -> (B, C_out, H, W) (eps [, variance values])."""
        self._check_input(x)
        t = self._broadcast_timesteps(t, x)
        emb = self.time_embed(
            timestep_embedding(t, self.config.num_channels).to(self.time_embed[0].weight.dtype))
        h = x.to(self.input_blocks[0][0].weight.dtype)  # fp16 blocks after convert_to_fp16
        skips = []
        for block in self.input_blocks:
            h = self._run(block, h, emb)
            skips.append(h)
        h = self._run(self.middle_block, h, emb)
        for block in self.output_blocks:
            h = self._run(block, torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h.to(self.out[-1].weight.dtype))

    def _run(self, block: TimestepSequential, h: Tensor, emb: Tensor) -> Tensor:
        # Gradient checkpointing trades compute for memory when backpropagating through
        # the network (training, or the DPS gradient w.r.t. x_t on large images).
        if self.config.use_checkpoint and torch.is_grad_enabled():
            return checkpoint(block, h, emb, use_reentrant=False)
        return block(h, emb)

    def _check_input(self, x: Tensor) -> None:
        cfg = self.config
        if x.ndim != 4 or x.shape[1] != cfg.in_channels:
            raise ValueError(f"expected x of shape (B, {cfg.in_channels}, H, W), got {tuple(x.shape)}")
        m = cfg.spatial_multiple
        if x.shape[-2] % m or x.shape[-1] % m:
            raise ValueError(f"H and W must be multiples of {m} ({cfg.num_levels} levels), "
                             f"got {tuple(x.shape[-2:])}")

    @staticmethod
    def _broadcast_timesteps(t: Tensor | float | int, x: Tensor) -> Tensor:
        t = torch.as_tensor(t, device=x.device)
        if t.ndim == 0 or t.numel() == 1:
            return t.reshape(1).expand(x.shape[0])
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must be a scalar or of shape ({x.shape[0]},), got {tuple(t.shape)}")
        return t

    # ------------------------------------------------------------------ precision
    def _block_convs(self) -> Iterator[nn.Module]:
        for part in (self.input_blocks, self.middle_block, self.output_blocks):
            yield from (m for m in part.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d)))

    def convert_to_fp16(self) -> ADMUNet:
        """Run the U-Net body's convolutions in float16, as the reference's ``use_fp16``.

        The time embedding, the norms (computed in float32 anyway), the linear layers and
        the head stay in float32; the output is float32. Meant for CUDA.
        """
        for conv in self._block_convs():
            conv.half()
        return self

    def convert_to_fp32(self) -> ADMUNet:
        """Undo :meth:`convert_to_fp16`."""
        for conv in self._block_convs():
            conv.float()
        return self
