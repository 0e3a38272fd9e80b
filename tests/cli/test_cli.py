"""The product: `blinddps deblur / turbulence / simulate / demo` on tiny inputs with tiny priors.

The runs that matter as a user sees them go through the real CLI in subprocesses
(`python -m blinddps ...`).  Importing torch costs several seconds per process on a busy
2-core machine, so those runs are started together (a few at a time) by one module fixture
and the tests check their results.  Cases that need a fault injected (out of memory) or that
only check an early refusal run in-process through click's CliRunner.  Priors are tiny and
random: outputs are checked for format, shape, range and bookkeeping, not for quality.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from blinddps import RestoreConfig
from blinddps.cli.main import cli
from blinddps.tasks.config import REFINE_AUTO, ProxSettings

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
ENV.pop("BLINDDPS_DEBUG", None)
TINY = ["--steps", "3", "--device", "cpu"]
BATCH_KERNEL = 12  # larger than small.png (10x10), smaller than the good images
BATCH_KERNEL_OUT = 13  # the batch runs auto = the proximal sampler, whose kernel search makes the size odd

# (file in the batch, fragment of its one-line error)
BAD_INPUTS = [
    ("missing.png", "no such file"),
    ("notimage.png", "not an image file"),
    ("empty.png", "empty file"),
    ("pixel.png", "image too small (1x1"),
    ("small.png", f"kernel size {BATCH_KERNEL} is larger than the image (10x10)"),
    ("trunc.png", "truncated or corrupt image"),
]
GOOD_INPUTS = {"rgb.png": ("PNG", "RGB", 8), "grey16.png": ("PNG", "I;16", 16), "photo.jpg": ("JPEG", "RGB", 8)}


def _cli(*args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blinddps", *map(str, args)], capture_output=True, text=True,
                          env=ENV, cwd=cwd, timeout=600)


def _smooth(h: int, w: int, c: int, seed: int) -> np.ndarray:
    """A smooth random image (H, W, C) in [0, 1]: upsampled noise, like a blurry photo."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand((1, c, h // 4 + 1, w // 4 + 1), generator=g)
    return torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear")[0].permute(1, 2, 0).numpy()


def _make_inputs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray((_smooth(40, 48, 3, 0) * 255).round().astype(np.uint8)).save(folder / "rgb.png")
    Image.fromarray((_smooth(36, 40, 1, 1)[..., 0] * 65535).round().astype(np.uint16)).save(folder / "grey16.png")
    Image.fromarray((_smooth(40, 40, 3, 2) * 255).round().astype(np.uint8)).save(folder / "photo.jpg", quality=90)
    Image.fromarray((_smooth(72, 72, 3, 3) * 255).round().astype(np.uint8)).save(folder / "wide.png")
    (folder / "notimage.png").write_text("this is not a picture\n")
    (folder / "empty.png").write_bytes(b"")
    Image.new("RGB", (1, 1), (10, 20, 30)).save(folder / "pixel.png")
    Image.new("RGB", (10, 10), (10, 20, 30)).save(folder / "small.png")
    data = (folder / "rgb.png").read_bytes()
    (folder / "trunc.png").write_bytes(data[: len(data) // 2])


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_priors) -> dict:
    """Every subprocess run of this file, started a few at a time; name -> (result, folder)."""
    root = tmp_path_factory.mktemp("cli")
    _make_inputs(root / "in")
    batch = root / "batch"  # the batch writes beside its inputs: output folder == input folder
    _make_inputs(batch)
    priors = ["--image-prior", tiny_priors["image"], "--kernel-prior", tiny_priors["kernel"]]
    src = root / "in"
    ddim = _settings(root / "ddim.json", {"dps": {"sampler": "ddim"}})
    jobs = {
        "batch": (*(batch / n for n in GOOD_INPUTS), *(batch / n for n, _ in BAD_INPUTS), "-o", batch,
                  "--kernel-size", BATCH_KERNEL, "--samples", 2, "--record-every", 2, *TINY, *priors),
        "single": (src / "rgb.png", "-o", root / "single", "--kernel-size", 8, "--max-size", 32,
                   "--method", "dps", "--config", ddim, "--kernel-prior", "uniform", "--image-prior", tiny_priors["image"],
                   "--threads", 1, *TINY),
        "turbulence": (src / "rgb.png", "-o", root / "turb", "--kernel-size", 8, "--tilt-prior", tiny_priors["tilt"],
                       "--method", "dps", "-q", *TINY, *priors),
        "turbulence_prox": (src / "rgb.png", "-o", root / "turb-prox", "--kernel-size", 8, "-q", *TINY, *priors),
        "sim_a": (src / "grey16.png", "-o", root / "sim" / "a.png", "--kernel-size", 8, "--seed", 5),
        "demo": ("-o", root / "demo", "--size", 48, "--kernel-size", 8, *TINY, *priors),
        "unknown_prior": (src / "rgb.png", "-o", root / "never", "--image-prior", "no-such-prior", *TINY),
    }
    commands = {"batch": "deblur", "single": "deblur", "turbulence": "turbulence", "turbulence_prox": "turbulence",
                "sim_a": "simulate",
                "demo": "demo", "unknown_prior": "deblur"}
    before = _digest(batch)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(_cli, commands[name], *args) for name, args in jobs.items()}
        results = {name: f.result() for name, f in futures.items()}
    return {"root": root, "src": src, "batch_dir": batch, "batch_before": before, **results}


