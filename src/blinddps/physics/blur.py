"""Spatially invariant blur: y = k * x, a true 2-D convolution with origin floor(K/2).

Convention (BLINDDPS.md section 3, golden/README.md):

    y[n] = sum_m k[m] x[n - m + c],    c = (Kh // 2, Kw // 2),

for odd and even kernel sizes alike. The paper's released code computes, per channel,
``F.conv2d(x, k, padding='same')``: a cross-correlation, which equals this convolution with
the *flipped* kernel. So ``Blur()(x, kernel=flip_kernel(k_ref))`` reproduces the released code
with kernel ``k_ref``, and ``Blur("circular")(x, kernel=k)`` reproduces
``scipy.signal.convolve2d(x, k, mode='same', boundary='wrap')`` (the Levin benchmark files)
for odd K; for even K scipy's 'same' puts the origin at K/2 - 1, one pixel off ours.

Shapes: images (B, C, H, W), kernels (B or 1, C or 1, Kh, Kw); batch and channel dimensions
broadcast. Kernels are expected non-negative and summing to 1 (not enforced: the solver
passes whatever its current estimate is, and the operator is linear in the kernel anyway).
Everything is differentiable with respect to the image and the kernel.
"""
from __future__ import annotations

import functools
from typing import Literal

import torch
import torch.nn.functional as F

# Kernel geometry (flip, pad, centre, ...) lives in .kernel_geometry; pad_kernel_to and
# center_kernel stay importable from here, where they were defined before.
from .kernel_geometry import center_kernel, embed_periodic, flip_kernel, pad_kernel_to  # noqa: F401

Padding = Literal["zeros", "circular", "reflect", "replicate", "valid"]
Method = Literal["auto", "direct", "fft"]

PADDINGS: tuple[str, ...] = ("zeros", "circular", "reflect", "replicate", "valid")
METHODS: tuple[str, ...] = ("auto", "direct", "fft")

# Smallest kernel side for which method="auto" uses the FFT. Measured on one CPU core
# (torch 2.13, float32, 1x3x256x256 image, zeros padding, best of 7, a shared machine):
#   K                      3     7     9    13    21    31    64
#   direct forward (ms)   2.1   3.0   5.1   7.2  12.9  25.6  98.5
#   fft forward (ms)      6.3   7.4   6.9   4.6   3.9   2.7   4.9
#   direct fwd+bwd (ms)  13.3  27.6  43.2  68.9   176   246  1148
#   fft fwd+bwd (ms)     19.6  20.5  19.8  14.0  14.0   9.8  15.3
# The solver always differentiates through the blur (w.r.t. image and kernel), and there
# the FFT wins from K ~ 7-9 on (the grouped-conv weight gradient is slow); forward-only
# the crossover is K ~ 11-13. We pick 9.
FFT_MIN_KERNEL_SIZE = 9

_TORCH_PAD_MODE = {"zeros": "constant", "circular": "circular", "reflect": "reflect",
                   "replicate": "replicate"}


# ----------------------------------------------------------------------------- helpers

