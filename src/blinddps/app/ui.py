"""The web page (Gradio): inputs on the left, the restoration on the right, live progress.

Needs the optional extra: pip install "blinddps[app]".  The page's functions take the raw
payloads (preprocess=False), so that a bad upload reaches our own readers and the page says
what is wrong with it instead of failing inside Gradio.  The endpoint "restore" streams the
outputs (status, the slider pair, kernel, tilt, std, files); "stop" cancels the caller's job.
"""
from __future__ import annotations

import hashlib
import html
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

# Gradio reports usage to its makers unless told not to: a local app says nothing to anyone.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402 (after the setting above)

from .examples import Example  # noqa: E402
from .jobs import TASKS, Job, JobError, JobRunner, JobSettings, JobUpdate  # noqa: E402
from . import display  # noqa: E402
from ..io import save_figure  # noqa: E402
from ..tasks.config import DPSSettings, ProxSettings, RestoreConfig  # noqa: E402

CSS = """
.bdps-status { font-size: 0.95rem; }
.bdps-bar { height: 10px; border-radius: 5px; background: #e5e7eb; overflow: hidden; margin: 4px 0 6px; }
.bdps-bar > div { height: 100%; background: #f97316; transition: width 0.3s; }
.bdps-error { color: #b91c1c; font-weight: 600; }
"""
METHOD_CHOICES = [("auto (proximal)", "auto"), ("DPS / BlindDPS (the paper's; estimates turbulence's tilt)", "dps"),
                  ("proximal (fast; turbulence: the blur only)", "prox")]
# the steps each sampler runs by default: its settings' own default, so the page cannot drift from them
DEFAULT_STEPS = {"dps": DPSSettings().steps, "prox": ProxSettings().steps}
# the words the page uses for each sampler (tests/app check them against tasks.config.SAMPLERS)
SAMPLER_WORDS = {"dps": "DPS", "prox": "proximal"}


@dataclass
class Page:
    """The components the events read and write."""

    task: gr.Radio
    photo: gr.Image
    kernel_file: gr.File
    method: gr.Dropdown
    steps: gr.Slider
    seed: gr.Number
    kernel_size: gr.Slider
    samples: gr.Slider
    device: gr.Dropdown
    run: gr.Button
    stop: gr.Button
    status: gr.HTML
    result: gr.ImageSlider
    kernel: gr.Image
    tilt: gr.Image
    std: gr.Image
    files: gr.File

    def inputs(self) -> list:
        return [self.task, self.photo, self.kernel_file, self.method, self.steps, self.seed, self.kernel_size,
                self.samples, self.device]

    def outputs(self) -> list:
        return [self.status, self.result, self.kernel, self.tilt, self.std, self.files]


# ---------------------------------------------------------------------- status text


def clock(seconds: float) -> str:
    """Seconds as m:ss (h:mm:ss past an hour)."""
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def status_html(update: JobUpdate, job: Job) -> str:
    """The status line of a job with a progress bar: the share done, elapsed time and time left."""
    where = f"{'DPS' if job.method == 'dps' else 'proximal sampler'} on {job.device}"
    if update.stage == "waiting":
        return _status(f"Waiting for {job.device}: {update.ahead} job(s) ahead in the queue.", 0)
    if update.stage == "loading":
        return _status(f"Loading the priors ({where})…", 0)
    if update.stage == "cancelled":
        done = f" at {100 * update.step // update.num_steps} %" if update.num_steps else ""
        return _status(f"Cancelled{done}; {job.device} is free.", None)
    fraction = update.step / max(update.num_steps, 1)
    if update.stage == "done":
        info = update.output.result.info if update.output else {}
        text = (f"Done in {clock(info.get('seconds', update.elapsed))} ({where}), "
                f"restored at {job.hw[1]}x{job.hw[0]}.")
        notes = "".join(f"<br>note: {html.escape(n)}" for n in (update.output.notes if update.output else []))
        return _status(text, 1.0, notes)
    left = "" if update.eta is None else f" · about {clock(update.eta)} left"
    # the count weighs a large photo's steps by their cost (`tasks.progress.ViewThenPhoto`): a share, not steps
    return _status(f"{100 * fraction:.0f} % · {clock(update.elapsed)} elapsed{left} ({where})",
                   fraction)


def _status(text: str, fraction: float | None, extra: str = "") -> str:
    bar = "" if fraction is None else f'<div class="bdps-bar"><div style="width:{100 * fraction:.1f}%"></div></div>'
    return f'<div class="bdps-status">{bar}{html.escape(text)}{extra}</div>'


def error_html(message: str) -> str:
    return f'<div class="bdps-status bdps-error">{html.escape(message)}</div>'


# ---------------------------------------------------------------------- events


def default_steps(method: str) -> int:
    """The steps of the sampler that a sampler choice runs (DPS 100, proximal 20), any task."""
    sampler = RestoreConfig(method=method).sampler_name()
    return DEFAULT_STEPS.get(sampler, 100)