def _stderr_clean(result) -> None:
    assert "Traceback" not in result.stderr, result.stderr


# --------------------------------------------------------------------------- deblur: a batch with bad files


@pytest.mark.slow
def test_batch_with_bad_files_exits_1_and_restores_the_good_ones(runs):
    result = runs["batch"]
    assert result.returncode == 1, result.stderr
    _stderr_clean(result)
    for name in GOOD_INPUTS:
        stem = Path(name).stem
        for suffix in (f"_restored{Path(name).suffix}", "_kernel.png", "_kernel.npy", "_config.json", "_std.png",
                       "_progress.png"):
            assert (runs["batch_dir"] / f"{stem}{suffix}").is_file(), (f"{stem}{suffix} missing", result.stderr[-3000:])
    assert f"restored {len(GOOD_INPUTS)} of {len(GOOD_INPUTS) + len(BAD_INPUTS)}" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name,fragment", BAD_INPUTS, ids=[n for n, _ in BAD_INPUTS])
def test_each_bad_input_gets_one_error_line(runs, name, fragment):
    lines = [line for line in runs["batch"].stderr.splitlines() if line.startswith("error: ")]
    mine = [line for line in lines if line.startswith(f"error: {runs['batch_dir'] / name}: ")]
    assert len(mine) == 1, lines
    assert fragment in mine[0]
    assert not list(runs["batch_dir"].glob(f"{Path(name).stem}_*")), "a failed photo must leave no outputs"


@pytest.mark.slow
def test_inputs_are_never_overwritten_when_outputs_go_beside_them(runs):
    after = _digest(runs["batch_dir"])
    assert {k: after[k] for k in runs["batch_before"]} == runs["batch_before"]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(GOOD_INPUTS))
def test_restored_keeps_format_bit_depth_mode_and_size(runs, name):
    fmt, mode, _ = GOOD_INPUTS[name]
    source = Image.open(runs["batch_dir"] / name)
    with Image.open(runs["batch_dir"] / f"{Path(name).stem}_restored{Path(name).suffix}") as out:
        assert (out.format, out.mode, out.size) == (fmt, mode, source.size)
        if mode == "I;16":
            assert np.asarray(out).max() > 255, "16-bit output must use 16-bit values"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(GOOD_INPUTS))
def test_kernel_npy_is_float32_nonnegative_and_sums_to_one(runs, name):
    k = np.load(runs["batch_dir"] / f"{Path(name).stem}_kernel.npy")
    assert k.dtype == np.float32 and k.shape == (BATCH_KERNEL_OUT, BATCH_KERNEL_OUT)
    assert (k >= 0).all() and abs(float(k.sum(dtype=np.float64)) - 1) < 1e-5
    with Image.open(runs["batch_dir"] / f"{Path(name).stem}_kernel.png") as png:
        assert np.asarray(png).max() == 255, "the kernel PNG is scaled by its maximum"


