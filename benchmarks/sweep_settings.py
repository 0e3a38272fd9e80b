"""Sweep restoration settings (BlindDPS or the proximal sampler) on TRAINING photos (never the benchmark sets), with paired seeds.

    python benchmarks/sweep_settings.py --images ../shared/data/train/bsds500 --n 4 \
        --steps 50 --set kernel_sparsity=0,0.3,1 --set zeta=10,20 --jobs 2 --out sweep.md

Image i (the i-th file in name order, a centre crop of --crop pixels) is blurred as in the
Kodak protocol: a motion kernel of size 64 and intensity 0.5 drawn with seed i, reflect
borders, Gaussian noise 0.01 in [0, 1]. Every combination of the --set values (their
product; any RestoreConfig option name, `RestoreConfig.options`) runs `blinddps.deblur` with seed i on it, so settings are
compared on the same measurement and the same diffusion noise. The report: mean PSNR, SSIM
and kernel MNC per setting (and per image), with the blurry input's PSNR for reference.
--jobs runs items in that many processes with one thread each (2 on the project's machine).
--known-kernel gives each run the true kernel (non-blind: `deblur(y, config, kernel=k)`).

    python benchmarks/sweep_settings.py --images ../shared/data/train/bsds500 --n 4 --known-kernel \
        --set prox_lambda=3,7,15 --set prox_t_start=300,600 --jobs 2 --out sweep-prox.md
"""
from __future__ import annotations

import argparse
import datetime
import itertools
import multiprocessing as mp
import time
from pathlib import Path

import torch

from blinddps import RestoreConfig, deblur, simulate
from blinddps.io import atomic_write, list_images, read_image
from blinddps.metrics import kernel_mnc, psnr, psnr_upto_shift, ssim


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"none": None, "true": True, "false": False}.get(text.lower(), text)


def parse_grid(items: list[str]) -> dict[str, list]:
    """["a=1,2", "b=x"] -> {"a": [1, 2], "b": ["x"]}; names must be RestoreConfig option names."""
    known = set(RestoreConfig().options())
    grid = {}
    for item in items:
        name, _, values = item.partition("=")
        if name not in known or not values:
            raise SystemExit(f"--set {item!r}: expected NAME=V1,V2,... with NAME one of {', '.join(sorted(known))}")
        grid[name] = [_parse_value(v) for v in values.split(",")]
    return grid


def load_crops(folder: Path, n: int, crop: int) -> list[tuple[str, torch.Tensor]]:
    files = list_images([folder])[:n]
    if len(files) < n:
        raise SystemExit(f"{folder}: {len(files)} images, --n asks for {n}")
    crops = []
    for path in files:
        x = read_image(path).tensor
        h, w = x.shape[-2:]
        size = min(crop, h, w)
        top, left = (h - size) // 2, (w - size) // 2
        crops.append((path.name, x[..., top : top + size, left : left + size]))
    return crops


def run_item(job: tuple) -> dict:
    """One (image, setting) pair in a worker process; returns its metrics."""
    index, name, x, setting, steps, known = job
    torch.set_num_threads(1)
    y, truth = simulate(x, blur="motion", kernel_size=64, intensity=0.5, noise=0.01, seed=index)
    config = RestoreConfig.from_options(**{"steps": steps, "seed": index, "max_size": 0, **setting})
    start = time.perf_counter()
    result = deblur(y, config, kernel=truth["kernel"] if known else None)
    return {"image": name, "setting": setting, "psnr": psnr(result.image, x).item(),
            # after the best shift (|s| <= 16 px): a blind estimate is defined up to a translation
            "psnr_aligned": psnr_upto_shift(result.image, x, max_shift=16, crop=16).item(),
            "ssim": ssim(result.image, x).item(), "mnc": kernel_mnc(result.kernel, truth["kernel"]).item(),
            "blurry_psnr": psnr(y, x).item(), "seconds": time.perf_counter() - start}


def report(rows: list[dict], args: argparse.Namespace, grid: dict) -> str:
    settings = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
    blurry = sum(r["blurry_psnr"] for r in rows) / len(rows)
    lines = [f"# Settings sweep (training photos{', true kernel given' if args.known_kernel else ', blind'})", "",
             (f"- images: numbers {args.offset}-{args.offset + args.n - 1} (name order) of `{args.images}`, centre crops of {args.crop} px; "
              "motion kernels 64 px, intensity 0.5, seed = image index; noise 0.01; reflect borders"),
             f"- steps: {args.steps}; everything else RestoreConfig's defaults",
             (f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}; "
              f"torch {torch.__version__}, {args.jobs} process(es) x 1 thread"),
             f"- blurry input: {blurry:.2f} dB (mean)", "",
             "| setting | PSNR (dB) | PSNR aligned (dB) | SSIM | kernel MNC | s / image |", "|---|---|---|---|---|---|"]
    for setting in settings:
        mine = [r for r in rows if r["setting"] == setting]
        mean = {k: sum(r[k] for r in mine) / len(mine) for k in ("psnr", "psnr_aligned", "ssim", "mnc", "seconds")}
        label = ", ".join(f"{k}={v}" for k, v in setting.items()) or "defaults"
        lines.append(f"| {label} | {mean['psnr']:.2f} | {mean['psnr_aligned']:.2f} | {mean['ssim']:.3f} | "
                     f"{mean['mnc']:.3f} | {mean['seconds']:.0f} |")
    lines += ["", "Per image (PSNR dB / kernel MNC):", "",
              "| image | blurry | " + " | ".join(", ".join(f"{k}={v}" for k, v in s.items()) or "defaults"
                                               for s in settings) + " |",
              "|---|---|" + "---|" * len(settings)]
    for name in dict.fromkeys(r["image"] for r in rows):
        mine = {str(r["setting"]): r for r in rows if r["image"] == name}
        cells = [f"{mine[str(s)]['psnr']:.2f} / {mine[str(s)]['mnc']:.2f}" for s in settings]
        lines.append(f"| {name} | {next(iter(mine.values()))['blurry_psnr']:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, required=True, help="folder of TRAINING photos")
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--offset", type=int, default=0, help="skip the first this many photos (seeds stay the index)")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=V1,V2",
                        help="a RestoreConfig option name and its values (repeatable: the grid is the product)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--known-kernel", action="store_true", help="non-blind: give every run the true kernel")
    parser.add_argument("--out", type=Path, required=True, help="markdown report")
    args = parser.parse_args()
    grid = parse_grid(args.set)
    crops = load_crops(args.images, args.offset + args.n, args.crop)[args.offset:]
    jobs = [(args.offset + i, name, x, dict(zip(grid, combo)), args.steps, args.known_kernel)
            for i, (name, x) in enumerate(crops) for combo in itertools.product(*grid.values())]
    if args.jobs > 1:
        with mp.get_context("spawn").Pool(args.jobs) as pool:
            rows = pool.map(run_item, jobs, chunksize=1)
    else:
        rows = [run_item(job) for job in jobs]
    text = report(rows, args, grid)
    atomic_write(args.out, lambda tmp: tmp.write_text(text))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
