"""A blind kernel found on a 512 px view, carried to a large photo: resampled only, or refit
rung by rung (`tasks.carry`), on TRAINING photos with a known motion blur.

    python benchmarks/carry_kernel.py --photos 0,1,2 --size 4000x3000 --kernel-size 101
    python benchmarks/carry_kernel.py --photos 3,4,5 --size 962x642 --kernel-size 51
    python benchmarks/carry_kernel.py --photos 6,7,8,9 --size 1500x1000 --kernel-size 75 --restore

Photo i (the i-th bsds500 training photo in name order) is up-scaled (bicubic) to --size,
blurred with 'valid' borders by a motion kernel of --kernel-size px (intensity 0.5, seed i),
plus noise 0.01 (seed 1), rounded to 8 bits. Its 512 px view is restored blind by
`blinddps.deblur` (defaults, seed 0); the view's kernel is then carried to the photo's size
both ways and each is scored by its MNC against the true kernel; with --restore the photo is
also restored with each kernel as the product restores it (non-blind, at the view's lambda)
and scored by aligned PSNR (best integer shift up to 16 px, a border of the kernel's reach
dropped), beside the blurry photo's. One JSON line per photo.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

import blinddps
from blinddps.devices import keep_freed_memory
from blinddps.generators.motion import MotionKernelGenerator
from blinddps.io.images import list_images, read_image
from blinddps.metrics import kernel_mnc
from blinddps.metrics.error_ratio import psnr_upto_shift
from blinddps.physics import Blur
from blinddps.tasks.carry import carry_kernel
from blinddps.tasks.resolution import bound_resolution, upscale_kernel
from blinddps.tasks.restore import region_refit


def blurry(photo: Path, size: tuple[int, int], index: int, kernel_size: int
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(blurry photo, true kernel, sharp photo), the photos (1, 3, H, W) in [0, 1]."""
    width, height = size
    x = F.interpolate(read_image(photo).tensor, size=(height, width), mode="bicubic", antialias=True).clamp(0, 1)
    k = MotionKernelGenerator(size=kernel_size, intensity=0.5).sample(
        1, generator=torch.Generator().manual_seed(index))["kernel"][0, 0]
    c = kernel_size // 2
    y = Blur("valid")(F.pad(x, (c, kernel_size - 1 - c, c, kernel_size - 1 - c), mode="reflect"), kernel=k)
    y = y + 0.01 * torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
    return (y.clamp(0, 1) * 255).round() / 255, k, x


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", default="0,1,2")
    p.add_argument("--size", default="4000x3000")
    p.add_argument("--kernel-size", type=int, default=101)
    p.add_argument("--train", type=Path, default=Path("../shared/data/train/bsds500"))
    p.add_argument("--restore", action="store_true", help="also restore the photo with each kernel (PSNR)")
    args = p.parse_args()
    keep_freed_memory()
    photos = list_images([args.train])
    size = tuple(int(v) for v in args.size.split("x"))
    for i in (int(v) for v in args.photos.split(",")):
        y, k, x = blurry(photos[i], size, i, args.kernel_size)
        view, scale = bound_resolution(y, 512)
        config = blinddps.RestoreConfig(seed=0).resolved()
        start = time.perf_counter()
        found = blinddps.deblur(view, config)
        view_seconds = time.perf_counter() - start
        # the product restores the regions and the photo at the lambda the view's restoration used
        final = replace(config, prox=replace(config.prox, lam=found.info.get("restore_lambda", config.prox.lam)))
        start = time.perf_counter()
        refit, rungs = carry_kernel(y, view, found.kernel, scale, region_refit(final, None))

        def mnc(kernel: torch.Tensor) -> float:
            return round(float(kernel_mnc(kernel[None, None], k[None, None])), 3)
        resampled = upscale_kernel(found.kernel, scale)
        row = {"photo": photos[i].name, "view_scale": round(scale, 3), "resampled": mnc(resampled),
               "refit": mnc(refit), "rungs": rungs, "view_s": round(view_seconds),
               "rungs_s": round(time.perf_counter() - start)}
        if args.restore:
            def aligned(image: torch.Tensor) -> float:
                return round(float(psnr_upto_shift(image.double(), x.double(), max_shift=16,
                                                   crop=max(16, args.kernel_size // 2))[0]), 2)
            row["psnr_blurry"] = aligned(y)
            row["psnr_resampled"] = aligned(blinddps.deblur(y, final, kernel=resampled).image)
            row["psnr_refit"] = aligned(blinddps.deblur(y, final, kernel=refit).image)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
