"""Metrics: PSNR/SSIM against formulas and an independent numpy SSIM, kernel MNC/MSE, Levin error ratio."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from blinddps.metrics import (
    error_ratio,
    fid_available,
    kernel_mnc,
    kernel_mse,
    lpips_available,
    psnr,
    rgb_to_luma,
    sse_upto_shift,
    ssim,
    success_rate,
)
from toy_kernels import l_shaped_kernel


def _texture(b: int, c: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Smooth random images in [0, 1] (filtered noise): natural-ish, with edges at all scales."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b * c, 1, h, w, generator=g, dtype=torch.float64)
    x = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="circular"), 3, stride=1)
    x = (x - x.amin()) / (x.amax() - x.amin())
    return x.view(b, c, h, w)


# ---------------------------------------------------------------- PSNR


def test_psnr_identical_is_inf():
    x = _texture(2, 3, 16, 16)
    assert torch.isinf(psnr(x, x)).all()


def test_psnr_constant_offset_formula():
    x = _texture(2, 3, 16, 16) * 0.5
    for c, rng in [(0.1, 1.0), (0.01, 1.0), (5.0, 255.0)]:
        expected = 20 * math.log10(rng / c)
        torch.testing.assert_close(psnr(x + c, x, data_range=rng), torch.full((2,), expected, dtype=x.dtype))


def test_psnr_per_sample_and_crop():
    x = _texture(2, 1, 20, 20)
    y = x.clone()
    y[0] += 0.1
    y[1, :, :2, :] += 0.5  # error only in the border rows: removed by crop=2
    p = psnr(y, x)
    assert p.shape == (2,) and abs(p[0].item() - 20.0) < 1e-9 and p[1] < 30
    assert torch.isinf(psnr(y, x, crop=2)[1])


# ---------------------------------------------------------------- SSIM


def _ssim_numpy(x: np.ndarray, y: np.ndarray, data_range: float = 1.0) -> float:
    """Independent reference: Wang 2004 mean SSIM of 2-D arrays, explicit 11x11 windows ('valid')."""
    t = np.arange(11) - 5.0
    g = np.exp(-(t**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    px = np.lib.stride_tricks.sliding_window_view(x, (11, 11))
    py = np.lib.stride_tricks.sliding_window_view(y, (11, 11))
    mx, my = (px * w).sum((-1, -2)), (py * w).sum((-1, -2))
    vx = (w * (px - mx[..., None, None]) ** 2).sum((-1, -2))
    vy = (w * (py - my[..., None, None]) ** 2).sum((-1, -2))
    cxy = (w * (px - mx[..., None, None]) * (py - my[..., None, None])).sum((-1, -2))
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    m = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(m.mean())


def test_ssim_identical_is_one():
    x = _texture(2, 3, 24, 24)
    torch.testing.assert_close(ssim(x, x), torch.ones(2, dtype=x.dtype))


def test_ssim_matches_numpy_reference():
    x = _texture(2, 3, 26, 23, seed=1)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=x.dtype)
    y = (x + 0.1 * noise).clamp(0, 1)
    got = ssim(x, y)
    ref = [np.mean([_ssim_numpy(x[b, c].numpy(), y[b, c].numpy()) for c in range(3)]) for b in range(2)]
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10)
    assert got[0] < 0.99


def test_ssim_gray_uses_bt601_luma_and_data_range():
    x = _texture(1, 3, 24, 24, seed=3)
    y = (x * 0.8 + 0.1).clamp(0, 1)
    lum = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
    torch.testing.assert_close(rgb_to_luma(x), lum)
    torch.testing.assert_close(ssim(x, y, gray=True), ssim(lum, rgb_to_luma(y)))
    torch.testing.assert_close(ssim(255 * x, 255 * y, data_range=255.0), ssim(x, y))


def test_ssim_batch_equals_singles_and_is_symmetric():
    x, y = _texture(2, 3, 24, 24, seed=4), _texture(2, 3, 24, 24, seed=5)
    both = ssim(x, y)
    singles = torch.cat([ssim(x[i : i + 1], y[i : i + 1]) for i in range(2)])
    torch.testing.assert_close(both, singles)
    torch.testing.assert_close(ssim(y, x), both)


def test_ssim_matches_skimage():
    from skimage import metrics
    x = _texture(1, 1, 32, 32, seed=6)
    y = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(7), dtype=x.dtype)).clamp(0, 1)
    _, smap = metrics.structural_similarity(
        x[0, 0].numpy(), y[0, 0].numpy(), gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=1.0, full=True,
    )
    # skimage keeps a 5-pixel border (filtered with reflection); our 'valid' map is its interior.
    assert abs(float(smap[5:-5, 5:-5].mean()) - ssim(x, y).item()) < 1e-6


# ---------------------------------------------------------------- kernels


def _mnc_bruteforce(a: np.ndarray, b: np.ndarray) -> float:
    """max over all shifts of the zero-padded correlation, with explicit loops."""
    (a1, a2), (b1, b2) = a.shape, b.shape
    big = np.zeros((a1 + 2 * b1, a2 + 2 * b2))
    big[b1 : b1 + a1, b2 : b2 + a2] = a
    best = max(
        (big[i : i + b1, j : j + b2] * b).sum() for i in range(a1 + b1 + 1) for j in range(a2 + b2 + 1)
    )
    return best / (np.linalg.norm(a) * np.linalg.norm(b))


def test_mnc_matches_bruteforce_and_range():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 1, 7, 7, generator=g, dtype=torch.float64) ** 4
    b = torch.rand(3, 1, 5, 5, generator=g, dtype=torch.float64) ** 4
    got = kernel_mnc(a, b)
    assert got.shape == (3,)
    ref = [_mnc_bruteforce(a[i, 0].numpy(), b[i, 0].numpy()) for i in range(3)]
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10)
    assert ((got >= 0) & (got <= 1)).all()


def test_mnc_shift_invariant_and_orientation_sensitive():
    k = l_shaped_kernel(9)
    canvas = F.pad(k, (4, 4, 4, 4))  # 17x17, room to shift without cutting
    shifted = torch.roll(canvas, (3, -4), dims=(-2, -1))
    assert abs(kernel_mnc(shifted, k).item() - 1) < 1e-12
    assert abs(kernel_mnc(k[0, 0], k[0, 0]).item() - 1) < 1e-12  # (K, K) input -> 0-d
    flipped = kernel_mnc(k.flip(-1, -2), k).item()
    assert flipped < 0.9
    delta = torch.zeros_like(k)
    delta[..., 4, 4] = 1
    torch.testing.assert_close(kernel_mnc(delta, k), (k.amax() / k.norm()).view(1))


def test_kernel_mse_padding_and_alignment():
    k = l_shaped_kernel(9)
    padded = F.pad(k, (3, 3, 3, 3))
    assert kernel_mse(padded, k).item() == 0  # zero-padding keeps the origin
    other = torch.rand(1, 1, 9, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(kernel_mse(other, k), ((other - k) ** 2).mean().view(1))
    shifted = torch.roll(padded, (2, -1), dims=(-2, -1))
    assert kernel_mse(shifted, k).item() > 1e-4
    # (this kernel's centre of mass is not at a rounding tie, so both round the same way)
    assert abs(((k.sum(-2).flatten() * torch.arange(9)).sum() % 1).item() - 0.5) > 0.05
    assert kernel_mse(shifted, k, align="centroid").item() < 1e-20


# ---------------------------------------------------------------- error ratio


def _conv_circ(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Independent circular true convolution, origin K//2 (loops over kernel taps)."""
    c = k.shape[-1] // 2
    out = torch.zeros_like(x)
    for i in range(k.shape[-2]):
        for j in range(k.shape[-1]):
            out += k[..., i, j].view(-1, 1, 1, 1) * torch.roll(x, (i - c, j - c), dims=(-2, -1))
    return out