@pytest.mark.slow
def test_config_json_records_the_resolved_settings(runs):
    record = json.loads((runs["batch_dir"] / "grey16_config.json").read_text())
    config = record["config"]
    settings = (config["kernel_size"], config["dps"]["steps"], config["samples"], config["record_every"])
    assert settings == (BATCH_KERNEL_OUT, 3, 2, 2)
    assert config["device"] == "cpu" and config["dps"]["sampler"] == "ddpm" and config["dps"]["padding"] == "reflect"
    assert config["method"] == "prox" and config["prox"]["steps"] == 20 and config["prox"]["border"] == "valid"
    assert RestoreConfig.from_dict(config).to_dict() == config and record["known_kernel"] is False  # loads back
    assert record["input"] == str(runs["batch_dir"] / "grey16.png")
    assert record["input_image"] == {"width": 40, "height": 36, "mode": "L", "bit_depth": 16, "format": "PNG"}
    info = record["info"]
    assert info["seconds"] > 0 and info["scale"] == 1.0  # nfe_per_image: test_reported_nfe_is_...
    assert info["working_size"] == [36, 40] and info["version"]
    assert record["outputs"]["restored"] == "grey16_restored.png"


@pytest.mark.slow
def test_samples_write_a_std_map_of_the_image_size(runs):
    with Image.open(runs["batch_dir"] / "rgb_std.png") as std:
        assert std.size == (48, 40) and std.mode == "L"
        assert np.asarray(std).max() == 255, "two different samples give a non-zero std"


# --------------------------------------------------------------------------- deblur / turbulence: single photos


@pytest.mark.slow
def test_single_photo_exits_0_and_bounds_the_resolution(runs):
    result, out = runs["single"], runs["root"] / "single"
    assert result.returncode == 0, result.stderr
    _stderr_clean(result)
    assert "note:" in result.stderr and "--max-size 32" in result.stderr
    with Image.open(out / "rgb_restored.png") as img:
        assert img.size == (32, 27), "outputs are written at the bounded resolution"
    record = json.loads((out / "rgb_config.json").read_text())
    assert record["config"]["dps"]["sampler"] == "ddim" and record["config"]["kernel_prior"] == "uniform"
    assert record["info"]["working_size"] == [27, 32] and record["info"]["scale"] == pytest.approx(32 / 48)
    assert record["info"]["threads"] == 1
    assert not (out / "rgb_std.png").exists(), "one sample: no std map"


@pytest.mark.slow
def test_turbulence_writes_the_tilt_field(runs):
    result, out = runs["turbulence"], runs["root"] / "turb"
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr, "--quiet prints nothing on success"
    tilt = np.load(out / "rgb_tilt.npy")
    assert tilt.shape == (2, 40, 48) and tilt.dtype == np.float32 and np.isfinite(tilt).all()
    with Image.open(out / "rgb_tilt.png") as png:
        assert png.size == (48, 40)
    assert np.load(out / "rgb_kernel.npy").sum() == pytest.approx(1, abs=1e-5)
    assert (out / "rgb_restored.png").is_file()
    assert json.loads((out / "rgb_config.json").read_text())["command"] == "turbulence"


@pytest.mark.slow
def test_turbulence_by_the_default_sampler_writes_no_tilt_and_says_why(runs):
    result, out = runs["turbulence_prox"], runs["root"] / "turb-prox"
    assert result.returncode == 0, result.stderr
    assert (out / "rgb_restored.png").is_file() and np.load(out / "rgb_kernel.npy").shape == (9, 9)
    assert not (out / "rgb_tilt.npy").exists() and not (out / "rgb_tilt.png").exists()
    record = json.loads((out / "rgb_config.json").read_text())
    assert record["info"]["method"] == "prox" and record["info"]["tilt"].startswith("not estimated")
    # --prox-search-refine auto: off for turbulence, as recorded, and no refit ran
    assert record["config"]["prox"]["search_refine"] is None and "refine_mnc" not in record["info"]


