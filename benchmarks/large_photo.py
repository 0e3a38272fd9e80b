"""A large test photo with a known blur, for the full-resolution timings in RESULTS.md.

    python benchmarks/large_photo.py --out /tmp/large [--size 4000x3000 --kernel-size 101]
    /usr/bin/time -v blinddps deblur /tmp/large/blurry.png -o /tmp/large/out --kernel /tmp/large/kernel.npy -q
    /usr/bin/time -v blinddps deblur /tmp/large/blurry.png -o /tmp/large/blind -q
    python benchmarks/large_photo.py --out /tmp/large --score /tmp/large/out/blurry_restored.png

The TRAINING photo bsds500 `100007.jpg` up-scaled (bicubic) to --size, blurred by a motion
kernel of --kernel-size px (`MotionKernelGenerator`, intensity 0.5, seed 0) with 'valid'
borders (the scene is the up-scaled photo widened by reflection, so the blurry photo has
--size), plus Gaussian noise of std 0.01 (seed 1), written as 8-bit PNGs (sharp.png,
blurry.png) and kernel.npy. --score prints the PSNR of the blurry photo and of a restoration
against sharp.png, 60 px dropped at each side, and after the best integer shift (|s| <= 16 px)
for blind restorations.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from blinddps.generators.motion import MotionKernelGenerator
from blinddps.io.images import read_image, write_image
from blinddps.metrics import psnr
from blinddps.metrics.error_ratio import psnr_upto_shift
from blinddps.physics import Blur

BORDER = 60


def make(out: Path, photo: Path, size: tuple[int, int], kernel_size: int) -> None:
    width, height = size
    x = F.interpolate(read_image(photo).tensor, size=(height, width), mode="bicubic", antialias=True).clamp(0, 1)
    kernel = MotionKernelGenerator(size=kernel_size, intensity=0.5).sample(
        1, generator=torch.Generator().manual_seed(0))["kernel"][0, 0]
    c = kernel_size // 2
    scene = F.pad(x, (c, kernel_size - 1 - c, c, kernel_size - 1 - c), mode="reflect")
    y = Blur("valid")(scene, kernel=kernel)
    y = (y + 0.01 * torch.randn(y.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    out.mkdir(parents=True, exist_ok=True)
    write_image(out / "sharp.png", x)
    write_image(out / "blurry.png", y)
    np.save(out / "kernel.npy", kernel.numpy())


def score(out: Path, restored: Path) -> None:
    x = read_image(out / "sharp.png").tensor.double()
    for name, path in (("blurry", out / "blurry.png"), ("restored", restored)):
        image = read_image(path).tensor.double()
        plain = float(psnr(image, x, crop=BORDER)[0])
        aligned = float(psnr_upto_shift(image, x, max_shift=16, crop=BORDER)[0])
        print(f"{name}: {plain:.2f} dB, aligned {aligned:.2f} dB ({image.shape[-1]}x{image.shape[-2]})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--photo", type=Path, default=Path("../shared/data/train/bsds500/100007.jpg"))
    p.add_argument("--size", default="4000x3000", help="width x height")
    p.add_argument("--kernel-size", type=int, default=101)
    p.add_argument("--score", type=Path, help="a restoration of blurry.png to score against sharp.png")
    args = p.parse_args()
    if args.score:
        score(args.out, args.score)
        return
    width, height = (int(v) for v in args.size.lower().split("x"))
    make(args.out, args.photo, (width, height), args.kernel_size)


if __name__ == "__main__":
    main()
