"""The kernel estimation building blocks against references: the kernel step against a dense
least-squares solve."""
from __future__ import annotations

import torch

from blinddps.estimation.kernel_step import kernel_step
from blinddps.physics.fft import conv_circular


def _dense_circular_matrix(s: torch.Tensor, size: int) -> torch.Tensor:
    """The matrix (h*w, K*K) of k -> s (*) k (circular true convolution, origin K // 2)."""
    cols = []
    for i in range(size * size):
        e = torch.zeros(1, 1, size, size, dtype=s.dtype)
        e.view(-1)[i] = 1
        cols.append(conv_circular(s, e).flatten())
    return torch.stack(cols, dim=1)


def test_kernel_step_is_the_dense_least_squares_solution():
    g = torch.Generator().manual_seed(1)
    sx, sy = (torch.randn(1, 1, 24, 24, generator=g, dtype=torch.float64) for _ in range(2))
    k_true = torch.rand(1, 1, 5, 5, generator=g, dtype=torch.float64)
    bx, by = conv_circular(sx, k_true), conv_circular(sy, k_true)
    gamma = 0.5
    a = torch.cat([_dense_circular_matrix(sx, 5), _dense_circular_matrix(sy, 5)])
    b = torch.cat([bx.flatten(), by.flatten()])
    dense = torch.linalg.solve(a.T @ a + gamma * torch.eye(25, dtype=a.dtype), a.T @ b).view(1, 1, 5, 5)
    dense = dense * (dense >= 0.05 * dense.max())
    dense = dense.clamp_min(0) / dense.clamp_min(0).sum()
    ours = kernel_step(bx, by, sx, sy, 5, gamma, cg_iters=200)
    assert torch.allclose(ours, dense, atol=1e-8)
