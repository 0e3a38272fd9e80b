"""`blinddps deblur` and `blinddps turbulence`: restore a batch of photos, one set of outputs each.

Both commands run `run_batch(turbulence=...)`: the priors are loaded once, then every photo
is read, restored with `blinddps.tasks.restore` and its outputs written atomically into
OUTDIR.  A bad photo is reported as `error: <file>: <reason>` and the batch carries on.
Exit codes: 0 all photos restored, 1 at least one photo failed, 2 usage errors (bad options,
an output folder that cannot be written, a prior that cannot be loaded).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from click.core import ParameterSource
import torch
from tqdm import tqdm

from ..devices import native_bf16
from ..io import LoadedImage, ensure_not_input, list_images, read_image
from ..solvers import StepInfo
from ..service import failure_reason, load_priors, output_paths, output_record, restored_suffix, write_outputs
from ..service.kernels import read_kernel_file
from ..tasks import RestoreConfig, restore
from .common import (UserError, apply_threads, device_option, ensure_writable_dir, friendly_errors, is_out_of_memory,
                     one_line, resolve_device, seed_option, threads_option)

EXIT_OK, EXIT_SOME_FAILED = 0, 1


# --------------------------------------------------------------------------- progress


class StepBar:
    """A tqdm bar over the sampling steps, fed by the solver's StepInfo callback: the share done
    and the time left (shows the misfit). A step's count is StepInfo.step + 1 of num_steps,
    which a large photo's run weighs by its cost (`tasks.progress.ViewThenPhoto`), so the bar
    shows a percentage rather than a step count."""

    FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}"

    def __init__(self, enabled: bool, total: int, desc: str = "steps"):
        self.bar = tqdm(total=total, desc=desc, leave=False, disable=not enabled, dynamic_ncols=True,
                        bar_format=self.FORMAT)

    def __call__(self, info: StepInfo) -> None:
        self.bar.total = info.num_steps
        self.bar.set_postfix(misfit=f"{float(info.loss.mean()):.4g}", refresh=False)
        self.bar.update(info.step + 1 - self.bar.n)

    def __enter__(self) -> "StepBar":
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()


def say(text: str, *, err: bool = False) -> None:
    """Print a line without breaking the progress bars."""
    tqdm.write(text, file=sys.stderr if err else sys.stdout)


# --------------------------------------------------------------------------- one photo, a batch


def _resolution_note(loaded: LoadedImage, max_size: int, option: str = "--max-size") -> str | None:
    h, w = loaded.hw
    if not max_size or max(h, w) <= max_size:
        return None
    scale = max_size / max(h, w)
    return (f"{w}x{h} is larger than {option} {max_size}: restored at "
            f"{max(1, round(w * scale))}x{max(1, round(h * scale))}, and the outputs are at that size")


def restore_file(path: Path, stem: str, outdir: Path, config: RestoreConfig, priors: dict, *, turbulence: bool,
                 inputs: list[Path], progress: bool, kernel: torch.Tensor | None = None) -> list[str]:
    """Read, restore and write one photo; returns notes.  Raises on any failure."""
    loaded = read_image(path)
    paths = output_paths(path, stem, outdir, config, turbulence)
    for p in paths.values():
        ensure_not_input(p, inputs)
    notes = list(loaded.notes) + (["alpha channel dropped"] if loaded.had_alpha else [])
    bound = config.working_bound()
    note = _resolution_note(loaded, bound, "--max-size" if bound == config.max_size else "the DPS sampler's kernel_view")
    if note:
        notes.append(note)
        if progress:
            say(f"note: {path}: {note}", err=True)
    with StepBar(progress, config.steps, desc=path.name) as bar:
        result = restore(loaded.tensor, config, turbulence=turbulence, callback=bar, priors=priors, kernel=kernel)
    if kernel is None and result.info["kernel_size"] != config.kernel_size:
        reason = "the kernel search needs an odd size" if result.info["method"] == "prox" else "for the kernel network"
        notes.append(f"kernel size rounded up to {result.info['kernel_size']} ({reason})")
    record = output_record(turbulence=turbulence, input_name=str(path), config=config, loaded=loaded, result=result,
                           notes=notes, known_kernel=kernel is not None)
    return notes + write_outputs(paths, loaded, result, record)


def unique_stems(paths: list[Path]) -> list[str]:
    """File stems, with -2, -3, ... added where two inputs share one (a/x.png, b/x.png)."""
    seen: dict[str, int] = {}
    stems = []
    for p in paths:
        seen[p.stem] = seen.get(p.stem, 0) + 1
        stems.append(p.stem if seen[p.stem] == 1 else f"{p.stem}-{seen[p.stem]}")
    return stems


def run_batch(images: tuple[str, ...], outdir: str, config: RestoreConfig, *, turbulence: bool,
              quiet: bool, kernel: torch.Tensor | None = None) -> int:
    """Restore every photo; returns the exit code (0 all restored, 1 some failed).
    kernel: the known blur (K, K) summing to 1 (non-blind deblurring), else None."""
    outdir_path = ensure_writable_dir(outdir)
    paths = list_images(images)
    if not paths:
        raise UserError(f"no image files found in {', '.join(images)}")
    priors = load_priors(config, turbulence, blind=kernel is None)
    failed = 0
    with tqdm(paths, desc="images", unit="img", disable=quiet or len(paths) == 1, dynamic_ncols=True) as bar:
        for path, stem in zip(bar, unique_stems(paths)):
            try:
                notes = restore_file(path, stem, outdir_path, config, priors, turbulence=turbulence,
                                     inputs=paths, progress=not quiet, kernel=kernel)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # one bad photo must not stop the batch
                if os.environ.get("BLINDDPS_DEBUG"):
                    raise
                failed += 1
                say(f"error: {path}: {failure_reason(exc, path)}", err=True)
                if is_out_of_memory(exc) and torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            if not quiet:
                say(f"{path} -> {outdir_path / stem}_restored{restored_suffix(path)}"
                    + "".join(f"\n  note: {n}" for n in notes if "--max-size" not in n))
    if not quiet:
        click.echo(f"restored {len(paths) - failed} of {len(paths)} image(s) into {outdir_path}")
    return EXIT_SOME_FAILED if failed else EXIT_OK


# --------------------------------------------------------------------------- the commands

PRIOR_HELP = ("Bundled name ({}), or a checkpoint path (ours, the paper's {}, or another ADM U-Net: "
              "put its config beside it as <stem>.json if asked).")


def restore_options(func):
    """Options shared by `deblur` and `turbulence`: the everyday ones. Every other setting
    (the samplers' and the kernel search's) comes from --config FILE, the JSON that each
    output records."""
    options = [
        click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False),
                     help="Output folder (created if missing)."),
        click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                     help="Settings from a JSON file: an output's <stem>_config.json (repeats that run) or a "
                          "RestoreConfig as JSON, any subset of its fields; options given here override it."),
        click.option("--kernel-size", type=click.IntRange(3, 512), default=None,
                     help="Side of the unknown blur kernel in pixels [default: the bundled kernel prior's size, "
                          "64 for kernel-64, 32 for kernel-32; 64 for other priors]."),
        click.option("--max-size", type=click.IntRange(0), default=0, show_default=True,
                     help="A preview: photos with a longer side are restored, and written, at this size "
                          "(0: at their own size; a blind kernel is found on a 512 px view either way)."),
        click.option("--samples", type=click.IntRange(1, 64), default=1, show_default=True,
                     help="Posterior samples: writes their mean and a per-pixel std map."),
        click.option("--noise", type=click.FloatRange(0), default=None,
                     help="Measurement noise std in [0, 1] (proximal sampler) [default: estimated from the photo]."),
        click.option("--method", type=click.Choice(["auto", "dps", "prox"]), default="auto", show_default=True,
                     help="Sampler: prox (proximal: priors as denoisers, closed-form data steps; turbulence: the "
                          "blur only, no tilt field), dps (BlindDPS, the paper's), auto (prox)."),
        click.option("--prox-steps", type=click.IntRange(1, 1000), default=20, show_default=True,
                     help="Network evaluations of the proximal sampler."),
        click.option("--steps", type=click.IntRange(1, 1000), default=100, show_default=True,
                     help="Diffusion steps of --method dps (more: slower, usually better)."),
        click.option("--image-prior", default="natural-rgb", show_default=True,
                     help=PRIOR_HELP.format("natural-rgb", "ffhq_10m.pt")),
        click.option("--kernel-prior", default="kernel-64", show_default=True,
                     help=PRIOR_HELP.format("kernel-64; kernel-32 for kernels up to 32 px", "kernel_checkpoint.pt")
                     + " 'uniform': no kernel prior."),
        click.option("--record-every", type=click.IntRange(0), default=0, show_default=True,
                     help="Save a strip of the estimate every N steps (0: off)."),
        seed_option, device_option, threads_option,
        click.option("--quiet", "-q", is_flag=True, help="No progress bars, notes or summary; errors still show."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def read_config_file(path: str) -> dict:
    """The flat options (`RestoreConfig.options`) of a settings file: an output record (its
    "config") or a RestoreConfig as JSON, any subset of its fields. UserError (exit code 2)
    with the reason for a bad file."""
    try:
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        data = data.get("config", data) if "command" in data else data
        return RestoreConfig.from_dict(data).options()
    except (OSError, ValueError, TypeError) as exc:
        raise UserError(f"--config {path}: {one_line(exc)}") from exc


def given_options(options: dict) -> dict:
    """The options the user typed on the command line (not left at their defaults)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return options
    return {k: v for k, v in options.items()
            if ctx.get_parameter_source(k) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}


