"""`blinddps bench`: evaluate BlindDPS and baselines on a benchmark (see benchmarks/README.md)."""
from __future__ import annotations

import os
import shlex
import sys

import click
import torch

from ..bench import METHODS, BenchConfig, run_benchmark_distributed
from ..tasks.config import ProxSettings
from .common import device_option, friendly_errors, quiet_option, resolve_device, seed_option


def _device(name: str) -> str:
    """Under torchrun with CUDA, each process takes the GPU of its LOCAL_RANK."""
    device = resolve_device(name)
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return str(device)


def _command_line() -> str:
    command = shlex.join(["blinddps", *sys.argv[1:]])
    world = int(os.environ.get("WORLD_SIZE", 1))
    return f"torchrun --nproc-per-node {world} -m {command}" if world > 1 else command


@click.command("bench")
@click.option("--images", default=None,
              help="Image folder, or a benchmark name in ../shared/data/bench (levin09, kodak24, cbsd68). "
                   "[required; default for --task levin: levin09]")
@click.option("--task", type=click.Choice(["motion", "gaussian", "levin", "turbulence"]), default=None,
              help="motion / gaussian: simulated blur of the images; levin: the Levin 2009 files; "
                   "turbulence: the project's turbulence simulation (tilt + Gaussian blur of --gaussian-std). "
                   "[default: levin for a Levin folder, else motion]")
@click.option("--methods", default=",".join(METHODS), show_default=True,
              help=f"Comma-separated, any of: {', '.join(METHODS)} (case-insensitive).")
@click.option("--steps", type=int, default=100, show_default=True, help="Diffusion steps (respaced).")
@click.option("--crop", type=int, default=256, show_default=True, help="Centre crop side (0: none; not Levin).")
@click.option("--kernel-size", type=int, default=64, show_default=True,
              help="Simulated kernel size and BlindDPS kernel size (Pan-L0: rounded up to odd).")
@click.option("--intensity", type=float, default=0.5, show_default=True, help="Motion blur intensity.")
@click.option("--gaussian-std", type=float, default=3.0, show_default=True, help="Gaussian blur std (px).")
@click.option("--noise", type=float, default=None,
              help="Noise std in [0, 1]. [default: 0.01; Levin: 0, the files are noise-free]")
@click.option("--kernels", type=click.Path(exists=True, dir_okay=False), default=None,
              help=".npz of kernels (N, K, K) ('kernels'): kernel j blurs image j.")
@click.option("--limit", type=int, default=0, show_default=True, help="First N measurements only (0: all).")
@click.option("--image-prior", default="natural-rgb", show_default=True, help="Image prior name or file.")
@click.option("--search-prior", default=ProxSettings.search_prior, show_default=True,
              help="Image prior of the prox row's kernel search ('': --image-prior).")
@click.option("--prox", "prox_options", multiple=True, metavar="NAME=VALUE",
              help="A proximal setting of the prox rows changed from the default, by the name of its deblur "
                   "option (e.g. prox-search-refit=true, prox-search-lambda=6); repeatable.")
@click.option("--kernel-prior", default="kernel-64", show_default=True, help="Kernel prior name or file.")
@click.option("--tilt-prior", default="tilt", show_default=True,
              help="Tilt prior name or file (turbulence task, BlindDPS methods; 'uniform': none).")
@click.option("--padding", type=click.Choice(["reflect", "zeros", "circular", "replicate"]), default="reflect",
              show_default=True, help="Blur border of the simulation and the solvers (Levin: circular).")
@click.option("--figure-rows", type=int, default=4, show_default=True, help="Measurements shown in figure.png.")
@click.option("--lpips-backbone", type=click.Path(exists=True, dir_okay=False), default=None,
              help="LPIPS backbone weights (local file, nothing is downloaded): torchvision's "
                   "alexnet-owt-7be5be79.pth or vgg16-397923af.pth (or .safetensors, same keys). "
                   "[default: $BLINDDPS_LPIPS_BACKBONE]")
@click.option("--lpips-heads", type=click.Path(exists=True, dir_okay=False), default=None,
              help="LPIPS v0.1 linear heads matching the backbone: alex.pth or vgg.pth. With both files "
                   "an LPIPS column is reported (scored from the cached outputs: adding it to a finished "
                   "run reruns no method). [default: $BLINDDPS_LPIPS_HEADS]")
@click.option("--threads", type=int, default=0, show_default=True,
              help="CPU threads per process (0: torch default). 1 avoids oversubscription on busy machines.")
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False),
              help="Results folder (cache/ inside makes reruns resume).")
@seed_option
@device_option
@quiet_option
@friendly_errors
def bench_command(images, task, methods, steps, crop, kernel_size, intensity, gaussian_std, noise, kernels,
                  limit, image_prior, search_prior, prox_options, kernel_prior, tilt_prior, padding, figure_rows,
                  lpips_backbone, lpips_heads, threads, out, seed, device, quiet):
    """Run methods on a deblurring benchmark; write per_image.csv, summary.md/json, figure.png.

    \b
    Examples:
      blinddps bench --images levin09 -o benchmarks/results/levin
      blinddps bench --images kodak24 --kernels ../shared/golden/motion_kernels_64_i0.5_ref.npz \\
          -o benchmarks/results/kodak24
      torchrun --nproc-per-node 2 -m blinddps bench --images levin09 -o out   (2 shards)
      blinddps bench --images kodak24 --task turbulence --gaussian-std 3.0 \\
          -o benchmarks/results/kodak24-turbulence   (tilt + Gaussian blur)
      blinddps bench --images levin09 -o benchmarks/results/levin \\
          --lpips-backbone alexnet-owt-7be5be79.pth --lpips-heads alex.pth   (adds LPIPS)
    """
    if threads:
        torch.set_num_threads(threads)
    if images is None and task != "levin":
        raise click.UsageError("--images is required (a folder, or levin09 / kodak24 / cbsd68)")
    images = images or "levin09"
    if task is None:
        task = "levin" if os.path.basename(os.path.normpath(images)).startswith("levin") else "motion"
    config = BenchConfig(images=images, out=out, task=task, methods=methods, steps=steps, crop=crop,
                         kernel_size=kernel_size, intensity=intensity, gaussian_std=gaussian_std, noise=noise,
                         kernels=kernels, limit=limit, image_prior=image_prior, search_prior=search_prior,
                         prox_options=prox_options, kernel_prior=kernel_prior, tilt_prior=tilt_prior, padding=padding,
                         seed=seed, device=_device(device), figure_rows=figure_rows, lpips_backbone=lpips_backbone,
                         lpips_heads=lpips_heads)
    log = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
    result = run_benchmark_distributed(config, log=log, command=_command_line())
    if result.summary is not None and not quiet:
        click.echo(f"{result.computed} item(s) computed, {result.cached} from the cache; "
                   f"results in {result.out}/summary.md", err=True)
