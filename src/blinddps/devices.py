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