def test_sse_upto_shift_finds_the_shift():
    x = _texture(2, 3, 40, 40, seed=8)
    moved = torch.roll(x, (2, -3), dims=(-2, -1))
    assert (sse_upto_shift(moved, x, max_shift=4, crop=5) < 1e-18).all()
    assert (sse_upto_shift(moved, x, max_shift=1, crop=5) > 1).all()


def _sse_bruteforce(a: torch.Tensor, x: torch.Tensor, max_shift: int, crop: int) -> float:
    """min over integer shifts |s| <= max_shift of sum_{n in the cropped region} (a[n + s] - x[n])^2,
    circular, with explicit loops (an independent reference for sse_upto_shift). a, x (1, C, H, W)."""
    a, x = a[0].numpy(), x[0].numpy()
    h, w = x.shape[-2:]
    inner = (slice(None), slice(crop, h - crop), slice(crop, w - crop))
    best = math.inf
    for sy in range(-max_shift, max_shift + 1):
        for sx in range(-max_shift, max_shift + 1):
            moved = np.roll(a, (-sy, -sx), axis=(-2, -1))  # moved[n] = a[n + s]
            best = min(best, float(((moved[inner] - x[inner]) ** 2).sum()))
    return best


def _fourier_shift(x: torch.Tensor, dy: float, dx: float) -> torch.Tensor:
    """x moved by (dy, dx) pixels, fractional, circular: out[n] = x[n - d] (numpy FFT, odd sizes
    only: without a Nyquist bin the half-pixel phase ramp is exact)."""
    h, w = x.shape[-2:]
    assert h % 2 == 1 and w % 2 == 1
    ky, kx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    ramp = np.exp(-2j * np.pi * (ky * dy + kx * dx))
    return torch.from_numpy(np.fft.ifft2(np.fft.fft2(x.numpy()) * ramp).real)