def _as_int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


class Pictures:
    """The page's pictures as PNG files of a job's own, named by their content.

    Gradio rewrites a numpy output's cached file in place every time it is sent, so a preview
    sent again (the photo beside each new estimate) could be cut short while a browser reads
    it; a file path is copied into its cache atomically, once per content."""

    def __init__(self, parent: Path):
        parent.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="page-", dir=parent))

    def __call__(self, picture: np.ndarray | None) -> str | None:
        """(H, W) or (H, W, 3) uint8 -> the path of its PNG (None stays None)."""
        if picture is None:
            return None
        path = self.folder / f"{hashlib.sha256(picture.tobytes() + str(picture.shape).encode()).hexdigest()[:24]}.png"
        if not path.is_file():
            save_figure(Image.fromarray(picture), path)
        return str(path)

    def close(self) -> None:
        # Gradio has copied every picture it sent by the time the job's generator ends.
        shutil.rmtree(self.folder, ignore_errors=True)


def make_run(runner: JobRunner, page: Page):
    """The "restore" event: a generator of output updates (see JobRunner.run)."""

    def restore(task, photo, kernel_file, method, steps, seed, kernel_size, samples, device,
                request: gr.Request = None):
        settings = JobSettings(task=task, method=method, steps=_as_int(steps, 100), seed=_as_int(seed, 0),
                               kernel_size=_as_int(kernel_size, 64), samples=_as_int(samples, 1), device=device)
        try:
            job = runner.prepare(photo, settings, kernel_file, session=getattr(request, "session_hash", "") or "")
        except JobError as exc:
            yield {page.status: error_html(str(exc))}
            raise gr.Error(str(exc), print_exception=False) from exc
        pictures = Pictures(runner.outdir)
        try:
            shown = pictures(display.resized_photo(job.loaded.tensor, job.hw))
            yield _cleared(page, job, shown)
            for update in runner.run(job):
                yield _updates(page, update, job, shown, pictures)
        except JobError as exc:
            yield {page.status: error_html(str(exc))}
            raise gr.Error(str(exc), print_exception=False) from exc
        finally:
            pictures.close()

    return restore


def _cleared(page: Page, job: Job, shown: str) -> dict:
    """The outputs at the start of a job: the photo on both sides, old results gone."""
    return {page.status: _status("Starting…", 0),
            page.result: (shown, shown),
            page.kernel: gr.update(value=None, label="Kernel (given)" if job.kernel is not None else "Kernel estimate"),
            page.tilt: gr.update(value=None, visible=job.turbulence and job.method == "dps"),
            page.std: gr.update(value=None, visible=job.config.samples > 1), page.files: None}


def _updates(page: Page, update: JobUpdate, job: Job, shown: str, pictures: Pictures) -> dict:
    """One JobUpdate as the outputs it changes (shown: the input's picture)."""
    out = {page.status: status_html(update, job)}
    if update.preview is not None:
        out[page.result] = (shown, pictures(update.preview.image))
        out[page.kernel] = pictures(update.preview.kernel)
        if update.preview.tilt is not None:
            out[page.tilt] = pictures(update.preview.tilt)
    if update.output is not None:
        o = update.output
        out.update({page.result: (pictures(o.input), pictures(o.restored)), page.kernel: pictures(o.kernel),
                    page.tilt: gr.update(value=pictures(o.tilt), visible=o.tilt is not None),
                    page.std: gr.update(value=pictures(o.std), visible=o.std is not None),
                    page.files: [str(p) for p in o.files]})
    return out


def make_stop(runner: JobRunner):
    def stop(request: gr.Request = None):
        if runner.cancel(getattr(request, "session_hash", "") or ""):
            gr.Info("Stopping after the current step…")

    return stop


def on_task(task: str, method: str):
    """Task or sampler changed: show the kernel upload and the tilt field where they apply
    (the tilt: turbulence by DPS, the one sampler that estimates it), and set the steps to
    that sampler's default."""
    tilt = task == "turbulence" and RestoreConfig(method=method).sampler_name() == "dps"
    return (gr.update(visible=task == "known"), gr.update(value=default_steps(method)), gr.update(visible=tilt))


# ---------------------------------------------------------------------- the page


def intro(runner: JobRunner) -> str:
    limit = runner.base.max_size
    size_rule = (f"Photos whose long side is over **{limit} px** are restored, and written, at {limit} px on the "
                 f"long side (the CLI's `--max-size` rule: start the app with `--max-size N` to change it, 0 for "
                 f"none)." if limit else "Photos are restored at full size (`--max-size 0`).")
    default = RestoreConfig().sampler_name()
    return ("# BlindDPS: restore a blurry photo\n"
            f"Runs on this machine ({', '.join(runner.devices)}) with the bundled diffusion priors; nothing "
            f"leaves it. {size_rule} Uploads up to {runner.max_upload_mb:g} MB. The default sampler is the "
            f"{SAMPLER_WORDS[default]} one ({DEFAULT_STEPS[default]} network evaluations; blind, it first searches "
            "the kernel): on 2 CPU cores a 256 px photo takes under a minute. DPS (BlindDPS, the paper's sampler) "
            f"runs {DEFAULT_STEPS['dps']} steps of 1-3 s each there. Watch the estimate below, and stop it at any time.")


