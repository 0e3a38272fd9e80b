"""BlindDPS: parallel reverse diffusion of the image and the operator parameters.

Algorithm (Chung, Kim, Kim, Ye, CVPR 2023, Alg. 1), for every step i = N-1 .. 0:
  1. each unknown with a prior: x0_hat, log_var = prior(x_t); x'_{t-1} = sampler step;
  2. x0_hat of every unknown mapped to the operator's domain by its transform;
  3. loss = sum_b ||y_b - A(x0_img; phi0)_b|| + regularisers;
  4. x_{t-1} = x'_{t-1} - zeta_t * grad_{x_t} loss for every unknown (one backward pass).
Unknowns without a prior keep their state and follow the gradient alone.
The solver knows no task: the operator is any callable A(x, **params).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Mapping, Sequence

import torch

from ..priors import DiffusionPrior
from ..priors.transforms import Transform, closed_clamp
from .guidance import misfit, step_size


class SamplingDivergedError(RuntimeError):
    """The guidance produced NaN or Inf; raised with the step at which it happened."""


@dataclass
class Unknown:
    """One named unknown of the inverse problem.

    shape: per-sample shape (C, H, W) in network space.
    transform: network space [-1, 1] -> the operator's domain (image, kernel, tilt).
    prior: its diffusion prior, or None ("uniform": guided by the gradient alone).
    init: network-space start (1 or B, *shape) for prior-less unknowns; default zeros
        (for a kernel: the uniform kernel).
    step_scale: multiplies the step size for this unknown.
    """

    shape: tuple[int, ...]
    transform: Transform
    prior: DiffusionPrior | None = None
    init: torch.Tensor | None = None
    step_scale: float = 1.0


@dataclass(frozen=True)
class SolverConfig:
    """Sampler settings.  step_size: "sqrt_abar" (default: the released code's rule, which
    produced the paper's results) or "constant" (the paper's text, zeta = 0.3).
    sampler: "ddpm" (ancestral, the paper) or "ddim" with eta."""

    step_size: str = "sqrt_abar"
    zeta: float = 1.0
    sampler: str = "ddpm"
    eta: float = 0.0
    record_every: int = 0
    autocast: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class StepInfo:
    """What the callback receives after every step (tensors detached, operator domain)."""

    step: int  # 0 .. num_steps - 1 in sampling order
    num_steps: int
    t: int  # original timestep of the network call
    loss: torch.Tensor  # (B,) data misfit
    x0: dict[str, torch.Tensor]


@dataclass
class SolverResult:
    """Final estimates in each operator domain (image in [-1, 1], kernel summing to 1, ...)."""

    estimates: dict[str, torch.Tensor]
    loss: torch.Tensor  # (B,) misfit of the last step
    nfe: int  # network evaluations (forward + backward) per image
    frames: list[dict[str, torch.Tensor]] = field(default_factory=list)


Generators = torch.Generator | Sequence[torch.Generator] | None


def _randn(shape: tuple[int, ...], batch: int, generator: Generators, device) -> torch.Tensor:
    """(B, *shape) normal noise; with one generator per sample, sample b depends only on
    generator b (so a batch equals its samples run one by one)."""
    if generator is None or isinstance(generator, torch.Generator):
        gen_device = generator.device if generator is not None else device
        return torch.randn((batch, *shape), generator=generator, device=gen_device).to(device)
    if len(generator) != batch:
        raise ValueError(f"got {len(generator)} generators for a batch of {batch}")
    return torch.cat([torch.randn((1, *shape), generator=g, device=g.device) for g in generator]).to(device)


class BlindDPS:
    """Parallel diffusion posterior sampling over named unknowns.

    operator: A(x, **params) -> measurement, x the unknown named `image_key`.
    unknowns: name -> Unknown; every prior must have the same number of steps.
    regularisers: name -> callable(x0 network space (B, ...)) -> (B,) added to the loss.
    """

    def __init__(self, operator: Callable[..., torch.Tensor], unknowns: Mapping[str, Unknown],
                 config: SolverConfig = SolverConfig(), regularisers: Mapping[str, Callable] | None = None,
                 image_key: str = "image"):
        if image_key not in unknowns:
            raise ValueError(f"the unknowns must include the image {image_key!r}")
        priors = [u.prior for u in unknowns.values() if u.prior is not None]
        if not priors:
            raise ValueError("at least one unknown needs a diffusion prior")
        if len({p.num_steps for p in priors}) != 1:
            raise ValueError("all priors must use the same number of steps: respace them alike")
        self.operator = operator
        self.unknowns = dict(unknowns)
        self.config = config
        self.regularisers = dict(regularisers or {})
        self.image_key = image_key
        self.schedule = priors[0].process  # step sizes follow the first prior's abar_t

    @property
    def num_steps(self) -> int:
        return self.schedule.num_steps

    def solve(self, y: torch.Tensor, *, generator: Generators = None, known: Mapping[str, torch.Tensor] | None = None,
              callback: Callable[[StepInfo], None] | None = None) -> SolverResult:
        """Sample all unknowns given the measurement y (B, ...), in the operators' domain.

        known: fixed operator parameters (e.g. the true kernel, for non-blind DPS).
        generator: one torch.Generator, or one per sample for batch-independent draws.
        """
        batch, device = y.shape[0], y.device
        states = {name: self._initial_state(u, batch, generator, device) for name, u in self.unknowns.items()}
        frames: list[dict[str, torch.Tensor]] = []
        loss = torch.full((batch,), float("nan"), device=device)
        for step, i in enumerate(range(self.num_steps - 1, -1, -1)):
            states, loss, x0 = self._step(states, y, i, generator, known or {})
            if not torch.isfinite(loss).all():
                raise SamplingDivergedError(f"NaN/Inf in the measurement loss at step {step} (t={self._t(i)})")
            if self.config.record_every and (step % self.config.record_every == 0 or i == 0):
                frames.append({k: v.cpu() for k, v in x0.items()})
            if callback is not None:
                callback(StepInfo(step, self.num_steps, self._t(i), loss.detach(), x0))
        estimates = {name: self._value(name, states[name].clamp(-1, 1)).detach() for name in states}
        nfe = self.num_steps * sum(u.prior is not None for u in self.unknowns.values())
        return SolverResult(estimates=estimates, loss=loss.detach(), nfe=nfe, frames=frames)

    # -- internals ----------------------------------------------------------------------
    def _t(self, i: int) -> int:
        return int(self.schedule.timesteps[i])

    def _initial_state(self, u: Unknown, batch: int, generator: Generators, device) -> torch.Tensor:
        if u.prior is not None:
            return _randn(u.shape, batch, generator, device)
        if u.init is None:
            return torch.zeros((batch, *u.shape), device=device)
        return u.init.to(device).expand(batch, *u.shape).clone()

    def _value(self, name: str, z: torch.Tensor) -> torch.Tensor:
        return self.unknowns[name].transform.to_operator(z)

    def _denoise_all(self, states, i, generator):
        """x0 estimates (with graph) and unguided next states (detached) of every unknown."""
        x0, proposals = {}, {}
        autocast = torch.autocast(next(iter(states.values())).device.type, dtype=torch.bfloat16,
                                  enabled=self.config.autocast)
        for name, u in self.unknowns.items():
            x_t = states[name]
            if u.prior is None:
                # closed_clamp: a state on the bound (where the projection below puts it)
                # still receives the gradient; autograd's clamp gives 0 there from torch 2.14.
                x0[name], proposals[name] = closed_clamp(x_t, -1, 1), x_t.detach()
                continue
            with autocast:
                d = u.prior.denoise(x_t, i)
            noise = _randn(u.shape, x_t.shape[0], generator, x_t.device) if i > 0 else torch.zeros_like(x_t)
            x0[name] = d.x0
            proposals[name] = self._sampler_step(u.prior, x_t, i, d, noise).detach()
        return x0, proposals

    def _sampler_step(self, prior: DiffusionPrior, x_t, i, d, noise):
        if self.config.sampler == "ddpm":
            return prior.process.ddpm_step(x_t, i, d.x0, d.log_var, noise)
        if self.config.sampler == "ddim":
            return prior.process.ddim_step(x_t, i, d.x0, d.eps, noise, eta=self.config.eta)
        raise ValueError(f"unknown sampler {self.config.sampler!r}: expected 'ddpm' or 'ddim'")

    def _step(self, states, y, i, generator, known):
        states = {k: v.detach().requires_grad_(True) for k, v in states.items()}
        x0, proposals = self._denoise_all(states, i, generator)
        values = {name: self._value(name, z) for name, z in x0.items()}
        params = {k: v for k, v in values.items() if k != self.image_key}
        prediction = self.operator(values[self.image_key], **params, **known)
        loss = misfit(y, prediction)
        total = loss.sum()
        for name, reg in self.regularisers.items():
            total = total + reg(x0[name]).sum()
        names = list(states)
        grads = torch.autograd.grad(total, [states[n] for n in names], allow_unused=True)
        zeta = step_size(self.config.step_size, self.config.zeta, self.schedule.alphas_cumprod[i])
        new_states = {}
        for name, grad in zip(names, grads):
            grad = torch.zeros_like(states[name]) if grad is None else grad
            state = proposals[name] - zeta * self.unknowns[name].step_scale * grad
            # A prior-less unknown is its own x0 estimate, clipped to [-1, 1]: keep the state
            # there (projected gradient), else a push past the bound would freeze it.
            new_states[name] = state if self.unknowns[name].prior is not None else state.clamp(-1, 1)
        return new_states, loss.detach(), {k: v.detach() for k, v in values.items()}
