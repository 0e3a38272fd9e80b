"""How stable the blind kernel is under small changes of the input, on TRAINING photos.

    python benchmarks/kernel_stability.py --out benchmarks/results/kernel-stability [--n 8 --jobs 2]

Photo i (bsds500 files --start.. in name order) is centre-cropped to 256 px, blurred by a
64 px motion kernel (`MotionKernelGenerator`, intensity 0.5, seed i) with 'valid' borders,
plus noise of std 0.01 (seed 10000 + i) and rounded to 8 bits: the paper's protocol. It is
restored blind with the defaults (`deblur`, kernel size 64, seed 0), and again after one
change at a time:

- shift: the blurry photo without its first row and column (the scene moved by a pixel);
- jpeg: the blurry photo re-encoded as JPEG, quality 95 (no chroma subsampling);
- seed: seed 1 instead of 0;
- prior: the restoring image prior `priors/natural-rgb-6.safetensors` instead of the bundled
  `natural-rgb` (the search keeps its own prior, `ProxSettings.search_prior`).

Reported per change: the kernel's MNC to the unchanged run's kernel (1: the same kernel up
to a shift), its MNC to the true kernel, and the aligned PSNR (best integer shift up to 16
px, 16 px border) against the unchanged run's. Issue bar: MNC >= 0.98 to the unchanged
kernel, benchmark means moved by at most 0.1 dB. Writes results.json and README.md to --out.
"""
from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from blinddps import RestoreConfig, deblur
from blinddps.generators.motion import MotionKernelGenerator
from blinddps.io.images import list_images, read_image
from blinddps.metrics import kernel_mnc
from blinddps.metrics.error_ratio import psnr_upto_shift
from blinddps.physics import Blur

CHANGES = ("base", "shift", "jpeg", "seed", "prior")
SIZE, KERNEL, NOISE, CROP = 256, 64, 0.01, 16


def photo(path: Path, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(sharp, blurry, kernel): the sharp crop (1, 3, 256, 256) and its 8-bit blurry photo."""
    x = read_image(path).tensor
    h, w = x.shape[-2:]
    top, left = (h - SIZE) // 2, (w - SIZE) // 2
    kernel = MotionKernelGenerator(size=KERNEL, intensity=0.5).sample(
        1, generator=torch.Generator().manual_seed(index))["kernel"][0, 0]
    c = KERNEL // 2
    # the scene around the crop, so that 'valid' blur gives the crop's size
    scene = torch.nn.functional.pad(x, (c, c, c, c), mode="reflect")[..., top:top + SIZE + KERNEL - 1,
                                                                     left:left + SIZE + KERNEL - 1]
    y = Blur("valid")(scene, kernel=kernel)
    y = y + NOISE * torch.randn(y.shape, generator=torch.Generator().manual_seed(10_000 + index))
    y = (y.clamp(0, 1) * 255).round() / 255
    return x[..., top:top + SIZE, left:left + SIZE], y, kernel


def jpeg95(y: torch.Tensor) -> torch.Tensor:
    array = (y[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=95, subsampling=0)
    back = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(back).permute(2, 0, 1)[None]


def run_change(change: str, y: torch.Tensor, prior6: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(restored image on the unchanged photo's pixel grid, kernel) after one change."""
    config = RestoreConfig(kernel_size=KERNEL, seed=0)
    if change == "shift":
        y = y[..., 1:, 1:]
    elif change == "jpeg":
        y = jpeg95(y)
    elif change == "seed":
        config = replace(config, seed=1)
    elif change == "prior":
        config = replace(config, image_prior=prior6)
    result = deblur(y, config)
    image = result.image
    if change == "shift":  # back on the unchanged photo's grid (its first row and column repeated)
        image = torch.nn.functional.pad(image, (1, 0, 1, 0), mode="replicate")
    return image, result.kernel


def run_item(job: tuple) -> dict:
    index, path, prior6 = job
    torch.set_num_threads(1)
    x, y, k_true = photo(path, index)
    row = {"photo": path.name, "index": index}
    kernels = {}
    for change in CHANGES:
        image, kernel = run_change(change, y, prior6)
        kernels[change] = kernel
        row[change] = {"psnr": float(psnr_upto_shift(image.double(), x.double(), max_shift=16, crop=CROP)[0]),
                       "mnc_true": float(kernel_mnc(kernel[None, None], k_true[None, None])[0]),
                       "mnc_base": float(kernel_mnc(kernel[None, None], kernels["base"][None, None])[0])}
    row["blurry"] = float(psnr_upto_shift(y.double(), x.double(), max_shift=16, crop=CROP)[0])
    print(json.dumps(row), flush=True)
    return row


def summary(rows: list[dict]) -> list[str]:
    lines = ["| change | MNC to unchanged kernel: mean (min) | photos >= 0.98 | MNC to true | aligned PSNR (dB) "
             "| change of PSNR: mean (max abs) |", "|---|---|---|---|---|---|"]
    for change in CHANGES:
        mnc = [r[change]["mnc_base"] for r in rows]
        dp = [r[change]["psnr"] - r["base"]["psnr"] for r in rows]
        lines.append(f"| {change} | {statistics.mean(mnc):.3f} ({min(mnc):.3f}) | "
                     f"{sum(m >= 0.98 for m in mnc)}/{len(rows)} | "
                     f"{statistics.mean(r[change]['mnc_true'] for r in rows):.3f} | "
                     f"{statistics.mean(r[change]['psnr'] for r in rows):.2f} | "
                     f"{statistics.mean(dp):+.2f} ({max(abs(d) for d in dp):.2f}) |")
    lines.append(f"\nBlurry input: {statistics.mean(r['blurry'] for r in rows):.2f} dB aligned.")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, default=Path("../shared/data/train/bsds500"))
    p.add_argument("--start", type=int, default=200)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--prior", default="priors/natural-rgb-6.safetensors")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    paths = list_images([args.images])[args.start:args.start + args.n]
    jobs = [(args.start + i, path, args.prior) for i, path in enumerate(paths)]
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        rows = sorted(pool.map(run_item, jobs), key=lambda r: r["index"])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(rows, indent=1))
    text = ["# Kernel stability under small changes of the input (training photos)", "",
            f"Command: `python benchmarks/kernel_stability.py --start {args.start} --n {args.n} "
            f"--jobs {args.jobs} --out {args.out}`", "", *summary(rows)]
    (args.out / "README.md").write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()