@pytest.mark.slow
def test_unknown_prior_is_a_usage_error(runs):
    result = runs["unknown_prior"]
    assert result.returncode == 2
    _stderr_clean(result)
    assert "error: --image-prior: no prior named 'no-such-prior'" in result.stderr


# --------------------------------------------------------------------------- simulate and demo


@pytest.mark.slow
def test_simulate_is_reproducible_and_keeps_bit_depth(runs):
    sim = runs["root"] / "sim"
    assert runs["sim_a"].returncode == 0, runs["sim_a"].stderr
    again = _invoke("simulate", runs["src"] / "grey16.png", "-o", sim / "b.png", "--kernel-size", 8, "--seed", 5)
    assert again.exit_code == 0, again.output
    with Image.open(sim / "a.png") as a, Image.open(sim / "b.png") as b:
        assert a.mode == "I;16" and a.size == (40, 36)
        assert np.array_equal(np.asarray(a), np.asarray(b))
    ka, kb = np.load(sim / "a_kernel.npy"), np.load(sim / "b_kernel.npy")
    assert np.array_equal(ka, kb) and ka.shape == (8, 8) and abs(float(ka.sum()) - 1) < 1e-5 and (ka >= 0).all()
    assert (sim / "a_kernel.png").is_file()
    record = json.loads((sim / "a_config.json").read_text())
    assert record["config"] == {"blur": "motion", "kernel_size": 8, "intensity": 0.5, "noise": 0.01,
                                "padding": "reflect", "seed": 5}
    with Image.open(runs["src"] / "grey16.png") as sharp, Image.open(sim / "a.png") as blurred:
        assert not np.array_equal(np.asarray(sharp), np.asarray(blurred))
    other = _invoke("simulate", runs["src"] / "grey16.png", "-o", sim / "c.png", "--kernel-size", 8, "--seed", 6)
    assert other.exit_code == 0 and not np.array_equal(np.load(sim / "c_kernel.npy"), ka)


@pytest.mark.slow
def test_simulate_turbulence_writes_the_tilt(runs):
    sim = runs["root"] / "sim"
    result = _invoke("simulate", runs["src"] / "wide.png", "-o", sim / "t.png", "--blur", "turbulence",
                     "--kernel-size", 8, "--std", 1.5)
    assert result.exit_code == 0, result.output
    assert np.load(sim / "t_tilt.npy").shape == (2, 72, 72)
    assert (sim / "t_tilt.png").is_file() and (sim / "t_kernel.npy").is_file()
    assert json.loads((sim / "t_config.json").read_text())["config"]["std"] == 1.5


@pytest.mark.slow
def test_demo_writes_the_figure_and_its_parts(runs):
    result, out = runs["demo"], runs["root"] / "demo"
    assert result.returncode == 0, result.stderr
    _stderr_clean(result)
    assert "demo.png" in result.stdout and "PSNR" in result.stdout and "MNC" in result.stdout
    with Image.open(out / "demo.png") as fig:
        assert fig.width > 5 * 128 and fig.mode == "RGB"
    for name in ("sharp.png", "blurry.png", "restored.png", "kernel_true.npy", "kernel_estimated.npy"):
        assert (out / name).is_file(), name
    record = json.loads((out / "config.json").read_text())
    assert set(record["metrics"]) == {"psnr_blurry", "psnr_restored", "kernel_mnc"} and record["size"] == 48
    assert abs(float(np.load(out / "kernel_true.npy").sum()) - 1) < 1e-5
    # The reported numbers are those of the written files (8-bit PNGs: PSNR to ~0.01 dB).
    from blinddps.io import read_image
    from blinddps.metrics import kernel_mnc, psnr

    k_true, k_est = (torch.from_numpy(np.load(out / f"kernel_{n}.npy")).double() for n in ("true", "estimated"))
    assert record["metrics"]["kernel_mnc"] == pytest.approx(float(kernel_mnc(k_est, k_true)), abs=1e-6)
    sharp, blurry, restored = (read_image(out / f"{n}.png").tensor.double() for n in ("sharp", "blurry", "restored"))
    assert record["metrics"]["psnr_blurry"] == pytest.approx(float(psnr(blurry, sharp)[0]), abs=0.05)
    assert record["metrics"]["psnr_restored"] == pytest.approx(float(psnr(restored, sharp)[0]), abs=0.05)


