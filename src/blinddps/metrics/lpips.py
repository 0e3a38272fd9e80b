"""LPIPS v0.1 (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric"), computed from weight files the user already has: nothing is downloaded.

The distance between images x and y is

    LPIPS(x, y) = sum_l  mean_{h,w}  sum_c  w_{l,c} (u_l(x)_{c,h,w} - u_l(y)_{c,h,w})^2

where u_l is the feature map of backbone layer l (5 taps after ReLUs of AlexNet or VGG16),
each feature vector unit-normalised over its channels, and w_l >= 0 the learned per-channel
weights (the paper's "lin" layers, 1x1 convolutions without bias). 0 for identical images;
about 0.1-0.7 for visibly different natural images; lower is more similar.

Two files are needed (``.pth`` read with ``torch.load(weights_only=True)``, or
``.safetensors`` with the same keys):

- the backbone: torchvision's ImageNet weights ``alexnet-owt-7be5be79.pth`` or
  ``vgg16-397923af.pth`` (keys ``features.<i>.weight/bias``; ``classifier.*`` is ignored);
- the LPIPS heads of the v0.1 release, ``alex.pth`` or ``vgg.pth`` (keys
  ``lin<i>.model.1.weight``, shape (1, C_i, 1, 1), i = 0..4).

Usage::

    from blinddps.metrics import load_lpips, lpips
    model = load_lpips("alexnet-owt-7be5be79.pth", "alex.pth")   # net inferred: "alex"
    d = lpips(x, y, model)    # x, y (B, C, H, W) in [0, 1], C = 1 or 3 -> (B,)
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from ..networks.load import CheckpointError

__all__ = ["LPIPS", "NETS", "load_lpips", "lpips"]

# The LPIPS input normalisation, applied to images in [-1, 1]: (x - shift) / scale per RGB
# channel. It is ImageNet's mean/std re-expressed for the [-1, 1] range, which is what the
# torchvision backbones were trained on.
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10  # keeps the unit normalisation finite where a feature vector is all zeros

# Layer plans in torchvision's `features` order, so that the module's parameter names are the
# files' keys: ("conv", in, out, kernel, stride, padding), ("relu",), ("pool", kernel, stride).
_ALEX = [("conv", 3, 64, 11, 4, 2), ("relu",), ("pool", 3, 2),
         ("conv", 64, 192, 5, 1, 2), ("relu",), ("pool", 3, 2),
         ("conv", 192, 384, 3, 1, 1), ("relu",),
         ("conv", 384, 256, 3, 1, 1), ("relu",),
         ("conv", 256, 256, 3, 1, 1), ("relu",)]


def _vgg16_plan() -> list[tuple]:
    plan: list[tuple] = []
    c_in = 3
    for block, (width, convs) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))):
        if block:
            plan.append(("pool", 2, 2))
        for _ in range(convs):
            plan += [("conv", c_in, width, 3, 1, 1), ("relu",)]
            c_in = width
    return plan


# net -> (plan, indices of the ReLUs whose outputs are compared, smallest usable image side:
# below it a max-pool would get an empty input).
NETS: dict[str, tuple[list[tuple], tuple[int, ...], int]] = {
    "alex": (_ALEX, (1, 4, 7, 9, 11), 31),
    "vgg": (_vgg16_plan(), (3, 8, 15, 22, 29), 16),
}
_NET_NAMES = {"alex": "AlexNet", "vgg": "VGG16"}


class _Head(nn.Module):
    """One "lin" layer: a 1x1 convolution to one channel, no bias. Kept under `.model.1` so
    the release's keys `lin<i>.model.1.weight` load as they are (slot 0 held a dropout layer,
    inactive when measuring)."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class LPIPS(nn.Module):
    """LPIPS v0.1 distance network; its state-dict keys are those of the two weight files.

    forward(x, y): x, y (B, 3, H, W) in [-1, 1] (the LPIPS convention) -> (B,) distances >= 0.
    Use :func:`lpips` for images in [0, 1] (and grey images). Build with :func:`load_lpips`;
    ``LPIPS(net)`` alone holds random weights.
    """

    def __init__(self, net: str = "alex"):
        super().__init__()
        if net not in NETS:
            raise ValueError(f"unknown LPIPS net {net!r}: expected one of {', '.join(NETS)}")
        self.net = net
        plan, self.taps, self.min_side = NETS[net]
        layers: list[nn.Module] = []
        for step in plan:
            if step[0] == "conv":
                _, c_in, c_out, k, s, p = step
                layers.append(nn.Conv2d(c_in, c_out, k, stride=s, padding=p))
            elif step[0] == "relu":
                layers.append(nn.ReLU())
            else:
                layers.append(nn.MaxPool2d(step[1], stride=step[2]))
        self.features = nn.Sequential(*layers)
        self.channels = tuple(layers[i - 1].out_channels for i in self.taps)  # the conv before each tap
        for i, c in enumerate(self.channels):
            self.add_module(f"lin{i}", _Head(c))

    def heads(self) -> list[_Head]:
        return [getattr(self, f"lin{i}") for i in range(len(self.taps))]

    def tapped_features(self, x: Tensor) -> list[Tensor]:
        """The 5 feature maps (B, C_l, H_l, W_l) of x (B, 3, H, W) in [-1, 1]."""
        # Built in x's precision each call: a float32 buffer cast to float64 would be off by ~1e-9.
        shift, scale = (torch.tensor(v, dtype=x.dtype, device=x.device).view(1, 3, 1, 1) for v in (_SHIFT, _SCALE))
        h = (x - shift) / scale
        out = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.taps:
                out.append(h)
        return out

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.shape != y.shape or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"LPIPS needs two (B, 3, H, W) tensors of equal shape, got {tuple(x.shape)} "
                             f"and {tuple(y.shape)}")
        if min(x.shape[-2:]) < self.min_side:
            raise ValueError(f"LPIPS-{self.net} needs images of at least {self.min_side}x{self.min_side} pixels, "
                             f"got {tuple(x.shape[-2:])}")
        b = x.shape[0]
        # One backbone pass over both images: they share every layer.
        feats = self.tapped_features(torch.cat([x, y]))
        total = x.new_zeros(b)
        for f, head in zip(feats, self.heads()):
            # Unit length per pixel over channels: compares the direction of the feature
            # vectors, so layers of different activation scales weigh in comparably.
            u = f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS)
            diff = (u[:b] - u[b:]).pow(2)
            total = total + head(diff).mean(dim=(1, 2, 3))
        return total


