"""Building blocks of the ADM U-Net: time embedding, residual blocks, attention, resampling.

Attribute names and the order of layers inside each ``nn.Sequential`` are part of the
checkpoint format: they fix the state-dict keys of the published checkpoints
(e.g. ``in_layers.2`` is the first convolution, ``out_layers.3`` the second).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of timesteps.

    Args:
        t: (B,) timesteps (original indices 0..T-1, int or float; fractions allowed).
        dim: embedding width.
    Returns:
        (B, dim) float32: cosines then sines of ``t * max_period ** (-i / half)``,
        zero-padded to ``dim`` when it is odd.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period)
                      * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32 whatever the activation dtype (stable under fp16)."""

    def forward(self, x: Tensor) -> Tensor:
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        out = F.group_norm(x.float(), self.num_groups, weight, bias, self.eps)
        return out.to(x.dtype)


def normalization(channels: int, groups: int) -> GroupNorm32:
    """The U-Net's normalisation layer; a clear error when ``groups`` does not divide."""
    if channels % groups:
        raise ValueError(f"GroupNorm with {groups} groups needs a channel count divisible by "
                         f"it, got {channels}: choose num_channels / norm_groups to fit")
    return GroupNorm32(groups, channels)


def zero_module(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Zero the parameters: residual branches then start as the identity (as in ADM)."""
    if enabled:
        for p in module.parameters():
            nn.init.zeros_(p)
    return module


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 conv when ``use_conv``. (B, C, H, W) -> (B, C', 2H, 2W)."""

    def __init__(self, channels: int, use_conv: bool, out_channels: int | None = None):
        super().__init__()
        self.use_conv = use_conv
        if use_conv:
            self.conv = nn.Conv2d(channels, out_channels or channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x) if self.use_conv else x


class Downsample(nn.Module):
    """Strided 3x3 conv when ``use_conv``, else 2x2 average pooling. (B, C, H, W) -> (B, C', H/2, W/2)."""

    def __init__(self, channels: int, use_conv: bool, out_channels: int | None = None):
        super().__init__()
        if use_conv:
            self.op: nn.Module = nn.Conv2d(channels, out_channels or channels, 3,
                                           stride=2, padding=1)
        else:
            self.op = nn.AvgPool2d(kernel_size=2, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)


class ResBlock(nn.Module):
    """Residual block conditioned on the time embedding, optionally resampling.

    h = conv(act(norm(x))); the embedding enters either as a bias (h + e) or, with
    ``use_scale_shift_norm``, as norm(h) * (1 + scale) + shift; then act, dropout, conv.
    With ``up``/``down`` both branches are resampled (without parameters) before the
    first conv, which lets the published checkpoints change resolution inside the block.
    """

    def __init__(self, channels: int, emb_channels: int, out_channels: int, *,
                 dropout: float, use_scale_shift_norm: bool, groups: int,
                 up: bool = False, down: bool = False, zero_init: bool = True):
        super().__init__()
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(
            normalization(channels, groups), nn.SiLU(),
            nn.Conv2d(channels, out_channels, 3, padding=1))
        self.updown = up or down
        if up:
            self.h_upd, self.x_upd = Upsample(channels, False), Upsample(channels, False)
        elif down:
            self.h_upd, self.x_upd = Downsample(channels, False), Downsample(channels, False)
        emb_out = 2 * out_channels if use_scale_shift_norm else out_channels
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, emb_out))
        self.out_layers = nn.Sequential(
            normalization(out_channels, groups), nn.SiLU(), nn.Dropout(p=dropout),
            zero_module(nn.Conv2d(out_channels, out_channels, 3, padding=1), zero_init))
        self.skip_connection: nn.Module = (
            nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1))

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        """x: (B, C, H, W); emb: (B, E) -> (B, C_out, H', W')."""
        if self.updown:
            h = self.in_layers[:-1](x)
            h, x = self.h_upd(h), self.x_upd(x)
            h = self.in_layers[-1](h)
        else:
            h = self.in_layers(x)
        emb_out = self.emb_layers(emb).to(h.dtype)[..., None, None]
        if self.use_scale_shift_norm:
            scale, shift = emb_out.chunk(2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[1:](h)
        else:
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Multi-head self-attention over all spatial positions, legacy QKV ordering.

    ``qkv`` is one 1x1 conv to 3C channels; the output is viewed as (B * heads, 3 * C/heads, N)
    and split into q, k, v chunks of C/heads channels each, per head (the layout of the
    published checkpoints). Residual: x + proj_out(attention).
    """

    def __init__(self, channels: int, num_heads: int, *, groups: int, zero_init: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.norm = normalization(channels, groups)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = zero_module(nn.Conv1d(channels, channels, 1), zero_init)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        b, c, *spatial = x.shape
        flat = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(flat))
        head_ch = c // self.num_heads
        q, k, v = qkv.reshape(b * self.num_heads, 3 * head_ch, -1).split(head_ch, dim=1)
        # SDPA computes softmax(q k^T / sqrt(d)) v like the reference, with fused
        # memory-saving kernels on GPU; it wants (batch, tokens, channels).
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                             v.transpose(1, 2))
        out = out.transpose(1, 2).reshape(b, c, -1)
        return (flat + self.proj_out(out)).reshape(b, c, *spatial)


class TimestepSequential(nn.Sequential):
    """A Sequential that hands the time embedding to the residual blocks it holds."""

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x
