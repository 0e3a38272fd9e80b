"""Forward operators: golden references, conventions, invariants, gradients."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from blinddps.physics import (Blur, GaussianNoise, PoissonNoise, Turbulence, blur,
                              center_kernel, flip_kernel, pad_kernel_to, warp)

PADDINGS = ("zeros", "circular", "reflect", "replicate", "valid")


def _rand(*shape: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _kernel(*shape: int, seed: int = 1, dtype=torch.float64) -> torch.Tensor:
    k = _rand(*shape, seed=seed, dtype=dtype)
    return k / k.sum((-2, -1), keepdim=True)


def _golden(golden_dir, prefix: str) -> dict[str, torch.Tensor]:
    data = np.load(golden_dir / "operators.npz")
    return {key.split("/")[1]: torch.from_numpy(data[key]) for key in data
            if key.startswith(prefix + "/")}


# ------------------------------------------------------------------ golden references

@pytest.mark.parametrize("case", ["blur_k9", "blur_k8"])
@pytest.mark.parametrize("method", ["direct", "fft"])
def test_blur_matches_reference_cross_correlation(golden_dir, case, method):
    g = _golden(golden_dir, case)
    y = Blur("zeros", method)(g["x"], kernel=flip_kernel(g["kernel"]))
    assert torch.allclose(y, g["y"], atol=1e-6, rtol=0)
    # The unflipped kernel is a different operator: the orientation is really pinned down.
    assert (Blur("zeros", method)(g["x"], kernel=g["kernel"]) - g["y"]).abs().max() > 0.05


@pytest.mark.parametrize("method", ["direct", "fft"])
def test_turbulence_matches_reference(golden_dir, method):
    g = _golden(golden_dir, "turbulence")
    op = Turbulence("zeros", method)
    y = op(g["x"], kernel=flip_kernel(g["kernel"]), tilt=g["tilt"])
    assert torch.allclose(y, g["y"], atol=1e-5, rtol=0)
    assert (op(g["x"], kernel=g["kernel"], tilt=g["tilt"]) - g["y"]).abs().max() > 0.05


def _levin(root, image: int, kernel: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from PIL import Image
    load = lambda p: np.asarray(Image.open(p).convert("L"), dtype=np.float64) / 255.0
    k = np.load(root / "kernels.npz")[f"k{kernel}"]
    return (load(root / "sharp" / f"im_{image}.png"), k,
            load(root / "blurred" / f"im_{image}_ker_{kernel}.png"))


@pytest.mark.parametrize("method", ["direct", "fft"])
def test_circular_blur_reproduces_levin_benchmark(levin_dir, method):
    sharp, k, blurred = _levin(levin_dir, image=1, kernel=2)
    x = torch.from_numpy(sharp)[None, None]
    kt = torch.from_numpy(k)[None, None]
    y = Blur("circular", method)(x, kernel=kt)[0, 0].numpy()
    # 8-bit rounding alone gives a mean error of 0.25/255; the flipped kernel is ~3/255 off.
    assert np.abs(y - blurred).mean() < 0.27 / 255
    y_flip = Blur("circular", method)(x, kernel=flip_kernel(kt))[0, 0].numpy()
    assert np.abs(y_flip - blurred).mean() > 2.0 / 255


def test_circular_blur_equals_scipy_convolve2d_wrap():
    from scipy import signal
    x, k = _rand(23, 19), _kernel(7, 5)
    ref = signal.convolve2d(x.numpy(), k.numpy(), mode="same", boundary="wrap")
    for method in ("direct", "fft"):
        y = Blur("circular", method)(x[None, None], kernel=k[None, None])[0, 0]
        np.testing.assert_allclose(y.numpy(), ref, atol=1e-12)


def test_zero_padded_blur_equals_scipy_convolve2d_fill():
    from scipy import signal
    x, k = _rand(17, 20), _kernel(9, 9)
    ref = signal.convolve2d(x.numpy(), k.numpy(), mode="same", boundary="fill")
    np.testing.assert_allclose(Blur("zeros")(x[None, None], kernel=k[None, None])[0, 0].numpy(),
                               ref, atol=1e-12)
    valid = signal.convolve2d(x.numpy(), k.numpy(), mode="valid")
    np.testing.assert_allclose(Blur("valid")(x[None, None], kernel=k[None, None])[0, 0].numpy(),
                               valid, atol=1e-12)


# ---------------------------------------------------------------------- conventions

@pytest.mark.parametrize("padding", PADDINGS[:4])
@pytest.mark.parametrize("size", [(5, 5), (8, 8), (4, 7)])
def test_delta_at_origin_is_identity(padding, size):
    k = torch.zeros(1, 1, *size, dtype=torch.float64)
    k[..., size[0] // 2, size[1] // 2] = 1.0
    x = _rand(2, 3, 12, 13)
    for method in ("direct", "fft"):
        assert torch.allclose(Blur(padding, method)(x, kernel=k), x, atol=1e-12)


def test_shifted_delta_shifts_image():
    # y[n] = sum_m k[m] x[n - m + c]: a delta one row below the origin moves content down.
    k = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    k[..., 3, 2] = 1.0
    x = _rand(1, 1, 10, 10)
    y = Blur("circular")(x, kernel=k)
    assert torch.allclose(y, x.roll(1, dims=-2))


def test_valid_output_size():
    x, k = _rand(2, 3, 20, 17), _kernel(1, 1, 6, 5)
    for method in ("direct", "fft"):
        assert Blur("valid", method)(x, kernel=k).shape == (2, 3, 15, 13)


def test_pad_kernel_to_keeps_the_blur():
    x, k = _rand(1, 2, 30, 30), _kernel(1, 1, 9, 9)
    for size in (16, 21):
        padded = pad_kernel_to(k, size)
        assert padded.shape[-2:] == (size, size)
        assert torch.allclose(blur(x, padded), blur(x, k), atol=1e-12)
    assert torch.equal(pad_kernel_to(pad_kernel_to(k, 16), 9), k)


def test_center_kernel_moves_mass_to_origin():
    k = torch.zeros(2, 1, 9, 9, dtype=torch.float64)
    k[0, 0, 1, 2] = k[0, 0, 1, 3] = 0.5
    k[1, 0, 6, 7] = 1.0
    c = center_kernel(k)
    assert c[0, 0, 4, 4] == 0.5 and c[0, 0, 4, 5] == 0.5 and c[1, 0, 4, 4] == 1.0
    assert torch.allclose(c.sum((-2, -1)), k.sum((-2, -1)))


# ---------------------------------------------------------------------- invariants

def _operators():
    """(name, operator, params factory, input size, output size) for every linear operator."""
    cases = []
    for padding in PADDINGS:
        for method in ("direct", "fft"):
            out = (12, 10) if padding == "valid" else (16, 15)
            cases.append((f"blur-{padding}-{method}", Blur(padding, method),
                          lambda: {"kernel": _kernel(2, 1, 5, 6, seed=3)}, (16, 15), out))
    for padding in ("zeros", "circular"):
        cases.append((f"turbulence-{padding}", Turbulence(padding),
                      lambda: {"kernel": _kernel(2, 1, 3, 3, seed=4),
                               "tilt": 2.0 * _rand(2, 2, 16, 15, seed=5) - 1.0},
                      (16, 15), (16, 15)))
    return cases


OPERATORS = _operators()


@pytest.mark.parametrize("name,op,params,in_size,out_size", OPERATORS, ids=[c[0] for c in OPERATORS])
def test_adjointness(name, op, params, in_size, out_size):
    p = params()
    x, y = _rand(2, 3, *in_size, seed=6), _rand(2, 3, *out_size, seed=7)
    lhs = (op(x, **p) * y).sum()
    rhs = (x * op.adjoint(y, **p)).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-12)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("size", [(9, 9), (8, 8), (4, 7)])
def test_fft_equals_direct(padding, size):
    x = _rand(2, 3, 24, 21, dtype=torch.float32)
    k = _kernel(2, 3, *size, dtype=torch.float32)
    direct = Blur(padding, "direct")
    fft = Blur(padding, "fft")
    ref = direct(x, kernel=k)
    assert (fft(x, kernel=k) - ref).norm() / ref.norm() < 1e-5
    if padding in ("zeros", "circular", "valid"):
        y = _rand(*ref.shape, seed=8, dtype=torch.float32)
        adj = direct.adjoint(y, kernel=k)
        assert (fft.adjoint(y, kernel=k) - adj).norm() / adj.norm() < 1e-5


@pytest.mark.parametrize("name,op,params,in_size,out_size", OPERATORS, ids=[c[0] for c in OPERATORS])
def test_batch_of_two_equals_two_batches_of_one(name, op, params, in_size, out_size):
    p = params()
    x = _rand(2, 3, *in_size)
    y = op(x, **p)
    for i in range(2):
        yi = op(x[i:i + 1], **{key: v[i:i + 1] for key, v in p.items()})
        assert torch.allclose(y[i:i + 1], yi, atol=1e-12)


def test_kernel_broadcasts_over_channels_and_batch():
    x, k = _rand(2, 3, 14, 14), _kernel(1, 1, 5, 5)
    ref = Blur()(x, kernel=k.expand(2, 3, 5, 5).clone())
    assert torch.allclose(Blur()(x, kernel=k), ref, atol=1e-12)
    assert torch.allclose(Blur()(x, kernel=k[0, 0]), ref, atol=1e-12)
    # One image, several kernels: the batch comes from the kernel.
    ks = _kernel(4, 1, 5, 5)
    assert Blur()(x[:1], kernel=ks).shape == (4, 3, 14, 14)


def test_per_channel_kernels():
    x, k = _rand(1, 3, 14, 14), _kernel(1, 3, 5, 5)
    y = Blur()(x, kernel=k)
    for c in range(3):
        yc = Blur()(x[:, c:c + 1], kernel=k[:, c:c + 1])
        assert torch.allclose(y[:, c:c + 1], yc, atol=1e-12)


# ---------------------------------------------------------------------- gradients

@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("method", ["direct", "fft"])
def test_blur_gradcheck(padding, method):
    x = _rand(2, 2, 7, 6).requires_grad_()
    k = _kernel(2, 1, 3, 4).requires_grad_()
    op = Blur(padding, method)
    assert torch.autograd.gradcheck(lambda x, k: op(x, kernel=k), (x, k))


def test_turbulence_gradcheck():
    x = _rand(1, 2, 6, 7).requires_grad_()
    k = _kernel(1, 1, 3, 3).requires_grad_()
    # Keep the tilt away from integer pixel positions, where bilinear sampling has kinks.
    tilt = (0.3 + 0.4 * _rand(1, 2, 6, 7, seed=9)).requires_grad_()
    op = Turbulence()
    assert torch.autograd.gradcheck(lambda x, k, t: op(x, kernel=k, tilt=t), (x, k, tilt))


def test_measurement_loss_gradient_reaches_kernel_and_tilt():
    # The solver backpropagates ||y - A(x; k, tilt)|| into every parameter.
    x, y = _rand(1, 3, 16, 16), _rand(1, 3, 16, 16, seed=2)
    k = _kernel(1, 1, 5, 5).requires_grad_()
    tilt = (0.5 * _rand(1, 2, 16, 16, seed=3)).requires_grad_()
    loss = (y - Turbulence()(x, kernel=k, tilt=tilt)).norm()
    loss.backward()
    assert k.grad.abs().sum() > 0 and tilt.grad.abs().sum() > 0


# ---------------------------------------------------------------------- side effects

def test_inputs_not_modified_in_place():
    x, k = _rand(2, 3, 12, 12), _kernel(2, 1, 5, 5)
    tilt = _rand(2, 2, 12, 12)
    before = [t.clone() for t in (x, k, tilt)]
    for padding in PADDINGS:
        for method in ("direct", "fft"):
            Blur(padding, method)(x, kernel=k)
    Turbulence()(x, kernel=k, tilt=tilt)
    Turbulence().adjoint(x, kernel=k, tilt=tilt)
    Blur("reflect").adjoint(x, kernel=k)
    GaussianNoise(0.1)(x)
    PoissonNoise(100.0)(x)
    for b, a in zip(before, (x, k, tilt)):
        assert torch.equal(a, b)


def test_warp_zero_tilt_is_identity_and_integer_tilt_shifts():
    x = _rand(1, 2, 9, 8)
    assert torch.allclose(warp(x, torch.zeros(1, 2, 9, 8, dtype=x.dtype)), x, atol=1e-12)
    tilt = torch.zeros(1, 2, 9, 8, dtype=x.dtype)
    tilt[:, 0] = 1.0  # sample one column to the right: content moves left, zeros enter
    out = warp(x, tilt)
    assert torch.allclose(out[..., :-1], x[..., 1:], atol=1e-12)
    assert torch.all(out[..., -1] == 0)


# ---------------------------------------------------------------------------- noise

def test_gaussian_noise_level_and_reproducibility():
    y = torch.full((4, 3, 32, 32), 0.5)
    noise = GaussianNoise(0.1)
    a = noise(y, generator=torch.Generator().manual_seed(0))
    b = noise(y, generator=torch.Generator().manual_seed(0))
    c = noise(y, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert abs((a - y).std().item() - 0.1) < 0.005 and abs((a - y).mean().item()) < 0.005


def test_poisson_noise_level_and_reproducibility():
    y = torch.full((4, 3, 32, 32), 0.25)
    noise = PoissonNoise(400.0)
    a = noise(y, generator=torch.Generator().manual_seed(0))
    b = noise(y, generator=torch.Generator().manual_seed(0))
    c = noise(y, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # mean y, variance y / rate: std sqrt(0.25 / 400) = 0.025
    assert abs(a.mean().item() - 0.25) < 0.003 and abs(a.std().item() - 0.025) < 0.002
    assert torch.all(a >= 0)


def test_half_precision_fft_runs_in_float32():
    x, k = _rand(1, 3, 30, 29, dtype=torch.float32), _kernel(1, 1, 9, 9, dtype=torch.float32)
    for padding in ("zeros", "circular"):
        y = Blur(padding, "fft")(x.bfloat16(), kernel=k.bfloat16())
        assert y.dtype == torch.bfloat16
        ref = Blur(padding, "direct")(x, kernel=k)
        assert (y.float() - ref).abs().max() < 2e-2
