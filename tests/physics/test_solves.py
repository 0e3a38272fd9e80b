"""Proximal solves of the blur's data term (physics/solves.py): the valid/circular domain, the
image solve against dense normal equations, the simplex projection against a bisection
reference, the kernel solve on noise-free data, and the noise estimate."""
from __future__ import annotations

import pytest
import torch

from blinddps.physics import Blur
from blinddps.physics.fft import conv_circular
from blinddps.physics.solves import Domain, kernel_objective, project_simplex, solve_image, solve_kernel
from blinddps.estimation.noise import estimate_noise

from toy_kernels import l_shaped_kernel

F64 = torch.float64


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _kernel(b: int, size: int, seed: int = 1) -> torch.Tensor:
    k = _rand(b, 1, size, size, seed=seed)
    return k / k.sum((-2, -1), keepdim=True)


def _line_kernel(size: int) -> torch.Tensor:
    """An anti-diagonal line with a side dot: (1, 1, size, size), sum 1, no symmetry."""
    k = torch.zeros(1, 1, size, size, dtype=F64)
    for i in range(size):
        k[0, 0, i, size - 1 - i] = 1.0
    k[0, 0, 1, 1] = 0.5
    return k / k.sum()


def _blur_matrix(kernel: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Dense (N, N) circular blur straight from the convention y[n] = sum_m k[m] x[n - m + c]
    (no FFT), checked column by column against conv_circular on unit vectors."""
    h, w = shape
    k = kernel.reshape(kernel.shape[-2:])
    kh, kw = k.shape
    ch, cw = kh // 2, kw // 2
    a = torch.zeros(h * w, h * w, dtype=F64)
    for i in range(h):
        for j in range(w):
            for mi in range(kh):
                for mj in range(kw):
                    a[i * w + j, ((i - mi + ch) % h) * w + (j - mj + cw) % w] += k[mi, mj]
    eye = torch.eye(h * w, dtype=F64).reshape(h * w, 1, h, w)
    columns = conv_circular(eye, kernel.reshape(1, 1, kh, kw)).reshape(h * w, h * w).T
    assert torch.allclose(columns, a, atol=1e-12)
    return a


def _dense_solve(y, kernel, x0, rho, mask=None):
    """argmin ||M (A x) - y||^2 + rho ||x - x0||^2 per (sample, channel) by torch.linalg.solve."""
    b, c, h, w = y.shape
    m = torch.ones(h * w, dtype=F64) if mask is None else mask.reshape(-1).to(F64)
    out = torch.empty_like(y)
    for i in range(b):
        a = _blur_matrix(kernel[i if kernel.shape[0] > 1 else 0], (h, w))
        r = float(rho[i]) if torch.is_tensor(rho) else rho
        normal = a.T @ (m[:, None] * a) + r * torch.eye(h * w, dtype=F64)
        for j in range(c):
            rhs = a.T @ (m * y[i, j].reshape(-1)) + r * x0[i, j].reshape(-1)
            out[i, j] = torch.linalg.solve(normal, rhs).reshape(h, w)
    return out


def _simplex_reference(v: torch.Tensor) -> torch.Tensor:
    """Projection onto the simplex by bisection on theta: sum max(v - theta, 0) = 1."""
    flat = v.flatten(1)
    lo = flat.min(dim=1, keepdim=True).values - 1  # sum >= n >= 1 there
    hi = flat.max(dim=1, keepdim=True).values      # sum = 0 there
    for _ in range(200):
        mid = (lo + hi) / 2
        above = (flat - mid).clamp_min(0).sum(dim=1, keepdim=True) > 1
        lo, hi = torch.where(above, mid, lo), torch.where(above, hi, mid)
    return (flat - (lo + hi) / 2).clamp_min(0).reshape(v.shape)


# ---------------------------------------------------------------------------- Domain

def test_circular_domain_is_the_photo():
    """Circular: the grid is the photo, offset 0, no mask; a size not divisible by the
    multiple is refused."""
    d = Domain.for_measurement((12, 16), 5, "circular", multiple=4)
    assert (d.grid, d.offset, d.observed, d.circular) == ((12, 16), (0, 0), (12, 16), True)
    assert d.mask() is None
    y = _rand(2, 3, 12, 16)
    assert torch.equal(d.embed(y), y) and torch.equal(d.crop(y), y) and torch.equal(d.extend(y), y)
    with pytest.raises(ValueError, match="divisible"):
        Domain.for_measurement((12, 16), 5, "circular", multiple=8)
    with pytest.raises(ValueError, match="divisible"):
        Domain.for_measurement((12, 15), 5, "circular", multiple=2)


def test_bad_border_name_is_refused():
    """Only 'circular' and 'valid' are borders."""
    for border in ("zeros", "same", "Valid", ""):
        with pytest.raises(ValueError, match="border"):
            Domain.for_measurement((10, 10), 5, border)


@pytest.mark.parametrize("shape,k,multiple,grid,offset", [
    ((10, 13), 5, 1, (14, 17), (2, 2)),
    ((10, 13), 6, 1, (16, 19), (3, 3)),
    ((10, 13), 5, 8, (16, 24), (3, 5)),
    ((10, 13), 4, 8, (16, 24), (3, 5)),
    ((9, 9), 1, 1, (9, 9), (0, 0)),
    ((7, 12), 9, 4, (16, 20), (4, 4)),
])
def test_valid_domain_sizes(shape, k, multiple, grid, offset):
    """Valid: the grid is the smallest multiple of `multiple` with at least K//2 pixels on
    every side of the photo, the photo is centred (floor) on it (hand-computed cases)."""
    d = Domain.for_measurement(shape, k, "valid", multiple=multiple)
    assert (d.grid, d.offset, d.observed, d.circular) == (grid, offset, shape, False)
    for n, p, off in zip(shape, d.grid, d.offset):
        assert p % multiple == 0 and n + 2 * (k // 2) <= p < n + 2 * (k // 2) + multiple
        assert off >= k // 2 and p - n - off >= k // 2


def test_embed_crop_mask_roundtrip():
    """crop(embed(y)) = y; embed puts zeros off the window; embed(crop(x)) = mask * x; the
    mask has exactly H*W ones, all inside the window; extend replicates the edges."""
    d = Domain.for_measurement((7, 10), 6, "valid", multiple=4)
    (ph, pw), (top, left) = d.grid, d.offset
    y = _rand(2, 3, 7, 10) + 0.5
    e = d.embed(y)
    assert e.shape == (2, 3, ph, pw)
    assert torch.equal(d.crop(e), y)
    assert torch.equal(e[..., top:top + 7, left:left + 10], y)
    assert torch.allclose(e.abs().sum(), y.abs().sum(), rtol=1e-14)
    m = d.mask(dtype=F64)
    assert m.shape == (1, 1, ph, pw) and m.dtype == F64
    assert set(m.unique().tolist()) == {0.0, 1.0} and int(m.sum()) == 7 * 10
    assert torch.equal(m[..., top:top + 7, left:left + 10], torch.ones(1, 1, 7, 10, dtype=F64))
    x = _rand(2, 3, ph, pw, seed=3)
    assert torch.equal(d.embed(d.crop(x)), x * m)
    ext = d.extend(y)
    assert torch.equal(d.crop(ext), y)
    assert torch.equal(ext[..., 0, left:left + 10], y[..., 0, :])      # top rows copy row 0
    assert torch.equal(ext[..., top:top + 7, -1], y[..., :, -1])      # right columns copy the last
    assert torch.equal(ext[..., 0, 0], y[..., 0, 0])                  # corners copy the corner


@pytest.mark.parametrize("k", [3, 4, 5, 6, 7])
def test_masked_circular_model_is_the_valid_blur(k):
    """For x on a valid grid, crop(circular blur of x) equals Blur('valid') (direct conv2d, no
    FFT) of x's window [offset - (K - 1 - K//2), offset + H + K//2): no wrap-around reaches the
    photo, for odd and even K, per-sample kernels. Pixels outside that window have no effect,
    the window's corner pixels do (the window is exactly the kernel's reach)."""
    h, w = 8, 11
    d = Domain.for_measurement((h, w), k, "valid", multiple=4)
    (top, left), c = d.offset, k // 2
    kernel = _kernel(2, k, seed=k)
    x = _rand(2, 3, *d.grid, seed=k + 10)
    t, l_ = top - (k - 1 - c), left - (k - 1 - c)
    window = x[..., t:t + h + k - 1, l_:l_ + w + k - 1]
    expected = Blur("valid", "direct")(window, kernel=kernel)
    observed = d.crop(conv_circular(x, kernel))
    assert observed.shape == expected.shape == (2, 3, h, w)
    assert torch.allclose(observed, expected, atol=1e-12)
    # outside the window: no effect; its corners: an effect.
    inside = torch.zeros(d.grid, dtype=torch.bool)
    inside[t:t + h + k - 1, l_:l_ + w + k - 1] = True
    noise = _randn(2, 3, *d.grid, seed=5) * (~inside)
    assert torch.allclose(d.crop(conv_circular(x + noise, kernel)), observed, atol=1e-12)
    for (i, j) in [(t, l_), (t + h + k - 2, l_ + w + k - 2)]:
        bumped = x.clone()
        bumped[..., i, j] += 1.0
        assert (d.crop(conv_circular(bumped, kernel)) - observed).abs().max() > 1e-3


@pytest.mark.parametrize("k, multiple", [(3, 1), (4, 4), (7, 4), (6, 8)])
def test_reach_holds_every_pixel_the_photo_reads(k, multiple):
    """Pixels of the grid outside `Domain.reach` never enter the photo's blur; the reach is
    rounded out to the multiple, and a grid made by `for_measurement` below the FFT-friendly
    sizes is all reach (so a small photo's restoration does not change)."""
    d = Domain((48, 64), (13, 17), (8, 11), False, multiple)  # a grid with FFT padding beyond the reach
    rows, cols = d.reach(k)
    assert all(v % multiple == 0 for v in (rows.start, rows.stop, cols.start, cols.stop))
    assert rows.stop - rows.start < 48 and cols.stop - cols.start < 64
    kernel = _kernel(2, k, seed=k)
    x = _rand(2, 3, 48, 64, seed=k)
    outside = torch.ones(48, 64, dtype=torch.bool)
    outside[rows, cols] = False
    noise = _randn(2, 3, 48, 64, seed=k + 1) * outside
    assert torch.allclose(d.crop(conv_circular(x + noise, kernel)), d.crop(conv_circular(x, kernel)), atol=1e-12)
    small = Domain.for_measurement((37, 50), k, "valid", multiple)
    assert small.multiple == multiple and small.reach(k) == (slice(0, small.grid[0]), slice(0, small.grid[1]))
    assert Domain.for_measurement((8, 8), k, "circular").reach(k) == (slice(0, 8), slice(0, 8))


# ------------------------------------------------------------------------ solve_image

def test_circular_solve_matches_dense_normal_equations():
    """Without a mask the solve is the exact solution of (A^T A + rho) x = A^T y + rho x0 (A
    built densely from the convention), per sample kernel and per channel."""
    shape = (10, 12)
    kernel = _kernel(2, 5, seed=2)
    y, x0 = _rand(2, 2, *shape, seed=3), _rand(2, 2, *shape, seed=4)
    x = solve_image(y, kernel, x0, 0.05)
    assert torch.allclose(x, _dense_solve(y, kernel, x0, 0.05), atol=1e-10)
    # even K too, and a (B, 1, 1, 1) rho
    kernel = _kernel(2, 4, seed=5)
    rho = torch.tensor([0.02, 0.3], dtype=F64).reshape(2, 1, 1, 1)
    x = solve_image(y, kernel, x0, rho)
    assert torch.allclose(x, _dense_solve(y, kernel, x0, rho.flatten()), atol=1e-10)


@pytest.mark.parametrize("k", [5, 4])
def test_masked_solve_matches_dense_and_is_optimal(k):
    """With a mask, enough CG iterations reach the dense masked normal-equation solution, and
    the objective's autograd gradient there is ~0 (while it is not at x0)."""
    d = Domain.for_measurement((6, 7), k, "valid")
    mask = d.mask(dtype=F64)
    kernel = _kernel(2, k, seed=k)
    y = d.embed(_rand(2, 2, 6, 7, seed=6))
    x0 = _rand(2, 2, *d.grid, seed=7)
    rho = 0.01
    x = solve_image(y, kernel, x0, rho, mask, iters=300, tol=1e-13)
    assert torch.allclose(x, _dense_solve(y, kernel, x0, rho, mask), atol=1e-8)

    def objective(v):
        return ((conv_circular(v, kernel) - y) * mask).pow(2).sum() + rho * (v - x0).pow(2).sum()

    x_var = x.clone().requires_grad_()
    g_x = torch.autograd.grad(objective(x_var), x_var)[0]
    start = x0.clone().requires_grad_()
    g_0 = torch.autograd.grad(objective(start), start)[0]
    assert g_x.abs().max() < 1e-8 * g_0.abs().max() + 1e-12
    # a few iterations already help; a full mask makes the preconditioner exact
    few = solve_image(y, kernel, x0, rho, mask, iters=3, tol=0.0)
    full = solve_image(y, kernel, x0, rho, torch.ones_like(mask), iters=2, tol=0.0)
    assert (few - x).abs().max() < (solve_image(y, kernel, x0, rho) - x).abs().max()
    assert torch.allclose(full, solve_image(y, kernel, x0, rho), atol=1e-10)


def test_masked_solve_from_x_init_reaches_same_solution():
    """Starting CG from an arbitrary x_init converges to the same minimiser."""
    d = Domain.for_measurement((6, 6), 5, "valid")
    mask, kernel = d.mask(dtype=F64), _kernel(1, 5, seed=8)
    y, x0 = d.embed(_rand(1, 1, 6, 6, seed=9)), _rand(1, 1, *d.grid, seed=10)
    ref = _dense_solve(y, kernel, x0, 0.1, mask)
    x = solve_image(y, kernel, x0, 0.1, mask, iters=300, tol=1e-13, x_init=_randn(1, 1, *d.grid, seed=11))
    assert torch.allclose(x, ref, atol=1e-8)


@pytest.mark.parametrize("masked", [False, True])
def test_tensor_rho_batch_and_channels_are_independent(masked):
    """A (B, 1, 1, 1) rho acts per sample; a batch equals its samples solved one by one (same
    iterates: tol 0, few iterations, so CG's step sizes are per sample and channel); changing
    channel 1 of y leaves channel 0 of the solution unchanged."""
    d = Domain.for_measurement((8, 9), 5, "valid")
    mask = d.mask(dtype=F64) if masked else None
    kernel = _kernel(2, 5, seed=12)
    y, x0 = d.embed(_rand(2, 2, 8, 9, seed=13)), _rand(2, 2, *d.grid, seed=14)
    rho = torch.tensor([0.01, 0.5], dtype=F64).reshape(2, 1, 1, 1)
    kw = dict(iters=4, tol=0.0)
    batch = solve_image(y, kernel, x0, rho, mask, **kw)
    for i in range(2):
        one = solve_image(y[i:i + 1], kernel[i:i + 1], x0[i:i + 1], float(rho[i]), mask, **kw)
        assert torch.allclose(batch[i:i + 1], one, atol=1e-12)
    assert (batch[0] - solve_image(y, kernel, x0, 0.5, mask, **kw)[0]).abs().max() > 1e-3
    y2 = y.clone()
    y2[:, 1] = d.embed(_rand(2, 1, 8, 9, seed=15))[:, 0] * 10
    other = solve_image(y2, kernel, x0, rho, mask, **kw)
    assert torch.allclose(other[:, 0], batch[:, 0], atol=1e-12)
    assert (other[:, 1] - batch[:, 1]).abs().max() > 1e-2


# --------------------------------------------------------------------- project_simplex

def test_project_simplex_matches_bisection_reference():
    """On random kernels (scaled, shifted, some negative) the sort-based projection equals a
    bisection on the threshold, is non-negative and sums to 1, and keeps the shape."""
    for seed, (scale, shift) in enumerate([(1.0, 0.0), (3.0, -1.0), (0.01, 0.0), (10.0, 5.0), (1.0, -0.5)]):
        v = _randn(4, 1, 5, 5, seed=seed) * scale + shift
        p = project_simplex(v)
        assert p.shape == v.shape
        assert (p >= 0).all()
        assert torch.allclose(p.sum((-2, -1)), torch.ones(4, 1, dtype=F64), atol=1e-12)
        assert torch.allclose(p, _simplex_reference(v), atol=1e-10)


def test_project_simplex_special_points():
    """Simplex points (random, one-hot, uniform) are fixed points; a constant shift of the
    input does not change the projection; ties and the all-equal input work."""
    q = _rand(3, 1, 4, 4, seed=20) ** 3
    q = q / q.sum((-2, -1), keepdim=True)
    assert torch.allclose(project_simplex(q), q, atol=1e-14)
    hot = torch.zeros(1, 1, 3, 3, dtype=F64)
    hot[0, 0, 2, 0] = 1
    assert torch.equal(project_simplex(hot), hot)
    assert torch.allclose(project_simplex(torch.full((1, 1, 3, 3), 7.0, dtype=F64)),
                          torch.full((1, 1, 3, 3), 1 / 9, dtype=F64), atol=1e-14)
    v = _randn(2, 1, 4, 4, seed=21)
    assert torch.allclose(project_simplex(v + 3.7), project_simplex(v), atol=1e-12)
    tie = torch.tensor([[[[2.0, 2.0], [0.0, -1.0]]]], dtype=F64)
    assert torch.allclose(project_simplex(tie), torch.tensor([[[[0.5, 0.5], [0.0, 0.0]]]], dtype=F64))


def test_project_simplex_is_the_nearest_point():
    """The projection is no farther than 2000 random simplex points, and satisfies the
    variational inequality <v - p, q - p> <= 0 for all of them."""
    v = _randn(3, 1, 3, 3, seed=22) * 0.5
    p = project_simplex(v).flatten(1)
    e = -torch.log(_rand(2000, 9, seed=23))  # Dirichlet(1) samples
    q = e / e.sum(1, keepdim=True)
    q = torch.cat([q, torch.eye(9, dtype=F64)])  # and the vertices
    vf = v.flatten(1)
    for i in range(3):
        d_p = (vf[i] - p[i]).norm()
        assert ((vf[i] - q).norm(dim=1) >= d_p - 1e-12).all()
        assert (((vf[i] - p[i]) * (q - p[i])).sum(1) <= 1e-12).all()


# ------------------------------------------------------------------------ solve_kernel

def _kernel_problem(kernel: torch.Tensor, seed: int = 30, shape=(16, 16)):
    k = kernel.shape[-1]
    d = Domain.for_measurement(shape, k, "valid")
    x = _rand(kernel.shape[0], 2, *d.grid, seed=seed)
    y = d.embed(d.crop(conv_circular(x, kernel)))
    return d, x, y, d.mask(dtype=F64)


@pytest.mark.parametrize("kernel", [l_shaped_kernel(7), _line_kernel(6)], ids=["L7", "line6"])
def test_solve_kernel_recovers_true_kernel(kernel):
    """Given the true image on a valid grid and its noise-free valid blur, the kernel solve from
    the uniform start recovers a sparse asymmetric kernel (odd and even K) to high accuracy."""
    d, x, y, mask = _kernel_problem(kernel)
    k = kernel.shape[-1]
    start = torch.full_like(kernel, 1 / k**2)
    assert float(kernel_objective(x, y, kernel, mask)) < 1e-20  # the model is exact
    est = solve_kernel(x, y, start, mask, iters=400)
    assert (est >= 0).all() and torch.allclose(est.sum((-2, -1)), torch.ones(1, 1, dtype=F64), atol=1e-12)
    assert (est - kernel).abs().max() < 1e-5
    assert float(kernel_objective(x, y, est, mask)) < 1e-9 * float(kernel_objective(x, y, start, mask))


def test_solve_kernel_circular_recovers_true_kernel():
    """Without a mask (circular domain, circular blur data) the true kernel is recovered too."""
    kernel = l_shaped_kernel(7)
    x = _rand(1, 1, 16, 16, seed=31)
    y = conv_circular(x, kernel)
    est = solve_kernel(x, y, torch.full_like(kernel, 1 / 49), iters=400)
    assert (est - kernel).abs().max() < 1e-5


def test_solve_kernel_never_worse_than_start():
    """With a mismatched image (noisy) the optimum is not the truth; after any number of
    iterations the objective is <= the start's, the constraints hold, and many iterations
    approach the best value found."""
    kernel = l_shaped_kernel(7)
    d, x, y, mask = _kernel_problem(kernel, seed=32)
    x_bad = x + 0.3 * _randn(*x.shape, seed=33)
    start = torch.full_like(kernel, 1 / 49)
    f0 = float(kernel_objective(x_bad, y, start, mask))
    values = []
    for n in range(0, 41):
        est = solve_kernel(x_bad, y, start, mask, iters=n)
        assert (est >= 0).all() and abs(float(est.sum()) - 1) < 1e-12
        values.append(float(kernel_objective(x_bad, y, est, mask)))
    assert all(v <= f0 * (1 + 1e-12) for v in values)
    assert values[1] < f0  # the first step is a plain projected gradient step: a strict decrease
    best = float(kernel_objective(x_bad, y, solve_kernel(x_bad, y, start, mask, iters=400), mask))
    assert best <= min(values) * (1 + 1e-9) and values[-1] < best * 1.05 + 1e-12


def test_solve_kernel_large_beta_goes_to_projected_anchor():
    """With a huge anchor weight the solution is the simplex projection of the anchor (not of
    the data fit); with beta = 0 the anchor is ignored."""
    kernel = l_shaped_kernel(7)
    d, x, y, mask = _kernel_problem(kernel, seed=34)
    anchor = _randn(1, 1, 7, 7, seed=35) * 0.1 + 0.02
    start = torch.full_like(kernel, 1 / 49)
    target = project_simplex(anchor)
    est = solve_kernel(x, y, start, mask, iters=50, anchor=anchor, beta=1e8)
    assert (est - target).abs().max() < 1e-4
    assert (target - kernel).abs().max() > 0.05
    free = solve_kernel(x, y, start, mask, iters=50)
    assert torch.equal(solve_kernel(x, y, start, mask, iters=50, anchor=anchor, beta=0.0), free)
    # moderate beta lands in between (closer to the anchor projection than the free solution)
    mid = solve_kernel(x, y, start, mask, iters=200, anchor=anchor, beta=50.0)
    assert (mid - target).norm() < (free - target).norm()
    # a huge gamma (min ||k||^2 on the simplex) gives the uniform kernel, from any start
    flat = solve_kernel(x, y, kernel, mask, iters=50, gamma=1e8)
    assert torch.allclose(flat, torch.full_like(kernel, 1 / 49), atol=1e-5)


def test_solve_kernel_batch_equals_one_by_one():
    """A batch of two different kernels (own images) gives each sample's own solution."""
    kernels = torch.cat([l_shaped_kernel(7), _line_kernel(7)])
    d, x, y, mask = _kernel_problem(kernels, seed=36)
    start = torch.full_like(kernels, 1 / 49)
    x_bad = x + 0.1 * _randn(*x.shape, seed=37)
    batch = solve_kernel(x_bad, y, start, mask, iters=25, gamma=0.1)
    for i in range(2):
        one = solve_kernel(x_bad[i:i + 1], y[i:i + 1], start[i:i + 1], mask, iters=25, gamma=0.1)
        assert torch.allclose(batch[i:i + 1], one, atol=1e-13)
    assert (batch[0] - batch[1]).abs().max() > 0.05
    objective = kernel_objective(x_bad, y, batch, mask)
    assert objective.shape == (2,)
    for i in range(2):
        assert torch.allclose(objective[i], kernel_objective(x_bad[i:i + 1], y[i:i + 1], batch[i:i + 1], mask)[0])


def test_kernel_objective_is_the_gradient_domain_misfit():
    """kernel_objective equals the squared misfit of forward differences that use observed
    pixels only, computed by hand on the valid window (no grid, no FFT)."""
    kernel = _line_kernel(5)
    d, x, _, mask = _kernel_problem(kernel, seed=38, shape=(9, 10))
    y = d.embed(_rand(1, 2, 9, 10, seed=39))
    (top, left), c = d.offset, 2
    window = x[..., top - c:top + 9 + c, left - c:left + 10 + c]
    r = Blur("valid", "direct")(window, kernel=kernel) - d.crop(y)  # (1, 2, 9, 10) residual
    expected = (r[..., :, 1:] - r[..., :, :-1]).pow(2).sum() + (r[..., 1:, :] - r[..., :-1, :]).pow(2).sum()
    assert torch.allclose(kernel_objective(x, y, kernel, mask), expected.reshape(1), rtol=1e-10)


# ----------------------------------------------------------------------- estimate_noise

@pytest.mark.parametrize("sigma", [0.01, 0.05, 0.2])
def test_estimate_noise_on_gaussian_noise(sigma):
    """On a flat-plus-ramp image with Gaussian noise of known std, the MAD estimate is within
    10% of the std, per sample (the ramp is invisible to the diagonal Haar coefficients)."""
    n = 128
    ramp = torch.linspace(0, 1, n, dtype=F64)
    clean = 0.3 + 0.4 * ramp[None, :] + 0.2 * ramp[:, None]
    stds = torch.tensor([sigma, 2 * sigma], dtype=F64).reshape(2, 1, 1, 1)
    y = clean.expand(2, 3, n, n) + stds * _randn(2, 3, n, n, seed=40)
    est = estimate_noise(y)
    assert est.shape == (2,)
    assert torch.allclose(est, stds.flatten(), rtol=0.1)
    assert estimate_noise(clean.expand(1, 1, n, n)).abs().max() < 1e-12


def test_solve_kernel_with_only_the_strongest_edges():
    """edge_fraction < 1 keeps only that share of the image's gradient pixels (by magnitude over
    channels): the kept gradients are exactly the top ones, the rest zero; edge_fraction=1 is
    the default."""
    from blinddps.physics.solves import _strong_edges
    from blinddps.physics.fft import grad

    kernel = l_shaped_kernel(7)
    d, x, y, mask = _kernel_problem(kernel, shape=(24, 24))
    gx, gy = grad(x)
    kx, ky = _strong_edges(gx, gy, 0.3)
    kept = ((kx != 0) | (ky != 0)).any(dim=1)
    magnitude = (gx * gx + gy * gy).sum(dim=1)
    assert abs(kept.double().mean().item() - 0.3) < 0.01
    assert magnitude[kept].min() >= magnitude[~kept].max()
    assert torch.equal(kx, gx * kept[:, None]) and torch.equal(ky, gy * kept[:, None])
    start = torch.full_like(kernel, 1 / 49)
    assert torch.equal(solve_kernel(x, y, start, mask, iters=5),
                       solve_kernel(x, y, start, mask, iters=5, edge_fraction=1.0))
    # A blocky image has gradients only on block borders: keeping the strongest 60% of gradient
    # pixels keeps all of them, so the exact kernel is still recovered; dropping real gradients
    # (10%) makes the model inexact and the estimate moves away.
    blocks = torch.nn.functional.interpolate(_rand(1, 2, 6, 6, seed=5), size=d.grid, mode="nearest")
    yb = d.embed(d.crop(conv_circular(blocks, kernel)))
    share = ((grad(blocks)[0] != 0) | (grad(blocks)[1] != 0)).double().mean().item()
    assert share < 0.6
    est = solve_kernel(blocks, yb, start, mask, iters=600, edge_fraction=0.6)
    assert (est - kernel).abs().max() < 1e-4
    est_few = solve_kernel(blocks, yb, start, mask, iters=600, edge_fraction=0.1)
    assert (est_few - kernel).abs().max() > 1e-3


@pytest.mark.parametrize("n, multiple", [(300, 4), (1024, 4), (1030, 4), (3100, 4), (4100, 8), (2049, 1)])
def test_grid_sides_are_fft_friendly_above_1024_and_plain_below(n, multiple):
    """Up to 1024 the side is n rounded up to the multiple (the shipped measurements' grids);
    above, the smallest such multiple whose prime factors are 2, 3 and 5."""
    from blinddps.physics.blur import fast_fft_size
    from blinddps.physics.solves import grid_side

    side = grid_side(n, multiple)
    assert side >= n and side % multiple == 0
    plain = -(-n // multiple) * multiple
    if plain <= 1024:
        assert side == plain
    else:
        assert fast_fft_size(side) == side
        assert all(fast_fft_size(m) != m for m in range(plain, side, multiple))
