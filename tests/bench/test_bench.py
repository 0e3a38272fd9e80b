"""Benchmark runner: an end-to-end tiny run, caching/resume, seeded measurements, sharding, Levin."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from blinddps.bench import BenchConfig, list_cases, load_measurement, run_benchmark, shard
from blinddps.bench.cache import ResultCache
from blinddps.physics import Blur, pad_kernel_to
from blinddps.tasks.config import REFINE_AUTO, ProxSettings
from toy_priors import count_adm_calls

METHODS = ("blinddps", "blurry", "dps-oracle", "pan-l0")


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory) -> Path:
    """Two tiny photos: one RGB, one grey (48x40, cropped to 32 by the runs)."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:48]
    smooth = (0.5 + 0.4 * np.sin(xx / 5.0) * np.cos(yy / 7.0))[..., None]
    rgb = np.clip(smooth * np.array([1.0, 0.8, 0.6]) + 0.05 * rng.standard_normal((40, 48, 3)), 0, 1)
    Image.fromarray((rgb * 255).astype(np.uint8)).save(folder / "a.png")
    Image.fromarray((smooth[..., 0] * 255).astype(np.uint8), mode="L").save(folder / "b.png")
    return folder


def tiny_config(image_dir, out, tiny_priors, **changes) -> BenchConfig:
    settings = dict(images=str(image_dir), out=str(out), task="motion", methods=METHODS, steps=3, crop=32,
                    kernel_size=8, image_prior=tiny_priors["image"], kernel_prior=tiny_priors["kernel"], seed=1)
    return BenchConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def first_run_and_calls(image_dir, tiny_priors, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    torch.set_num_threads(1)
    config = tiny_config(image_dir, out, tiny_priors)
    with pytest.MonkeyPatch.context() as patch:
        calls = count_adm_calls(patch)
        result = run_benchmark(config, command="pytest tiny run")
    return config, result, calls


@pytest.fixture(scope="module")
def first_run(first_run_and_calls):
    return first_run_and_calls[:2]


def _recomputed_metrics(config, method: str, case) -> dict[str, float]:
    """The metrics of a row, recomputed from the method's CACHED image and kernel against the
    case's truth: the report must describe the outputs it kept, for the right case."""
    from blinddps.bench.evaluate import evaluate
    from blinddps.bench.methods import MethodOutput

    cache = ResultCache(Path(config.out) / "cache")
    output = MethodOutput(image=cache.image(method, case), kernel=cache.kernel(method, case))
    return evaluate(load_measurement(case, config), output, config)


def test_end_to_end_writes_every_row_and_summary(first_run_and_calls):
    config, result, calls = first_run_and_calls
    out = Path(config.out)
    with open(out / "per_image.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["method"], r["image"]) for r in rows} == {(m, i) for m in METHODS for i in ("a", "b")}
    assert len(rows) == 8 and result.computed == 8 and result.cached == 0
    by = {(r["method"], r["image"]): r for r in rows}
    for case in list_cases(config):
        for method in ("blinddps", "pan-l0", "dps-oracle"):
            row, again = by[method, case.name], _recomputed_metrics(config, method, case)
            # (the cached image is 16-bit: PSNR and SSIM move in the 4th-6th digit at most)
            assert float(row["psnr"]) == pytest.approx(again["psnr"], abs=1e-2), (method, case.name)
            assert float(row["ssim"]) == pytest.approx(again["ssim"], abs=1e-4), (method, case.name)
            for key in ("kernel_mnc", "kernel_mse", "error_ratio"):
                assert float(row[key]) == pytest.approx(again[key], rel=1e-5, abs=1e-12), (method, case.name, key)
    # The oracle is handed the true kernel: perfect kernel scores.
    assert float(by["dps-oracle", "a"]["kernel_mnc"]) == pytest.approx(1.0, abs=1e-6)
    # NFE: the network calls counted during the run, every call on one image: BlindDPS 3 steps
    # x (image + kernel network), the oracle 3 x image, the others none.
    assert all(batch == 1 for _, batch in calls)
    assert sum(int(r["nfe"]) for r in rows) == len(calls) == 2 * (6 + 3)
    assert sum(int(by["blinddps", i]["nfe"]) for i in ("a", "b")) == 2 * sum(c == 1 for c, _ in calls)
    assert int(by["pan-l0", "a"]["nfe"]) == int(by["blurry", "a"]["nfe"]) == 0
    assert int(by["pan-l0", "b"]["kernel_size"]) == 9 and int(by["blinddps", "b"]["kernel_size"]) == 8
    assert by["blurry", "b"]["channels"] == "1" and by["blurry", "a"]["channels"] == "3"
    summary = (out / "summary.md").read_text()
    for m in METHODS:
        assert f"| {m} | 2 |" in summary
    assert "git commit" in summary and "pytest tiny run" in summary and "steps: 3" in summary
    assert "Not reported: LPIPS" in summary and "data range 1" in summary
    data = json.loads((out / "summary.json").read_text())
    assert set(data["methods"]) == set(METHODS) and data["methods"]["blurry"]["n"] == 2
    assert Image.open(out / "figure.png").size[0] > 5 * 32
    assert json.loads((out / "bench_config.json").read_text())["steps"] == 3


def test_blurry_row_matches_the_measurement(first_run):
    config, _ = first_run
    cache = ResultCache(Path(config.out) / "cache")
    case = list_cases(config)[0]
    m = load_measurement(case, config)
    torch.testing.assert_close(cache.image("blurry", case), m.y, atol=1e-4, rtol=0)
    record = json.loads(cache.record_path("blurry", case).read_text())
    assert record["metrics"]["psnr"] == pytest.approx(
        float(-10 * torch.log10(((m.y.double() - m.sharp.double()) ** 2).mean())), abs=1e-6)


def test_rerun_uses_the_cache(first_run):
    config, _ = first_run
    cache_files = sorted((Path(config.out) / "cache").rglob("*"))
    mtimes = [p.stat().st_mtime_ns for p in cache_files]
    again = run_benchmark(config, command="again")
    assert again.computed == 0 and again.cached == 8
    assert [p.stat().st_mtime_ns for p in cache_files] == mtimes
    assert again.rows == first_run[1].rows


def test_changed_steps_recomputes_only_the_diffusion_methods(first_run, tmp_path):
    config, _ = first_run
    import shutil
    out = tmp_path / "copy"
    shutil.copytree(config.out, out)
    changed = config.replace(out=str(out), steps=2)
    result = run_benchmark(changed)
    assert result.computed == 4 and result.cached == 4  # blinddps + dps-oracle rerun, 2 images each


def test_measurement_is_seeded_per_image(image_dir, tiny_priors, tmp_path):
    config = tiny_config(image_dir, tmp_path, tiny_priors)
    cases = list_cases(config)
    one, two = load_measurement(cases[1], config), load_measurement(cases[1], config)
    assert torch.equal(one.y, two.y) and torch.equal(one.kernel, two.kernel)
    assert one.y.shape == (1, 1, 32, 32) and one.kernel.shape == (8, 8)
    torch.testing.assert_close(one.kernel.sum(), torch.tensor(1.0))
    other_seed = load_measurement(cases[1], config.replace(seed=2))
    assert not torch.equal(other_seed.kernel, one.kernel)
    # The measurement of image i does not depend on which other images are in the run.
    assert torch.equal(load_measurement(cases[1], config.replace(limit=2)).y, one.y)


def test_kernels_file_gives_kernel_j_to_image_j(image_dir, tiny_priors, tmp_path):
    kernels = np.random.default_rng(0).random((3, 7, 7)).astype(np.float32)
    np.savez(tmp_path / "k.npz", kernels=kernels)
    config = tiny_config(image_dir, tmp_path, tiny_priors, kernels=str(tmp_path / "k.npz"), noise=0.0)
    m = load_measurement(list_cases(config)[1], config)
    torch.testing.assert_close(m.kernel, torch.from_numpy(kernels[1] / kernels[1].sum()))
    torch.testing.assert_close(m.y, Blur("reflect")(m.sharp, kernel=m.kernel).clamp(0, 1))


def test_shard_splits_disjointly_and_covers_everything():
    items = list(range(11))
    parts = [shard(items, r, 3) for r in range(3)]
    assert sorted(sum(parts, [])) == items
    assert all(not set(a) & set(b) for i, a in enumerate(parts) for b in parts[i + 1:])
    assert parts[1] == [1, 4, 7, 10]
    with pytest.raises(ValueError):
        shard(items, 3, 3)


def test_two_shards_merge_to_the_full_result(image_dir, tiny_priors, tmp_path):
    config = tiny_config(image_dir, tmp_path, tiny_priors, methods=("blurry",))
    with pytest.raises(RuntimeError, match="missing"):
        run_benchmark(config, rank=0, world_size=2)  # rank 1's share is not there yet
    rank1 = run_benchmark(config, rank=1, world_size=2)
    assert rank1.summary is None and rank1.computed == 1 and rank1.cached == 0
    rank0 = run_benchmark(config, rank=0, world_size=2)
    assert rank0.computed == 0 and rank0.cached == 1  # its share was finished by the failed try
    assert sorted(r["image"] for r in rank0.rows) == ["a", "b"]
    assert (tmp_path / "summary.md").is_file() and (tmp_path / "figure.png").is_file()


def test_cli_reports_bad_input_in_one_line(image_dir, tmp_path):
    from click.testing import CliRunner

    from blinddps.cli.main import cli

    runner = CliRunner()
    bad = runner.invoke(cli, ["bench", "--images", str(image_dir), "--methods", "blinddps,magic", "-o", str(tmp_path)])
    assert bad.exit_code == 2 and "unknown method(s) magic" in bad.output and "Traceback" not in bad.output
    missing = runner.invoke(cli, ["bench", "--images", str(tmp_path / "nope"), "-o", str(tmp_path / "o")])
    assert missing.exit_code == 2 and "no image folder" in missing.output
    ok = runner.invoke(cli, ["bench", "--images", str(image_dir), "--methods", "Blurry", "--crop", "32",
                             "--kernel-size", "8", "--task", "gaussian", "-q", "-o", str(tmp_path / "g")])
    assert ok.exit_code == 0, ok.output
    assert "| blurry | 2 |" in (tmp_path / "g" / "summary.md").read_text()


def test_levin_cases_and_measurements(levin_dir, tmp_path):
    config = BenchConfig(images=str(levin_dir), out=str(tmp_path), task="levin")
    cases = list_cases(config)
    assert len(cases) == 32 and cases[0].name == "im_1_ker_1" and cases[-1].name == "im_4_ker_8"
    sizes = {13, 15, 17, 19, 21, 23, 27}
    for case in cases[:8]:
        m = load_measurement(case, config)
        k = m.kernel.shape[-1]
        assert m.sharp.shape == m.y.shape == (1, 1, 255, 255) and k in sizes and m.kernel.shape == (k, k)
        assert m.blind_kernel_size == 64 and m.border == k // 2
    # Levin's files are circular convolutions; the 64 support padding keeps the blur.
    m = load_measurement(cases[3], config)
    padded = pad_kernel_to(m.kernel, 64)
    err = (Blur("circular")(m.sharp, kernel=padded) - m.y).abs().mean()
    assert err < 1 / 255


@pytest.mark.slow
def test_torchrun_two_processes(image_dir, tmp_path):
    """A real `torchrun --nproc-per-node 2` run on CPU (gloo barrier, rank 0 merges): 6 to 15 s
    on 2 busy cores, so marked slow."""
    out = tmp_path / "dist"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "blinddps", "bench",
           "--images", str(image_dir), "--methods", "blurry", "--crop", "32", "--kernel-size", "8", "-o", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "rank 0:" in proc.stderr and "rank 1:" in proc.stderr
    with open(out / "per_image.csv") as fh:
        assert sorted(r["image"] for r in csv.DictReader(fh)) == ["a", "b"]


def test_cache_key_follows_the_priors_content_and_solver_defaults(tmp_path, tiny_priors):
    """A retrained prior under the same name (or a changed solver default) must not reuse
    results cached with the old one."""
    import shutil

    for suffix in (".safetensors", ".json"):
        shutil.copy(tiny_priors["image"].replace(".safetensors", suffix), tmp_path / f"img{suffix}")
    config = tiny_config(tmp_path, tmp_path / "out", tiny_priors, image_prior=str(tmp_path / "img.safetensors"))
    before = config.method_settings("blinddps")
    assert config.method_settings("blinddps") == before  # deterministic
    with open(tmp_path / "img.safetensors", "r+b") as fh:  # change one byte of the weights
        fh.seek(-1, 2)
        last = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([last[0] ^ 1]))
    after = config.method_settings("blinddps")
    assert after["image_prior"] != before["image_prior"] and after["kernel_prior"] == before["kernel_prior"]
    assert before["solver"]["kernel_centring"] == 0.1 and before["solver"]["zeta"] == 500 / config.steps
    assert config.method_settings("blurry") == {}


def test_levin_summary_reports_success_rates_and_the_median_ratio():
    from blinddps.bench.report import METRICS, summarise

    rows = [{"method": "m", **dict.fromkeys(METRICS, 1.0), "error_ratio": r, "seconds": 1.0, "nfe": 0}
            for r in (1.5, 2.5, 1000.0)]
    stats = summarise(rows, ("m",), levin=True)["m"]
    assert stats["success"] == {"<=2": pytest.approx(1 / 3), "<=3": pytest.approx(2 / 3)}
    assert stats["error_ratio_median"] == 2.5  # the mean (334.7) is one failure's
    assert stats["error_ratio"]["mean"] == pytest.approx(1004 / 3)
    assert "error_ratio_median" not in summarise(rows, ("m",), levin=False)["m"]


def test_aligned_psnr_forgives_a_translation_and_nothing_else():
    from blinddps.bench.data import Case, Measurement
    from blinddps.bench.evaluate import aligned_psnr
    from blinddps.metrics import psnr

    g = torch.Generator().manual_seed(0)
    sharp = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 72, 72, generator=g), 3, 1, 1)
    kernel = torch.zeros(9, 9)
    kernel[4, 4] = 1.0
    m = Measurement(Case(0, "c", None), sharp, sharp, kernel, 9, 0)
    shifted = torch.roll(sharp, (2, -3), dims=(-2, -1))  # within the +-4 px allowed for K = 9
    assert psnr(shifted, sharp).item() < 30 and aligned_psnr(m, shifted) > 100
    noisy = (sharp + 0.01 * torch.randn(sharp.shape, generator=g)).clamp(0, 1)
    assert abs(aligned_psnr(m, noisy) - psnr(noisy[..., 4:-4, 4:-4], sharp[..., 4:-4, 4:-4]).item()) < 0.3
    far = torch.roll(sharp, (0, 8), dims=(-2, -1))  # beyond the bound: not forgiven
    assert aligned_psnr(m, far) < 30


