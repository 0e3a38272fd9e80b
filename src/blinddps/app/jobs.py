"""Restoration jobs for the web app, without Gradio: check the uploads, queue for a device,
run `blinddps.tasks.restore` in a worker thread, stream its progress, write the CLI's files.

`JobRunner.prepare` checks everything that can be checked before the job waits for a device
(photo, kernel file, settings) and raises JobError with a one-line message.  `JobRunner.run`
is a generator of JobUpdate: "waiting" (ahead: jobs in front on that device), "loading"
(the priors), "running" (step, ETA, now and then a preview of the estimates), then one
"done" (the output) or "cancelled"; a failure raises JobError.  One job at a time runs on
each device, first come first served; the device is freed when the job ends however it
ends: done, failed, cancelled (`cancel`), or the consumer gone (the generator closed).
"""
from __future__ import annotations

import itertools
import queue
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from .devices import DeviceQueue, PriorCache, available_devices  # noqa: F401 (the app's names)
from ..service import UserError, failure_reason, is_out_of_memory, output_paths, output_record, write_outputs
from ..io import LoadedImage
from ..solvers import StepInfo
from ..tasks import RestoreConfig, RestoreResult, restore
from . import display
from .uploads import MAX_PIXELS, MAX_UPLOAD_MB, JobError, read_kernel, read_photo, safe_stem

TASKS = {"blind": "Blind deblurring", "turbulence": "Turbulence", "known": "Non-blind deblurring (known kernel)"}
METHODS = ("auto", "dps", "prox")
PREVIEW_EVERY = 5  # steps between previews: a CPU step at 256 px takes 1-3 s, so one every few seconds
HEARTBEAT = 1.0  # seconds: the longest a consumer waits without an update (elapsed time, a cancel)


class JobCancelled(JobError):
    """Raised in the sampler's callback to stop a job that was cancelled."""


@dataclass(frozen=True)
class JobSettings:
    """What the page asks for.  task: a key of TASKS; method: auto / dps / prox ("auto": the
    proximal sampler, for every task; it leaves turbulence's tilt unestimated, DPS estimates
    one); steps: the sampler's steps (DPS steps or proximal steps, whichever runs); samples:
    posterior samples (> 1 adds a std map)."""

    task: str = "blind"
    method: str = "auto"
    steps: int = 100
    seed: int = 0
    kernel_size: int = 64
    samples: int = 1
    device: str = "cpu"

    def check(self, devices: list[str]) -> None:
        """JobError naming the first setting out of range."""
        rules = [(self.task in TASKS, f"unknown task {self.task!r}: expected one of {', '.join(TASKS)}"),
                 (self.method in METHODS, f"unknown sampler {self.method!r}: expected one of {', '.join(METHODS)}"),
                 (1 <= self.steps <= 1000, f"steps must be 1 to 1000, got {self.steps}"),
                 (3 <= self.kernel_size <= 512, f"kernel size must be 3 to 512, got {self.kernel_size}"),
                 (1 <= self.samples <= 16, f"samples must be 1 to 16, got {self.samples}"),
                 (self.device in devices, f"unknown device {self.device!r}: this machine has {', '.join(devices)}")]
        for ok, message in rules:
            if not ok:
                raise JobError(message)

    def config(self, base: RestoreConfig) -> RestoreConfig:
        """The task's RestoreConfig: base (priors, max_size) with these settings; the one
        steps setting drives whichever sampler runs."""
        return base.replace(method=self.method, steps=self.steps, prox_steps=self.steps, seed=self.seed,
                            kernel_size=self.kernel_size, samples=self.samples, device=self.device, record_every=0)


@dataclass
class Preview:
    """The estimates mid-run: image (H, W, 3) uint8 at the working size; kernel (S, S)
    uint8 (peak white); tilt (H, W) uint8 magnitude or None."""

    image: np.ndarray
    kernel: np.ndarray
    tilt: np.ndarray | None = None


