"""blinddps.physics.kernel_geometry: pad, shift, centre of mass and centring of kernels."""
import pytest
import torch

from blinddps.physics import Blur
from blinddps.physics.kernel_geometry import (center_kernel, centre_kernel, centre_of_mass,
                                              embed_periodic, flip_kernel, origin, pad_kernel_to,
                                              shift_kernel)


def _kernel(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    k = torch.rand(*shape, generator=g, dtype=torch.float64) ** 3
    return k / k.sum((-2, -1), keepdim=True)


def _delta(shape, at):
    k = torch.zeros(*shape, dtype=torch.float64)
    k[..., at[0], at[1]] = 1.0
    return k


@pytest.mark.parametrize("ksize", [(7, 7), (8, 6), (5, 9)])
@pytest.mark.parametrize("size", [(16, 16), (9, 12), (21, 10)])
def test_pad_then_crop_is_identity_and_keeps_the_blur(ksize, size):
    k = _kernel(2, 1, *ksize)
    padded = pad_kernel_to(k, size)
    assert padded.shape == (2, 1, *size)
    assert torch.equal(pad_kernel_to(padded, ksize), k)
    assert padded.sum() == pytest.approx(k.sum().item())
    x = torch.rand(2, 3, 24, 26, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for method in ("direct", "fft"):
        blur = Blur("circular", method)
        torch.testing.assert_close(blur(x, kernel=padded), blur(x, kernel=k), rtol=0, atol=1e-12)


def test_pad_keeps_the_origin_and_int_size():
    k = _delta((1, 1, 6, 6), origin(torch.empty(6, 6)))
    assert torch.equal(pad_kernel_to(k, 11), _delta((1, 1, 11, 11), (5, 5)))
    assert torch.equal(pad_kernel_to(k, (4, 3)), _delta((1, 1, 4, 3), (2, 1)))


def test_flip_is_a_180_degree_rotation():
    k = _kernel(1, 1, 5, 4)
    assert torch.equal(flip_kernel(k)[..., 0, 0], k[..., -1, -1])
    assert torch.equal(flip_kernel(flip_kernel(k)), k)


@pytest.mark.parametrize("shape,at", [((9, 9), (1, 6)), ((8, 10), (4, 5)), ((4, 7), (3, 0))])
def test_centre_of_mass_of_a_delta(shape, at):
    k = _delta((2, 1, *shape), at)
    com = centre_of_mass(k)
    assert com.shape == (2, 1, 2)
    assert com.tolist() == [[[float(at[0]), float(at[1])]]] * 2
    rel = centre_of_mass(k, relative=True)
    assert rel[0, 0].tolist() == [at[0] - shape[0] // 2, at[1] - shape[1] // 2]
    # normalised=True skips the division: the same for a kernel that sums to 1 ...
    assert torch.equal(centre_of_mass(k, relative=True, normalised=True), rel)
    # ... and scales with the mass otherwise.
    assert torch.equal(centre_of_mass(3 * k, normalised=True), 3 * com)
    assert torch.equal(centre_of_mass(3 * k), com)


def test_centre_of_mass_of_empty_kernel_is_zero_not_nan():
    assert centre_of_mass(torch.zeros(2, 1, 5, 5)).abs().max() == 0


def test_centre_of_mass_is_differentiable():
    k = _kernel(1, 1, 5, 5).requires_grad_(True)
    (g,) = torch.autograd.grad(centre_of_mass(k, relative=True)[..., 0].sum(), k)
    # d(cy)/dk[r, c] = (r - cy) / mass: rows above the centre negative, below positive.
    cy = centre_of_mass(k.detach())[0, 0, 0]
    expected = (torch.arange(5, dtype=k.dtype)[:, None] - cy).expand(5, 5) / k.detach().sum()
    torch.testing.assert_close(g[0, 0], expected)


@pytest.mark.parametrize("mode", ["zeros", "circular"])
def test_centring_moves_the_mass_to_the_origin(mode):
    # A compact blob near a corner, well inside the support: neither mode cuts anything.
    k = torch.zeros(4, 1, 15, 13, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    for b, (r, c) in enumerate([(1, 1), (10, 2), (3, 9), (7, 6)]):
        k[b, 0, r:r + 4, c:c + 3] = torch.rand(4, 3, generator=g, dtype=torch.float64)
    centred = centre_kernel(k, mode=mode)
    rel = centre_of_mass(centred, relative=True)
    assert (rel.abs() <= 0.5).all()
    torch.testing.assert_close(centred.sum((-2, -1)), k.sum((-2, -1)))
    # Only moved: the sorted values are the same.
    assert torch.equal(centred.flatten(1).sort().values, k.flatten(1).sort().values)
    assert (centre_of_mass(center_kernel(k), relative=True).abs() <= 0.5).all()


def test_rounding_variants_differ_only_at_ties():
    # Two equal deltas at rows 1 and 2 of a 5-row kernel: centre 1.5, offset to the origin 0.5.
    k = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    k[0, 0, 1, 2] = k[0, 0, 2, 2] = 0.5
    up = centre_kernel(k, rounding="half_up")  # moves down by floor(0.5 + 0.5) = 1
    even = centre_kernel(k, rounding="half_even")  # round(0.5) = 0: stays
    assert up[0, 0, 2, 2] == 0.5 and up[0, 0, 3, 2] == 0.5
    assert torch.equal(even, k)
    assert torch.equal(center_kernel(k), even)
    k2 = torch.zeros_like(k)
    k2[0, 0, 0, 4] = 1.0
    assert torch.equal(centre_kernel(k2, rounding="half_up"), centre_kernel(k2, rounding="half_even"))


def test_zero_filled_and_circular_shifts_differ_at_the_border():
    k = _delta((1, 1, 5, 5), (4, 4))
    s = torch.tensor([[1, 1]])
    assert shift_kernel(k, s, mode="zeros").abs().max() == 0
    assert torch.equal(shift_kernel(k, s, mode="circular"), _delta((1, 1, 5, 5), (0, 0)))


def test_shift_direction_moves_down_and_right():
    k = _delta((1, 1, 7, 7), (3, 3))
    assert torch.equal(shift_kernel(k, (2, -1)), _delta((1, 1, 7, 7), (5, 2)))


@pytest.mark.parametrize("ksize", [(7, 7), (6, 9)])
def test_circular_shift_then_back_is_identity(ksize):
    k = _kernel(3, 2, *ksize)
    g = torch.Generator().manual_seed(5)
    s = torch.randint(-12, 13, (3, 2, 2), generator=g)
    assert torch.equal(shift_kernel(shift_kernel(k, s, "circular"), -s, "circular"), k)
    # Zero-filled: the identity wherever nothing left the support.
    small = torch.randint(-1, 2, (3, 2, 2), generator=g)
    inner = pad_kernel_to(pad_kernel_to(k, (ksize[0] - 2, ksize[1] - 2)), ksize)
    assert torch.equal(shift_kernel(shift_kernel(inner, small), -small), inner)


def test_circular_shift_matches_roll():
    k = _kernel(1, 1, 6, 8)
    assert torch.equal(shift_kernel(k, (2, -3), "circular"), k.roll((2, -3), dims=(-2, -1)))


def test_shift_shapes_broadcast_batch_first():
    k = _kernel(3, 2, 5, 5)
    per_sample = torch.tensor([[1, 0], [0, -2], [2, 2]])
    out = shift_kernel(k, per_sample)
    for b in range(3):
        for c in range(2):
            assert torch.equal(out[b, c], shift_kernel(k[b, c], per_sample[b]))
    assert torch.equal(shift_kernel(k, (1, 1)), shift_kernel(k, torch.tensor([[1, 1]] * 3)))
    with pytest.raises(ValueError):
        shift_kernel(k, torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(ValueError):
        shift_kernel(k, torch.zeros(3, 2))  # float shifts are refused
    with pytest.raises(ValueError):
        shift_kernel(k, (1, 1), mode="reflect")


@pytest.mark.parametrize("mode", ["zeros", "circular"])
@pytest.mark.parametrize("rounding", ["half_up", "half_even"])
def test_batch_equals_one_by_one(mode, rounding):
    k = _kernel(5, 1, 9, 8, seed=7)
    k[2] = 0  # an empty kernel stays empty
    out = centre_kernel(k, mode=mode, rounding=rounding)
    com = centre_of_mass(k)
    for b in range(5):
        assert torch.equal(out[b], centre_kernel(k[b], mode=mode, rounding=rounding))
        assert torch.equal(out[b:b + 1], centre_kernel(k[b:b + 1], mode=mode, rounding=rounding))
        assert torch.equal(com[b], centre_of_mass(k[b]))
    assert torch.equal(pad_kernel_to(k, 12)[3], pad_kernel_to(k[3], 12))


def test_centring_commutes_with_integer_shifts_when_rounding_half_up():
    # On a canvas with room, centring a shifted kernel gives the same as centring the kernel.
    k = pad_kernel_to(_kernel(4, 1, 5, 5, seed=9), 15)
    g = torch.Generator().manual_seed(2)
    s = torch.randint(-4, 5, (4, 2), generator=g)
    torch.testing.assert_close(centre_kernel(shift_kernel(k, s)), centre_kernel(k), rtol=0, atol=0)


def test_embed_periodic_is_the_circular_blur_layout():
    x = torch.rand(2, 1, 12, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    k = _kernel(2, 1, 6, 5)
    kp = embed_periodic(k, (12, 11))
    assert kp.shape == (2, 1, 12, 11) and torch.equal(kp[..., 0, 0], k[..., 3, 2])
    y = torch.fft.irfft2(torch.fft.rfft2(x) * torch.fft.rfft2(kp), s=(12, 11))
    torch.testing.assert_close(y, Blur("circular", "direct")(x, kernel=k), rtol=0, atol=1e-12)


@pytest.mark.parametrize("size", [1, 4, 7])
def test_delta_kernel_is_the_identity_blur(size):
    from blinddps.physics.kernel_geometry import delta_kernel
    k = delta_kernel(size, leading=(2, 1), dtype=torch.float64)
    assert k.shape == (2, 1, size, size) and k.dtype == torch.float64
    assert torch.equal(k.sum(dim=(-2, -1)), torch.ones(2, 1, dtype=torch.float64))
    assert centre_of_mass(k, relative=True).abs().max() == 0
    x = torch.rand(2, 3, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(Blur("circular")(x, kernel=k), x, atol=1e-12)


def test_cross_correlation_matches_the_direct_sum_at_every_shift():
    """c[s] = sum_n a[n + s] b[n], shift s at index s mod (Ka + Kb - 1), sizes may differ."""
    from blinddps.physics.kernel_geometry import cross_correlation

    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(5, 4, generator=g, dtype=torch.float64), torch.rand(3, 6, generator=g, dtype=torch.float64)
    c = cross_correlation(a, b)
    assert c.shape == (7, 9)
    for sy in range(-2, 5):
        for sx in range(-5, 4):
            direct = sum(float(a[i + sy, j + sx] * b[i, j]) for i in range(3) for j in range(6)
                         if 0 <= i + sy < 5 and 0 <= j + sx < 4)
            assert abs(float(c[sy % 7, sx % 9]) - direct) < 1e-12
