"""`blinddps demo`: blur a sample photo with a known kernel, restore it blindly, show the result."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..demo_scene import sample_photo, square
from ..io import read_image, save_figure, tile_figure, write_image, write_json_atomic
from ..metrics import kernel_mnc, psnr
from ..tasks import RestoreConfig, restore, simulate
from .common import UserError, device_option, ensure_writable_dir, friendly_errors, seed_option, threads_option
from ..service import failure_reason, load_priors, package_version, save_kernel
from .restore import PRIOR_HELP, StepBar, make_config

# With networks the size of the bundled priors a DPS step at 256x256 takes about 1-2.5 s on 2
# CPU cores (measured: 2.6 s on one busy core), so 100 steps finish in about 2-4 minutes; the
# proximal sampler (the default) runs three kernel searches, a 4-step restoration of each to pick
# one and a 20-step restoration of that one in about 20-25 s, about 40 s when the kernel's views
# disagree and the searches run again at Pan's floor.
DEMO_STEPS = {"dps": 100, "prox": 20}
MEASUREMENT_SEED = 0  # the demo blurs with the same kernel every time; --seed varies the restoration only
BLUR = {"blur": "motion", "intensity": 0.5, "noise": 0.01, "padding": "reflect"}


def _figure(sharp, blurry, restored, k_true, k_est, numbers: dict):
    return tile_figure([
        ("sharp", sharp[0]),
        (f"blurry {numbers['psnr_blurry']:.2f} dB", blurry[0]),
        (f"restored {numbers['psnr_restored']:.2f} dB", restored[0]),
        ("true kernel", k_true),
        (f"estimate, MNC {numbers['kernel_mnc']:.3f}", k_est),
    ], height=max(sharp.shape[-1], 128))


@click.command("demo", short_help="Blur a sample photo, restore it blindly, show the result.")
@click.option("-o", "--output", "outdir", default="blinddps-demo", show_default=True,
              type=click.Path(file_okay=False), help="Output folder.")
@click.option("--image", type=click.Path(path_type=Path), default=None,
              help="Your own sharp photo instead of the sample (centre-cropped, resized to --size).")
@click.option("--method", type=click.Choice(["auto", "dps", "prox"]), default="auto", show_default=True,
              help="Sampler: prox (the proximal sampler after a kernel search; auto picks it), "
                   "dps (BlindDPS, the paper's: minutes on a CPU).")
@click.option("--steps", type=click.IntRange(1, 1000), default=None,
              help="Steps of the sampler that runs [default: 20 for prox, 100 for dps].")
@click.option("--size", type=click.IntRange(16, 1024), default=256, show_default=True, help="Photo side in pixels.")
@click.option("--kernel-size", type=click.IntRange(3, 512), default=64, show_default=True,
              help="Side of the simulated (and the estimated) motion-blur kernel.")
@click.option("--image-prior", default="natural-rgb", show_default=True,
              help=PRIOR_HELP.format("natural-rgb", "ffhq_10m.pt"))
@click.option("--kernel-prior", default="kernel-64", show_default=True,
              help=PRIOR_HELP.format("kernel-64", "kernel_checkpoint.pt"))
@seed_option
@device_option
@threads_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
@friendly_errors
def demo_command(outdir, image, method, steps, size, kernel_size, image_prior, kernel_prior, seed, device, threads,
                 quiet):
    """Show BlindDPS at work: blur a sample photo with a random camera-shake kernel
    (size 64, intensity 0.5, noise 0.01), restore it without knowing the kernel, and write
    OUTPUT/demo.png (sharp | blurry | restored | true kernel | estimated kernel, with PSNR
    and kernel MNC) beside the single images, kernels (.npy) and config.json.

    \b
    Examples:
      blinddps demo
      blinddps demo -o my-demo --image photo.jpg --steps 200 --device cuda
    """
    if kernel_size > size:
        raise UserError(f"--kernel-size {kernel_size} is larger than --size {size}")
    folder = ensure_writable_dir(outdir)
    sampler = RestoreConfig(method=method).sampler_name()
    steps = steps or DEMO_STEPS[sampler]
    config = make_config(device=device, autocast=None, quiet=quiet, threads=threads, image_prior=image_prior,
                         kernel_prior=kernel_prior, kernel_size=kernel_size, method=method,
                         steps=steps if sampler == "dps" else DEMO_STEPS["dps"],
                         prox_steps=steps if sampler == "prox" else DEMO_STEPS["prox"],
                         seed=seed, max_size=0, padding=BLUR["padding"])
    priors = load_priors(config, turbulence=False)
    try:
        if image is None:
            sharp, source = sample_photo(size)
        else:
            sharp, source = square(read_image(image).tensor, size), str(image)
        blurry, params = simulate(sharp, kernel_size=kernel_size, seed=MEASUREMENT_SEED, **BLUR)
        with StepBar(not quiet, steps, desc="restoring") as bar:
            result = restore(blurry, config, callback=bar, priors=priors)
    except (ValueError, OSError, RuntimeError) as exc:
        name = image if image is not None else "demo"
        click.echo(f"error: {name}: {failure_reason(exc, name)}", err=True)
        sys.exit(1)
    k_true, k_est = params["kernel"], result.kernel
    numbers = {"psnr_blurry": float(psnr(blurry, sharp)[0]), "psnr_restored": float(psnr(result.image, sharp)[0]),
               "kernel_mnc": float(kernel_mnc(k_est.double(), k_true.double()))}
    for name, img in (("sharp", sharp), ("blurry", blurry), ("restored", result.image)):
        write_image(folder / f"{name}.png", img)
    save_kernel(k_true, folder / "kernel_true.npy", folder / "kernel_true.png")
    save_kernel(k_est, folder / "kernel_estimated.npy", folder / "kernel_estimated.png")
    save_figure(_figure(sharp, blurry, result.image, k_true, k_est, numbers), folder / "demo.png")
    write_json_atomic(folder / "config.json", {
        "command": "demo", "source": source, "size": size, "simulation": {**BLUR, "kernel_size": kernel_size,
                                                                          "seed": MEASUREMENT_SEED},
        "config": {**config.to_dict(), "kernel_size": result.info["kernel_size"]}, "metrics": numbers,
        "info": {**result.info, "version": package_version()}})
    if not quiet:
        click.echo(f"wrote {folder / 'demo.png'} (photo: {source})\n"
                   f"  PSNR blurry {numbers['psnr_blurry']:.2f} dB -> restored {numbers['psnr_restored']:.2f} dB, "
                   f"kernel MNC {numbers['kernel_mnc']:.3f}, {result.info['seconds']:.0f} s")

