import torch, math
import torch.nn.functional as F
from blinddps.generators.motion import MotionKernelGenerator

def shake_kernel(size: int, seed: int, intensity: float = 0.7, amplitude: float = 1.6) -> torch.Tensor:
    """A generator trajectory whose brightness varies along it like a hand's changing speed:
    the kernel times exp(amplitude * a smooth random field at a third of its size), sum 1."""
    g = torch.Generator().manual_seed(seed)
    k = MotionKernelGenerator(size=size, intensity=intensity).sample(1, generator=g)["kernel"][0, 0].double()
    field = torch.randn(1, 1, size, size, generator=g, dtype=torch.float64)
    s = max(size / 3, 2.0)
    r = int(2 * s); t = torch.arange(-r, r + 1, dtype=torch.float64)
    w = torch.exp(-t**2 / (2 * s**2)); w /= w.sum()
    field = F.conv2d(F.pad(field, (r, r, r, r), mode="circular"), w.view(1, 1, 1, -1))
    field = F.conv2d(field, w.view(1, 1, -1, 1))[0, 0]
    field = (field - field.mean()) / field.std()
    k = k * torch.exp(amplitude * field)
    return k / k.sum()
