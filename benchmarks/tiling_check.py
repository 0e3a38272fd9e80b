"""Tiled against whole-image restoration: two 512x512 TRAINING photos, known kernel.

    python benchmarks/tiling_check.py [--tile 256 --overlap 64] [--figure docs/tiling-seams.png]

Photos 40 and 41 of bsds500 (name order), up-scaled x1.6 (bicubic) and cropped to 512x512,
blurred by a 31 px motion kernel (intensity 0.5, seed 5, reflect borders) plus noise 0.01
(seed 1); restored by the proximal sampler with the true kernel, once on the whole grid
(tile 0) and once on tiles. Prints the PSNR of each (16 px border dropped) and their
difference; --figure writes a 192 px crop across tile borders: whole, tiled, |difference| x20.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from blinddps import ProxSettings, RestoreConfig, deblur
from blinddps.generators.motion import MotionKernelGenerator
from blinddps.io.images import list_images, read_image
from blinddps.metrics import psnr
from blinddps.physics import Blur


def crop_rgb(image: torch.Tensor) -> np.ndarray:
    return (image[0, :, 160:352, 160:352].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, default=Path("../shared/data/train/bsds500"))
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--overlap", type=int, default=64)
    p.add_argument("--figure", type=Path)
    args = p.parse_args()
    kernel = MotionKernelGenerator(size=31, intensity=0.5).sample(1, generator=torch.Generator().manual_seed(5))["kernel"][0, 0]
    for index, path in enumerate(list_images([args.images])[40:42]):
        x = F.interpolate(read_image(path).tensor, scale_factor=1.6, mode="bicubic", antialias=True).clamp(0, 1)
        x = x[..., :512, :512]
        noise = 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
        y = (Blur("reflect")(x, kernel=kernel) + noise).clamp(0, 1)
        runs = {}
        for tile in (0, args.tile):
            start = time.perf_counter()
            config = RestoreConfig(seed=0, prox=ProxSettings(tile=tile, tile_overlap=args.overlap))
            image = deblur(y, config, kernel=kernel).image
            runs[tile] = (float(psnr(image, x, crop=16)[0]), time.perf_counter() - start, image)
        (whole, t0, a), (part, t1, b) = runs[0], runs[args.tile]
        print(f"{path.name}: whole {whole:.3f} dB ({t0:.0f} s), tiles {args.tile}/{args.overlap} {part:.3f} dB "
              f"({t1:.0f} s), difference {part - whole:+.3f} dB, largest pixel difference {float((a - b).abs().max()):.4f}")
        if args.figure and index == 0:
            diff = ((a - b).abs()[0, :, 160:352, 160:352].mean(0) * 20).clamp(0, 1).numpy()
            grey = np.repeat((diff * 255).astype(np.uint8)[..., None], 3, axis=2)
            Image.fromarray(np.concatenate([crop_rgb(a), crop_rgb(b), grey], axis=1)).save(args.figure)


if __name__ == "__main__":
    main()
