"""Evaluation metrics: image (PSNR, SSIM, LPIPS from local weights), kernel (MSE, MNC),
Levin 2009 error ratio."""
from blinddps.metrics.error_ratio import error_ratio, levin_deconv, psnr_upto_shift, sse_upto_shift, success_rate
from blinddps.metrics.image import psnr, rgb_to_luma, ssim
from blinddps.metrics.kernel import kernel_mnc, kernel_mse
from blinddps.metrics.lpips import LPIPS, load_lpips, lpips
from blinddps.metrics.perceptual import Availability, fid_available, lpips_available, lpips_paths

__all__ = [
    "psnr",
    "ssim",
    "rgb_to_luma",
    "kernel_mse",
    "kernel_mnc",
    "error_ratio",
    "psnr_upto_shift",
    "sse_upto_shift",
    "success_rate",
    "levin_deconv",
    "LPIPS",
    "load_lpips",
    "lpips",
    "Availability",
    "lpips_available",
    "lpips_paths",
    "fid_available",
]
