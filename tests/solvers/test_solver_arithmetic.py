"""BlindDPS's arithmetic, pinned by references that cannot share its bugs.

- The released code's ten-step trajectory (../shared/golden/blinddps_trajectory_r10.npz)
  replayed draw by draw through blinddps.solvers.BlindDPS with the golden networks: the
  respacing, the DDPM step with learned-range variance, the sqrt(abar_t) step size, the
  guidance gradient through both networks, no noise at the last step.
- Every step of short chains against formulas written out here (float64; exact Gaussian
  priors, whose clean-signal estimate is linear in x_t; an elementwise operator whose
  gradient has a closed form): what the golden run does not cover, i.e. DDIM with eta > 0,
  the constant step-size rule, per-unknown step scales, regularisers, prior-less unknowns,
  including states that sit exactly on their bound.
- The gradient convention at a bound (closed_clamp), and reported NFE against counted calls.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from blinddps.diffusion import DiffusionConfig, VPProcess
from blinddps.networks import ADMUNet, UNetConfig
from blinddps.physics import Blur, flip_kernel
from blinddps.priors import DiffusionPrior, ImageTransform, KernelTransform, TiltTransform
from blinddps.priors.transforms import closed_clamp
from blinddps.solvers import BlindDPS, KernelSparsity, SolverConfig, Unknown
from blinddps.solvers.guidance import KernelCentring
from toy_priors import CallRecorder, GaussianEps


class Replay:
    """Stands in for torch.randn while a solver runs: hands out the given tensors in order and
    checks that each one has the requested shape (so the draw order is checked too)."""

    def __init__(self, draws: list[torch.Tensor]):
        self.draws = list(draws)
        self.used = 0

    def __call__(self, *size, generator=None, device=None, dtype=None, **kwargs):
        shape = tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else tuple(size)
        if self.used == len(self.draws):
            raise AssertionError(f"the solver asked for more noise than the reference drew ({self.used})")
        draw = self.draws[self.used]
        self.used += 1
        assert tuple(draw.shape) == shape, f"draw {self.used - 1}: reference {tuple(draw.shape)}, requested {shape}"
        return draw.clone()


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


# =========================================================================== the released trajectory


def _golden_network(golden_dir, case: str) -> ADMUNet:
    config = json.loads((golden_dir / f"unet_{case}.json").read_text())
    data = np.load(golden_dir / f"unet_{case}.npz")
    net = ADMUNet(UNetConfig.from_dict(config)).eval()
    net.load_state_dict({k[len("param/"):]: torch.from_numpy(data[k]) for k in data.files if k.startswith("param/")},
                        strict=True)
    return net


@pytest.fixture(scope="module")
def golden_run(golden_dir):
    """Our BlindDPS on the released code's problem (see golden/README.md), its draws replayed.

    Returns (reference arrays, result, StepInfos, image recorder, kernel recorder)."""
    ref = dict(np.load(golden_dir / "blinddps_trajectory_r10.npz"))
    process = VPProcess(DiffusionConfig(respacing="10"))
    image_net = CallRecorder(_golden_network(golden_dir, "rgb_learned_sigma"))
    kernel_net = CallRecorder(_golden_network(golden_dir, "gray_kernel_like"))
    unknowns = {"image": Unknown((3, 32, 32), ImageTransform(),
                                 DiffusionPrior(image_net, process, ImageTransform(), 3)),
                "kernel": Unknown((1, 32, 32), KernelTransform(),
                                  DiffusionPrior(kernel_net, process, KernelTransform(), 1))}
    # The released operator is F.conv2d(x, k, padding='same') per channel: our Blur with the
    # flipped kernel (physics/blur.py).  Its guidance: zeta = 1, sqrt(abar_t) rule, no regulariser.
    blur = Blur("zeros")
    solver = BlindDPS(lambda x, kernel: blur(x, kernel=flip_kernel(kernel)), unknowns, SolverConfig())
    # Draw order of the released sampler: per step the image's and the kernel's DDPM noise, then
    # a measurement noise nobody uses (left out here: our solver does not draw it).
    draws = [ref["x_start_img"], ref["x_start_kernel"]]
    for step in range(10):
        draws += [ref[f"draw_{3 * step:03d}"], ref[f"draw_{3 * step + 1:03d}"]]
    replay = Replay([torch.from_numpy(d) for d in draws])
    infos = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "randn", replay)
        result = solver.solve(torch.from_numpy(ref["y"]), callback=infos.append)
    return ref, result, infos, image_net, kernel_net, replay


def test_golden_trajectory_calls_the_networks_at_the_released_timesteps(golden_run):
    ref, result, infos, image_net, kernel_net, replay = golden_run
    expected = [int(t) for t in ref["timesteps"][::-1]]  # 999, 888, ..., 0
    for net in (image_net, kernel_net):
        assert [int(t) for t in net.timesteps] == expected
    assert [info.t for info in infos] == expected
    # Both start states drawn, then two noises per step except the last (drawn, never added).
    assert replay.used == 2 + 2 * 9


def test_golden_trajectory_states_match_the_released_code(golden_run):
    """The state after each step is what the next network call sees; float32 round-off only
    (the golden README: about 1e-6 relative after ten steps)."""
    ref, result, infos, image_net, kernel_net, _ = golden_run
    torch.testing.assert_close(image_net.inputs[0], torch.from_numpy(ref["x_start_img"]), rtol=0, atol=0)
    for step in range(9):
        assert rel(image_net.inputs[step + 1], torch.from_numpy(ref["states_img"][step])) < 2e-5, step
        assert rel(kernel_net.inputs[step + 1], torch.from_numpy(ref["states_kernel"][step])) < 2e-5, step
    # The last state is returned through the transforms: image clipped, kernel normalised.
    final_img = torch.from_numpy(ref["states_img"][9]).clamp(-1, 1)
    z = (torch.from_numpy(ref["states_kernel"][9]).clamp(-1, 1) + 1) / 2
    assert rel(result.estimates["image"], final_img) < 2e-5
    assert rel(result.estimates["kernel"], z / z.sum()) < 2e-5


def test_golden_trajectory_estimates_and_residuals_match(golden_run):
    ref, result, infos, *_ = golden_run
    assert len(infos) == 10
    for step, info in enumerate(infos):
        assert rel(info.x0["image"], torch.from_numpy(ref["x0_img"][step])) < 2e-5, step
        assert rel(info.x0["kernel"], torch.from_numpy(ref["x0_kernel"][step])) < 2e-5, step
        assert float(info.loss[0]) == pytest.approx(float(ref["norms"][step]), rel=1e-5), step
    assert float(result.loss[0]) == pytest.approx(float(ref["norms"][9]), rel=1e-5)


def test_golden_trajectory_nfe_is_the_counted_network_calls(golden_run):
    _, result, _, image_net, kernel_net, _ = golden_run
    assert len(image_net.inputs) == len(kernel_net.inputs) == 10
    assert result.nfe == len(image_net.inputs) + len(kernel_net.inputs)


# =========================================================================== steps by hand

KEPT = [0, 333, 666, 999]  # respacing "4": 4 of 1000 timesteps, evenly strided, rounded
S_IMAGE, S_GAIN, GAIN_SCALE = 0.5, 0.3, 0.5  # prior stds; the gain's transform is z -> 0.5 z


def reference_schedule() -> dict[str, np.ndarray]:
    """The paper's process written out (Ho et al. 2020; Nichol & Dhariwal 2021), float64,
    respaced to KEPT: betas recomputed from the kept abar, first posterior variance clipped."""
    abar_all = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))
    abar = abar_all[KEPT]
    abar_prev = np.append(1.0, abar[:-1])
    beta = 1 - abar / abar_prev
    post_var = beta * (1 - abar_prev) / (1 - abar)
    return {"abar": abar, "abar_prev": abar_prev, "beta": beta,
            "post_log_var": np.log(np.append(post_var[1], post_var[1:]))}


def gaussian_x0(x: torch.Tensor, abar: float, std: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The exact prior of GaussianEps: x0 = clip(c x), c = sqrt(abar) s^2 / (abar s^2 + 1 - abar).
    Returns (x0, d x0 / d x elementwise, eps consistent with the clipped x0)."""
    c = abar**0.5 * std**2 / (abar * std**2 + 1 - abar)
    raw = c * x
    x0 = raw.clamp(-1, 1)
    eps = (x - abar**0.5 * x0) / (1 - abar) ** 0.5
    return x0, c * (raw.abs() < 1).to(x.dtype), eps