def lpips(x: Tensor, y: Tensor, model: LPIPS) -> Tensor:
    """LPIPS distance per sample of images in [0, 1].

    x, y: (B, C, H, W) in [0, 1], C = 1 (repeated to RGB, as a grey photo shown in colour)
    or 3; H, W >= 31 (alex) / 16 (vgg). Returns (B,) >= 0 on the model's device, in its
    dtype; 0 for identical images, lower is more similar. Differentiable (no no_grad here),
    so it can serve as a loss; wrap in torch.no_grad() to measure.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"need two (B, C, H, W) tensors of equal shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"LPIPS needs grey (1) or RGB (3) channels, got {x.shape[1]}")
    ref = model.lin0.model[1].weight
    x, y = (t.to(device=ref.device, dtype=ref.dtype) for t in (x, y))
    if x.shape[1] == 1:
        x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
    return model(2 * x - 1, 2 * y - 1)  # LPIPS works on [-1, 1]


# ---------------------------------------------------------------------------------------------
# Loading


def _read_state(path: Path, what: str) -> dict[str, Tensor]:
    """A flat {name: tensor} from a .safetensors or a torch pickle (weights_only: no code runs)."""
    if not path.is_file():
        raise FileNotFoundError(f"LPIPS {what} file {path} not found")
    try:
        if path.suffix == ".safetensors":
            obj: Any = load_file(path, device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt / foreign files raise many types
        first = str(err).splitlines()[0] if str(err) else ""
        raise CheckpointError(f"LPIPS {what} file {path} is not readable: {type(err).__name__}: {first}") from err
    if not (isinstance(obj, Mapping) and obj and all(isinstance(k, str) and isinstance(v, Tensor)
                                                     for k, v in obj.items())):
        raise CheckpointError(f"LPIPS {what} file {path} does not hold a state dict of tensors")
    return dict(obj)


def _infer_net(backbone: Mapping[str, Tensor], path: Path) -> str:
    # features.28 is VGG16's last conv; AlexNet's convs stop at features.10.
    if "features.28.weight" in backbone:
        return "vgg"
    if "features.10.weight" in backbone:
        return "alex"
    hint = " (it looks like an LPIPS heads file: are the two files swapped?)" \
        if any(k.startswith("lin0.") for k in backbone) else ""
    raise CheckpointError(f"LPIPS backbone file {path} holds neither torchvision AlexNet nor VGG16 "
                          f"'features.*' weights{hint}")


def _check(expected: Mapping[str, Tensor], got: Mapping[str, Tensor], path: Path, what: str,
           limit: int = 3) -> None:
    """One-line CheckpointError naming the first missing / unexpected / mis-shaped keys."""
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    wrong = [f"{k} {tuple(got[k].shape)} instead of {tuple(expected[k].shape)}"
             for k in expected if k in got and got[k].shape != expected[k].shape]
    problems = [f"{what_} {items[:limit]}" + (f" (+{len(items) - limit} more)" if len(items) > limit else "")
                for what_, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                     ("wrong shapes", wrong)) if items]
    if problems:
        raise CheckpointError(f"LPIPS {what} file {path} does not fit: " + "; ".join(problems))


def load_lpips(backbone_path: str | os.PathLike, heads_path: str | os.PathLike, net: str | None = None, *,
               device: torch.device | str = "cpu") -> LPIPS:
    """An LPIPS model (eval mode, float32, gradients off) from two local weight files.

    Args:
        backbone_path: torchvision ``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth`` (or a
            .safetensors with the same keys); only its ``features.*`` entries are used.
        heads_path: the LPIPS v0.1 ``alex.pth`` / ``vgg.pth`` (or .safetensors).
        net: "alex" or "vgg"; None infers it from the backbone's keys.
    Raises:
        FileNotFoundError: a file is missing. CheckpointError (a ValueError): an unreadable
        file, keys or shapes that do not fit the net, or negative head weights (LPIPS heads
        are non-negative, which keeps the distance >= 0).
    """
    backbone_path, heads_path = Path(backbone_path).expanduser(), Path(heads_path).expanduser()
    backbone = _read_state(backbone_path, "backbone")
    heads = _read_state(heads_path, "heads")
    net = net or _infer_net(backbone, backbone_path)
    model = LPIPS(net)
    expected = model.state_dict()
    exp_backbone = {k: v for k, v in expected.items() if k.startswith("features.")}
    exp_heads = {k: v for k, v in expected.items() if not k.startswith("features.")}
    # A torchvision file also holds the classifier, which LPIPS does not use.
    backbone = {k: v for k, v in backbone.items() if k.startswith("features.")}
    _check(exp_backbone, backbone, backbone_path, f"backbone ({_NET_NAMES[net]})")
    _check(exp_heads, heads, heads_path, f"heads ({net})")
    negative = [k for k, v in heads.items() if bool((v < 0).any())]
    if negative:
        raise CheckpointError(f"LPIPS heads file {heads_path} has negative weights in {negative[:3]}: "
                              "not LPIPS v0.1 heads (their weights are >= 0)")
    state = {k: v.float() for k, v in {**backbone, **heads}.items()}
    model.load_state_dict(state, strict=True)
    return model.to(device).eval().requires_grad_(False)
