"""Training data streams: each `batch(n, generator)` returns (n, C, H, W) in network space [-1, 1].

Kernels and tilt maps are generated on the fly (infinite data); photos are random crops
with flips and 90-degree rotations from a folder loaded once into memory as uint8.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ..generators import KernelMixGenerator, TiltGenerator
from ..priors.transforms import ImageTransform, KernelTransform, TiltTransform

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


class KernelStream:
    """The paper's kernel-prior data: 5/6 motion (intensity ~ U(0.2, 1)), 1/6 Gaussian
    (std ~ U(0.1, 5)), max-scaled to [-1, 1]."""

    channels = 1

    def __init__(self, size: int = 64):
        self.size = size
        self.generator = KernelMixGenerator(size=size)
        self.transform = KernelTransform()

    def batch(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.transform.to_net(self.generator.sample(n, generator=generator)["kernel"])


class TiltStream:
    """Random crops of generated tilt maps (pixels), scaled to [-1, 1] by the tilt transform."""

    channels = 2

    def __init__(self, size: int = 64, map_size: int = 128):
        self.size = size
        # 500 windows per 256x256 map in the paper: keep that density on smaller maps.
        patches = max(1, round(500 * map_size * map_size / 256**2))
        self.generator = TiltGenerator(height=map_size, width=map_size, num_patches=patches)
        self.transform = TiltTransform()

    def batch(self, n: int, generator: torch.Generator) -> torch.Tensor:
        tilt = self.generator.sample(n, generator=generator)["tilt"]
        return self.transform.to_net(_random_crops(tilt, self.size, generator))


class ImageFolderStream:
    """Random crops of photos in folders, with flips / rot90 and an optional share of grey
    crops (luminance copied to all channels) so that one RGB prior serves grey photos too."""

    channels = 3

    def __init__(self, folders: list[str | Path], size: int = 64, grey_fraction: float = 0.1):
        self.size = size
        self.grey_fraction = grey_fraction
        self.transform = ImageTransform()
        self.images = [_load_rgb_uint8(p) for p in _image_files(folders)]
        self.images = [im for im in self.images if min(im.shape[1:]) >= size]
        if not self.images:
            raise ValueError(f"no images of at least {size}x{size} px found in {', '.join(map(str, folders))}")

    def batch(self, n: int, generator: torch.Generator) -> torch.Tensor:
        picks = torch.randint(len(self.images), (n,), generator=generator).tolist()
        crops = torch.stack([_random_crops(self.images[j][None], self.size, generator)[0] for j in picks])
        x = crops.float() / 255.0
        x = _augment(x, generator)
        grey = torch.rand(n, generator=generator) < self.grey_fraction
        luma = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1).expand_as(x)
        x = torch.where(grey.view(-1, 1, 1, 1), luma, x)
        return x * 2 - 1


def _image_files(folders) -> list[Path]:
    files: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"training image folder not found: {folder}")
        files += sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return files


def _load_rgb_uint8(path: Path) -> torch.Tensor:
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
        return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)


def _random_crops(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """One random size x size crop per sample of x (n, C, H, W)."""
    h, w = x.shape[-2:]
    tops = torch.randint(h - size + 1, (x.shape[0],), generator=generator).tolist()
    lefts = torch.randint(w - size + 1, (x.shape[0],), generator=generator).tolist()
    return torch.stack([x[b, :, t:t + size, s:s + size] for b, (t, s) in enumerate(zip(tops, lefts))])


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and rotation by a multiple of 90 degrees, per sample."""
    flips = torch.rand(x.shape[0], generator=generator) < 0.5
    x = torch.where(flips.view(-1, 1, 1, 1), x.flip(-1), x)
    turns = torch.randint(4, (x.shape[0],), generator=generator)
    return torch.stack([torch.rot90(img, int(k), dims=(-2, -1)) for img, k in zip(x, turns)])
