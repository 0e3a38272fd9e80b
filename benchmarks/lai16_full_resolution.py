"""Blind deblurring of Lai et al. 2016's photos at their full resolution: a fixed subset, 1 % noise.

    python benchmarks/lai16_full_resolution.py --out benchmarks/results/lai16-full-resolution

Cases: photo `--photo` (default 01) of each of the five categories (manmade, natural, people,
saturated, text: about 1024x700, text 630x518) blurred by each of the four kernels (31, 51, 55
and 75 px), 20 cases. The blur has 'valid' borders, as a camera makes it: the blurry photo is
the part of the scene that the whole kernel covers, the truth the same window of the sharp
photo. Gaussian noise of std 0.01 (seeded by the case's index) and 8-bit rounding follow.
Each case is restored by `blinddps.deblur` with the defaults (seed 0) at its own size: the
kernel found on the 512 px view, carried up, the photo restored at full resolution.

Per case: PSNR of the blurry photo and of the restoration against the truth, both after the
best integer shift (|s| <= 16 px, 16 px dropped at every side: a blind kernel is only defined
up to a translation), the kernel's MNC against the true kernel, and the wall time. Writes
results.csv (one row per case, appended as each ends, so a stopped run resumes where it
stopped), summary.md and config.json to --out.
"""
from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from blinddps import RestoreConfig, deblur
from blinddps.io import atomic_write
from blinddps.io.images import read_image
from blinddps.metrics import kernel_mnc
from blinddps.metrics.error_ratio import psnr_upto_shift
from blinddps.physics import Blur

CATEGORIES = ("manmade", "natural", "people", "saturated", "text")
FIELDS = ("case", "photo", "kernel", "kernel_px", "height", "width", "blurry_psnr", "psnr", "gain", "kernel_mnc",
          "seconds")
SHIFT = 16


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def read_kernel(path: Path) -> torch.Tensor:
    """Lai et al.'s kernel image (K, K, 3) uint8 -> (K, K) float, non-negative, summing to 1."""
    k = torch.from_numpy(np.asarray(Image.open(path).convert("L"), dtype=np.float64))
    return (k / k.sum()).float()


def make_case(sharp: torch.Tensor, kernel: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(truth, blurry), both (1, 3, H - K + 1, W - K + 1) in [0, 1]: 'valid' blur, noise 0.01, 8 bit."""
    k, c = kernel.shape[-1], kernel.shape[-1] // 2
    blurry = Blur("valid")(sharp, kernel=kernel)
    blurry = blurry + 0.01 * torch.randn(blurry.shape, generator=torch.Generator().manual_seed(seed))
    blurry = (blurry.clamp(0, 1) * 255).round() / 255
    truth = sharp[..., k - 1 - c:k - 1 - c + blurry.shape[-2], k - 1 - c:k - 1 - c + blurry.shape[-1]]
    return truth, blurry


def aligned(image: torch.Tensor, truth: torch.Tensor) -> float:
    return float(psnr_upto_shift(image.double(), truth.double(), max_shift=SHIFT, crop=SHIFT)[0])


def summary(rows: list[dict], args: argparse.Namespace) -> str:
    def mean(key: str, subset: list[dict]) -> float:
        return sum(float(r[key]) for r in subset) / len(subset)

    lines = ["# Lai et al. 2016 at full resolution, blind, 1 % noise", "",
             f"{len(rows)} cases (photo {args.photo} of each category x 4 kernels), `blinddps.deblur` defaults, "
             f"seed 0; {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
             f"torch {torch.__version__}. PSNR after the best shift (|s| <= {SHIFT} px, {SHIFT} px dropped at each side).",
             "", "| kernel | cases | blurry PSNR | restored PSNR | gain | kernel MNC | under blurry | seconds (mean / max) |",
             "|---|---|---|---|---|---|---|---|"]
    for name in sorted({r["kernel"] for r in rows}) + ["all"]:
        part = [r for r in rows if name in ("all", r["kernel"])]
        label = "all" if name == "all" else f"{name} ({part[0]['kernel_px']} px)"
        under = sum(float(r["gain"]) < 0 for r in part)
        lines.append(f"| {label} | {len(part)} | {mean('blurry_psnr', part):.2f} | {mean('psnr', part):.2f} | "
                     f"{mean('gain', part):+.2f} | {mean('kernel_mnc', part):.3f} | {under} | "
                     f"{mean('seconds', part):.0f} / {max(float(r['seconds']) for r in part):.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data/bench/lai16"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--photo", default="01", help="which photo of each category (01-05)")
    p.add_argument("--kernels", default="1,2,3,4", help="kernel numbers (1-4)")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    table = args.out / "results.csv"
    done = {r["case"]: r for r in csv.DictReader(table.open())} if table.exists() else {}
    config = RestoreConfig(seed=0)
    write_text(args.out / "config.json", json.dumps({"restore": config.to_dict(), "photo": args.photo,
                                                       "kernels": args.kernels, "noise": 0.01}, indent=2))
    index = 0
    for category in CATEGORIES:
        sharp = read_image(args.data / "sharp" / f"{category}_{args.photo}.png").tensor
        for number in (int(n) for n in args.kernels.split(",")):
            index += 1
            name = f"{category}_{args.photo}-kernel_{number:02d}"
            if name in done:
                continue
            kernel = read_kernel(args.data / "kernels" / f"kernel_{number:02d}.png")
            truth, blurry = make_case(sharp.expand(1, 3, *sharp.shape[-2:]), kernel, seed=index)
            start = time.perf_counter()
            result = deblur(blurry, config)
            seconds = time.perf_counter() - start
            before, after = aligned(blurry, truth), aligned(result.image, truth)
            mnc = float(kernel_mnc(result.kernel[None, None].double(), kernel[None, None].double()))
            row = {"case": name, "photo": f"{category}_{args.photo}", "kernel": f"kernel_{number:02d}",
                   "kernel_px": kernel.shape[-1], "height": blurry.shape[-2], "width": blurry.shape[-1],
                   "blurry_psnr": f"{before:.3f}", "psnr": f"{after:.3f}", "gain": f"{after - before:.3f}",
                   "kernel_mnc": f"{mnc:.4f}", "seconds": f"{seconds:.1f}"}
            done[name] = row
            print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
            rows = list(done.values())
            write_text(table, "".join([",".join(FIELDS) + "\n"] + [",".join(str(r[f]) for f in FIELDS) + "\n" for r in rows]))
            write_text(args.out / "summary.md", summary(rows, args))


if __name__ == "__main__":
    main()
