"""`blinddps deblur --kernel FILE`: non-blind deblurring from the command line.

In-process through click's CliRunner (the bundled natural-rgb prior is small: a few prox steps
on a 32x32 photo take well under a second).  What is checked: the outputs and their records
for a .npy and a grey PNG kernel, the counted network calls against the reported NFE, the
kernel written being the given one normalised, and the refusals of bad kernel files: exit
code 2, one line `error: --kernel FILE: reason`, no traceback, nothing written.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from blinddps.cli.main import cli
from blinddps.demo_scene import demo_scene
from blinddps.physics import Blur

KERNEL = np.array([[0, 0, 1, 0, 0],
                   [0, 2, 4, 0, 0],
                   [0, 0, 6, 3, 0],
                   [0, 0, 0, 5, 1],
                   [0, 0, 0, 0, 2]], dtype=np.float64)  # asymmetric, not normalised (sum 24)


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def photo(tmp_path) -> Path:
    """A 32x32 camera-like photo: the demo scene blurred by KERNEL with 'valid' borders."""
    scene = demo_scene(36).double()
    k = torch.from_numpy(KERNEL / KERNEL.sum())[None, None]
    blurry = Blur("valid", "direct")(scene, kernel=k)[0].permute(1, 2, 0).numpy()
    path = tmp_path / "photo.png"
    Image.fromarray((blurry * 255).round().clip(0, 255).astype(np.uint8)).save(path)
    return path


def _outputs(folder: Path, stem: str = "photo") -> dict:
    record = json.loads((folder / f"{stem}_config.json").read_text())
    return {"record": record, "kernel": np.load(folder / f"{stem}_kernel.npy")}


def _check_run(result, out: Path, expected_kernel: np.ndarray, calls, steps: int = 3) -> dict:
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    with Image.open(out / "photo_restored.png") as img:
        assert img.size == (32, 32) and img.mode == "RGB"
    assert (out / "photo_kernel.png").is_file()
    got = _outputs(out)
    k = got["kernel"]
    assert k.dtype == np.float32 and k.shape == expected_kernel.shape
    np.testing.assert_allclose(k, expected_kernel, rtol=0, atol=1e-7)
    assert abs(float(k.sum(dtype=np.float64)) - 1) < 1e-6
    config, info = got["record"]["config"], got["record"]["info"]
    assert config["method"] == "prox" and got["record"]["known_kernel"] is True
    assert config["prox"]["steps"] == steps and config["kernel_size"] == expected_kernel.shape[-1]
    assert info["method"] == "prox" and info["border"] == "valid" and info["grid"] == [36, 36]
    # the real network calls: one per step, batch 1, three channels (no kernel prior loaded)
    assert calls == [(3, 1)] * steps and info["nfe_per_image"] == steps
    return got


def test_npy_kernel_writes_the_outputs_and_the_given_kernel_normalised(tmp_path, photo, network_calls):
    np.save(tmp_path / "k.npy", KERNEL * 3.0)
    out = tmp_path / "out"
    result = _invoke("deblur", photo, "-o", out, "--kernel", tmp_path / "k.npy", "--prox-steps", 3,
                     "--device", "cpu", "-q")
    got = _check_run(result, out, (KERNEL / KERNEL.sum()).astype(np.float32), network_calls)
    assert sorted(p.name for p in out.iterdir()) == ["photo_config.json", "photo_kernel.npy", "photo_kernel.png",
                                                     "photo_restored.png"]
    assert got["record"]["command"] == "deblur"


def test_known_kernel_gets_no_rounding_note(tmp_path, photo):
    np.save(tmp_path / "k.npy", KERNEL)
    out = tmp_path / "out"
    result = _invoke("deblur", photo, "-o", out, "--kernel", tmp_path / "k.npy", "--prox-steps", 2,
                     "--device", "cpu")
    assert result.exit_code == 0, result.output
    notes = _outputs(out)["record"]["notes"]
    assert not any("rounded up" in n for n in notes), notes
    assert "rounded up" not in result.output


@pytest.mark.parametrize("mode", ["L", "I;16", "RGB"])
def test_grey_png_kernel_works_the_same(tmp_path, photo, network_calls, mode):
    """A kernel drawn as an image (scaled by its maximum, as `_kernel.png` files are): read
    as grey (colour averaged), normalised to sum 1."""
    if mode == "I;16":
        levels = np.round(KERNEL / KERNEL.max() * 65535).astype(np.uint16)
        Image.fromarray(levels).save(tmp_path / "k.png")
        expected = levels / levels.sum(dtype=np.float64)
    else:
        levels = np.round(KERNEL / KERNEL.max() * 255).astype(np.uint8)
        grey = Image.fromarray(levels)
        (grey if mode == "L" else grey.convert("RGB")).save(tmp_path / "k.png")
        expected = levels / levels.sum(dtype=np.float64)
    out = tmp_path / "out"
    result = _invoke("deblur", photo, "-o", out, "--kernel", tmp_path / "k.png", "--prox-steps", 3,
                     "--device", "cpu", "-q")
    _check_run(result, out, expected.astype(np.float32), network_calls)


def _bad_kernel_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, fragment of the reason)."""
    files = {}
    np.save(folder / "negative.npy", KERNEL - 1)
    files["negative"] = (folder / "negative.npy", "negative values")
    np.save(folder / "cube.npy", np.ones((3, 5, 5)))
    files["3-D"] = (folder / "cube.npy", "a kernel must be a 2-D array (K, K), got shape (3, 5, 5)")
    bad = KERNEL.copy()
    bad[2, 2] = np.nan
    np.save(folder / "nan.npy", bad)
    files["nan"] = (folder / "nan.npy", "NaN or Inf")
    np.save(folder / "zeros.npy", np.zeros((5, 5)))
    files["zeros"] = (folder / "zeros.npy", "all zeros")
    Image.new("L", (5, 5), 0).save(folder / "black.png")
    files["black-png"] = (folder / "black.png", "all zeros")
    (folder / "text.png").write_text("not a picture at all\n")
    files["text-as-png"] = (folder / "text.png", "not an image file")
    files["missing-npy"] = (folder / "missing.npy", "No such file")
    files["missing-png"] = (folder / "missing.png", "no such file")
    np.save(folder / "object.npy", np.array([[{"a": 1}, None]], dtype=object), allow_pickle=True)
    files["object-dtype"] = (folder / "object.npy", "allow_pickle")
    np.save(folder / "strings.npy", np.array([["a", "b"], ["c", "d"]]))
    files["string-dtype"] = (folder / "strings.npy", "expected a numeric array")
    (folder / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    files["corrupt-npy"] = (folder / "garbage.npy", "")
    return files


BAD = ["negative", "3-D", "nan", "zeros", "black-png", "text-as-png", "missing-npy", "missing-png", "object-dtype",
       "string-dtype", "corrupt-npy"]


@pytest.mark.parametrize("case", BAD)
def test_bad_kernel_file_is_one_line_exit_2_and_writes_nothing(tmp_path, photo, case):
    path, fragment = _bad_kernel_files(tmp_path)[case]
    out = tmp_path / "out"
    result = _invoke("deblur", photo, "-o", out, "--kernel", path, "--prox-steps", 2, "--device", "cpu")
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: --kernel {path}: "), lines[0]
    assert fragment in lines[0], lines[0]
    assert not out.exists() or not list(out.iterdir()), "nothing is written for a bad kernel file"


def test_kernel_larger_than_the_photo_fails_the_photo(tmp_path, photo):
    """The kernel file is fine, the photo too small for it: that photo fails (exit 1), one
    line naming it, no outputs for it."""
    np.save(tmp_path / "big.npy", np.ones((41, 41)))
    out = tmp_path / "out"
    result = _invoke("deblur", photo, "-o", out, "--kernel", tmp_path / "big.npy", "--prox-steps", 2,
                     "--device", "cpu", "-q")
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {photo}: the kernel (41, 41) is larger than the image (32, 32)"], result.stderr
    assert not list(out.glob("photo_*"))


def test_known_kernel_with_dps_and_circular_border_options(tmp_path, photo, tiny_priors):
    """--method dps with --kernel: the non-blind DPS path, the given kernel written back;
    a circular border (from --config) on a size the network does not accept: the photo fails with a reason."""
    np.save(tmp_path / "k.npy", KERNEL)
    out = tmp_path / "dps"
    result = _invoke("deblur", photo, "-o", out, "--kernel", tmp_path / "k.npy", "--method", "dps", "--steps", 2,
                     "--image-prior", tiny_priors["image"], "--kernel-prior", tiny_priors["kernel"],
                     "--device", "cpu", "-q")
    assert result.exit_code == 0, result.output
    got = _outputs(out)
    assert got["record"]["config"]["method"] == "dps" and got["record"]["known_kernel"] is True
    np.testing.assert_allclose(got["kernel"], (KERNEL / KERNEL.sum()).astype(np.float32), rtol=0, atol=1e-7)

    odd = tmp_path / "odd.png"
    Image.open(photo).crop((0, 0, 30, 30)).save(odd)
    circular = tmp_path / "circular.json"
    circular.write_text(json.dumps({"prox": {"border": "circular"}}))
    result = _invoke("deblur", odd, "-o", tmp_path / "circ", "--kernel", tmp_path / "k.npy", "--config", circular,
                     "--prox-steps", 2, "--device", "cpu", "-q")
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {odd}: ") and "divisible by 4" in errors[0], errors
