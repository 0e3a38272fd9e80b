"""The tiled denoiser against whole-image calls: exact where one tile covers the image or the
function is pointwise, a bounded difference at the seams of a local one, and the image prior's
x0 over tiles close to its whole-image x0."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from blinddps.priors.bundle import load_prior
from blinddps.solvers.proximal import denoise_x0
from blinddps.solvers.tiling import ramp, tile_layout, tiled, tiled_x0


@pytest.mark.parametrize("size, tile, overlap, multiple", [(100, 32, 8, 1), (96, 40, 16, 4), (30, 64, 8, 4),
                                                           (256, 64, 32, 8), (3200, 768, 64, 8), (4320, 768, 64, 8)])
def test_tiles_cover_the_axis_with_the_overlap_and_little_waste(size, tile, overlap, multiple):
    side, starts = tile_layout(size, tile, overlap, multiple)
    if tile >= size:
        assert (side, starts) == (size, [0])
        return
    assert side <= tile and side % multiple == 0 and all(s % multiple == 0 for s in starts)
    assert starts[0] == 0 and starts[-1] == size - side
    assert all(side - (b - a) >= overlap for a, b in zip(starts, starts[1:]))  # every overlap kept
    fewest = -(-(size - overlap) // (tile - overlap))  # tiles of the full side at the least overlap
    assert len(starts) <= fewest + (multiple > 1)
    # the side shrunk to what those tiles need: one multiple less could not cover with the overlap
    assert len(starts) * (side - multiple) - (len(starts) - 1) * overlap < size
    covered = torch.zeros(size, dtype=torch.bool)
    for s in starts:
        covered[s:s + side] = True
    assert bool(covered.all())


def test_ramp_is_one_at_the_photos_borders_and_rises_over_the_overlap():
    w = ramp(20, 0, 50, 4)
    assert w[0] == 1 and w[-1] == pytest.approx(1 / 5) and bool((w[:15] == 1).all())
    inner = ramp(20, 10, 50, 4)
    assert inner[0] == pytest.approx(1 / 5) and inner[10] == 1


@pytest.mark.parametrize("tile, overlap", [(16, 4), (24, 8), (40, 0)])
def test_pointwise_functions_are_exact_over_tiles(tile, overlap):
    """Blending the same value from several tiles gives that value: the weights are a
    partition of unity wherever the tiles overlap."""
    x = torch.randn(2, 3, 50, 37, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = tiled(lambda v: torch.cat([v * 2 + 1, v.square()], dim=1), x, tile, overlap)
    assert torch.allclose(out, torch.cat([x * 2 + 1, x.square()], dim=1), atol=1e-12)


def test_a_local_function_differs_only_by_a_bounded_amount_at_the_seams():
    """A 3x3 mean (replicate borders inside each tile) is wrong only on a tile's outermost
    pixels, which carry at most 1 / (overlap + 1) of the blend where tiles overlap."""
    x = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    mean3 = lambda v: F.avg_pool2d(F.pad(v, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    whole, overlap = mean3(x), 8
    out = tiled(mean3, x, 24, overlap)
    err = (out - whole).abs()
    assert float(err.max()) <= 1.0 / (overlap + 1) + 1e-12 and float(err.max()) > 0
    assert torch.equal(tiled(mean3, x, 64, overlap), whole)  # one tile: the whole-image call


def test_tiled_image_prior_matches_its_whole_image_estimate():
    prior = load_prior("natural-rgb", kind="image")
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 3, 96, 128, generator=g) * 2 - 1
    t = 100
    abar = float(prior.process.alphas_cumprod[t])
    x_t = abar**0.5 * x + (1 - abar) ** 0.5 * torch.randn(x.shape, generator=g)
    whole = denoise_x0(prior, x_t, t)
    assert torch.equal(tiled_x0(prior, x_t, t, tile=128, overlap=16), whole)
    part = tiled_x0(prior, x_t, t, tile=64, overlap=32)
    mse = float(((part - whole) ** 2).mean())
    assert 0 < mse and 10 * torch.log10(torch.tensor(4.0 / mse)) > 30  # over 30 dB apart from each other


_PEAK = """
import resource, sys, torch
from blinddps.priors.bundle import load_prior
from blinddps.solvers.tiling import tiled_x0
torch.set_num_threads(1)
prior = load_prior("natural-rgb", kind="image")
side, tile = int(sys.argv[1]), int(sys.argv[2])
x = torch.zeros(1, 3, side, side)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with torch.no_grad():
    tiled_x0(prior, x, 100, tile=tile, overlap=32)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""


@pytest.mark.slow
def test_tiles_bound_the_networks_memory():
    """Peak memory (MB, a fresh process each) of the image prior's x0 on a 1536 px image: on
    256 px tiles it stays a small fraction of the whole-image call's, whose activations grow
    with the image."""
    import subprocess
    import sys

    def peak(side: int, tile: int) -> float:
        run = subprocess.run([sys.executable, "-c", _PEAK, str(side), str(tile)], capture_output=True, text=True,
                             timeout=300)
        assert run.returncode == 0, run.stderr
        return float(run.stdout.strip().splitlines()[-1])

    whole, tiles = peak(1536, 0), peak(1536, 256)
    assert whole > 500 and tiles < whole / 4, (whole, tiles)