def test_turbulence_end_to_end(image_dir, tiny_priors, tmp_path, network_calls):
    """The turbulence task (tilt + Gaussian blur, the project's simulation): every method runs,
    the reports are written, and the blurry row's PSNR is the measurement's."""
    from blinddps.metrics import psnr

    methods = ("blinddps", "dps-oracle", "pan-l0", "blurry")
    config = tiny_config(image_dir, tmp_path, tiny_priors, task="turbulence", methods=methods,
                         tilt_prior=tiny_priors["tilt"])
    result = run_benchmark(config, command="pytest turbulence")
    assert result.computed == 8 and result.cached == 0
    with open(tmp_path / "per_image.csv") as fh:
        rows = {(r["method"], r["image"]): r for r in csv.DictReader(fh)}
    assert set(rows) == {(m, i) for m in methods for i in ("a", "b")}
    for case in list_cases(config):
        m = load_measurement(case, config)
        assert m.tilt is not None and m.tilt.shape == (2, 32, 32) and m.kernel.shape == (8, 8)
        assert float(rows["blurry", case.name]["psnr"]) == pytest.approx(float(psnr(m.y.double(), m.sharp.double())[0]),
                                                                          abs=1e-4)
    # NFE: the calls counted, each on one image: BlindDPS 3 steps x (image, kernel, tilt
    # networks: 3, 1 and 2 input channels), the oracle 3 x image.
    assert all(batch == 1 for _, batch in network_calls)
    assert sum(int(r["nfe"]) for r in rows.values()) == len(network_calls)
    assert sorted(c for c, _ in network_calls) == [1] * 6 + [2] * 6 + [3] * 12
    assert float(rows["dps-oracle", "a"]["kernel_mnc"]) == pytest.approx(1.0, abs=1e-6)
    summary = (tmp_path / "summary.md").read_text()
    assert "Benchmark: turbulence" in summary and "turbulence simulation" in summary and "ignore the tilt" in summary
    assert all(f"| {m} | 2 |" in summary for m in methods)
    assert (tmp_path / "summary.json").is_file() and (tmp_path / "figure.png").is_file()
    settings = config.method_settings("blinddps")
    assert settings["tilt_prior"].startswith(tiny_priors["tilt"]) and "zeta_tilt" in settings["solver"]
    assert "tilt_prior" not in config.method_settings("dps-oracle")


