"""Per-image metrics of one method's output against the truth (conventions: CONVENTIONS,
which every summary.md repeats; LPIPS_CONVENTION too when LPIPS is computed)."""
from __future__ import annotations

import torch

from ..baselines.deconv import deconv_hyper_laplacian
from ..metrics import kernel_mnc, kernel_mse, levin_deconv, psnr, psnr_upto_shift, ssim
from ..metrics.error_ratio import error_ratios
from ..metrics.lpips import LPIPS, load_lpips, lpips
from ..metrics.perceptual import lpips_available
from .config import BenchConfig
from .data import Measurement
from .methods import MethodOutput

CONVENTIONS = """\
- PSNR, SSIM: data range 1 (images in [0, 1]); `border` pixels dropped at every side
  (Levin: K_true // 2, the wrap-around zone of its circular blur; photo tasks: 0). Colour:
  PSNR over all channels together; SSIM = mean of the per-channel SSIMs (11x11 Gaussian
  window, std 1.5, Wang et al. 2004); grey images stay grey.
- Kernel MSE: after moving each kernel's centre of mass onto its origin (a blind kernel is
  only defined up to a translation), zero-padded to the larger kernel, mean over its pixels.
- Kernel MNC: maximum of the normalised cross-correlation (shift-invariant; orientation
  matters).
- Error ratio (Levin et al. 2009): SSE(deconv(y, k_est)) / SSE(deconv(y, k_true)) with the
  SAME non-blind deconvolution for both (hyper-Laplacian, alpha 0.8, lam 2e3; circular on
  Levin, padded borders on photo tasks), each result aligned to the truth up to a shift of
  +-K_est // 2, SSE over the image minus min(15, side // 4) pixels at each side. Success
  rates: fraction of images with ratio <= 2 and <= 3. Turbulence task: the kernel metrics
  and the error ratio compare the blur kernel only and ignore the tilt (both deconvolutions
  leave the tilt's warp in place).
- Error ratio (1/4 px): the same ratio with both deconvolutions aligned to the truth in steps
  of 1/4 pixel (Fourier phase shifts), as Levin et al.'s own `comp_upto_shift` aligns, so a
  kernel whose centre sits between pixels is not charged for the half-pixel shift of its
  result; scored with the run from the same two deconvolutions (records cached before it:
  at report time, from the cached kernel). The literature's Levin figures use this
  alignment; the integer-shift column stays for comparison with earlier runs.
- PSNR aligned: the PSNR after the best integer shift of the output (|s| <= min(K_true // 2,
  16) px per axis), over the image minus max(border, that bound) pixels at each side. A blind
  estimate is only defined up to a translation (its kernel may sit off-centre), which plain
  PSNR punishes as if it were a restoration error; Levin et al. align for the same reason.
- Seconds: wall time of the method's call per image; NFE: network evaluations per image
  (one forward + backward pass of one network = 1).
"""
LPIPS_CONVENTION = """\
- LPIPS (Zhang et al. 2018, v0.1, {net} backbone, local weight files): the output image as
  cached (16-bit PNG) against the truth, both mapped from [0, 1] to [-1, 1], grey repeated to
  RGB, `border` pixels dropped as for PSNR; lower is better (0: identical).
"""
METRICS = ("psnr", "ssim", "kernel_mse", "kernel_mnc", "error_ratio")
LEVIN_CROP = 15


def _padded_deconv(y: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    return deconv_hyper_laplacian(y, kernel, lam=2e3, alpha=0.8, boundary="pad")


def error_ratio_crop(shape: tuple[int, int]) -> int:
    return min(LEVIN_CROP, min(shape) // 4)


def evaluate(m: Measurement, out: MethodOutput, config: BenchConfig) -> dict[str, float]:
    """{'psnr', 'ssim', 'kernel_mse', 'kernel_mnc', 'error_ratio', 'error_ratio_quarter'} of one
    output (floats)."""
    x, est = m.sharp.double(), out.image.double()
    if est.shape != x.shape:
        raise ValueError(f"{m.case.name}: output shape {tuple(est.shape)} differs from the truth {tuple(x.shape)}")
    k_true = m.kernel.double()[None, None]
    k_est = out.kernel.double()[None, None]
    return {
        "psnr": float(psnr(est, x, crop=m.border)[0]),
        "ssim": float(ssim(est, x, crop=m.border)[0]),
        "kernel_mse": float(kernel_mse(k_est, k_true, align="centroid")[0]),
        "kernel_mnc": float(kernel_mnc(k_est, k_true)[0]),
        **kernel_error_ratios(m, out.kernel, config),
    }


def kernel_error_ratios(m: Measurement, kernel: torch.Tensor, config: BenchConfig) -> dict[str, float]:
    """The error ratios of an estimated kernel (K, K) (see CONVENTIONS), from one pair of
    deconvolutions: {"error_ratio": integer alignment, "error_ratio_quarter": 1/4 px (Levin's)}."""
    deconv = levin_deconv if config.task == "levin" else _padded_deconv
    x = m.sharp.double()
    ratios = error_ratios(x, m.y.double(), kernel.double()[None, None], m.kernel.double()[None, None], deconv,
                          subpixels=(1, 4), crop=error_ratio_crop(x.shape[-2:]))
    return {"error_ratio": float(ratios[1][0]), "error_ratio_quarter": float(ratios[4][0])}


def aligned_psnr(m: Measurement, image: torch.Tensor) -> float:
    """PSNR (data range 1) of an output (1, C, H, W) in [0, 1] after its best integer shift
    (see CONVENTIONS); from the cached image, like LPIPS, so it needs no rerun of a method."""
    x, est = m.sharp.double(), image.double()
    if est.shape != x.shape:
        raise ValueError(f"{m.case.name}: output shape {tuple(est.shape)} differs from the truth {tuple(x.shape)}")
    shift = min(m.kernel.shape[-1] // 2, 16)
    return float(psnr_upto_shift(est, x, max_shift=shift, crop=max(m.border, shift))[0])


def lpips_model(config: BenchConfig) -> LPIPS | None:
    """The LPIPS network of the config's weight files (or the environment's), on config.device;
    None when no file is given. Raises (one line) when files are given but unusable: a run
    asked for LPIPS must not finish without it."""
    backbone, heads = config.lpips_files
    if backbone is None and heads is None:
        return None
    available = lpips_available(backbone, heads)
    if not available:
        raise ValueError(available.reason)
    return load_lpips(backbone, heads, device=config.device)


def evaluate_lpips(m: Measurement, image: torch.Tensor, model: LPIPS | None) -> float | None:
    """LPIPS of an output image (1, C, H, W) in [0, 1] against the truth; None without a model.

    Scored from the CACHED output image (not the run's in-memory one), so that the value is
    the same whether the item was just computed or read back, and LPIPS can be turned on for
    a finished run without rerunning its methods.
    """
    if model is None:
        return None
    x = m.sharp
    if image.shape != x.shape:
        raise ValueError(f"{m.case.name}: output shape {tuple(image.shape)} differs from the truth {tuple(x.shape)}")
    if m.border > 0:
        b = m.border
        x, image = x[..., b:-b, b:-b], image[..., b:-b, b:-b]
    with torch.no_grad():
        return float(lpips(image, x, model)[0])
