"""The kernel estimator's steps against references: the kernel step against a dense least-squares
solve, edge selection counts, the dark-channel L0 step against a brute-force one, Otsu against an
exhaustive search, and a small end-to-end case whose kernel MNC must exceed a bound."""
from __future__ import annotations

import math

import pytest
import torch

from blinddps.estimation import KernelEstimator, estimate_kernel
from blinddps.estimation.edges import edge_threshold, orientation_bins, select_edges, valid_gradients
from blinddps.estimation.kernel import pyramid
from blinddps.estimation.kernel_step import kernel_step
from blinddps.estimation.latent import dark_l0_latent, dark_pixels_zeroed, min_filter, otsu_threshold
from blinddps.metrics import kernel_mnc
from blinddps.physics.fft import conv_circular


def _scene(n: int = 96, seed: int = 0) -> torch.Tensor:
    """Piecewise-constant grey rectangles (1, 1, n, n) in [0, 1]: sharp edges in every direction."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((1, 1, n, n), 0.5, dtype=torch.float64)
    for _ in range(40):
        top, left = torch.randint(0, n - 8, (2,), generator=g).tolist()
        h, w = torch.randint(4, n // 3, (2,), generator=g).tolist()
        x[..., top:top + h, left:left + w] = torch.rand(1, generator=g, dtype=torch.float64).item()
    return x


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


def test_edge_threshold_keeps_at_least_the_count_in_every_bin():
    x = _scene()
    for size in (3, 7):
        threshold = edge_threshold(x, size, per_bin=2)
        px, py = valid_gradients(x)
        kept = (px * px + py * py) >= threshold.view(-1, 1, 1, 1)
        bins = orientation_bins(px, py)
        for b in range(4):
            in_bin = int((bins == b).sum())
            assert int((kept & (bins == b)).sum()) >= min(2 * size, in_bin)
        # a higher threshold would drop a bin under the count: the threshold is some bin's n-th value
        magnitudes = (px * px + py * py)
        assert bool((magnitudes == threshold.view(-1, 1, 1, 1)).any())


def test_select_edges_zeroes_exactly_the_weak_gradients_and_never_everything():
    g = torch.Generator().manual_seed(2)
    px, py = (torch.randn(2, 1, 10, 10, generator=g, dtype=torch.float64) for _ in range(2))
    threshold = torch.tensor([1.0, 1e9], dtype=torch.float64)
    sx, sy, used = select_edges(px, py, threshold)
    weak = (px * px + py * py) < 1.0
    assert torch.equal(sx[0][weak[0]], torch.zeros_like(sx[0][weak[0]]))
    assert torch.equal(sx[0][~weak[0]], px[0][~weak[0]])
    assert used[0] == 1.0 and used[1] < 1e9 and bool((sx[1] != 0).any())  # lowered until some pass


def test_dark_pixels_zeroed_matches_a_brute_force_per_patch_assignment():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, 1, 20, 23, generator=g, dtype=torch.float64)
    patch, threshold = 5, 0.05
    ours = dark_pixels_zeroed(x, threshold, patch)
    r = patch // 2
    padded = torch.nn.functional.pad(x, (r, r, r, r), mode="replicate")[0, 0]
    expected = x[0, 0].clone()
    for i in range(20):
        for j in range(23):
            window = padded[i:i + patch, j:j + patch]
            v = window.min()
            if v * v < threshold:
                for a, b in (window == v).nonzero().tolist():  # the argmin pixel(s), in the photo's frame
                    pi, pj = min(max(i + a - r, 0), 19), min(max(j + b - r, 0), 22)
                    if x[0, 0, pi, pj] == v:
                        expected[pi, pj] = 0
    inner = (slice(r, 20 - r), slice(r, 23 - r))
    assert torch.equal(ours[0, 0][inner], expected[inner])
    assert torch.equal(ours[0, 0, :r], x[0, 0, :r])  # the border keeps its values
    assert torch.equal(min_filter(x, patch)[0, 0, 5, 5], padded[5:10, 5:10].min())


def test_otsu_threshold_maximises_the_between_class_variance():
    g = torch.Generator().manual_seed(4)
    v = torch.cat([0.2 + 0.05 * torch.randn(500, generator=g), 0.7 + 0.05 * torch.randn(500, generator=g)])
    t = float(otsu_threshold(v.clamp(0, 1).view(1, 1, 1, -1))[0])
    assert 0.3 < t < 0.6


def test_latent_step_sharpens_a_blurred_scene_and_batches_as_one_by_one():
    x = _scene(64)
    k = torch.zeros(1, 1, 7, 7, dtype=torch.float64)
    k[0, 0, 3, :] = 1 / 7
    y = conv_circular(x, k).float()
    pair = torch.cat([y, y.flip(-1)])
    latent = dark_l0_latent(pair, k.float(), 4e-3, 4e-3)
    assert (latent[0:1] - x.float()).abs().mean() < 0.5 * (y - x.float()).abs().mean()
    assert torch.allclose(latent[1:2], dark_l0_latent(pair[1:2], k.float(), 4e-3, 4e-3), atol=1e-5)


def test_pyramid_ends_at_the_asked_size_and_starts_near_the_coarsest():
    levels = pyramid(31, math.sqrt(0.5), 5)
    assert levels[-1] == (1.0, 31) and levels[0][1] <= 7 and all(k % 2 for _, k in levels)


@pytest.mark.parametrize("dark_patch", [0, 15])
def test_end_to_end_kernel_of_a_blurred_scene(dark_patch):
    x = _scene(128, seed=5)
    k = torch.zeros(1, 1, 9, 9, dtype=torch.float64)
    for i in range(7):  # a bent motion path
        k[0, 0, 2 + i // 2, 1 + i] = 1.0
    k = k / k.sum()
    y = conv_circular(x, k).clamp(0, 1).float()
    found = estimate_kernel(y, 13, KernelEstimator(dark_patch=dark_patch))
    assert found.kernel.shape == (1, 1, 13, 13) and abs(float(found.kernel.sum()) - 1) < 1e-5
    assert float(kernel_mnc(found.kernel.double(), k)[0]) > 0.8
    again = estimate_kernel(y, 13, KernelEstimator(dark_patch=dark_patch))
    assert torch.equal(found.kernel, again.kernel)  # deterministic