def gain_operator(x: torch.Tensor, *, gain: torch.Tensor) -> torch.Tensor:
    """A(x; g) = x (1 + g): an elementwise gain (B, 1, H, W) on every channel of x (B, C, H, W)."""
    return x * (1 + gain)


def quadratic(weight: float):
    """A regulariser: weight * sum z^2 per sample (z: the unknown's x0, network space)."""
    return lambda z: weight * (z**2).flatten(1).sum(dim=1)


def expected_step(sched, i: int, config: SolverConfig, y, x, z, noise_x, noise_z, gain_prior: bool,
                  gain_scale: float, reg_weight: float):
    """One step written out: (next image state, next gain state, the misfit (B,) at this step).

    loss = sum_b ||y_b - x0_b (1 + 0.5 g0_b)|| + reg_weight * sum ||g0||^2, its gradient in
    closed form; each unknown moves by -zeta_t * scale * (its gradient w.r.t. its own state)."""
    abar, abar_prev, beta = (float(sched[k][i]) for k in ("abar", "abar_prev", "beta"))
    x0, dx0, eps_x = gaussian_x0(x, abar, S_IMAGE)
    if gain_prior:
        g0, dg0, eps_z = gaussian_x0(z, abar, S_GAIN)
    else:  # its own estimate; the state is kept in [-1, 1] and the bound passes the gradient
        g0, dg0, eps_z = z.clamp(-1, 1), ((z >= -1) & (z <= 1)).to(z.dtype), None
    r = y - x0 * (1 + GAIN_SCALE * g0)
    norm = r.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    grad_x0 = -(1 + GAIN_SCALE * g0) * r / norm
    grad_g0 = -GAIN_SCALE * (x0 * r).sum(dim=1, keepdim=True) / norm + 2 * reg_weight * g0
    zeta = config.zeta * abar**0.5 if config.step_size == "sqrt_abar" else config.zeta

    def proposal(state, est, eps, noise):
        if config.sampler == "ddpm":
            coef_x0 = beta * abar_prev**0.5 / (1 - abar)
            coef_xt = (1 - abar_prev) * (1 - beta) ** 0.5 / (1 - abar)
            mean = coef_x0 * est + coef_xt * state
            log_var = 0.5 * np.log(beta) + 0.5 * float(sched["post_log_var"][i])  # variance output 0: mid-range
            return mean + (np.exp(0.5 * log_var) * noise if i > 0 else 0)
        sigma = config.eta * ((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)) ** 0.5
        out = abar_prev**0.5 * est + (1 - abar_prev - sigma**2) ** 0.5 * eps
        return out + (sigma * noise if i > 0 else 0)

    x_next = proposal(x, x0, eps_x, noise_x) - zeta * dx0 * grad_x0
    if gain_prior:
        z_next = proposal(z, g0, eps_z, noise_z) - zeta * gain_scale * dg0 * grad_g0
    else:
        z_next = (z - zeta * gain_scale * dg0 * grad_g0).clamp(-1, 1)
    return x_next, z_next, norm.flatten()


