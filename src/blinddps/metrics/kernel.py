"""Kernel metrics: MSE and MNC (maximum of the normalised cross-correlation).

Kernels are (B, 1, K, K) (or (K, K), giving a 0-d result), non-negative, summing to 1, with
the project's origin floor(K/2). Kernels of different sizes are zero-padded to the larger
size so that their origins coincide (floor(K/2) lands on floor(K'/2)).
"""
from __future__ import annotations

import torch
from torch import Tensor

# shift_kernel (zero-filled integer shifts) was defined here; it now lives in the kernel
# geometry module and stays importable from here.
from blinddps.physics.kernel_geometry import centre_kernel, cross_correlation, pad_kernel_to, shift_kernel  # noqa: F401

__all__ = ["kernel_mse", "kernel_mnc"]


def _as_batch(k: Tensor) -> tuple[Tensor, bool]:
    if k.dim() == 2:
        return k[None, None], True
    if k.dim() != 4 or k.shape[1] != 1:
        raise ValueError(f"kernel must be (K, K) or (B, 1, K, K), got {tuple(k.shape)}")
    return k, False


def kernel_mse(k_est: Tensor, k_true: Tensor, align: str = "none") -> Tensor:
    """Mean squared error between kernels, over the pixels of the larger kernel.

    align="none" (default, the paper's direct comparison of same-size kernels): compare as
    given, origins aligned. align="centroid": first move each kernel's rounded centre of mass
    onto its origin, on a canvas large enough that nothing is cut (the mean is still taken
    over the larger kernel's K1 x K2 pixels). k (B, 1, K, K) or (K, K) -> (B,) or 0-d.
    """
    (a, sq_a), (b, sq_b) = _as_batch(k_est), _as_batch(k_true)
    squeeze = sq_a and sq_b
    dtype = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.float32)
    size = (max(a.shape[-2], b.shape[-2]), max(a.shape[-1], b.shape[-1]))
    n_pix = size[0] * size[1]
    if align == "centroid":
        size = (2 * size[0] - 1, 2 * size[1] - 1)
    elif align != "none":
        raise ValueError(f"align must be 'none' or 'centroid', got {align!r}")
    a, b = pad_kernel_to(a.to(dtype), size), pad_kernel_to(b.to(dtype), size)
    a, b = torch.broadcast_tensors(a, b)
    if align == "centroid":
        # Zero-filled shifts on a (2K - 1)-canvas (nothing is cut); half-up rounding so that
        # the alignment commutes with integer shifts of either kernel.
        a = centre_kernel(a.contiguous(), mode="zeros", rounding="half_up")
        b = centre_kernel(b.contiguous(), mode="zeros", rounding="half_up")
    out = ((a - b) ** 2).flatten(1).sum(dim=1) / n_pix
    return out[0] if squeeze else out


def kernel_mnc(k_est: Tensor, k_true: Tensor) -> Tensor:
    """Maximum of the normalised cross-correlation (Hu & Yang, ECCV 2012), as used by BlindDPS.

        MNC = max_s <k_est(. + s), k_true> / (||k_est||_2 ||k_true||_2)
    over every shift s of the full (zero-padded, non-circular) correlation, computed by FFT of
    size >= K_est + K_true - 1 so that no shift wraps. In [0, 1] for non-negative kernels; 1 for
    a shifted copy. Orientation matters: a flipped asymmetric kernel scores < 1.
    k (B, 1, K, K) or (K, K) -> (B,) or 0-d.
    """
    (a, sq_a), (b, sq_b) = _as_batch(k_est), _as_batch(k_true)
    squeeze = sq_a and sq_b
    a, b = a.double(), b.double()
    corr = cross_correlation(a, b)
    norms = a.flatten(1).norm(dim=1) * b.flatten(1).norm(dim=1)
    out = corr.flatten(1).amax(dim=1) / norms.clamp_min(torch.finfo(torch.float64).tiny)
    # Round-off can push an exact match a hair above 1.
    out = out.clamp(max=1.0).to(torch.promote_types(k_est.dtype, torch.float32))
    return out[0] if squeeze else out