def _broadcast(x: torch.Tensor, kernel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Broadcast batch and channel dims of x (B, C, H, W) and kernel (b, c, Kh, Kw)."""
    if x.dim() != 4:
        raise ValueError(f"image must be (B, C, H, W), got shape {tuple(x.shape)}")
    if kernel.dim() == 2:
        kernel = kernel[None, None]
    if kernel.dim() != 4:
        raise ValueError(f"kernel must be (B, C, Kh, Kw) or (Kh, Kw), got {tuple(kernel.shape)}")
    b, c = torch.broadcast_shapes(x.shape[:2], kernel.shape[:2])
    x = x.expand(b, c, *x.shape[-2:])
    kernel = kernel.to(x.dtype).expand(b, c, *kernel.shape[-2:])
    return x, kernel


def fast_fft_size(n: int) -> int:
    """Smallest m >= n whose prime factors are 2, 3 and 5 (fast FFT lengths)."""
    m = n
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


# ------------------------------------------------------------------ valid convolution core

def _valid_conv_direct(xp: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """out[n] = sum_m k[m] xp[n + K - 1 - m]: 'valid' true convolution via grouped conv2d.

    Batch and channels are folded into conv groups, so each (sample, channel) pair gets
    its own kernel in one call.
    """
    b, c, h, w = xp.shape
    weight = flip_kernel(kernel).reshape(b * c, 1, *kernel.shape[-2:])
    out = F.conv2d(xp.reshape(1, b * c, h, w), weight, groups=b * c)
    return out.reshape(b, c, *out.shape[-2:])


def _fft_precision(conv):
    """Run an FFT convolution in float32 for half inputs (cuFFT/pocketfft take half
    precision only for power-of-two sizes, and its rounding would be poor anyway)."""
    @functools.wraps(conv)
    def wrapped(x: torch.Tensor, kernel: torch.Tensor, *args) -> torch.Tensor:
        if x.dtype in (torch.float16, torch.bfloat16):
            return conv(x.float(), kernel.float(), *args).to(x.dtype)
        return conv(x, kernel, *args)
    return wrapped


@_fft_precision
def _valid_conv_fft(xp: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Same as _valid_conv_direct via rfft2: a cyclic convolution of length >= the padded
    input size has no wrap-around on the kept 'valid' part."""
    h, w = xp.shape[-2:]
    kh, kw = kernel.shape[-2:]
    size = (fast_fft_size(h), fast_fft_size(w))
    spectrum = torch.fft.rfft2(xp, s=size) * torch.fft.rfft2(kernel, s=size)
    out = torch.fft.irfft2(spectrum, s=size)
    return out[..., kh - 1:h, kw - 1:w]


@_fft_precision
def _circular_conv_fft(x: torch.Tensor, kernel: torch.Tensor,
                       shift: tuple[int, int]) -> torch.Tensor:
    """out[n] = sum_m k[m] x[(n - m + shift) mod (H, W)] via rfft2 at the image size."""
    h, w = x.shape[-2:]
    # Embed the kernel with its pixel `shift` moved to index 0 (wrapping around).
    kp = embed_periodic(kernel, (h, w), at=shift)
    spectrum = torch.fft.rfft2(x) * torch.fft.rfft2(kp)
    return torch.fft.irfft2(spectrum, s=(h, w))


def _padded_conv(x: torch.Tensor, kernel: torch.Tensor, pads: tuple[int, int, int, int],
                 mode: str, use_fft: bool) -> torch.Tensor:
    """Pad x by pads = (top, bottom, left, right) with `mode`, then 'valid' convolve.

    With top + bottom = Kh - 1 (same for width) the output has the input's size and
    out[n] = sum_m k[m] x_padded[n - m + (top, left)] (indices in the unpadded frame).
    """
    top, bottom, left, right = pads
    kh, kw = kernel.shape[-2:]
    if mode == "circular":
        h, w = x.shape[-2:]
        if kh > h or kw > w:
            raise ValueError(f"circular padding needs kernel {kh}x{kw} <= image {h}x{w}")
        if use_fft and top + bottom == kh - 1 and left + right == kw - 1:
            return _circular_conv_fft(x, kernel, (kh - 1 - top, kw - 1 - left))
    if any(pads):
        x = F.pad(x, (left, right, top, bottom), mode=_TORCH_PAD_MODE[mode])
    return _valid_conv_fft(x, kernel) if use_fft else _valid_conv_direct(x, kernel)


# ------------------------------------------------------------------------------ operator

class Blur:
    """Blur operator A_k(x) = k * x with a chosen border handling (paper eq. y = k * x + n).

    Args:
        padding: how the image is extended beyond its borders: "zeros" (the paper's code),
            "circular" (periodic; the Levin benchmark files, cheapest with FFT), "reflect"
            (mirror without repeating the edge pixel), "replicate", or "valid" (no
            extension: output is (H - Kh + 1, W - Kw + 1), the physically exact model of a
            camera whose sensor sees a larger scene).
        method: "direct" (grouped conv2d), "fft" (torch.fft.rfft2) or "auto" (FFT when the
            larger kernel side is >= FFT_MIN_KERNEL_SIZE). Both give the same result up to
            float rounding (about 1e-6 relative in float32).

    Call: ``blur(x, kernel=k)``: x (B, C, H, W) any range, k (B or 1, C or 1, Kh, Kw),
    returns (B', C', H, W) with B', C' the broadcast sizes (smaller for "valid").
    The image is never modified in place; gradients flow to both x and k.
    """

    def __init__(self, padding: Padding = "zeros", method: Method = "auto") -> None:
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.padding = padding
        self.method = method

    def __repr__(self) -> str:
        return f"Blur(padding={self.padding!r}, method={self.method!r})"

    def _use_fft(self, kernel: torch.Tensor) -> bool:
        if self.method == "auto":
            return max(kernel.shape[-2:]) >= FFT_MIN_KERNEL_SIZE
        return self.method == "fft"

    def __call__(self, x: torch.Tensor, *, kernel: torch.Tensor) -> torch.Tensor:
        x, kernel = _broadcast(x, kernel)
        kh, kw = kernel.shape[-2:]
        if self.padding == "valid":
            return _padded_conv(x, kernel, (0, 0, 0, 0), "zeros", self._use_fft(kernel))
        # Origin c = K // 2: x[n - m + c] needs K - 1 - c samples above/left, c below/right.
        pads = (kh - 1 - kh // 2, kh // 2, kw - 1 - kw // 2, kw // 2)
        return _padded_conv(x, kernel, pads, self.padding, self._use_fft(kernel))

    def adjoint(self, y: torch.Tensor, *, kernel: torch.Tensor) -> torch.Tensor:
        """A_k^T y: the exact adjoint of x -> A_k(x), so <A x, y> = <x, A^T y>.

        Zeros and circular: a correlation with k, i.e. convolution with flip(k) at origin
        K - 1 - c, with the same border. Valid: the 'full' correlation (zero-pad by K - 1),
        output (H + Kh - 1, W + Kw - 1). Reflect and replicate: the padding operator's
        transpose folds border values back inside; computed exactly as a vector-Jacobian
        product of the (linear) forward map. Differentiable in y and k.
        """
        y, kernel = _broadcast(y, kernel)
        kh, kw = kernel.shape[-2:]
        flipped = flip_kernel(kernel)
        use_fft = self._use_fft(kernel)
        if self.padding == "valid":
            return _padded_conv(y, flipped, (kh - 1, kh - 1, kw - 1, kw - 1), "zeros", use_fft)
        if self.padding in ("zeros", "circular"):
            pads = (kh // 2, kh - 1 - kh // 2, kw // 2, kw - 1 - kw // 2)
            return _padded_conv(y, flipped, pads, self.padding, use_fft)
        return linear_adjoint(lambda x: self(x, kernel=kernel), y, y.shape)


def linear_adjoint(op, y: torch.Tensor, x_shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """Adjoint of a linear map ``op`` applied to y, as the vector-Jacobian product at 0.

    For a linear map the Jacobian is the matrix itself, so J^T y is exact (not an
    approximation). The graph is kept when y or the operator's parameters need gradients.
    """
    with torch.enable_grad():
        x0 = torch.zeros(x_shape, dtype=y.dtype, device=y.device, requires_grad=True)
        out = op(x0)
        (grad,) = torch.autograd.grad(out, x0, grad_outputs=y, create_graph=True)
    return grad if torch.is_grad_enabled() else grad.detach()


def blur(x: torch.Tensor, kernel: torch.Tensor, padding: Padding = "zeros",
         method: Method = "auto") -> torch.Tensor:
    """Functional form of :class:`Blur`: ``blur(x, k) == Blur(padding, method)(x, kernel=k)``."""
    return Blur(padding, method)(x, kernel=kernel)
