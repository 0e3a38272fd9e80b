"""`blinddps simulate`: a blurred, noisy measurement of a sharp photo, as in the paper's tests."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..io import (InputOverwriteError, WRITE_FORMATS, ensure_not_input, read_image, save_npy_atomic, write_image,
                  write_json_atomic)
from ..tasks import BLURS, simulate
from .common import UserError, ensure_writable_dir, friendly_errors, seed_option
from ..service import failure_reason, package_version, save_kernel, save_scaled_map


def _outputs(out: Path, blur: str) -> dict[str, Path]:
    stem = out.parent / out.stem
    paths = {"measurement": out, "kernel_npy": Path(f"{stem}_kernel.npy"), "kernel_png": Path(f"{stem}_kernel.png"),
             "config": Path(f"{stem}_config.json")}
    if blur == "turbulence":
        paths.update(tilt_npy=Path(f"{stem}_tilt.npy"), tilt_png=Path(f"{stem}_tilt.png"))
    return paths


@click.command("simulate", short_help="Make a blurred, noisy test measurement of a photo.")
@click.argument("image", type=click.Path(path_type=Path))
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help=f"Measurement file ({', '.join(sorted(WRITE_FORMATS))}); never the input.")
@click.option("--blur", type=click.Choice(BLURS), default="motion", show_default=True,
              help="motion: random camera shake; gaussian; turbulence: random tilt + Gaussian blur.")
@click.option("--kernel-size", type=click.IntRange(3, 512), default=64, show_default=True)
@click.option("--intensity", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Motion blur strength (motion only).")
@click.option("--std", type=click.FloatRange(0, min_open=True), default=3.0, show_default=True,
              help="Gaussian blur std in pixels (gaussian, turbulence).")
@click.option("--noise", type=click.FloatRange(0), default=0.01, show_default=True,
              help="Gaussian noise std, image range [0, 1].")
@click.option("--padding", type=click.Choice(["reflect", "circular", "zeros"]), default="reflect",
              show_default=True, help="Blur boundary condition.")
@seed_option
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@friendly_errors
def simulate_command(image, out, blur, kernel_size, intensity, std, noise, padding, seed, quiet):
    """Blur IMAGE and add noise; writes OUT (same bit depth and grey/colour as IMAGE),
    <OUT stem>_kernel.npy / .png, <OUT stem>_tilt.npy / .png (turbulence) and
    <OUT stem>_config.json.  The same --seed gives the same measurement.
    Exit code 0: written; 1: IMAGE could not be used; 2: usage error.

    \b
    Examples:
      blinddps simulate sharp.png -o blurry.png --blur motion --seed 1
      blinddps simulate sharp.png -o hazy.png --blur turbulence --std 2 --noise 0.02
    """
    if out.suffix.lower() not in WRITE_FORMATS:
        formats = ", ".join(sorted(WRITE_FORMATS))
        raise UserError(f"cannot write {out.suffix or 'files without a suffix'}: use {formats}")
    paths = _outputs(out, blur)
    try:
        for p in paths.values():
            ensure_not_input(p, [image])
    except InputOverwriteError as exc:
        raise UserError(str(exc)) from exc
    ensure_writable_dir(out.parent)
    try:
        loaded = read_image(image)
        y, params = simulate(loaded.tensor, blur=blur, kernel_size=kernel_size, intensity=intensity, std=std,
                             noise=noise, padding=padding, seed=seed)
    except (ValueError, OSError) as exc:
        click.echo(f"error: {image}: {failure_reason(exc, image)}", err=True)
        sys.exit(1)
    info = write_image(out, y, bit_depth=loaded.bit_depth, mode=loaded.mode)
    save_kernel(params["kernel"], paths["kernel_npy"], paths["kernel_png"])
    record = {"command": "simulate", "input": str(image), "outputs": {k: p.name for k, p in paths.items()},
              "config": {"blur": blur, "kernel_size": kernel_size,
                         **({"intensity": intensity} if blur == "motion" else {"std": std}),
                         "noise": noise, "padding": padding, "seed": seed},
              "version": package_version(), "notes": list(loaded.notes) + list(info.notes)}
    if "tilt" in params:
        save_npy_atomic(paths["tilt_npy"], params["tilt"].float().numpy())
        record["tilt_png_max_px"] = save_scaled_map(params["tilt"].float().norm(dim=0), paths["tilt_png"])
    write_json_atomic(paths["config"], record)
    if not quiet:
        click.echo(f"wrote {out} ({blur} blur, kernel {kernel_size}, noise {noise}, seed {seed})")