def build_app(runner: JobRunner, examples: list[Example], device: str = "cpu") -> gr.Blocks:
    """The page for a JobRunner; `device` is preselected."""
    with gr.Blocks(title="BlindDPS") as blocks:
        gr.Markdown(intro(runner))
        with gr.Row():
            with gr.Column(scale=2):
                page = _inputs(runner, device, examples)
            with gr.Column(scale=3):
                outputs = _outputs()
        page = Page(**page, **outputs)
        _wire(blocks, runner, page)
    return blocks


def _inputs(runner: JobRunner, device: str, examples: list[Example]) -> dict:
    task = gr.Radio([(label, key) for key, label in TASKS.items()], value="blind", label="Task", elem_id="bdps-task")
    photo = gr.Image(type="filepath", sources=["upload", "clipboard"], label="Blurry photo", height=280,
                     elem_id="bdps-photo")
    kernel_file = gr.File(label="Known blur kernel (.npy array, or a grey image)", visible=False,
                          file_types=[".npy", ".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg"])
    if examples:
        gr.Examples([[str(e.photo), e.task, None if e.kernel is None else str(e.kernel)] for e in examples],
                    inputs=[photo, task, kernel_file], example_labels=[e.label for e in examples],
                    cache_examples=False, elem_id="bdps-examples")
    with gr.Row():
        run = gr.Button("Restore", variant="primary", elem_id="bdps-run")
        stop = gr.Button("Stop", variant="stop", elem_id="bdps-stop")
    with gr.Accordion("Settings", open=True):
        method = gr.Dropdown(METHOD_CHOICES, value="auto", label="Sampler")
        with gr.Row():
            steps = gr.Slider(1, 1000, value=100, step=1, label="Steps", elem_id="bdps-steps")
            seed = gr.Number(0, precision=0, label="Seed")
        with gr.Row():
            kernel_size = gr.Slider(3, 128, value=64, step=1, label="Kernel size (px)")
            samples = gr.Slider(1, 8, value=1, step=1, label="Samples (> 1: a std map)")
        device = gr.Dropdown(runner.devices, value=device, label="Device")
    return dict(task=task, photo=photo, kernel_file=kernel_file, method=method, steps=steps, seed=seed,
                kernel_size=kernel_size, samples=samples, device=device, run=run, stop=stop)


def _outputs() -> dict:
    status = gr.HTML(_status("Upload or paste a photo (or pick an example) and press Restore.", None),
                     elem_id="bdps-status")
    result = gr.ImageSlider(label="Blurry | restored (drag the slider)", format="png", interactive=False,
                            max_height=520)
    with gr.Row():
        kernel = gr.Image(label="Kernel estimate", format="png", interactive=False, height=220)
        tilt = gr.Image(label="Tilt field (magnitude)", format="png", interactive=False, height=220, visible=False)
        std = gr.Image(label="Std over samples", format="png", interactive=False, height=220, visible=False)
        files = gr.File(label="Files to download (what the CLI writes)", file_count="multiple", interactive=False,
                        height=220, elem_id="bdps-files", scale=2)
    return dict(status=status, result=result, kernel=kernel, tilt=tilt, std=std, files=files)


def _wire(blocks: gr.Blocks, runner: JobRunner, page: Page) -> None:
    for source in (page.task, page.method):
        source.change(on_task, [page.task, page.method], [page.kernel_file, page.steps, page.tilt],
                      api_visibility="private")
    page.run.click(make_run(runner, page), page.inputs(), page.outputs(), preprocess=False, api_name="restore",
                   show_progress="hidden", concurrency_limit=8, concurrency_id="restore")
    page.stop.click(make_stop(runner), None, None, api_name="stop", concurrency_limit=None)


def serve(blocks: gr.Blocks, port: int, *, share: bool = False, max_upload_mb: float = 50,
          allowed: list[Path] = (), quiet: bool = True) -> str:
    """Start the server on 127.0.0.1:port without blocking; returns its local URL.
    allowed: folders the page may serve files from (the runner's outdir must be in one)."""
    blocks.queue(default_concurrency_limit=1)
    blocks.launch(server_name="127.0.0.1", server_port=port, share=share, prevent_thread_lock=True, quiet=quiet,
                  inbrowser=False, max_file_size=f"{max_upload_mb:g}mb", allowed_paths=[str(p) for p in allowed],
                  css=CSS, show_error=True)
    return blocks.local_url