def make_config(device: str, quiet: bool, threads: int = 0, config_file: str | None = None,
                turbulence: bool = False, autocast: bool | None = None, **options) -> RestoreConfig:
    """The RestoreConfig of the command line for deblurring or turbulence: the --config file's
    settings (if any) with the options typed on the command line over them, the device and
    the task's automatic values resolved (and the thread count set)."""
    apply_threads(threads)
    options = {"device": device, "autocast": autocast, **options}
    if config_file:
        options = {**read_config_file(config_file), **given_options(options)}
    dev = resolve_device(options["device"])
    if options.get("autocast") and not native_bf16(dev):
        options["autocast"] = False
        if not quiet:
            say("note: autocast needs CUDA or a CPU with native bf16; running in float32", err=True)
    return RestoreConfig.from_options(**{**options, "device": str(dev)}).resolved(turbulence)


IMAGES = click.argument("images", nargs=-1, required=True, type=click.Path())


@click.command("deblur", short_help="Deblurring of photos, blind or with a known kernel: sharp photo + kernel.")
@IMAGES
@restore_options
@click.option("--kernel", "kernel_file", type=click.Path(dir_okay=False), default=None,
              help="The known blur kernel (.npy array or a grey image; normalised to sum 1): non-blind deblurring.")
@friendly_errors
def deblur_command(images, outdir, quiet, kernel_file, **options):
    """Blind deblurring: estimate the sharp photo and the blur kernel of each IMAGE.

    IMAGE may be a folder (its image files are used).  For every photo OUTDIR gets
    <stem>_restored.<same format> (same bit depth and grey/colour as the input),
    <stem>_kernel.png / .npy (float32, sums to 1), <stem>_config.json, and with
    --samples N > 1 <stem>_std.png.  Exit code 0: all restored; 1: some photo failed
    (each reported as "error: FILE: reason"); 2: usage error.

    \b
    With --kernel FILE the blur is known and only the photo is estimated (by the proximal
    sampler unless --method dps); the kernel written is the given one, normalised.

    \b
    Examples:
      blinddps deblur photo.jpg -o out
      blinddps deblur photo.jpg -o out --kernel shake.npy
      blinddps deblur shots/ -o out --steps 200 --samples 4 --device cuda
      blinddps deblur face.png -o out --image-prior ffhq_10m.pt --kernel-prior kernel_checkpoint.pt
      blinddps deblur photo.jpg -o again --config out/photo_config.json   (repeats a run)
    """
    kernel = read_kernel_file(kernel_file) if kernel_file else None
    config = make_config(quiet=quiet, **options)
    sys.exit(run_batch(images, outdir, config, turbulence=False, quiet=quiet, kernel=kernel))


@click.command("turbulence", short_help="Imaging through turbulence: photo + kernel + tilt field.")
@IMAGES
@restore_options
@click.option("--tilt-prior", default="tilt", show_default=True,
              help=PRIOR_HELP.format("tilt", "tilt_checkpoint.pt") + " 'uniform': no tilt prior.")
@friendly_errors
def turbulence_command(images, outdir, quiet, **options):
    """Imaging through turbulence: estimate the photo, a blur kernel and (with --method dps) a tilt field.

    The default sampler (prox) removes the blur and leaves the turbulence's displacement in
    place: one frame does not fix the tilt, and no tilt file is written.  With --method dps
    (BlindDPS: image, kernel and tilt priors) it also writes <stem>_tilt.npy (2, H, W, in
    pixels) and <stem>_tilt.png (tilt magnitude, scaled by its maximum).  Exit codes as `deblur`.

    \b
    Examples:
      blinddps turbulence hot-road.png -o out
      blinddps turbulence frames/ -o out --steps 200 --tilt-prior my-tilt.safetensors
    """
    config = make_config(quiet=quiet, turbulence=True, **options)
    sys.exit(run_batch(images, outdir, config, turbulence=True, quiet=quiet))