def test_sse_upto_shift_finds_fractional_shifts_in_the_right_direction():
    """Levin's search: integer shifts |s| <= max_shift plus fractions 0, 1/subpixel, ...: so
    +1.5 px is reachable with max_shift 1 and subpixel 2, and a wrong sign of the fractional
    phase (which would search s - f) cannot reach it."""
    x = _texture(1, 2, 41, 41, seed=10)
    for dy, dx in ((0.0, 1.5), (1.5, -0.5), (0.5, 1.0)):
        moved = _fourier_shift(x, dy, dx)
        # (1e-9: round-off of the FFT correlation formula; a miss costs > 1e-2)
        assert sse_upto_shift(moved, x, max_shift=1, subpixel=2, crop=5).item() < 1e-9
        assert sse_upto_shift(moved, x, max_shift=1, subpixel=1, crop=5).item() > 1e-2


def test_error_ratio_equals_the_bruteforce_ratio_of_the_deconvolutions():
    """Non-trivial kernels (translated, a delta, flipped, smeared): the ratio is the SSE ratio of
    the two deconvolutions, each aligned over +-floor(K_est / 2) by brute force."""
    from blinddps.metrics import levin_deconv

    x = _texture(1, 1, 64, 64, seed=9)
    k = l_shaped_kernel(9)
    y = _conv_circ(x, k)
    canvas = torch.roll(F.pad(k, (2, 2, 2, 2)), (2, 1), dims=(-2, -1))  # 13x13, translated
    delta = torch.zeros_like(k)
    delta[..., 4, 4] = 1
    smeared = (k + torch.roll(k, 1, dims=-1)) / 2
    for k_est, worse in ((canvas, False), (delta, True), (k.flip(-1, -2), True), (smeared, True)):
        shift = k_est.shape[-1] // 2
        ref = (_sse_bruteforce(levin_deconv(y, k_est), x, shift, 8)
               / _sse_bruteforce(levin_deconv(y, k), x, shift, 8))
        assert (ref > 1.01) == worse  # a translation is forgiven, the rest is not
        assert error_ratio(x, y, k_est, k, crop=8).item() == pytest.approx(ref, rel=1e-9)


def test_error_ratio_true_shifted_and_wrong_kernels():
    x = _texture(1, 1, 64, 64, seed=9)
    k = l_shaped_kernel(9)
    y = _conv_circ(x, k)
    canvas = torch.roll(F.pad(k, (2, 2, 2, 2)), (2, 1), dims=(-2, -1))  # 13x13, translated
    assert error_ratio(x, y, canvas, k, crop=8).item() < 1.05
    delta = torch.zeros_like(k)
    delta[..., 4, 4] = 1
    assert error_ratio(x, y, delta, k, crop=8).item() > 3
    assert error_ratio(x, y, k.flip(-1, -2), k, crop=8).item() > 2


def test_success_rate():
    assert success_rate(torch.tensor([1.0, 1.9, 2.0, 2.5, 3.5])) == {2.0: 0.6, 3.0: 0.8}
    assert success_rate([1.0, 4.0], thresholds=(5.0,)) == {5.0: 1.0}


def test_error_ratio_levin_image(levin_dir):
    """A real Levin image and kernel, a slightly smeared estimate: the ratio is the brute-force
    SSE ratio of the two deconvolutions (Levin's crop 15, shifts +-floor(K_est / 2))."""
    from PIL import Image

    from blinddps.metrics import levin_deconv

    def read(path):
        return torch.from_numpy(np.asarray(Image.open(path), dtype=np.float64) / 255)[None, None]

    x, y = read(levin_dir / "sharp" / "im_2.png"), read(levin_dir / "blurred" / "im_2_ker_3.png")
    k = torch.from_numpy(np.load(levin_dir / "kernels.npz")["k3"])[None, None]
    wider = F.pad(k, (2, 2, 2, 2))
    wider = (wider + torch.roll(wider, 1, dims=-1)) / 2  # a slightly smeared estimate
    shift = wider.shape[-1] // 2
    ref = _sse_bruteforce(levin_deconv(y, wider), x, shift, 15) / _sse_bruteforce(levin_deconv(y, k), x, shift, 15)
    assert ref > 1.1
    assert error_ratio(x, y, wider, k).item() == pytest.approx(ref, rel=1e-9)


def test_perceptual_metrics_report_unavailable():
    for avail in (lpips_available(), fid_available()):
        assert not avail and avail.reason