# --------------------------------------------------------------------------- in-process: refusals and faults


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _settings(path: Path, data: dict) -> Path:
    """A --config file holding these settings (any subset of RestoreConfig's fields)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _one_error(result, fragment: str, code: int) -> None:
    assert result.exit_code == code, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert fragment in result.stderr and "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray((_smooth(32, 32, 3, 4) * 255).round().astype(np.uint8)).save(path)
    return path


def _bad_checkpoints(folder: Path, tiny_priors) -> dict[str, tuple[str, str]]:
    corrupt = folder / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00 not safetensors at all " * 8)
    foreign = folder / "foreign.pt"
    torch.save(torch.nn.Linear(3, 3).state_dict(), foreign)
    return {"corrupt": (str(corrupt), "not a readable safetensors file"),
            "wrong-architecture": (str(foreign), "not an ADM U-Net"),
            "wrong-kind": (tiny_priors["kernel"], "is a kernel prior")}


@pytest.mark.parametrize("case", ["corrupt", "wrong-architecture", "wrong-kind"])
def test_unusable_checkpoint_is_one_line_exit_2(tmp_path, photo, tiny_priors, case):
    path, fragment = _bad_checkpoints(tmp_path, tiny_priors)[case]
    result = _invoke("deblur", photo, "-o", tmp_path / "out", "--image-prior", path,
                     "--kernel-prior", tiny_priors["kernel"], *TINY)
    _one_error(result, fragment, 2)
    assert "error: --image-prior" in result.stderr


def test_unwritable_output_folder_is_refused_up_front(tmp_path, photo, tiny_priors):
    result = _invoke("deblur", photo, "-o", photo / "sub", "--image-prior", tiny_priors["image"], *TINY)
    _one_error(result, "is not writable", 2)
    if os.geteuid() != 0:  # root writes anywhere: only the file-in-the-way case is testable then
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        _one_error(_invoke("deblur", photo, "-o", locked, *TINY), "is not writable", 2)


def test_out_of_memory_fails_the_photo_with_a_hint(tmp_path, photo, tiny_priors, monkeypatch):
    def no_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB\n(more lines of advice)")

    monkeypatch.setattr("blinddps.cli.restore.restore", no_memory)
    result = _invoke("deblur", photo, "-o", tmp_path / "out", "--image-prior", tiny_priors["image"],
                     "--kernel-prior", tiny_priors["kernel"], "-q", *TINY)
    _one_error(result, f"error: {photo}: out of memory: try a smaller --max-size", 1)
    assert "--device cpu" in result.stderr


def test_divergence_fails_the_photo_with_a_message(tmp_path, photo, tiny_priors):
    huge = _settings(tmp_path / "zeta.json", {"dps": {"zeta": 1e30}})
    result = _invoke("deblur", photo, "-o", tmp_path / "out", "--method", "dps", "--kernel-size", 8, "--config", huge, "-q",
                     "--image-prior", tiny_priors["image"], "--kernel-prior", tiny_priors["kernel"], *TINY)
    _one_error(result, "sampling diverged", 1)
    assert not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize("kernel_prior", ["tiny", "uniform"])
def test_reported_nfe_is_the_counted_network_calls(tmp_path, photo, tiny_priors, network_calls, kernel_prior):
    """config.json's nfe_per_image against the network calls actually made (two samples run
    as one batch: every call evaluates each sample once); a prior-less kernel costs none."""
    prior = tiny_priors["kernel"] if kernel_prior == "tiny" else "uniform"
    result = _invoke("deblur", photo, "-o", tmp_path / "out", "--method", "dps", "--kernel-size", 8, "--samples", 2,
                     "-q", "--image-prior", tiny_priors["image"], "--kernel-prior", prior, *TINY)
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "out" / "photo_config.json").read_text())["info"]
    assert network_calls and all(batch == 2 for _, batch in network_calls)
    assert sorted({c for c, _ in network_calls}) == ([1, 3] if kernel_prior == "tiny" else [3])
    assert info["nfe_per_image"] == len(network_calls)


@pytest.mark.parametrize("command, refine, refits", [("deblur", "auto", 1), ("turbulence", "auto", 0),
                                                     ("turbulence", 0.1, 1), ("deblur", None, 0)])
def test_the_refit_option_auto_is_the_tasks_choice_and_a_share_overrides_it(tmp_path, photo, tiny_priors, command,
                                                                          refine, refits):
    """prox.search_refine "auto" (the default): deblur refits its kernel, turbulence does not;
    a share given turns it on for turbulence too, None off; the saved config says which."""
    settings = _settings(tmp_path / "s.json", {"prox": {"search_decays": [1.1], "search_refine": refine}})
    result = _invoke(command, photo, "-o", tmp_path / "out", "--kernel-size", 8, "--prox-steps", 2, "-q",
                     "--image-prior", tiny_priors["image"], "--kernel-prior", tiny_priors["kernel"], *TINY,
                     "--config", settings)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "photo_config.json").read_text())
    assert len(record["info"].get("refine_mnc", [])) == refits
    assert record["config"]["prox"]["search_refine"] == (REFINE_AUTO[False] if refits else None)


@pytest.mark.parametrize("refine", [None, 0.1])
def test_reported_nfe_of_the_blind_proximal_sampler_counts_its_kernel_search(tmp_path, photo, tiny_priors,
                                                                             network_calls, refine):
    """Blind auto = the proximal sampler: per kernel search (one per lambda decay), one
    denoising call of the photo (one image, whatever the samples), then one call per step for
    both samples as one batch, and with the refit one more restoration per round; nfe_per_image
    counts them all, search_nfe all but the last restoration's, and no kernel-prior call is made."""
    # no consensus: no restoration again (tests/solvers/test_proximal.py has that)
    settings = _settings(tmp_path / "s.json", {"prox": {"search_consensus": None, "search_refine": refine,
                                                        "search_refine_rounds": 2}})
    result = _invoke("deblur", photo, "-o", tmp_path / "out", "--kernel-size", 8, "--samples", 2, "--prox-steps", 4,
                     "-q", "--image-prior", tiny_priors["image"], "--kernel-prior", tiny_priors["kernel"], *TINY,
                     "--config", settings)
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "out" / "photo_config.json").read_text())["info"]
    runs, refits = len(ProxSettings.search_decays), 0 if refine is None else 2
    assert network_calls == ([(3, 1)] + [(3, 2)] * 4) * runs + [(3, 2)] * 4 * refits
    assert info["method"] == "prox" and info["nfe_per_image"] == 5 * runs + 4 * refits
    assert info["search_nfe"] == runs + 4 * (runs - 1) + 4 * refits  # the searches, the restorations not last
    assert len(info.get("refine_mnc", [])) == refits


