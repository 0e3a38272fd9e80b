"""`blinddps app`: the local web app (Gradio, an optional extra: pip install "blinddps[app]")."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click

from .common import (UserError, apply_threads, device_option, ensure_writable_dir, friendly_errors, resolve_device,
                     threads_option)
from .restore import PRIOR_HELP

INSTALL_HINT = 'the web app needs Gradio, an optional extra: pip install "blinddps[app]"'


def _gradio_ui():
    """The app's page module; UserError (exit code 2) with the install command without Gradio."""
    try:
        from ..app import ui
    except ImportError as exc:
        if (exc.name or "").split(".")[0] in ("gradio", "gradio_client"):
            raise UserError(INSTALL_HINT) from exc
        raise
    return ui


@click.command("app", short_help="A local web app: drop a blurry photo, watch it sharpen, download the result.")
@click.option("--port", type=click.IntRange(1, 65535), default=7860, show_default=True,
              help="Port on 127.0.0.1 (the app listens on this machine only).")
@click.option("--share", is_flag=True,
              help="Also publish the app through Gradio's share servers (a public link: off by default).")
@device_option
@click.option("--max-size", type=click.IntRange(0), default=0, show_default=True,
              help="A preview size: photos with a longer side are restored, and written, at this size "
                   "(0: at their own size).")
@click.option("--max-upload-mb", type=click.FloatRange(0, min_open=True), default=50, show_default=True,
              help="Largest file the page accepts.")
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False), default=None,
              help="Folder for the jobs' files (one subfolder each) [default: a new temporary folder].")
@click.option("--image-prior", default="natural-rgb", show_default=True,
              help=PRIOR_HELP.format("natural-rgb", "ffhq_10m.pt"))
@click.option("--kernel-prior", default="kernel-64", show_default=True,
              help=PRIOR_HELP.format("kernel-64", "kernel_checkpoint.pt"))
@click.option("--tilt-prior", default="tilt", show_default=True, help=PRIOR_HELP.format("tilt", "tilt_checkpoint.pt"))
@threads_option
@friendly_errors
def app_command(port, share, device, max_size, max_upload_mb, outdir, image_prior, kernel_prior, tilt_prior,
                threads):
    """Start the web app on http://127.0.0.1:PORT and serve until Ctrl-C.

    \b
    In the page: blind deblurring, turbulence, or non-blind deblurring with an uploaded
    kernel; the estimate and the kernel update live while it runs; the result is shown beside
    the input with the files that `blinddps deblur` / `turbulence` write.  One job runs at a
    time on each device; others wait in a queue.

    \b
    Examples:
      blinddps app
      blinddps app --port 8000 --device cuda --max-size 1024
    """
    ui = _gradio_ui()
    from ..app import JobRunner, make_examples
    from ..tasks import RestoreConfig

    apply_threads(threads)
    preselected = str(resolve_device(device))
    folder = ensure_writable_dir(outdir) if outdir else Path(tempfile.mkdtemp(prefix="blinddps-app-"))
    base = RestoreConfig(image_prior=image_prior, kernel_prior=kernel_prior, tilt_prior=tilt_prior, max_size=max_size)
    runner = JobRunner(base, folder / "jobs", max_upload_mb=max_upload_mb)
    if preselected not in runner.devices:  # e.g. "cuda" without an index: the first GPU
        preselected = next((d for d in runner.devices if d.startswith(preselected)), "cpu")
    blocks = ui.build_app(runner, make_examples(folder / "examples"), device=preselected)
    url = ui.serve(blocks, port, share=share, max_upload_mb=max_upload_mb, allowed=[folder])
    click.echo(f"BlindDPS app at {url} (files in {folder}); Ctrl-C to stop")
    if blocks.share_url:
        click.echo(f"public link (--share): {blocks.share_url}")
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        click.echo("stopping the app")
    finally:
        blocks.close()