@pytest.mark.parametrize("task, options", [("motion", ()), ("turbulence", ()),
                                           ("turbulence", ("prox_search_refine=0.1",))])
def test_the_prox_row_runs_what_its_cache_key_says(image_dir, tiny_priors, tmp_path, task, options):
    """The prox row deblurs turbulence photos too (blind deblurring of the displaced photo),
    but with turbulence's own defaults: the kernel refit runs exactly when the key has it."""
    from blinddps.bench.methods import load_priors, run_method

    torch.set_num_threads(1)
    config = tiny_config(image_dir, tmp_path, tiny_priors, task=task, methods=("prox",), limit=1,
                         prox_options=("prox_steps=2", "prox_search_decays=1.1", *options))
    m = load_measurement(list_cases(config)[0], config)
    out = run_method("prox", m, config, load_priors(config))
    keyed = "refine" in config.method_settings("prox")["search"]
    assert keyed == (task == "motion" or bool(options))
    assert ("refine_mnc" in out.info) == keyed


def test_turbulence_measurement_is_reproducible(image_dir, tiny_priors, tmp_path):
    config = tiny_config(image_dir, tmp_path, tiny_priors, task="turbulence")
    cases = list_cases(config)
    one, two = load_measurement(cases[0], config), load_measurement(cases[0], config)
    assert torch.equal(one.y, two.y) and torch.equal(one.tilt, two.tilt) and torch.equal(one.kernel, two.kernel)
    assert one.tilt.abs().max() > 0 and one.tilt.abs().max() <= 2.5 + 1e-6
    torch.testing.assert_close(one.kernel.sum(), torch.tensor(1.0))
    other = load_measurement(cases[1], config)
    assert not torch.equal(other.tilt, one.tilt)
    assert not torch.equal(load_measurement(cases[0], config.replace(seed=2)).tilt, one.tilt)
    # the noise-free measurement is the operator applied with the kept kernel and tilt
    from blinddps.physics import Turbulence

    clean = load_measurement(cases[0], config.replace(noise=0.0))
    expected = Turbulence("reflect")(clean.sharp, kernel=clean.kernel[None, None], tilt=clean.tilt[None]).clamp(0, 1)
    torch.testing.assert_close(clean.y, expected)
    assert config.measurement_settings()["gaussian_std"] == 3.0 and config.noise_std == 0.01


