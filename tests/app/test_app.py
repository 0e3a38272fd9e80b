"""The web app (`blinddps app`, issue 10): its job functions called directly, then a started
server driven through gradio_client on localhost, and the command itself.

Priors are the tiny random ones of conftest (outputs valid in shape and range, not good
restorations), photos are a few dozen pixels and jobs a few steps: every test is bounded in
time (the client waits with a timeout; loops wait on deadlines).  Gradio is a test
dependency: a missing Gradio fails these tests instead of skipping them.
"""
from __future__ import annotations

import json
from dataclasses import replace
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import gradio  # noqa: F401 (a missing Gradio must fail here, not skip)
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from blinddps.app import (DeviceQueue, JobCancelled, JobError, JobRunner, JobSettings, JobUpdate, Preview, PriorCache,
                          UploadError, make_examples)
from blinddps.app import display
from blinddps.app.jobs import newest
from blinddps.cli.main import cli
from blinddps.service import load_priors, output_paths
from blinddps.io import read_image
from blinddps.tasks import RestoreConfig
from blinddps.tasks.config import REFINE_AUTO, ProxSettings

H, W = 40, 48
JOB_TIMEOUT = 180  # seconds; a tiny job takes about one on a busy 2-core machine


def _smooth(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB picture (H, W, 3) uint8."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand((1, 3, h // 4 + 1, w // 4 + 1), generator=g)
    pic = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear")[0].permute(1, 2, 0)
    return (pic.numpy() * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Uploads, good and bad."""
    folder = tmp_path_factory.mktemp("uploads")
    paths = {name: folder / name for name in ("photo.png", "big.png", "notimage.png", "trunc.png", "shake.npy",
                                              "corrupt.npy", "negative.npy", "huge-kernel.npy")}
    Image.fromarray(_smooth(H, W)).save(paths["photo.png"])
    Image.fromarray(_smooth(80, 100, 1)).save(paths["big.png"])
    paths["notimage.png"].write_text("this is not a picture\n")
    data = paths["photo.png"].read_bytes()
    paths["trunc.png"].write_bytes(data[: len(data) // 2])
    kernel = np.zeros((7, 7), np.float32)
    kernel[3, 1:6] = 2.0  # a horizontal streak, not normalised (the app normalises it)
    np.save(paths["shake.npy"], kernel)
    paths["corrupt.npy"].write_bytes(b"\x93NUMPY garbage that is no array")
    np.save(paths["negative.npy"], -np.ones((5, 5), np.float32))
    np.save(paths["huge-kernel.npy"], np.ones((45, 45), np.float32))
    return paths


def _base(tiny_priors, max_size: int = 64) -> RestoreConfig:
    return RestoreConfig(image_prior=tiny_priors["image"], kernel_prior=tiny_priors["kernel"],
                         tilt_prior=tiny_priors["tilt"], max_size=max_size)


@pytest.fixture
def runner(tiny_priors, tmp_path) -> JobRunner:
    return JobRunner(_base(tiny_priors), tmp_path / "jobs", devices=["cpu"], preview_every=1, heartbeat=0.2)


def _drain(updates, limit: float = JOB_TIMEOUT) -> list:
    """Every update of a job, failing if it runs past `limit` seconds."""
    out, deadline = [], time.monotonic() + limit
    for update in updates:
        out.append(update)
        assert time.monotonic() < deadline, f"job still running after {limit} s: {out[-1]}"
    return out


def _wait_free(queue: DeviceQueue, device: str = "cpu", limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while queue.busy(device):
        assert time.monotonic() < deadline, f"{device} still held {limit} s after the job ended"
        time.sleep(0.05)


SETTINGS = JobSettings(task="blind", steps=3, kernel_size=8)


# --------------------------------------------------------------------------- jobs, called directly


def test_blind_job_streams_steps_and_previews_and_writes_the_cli_files(runner, files):
    job = runner.prepare(files["photo.png"], SETTINGS, session="s")
    updates = _drain(runner.run(job))
    stages = [u.stage for u in updates]
    assert stages[0] == "loading" and stages[-1] == "done" and "running" in stages
    running = [u for u in updates if u.stage == "running"]
    steps = [u.step for u in running]  # repeated by the heartbeat, or skipped when the consumer lags: never backwards
    info = updates[-1].output.result.info
    again = info.get("search_consensus", 0.0) >= ProxSettings.search_consensus  # the kept kernel restored again
    assert info["restore_lambda"] == (ProxSettings.search_consensus_lambda if again else ProxSettings.search_lambda)
    # one restoration per kernel search, one more when the searches agree, and one per refit
    # round of the kernel (announced from the start), numbered on
    refits = 0 if REFINE_AUTO[False] is None else ProxSettings.search_refine_rounds  # deblurring's refit
    assert len(info.get("refine_mnc", [])) == refits
    announced = 3 * len(ProxSettings.search_decays) + 3 * refits
    total = announced + 3 * again
    assert steps[-1] == total and steps == sorted(steps)
    # the restoration again is announced when it starts (restorations of 3 steps are not short
    # ones: ProxSettings.search_pick_steps does not announce it in advance here)
    assert {u.num_steps for u in running} <= {announced, total}
    assert running[-1].num_steps == total
    etas = [u.eta for u in running]
    assert all(e is not None and e >= 0 for e in etas) and etas[-1] == 0
    previews = [u.preview for u in updates if u.preview is not None]
    assert previews, "a preview every step (preview_every=1) until the last"
    assert previews[0].image.shape == (H, W, 3) and previews[0].image.dtype == np.uint8
    assert previews[0].kernel.ndim == 2 and previews[0].tilt is None

    out = updates[-1].output
    assert out.restored.shape == out.input.shape == (H, W, 3) and out.restored.dtype == np.uint8
    assert out.result.image.shape == (1, 3, H, W) and 0 <= out.result.image.min() <= out.result.image.max() <= 1
    assert out.std is None and out.tilt is None
    # the same files as `blinddps deblur` writes, restored photo first
    expected = output_paths(Path("photo.png"), "photo", out.files[0].parent, job.config, False)
    assert [p.name for p in out.files] == [p.name for p in expected.values()]
    restored = read_image(out.files[0])
    assert restored.hw == (H, W) and 0 <= restored.tensor.min() <= restored.tensor.max() <= 1
    kernel = np.load(out.files[0].parent / "photo_kernel.npy")
    assert kernel.ndim == 2 and kernel.min() >= 0 and abs(kernel.sum() - 1) < 1e-5
    record = json.loads((out.files[0].parent / "photo_config.json").read_text())
    assert record["command"] == "deblur" and record["config"]["prox"]["steps"] == 3 and record["input"] == "photo.png"
    assert not runner.queue.busy("cpu")


def test_turbulence_by_the_default_sampler_shows_no_tilt(runner, files):
    job = runner.prepare(files["photo.png"], JobSettings(task="turbulence", steps=2, kernel_size=8))
    assert job.method == "prox"
    out = _drain(runner.run(job))[-1].output
    assert out.tilt is None and not any("tilt" in p.name for p in out.files)
    # the turbulence task's own choices are what the job ran and recorded: no kernel refit
    assert "refine_mnc" not in out.result.info
    record = json.loads(next(p for p in out.files if p.name.endswith("_config.json")).read_text())
    assert record["command"] == "turbulence" and record["config"]["prox"]["search_refine"] is None


def test_turbulence_by_dps_with_samples_adds_tilt_and_std(runner, files):
    job = runner.prepare(files["photo.png"], JobSettings(task="turbulence", method="dps", steps=2, kernel_size=8,
                                                         samples=2))
    updates = _drain(runner.run(job))
    assert any(u.preview is not None and u.preview.tilt is not None for u in updates)
    out = updates[-1].output
    assert out.tilt.shape == (H, W) and out.std.shape == (H, W) and out.tilt.dtype == out.std.dtype == np.uint8
    names = {p.name for p in out.files}
    assert {"photo_tilt.npy", "photo_tilt.png", "photo_std.png"} <= names
    assert np.load(out.files[0].parent / "photo_tilt.npy").shape == (2, H, W)


def test_known_kernel_job_uses_the_uploaded_kernel(runner, files):
    upload = {"path": str(files["shake.npy"]), "orig_name": "my shake.npy"}  # as Gradio hands it over
    job = runner.prepare(files["photo.png"], JobSettings(task="known", steps=2), kernel_file=upload)
    assert job.method == "prox"  # auto: the proximal sampler with a known kernel
    out = _drain(runner.run(job))[-1].output
    given = np.load(files["shake.npy"])
    assert torch.allclose(out.result.kernel, torch.from_numpy(given / given.sum()), atol=1e-6)
    assert out.result.info["method"] == "prox" and out.result.info["steps"] == 2
    assert json.loads(out.files[-1].read_text())["kernel_file"] == "my shake.npy"


def test_large_photos_follow_the_max_size_rule(runner, files):
    job = runner.prepare(files["big.png"], JobSettings(task="blind", steps=2, kernel_size=8))
    assert job.hw == display.working_size((80, 100), 64) == (51, 64)
    out = _drain(runner.run(job))[-1].output
    assert out.result.info["working_size"] == list(job.hw)  # the app's rule is restore()'s
    assert out.restored.shape == out.input.shape == (51, 64, 3)
    assert read_image(out.files[0]).hw == (51, 64)
    assert any("larger than the max size 64" in n for n in out.notes)


def _bad(files, tmp_path) -> list[tuple[str, dict, str]]:
    return [
        ("no photo", dict(photo=None), "no photo: upload or paste one"),
        ("not an image", dict(photo=files["notimage.png"]), "notimage.png: not an image file"),
        ("truncated", dict(photo=files["trunc.png"]), "trunc.png: truncated or corrupt image"),
        ("renamed upload", dict(photo={"path": str(files["notimage.png"]), "orig_name": "holiday.jpg"}),
         "holiday.jpg: not an image file"),
        ("no kernel", dict(photo=files["photo.png"], settings=JobSettings(task="known")),
         "needs the blur kernel"),
        ("corrupt kernel", dict(photo=files["photo.png"], settings=JobSettings(task="known"),
                                kernel_file=files["corrupt.npy"]), "kernel file corrupt.npy: "),
        ("negative kernel", dict(photo=files["photo.png"], settings=JobSettings(task="known"),
                                 kernel_file=files["negative.npy"]), "kernel file negative.npy: the kernel has negative"),
        ("image as kernel", dict(photo=files["photo.png"], settings=JobSettings(task="known"),
                                 kernel_file=files["notimage.png"]), "kernel file notimage.png: not an image file"),
        ("kernel too large", dict(photo=files["photo.png"], settings=JobSettings(task="known"),
                                  kernel_file=files["huge-kernel.npy"]), "(45x45) is larger than the photo"),
        ("kernel size too large", dict(photo=files["photo.png"], settings=JobSettings(kernel_size=64)),
         "kernel size 64 is larger than the photo as restored (48x40)"),
        ("unknown device", dict(photo=files["photo.png"], settings=JobSettings(device="cuda:7")),
         "unknown device 'cuda:7': this machine has cpu"),
        ("zero steps", dict(photo=files["photo.png"], settings=JobSettings(steps=0)), "steps must be 1 to 1000"),
    ]


def test_bad_uploads_and_settings_get_one_line_messages(runner, files, tmp_path):
    for case, kwargs, fragment in _bad(files, tmp_path):
        settings = kwargs.pop("settings", SETTINGS)
        with pytest.raises(JobError) as info:
            runner.prepare(kwargs.pop("photo"), settings, **kwargs)
        message = str(info.value)
        assert fragment in message, (case, message)
        assert "\n" not in message and str(files["photo.png"].parent) not in message, (case, message)
    assert not runner.queue.busy("cpu"), "a refused job never queues"


def test_too_large_uploads_are_refused_before_decoding(tiny_priors, tmp_path, files):
    small = JobRunner(_base(tiny_priors), tmp_path, devices=["cpu"], max_upload_mb=0.001)
    with pytest.raises(UploadError, match=r"photo.png: the file is 0.0\d* MB; the app takes files up to 0.001 MB"):
        small.prepare(files["photo.png"], SETTINGS)
    few_pixels = JobRunner(_base(tiny_priors), tmp_path, devices=["cpu"], max_pixels=1000)
    with pytest.raises(UploadError, match=r"photo.png: image too large \(48x40 = 1920 pixels > 1000\)"):
        few_pixels.prepare(files["photo.png"], SETTINGS)


def test_cancel_stops_the_job_and_frees_the_device(runner, files):
    job = runner.prepare(files["photo.png"], JobSettings(steps=200, kernel_size=8), session="me")
    updates, deadline = [], time.monotonic() + JOB_TIMEOUT
    for update in runner.run(job):
        updates.append(update)
        if update.stage == "running" and update.step == 2:
            assert runner.cancel("someone else") == 0
            assert runner.cancel("me") == 1
        assert time.monotonic() < deadline
    assert updates[-1].stage == "cancelled" and updates[-1].step < 200
    assert not runner.queue.busy("cpu"), "the device is free when the generator ends"
    assert not runner.outdir.exists() or not any(runner.outdir.iterdir()), "a cancelled job writes nothing"


def test_failed_job_says_why_and_frees_the_device(tiny_priors, tmp_path, files):
    def out_of_memory(config, turbulence, blind):
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")

    failing = JobRunner(_base(tiny_priors), tmp_path, devices=["cpu"], priors=PriorCache(out_of_memory))
    job = failing.prepare(files["photo.png"], SETTINGS)
    with pytest.raises(JobError, match="out of memory: try a smaller --max-size"):
        _drain(failing.run(job))
    assert not failing.queue.busy("cpu")


def test_a_closed_consumer_frees_the_device(runner, files):
    """The page went away (Gradio closes the generator): the worker stops at its next step."""
    job = runner.prepare(files["photo.png"], JobSettings(steps=500, kernel_size=8))
    updates = runner.run(job)
    for update in updates:
        if update.stage == "running":
            break
    assert runner.queue.busy("cpu")
    updates.close()
    _wait_free(runner.queue)


def test_jobs_on_one_device_wait_their_turn(runner, files):
    queue = runner.queue
    first, second = object(), object()
    queue.join("cpu", first)
    queue.join("cpu", second)
    assert (queue.ahead("cpu", first), queue.ahead("cpu", second)) == (0, 1)
    assert queue.wait("cpu", first, 0) and not queue.wait("cpu", second, 0.01)
    queue.leave("cpu", first)
    assert queue.wait("cpu", second, 0) and queue.busy("cpu")
    queue.join("cuda:0", object())  # another device's line does not hold this one
    job = runner.prepare(files["photo.png"], SETTINGS)
    updates = runner.run(job)
    waiting = next(updates)
    assert waiting.stage == "waiting" and waiting.ahead == 1
    queue.leave("cpu", second)
    rest = _drain(updates)
    assert rest[-1].stage == "done" and not queue.busy("cpu")


def test_priors_load_once_per_names_and_device(tiny_priors, tmp_path, files):
    calls = []

    def counting(config, turbulence, blind):
        calls.append((config.image_prior, config.device, turbulence, blind))
        return load_priors(config, turbulence, blind=blind)

    cached = JobRunner(_base(tiny_priors), tmp_path, devices=["cpu"], priors=PriorCache(counting))
    for steps in (2, 3):
        _drain(cached.run(cached.prepare(files["photo.png"], JobSettings(method="dps", steps=steps, kernel_size=8))))
    assert len(calls) == 1
    priors = cached.priors.get(_base(tiny_priors).replace(steps=7, method="dps"), False, blind=True)
    assert priors["image"].num_steps == priors["kernel"].num_steps == 7 and len(calls) == 1


def test_updates_that_pile_up_reach_the_page_as_the_newest_one():
    early = Preview(np.zeros((2, 2, 3), np.uint8), np.zeros((3, 3), np.uint8))
    late = Preview(np.ones((2, 2, 3), np.uint8), np.zeros((3, 3), np.uint8))
    piled = [JobUpdate("running", 1, 9, preview=early), JobUpdate("running", 2, 9, preview=late),
             JobUpdate("running", 3, 9)]
    update, end = newest(piled)
    assert update.step == 3 and update.preview is late and end is None
    update, end = newest([*piled, RuntimeError("boom")])
    assert update.step == 3 and isinstance(end, RuntimeError)
    update, end = newest([JobCancelled("cancelled")])
    assert update is None and isinstance(end, JobCancelled)


def test_live_estimates_are_cropped_where_each_sampler_keeps_the_photo():
    x0 = -torch.ones(1, 3, 12, 16)
    x0[..., :8, :10] = 1  # DPS: the photo top-left, padding at the bottom / right
    assert (display.estimate(x0, (8, 10), "dps", 3) == 255).all()
    x0 = -torch.ones(1, 3, 12, 16)
    x0[..., 2:10, 3:13] = 1  # proximal sampler: the photo in the middle of a larger grid
    assert (display.estimate(x0, (8, 10), "prox", 1) == 255).all()


def test_examples_are_made_once_and_load(tmp_path):
    examples = make_examples(tmp_path)
    assert [e.task for e in examples] == ["blind", "turbulence", "known"]
    stamp = examples[0].photo.stat().st_mtime_ns
    assert make_examples(tmp_path)[0].photo.stat().st_mtime_ns == stamp
    assert read_image(examples[0].photo).hw == (256, 256)
    kernel = np.load(examples[2].kernel)
    assert kernel.min() >= 0 and abs(kernel.sum() - 1) < 1e-5


def test_status_line_shows_the_share_done_time_left_and_a_bar(runner, files):
    from blinddps.app.ui import clock, status_html

    job = runner.prepare(files["photo.png"], SETTINGS)
    text = status_html(JobUpdate("running", step=25, num_steps=100, elapsed=61, eta=183), job)
    assert "25 %" in text and "1:01 elapsed" in text and "about 3:03 left" in text
    assert 'style="width:25.0%"' in text
    assert "1 job(s) ahead" in status_html(JobUpdate("waiting", ahead=1), job)
    assert clock(3725) == "1:02:05"


# --------------------------------------------------------------------------- the server, through gradio_client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_priors, tmp_path_factory):
    from blinddps.app.ui import build_app, serve

    folder = tmp_path_factory.mktemp("app")
    runner = JobRunner(_base(tiny_priors), folder / "jobs", devices=["cpu"], preview_every=1, heartbeat=0.2)
    blocks = build_app(runner, make_examples(folder / "examples"))
    url = serve(blocks, _free_port(), allowed=[folder])
    try:
        yield Client(url, verbose=False), runner
    finally:
        blocks.close()


def _inputs(photo, task="blind", kernel=None, steps=3) -> list:
    """The "restore" endpoint's inputs in the page's order."""
    return [task, handle_file(str(photo)), None if kernel is None else handle_file(str(kernel)), "auto", steps, 0, 8,
            1, "cpu"]


@pytest.mark.slow
def test_server_runs_a_short_job(server, files):
    client, runner = server
    job = client.submit(*_inputs(files["photo.png"]), api_name="/restore")
    status, pair, kernel, tilt, std, downloads = job.result(timeout=JOB_TIMEOUT)
    # the steps are counted exactly in the test above; here the share done streams before the end
    assert "Done in " in status
    assert any(re.search(r"\b\d{1,2} % ·", out[0]) for out in job.outputs()), "progress streamed before the end"
    before, after = (Image.open(p) for p in pair)
    assert before.size == after.size == (W, H)
    # auto is the proximal sampler: its kernel search makes the 8 px kernel odd, 9x9, 21 px a cell
    assert Image.open(kernel).size == (189, 189)
    assert tilt == std == {"__type__": "update", "value": None, "visible": False}  # blind, one sample: hidden
    names = sorted(Path(p).name for p in downloads)
    assert names == ["photo_config.json", "photo_kernel.npy", "photo_kernel.png", "photo_restored.png"]
    restored = read_image(next(p for p in downloads if p.endswith("_restored.png")))
    assert restored.hw == (H, W) and 0 <= restored.tensor.min() <= restored.tensor.max() <= 1
    assert not runner.queue.busy("cpu")


@pytest.mark.slow
def test_server_reports_a_bad_upload_in_the_page(server, files):
    client, runner = server
    job = client.submit(*_inputs(files["notimage.png"]), api_name="/restore")
    with pytest.raises(AppError, match="notimage.png: not an image file"):
        job.result(timeout=60)
    job = client.submit(*_inputs(files["photo.png"], task="known", kernel=files["corrupt.npy"]), api_name="/restore")
    with pytest.raises(AppError, match="kernel file corrupt.npy: "):
        job.result(timeout=60)
    assert not runner.queue.busy("cpu")


@pytest.mark.slow
def test_server_stop_cancels_the_callers_job(server, files):
    client, runner = server
    job = client.submit(*_inputs(files["photo.png"], steps=1000), api_name="/restore")
    deadline = time.monotonic() + JOB_TIMEOUT
    while not any(" elapsed" in out[0] for out in job.outputs()):  # a step done
        assert time.monotonic() < deadline and not job.done(), job.outputs()
        time.sleep(0.1)
    client.predict(api_name="/stop")
    status = job.result(timeout=60)[0]
    assert "Cancelled at " in status and " %" in status and "cpu is free" in status
    _wait_free(runner.queue)


# --------------------------------------------------------------------------- the command


def test_app_command_without_gradio_says_how_to_install(monkeypatch):
    import blinddps.app

    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio -> ImportError
    monkeypatch.delitem(sys.modules, "blinddps.app.ui", raising=False)  # imported anew, as on a machine without it
    monkeypatch.delattr(blinddps.app, "ui", raising=False)
    result = CliRunner().invoke(cli, ["app", "--port", "9"])
    assert result.exit_code == 2
    assert 'pip install "blinddps[app]"' in result.output


@pytest.mark.slow
def test_app_command_serves_the_page_on_localhost(tiny_priors, tmp_path):
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-m", "blinddps", "app", "--port", str(port), "--device", "cpu",
                             "--output", str(tmp_path), "--image-prior", tiny_priors["image"]],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline, page = time.monotonic() + 90, ""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as reply:
                    page = reply.read().decode()
                    break
            except OSError:
                time.sleep(0.3)
        assert "BlindDPS" in page, proc.stdout.read() if proc.poll() is not None else "no answer in 90 s"
        assert (tmp_path / "examples" / "camera-shake.png").is_file()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_pages_texts_match_the_samplers_it_runs(runner):
    """The sampler menu offers each sampler of tasks.config.SAMPLERS (and auto), the auto
    entry names the sampler auto resolves to, the steps the page sets are each sampler's
    default, and the header names the default sampler and its steps."""
    from blinddps.app import ui
    from blinddps.tasks.config import SAMPLERS, DPSSettings

    values = [value for _, value in ui.METHOD_CHOICES]
    assert sorted(values) == sorted(["auto", *SAMPLERS])
    labels = dict((value, label) for label, value in ui.METHOD_CHOICES)
    resolved = RestoreConfig(method="auto").sampler_name()
    assert ui.SAMPLER_WORDS[resolved].lower() in labels["auto"].lower()
    for sampler in SAMPLERS:
        assert ui.SAMPLER_WORDS[sampler].lower() in labels[sampler].lower()
        assert ui.default_steps(sampler) == RestoreConfig(method=sampler).steps
    assert ui.default_steps("auto") == ProxSettings().steps and ui.DEFAULT_STEPS["dps"] == DPSSettings().steps
    header = ui.intro(runner)
    assert f"default sampler is the {ui.SAMPLER_WORDS[resolved]}" in header
    assert f"{RestoreConfig().steps} network evaluations" in header


def test_a_photo_over_the_kernel_view_is_restored_at_its_size_with_previews(tiny_priors, files, tmp_path):
    """big.png (100x80) with the kernel searched on a 64 px view: previews at the photo's size
    during the view's run and the photo's, and the restored file at 100x80."""
    base = replace(_base(tiny_priors, max_size=0), kernel_view=64)
    runner = JobRunner(base, tmp_path / "jobs", devices=["cpu"], preview_every=1, heartbeat=0.2)
    job = runner.prepare(files["big.png"], JobSettings(task="blind", steps=2, kernel_size=8))
    updates = _drain(runner.run(job))
    assert updates[-1].stage == "done", updates[-1]
    previews = [u.preview for u in updates if u.preview is not None]
    assert previews and all(p.image.shape == (80, 100, 3) for p in previews)
    out = updates[-1].output
    assert out.result.image.shape == (1, 3, 80, 100) and read_image(out.files[0]).hw == (80, 100)
    assert out.result.info["kernel_view"] == [51, 64]