def test_simulate_refuses_to_overwrite_its_input(photo):
    before = photo.read_bytes()
    result = _invoke("simulate", photo, "-o", photo, "--kernel-size", 8)
    _one_error(result, "refusing to overwrite input file", 2)
    assert photo.read_bytes() == before


@pytest.mark.parametrize("settings, reason", [
    ({"prox": {"search_lambda_min": 0}}, "search_lambda_min must be positive"),
    ({"prox": {"search_fallback": 1.5}}, "search_fallback must be in [0, 1]"),
    ({"prox": {"search_decays": [1.1, 0.9]}}, "search_decays must be one or more values >= 1"),
    ({"prox": {"search_refine": 0}}, "search_refine must be"),
    ({"prox": {"search_refine_rounds": 0}}, "search_refine_rounds must be at least 1"),
    ({"dps": {"sampler": "euler"}}, "dps sampler must be"),
    ({"prox": {"no_such_setting": 1}}, "no_such_setting"),
    ([1, 2], "expected a JSON object"),
])
def test_bad_config_file_is_a_usage_error(tmp_path, photo, settings, reason):
    """A --config file with a setting out of range, an unknown field or no object: exit 2 with
    the file and the reason on one line, before any work."""
    path = _settings(tmp_path / "bad.json", settings)
    result = _invoke("deblur", photo, "-o", tmp_path / "out", "--config", path)
    assert result.exit_code == 2 and f"--config {path}" in result.output and reason in result.output
    assert not (tmp_path / "out").exists()