def test_existing_tasks_measurement_settings_are_unchanged(image_dir, tiny_priors, tmp_path):
    """Cached results of the other tasks stay valid: their settings dicts keep their keys."""
    motion = tiny_config(image_dir, tmp_path, tiny_priors)
    assert set(motion.measurement_settings()) == {"task", "images", "crop", "kernel_size", "noise_std", "kernels",
                                                  "padding", "seed", "intensity"}
    gaussian = tiny_config(image_dir, tmp_path, tiny_priors, task="gaussian")
    assert set(gaussian.measurement_settings()) == {"task", "images", "crop", "kernel_size", "noise_std", "kernels",
                                                    "padding", "seed", "gaussian_std"}
    assert "tilt_prior" not in motion.method_settings("blinddps")
    assert set(motion.method_settings("blinddps")["solver"]) == {"sampler", "step_size", "zeta", "zeta_kernel",
                                                                 "kernel_sparsity", "kernel_centring"}
    assert load_measurement(list_cases(motion)[0], motion).tilt is None


def test_cli_turbulence_task(image_dir, tiny_priors, tmp_path):
    from click.testing import CliRunner

    from blinddps.cli.main import cli

    ok = CliRunner().invoke(cli, ["bench", "--images", str(image_dir), "--task", "turbulence", "--methods", "blurry",
                                  "--crop", "32", "--kernel-size", "8", "--tilt-prior", tiny_priors["tilt"], "-q",
                                  "-o", str(tmp_path / "t")])
    assert ok.exit_code == 0, ok.output
    data = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert data["config"]["task"] == "turbulence" and data["config"]["tilt_prior"] == tiny_priors["tilt"]
    assert data["config"]["noise_std"] == 0.01