@dataclass
class JobOutput:
    """A finished job.  input / restored: (H, W, 3) uint8 at the working size (side by side
    in the page); kernel: (S, S) uint8; std / tilt: (H, W) uint8 scaled by their maximum, or
    None; files: what the CLI writes (restored photo first); result: the task's own output."""

    input: np.ndarray
    restored: np.ndarray
    kernel: np.ndarray
    std: np.ndarray | None
    tilt: np.ndarray | None
    files: list[Path]
    notes: list[str]
    result: RestoreResult


@dataclass
class JobUpdate:
    """One step of a job as the page shows it (see the module docstring for the stages).
    step: steps done (1-based); elapsed / eta: seconds of sampling so far / still expected."""

    stage: str
    step: int = 0
    num_steps: int = 0
    elapsed: float = 0.0
    eta: float | None = None
    ahead: int = 0
    preview: Preview | None = None
    output: JobOutput | None = None


@dataclass(eq=False)
class Job:
    """A checked job: the photo (tensor (1, C, H, W) in [0, 1]), its name, the known kernel
    (K, K) or None, the resolved config, and the working size (H, W) after --max-size."""

    loaded: LoadedImage
    name: str
    kernel: torch.Tensor | None
    kernel_name: str | None
    config: RestoreConfig
    turbulence: bool
    hw: tuple[int, int]
    session: str = ""
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def method(self) -> str:
        return self.config.sampler_name()

    @property
    def device(self) -> str:
        return self.config.device


