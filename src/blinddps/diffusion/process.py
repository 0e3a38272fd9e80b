"""The variance-preserving diffusion process: forward marginals, x0 prediction, posterior,
model variance, and the DDPM / DDIM reverse steps.

Indices `i` are positions in the (possibly respaced) chain, 0 .. num_steps - 1; the network
is always called with the ORIGINAL timestep `process.timesteps[i]`.  Every method accepts
an int or a (B,) long tensor for `i`, so a batch may hold different steps.  All states live
in the network's space ([-1, 1] for clean signals).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from .schedule import make_betas, respaced_timesteps

PREDICTIONS = ("epsilon", "x0", "v")
VARIANCES = ("learned_range", "fixed_small", "fixed_large")


@dataclass(frozen=True)
class DiffusionConfig:
    """Typed description of a VP process (the paper: 1000 linear steps, epsilon, learned range).

    respacing: "" (all steps), "N", "N1,N2", or "ddimN" (see schedule.respaced_timesteps).
    """

    steps: int = 1000
    schedule: str = "linear"
    prediction: str = "epsilon"
    variance: str = "learned_range"
    clip_x0: bool = True
    respacing: str = ""

    def __post_init__(self) -> None:
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {self.prediction!r}")
        if self.variance not in VARIANCES:
            raise ValueError(f"variance must be one of {VARIANCES}, got {self.variance!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> "DiffusionConfig":
        return DiffusionConfig(**{**asdict(self), **changes})


def _gather(table: torch.Tensor, i: int | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """table[i] shaped to broadcast against `like` (B, ...); `table` already on like's device.
    An int i indexes on the device (a view: no host-to-device copy, no stream sync)."""
    if not torch.is_tensor(i):
        return table[i].reshape([1] * like.dim())
    return table[i.to(table.device).long()].reshape(-1, *([1] * (like.dim() - 1)))


class VPProcess:
    """Schedule tensors of a (respaced) VP process and the formulas that use them."""

    def __init__(self, config: DiffusionConfig = DiffusionConfig()):
        self.config = config
        base_abar = np.cumprod(1.0 - make_betas(config.schedule, config.steps))
        kept = respaced_timesteps(config.respacing, config.steps)
        abar = base_abar[kept]
        abar_prev = np.append(1.0, abar[:-1])
        betas = 1.0 - abar / abar_prev
        post_var = betas * (1.0 - abar_prev) / (1.0 - abar)
        # The first posterior variance is 0; its log is clipped to the second value.
        post_log_var = np.log(np.append(post_var[1], post_var[1:]))
        t64 = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float64))  # noqa: E731
        self.timesteps = torch.tensor(kept, dtype=torch.long)
        self.betas = t64(betas)
        self.alphas_cumprod = t64(abar)
        self.alphas_cumprod_prev = t64(abar_prev)
        self.posterior_variance = t64(post_var)
        self.posterior_log_variance_clipped = t64(post_log_var)
        self.posterior_mean_coef1 = t64(betas * np.sqrt(abar_prev) / (1.0 - abar))
        self.posterior_mean_coef2 = t64((1.0 - abar_prev) * np.sqrt(1.0 - betas) / (1.0 - abar))
        self.log_betas_large = torch.cat([self.posterior_variance[1:2], self.betas[1:]]).log()
        self._device_tables: dict[tuple, torch.Tensor] = {}

    def at(self, name: str, i: int | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Schedule table `name` at kept step(s) i, in like's dtype and device, shaped to
        broadcast against like (B, ...).  Each table is moved once per (device, dtype): moving
        it at every call would copy from host memory and stall a GPU's queue several times a step."""
        key = (name, like.device, like.dtype)
        table = self._device_tables.get(key)
        if table is None:
            table = self._device_tables[key] = getattr(self, name).to(device=like.device, dtype=like.dtype)
        return _gather(table, i, like)

    @property
    def num_steps(self) -> int:
        return len(self.timesteps)

    # -- forward process -------------------------------------------------------------
    def q_sample(self, x0: torch.Tensor, i, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar) x0 + sqrt(1 - abar) eps (Ho et al. eq. 4)."""
        abar = self.at("alphas_cumprod", i, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    # -- model output -> x0, eps, variance --------------------------------------------
    def split_output(self, out: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Network output (B, C or 2C, H, W) -> (prediction, variance values or None)."""
        if self.config.variance == "learned_range":
            if out.shape[1] != 2 * channels:
                raise ValueError(f"learned-range variance needs {2 * channels} output channels, got {out.shape[1]}")
            return out[:, :channels], out[:, channels:]
        return out[:, :channels], None

    def predict_x0_eps(self, x_t: torch.Tensor, i, pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x0_hat, eps_hat) from the network prediction; x0_hat clipped to [-1, 1] if configured,
        eps_hat consistent with the clipped x0 (as DDIM needs)."""
        abar = self.at("alphas_cumprod", i, x_t)
        kind = self.config.prediction
        if kind == "epsilon":
            x0 = (x_t - (1 - abar).sqrt() * pred) / abar.sqrt()
        elif kind == "x0":
            x0 = pred
        else:  # v = sqrt(abar) eps - sqrt(1 - abar) x0
            x0 = abar.sqrt() * x_t - (1 - abar).sqrt() * pred
        if self.config.clip_x0:
            x0 = x0.clamp(-1, 1)
        eps = (x_t - abar.sqrt() * x0) / (1 - abar).sqrt()
        return x0, eps

    def posterior_mean(self, x0: torch.Tensor, x_t: torch.Tensor, i) -> torch.Tensor:
        """Mean of q(x_{t-1} | x_t, x0) (Ho et al. eq. 7)."""
        return self.at("posterior_mean_coef1", i, x_t) * x0 + self.at("posterior_mean_coef2", i, x_t) * x_t

    def model_log_variance(self, i, var_values: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        """log sigma_t^2 of p(x_{t-1} | x_t): learned interpolation between log beta_t and the
        clipped posterior log variance (Nichol & Dhariwal eq. 15), or a fixed choice."""
        lower = self.at("posterior_log_variance_clipped", i, like)
        if self.config.variance == "learned_range":
            upper = self.at("betas", i, like).log()
            frac = (var_values + 1) / 2
            return frac * upper + (1 - frac) * lower
        if self.config.variance == "fixed_small":
            return lower.expand_as(like)
        # fixed_large: beta_t, with the first value replaced as in Ho et al.
        return self.at("log_betas_large", i, like).expand_as(like)

    # -- reverse steps ----------------------------------------------------------------
    def ddpm_step(self, x_t, i: int, x0, log_var, noise: torch.Tensor) -> torch.Tensor:
        """Ancestral sample of x_{t-1}: posterior mean + sigma z, no noise at the last step."""
        mean = self.posterior_mean(x0, x_t, i)
        if i == 0:
            return mean
        return mean + (0.5 * log_var).exp() * noise

    def ddim_step(self, x_t, i: int, x0, eps, noise: torch.Tensor, eta: float = 0.0) -> torch.Tensor:
        """DDIM update (Song et al. 2021 eq. 12) to the previous kept step; eta=1 ~ DDPM."""
        abar = self.at("alphas_cumprod", i, x_t)
        abar_prev = self.at("alphas_cumprod_prev", i, x_t)
        sigma = eta * ((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)).sqrt()
        direction = (1 - abar_prev - sigma**2).clamp_min(0).sqrt() * eps
        out = abar_prev.sqrt() * x0 + direction
        return out if i == 0 else out + sigma * noise