def run_gain_problem(config: SolverConfig, *, gain_prior: bool, gain_scale: float, reg_weight: float,
                     gain_init: torch.Tensor | None = None, seed: int = 0):
    """Solve the gain problem (batch 2, image (2, 4, 4), gain (1, 4, 4)) with replayed draws,
    and check every step against expected_step.  Returns (result, image recorder, the gain's
    states at the start of each step)."""
    g = torch.Generator().manual_seed(seed)
    batch = 2
    process = VPProcess(DiffusionConfig(respacing="4" if config.sampler == "ddpm" else "ddim4"))
    assert process.timesteps.tolist() == (KEPT if config.sampler == "ddpm" else [0, 250, 500, 750])
    image_net = CallRecorder(GaussianEps(process, S_IMAGE))
    gain_net = CallRecorder(GaussianEps(process, S_GAIN))
    gain = Unknown((1, 4, 4), TiltTransform(scale=GAIN_SCALE),
                   DiffusionPrior(gain_net, process, TiltTransform(scale=GAIN_SCALE), 1) if gain_prior else None,
                   init=gain_init, step_scale=gain_scale)
    unknowns = {"image": Unknown((2, 4, 4), ImageTransform(), DiffusionPrior(image_net, process, ImageTransform(), 2)),
                "gain": gain}
    solver = BlindDPS(gain_operator, unknowns, config, regularisers={"gain": quadratic(reg_weight)})
    y = torch.randn(batch, 2, 4, 4, generator=g, dtype=torch.float64) * 0.5
    # One noise per prior unknown and step, the last step's too (a solver that wrongly adds
    # noise there gets it, and fails on the values rather than on running out of draws).
    per_step = 2 if gain_prior else 1
    draws = [torch.randn(batch, *(2, 4, 4) if k % per_step == 0 else (1, 4, 4), generator=g, dtype=torch.float64)
             for k in range(per_step * 5)]
    replay = Replay(draws)
    infos = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "randn", replay)
        result = solver.solve(y, callback=infos.append)

    sched = reference_schedule() if config.sampler == "ddpm" else _ddim4_schedule()
    n = 4
    xs = image_net.inputs
    if gain_prior:
        zs = gain_net.inputs
    else:  # a prior-less state is its own x0, reported in the operator domain (0.5 z)
        zs = [gain_init.expand(batch, 1, 4, 4)] + [info.x0["gain"] / GAIN_SCALE for info in infos[1:]]
    assert len(xs) == n and len(zs) == n
    torch.testing.assert_close(xs[0], draws[0], rtol=0, atol=0)
    for step in range(n):
        i = n - 1 - step
        noise_x = draws[per_step * (step + 1)]
        noise_z = draws[per_step * (step + 1) + 1] if gain_prior else None
        x_next, z_next, loss = expected_step(sched, i, config, y, xs[step], zs[step], noise_x, noise_z,
                                             gain_prior, gain_scale, reg_weight)
        torch.testing.assert_close(infos[step].loss, loss, rtol=1e-10, atol=0)
        if step < n - 1:
            torch.testing.assert_close(xs[step + 1], x_next, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(zs[step + 1], z_next, rtol=1e-10, atol=1e-12)
        else:  # the final estimates: the states clipped, through each transform
            torch.testing.assert_close(result.estimates["image"], x_next.clamp(-1, 1), rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(result.estimates["gain"], GAIN_SCALE * z_next.clamp(-1, 1), rtol=1e-10,
                                       atol=1e-12)
    return result, image_net, zs


def _ddim4_schedule() -> dict[str, np.ndarray]:
    """As reference_schedule, for "ddim4": range(0, 1000, 250)."""
    abar_all = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))
    abar = abar_all[[0, 250, 500, 750]]
    abar_prev = np.append(1.0, abar[:-1])
    return {"abar": abar, "abar_prev": abar_prev, "beta": 1 - abar / abar_prev}