def test_levin_summary_reports_the_quarter_pixel_error_ratios_beside_the_integer_ones(tmp_path):
    from blinddps.bench.report import METRICS, summarise, summary_markdown

    rows = [{"method": "prox", **dict.fromkeys(METRICS, 1.0), "error_ratio": r, "error_ratio_quarter": q,
             "seconds": 1.0, "nfe": 0} for r, q in ((1.5, 1.1), (2.5, 1.9), (1000.0, 3.5))]
    stats = summarise(rows, ("prox",), levin=True)["prox"]
    assert stats["success"] == {"<=2": pytest.approx(1 / 3), "<=3": pytest.approx(2 / 3)}
    assert stats["success_quarter"] == {"<=2": pytest.approx(2 / 3), "<=3": pytest.approx(2 / 3)}
    assert (stats["error_ratio_median"], stats["error_ratio_median_quarter"]) == (2.5, 1.9)
    header = {"command": "c", "git_commit": "g", "date": "d", "steps": 1, "machine": {}}
    table = summary_markdown({"prox": stats}, header, BenchConfig(images="levin09", out=str(tmp_path), task="levin"))
    head = next(line for line in table.splitlines() if line.startswith("| method"))
    assert head.endswith("| median error ratio | success r<=2 (1/4 px) | success r<=3 (1/4 px) "
                         "| median error ratio (1/4 px) |")
    assert "| 67% | 67% | 1.90 |" in table