class JobRunner:
    """Runs the app's jobs.  base: the RestoreConfig every job starts from (priors, max_size);
    outdir: each job writes its files into a new folder there."""

    def __init__(self, base: RestoreConfig, outdir: Path, *, devices: list[str] | None = None,
                 priors: PriorCache | None = None, max_upload_mb: float = MAX_UPLOAD_MB,
                 max_pixels: int = MAX_PIXELS, preview_every: int = PREVIEW_EVERY, heartbeat: float = HEARTBEAT):
        self.base, self.outdir = base, Path(outdir)
        self.devices = devices or available_devices()
        self.priors = priors or PriorCache()
        self.queue = DeviceQueue()
        self.max_upload_mb, self.max_pixels = max_upload_mb, max_pixels
        self.preview_every, self.heartbeat = max(1, preview_every), heartbeat
        self._jobs: set[Job] = set()
        self._jobs_lock = threading.Lock()
        self._numbers = itertools.count(1)

    # ------------------------------------------------------------------ before the queue

    def prepare(self, photo, settings: JobSettings, kernel_file=None, session: str = "") -> Job:
        """Check the photo, the kernel file (task "known") and the settings; JobError if any is bad."""
        settings.check(self.devices)
        loaded, name = read_photo(photo, self.max_upload_mb, self.max_pixels)
        kernel, kernel_name = (read_kernel(kernel_file, self.max_upload_mb) if settings.task == "known"
                               else (None, None))
        config = settings.config(self.base)
        hw = display.working_size(loaded.hw, config.max_size)
        size = max(kernel.shape) if kernel is not None else config.kernel_size
        if size > min(hw):
            what = (f"the kernel in {kernel_name} ({kernel.shape[-1]}x{kernel.shape[-2]})" if kernel is not None
                    else f"kernel size {size}")
            raise JobError(f"{what} is larger than the photo as restored ({hw[1]}x{hw[0]})")
        return Job(loaded, name, kernel, kernel_name, config, settings.task == "turbulence", hw, session)

    def cancel(self, session: str) -> int:
        """Cancel every job of a session (waiting or running); returns how many."""
        with self._jobs_lock:
            jobs = [job for job in self._jobs if job.session == session]
        for job in jobs:
            job.cancel.set()
        return len(jobs)

    # ------------------------------------------------------------------ the run

    def run(self, job: Job) -> Iterator[JobUpdate]:
        """Queue for the job's device, run it, and stream its updates (see the module docstring)."""
        ticket, worker = object(), None
        with self._jobs_lock:
            self._jobs.add(job)
        try:
            yield from self._wait_turn(job, ticket)
            if job.cancel.is_set():
                yield JobUpdate("cancelled")
                return
            updates: queue.Queue = queue.Queue()
            worker = threading.Thread(target=self._work, args=(job, ticket, updates), daemon=True,
                                      name=f"blinddps-app-job-{next(self._numbers)}")
            worker.start()
            yield from self._relay(job, updates, worker)
        finally:
            # Also reached when the consumer goes away (GeneratorExit): the worker stops at its
            # next step and frees the device itself; a job that never started frees it here.
            job.cancel.set()
            if worker is None:
                self.queue.leave(job.device, ticket)
            with self._jobs_lock:
                self._jobs.discard(job)

    def _wait_turn(self, job: Job, ticket: object) -> Iterator[JobUpdate]:
        self.queue.join(job.device, ticket)
        while not self.queue.wait(job.device, ticket, self.heartbeat):
            if job.cancel.is_set():
                return
            yield JobUpdate("waiting", ahead=self.queue.ahead(job.device, ticket))

    def _relay(self, job: Job, updates: queue.Queue, worker: threading.Thread) -> Iterator[JobUpdate]:
        """The worker's newest update whenever there is one, and one at least every heartbeat
        (time moves on), until the job's end."""
        last, seen = JobUpdate("loading"), time.monotonic()
        while True:
            try:
                items = [updates.get(timeout=self.heartbeat)]
            except queue.Empty:
                yield _later(last, time.monotonic() - seen)
                continue
            while not updates.empty():
                items.append(updates.get_nowait())
            update, end = newest(items)
            if update is not None:
                last, seen = update, time.monotonic()
                yield update
            if end is None:
                continue
            worker.join()  # the device is free once the worker has ended
            if isinstance(end, JobOutput):
                yield replace(last, stage="done", preview=None, eta=0.0, output=end)
                return
            if isinstance(end, JobCancelled):
                yield replace(last, stage="cancelled", preview=None, eta=None)
                return
            raise JobError(_reason(end, job)) from end

    def _work(self, job: Job, ticket: object, updates: queue.Queue) -> None:
        """The worker thread: load the priors, restore, write the files; always frees the device."""
        try:
            updates.put(JobUpdate("loading"))
            priors = self.priors.get(job.config, job.turbulence, blind=job.kernel is None)
            result = restore(job.loaded.tensor, job.config, turbulence=job.turbulence,
                             callback=self._callback(job, updates), priors=priors, kernel=job.kernel)
            updates.put(self._finish(job, result))
        except BaseException as exc:  # handed to the consumer, which says what went wrong
            if is_out_of_memory(exc) and torch.cuda.is_available():
                torch.cuda.empty_cache()
            updates.put(exc)
        finally:
            self.queue.leave(job.device, ticket)

    def _callback(self, job: Job, updates: queue.Queue) -> Callable[[StepInfo], None]:
        start = time.monotonic()

        def on_step(info: StepInfo) -> None:
            if job.cancel.is_set():
                raise JobCancelled("cancelled")  # the sampler stops here; _work frees the device
            elapsed, done = time.monotonic() - start, info.step + 1
            show = info.step % self.preview_every == 0 and done < info.num_steps
            updates.put(JobUpdate("running", done, info.num_steps, elapsed,
                                  elapsed / done * (info.num_steps - done),
                                  preview=_preview(job, info) if show else None))

        return on_step

    # ------------------------------------------------------------------ the outputs

    def _finish(self, job: Job, result: RestoreResult) -> JobOutput:
        """Write the CLI's files for the job and make the page's pictures."""
        folder = self.outdir / f"{time.strftime('%Y%m%d-%H%M%S')}-{next(self._numbers):04d}-{safe_stem(job.name)}"
        folder.mkdir(parents=True, exist_ok=True)
        paths = output_paths(Path(job.name), safe_stem(job.name), folder, job.config, job.turbulence)
        notes = _notes(job, result)
        write_outputs(paths, job.loaded, result, _record(job, result, notes))
        return JobOutput(
            input=display.resized_photo(job.loaded.tensor, job.hw), restored=display.photo(result.image),
            kernel=display.kernel(result.kernel),
            std=None if result.std is None else display.scaled_map(result.std[0].mean(0)),
            tilt=None if result.tilt is None else display.tilt(result.tilt, job.hw),
            files=[p for p in paths.values() if p.is_file()], notes=notes, result=result)


