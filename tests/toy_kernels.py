"""A small known blur kernel shared by the metric and baseline tests."""
import torch


def l_shaped_kernel(size: int = 9) -> torch.Tensor:
    """An asymmetric L-shaped kernel (1, 1, size, size), float64, non-negative, sum 1: no flip
    or transpose maps it onto itself, so orientation and shift errors show up in tests."""
    k = torch.zeros(1, 1, size, size, dtype=torch.float64)
    c = size // 2
    k[0, 0, c, c - 3 : c + 2] = torch.tensor([1.0, 2.0, 3.0, 2.0, 1.0])
    k[0, 0, c - 3 : c, c + 1] = torch.tensor([0.5, 1.0, 2.0])
    return k / k.sum()
