"""Kernel geometry: where a blur kernel's pixels sit relative to its origin.

One idea: a kernel (..., Kh, Kw) is a function on the integer grid whose ORIGIN is the pixel
c = (Kh // 2, Kw // 2), for odd and even sizes alike (the project's convention, see
`blinddps.physics.blur`: the blur is the true convolution y[n] = sum_m k[m] x[n - m + c]).
Everything here moves, pads, measures or re-centres kernels with respect to that origin:

    origin             the origin (Kh // 2, Kw // 2)
    delta_kernel       the unit impulse at the origin (the identity blur)
    flip_kernel        180-degree rotation (convolution <-> correlation)
    pad_kernel_to      zero-pad or crop to another size, the origin staying the origin
    embed_periodic     zero-pad to an image size with the origin rolled to index (0, 0)
    centre_of_mass     (row, col) centre of mass, absolute or relative to the origin
    shift_kernel       move by whole pixels, zero-filled or circular
    centre_kernel      whole-pixel shift putting the centre of mass on the origin
    center_kernel      the circular, round-half-to-even variant (``blinddps.physics``' API)
    cross_correlation  every shift's overlap of two kernels (FFT, no wrap)
    align_kernel       whole-pixel shift to the best overlap with a reference kernel

All functions are batch-first and vectorised: any leading dimensions (typically (B, 1)) are
treated as independent kernels, with no Python loop over them. Values are only moved, never
interpolated, so shifts, pads and crops are exact; everything is differentiable w.r.t. the
kernel values (index computations carry no gradient, as integer shifts have none).
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["origin", "delta_kernel", "flip_kernel", "pad_kernel_to", "embed_periodic", "centre_of_mass", "shift_kernel",
           "centre_kernel", "center_kernel", "cross_correlation", "align_kernel"]

ShiftMode = Literal["zeros", "circular"]
Rounding = Literal["half_up", "half_even"]


def origin(kernel: Tensor) -> tuple[int, int]:
    """The origin (Kh // 2, Kw // 2) of a (..., Kh, Kw) kernel."""
    kh, kw = kernel.shape[-2:]
    return kh // 2, kw // 2


def delta_kernel(size: int, *, leading: tuple[int, ...] = (), dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> Tensor:
    """(*leading, size, size) unit impulse at the origin (size // 2, size // 2): the identity blur."""
    k = torch.zeros(*leading, size, size, dtype=dtype, device=device)
    k[..., size // 2, size // 2] = 1
    return k


def flip_kernel(kernel: Tensor) -> Tensor:
    """Kernel rotated by 180 degrees (last two dims): turns convolution into correlation.

    (..., Kh, Kw) -> (..., Kh, Kw). For odd sizes the origin stays on the origin; for even
    sizes the flipped kernel's origin is at K - 1 - K // 2 (one pixel before K // 2).
    """
    return kernel.flip(-2, -1)


def pad_kernel_to(kernel: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Zero-pad (or crop) a (..., Kh, Kw) kernel to (..., Sh, Sw) keeping its origin.

    size: S or (Sh, Sw). The origin floor(K/2) lands on floor(S/2), so the blur is unchanged
    by padding: a 13x13 benchmark kernel padded to 64x64 gives the same image as the 13x13
    one. Cropping (S < K) drops the outer rows/columns around the origin; padding then
    cropping back to the original size is the identity.
    """
    sh, sw = (size, size) if isinstance(size, int) else size
    kh, kw = kernel.shape[-2:]
    top, left = sh // 2 - kh // 2, sw // 2 - kw // 2
    # F.pad with negative amounts crops, so one call covers both directions.
    return F.pad(kernel, (left, sw - kw - left, top, sh - kh - top))


def embed_periodic(kernel: Tensor, shape: tuple[int, int],
                   at: tuple[int, int] | None = None) -> Tensor:
    """Zero-pad a (..., Kh, Kw) kernel to (..., H, W) and roll pixel `at` to index (0, 0).

    `at` defaults to the origin (Kh // 2, Kw // 2): the layout of a circular convolution
    kernel (psf2otf before its FFT), so that ``irfft2(rfft2(x) * rfft2(embed_periodic(k,
    (H, W))))`` is the circular blur with k. Needs Kh <= H and Kw <= W.
    """
    h, w = shape
    kh, kw = kernel.shape[-2:]
    ay, ax = origin(kernel) if at is None else at
    return F.pad(kernel, (0, w - kw, 0, h - kh)).roll((-ay, -ax), dims=(-2, -1))


def centre_of_mass(kernel: Tensor, *, relative: bool = False, normalised: bool = False,
                   eps: float | None = None) -> Tensor:
    """Centre of mass (row, col) of each (..., Kh, Kw) kernel: (..., 2), in pixels.

    relative=False: absolute indices, rows in [0, Kh - 1], columns in [0, Kw - 1] for a
    non-negative kernel. relative=True: relative to the origin (Kh // 2, Kw // 2), so a
    kernel centred on its origin gives (0, 0); positive rows are below it, positive columns
    right of it.

    normalised=True skips the division by the mass: for kernels already summing to 1 the
    first moment IS the centre of mass (KernelCentring normalises with its own clamp first and
    differentiates through this, so it must not be divided a second time). Otherwise the
    first moment is divided by the mass clamped below at `eps` (default: the dtype's smallest
    normal number), so an all-zero kernel gives (0, 0) (absolute), not NaN. Differentiable.
    """
    kh, kw = kernel.shape[-2:]
    rows = torch.arange(kh, dtype=kernel.dtype, device=kernel.device)
    cols = torch.arange(kw, dtype=kernel.dtype, device=kernel.device)
    if relative:
        rows, cols = rows - kh // 2, cols - kw // 2
    cy = (kernel.sum(dim=-1) * rows).sum(dim=-1)
    cx = (kernel.sum(dim=-2) * cols).sum(dim=-1)
    if not normalised:
        mass = kernel.sum(dim=(-2, -1)).clamp_min(torch.finfo(kernel.dtype).tiny if eps is None else eps)
        cy, cx = cy / mass, cx / mass
    return torch.stack([cy, cx], dim=-1)


def shift_kernel(kernel: Tensor, shift: Tensor | tuple[int, int], mode: ShiftMode = "zeros") -> Tensor:
    """Move each kernel by whole pixels: out[..., r, c] = kernel[..., r - dy, c - dx].

    kernel (..., Kh, Kw). shift: integer (dy, dx), positive = down / right, of shape (2,) for
    all kernels alike, or batch-first (*P, 2) with P the first len(P) leading dims of the
    kernel (sizes 1 broadcast), e.g. (B, 2) for (B, 1, Kh, Kw) kernels (one shift per
    sample, shared by its channels) or (B, C, 2) for one per kernel. Shifts of any size are
    allowed (|s| >= K empties a zero-filled kernel; circular shifts wrap modulo K).

    mode="zeros": what leaves the support is lost and zeros enter (the metrics and Pan-L0
    centring: a shift on a canvas large enough, or a deliberate cut at the border).
    mode="circular": what leaves on one side re-enters on the other (mass is kept exactly,
    and shifting by s then -s is the identity; ``center_kernel``'s historical behaviour).
    """
    if mode not in ("zeros", "circular"):
        raise ValueError(f"mode must be 'zeros' or 'circular', got {mode!r}")
    shift = torch.as_tensor(shift, device=kernel.device)
    if shift.is_floating_point() or shift.is_complex() or shift.shape[-1:] != (2,):
        raise ValueError(f"shift must be integer (..., 2), got {shift.dtype} {tuple(shift.shape)}")
    lead, (kh, kw) = kernel.shape[:-2], kernel.shape[-2:]
    p = shift.dim() - 1
    if p > len(lead) or any(a not in (1, b) for a, b in zip(shift.shape[:-1], lead)):
        raise ValueError(f"shift {tuple(shift.shape)} does not match kernels {tuple(kernel.shape)}")
    shift = shift.reshape(*shift.shape[:-1], *(1,) * (len(lead) - p), 2).expand(*lead, 2).reshape(-1, 2)
    n = shift.shape[0]
    rows = torch.arange(kh, device=kernel.device).view(1, kh, 1) - shift[:, 0].view(n, 1, 1)
    cols = torch.arange(kw, device=kernel.device).view(1, 1, kw) - shift[:, 1].view(n, 1, 1)
    flat = kernel.reshape(n, kh * kw)
    if mode == "circular":
        index = ((rows % kh) * kw + cols % kw).view(n, -1)
        return torch.gather(flat, 1, index).view(kernel.shape)
    valid = (rows >= 0) & (rows < kh) & (cols >= 0) & (cols < kw)
    index = (rows.clamp(0, kh - 1) * kw + cols.clamp(0, kw - 1)).view(n, -1)
    # Multiplying by the mask (not torch.where) is the original metrics arithmetic: identical
    # for finite kernels, and a NaN/inf shifted out still poisons the result instead of hiding.
    return (torch.gather(flat, 1, index).view(n, kh, kw) * valid).view(kernel.shape)


def centre_kernel(kernel: Tensor, *, mode: ShiftMode = "zeros", rounding: Rounding = "half_up",
                  eps: float | None = None) -> Tensor:
    """Shift each (..., Kh, Kw) kernel by whole pixels so its centre of mass is the origin.

    Blind estimates are only defined up to a translation (a shifted kernel and an oppositely
    shifted image give the same blur); centring makes kernels comparable. The shift is
    origin - centre_of_mass(kernel, eps=eps), rounded to whole pixels, so afterwards the
    centre of mass is within 0.5 px of the origin in each direction (when nothing is cut).
    Same shape out; values are only moved (see `shift_kernel` for `mode`).

    rounding="half_up": floor(v + 0.5), which commutes with integer shifts of the kernel
    (the metrics' and Pan-L0's choice). rounding="half_even": torch.round, kept for
    `center_kernel` whose results must not change (they differ only at exact .5 ties).
    """
    kh, kw = kernel.shape[-2:]
    com = centre_of_mass(kernel, eps=eps)
    offset = torch.stack([kh // 2 - com[..., 0], kw // 2 - com[..., 1]], dim=-1)
    if rounding == "half_up":
        shift = torch.floor(offset + 0.5)
    elif rounding == "half_even":
        shift = offset.round()
    else:
        raise ValueError(f"rounding must be 'half_up' or 'half_even', got {rounding!r}")
    return shift_kernel(kernel, shift.long(), mode)


def center_kernel(kernel: Tensor) -> Tensor:
    """`centre_kernel` with circular shifts and round-half-to-even: ``blinddps.physics``'
    historical API, kept bit-for-bit. Circular, so no mass is ever lost: (..., Kh, Kw) in,
    same shape and sums out.
    """
    return centre_kernel(kernel, mode="circular", rounding="half_even")


def cross_correlation(a: Tensor, b: Tensor) -> Tensor:
    """c[s] = sum_n a[n + s] b[n] for every shift s at which a (..., Ka1, Ka2) and b (..., Kb1,
    Kb2) overlap (leading dims broadcast), by FFT of size Ka + Kb - 1 per axis so that no shift
    wraps; shift s sits at index s mod (Ka + Kb - 1). float64 (..., Ka1 + Kb1 - 1, Ka2 + Kb2 - 1)."""
    n1, n2 = a.shape[-2] + b.shape[-2] - 1, a.shape[-1] + b.shape[-1] - 1
    fa = torch.fft.rfft2(a.double(), s=(n1, n2))
    return torch.fft.irfft2(fa * torch.fft.rfft2(b.double(), s=(n1, n2)).conj(), s=(n1, n2))


def align_kernel(kernel: Tensor, reference: Tensor) -> Tensor:
    """Shift each kernel (..., K, K) by whole pixels (zero-filled) to where its cross-correlation
    with the reference (same shape, or broadcastable leading dims) peaks: two estimates of one
    blur, each defined only up to a translation, brought onto each other before they are
    compared or averaged. Shifts up to K - 1 px either way; values are only moved."""
    kh, kw = kernel.shape[-2:]
    corr = cross_correlation(reference, kernel)
    n1, n2 = corr.shape[-2:]
    corr = corr.expand(*torch.broadcast_shapes(reference.shape[:-2], kernel.shape[:-2]), n1, n2)
    peak = corr.flatten(-2).argmax(dim=-1)
    dy, dx = peak // n2, peak % n2
    dy = torch.where(dy < kh, dy, dy - n1)  # indices past K - 1 are negative shifts
    dx = torch.where(dx < kw, dx, dx - n2)
    return shift_kernel(kernel.expand(*corr.shape[:-2], kh, kw), torch.stack([dy, dx], dim=-1))