def test_quarter_pixel_error_ratio_forgives_a_kernel_half_a_pixel_off():
    """A kernel off its true position by half a pixel deconvolves to the image half a pixel off:
    Levin's 1/4-px alignment forgives that, the integer alignment charges it as error."""
    from blinddps.bench.data import Case, Measurement
    from blinddps.bench.evaluate import kernel_error_ratios
    from blinddps.physics import Blur

    def gaussian(cy: float, cx: float) -> torch.Tensor:
        r = torch.arange(15, dtype=torch.float64)
        k = torch.exp(-((r[:, None] - cy) ** 2 + (r[None, :] - cx) ** 2) / (2 * 1.5**2))
        return (k / k.sum()).float()

    g = torch.Generator().manual_seed(0)
    blocks = torch.rand(1, 1, 12, 12, generator=g)  # sharp edges: what a half-pixel shift costs
    sharp = torch.nn.functional.interpolate(blocks, scale_factor=8, mode="nearest")
    truth = gaussian(7.0, 7.0)
    y = Blur("circular")(sharp, kernel=truth[None, None])
    m = Measurement(Case(0, "c", None), sharp, y, truth, 15, 7)
    config = BenchConfig(images="levin09", out="unused", task="levin")
    exact = kernel_error_ratios(m, truth, config)
    assert exact == {"error_ratio": pytest.approx(1.0, abs=1e-6), "error_ratio_quarter": pytest.approx(1.0, abs=1e-6)}
    half = kernel_error_ratios(m, gaussian(7.5, 7.0), config)
    integer, quarter = half["error_ratio"], half["error_ratio_quarter"]
    assert quarter < 1.3 and integer > 2 * quarter, (integer, quarter)