@pytest.mark.parametrize("config", [
    SolverConfig(step_size="sqrt_abar", zeta=1.0),
    SolverConfig(step_size="constant", zeta=0.3),
], ids=["ddpm-sqrt_abar", "ddpm-constant"])
def test_ddpm_steps_with_step_scale_and_regulariser(config):
    run_gain_problem(config, gain_prior=True, gain_scale=2.5, reg_weight=0.2)


@pytest.mark.parametrize("eta", [0.0, 0.7])
def test_ddim_steps(eta):
    run_gain_problem(SolverConfig(sampler="ddim", eta=eta, zeta=2.0), gain_prior=True, gain_scale=0.4,
                     reg_weight=0.5, seed=1)


def test_prior_less_unknown_follows_its_gradient_from_the_bounds():
    """The gain has no prior: it moves by the gradient alone, projected onto [-1, 1].  Its start
    has entries exactly on both bounds: they must get the gradient (closed_clamp's convention;
    autograd's clamp gives 0 there from torch 2.14, and they would freeze)."""
    init = torch.linspace(-1, 1, 16, dtype=torch.float64).view(1, 1, 4, 4)
    assert init[0, 0, 0, 0] == -1 and init[0, 0, -1, -1] == 1
    result, image_net, zs = run_gain_problem(SolverConfig(zeta=3.0), gain_prior=False, gain_scale=2.5,
                                             reg_weight=0.2, gain_init=init, seed=2)
    for b in range(2):
        assert zs[1][b, 0, 0, 0] > -1 or zs[1][b, 0, -1, -1] < 1, "no bound entry moved off its bound"
    assert result.nfe == len(image_net.inputs) == 4  # the prior-less unknown costs no network call


