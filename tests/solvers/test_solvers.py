"""BlindDPS / DPS: batch independence, seeds, the guidance gradient, and a smoke run."""
import torch
import torch.nn.functional as F

from blinddps.priors import ImageTransform, KernelTransform
from blinddps.solvers import DPS, BlindDPS, KernelSparsity, SolverConfig, Unknown, misfit
from toy_priors import CallRecorder, TinyConvNet, gaussian_prior, make_prior


def conv_blur(x, *, kernel):
    """Per-sample, per-channel 'same' correlation with zero padding (a stand-in operator)."""
    b, c, h, w = x.shape
    k = kernel.shape[-1]
    weight = kernel.expand(b, c, k, k).reshape(b * c, 1, k, k)
    out = F.conv2d(x.reshape(1, b * c, h, w), weight, padding=k // 2, groups=b * c)
    return out.reshape(b, c, h, w)


def blind_problem(size=16, ksize=5, steps="10"):
    image = Unknown((3, size, size), ImageTransform(), make_prior(TinyConvNet(3, seed=1), ImageTransform(), 3, steps))
    kernel = Unknown((1, ksize, ksize), KernelTransform(),
                     make_prior(TinyConvNet(1, seed=2), KernelTransform(), 1, steps))
    return {"image": image, "kernel": kernel}


def measurement(batch=2, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=g) * 2 - 1


def _record_calls(unknowns) -> dict[str, CallRecorder]:
    """Wrap every prior's network in a CallRecorder: the real network calls, per unknown."""
    recorders = {}
    for name, u in unknowns.items():
        if u.prior is not None:
            u.prior.network = recorders[name] = CallRecorder(u.prior.network)
    return recorders


def test_smoke_20_steps_returns_valid_kernel_and_finite_image():
    unknowns = blind_problem(size=32, ksize=7, steps="20")
    calls = _record_calls(unknowns)
    solver = BlindDPS(conv_blur, unknowns, regularisers={"kernel": KernelSparsity(1.0)})
    seen = []
    result = solver.solve(measurement(1, 32), generator=torch.Generator().manual_seed(0),
                          callback=lambda info: seen.append(info.step))
    k = result.estimates["kernel"]
    assert k.shape == (1, 1, 7, 7) and (k >= 0).all()
    torch.testing.assert_close(k.sum(dim=(-2, -1)), torch.ones(1, 1))
    assert torch.isfinite(result.estimates["image"]).all()
    assert seen == list(range(20))
    assert [len(calls[n].inputs) for n in ("image", "kernel")] == [20, 20]
    assert result.nfe == sum(len(c.inputs) for c in calls.values())  # batch 1: calls = evaluations per image


def test_batch_of_two_equals_two_batches_of_one():
    solver = BlindDPS(conv_blur, blind_problem())
    y = measurement(2)
    both = solver.solve(y, generator=[torch.Generator().manual_seed(s) for s in (3, 4)])
    for b, seed in enumerate((3, 4)):
        one = solver.solve(y[b:b + 1], generator=[torch.Generator().manual_seed(seed)])
        for name in ("image", "kernel"):
            torch.testing.assert_close(both.estimates[name][b:b + 1], one.estimates[name], atol=1e-5, rtol=1e-4)


def test_same_seed_same_output_and_different_seed_differs():
    solver = BlindDPS(conv_blur, blind_problem())
    y = measurement(1)
    run = lambda s: solver.solve(y, generator=torch.Generator().manual_seed(s)).estimates["image"]  # noqa: E731
    assert torch.equal(run(5), run(5))
    assert not torch.allclose(run(5), run(6))


def test_guidance_gradient_matches_finite_differences():
    """d/dx_t of ||y - A(x0_hat(x_t); k0(z_t))|| through both networks, in float64."""
    torch.manual_seed(0)
    unknowns = blind_problem(size=6, ksize=3)
    for u in unknowns.values():
        u.prior.network.double()
    y = measurement(1, 6).double()
    x_t = torch.randn(1, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    z_t = torch.randn(1, 1, 3, 3, dtype=torch.float64, requires_grad=True)

    def loss(x_t, z_t):
        x0 = unknowns["image"].prior.denoise(x_t, 5).x0
        k0 = unknowns["kernel"].transform.to_operator(unknowns["kernel"].prior.denoise(z_t, 5).x0)
        return misfit(y, conv_blur(x0, kernel=k0)).sum()

    assert torch.autograd.gradcheck(loss, (x_t, z_t), eps=1e-6, atol=1e-5)


def test_kernel_sparsity_acts_where_normalised_l1_cannot():
    z = torch.rand(2, 1, 5, 5, dtype=torch.float64) * 2 - 1
    z.requires_grad_(True)
    normalised_l1 = KernelTransform().to_operator(z).abs().sum()
    (g_norm,) = torch.autograd.grad(normalised_l1, z)
    assert g_norm.abs().max() < 1e-12  # the released code's regulariser: no effect
    (g_raw,) = torch.autograd.grad(KernelSparsity(1.0)(z).sum(), z)
    assert torch.allclose(g_raw, torch.full_like(g_raw, 0.5))


def test_dps_with_identity_operator_recovers_the_measurement():
    """Exact Gaussian prior + noise-free identity measurement: the sample should sit near y,
    far closer than an unguided prior sample."""
    prior = gaussian_prior(ImageTransform(), 1, respacing="50", std=0.5)
    image = Unknown((1, 8, 8), ImageTransform(), prior)
    g = torch.Generator().manual_seed(0)
    y = (torch.randn(1, 1, 8, 8, generator=g) * 0.5).clamp(-1, 1)
    guided = DPS(lambda x: x, image, SolverConfig(step_size="sqrt_abar", zeta=1.0))
    out = guided.solve(y, known={}, generator=torch.Generator().manual_seed(1)).estimates["image"]
    unguided = DPS(lambda x: x, image, SolverConfig(step_size="constant", zeta=0.0))
    free = unguided.solve(y, known={}, generator=torch.Generator().manual_seed(1)).estimates["image"]
    assert (out - y).norm() < 0.15 * (free - y).norm()


def test_uniform_kernel_unknown_follows_gradient_only():
    """Without a prior the kernel starts uniform and moves by the guidance alone (its exact
    steps: test_solver_arithmetic); it must move, and cost no network call."""
    unknowns = blind_problem()
    unknowns["kernel"] = Unknown((1, 5, 5), KernelTransform(), prior=None)
    calls = _record_calls(unknowns)
    result = BlindDPS(conv_blur, unknowns, SolverConfig(zeta=20.0)).solve(
        measurement(1), generator=torch.Generator().manual_seed(0))
    k = result.estimates["kernel"]
    assert (k >= 0).all() and torch.allclose(k.sum(), torch.tensor(1.0))
    assert (k - 1 / 25).abs().max() > 1e-3, "the kernel stayed uniform: it received no gradient"
    assert list(calls) == ["image"] and len(calls["image"].inputs) == 10
    assert result.nfe == len(calls["image"].inputs)


def test_kernel_centring_penalises_the_offset_of_the_centre_of_mass():
    from blinddps.solvers.guidance import KernelCentring

    k = torch.zeros(2, 1, 9, 9)
    k[0, 0, 4, 4] = 1.0  # at the origin floor(9/2)
    k[1, 0, 1, 6] = 1.0  # 3 rows up, 2 columns right
    z = KernelTransform().to_net(k)
    penalty = KernelCentring(0.5)(z)
    torch.testing.assert_close(penalty, torch.tensor([0.0, 0.5 * (3**2 + 2**2)]))
    z = z.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(KernelCentring(0.5)(z).sum(), z)
    assert grad[0].abs().max() == 0 and grad[1].abs().max() > 0


def test_uniform_kernel_with_sparsity_never_collapses_to_zero():
    """Without a prior, the sparsity pull may drive the whole state to -1: the kernel must
    then stay a valid (uniform) kernel, never all zeros."""
    unknowns = blind_problem()
    unknowns["kernel"] = Unknown((1, 5, 5), KernelTransform(), prior=None)
    solver = BlindDPS(conv_blur, unknowns, SolverConfig(zeta=50.0), regularisers={"kernel": KernelSparsity(100.0)})
    k = solver.solve(measurement(1), generator=torch.Generator().manual_seed(0)).estimates["kernel"]
    torch.testing.assert_close(k.sum(), torch.tensor(1.0))
    assert (k >= 0).all()
    flat = KernelTransform().to_operator(-torch.ones(1, 1, 5, 5))
    torch.testing.assert_close(flat, torch.full((1, 1, 5, 5), 1 / 25))