def newest(items: list) -> tuple[JobUpdate | None, object | None]:
    """What piled up while the page was busy (a fast GPU outruns the browser), reduced to what
    it needs: the newest JobUpdate, carrying the newest preview, and the job's end (a
    JobOutput or an exception) if it came.  Without this the page would lag ever further behind."""
    news = [i for i in items if isinstance(i, JobUpdate)]
    end = next((i for i in items if not isinstance(i, JobUpdate)), None)
    if not news:
        return None, end
    preview = next((u.preview for u in reversed(news) if u.preview is not None), None)
    return replace(news[-1], preview=preview), end


def _later(update: JobUpdate, waited: float) -> JobUpdate:
    """The last update with the clock moved on by `waited` seconds (no new preview)."""
    if update.stage != "running":
        return replace(update, preview=None)
    eta = None if update.eta is None else max(0.0, update.eta - waited)
    return replace(update, elapsed=update.elapsed + waited, eta=eta, preview=None)


def _preview(job: Job, info: StepInfo) -> Preview:
    x0 = info.x0
    tilt = x0.get("tilt")
    kernel = x0["kernel"][0, 0] if "kernel" in x0 else job.kernel  # non-blind DPS: the kernel is no unknown
    return Preview(image=display.estimate(x0["image"], job.hw, job.method, job.loaded.tensor.shape[1],
                                          view=job.config.kernel_view),
                   kernel=display.kernel(kernel),
                   tilt=None if tilt is None else display.tilt(tilt, job.hw))


def _notes(job: Job, result: RestoreResult) -> list[str]:
    """What the user should know about the result (as the CLI's notes)."""
    loaded, (h, w) = job.loaded, job.hw
    notes = list(loaded.notes) + (["alpha channel dropped"] if loaded.had_alpha else [])
    if (h, w) != loaded.hw:
        notes.append(f"{loaded.hw[1]}x{loaded.hw[0]} is larger than the max size {job.config.max_size}: "
                     f"restored at {w}x{h}, and the outputs are at that size")
    if job.kernel is not None and (h, w) != loaded.hw:  # restore() scales the photo, never the kernel
        notes.append(f"the known kernel is used as given: it should describe the blur at {w}x{h}, the size the "
                     "photo was restored at")
    if job.kernel is None and result.info["kernel_size"] != job.config.kernel_size:
        notes.append(f"kernel size rounded up to {result.info['kernel_size']} for the kernel network")
    return notes


def _record(job: Job, result: RestoreResult, notes: list[str]) -> dict:
    """The <stem>_config.json of the CLI, for a job of the app."""
    return output_record(turbulence=job.turbulence, input_name=job.name, config=job.config.resolved(job.turbulence),
                         loaded=job.loaded, result=result, notes=notes, known_kernel=job.kernel is not None,
                         source="blinddps app", kernel_file=job.kernel_name)


def _reason(exc: BaseException, job: Job) -> str:
    """One line for the page saying why a job failed."""
    if isinstance(exc, JobError):
        return str(exc)
    if isinstance(exc, UserError):  # a prior that does not load: the CLI's message
        return exc.format_message()
    return failure_reason(exc, job.loaded.path)
