"""Small stand-in networks for solver tests: fast, deterministic, with known behaviour."""
import torch
from torch import nn

from blinddps.diffusion import DiffusionConfig, VPProcess
from blinddps.priors import DiffusionPrior


class GaussianEps(nn.Module):
    """The exact epsilon-predictor E[eps | x_t] for data x0 ~ N(0, s^2 I):
    eps = sqrt(1 - abar) x_t / (abar s^2 + 1 - abar).  Output (B, 2C) with zero variance
    values (the midpoint of the learned range)."""

    def __init__(self, process: VPProcess, std: float = 0.5):
        super().__init__()
        full = VPProcess(process.config.replace(respacing=""))
        # float64, cast to the input's dtype at use: float64 tests get the exact schedule.
        self.register_buffer("abar", full.alphas_cumprod.clone())
        self.std = std

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        abar = self.abar[t.long()].view(-1, 1, 1, 1).to(x.dtype)
        eps = (1 - abar).sqrt() * x / (abar * self.std**2 + 1 - abar)
        return torch.cat([eps, torch.zeros_like(eps)], dim=1)


class TinyConvNet(nn.Module):
    """A random two-layer conv net with a timestep input: any output, but smooth and fast."""

    def __init__(self, channels: int, hidden: int = 8, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(channels + 1, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, 2 * channels, 3, padding=1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)

    def forward(self, x, t):
        tt = (t.float() / 1000).view(-1, 1, 1, 1).expand(x.shape[0], 1, *x.shape[2:])
        return self.conv2(torch.tanh(self.conv1(torch.cat([x, tt.to(x.dtype)], 1))))


class CallRecorder(nn.Module):
    """Wraps a network and records every call: the input state x_t (detached copy) and the
    timesteps t.  The solver's state before each step, and the real number of network
    evaluations, read off from outside."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network
        self.inputs: list[torch.Tensor] = []
        self.timesteps: list[torch.Tensor] = []

    def forward(self, x, t):
        self.inputs.append(x.detach().clone())
        self.timesteps.append(t.detach().clone())
        return self.network(x, t)


def count_adm_calls(patch) -> list[tuple[int, int]]:
    """Count every ADMUNet forward call, as (input channels, batch size), while the
    pytest.MonkeyPatch `patch` is active: the real network evaluations of a run (the loaded
    priors are ADMUNets), to hold a reported NFE against."""
    from blinddps.networks import ADMUNet

    calls: list[tuple[int, int]] = []
    forward = ADMUNet.forward

    def counting(self, x, *args, **kwargs):
        calls.append((int(x.shape[1]), int(x.shape[0])))
        return forward(self, x, *args, **kwargs)

    patch.setattr(ADMUNet, "forward", counting)
    return calls


def make_prior(network: nn.Module, transform, channels: int, respacing: str = "20") -> DiffusionPrior:
    process = VPProcess(DiffusionConfig(respacing=respacing))
    return DiffusionPrior(network, process, transform, channels)


def gaussian_prior(transform, channels: int, respacing: str = "20", std: float = 0.5) -> DiffusionPrior:
    process = VPProcess(DiffusionConfig(respacing=respacing))
    return DiffusionPrior(GaussianEps(process, std), process, transform, channels)
