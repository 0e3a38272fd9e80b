"""DiffusionPrior: a score network bound to its VP process and to a value transform."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..diffusion import DiffusionConfig, VPProcess
from .transforms import Transform


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (B, C, H, W) at the bottom / right (reflect) to multiples of `multiple` (what a
    U-Net's down-sampling needs); returns the padded tensor and the original (H, W) to crop back to."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


@dataclass
class Denoised:
    """One network evaluation at state x_t (all tensors (B, C, H, W), network space)."""

    x0: torch.Tensor  # clean-signal estimate, in [-1, 1] when the process clips
    eps: torch.Tensor  # noise estimate consistent with x0
    log_var: torch.Tensor  # log variance of p(x_{t-1} | x_t)


class DiffusionPrior:
    """A diffusion prior over one kind of signal (image, kernel, tilt).

    network: maps (x_t (B, C, H, W) in network space, t (B,) original timesteps) to the
        prediction (B, C or 2C, H, W); 2C when the variance is learned.
    process: the (respaced) VP process the network was trained for.
    transform: network space [-1, 1] <-> the operator's domain.
    channels: C, the signal's channel count.
    """

    def __init__(self, network: nn.Module, process: VPProcess, transform: Transform, channels: int,
                 name: str = "prior"):
        self.network = network
        self.process = process
        self.transform = transform
        self.channels = channels
        self.name = name

    def respaced(self, respacing: str) -> "DiffusionPrior":
        """The same network and transform on a respaced process ("200", "ddim50", ...)."""
        config: DiffusionConfig = self.process.config.replace(respacing=respacing)
        return DiffusionPrior(self.network, VPProcess(config), self.transform, self.channels, self.name)

    @property
    def num_steps(self) -> int:
        return self.process.num_steps

    def denoise(self, x_t: torch.Tensor, i: int) -> Denoised:
        """Evaluate the network at chain index i; differentiable w.r.t. x_t."""
        t = self.process.timesteps[i].to(x_t.device).expand(x_t.shape[0])
        out = self.network(x_t, t).to(x_t.dtype)
        pred, var = self.process.split_output(out, self.channels)
        x0, eps = self.process.predict_x0_eps(x_t, i, pred)
        log_var = self.process.model_log_variance(i, var, x_t)
        return Denoised(x0=x0, eps=eps, log_var=log_var)

    def timestep_for_sigma(self, sigma: float) -> int:
        """The original timestep t (of the full process) whose noise-to-signal ratio
        sqrt((1 - abar_t) / abar_t) is nearest `sigma` (network-space units)."""
        abar = self.respaced("").process.alphas_cumprod
        return int(torch.argmin((((1 - abar) / abar).sqrt() - sigma).abs()))

    @torch.no_grad()
    def denoise_sigma(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """D(x, sigma): the x0 estimate of a signal x = x0 + sigma n (B, C, H, W) in network
        space, sigma in the same units: one network evaluation at the matching timestep t, on
        the input scaled by sqrt(abar_t) (what the network saw in training). Any H, W: padded
        (reflect) to the network's spatial multiple and cropped back."""
        full = self.respaced("")
        t = full.timestep_for_sigma(sigma)
        abar = float(full.process.alphas_cumprod[t])
        padded, (h, w) = pad_to_multiple(x, self.network.config.spatial_multiple)
        return full.denoise(abar**0.5 * padded, t).x0[..., :h, :w]

    def to(self, device: torch.device | str) -> "DiffusionPrior":
        self.network.to(device)
        return self
