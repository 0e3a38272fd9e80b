"""Classical baselines: non-blind deconvolution (Wiener/Tikhonov, hyper-Laplacian) and Pan-L0 blind deblurring."""
from blinddps.baselines.deconv import deconv_hyper_laplacian, deconv_wiener, shrink_hyper_laplacian
from blinddps.baselines.pan_l0 import PanL0Params, pan_l0_deblur, pan_l0_kernel, ringing_suppressed_deconv

__all__ = [
    "deconv_wiener",
    "deconv_hyper_laplacian",
    "shrink_hyper_laplacian",
    "PanL0Params",
    "pan_l0_deblur",
    "pan_l0_kernel",
    "ringing_suppressed_deconv",
]