def test_prior_less_kernel_on_its_bounds_moves_off_them():
    """The uniform-kernel ablation: a prior-less kernel whose state has pixels at exactly -1
    (kernel value 0) and +1.  After one step each pixel has moved by -zeta_t * grad, the
    gradient taken as if the clamps were not there (closed_clamp), projected onto [-1, 1]."""
    process = VPProcess(DiffusionConfig(respacing="2"))
    image_net = CallRecorder(GaussianEps(process, S_IMAGE))
    z0 = torch.tensor([[-1.0, -1.0, 0.2], [-1.0, 1.0, -0.5], [0.3, -1.0, 1.0]], dtype=torch.float64).view(1, 1, 3, 3)
    unknowns = {"image": Unknown((1, 6, 6), ImageTransform(), DiffusionPrior(image_net, process, ImageTransform(), 1)),
                "kernel": Unknown((1, 3, 3), KernelTransform(), None, init=z0)}
    blur = Blur("zeros")
    g = torch.Generator().manual_seed(3)
    y = torch.randn(1, 1, 6, 6, generator=g, dtype=torch.float64)
    draws = [torch.randn(1, 1, 6, 6, generator=g, dtype=torch.float64) for _ in range(3)]
    infos = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "randn", Replay(draws))
        BlindDPS(blur, unknowns, SolverConfig(zeta=40.0)).solve(y, callback=infos.append)

    # The reference gradient, without any clamp (z0 lies in [-1, 1], where they are identities).
    abar = float(process.alphas_cumprod[1])
    x0, _, _ = gaussian_x0(image_net.inputs[0], abar, S_IMAGE)
    z = z0.clone().requires_grad_(True)
    k = (z + 1) / 2 + KernelTransform().eps
    k = k / k.sum()
    (grad,) = torch.autograd.grad((y - blur(x0, kernel=k)).flatten(1).norm(dim=1).sum(), z)
    z1 = (z0 - 40.0 * abar**0.5 * grad).clamp(-1, 1)
    k1 = (z1 + 1) / 2 + KernelTransform().eps
    torch.testing.assert_close(infos[1].x0["kernel"], k1 / k1.sum(), rtol=1e-10, atol=1e-14)
    on_bound = z0.abs() == 1
    moved_off = on_bound & (z1.abs() < 1)
    assert moved_off.sum() >= 2, "the reference itself should move some bound pixels inward"


# =========================================================================== the bound convention


def test_closed_clamp_values_and_gradient_at_and_beyond_the_bounds():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 1.0, 1.5, float("nan")], dtype=torch.float64, requires_grad=True)
    y = closed_clamp(x, -1, 1)
    torch.testing.assert_close(y, x.detach().clamp(-1, 1), equal_nan=True)
    (grad,) = torch.autograd.grad(y.nansum(), x)
    assert grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    (grad_low,) = torch.autograd.grad(closed_clamp(x[:6], lower=0).sum(), x)
    assert grad_low[:6].tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]


def test_kernel_regularisers_act_on_empty_pixels():
    """Pixels at exactly z = -1 (kernel value 0) keep their gradient on every torch version."""
    z = torch.full((1, 1, 5, 5), -1.0, dtype=torch.float64)
    z[0, 0, 1, 3] = 1.0  # all the mass off the origin
    z.requires_grad_(True)
    (g_sparse,) = torch.autograd.grad(KernelSparsity(2.0)(z).sum(), z)
    torch.testing.assert_close(g_sparse, torch.full_like(g_sparse, 1.0))  # 2.0 * d((z + 1) / 2) / dz
    (g_centre,) = torch.autograd.grad(KernelCentring(1.0)(z).sum(), z)
    # Moving mass into an empty pixel nearer the origin lowers the penalty: a positive gradient
    # there would push it away; the pixels farther out get a positive one.
    assert g_centre[0, 0, 2, 2] < 0 and g_centre[0, 0, 0, 4] > 0
    unnormalised = KernelTransform().unnormalised(z)
    (g_transform,) = torch.autograd.grad(unnormalised.sum(), z)
    torch.testing.assert_close(g_transform, torch.full_like(g_transform, 0.5))