def test_missing_or_broken_config_file_is_a_usage_error(tmp_path, photo):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    for path in (tmp_path / "missing.json", broken):
        result = _invoke("deblur", photo, "-o", tmp_path / "out", "--config", path)
        assert result.exit_code == 2 and f"--config {path}" in result.output


def test_bad_option_value_is_a_usage_error(tmp_path, photo):
    result = _invoke("deblur", photo, "-o", tmp_path, "--method", "euler")
    assert result.exit_code == 2 and "Invalid value" in result.output


@pytest.mark.parametrize("command", ["deblur", "turbulence"])
def test_help_offers_at_most_twenty_options(command):
    result = _invoke(command, "--help")
    options = [line for line in result.output.splitlines() if line.startswith("  -")]
    assert result.exit_code == 0 and 10 <= len(options) <= 20, options


def test_config_of_an_output_repeats_the_run_and_options_override_it(tmp_path, photo, tiny_priors):
    """An output's <stem>_config.json given back with --config runs the same settings (the
    same record and the same restored file); an option typed beside it wins."""
    first, again, seeded = tmp_path / "first", tmp_path / "again", tmp_path / "seeded"
    settings = _settings(tmp_path / "s.json", {"prox": {"search_decays": [1.1], "search_refine": None}, "seed": 4})
    common = ("--image-prior", tiny_priors["image"], "--kernel-prior", tiny_priors["kernel"], "-q")
    result = _invoke("deblur", photo, "-o", first, "--kernel-size", 8, "--prox-steps", 2, "--config", settings,
                     "--device", "cpu", *common)
    assert result.exit_code == 0, result.output
    record = json.loads((first / "photo_config.json").read_text())
    assert record["config"]["seed"] == 4 and record["config"]["prox"]["search_decays"] == [1.1]
    result = _invoke("deblur", photo, "-o", again, "--config", first / "photo_config.json", *common)
    assert result.exit_code == 0, result.output
    repeated = json.loads((again / "photo_config.json").read_text())
    assert repeated["config"] == record["config"]
    assert (again / "photo_restored.png").read_bytes() == (first / "photo_restored.png").read_bytes()
    result = _invoke("deblur", photo, "-o", seeded, "--config", first / "photo_config.json", "--seed", 9, *common)
    assert result.exit_code == 0, result.output
    changed = json.loads((seeded / "photo_config.json").read_text())["config"]
    assert changed["seed"] == 9 and {**changed, "seed": 4} == record["config"]


