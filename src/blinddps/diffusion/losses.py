"""Training losses of a diffusion model: the epsilon MSE and, for a learned variance, the
variational bound term of Nichol & Dhariwal (2021) ("hybrid" loss, lambda = 1)."""
from __future__ import annotations

import math

import torch

from .process import VPProcess


def normal_kl(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) elementwise, in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + (logvar1 - logvar2).exp() + (mean1 - mean2) ** 2 * (-logvar2).exp())


def discretized_gaussian_nll(x0: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """-log p(x0) for data quantised to 256 levels in [-1, 1] under N(mean, e^log_var), nats."""
    inv_std = (-0.5 * log_var).exp()
    upper = torch.where(x0 > 0.999, torch.ones_like(x0), torch.special.ndtr((x0 - mean + 1 / 255) * inv_std))
    lower = torch.where(x0 < -0.999, torch.zeros_like(x0), torch.special.ndtr((x0 - mean - 1 / 255) * inv_std))
    return -(upper - lower).clamp_min(1e-12).log()


def diffusion_loss(process: VPProcess, output: torch.Tensor, x0: torch.Tensor, x_t: torch.Tensor,
                   i: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-sample training loss (B,) for an epsilon-predicting network `output` at x_t.

    With learned-range variance the VB term is added, its mean gradient stopped so that
    it trains only the variance (Nichol & Dhariwal eq. 16)."""
    channels = x0.shape[1]
    pred, var = process.split_output(output, channels)
    if process.config.prediction != "epsilon":
        raise ValueError("training supports epsilon prediction (the published checkpoints' format)")
    mse = ((pred - noise) ** 2).flatten(1).mean(dim=1)
    parts = {"mse": mse.detach()}
    if var is None:
        return mse, parts
    frozen_x0, _ = process.predict_x0_eps(x_t, i, pred.detach())
    model_mean = process.posterior_mean(frozen_x0, x_t, i)
    model_log_var = process.model_log_variance(i, var, x_t)
    true_mean = process.posterior_mean(x0, x_t, i)
    true_log_var = process.at("posterior_log_variance_clipped", i, x_t)
    kl = normal_kl(true_mean, true_log_var, model_mean, model_log_var).flatten(1).mean(dim=1)
    nll = discretized_gaussian_nll(x0, model_mean, model_log_var).flatten(1).mean(dim=1)
    vb = torch.where(i.to(x0.device) == 0, nll, kl) / math.log(2.0)
    vb = vb * process.num_steps / 1000.0
    parts["vb"] = vb.detach()
    return mse + vb, parts
