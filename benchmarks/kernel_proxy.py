"""Levin-like conditions on TRAINING photos: the blind kernel's error ratio with shake-like kernels.

    python benchmarks/kernel_proxy.py --out benchmarks/results/kernel-proxy [--n 24 --jobs 2]
    python benchmarks/kernel_proxy.py --methods search:65:1,search:31:1 --n 24

Levin et al. 2009's cases are grey 255 px photos, circularly blurred by recorded camera shake of
13-27 px, noise-free, 8 bit; the product searches them at 64 px. Here photo i (bsds500 file i in
name order, from --start) is the luma of its centre 255 px crop, blurred circularly by a
shake-like kernel of 15, 19, 23 or 27 px (i mod 4) and rounded to 8 bits. A shake-like kernel is
a trajectory of the motion generator (intensity 0.7, seed i) whose brightness varies along it as
a hand's changing speed makes it (exposure time per pixel): multiplied by exp(1.6 f), f a smooth
unit-variance random field at a third of the kernel's side. About a fifth of such a kernel's mass
lies under a fifth of its peak (the generator's own kernels: about a tenth), and that dim part
is what a wrong estimate misses.

Methods: "deblur" (the blind default, kernel size 64, seed 0), "search:K:V" (one kernel search
as the default's first, at side K with V views: `solvers.kernel_search.search_kernel`, the
search prior's denoising included). Reported per method: Levin's error ratio at 1/4 px
(hyper-Laplacian deconvolutions, circular, `metrics.error_ratio`), its median and success
rates (r <= 2, r <= 3), the kernel MNC and seconds. Tune here, never on Levin itself.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

SIZES = (15, 19, 23, 27)
CROP = 255


def shake_kernel(size: int, seed: int, intensity: float = 0.7, amplitude: float = 1.6) -> torch.Tensor:
    """A (size, size) float64 kernel summing to 1: a motion-generator trajectory whose brightness
    varies smoothly along it (see the module docstring)."""
    from blinddps.generators.motion import MotionKernelGenerator
    g = torch.Generator().manual_seed(seed)
    k = MotionKernelGenerator(size=size, intensity=intensity).sample(1, generator=g)["kernel"][0, 0].double()
    field = torch.randn(1, 1, size, size, generator=g, dtype=torch.float64)
    scale = max(size / 3, 2.0)
    radius = int(2 * scale)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-t**2 / (2 * scale**2))
    taps = taps / taps.sum()
    field = F.conv2d(F.pad(field, (radius,) * 4, mode="circular"), taps.view(1, 1, 1, -1))
    field = F.conv2d(field, taps.view(1, 1, -1, 1))[0, 0]
    k = k * torch.exp(amplitude * (field - field.mean()) / field.std())
    return k / k.sum()


def case(path: Path, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(sharp (1, 1, 255, 255) float64, its 8-bit circular blur, the shake-like kernel)."""
    from blinddps.bench.data import center_crop
    from blinddps.io.images import read_image
    from blinddps.metrics.image import rgb_to_luma
    from blinddps.physics.fft import conv_circular
    x = center_crop(rgb_to_luma(read_image(path).tensor.double()), CROP)
    kernel = shake_kernel(SIZES[index % len(SIZES)], index)
    y = conv_circular(x, kernel[None, None])
    return x, (y.clamp(0, 1) * 255).round() / 255, kernel


def estimate(method: str, y: torch.Tensor) -> torch.Tensor:
    """The kernel (1, 1, K, K) a method finds for the 8-bit grey photo y (1, 1, H, W)."""
    from blinddps import RestoreConfig, deblur
    if method == "deblur":
        kernel = deblur(y.float(), RestoreConfig(kernel_size=64, seed=0)).kernel
        return kernel.reshape(1, 1, *kernel.shape[-2:]).double()
    from blinddps.priors.bundle import load_prior
    from blinddps.solvers.kernel_search import KernelSearchConfig, search_kernel
    _, size, views = method.split(":")
    prior = load_prior(RestoreConfig().prox.search_prior, kind="image")
    config = KernelSearchConfig(views=int(views), autocast=True)
    return search_kernel(y.float().expand(1, 3, *y.shape[-2:]), int(size), image_prior=prior,
                         config=config).kernel.double()


def run_item(job: tuple) -> dict:
    index, path, methods = job
    torch.set_num_threads(1)
    from blinddps.bench.evaluate import error_ratio_crop
    from blinddps.metrics import kernel_mnc
    from blinddps.metrics.error_ratio import error_ratios, levin_deconv
    x, y, truth = case(path, index)
    row = {"index": index, "photo": path.name, "blur": truth.shape[-1]}
    for method in methods:
        start = time.perf_counter()
        k = estimate(method, y)
        seconds = time.perf_counter() - start
        ratio = error_ratios(x, y, k, truth[None, None], levin_deconv, subpixels=(4,),
                             crop=error_ratio_crop(x.shape[-2:]))[4]
        row[method] = {"ratio": float(ratio[0]), "mnc": float(kernel_mnc(k.float(), truth[None, None].float())[0]),
                       "seconds": seconds}
    print(json.dumps(row), flush=True)
    return row


def summary(rows: list[dict], method: str) -> dict:
    ratios = [r[method]["ratio"] for r in rows]
    return {"n": len(rows), "median_ratio": statistics.median(ratios),
            "success_2": sum(r <= 2 for r in ratios) / len(ratios), "success_3": sum(r <= 3 for r in ratios) / len(ratios),
            "mnc": statistics.mean(r[method]["mnc"] for r in rows),
            "seconds": statistics.mean(r[method]["seconds"] for r in rows)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, default=Path("../shared/data/train/bsds500"))
    p.add_argument("--start", type=int, default=340)
    p.add_argument("--n", type=int, default=24)
    p.add_argument("--methods", default="deblur,search:65:1,search:31:1")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, help="write results.json and README.md here")
    args = p.parse_args()
    from blinddps.io.images import list_images
    methods = args.methods.split(",")
    files = list_images([args.images])[args.start:args.start + args.n]
    jobs = [(args.start + i, f, methods) for i, f in enumerate(files)]
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        rows = sorted(pool.map(run_item, jobs, chunksize=1), key=lambda r: r["index"])
    table = ["| method | n | median ratio | r <= 2 | r <= 3 | kernel MNC | s / photo |", "|---|---|---|---|---|---|---|"]
    for method in methods:
        s = summary(rows, method)
        table.append(f"| {method} | {s['n']} | {s['median_ratio']:.2f} | {s['success_2']:.0%} | {s['success_3']:.0%} | "
                     f"{s['mnc']:.3f} | {s['seconds']:.1f} |")
    print("\n".join(table))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                           "rows": rows}, indent=1))
        command = f"python benchmarks/kernel_proxy.py --start {args.start} --n {args.n} --methods {args.methods} --out {args.out}"
        (args.out / "README.md").write_text(
            f"# Levin-like training cases with shake-like kernels\n\n`{command}`\n\n" + "\n".join(table) + "\n\n"
            "Conditions and methods: the docstring of `benchmarks/kernel_proxy.py`. Error ratio at 1/4 px.\n")


if __name__ == "__main__":
    main()