def test_prox_options_reach_the_prox_rows_and_their_cache_key(tmp_path, tiny_priors):
    """--prox NAME=VALUE: typed by the setting's default, applied to the proximal rows' config,
    part of their cache key (a refit run must not reuse a plain run's kernels), and so is the
    search prior (its content), unless it is the image prior ("")."""
    from blinddps.bench.config import parse_prox_option

    assert parse_prox_option("prox-search-refit=true") == ("prox_search_refit", True)
    assert parse_prox_option("prox_search_lambda=6") == ("prox_search_lambda", 6.0)
    assert parse_prox_option("prox_search_trust=0.9") == ("prox_search_trust", 0.9)  # off (None) by default
    assert parse_prox_option("prox_search_trust=none") == ("prox_search_trust", None)
    assert parse_prox_option("prox_search_decays=1.1,1.032") == ("prox_search_decays", (1.1, 1.032))
    for bad in ("border=circular", "prox_search_refit", "prox_search_refit=maybe", "prox_steps=two", "zeta=1",
                "prox_search_trust=high", "prox_search_decays=1.1,fast", "prox_search_decays=1.1,0.5"):
        with pytest.raises(ValueError, match="--prox"):
            parse_prox_option(bad)
    plain = tiny_config(tmp_path, tmp_path / "out", tiny_priors)
    refit = plain.replace(prox_options=("prox-search-refit=true",))
    assert refit.restore_config().prox.search_refit and not plain.restore_config().prox.search_refit
    assert refit.method_settings("prox")["search"]["refit"] is True
    assert refit.method_settings("prox") != plain.method_settings("prox")
    assert refit.method_settings("prox-oracle") == plain.method_settings("prox-oracle")  # no search there
    assert plain.method_settings("prox")["search"]["prior"].startswith("natural-rgb-3@")  # the product's
    assert "prior" not in plain.replace(search_prior="").method_settings("prox")["search"]  # = the image prior's
    paired = plain.replace(search_prior=tiny_priors["image"])
    assert paired.method_settings("prox")["search"]["prior"].startswith(tiny_priors["image"])
    assert paired.restore_config().prox.search_prior == tiny_priors["image"]
    # the views' trust decides the blind row's lambda: in the key while it can act
    assert "trust" not in plain.method_settings("prox")["search"] and ProxSettings.search_trust is None
    trusting = plain.replace(prox_options=("prox_search_trust=0.85",))
    assert trusting.method_settings("prox")["search"]["trust"] == 0.85
    one_view = plain.replace(prox_options=("prox_search_trust=0.85", "prox_search_views=1"))
    assert "trust" not in one_view.method_settings("prox")["search"]
    # several decays: several searches and the best-fitting restoration kept, another row
    decays = plain.replace(prox_options=("prox_search_decays=1.1,1.032",))
    assert decays.method_settings("prox")["search"]["decays"] == [1.1, 1.032]
    assert ("decays" in plain.method_settings("prox")["search"]) == (len(ProxSettings.search_decays) > 1)
    # the floor of Pan's lambdas in large kernels' searches is in the key (every search field is)
    floor = plain.replace(prox_options=("prox_search_lambda_min=0.002",))
    assert floor.method_settings("prox")["search"]["large_lambda_min"] == 0.002
    assert plain.method_settings("prox")["search"]["large_lambda_min"] == ProxSettings.search_lambda_min
    # the fallback to Pan's floor when the views disagree: in the key (two views by default)
    assert plain.method_settings("prox")["search"]["fallback"] == ProxSettings.search_fallback > 0
    no_fallback = plain.replace(prox_options=("prox_search_fallback=0",))
    assert "fallback" not in no_fallback.method_settings("prox")["search"]
    # and the fallback's decays, while the fallback can act
    assert plain.method_settings("prox")["search"]["fallback_decays"] == list(ProxSettings.search_fallback_decays)
    three = plain.replace(prox_options=("prox_search_fallback_decays=1.1,1.032,1.05",))
    assert three.method_settings("prox")["search"]["fallback_decays"] == [1.1, 1.032, 1.05]
    assert "fallback_decays" not in no_fallback.method_settings("prox")["search"]
    # the consensus' lambda rule: in the key while it can act (several decays)
    assert parse_prox_option("prox_search_consensus=none") == ("prox_search_consensus", None)
    agreed = plain.replace(prox_options=("prox_search_consensus=0.8", "prox_search_consensus_lambda=6"))
    assert agreed.method_settings("prox")["search"]["consensus"] == [0.8, 6.0]
    assert "consensus" not in plain.replace(prox_options=("prox_search_consensus=none",)).method_settings(
        "prox")["search"]
    assert "consensus" not in plain.replace(prox_options=("prox_search_consensus=0.8", "prox_search_decays=1.1")
                                            ).method_settings("prox")["search"]
    # the kernel's refit to its restoration: in the key while on, none leaves the key as it was
    refit = plain.replace(prox_options=("prox_search_refine=0.2", "prox_search_refine_iters=30",
                                        "prox_search_refine_rounds=2"))
    assert refit.method_settings("prox")["search"]["refine"] == [0.2, 30, 2]
    assert "refine" not in plain.replace(prox_options=("prox_search_refine=none",)).method_settings("prox")["search"]
    # auto: the task's choice (REFINE_AUTO) in the key, so turbulence keeps its keys from before the refit
    assert plain.method_settings("prox")["search"]["refine"] == [REFINE_AUTO[False], ProxSettings.search_refine_iters,
                                                                 ProxSettings.search_refine_rounds]
    turbulence = plain.replace(task="turbulence")
    assert "refine" not in turbulence.method_settings("prox")["search"]
    assert "refine" in turbulence.replace(prox_options=("prox_search_refine=0.1",)).method_settings("prox")["search"]
    assert parse_prox_option("prox_search_refine=auto") == ("prox_search_refine", "auto")
    assert parse_prox_option("prox_search_refine=0.2") == ("prox_search_refine", 0.2)
    # ranking the candidates by short restorations: a new key; off (0) leaves the key as it was
    assert plain.method_settings("prox")["search"].get("pick_steps", 0) == ProxSettings.search_pick_steps
    off = plain.replace(prox_options=("prox_search_pick_steps=0",))
    assert "pick_steps" not in off.method_settings("prox")["search"]
    short = plain.replace(prox_options=("prox_search_pick_steps=4",))
    assert short.method_settings("prox")["search"]["pick_steps"] == 4


