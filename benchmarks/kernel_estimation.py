"""The blind kernel estimator on TRAINING photos: Levin's error ratio, kernel MNC, seconds.

    python benchmarks/kernel_estimation.py --images ../shared/data/train/train400_gray --n 24 \
        --blur-sizes 13,17,21,27 --kernel-size 31 --padding circular --noise 0 --quantize --jobs 2
    python benchmarks/kernel_estimation.py ... --set noise_floor=0.5 --set iterations=3

Photo i (the i-th file in name order, a centre crop of --crop pixels) is blurred by a kernel
of size --blur-sizes[i mod n] (the motion generator at intensity 0.5 with seed i, or with
--shake an oscillating hand's kernel, `shake_kernels.py`), with --padding borders, plus
Gaussian noise --noise, rounded to 8 bits with --quantize. `estimation.estimate_kernel` (its
defaults, changed by --set FIELD=VALUE) finds a --kernel-size kernel from the photo alone.
The error ratio (Levin et al. 2009, 1/4 px alignment, `metrics.error_ratio`) compares the
hyper-Laplacian deconvolutions with the found and the true kernel (circular with
--padding circular, padded borders otherwise). Tune here, never on the benchmarks.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import time
from dataclasses import fields, replace
from pathlib import Path

import torch

from blinddps.baselines.deconv import deconv_hyper_laplacian
from blinddps.estimation import KernelEstimator, estimate_kernel
from blinddps.generators.motion import MotionKernelGenerator
from blinddps.io.images import list_images, read_image
from blinddps.metrics import kernel_mnc
from blinddps.metrics.error_ratio import error_ratios, levin_deconv
from blinddps.physics.blur import blur

import sys; sys.path.insert(0, "/tmp/ke"); from shake_kernels import shake_kernel


def centre_crop(path: Path, size: int, grey: bool) -> torch.Tensor:
    x = read_image(path).tensor
    x = x.mean(dim=1, keepdim=True) if grey else x
    h, w = x.shape[-2:]
    size = min(size, h, w)
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top:top + size, left:left + size].double()


def true_kernel(index: int, size: int, shake: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(index)
    if shake:
        return shake_kernel(size, g)
    return MotionKernelGenerator(size=size, intensity=0.5).sample(1, generator=g)["kernel"][0, 0].double()


def measurement(x: torch.Tensor, kernel: torch.Tensor, args, index: int) -> torch.Tensor:
    y = blur(x, kernel, padding=args.padding)
    if args.noise > 0:
        y = y + args.noise * torch.randn(y.shape, generator=torch.Generator().manual_seed(10_000 + index),
                                         dtype=y.dtype)
    y = y.clamp(0, 1)
    return (y * 255).round() / 255 if args.quantize else y


def run_item(job: tuple) -> dict:
    index, path, args, settings = job
    torch.set_num_threads(1)
    x = centre_crop(path, args.crop, args.grey)
    k_true = true_kernel(index, args.blur_sizes[index % len(args.blur_sizes)], args.shake)
    y = measurement(x, k_true, args, index)
    start = time.perf_counter()
    source = y
    if args.denoise:
        from blinddps.priors.bundle import load_prior
        from blinddps.solvers.kernel_search import prior_denoised
        prior = load_prior(args.denoise, kind="image")
        source = prior_denoised(y.float(), prior, autocast=True, scale=args.denoise_scale).double()
    if args.old is not None:
        from blinddps.priors.bundle import load_prior
        from blinddps.solvers.kernel_search import KernelSearchConfig, search_kernel
        cfg = KernelSearchConfig(views=args.old_views, lambda_decay=args.old, denoise=args.old_denoise, autocast=True)
        prior = load_prior("natural-rgb-3", kind="image")
        from blinddps.estimation.kernel import KernelEstimate
        found = KernelEstimate(search_kernel(source.float().expand(1, 3, *source.shape[-2:]), args.kernel_size,
                                             image_prior=prior, config=cfg).kernel.double(), torch.zeros(1))
    else:
        found = estimate_kernel(source, args.kernel_size, settings)
    seconds = time.perf_counter() - start
    k = found.kernel.double()
    deconv = levin_deconv if args.padding == "circular" else (
        lambda b, kk: deconv_hyper_laplacian(b, kk, lam=2e3, alpha=0.8, boundary="pad"))
    ratio = error_ratios(x, y, k, k_true[None, None], deconv, subpixels=(4,), crop=min(15, x.shape[-1] // 4))[4]
    return {"image": path.name, "blur": k_true.shape[-1], "ratio": float(ratio[0]),
            "mnc": float(kernel_mnc(k, k_true[None, None])[0]), "noise_est": float(found.noise[0]),
            "seconds": seconds}


def summary(rows: list[dict]) -> dict:
    ratios = [r["ratio"] for r in rows]
    return {"n": len(rows), "median_ratio": statistics.median(ratios), "mean_ratio": statistics.mean(ratios),
            "success_2": sum(r <= 2 for r in ratios) / len(ratios), "success_3": sum(r <= 3 for r in ratios) / len(ratios),
            "mnc": statistics.mean(r["mnc"] for r in rows), "seconds": statistics.mean(r["seconds"] for r in rows)}


def parse_settings(items: list[str]) -> KernelEstimator:
    types = {f.name: type(getattr(KernelEstimator(), f.name)) for f in fields(KernelEstimator)}
    changes = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in types:
            raise SystemExit(f"unknown setting {key!r}: one of {', '.join(types)}")
        changes[key] = types[key](value)
    return replace(KernelEstimator(), **changes)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, required=True)
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--grey", action="store_true", help="estimate on grey photos (the colour mean)")
    p.add_argument("--blur-sizes", default="31", help="true kernel sizes, comma-separated, photo i takes the (i mod n)-th")
    p.add_argument("--kernel-size", type=int, default=31, help="the size the estimator is asked for")
    p.add_argument("--padding", choices=["reflect", "circular"], default="reflect")
    p.add_argument("--noise", type=float, default=0.0)
    p.add_argument("--quantize", action="store_true")
    p.add_argument("--shake", action="store_true")
    p.add_argument("--denoise", default="", help="estimate on the photo denoised by this image prior first")
    p.add_argument("--denoise-scale", type=float, default=1.0)
    p.add_argument("--old", type=float, default=None, help="the shipped search at this decay instead")
    p.add_argument("--old-views", type=int, default=2)
    p.add_argument("--old-denoise", type=int, default=1)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, help="write the rows and the summary as JSON here")
    args = p.parse_args()
    args.blur_sizes = [int(s) for s in args.blur_sizes.split(",")]
    settings = parse_settings(args.set)
    files = list_images([args.images])[args.offset:args.offset + args.n]
    jobs = [(args.offset + i, f, args, settings) for i, f in enumerate(files)]
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        rows = pool.map(run_item, jobs, chunksize=1)
    result = {"settings": settings.to_dict(), "args": {k: str(v) for k, v in vars(args).items()},
              "summary": summary(rows), "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    s = result["summary"]
    print(f"{' '.join(args.set) or 'defaults'}: median ratio {s['median_ratio']:.2f}, mean {s['mean_ratio']:.2f}, "
          f"r<=2 {s['success_2']:.0%}, r<=3 {s['success_3']:.0%}, MNC {s['mnc']:.3f}, {s['seconds']:.1f} s")


if __name__ == "__main__":
    main()
