"""What the hardware does fast: one place for the bf16 decision of training and sampling."""
from __future__ import annotations

import torch


def native_bf16(device: torch.device | str) -> bool:
    """Whether bf16 autocast pays off on `device`: CUDA, and CPUs with native bf16 (AVX-512 BF16
    / AMX, as oneDNN reports it). Elsewhere bf16 is emulated and slower than float32."""
    device = torch.device(device)
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def keep_freed_memory() -> bool:
    """Ask glibc's allocator to keep freed memory for reuse instead of returning every large
    block to the system (no mmap for large blocks, no trimming). A full-size photo allocates
    buffers of hundreds of MB at every step; returned and requested again, each costs the
    kernel a page fault per 4 KB: on a 2000x1500 photo with a 101 px kernel (3 steps, this
    project's 2-core CPU) 108 s wall of which 99 s in the kernel, against 48 s and 7 s with
    this, for a peak of 4.4 GB instead of 2.9 GB. Returns whether it applied (glibc only)."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4  # glibc's mallopt parameters
        return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
    except (OSError, AttributeError):
        return False