@pytest.mark.parametrize("command", ["deblur", "turbulence", "simulate", "demo"])
def test_help_shows_an_example(command):
    result = _invoke(command, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.output and f"blinddps {command}" in result.output


def test_top_level_help_lists_the_commands():
    result = _invoke("--help")
    assert result.exit_code == 0
    for command in ("deblur", "turbulence", "simulate", "demo"):
        assert command in result.output


# --------------------------------------------------------------------------- the demo photo


def test_demo_scene_is_deterministic_and_natural_looking():
    from blinddps.demo_scene import demo_scene

    a, b = demo_scene(64), demo_scene(64)
    assert a.shape == (1, 3, 64, 64) and a.dtype == torch.float32 and torch.equal(a, b)
    assert 0 <= float(a.min()) and float(a.max()) <= 1
    assert float(a.std()) > 0.1, "a scene, not a flat field"
    sky, grass = a[0, :, 2, :].mean(1), a[0, :, -20, :].mean(1)
    assert sky[2] > sky[0] and grass[1] > grass[2], "blue sky above, green land below"


def test_demo_uses_the_astronaut_when_scikit_image_is_there(monkeypatch):
    import types

    from blinddps.demo_scene import sample_photo

    fake = types.ModuleType("skimage")
    fake.data = types.SimpleNamespace(astronaut=lambda: np.full((512, 400, 3), 128, np.uint8))
    monkeypatch.setitem(sys.modules, "skimage", fake)
    photo, source = sample_photo(48)
    assert photo.shape == (1, 3, 48, 48) and "astronaut" in source
    assert torch.allclose(photo, torch.full_like(photo, 128 / 255), atol=1e-3)


@pytest.mark.parametrize("prior,given,expected", [("kernel-32", None, 32), ("kernel-64", None, 64),
                                                  ("uniform", None, 64), ("kernel-32", 40, 40)])
def test_kernel_size_defaults_to_the_bundled_kernel_priors_size(prior, given, expected):
    """Without --kernel-size the unknown kernel has the size the bundled kernel prior was
    trained at (its JSON), so --kernel-prior kernel-32 alone runs a 32x32 kernel."""
    from blinddps.cli.restore import make_config
    config = make_config(device="cpu", autocast=False, quiet=True, kernel_prior=prior, kernel_size=given)
    assert config.kernel_size == expected


def test_python_api_kernel_size_follows_the_kernel_prior(tmp_path):
    """RestoreConfig(kernel_size=None) resolves to the kernel prior's training size for bundled
    names and for our own prior files (the JSON beside the weights), as the CLI does."""
    import shutil

    from blinddps.priors.bundle import BUNDLED_DIR, kernel_prior_size

    assert RestoreConfig(kernel_prior="kernel-32").resolved().kernel_size == 32
    assert RestoreConfig().resolved().kernel_size == 64
    assert RestoreConfig(kernel_prior="kernel-32", kernel_size=48).resolved().kernel_size == 48
    stem = tmp_path / "my-kernels"
    meta = json.loads((BUNDLED_DIR / "kernel-32.json").read_text())
    meta["unet"]["image_size"] = 16
    (stem.with_suffix(".json")).write_text(json.dumps(meta))
    shutil.copy(BUNDLED_DIR / "kernel-32.safetensors", stem.with_suffix(".safetensors"))
    assert kernel_prior_size(stem.with_suffix(".safetensors")) == 16
    assert RestoreConfig(kernel_prior=str(stem.with_suffix(".safetensors"))).resolved().kernel_size == 16
    assert kernel_prior_size("natural-rgb") == 64 and kernel_prior_size(tmp_path / "absent.pt") == 64


def test_a_photo_over_the_kernel_view_is_written_at_its_size_in_its_depth(tmp_path, tiny_priors):
    """A 16-bit grey photo of 100x80 with the kernel found on a 64 px view (--config): the
    restored file is 100x80, 16-bit grey, and the record says where the kernel was found."""
    photo = tmp_path / "grey16.png"
    Image.fromarray((_smooth(80, 100, 1, 3)[..., 0] * 65535).astype(np.uint16)).save(photo)
    settings = _settings(tmp_path / "view.json", {"kernel_view": 64, "prox": {"search_decays": [1.1],
                                                                               "search_refine": None}})
    result = _invoke("deblur", photo, "-o", tmp_path / "out", "--kernel-size", 8, "--prox-steps", 2, "--config",
                     settings, "--image-prior", tiny_priors["image"], "--device", "cpu", "-q")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out" / "grey16_restored.png") as restored:
        assert restored.size == (100, 80) and restored.mode == "I;16"
    info = json.loads((tmp_path / "out" / "grey16_config.json").read_text())["info"]
    assert info["kernel_view"] == [51, 64] and info["working_size"] == [80, 100]


def test_the_step_bar_follows_a_weighted_count_to_its_end():
    """The bar takes each StepInfo's count (step + 1 of num_steps), not one per call: a large
    photo's steps advance it by their weight, and the last one fills it."""
    from blinddps.cli.restore import StepBar
    from blinddps.solvers import StepInfo

    with StepBar(True, 5) as bar:
        for step in (0, 1, 2, 7, 12):  # three view steps, then two photo steps weighing 5 each
            bar(StepInfo(step, 13, 0, torch.zeros(1), {}))
            assert bar.bar.n == step + 1 and bar.bar.total == 13