def test_published_kernels_are_read_in_levins_orientation(levin_dir, tmp_path):
    """A published row's kernel: the file for the case's image and kernel, summing to 1, and
    nearer Levin's true kernel as it is than rotated by 180 degrees (the orientation check of
    the file convention: Pan et al. 2016's kernels, 32 cases)."""
    from blinddps.bench.methods import published_kernel
    from blinddps.metrics import kernel_mnc

    config = BenchConfig(images=str(levin_dir), out=str(tmp_path), task="levin", methods="published:pan_cvpr_2016,blurry")
    closer = 0
    for case in list_cases(config):
        k = published_kernel(case, "pan_cvpr_2016")
        truth = load_measurement(case, config).kernel
        assert k.min() >= 0 and abs(float(k.sum()) - 1) < 1e-5 and k.shape[-1] % 2 == 1
        closer += float(kernel_mnc(k[None, None], truth[None, None])) > float(
            kernel_mnc(k.flip(-2, -1)[None, None], truth[None, None]))
    assert closer >= 28
    with pytest.raises(FileNotFoundError, match="k_1_im_1_"):
        published_kernel(list_cases(config)[0], "no_such_method")


def test_published_rows_are_levins_and_restore_like_the_true_kernel_row(levin_dir, tiny_priors, tmp_path):
    """'published:<folder>' parses (case kept), only on Levin; its cache key is the oracle
    row's plus the folder; its run restores with that kernel through the proximal sampler."""
    from blinddps.bench.config import parse_methods
    from blinddps.bench.methods import load_priors, published_kernel, run_method

    assert parse_methods("Prox,published:sun_iccp_2013") == ("prox", "published:sun_iccp_2013")
    with pytest.raises(ValueError, match="unknown method"):
        parse_methods("published:")
    with pytest.raises(ValueError, match="Levin"):
        BenchConfig(images="x", out=str(tmp_path), task="motion", methods="published:pan_cvpr_2016")
    config = BenchConfig(images=str(levin_dir), out=str(tmp_path), task="levin", image_prior=tiny_priors["image"],
                         methods="published:pan_cvpr_2016,prox-oracle", prox_options=("prox_steps=2",), limit=1)
    key = config.method_settings("published:pan_cvpr_2016")
    assert key == {**config.method_settings("prox-oracle"), "published": "pan_cvpr_2016"}
    m = load_measurement(list_cases(config)[0], config)
    out = run_method("published:pan_cvpr_2016", m, config, load_priors(config))
    assert torch.equal(out.kernel, published_kernel(m.case, "pan_cvpr_2016"))
    assert out.image.shape == m.y.shape and out.nfe == 2
