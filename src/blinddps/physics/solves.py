"""Closed-form and iterative proximal solves of the blur's data term, for the image and for the kernel.

The blur is the project's true convolution with origin c = floor(K/2), taken circularly on a
working grid (P_h, P_w). A `Domain` says where the measurement sits on that grid:

- circular (the Levin files, simulated circular blur): the grid IS the photo, every pixel is
  observed, and the image step is one division in Fourier space;
- valid (a camera: the blur only where the kernel fits inside the scene): the unknown image is
  larger than the photo by the kernel's reach on every side, the photo's pixels are a masked
  window of the grid, and the image step is a conjugate-gradient solve preconditioned by the
  circular one. No border model is assumed, so no ringing comes in from the borders.

Shapes: images (B, C, P_h, P_w) on the grid (any range; the solves are linear), masks
(1, 1, P_h, P_w) in {0, 1}, kernels (B, 1, K, K) non-negative summing to 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .blur import fast_fft_size
from .fft import grad, kernel_otf, otf_to_kernel


FFT_FRIENDLY_FROM = 1024  # grid sides above this are rounded up to FFT-friendly lengths


def grid_side(n: int, multiple: int) -> int:
    """The grid's side for n pixels: n rounded up to `multiple`, and above FFT_FRIENDLY_FROM
    further up to a length whose prime factors are 2, 3 and 5 (an FFT of a length with a large
    prime factor, e.g. 4100 = 2^2 5^2 41, is several times slower; sides up to 1024 keep the
    plain rounding, which the shipped measurements were made with)."""
    side = -(-n // multiple) * multiple
    if side <= FFT_FRIENDLY_FROM:
        return side
    while fast_fft_size(side) != side:
        side += multiple
    return side


@dataclass(frozen=True)
class Domain:
    """The working grid of an (H, W) measurement blurred by a K x K kernel.

    grid: (P_h, P_w), the image unknown's size.  offset: (top, left) of the photo's pixel (0, 0)
    on the grid.  observed: the photo's (H, W).  circular: every grid pixel is observed.
    multiple: what the grid's sides are multiples of (the image network's spatial multiple).
    """

    grid: tuple[int, int]
    offset: tuple[int, int]
    observed: tuple[int, int]
    circular: bool
    multiple: int = 1

    @staticmethod
    def for_measurement(shape: tuple[int, int], kernel_size: int, border: str, multiple: int = 1) -> "Domain":
        """border "circular": grid = the photo.  "valid": the grid adds at least K//2 pixels
        on every side (the kernel's reach: P >= H + 2 (K // 2)), rounded up to `multiple`
        (what the image network accepts)."""
        h, w = shape
        if border == "circular":
            if h % multiple or w % multiple:
                raise ValueError(f"a circular domain needs a size divisible by {multiple}, got {h}x{w}")
            return Domain((h, w), (0, 0), (h, w), True, multiple)
        if border != "valid":
            raise ValueError(f"border must be 'circular' or 'valid', got {border!r}")
        c = kernel_size // 2
        ph, pw = (grid_side(n + 2 * c, multiple) for n in (h, w))
        return Domain((ph, pw), ((ph - h) // 2, (pw - w) // 2), (h, w), False, multiple)

    def mask(self, device=None, dtype=torch.float32) -> Tensor | None:
        """(1, 1, P_h, P_w) indicator of the observed pixels, None when circular."""
        if self.circular:
            return None
        m = torch.zeros((1, 1, *self.grid), device=device, dtype=dtype)
        top, left = self.offset
        m[..., top:top + self.observed[0], left:left + self.observed[1]] = 1
        return m

    def embed(self, y: Tensor) -> Tensor:
        """(B, C, H, W) measurement -> (B, C, P_h, P_w), zeros outside the observed window."""
        top, left = self.offset
        (ph, pw), (h, w) = self.grid, self.observed
        return F.pad(y, (left, pw - w - left, top, ph - h - top))

    def extend(self, y: Tensor) -> Tensor:
        """A first guess of the image on the grid: the photo extended by edge replication."""
        top, left = self.offset
        (ph, pw), (h, w) = self.grid, self.observed
        return F.pad(y, (left, pw - w - left, top, ph - h - top), mode="replicate")

    def reach(self, kernel_size: int) -> tuple[slice, slice]:
        """(rows, columns) of the grid that the observed pixels' blur reads: the photo's window
        widened by the kernel's reach K // 2 on every side, rounded out to the grid's multiple
        and kept inside the grid. The rest of the grid is FFT padding that no measurement sees
        (all of the grid when circular)."""
        if self.circular:
            return slice(0, self.grid[0]), slice(0, self.grid[1])
        c, multiple = kernel_size // 2, self.multiple
        spans = []
        for start, length, side in zip(self.offset, self.observed, self.grid):
            low = max(0, (start - c) // multiple * multiple)
            high = min(side, -(-(start + length + c) // multiple) * multiple)
            spans.append(slice(low, high))
        return spans[0], spans[1]

    def crop(self, x: Tensor) -> Tensor:
        """Grid (..., P_h, P_w) -> the photo's window (..., H, W)."""
        top, left = self.offset
        return x[..., top:top + self.observed[0], left:left + self.observed[1]]


def _blur(x: Tensor, otf: Tensor) -> Tensor:
    return torch.fft.irfft2(torch.fft.rfft2(x) * otf, s=x.shape[-2:])


def _spectral_dot(a: Tensor, b: Tensor, weights: Tensor) -> Tensor:
    """Per (sample, channel) inner products (B, C, 1, 1) of the real images whose rfft2 spectra
    are a and b, (B, C, H, W // 2 + 1); weights from `_parseval_weights` (a matrix-vector
    product: no second buffer of the photo's size)."""
    pairs = torch.view_as_real(a) * torch.view_as_real(b)
    return (pairs.flatten(-2) @ weights).sum(dim=-1)[..., None, None]


def _parseval_weights(shape: tuple[int, int], dtype, device) -> Tensor:
    """Weights (2 (W // 2 + 1),) that turn sums over an rfft2 half spectrum (as real and
    imaginary pairs) into the inner products of the real (H, W) images (Parseval): an inner
    column stands for two columns of the full spectrum, column 0 (and W / 2 for even W) for
    one; / (H W)."""
    h, w = shape
    weights = torch.full((w // 2 + 1, 2), 2.0 / (h * w), dtype=dtype, device=device)
    weights[0] = 1.0 / (h * w)
    if w % 2 == 0:
        weights[-1] = 1.0 / (h * w)
    return weights.flatten()


def solve_image(y_grid: Tensor, kernel: Tensor, x0: Tensor, rho: float | Tensor, mask: Tensor | None = None,
                *, iters: int = 20, tol: float = 1e-6, x_init: Tensor | None = None) -> Tensor:
    """argmin_x ||M (k * x) - y||^2 + rho ||x - x0||^2, per sample and channel.

    y_grid: (B, C, P_h, P_w) measurement on the grid (zeros where unobserved); kernel
    (B|1, 1, K, K); x0 (B, C, P_h, P_w); rho > 0 (a float or a (B, 1, 1, 1) tensor); mask
    (1, 1, P_h, P_w) or None (circular: the exact solution by one FFT division).
    With a mask: preconditioned conjugate gradients on (K^T M K + rho) x = K^T M y + rho x0,
    with the circular system (|K|^2 + rho)^-1 as the preconditioner (exact when M = 1), from
    x_init (default: the circular solution), stopped after `iters` iterations or where the
    residual is under tol times the right-hand side. Returns (B, C, P_h, P_w).
    """
    shape = y_grid.shape[-2:]
    otf = kernel_otf(kernel.to(y_grid.dtype), shape)
    otf_t = otf.conj().resolve_conj()
    rho = rho.reshape(-1, 1, 1, 1) if torch.is_tensor(rho) else rho
    inverse = 1 / (otf.abs() ** 2 + rho)  # the circular system's inverse: the preconditioner
    rhs = otf_t * torch.fft.rfft2(y_grid if mask is None else y_grid * mask)
    rhs += rho * torch.fft.rfft2(x0)
    if mask is None:
        return torch.fft.irfft2(rhs * inverse, s=shape)
    # The iterates are kept as spectra: only the mask needs the pixel domain, so an iteration
    # costs two FFTs (the blur, then the masked blur's spectrum) instead of six; the inner
    # products come from the spectra by Parseval. In place where a large photo's buffers
    # would otherwise be allocated anew each iteration.
    weights = _parseval_weights(shape, y_grid.dtype, y_grid.device)

    def normal(v: Tensor) -> Tensor:
        blurred = torch.fft.irfft2(otf * v, s=shape)
        blurred *= mask
        out = torch.fft.rfft2(blurred).mul_(otf_t)
        return out.add_(v, alpha=rho) if not torch.is_tensor(rho) else out.addcmul_(v, rho.to(v.dtype))

    def dot(a: Tensor, b: Tensor) -> Tensor:
        return _spectral_dot(a, b, weights)

    x = rhs * inverse if x_init is None else torch.fft.rfft2(x_init)
    r = rhs - normal(x)
    z = r * inverse
    p = z
    rz = dot(r, z)
    scale = dot(rhs, rhs).clamp_min(1e-30)
    del rhs
    done = dot(r, r) <= tol**2 * scale
    for _ in range(iters):
        if bool(done.all()):
            break
        q = normal(p)
        # a converged (sample, channel) stops moving: its result must not depend on how long
        # the rest of the batch iterates (a batch equals its samples solved one by one)
        alpha = torch.where(done, torch.zeros_like(rz), rz / dot(p, q).clamp_min(1e-30)).to(p.dtype)
        x.addcmul_(alpha, p)
        r.addcmul_(alpha, q, value=-1)
        del q
        done = done | (dot(r, r) <= tol**2 * scale)
        z = r * inverse
        rz_new = dot(r, z)
        p = p.mul_((rz_new / rz.clamp_min(1e-30)).to(p.dtype)).add_(z)
        rz = rz_new
    return torch.fft.irfft2(x, s=shape)


def project_simplex(k: Tensor) -> Tensor:
    """Euclidean projection of each kernel (B, 1, K, K) onto {k >= 0, sum k = 1} (sort based)."""
    flat = k.flatten(1)
    u, _ = flat.sort(dim=1, descending=True)
    css = u.cumsum(dim=1) - 1
    idx = torch.arange(1, flat.shape[1] + 1, device=k.device, dtype=k.dtype)
    cond = u - css / idx > 0
    rho = cond.to(k.dtype).cumsum(dim=1).argmax(dim=1, keepdim=True)  # last index where cond holds
    theta = css.gather(1, rho) / (rho + 1).to(k.dtype)
    return (flat - theta).clamp_min(0).reshape(k.shape)


def _strong_edges(gx: Tensor, gy: Tensor, fraction: float) -> tuple[Tensor, Tensor]:
    """Keep the image gradients whose magnitude (over channels) is in the top `fraction` of
    each sample, zero the rest (Cho and Lee 2009: only salient edges constrain a kernel;
    weak gradients of a still-blurry estimate pull it towards the delta kernel)."""
    magnitude = (gx * gx + gy * gy).sum(dim=1, keepdim=True).flatten(1)
    threshold = magnitude.quantile(1 - fraction, dim=1).reshape(-1, 1, 1, 1)
    keep = (magnitude.reshape(gx.shape[0], 1, *gx.shape[-2:]) >= threshold).to(gx.dtype)
    return gx * keep, gy * keep


def _gradient_pairs(x: Tensor, y_grid: Tensor, mask: Tensor | None,
                    edge_fraction: float = 1.0) -> tuple[list[Tensor], list[Tensor], Tensor | None]:
    """Forward differences of the image (optionally only its strongest edges) and the
    measurement, and the mask of the differences that only use observed pixels."""
    xs, ys = list(grad(x)), list(grad(y_grid))
    if edge_fraction < 1:
        xs = list(_strong_edges(*xs, edge_fraction))
    if mask is None:
        return xs, ys, None
    mx = mask * torch.roll(mask, -1, dims=-1)
    my = mask * torch.roll(mask, -1, dims=-2)
    return xs, [ys[0] * mx, ys[1] * my], torch.stack([mx, my])


def solve_kernel(x: Tensor, y_grid: Tensor, kernel: Tensor, mask: Tensor | None = None, *, iters: int = 30,
                 gamma: float = 0.0, anchor: Tensor | None = None, beta: float | Tensor = 0.0,
                 edge_fraction: float = 1.0) -> Tensor:
    """Projected (accelerated) gradient on min_k sum_d ||M_d (k * d x) - d y||^2 + gamma ||k||^2
    + beta ||k - anchor||^2 over kernels on the K x K support with k >= 0 and sum k = 1.

    Gradient domain (d: horizontal and vertical differences), the standard choice for kernel
    estimation: flat regions carry no information about the kernel and would only weigh the
    DC term. x (B, C, P_h, P_w) image estimate on the grid; y_grid (B, C, P_h, P_w); kernel
    (B, 1, K, K) the starting point; anchor (B, 1, K, K) e.g. a kernel prior's denoised
    estimate (beta its weight: a number, or (B,) one per sample). edge_fraction < 1: only the image's strongest gradients
    (that share of pixels) enter the data term. Step 1 / L with L from the spectra (an upper bound of the
    Lipschitz constant); Nesterov momentum with a gradient-based adaptive restart (O'Donoghue
    and Candes 2015): the momentum is dropped, per sample, when it points uphill, which keeps
    the iterates from oscillating (the objective is still not monotone step by step).
    Returns (B, 1, K, K).
    """
    size = kernel.shape[-2:]
    shape = x.shape[-2:]
    xs, ys, masks = _gradient_pairs(x, y_grid, mask, edge_fraction)
    spectra = [torch.fft.rfft2(g) for g in xs]
    lipschitz = sum((s.abs() ** 2).sum(dim=1).amax(dim=(-2, -1)) for s in spectra)  # (B,)
    beta = torch.as_tensor(beta, dtype=kernel.dtype, device=kernel.device).reshape(-1)  # (B,) or (1,)
    lipschitz = (2 * (lipschitz + gamma + beta)).reshape(-1, 1, 1, 1).clamp_min(1e-12)

    def gradient(k: Tensor) -> Tensor:
        otf = kernel_otf(k, shape)
        total = 2 * gamma * k
        for d, (spec, target) in enumerate(zip(spectra, ys)):
            residual = torch.fft.irfft2(spec * otf, s=shape) - target
            if masks is not None:
                residual = residual * masks[d]
            back = (torch.fft.rfft2(residual) * spec.conj()).sum(dim=1, keepdim=True)
            total = total + 2 * otf_to_kernel(back, size, shape)
        if anchor is not None:
            total = total + 2 * beta.reshape(-1, 1, 1, 1) * (k - anchor)
        return total

    k, z = kernel, kernel
    t = torch.ones(kernel.shape[0], 1, 1, 1, dtype=kernel.dtype, device=kernel.device)
    for _ in range(iters):
        k_next = project_simplex(z - gradient(z) / lipschitz)
        uphill = ((z - k_next) * (k_next - k)).flatten(1).sum(dim=1).reshape(-1, 1, 1, 1) > 0
        t = torch.where(uphill, torch.ones_like(t), t)
        t_next = (1 + (1 + 4 * t * t).sqrt()) / 2
        z = k_next + ((t - 1) / t_next) * (k_next - k)
        k, t = k_next, t_next
    return k


def kernel_objective(x: Tensor, y_grid: Tensor, kernel: Tensor, mask: Tensor | None = None) -> Tensor:
    """sum_d ||M_d (k * d x) - d y||^2 per sample, (B,): what `solve_kernel` minimises (gamma 0)."""
    shape = x.shape[-2:]
    xs, ys, masks = _gradient_pairs(x, y_grid, mask)
    otf = kernel_otf(kernel, shape)
    total = 0
    for d, (g, target) in enumerate(zip(xs, ys)):
        residual = _blur(g, otf) - target
        if masks is not None:
            residual = residual * masks[d]
        total = total + residual.pow(2).flatten(1).sum(dim=1)
    return total


__all__ = ["Domain", "solve_image", "solve_kernel", "project_simplex", "kernel_objective"]
