"""LPIPS v0.1 from local weight files: loading (strict keys and shapes, clear errors), the
distance's properties, an independent layer-by-layer computation, the [0, 1] and grey
conventions, batching, availability messages, and the benchmark's LPIPS column.

No real weights exist here: random weights in the exact torchvision / LPIPS key layouts.
"""
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

from blinddps.bench import BenchConfig, list_cases, load_measurement, run_benchmark
from blinddps.bench.cache import ResultCache
from blinddps.metrics import LPIPS, load_lpips, lpips, lpips_available
from blinddps.networks import CheckpointError

# torchvision layouts: conv index -> (in, out, kernel); LPIPS head channels per tap.
ALEX_CONVS = {0: (3, 64, 11), 3: (64, 192, 5), 6: (192, 384, 3), 8: (384, 256, 3), 10: (256, 256, 3)}
VGG_CONVS = dict(zip((0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28),
                     ((3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
                      (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512))))
VGG_CONVS = {i: (c_in, c_out, 3) for i, (c_in, c_out) in VGG_CONVS.items()}
HEAD_CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}
SHIFT = torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64).view(1, 3, 1, 1)
SCALE = torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64).view(1, 3, 1, 1)


def random_backbone(net: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A torchvision-style state dict (He-scaled random convs, plus a classifier to ignore)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for i, (c_in, c_out, k) in (ALEX_CONVS if net == "alex" else VGG_CONVS).items():
        state[f"features.{i}.weight"] = torch.randn(c_out, c_in, k, k, generator=g) * math.sqrt(2 / (c_in * k * k))
        state[f"features.{i}.bias"] = 0.05 * torch.randn(c_out, generator=g)
    state["classifier.1.weight"] = torch.randn(4, 8, generator=g)  # torchvision files have one: unused
    return state


def random_heads(net: str, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for i, c in enumerate(HEAD_CHANNELS[net])}


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """net -> (backbone, heads) files: alex as .pth (torch.save), vgg as .safetensors."""
    folder = tmp_path_factory.mktemp("lpips")
    out = {}
    torch.save(random_backbone("alex"), folder / "alexnet-owt-7be5be79.pth")
    torch.save(random_heads("alex"), folder / "alex.pth")
    out["alex"] = (folder / "alexnet-owt-7be5be79.pth", folder / "alex.pth")
    save_file(random_backbone("vgg"), str(folder / "vgg16.safetensors"))
    save_file(random_heads("vgg"), str(folder / "vgg.safetensors"))
    out["vgg"] = (folder / "vgg16.safetensors", folder / "vgg.safetensors")
    return out


@pytest.fixture(scope="module")
def models(weights) -> dict[str, LPIPS]:
    return {net: load_lpips(*paths) for net, paths in weights.items()}


SIDE = {"alex": 64, "vgg": 32}


def pair(net: str, channels: int = 3, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (batch, channels, SIDE[net], SIDE[net])
    return torch.rand(shape, generator=g), torch.rand(shape, generator=g)


def reference_lpips(backbone: dict, heads: dict, net: str, x01: torch.Tensor, y01: torch.Tensor) -> torch.Tensor:
    """LPIPS written out from the method description, layer by layer on the raw state dicts
    (float64), independent of blinddps.metrics.lpips."""
    w = {k: v.double() for k, v in backbone.items()}

    def conv(h, i, stride=1, pad=1):
        return F.relu(F.conv2d(h, w[f"features.{i}.weight"], w[f"features.{i}.bias"], stride=stride, padding=pad))

    def features(z01):
        h = ((2 * z01.double() - 1) - SHIFT) / SCALE
        if net == "alex":
            f1 = conv(h, 0, stride=4, pad=2)
            f2 = conv(F.max_pool2d(f1, 3, 2), 3, pad=2)
            f3 = conv(F.max_pool2d(f2, 3, 2), 6)
            f4 = conv(f3, 8)
            return [f1, f2, f3, f4, conv(f4, 10)]
        taps = []
        for b, block in enumerate(((0, 2), (5, 7), (10, 12, 14), (17, 19, 21), (24, 26, 28))):
            if b:
                h = F.max_pool2d(h, 2, 2)
            for i in block:
                h = conv(h, i)
            taps.append(h)
        return taps

    total = torch.zeros(x01.shape[0], dtype=torch.float64)
    for i, (a, b) in enumerate(zip(features(x01), features(y01))):
        na = a / (torch.sqrt((a**2).sum(dim=1, keepdim=True)) + 1e-10)
        nb = b / (torch.sqrt((b**2).sum(dim=1, keepdim=True)) + 1e-10)
        lin = heads[f"lin{i}.model.1.weight"].double().view(1, -1, 1, 1)
        total += (lin * (na - nb) ** 2).sum(dim=1).mean(dim=(1, 2))
    return total


# --- loading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_load_infers_the_net_and_keeps_the_file_weights(weights, models, net):
    model = models[net]
    assert model.net == net and not model.training
    assert model.channels == HEAD_CHANNELS[net]
    state = model.state_dict()
    backbone = random_backbone(net)
    conv_index = 0 if net == "alex" else 28
    assert torch.equal(state[f"features.{conv_index}.weight"], backbone[f"features.{conv_index}.weight"])
    assert torch.equal(state["lin4.model.1.weight"], random_heads(net)["lin4.model.1.weight"])
    assert not any(k.startswith("classifier") for k in state)
    # Given explicitly, the same net loads too.
    assert load_lpips(*weights[net], net=net).net == net


def _one_line_error(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    return text


def test_load_checks_keys_and_shapes_strictly(weights, tmp_path):
    backbone, heads = random_backbone("alex"), random_heads("alex")

    def attempt(b, h, **kwargs):
        torch.save(b, tmp_path / "b.pth")
        torch.save(h, tmp_path / "h.pth")
        return load_lpips(tmp_path / "b.pth", tmp_path / "h.pth", **kwargs)

    with pytest.raises(CheckpointError) as exc:  # a missing backbone key
        attempt({k: v for k, v in backbone.items() if k != "features.8.weight"}, heads)
    assert "missing keys" in _one_line_error(exc) and "features.8.weight" in str(exc.value)
    with pytest.raises(CheckpointError) as exc:  # a missing head
        attempt(backbone, {k: v for k, v in heads.items() if not k.startswith("lin3")})
    assert "missing keys" in _one_line_error(exc) and "lin3.model.1.weight" in str(exc.value)
    with pytest.raises(CheckpointError) as exc:  # a wrong shape
        attempt({**backbone, "features.3.weight": torch.zeros(192, 64, 3, 3)}, heads)
    assert "wrong shapes" in _one_line_error(exc) and "(192, 64, 3, 3) instead of (192, 64, 5, 5)" in str(exc.value)
    with pytest.raises(CheckpointError) as exc:  # an extra layer inside `features` (e.g. a batch-norm variant)
        attempt({**backbone, "features.1.weight": torch.ones(64)}, heads)
    assert "unexpected keys" in _one_line_error(exc) and "features.1.weight" in str(exc.value)
    with pytest.raises(CheckpointError) as exc:  # VGG heads with an AlexNet backbone
        attempt(backbone, random_heads("vgg"))
    assert "heads (alex)" in _one_line_error(exc) and "lin1.model.1.weight (1, 128, 1, 1)" in str(exc.value)
    with pytest.raises(CheckpointError) as exc:  # the net forced against the file
        attempt(backbone, heads, net="vgg")
    assert "VGG16" in _one_line_error(exc) and "missing keys" in str(exc.value)
    with pytest.raises(CheckpointError) as exc:  # the two files swapped
        attempt(heads, backbone)
    assert "swapped" in _one_line_error(exc)
    with pytest.raises(CheckpointError) as exc:  # heads must be non-negative
        attempt(backbone, {**heads, "lin0.model.1.weight": -heads["lin0.model.1.weight"]})
    assert "negative" in _one_line_error(exc)
    with pytest.raises(ValueError):  # CheckpointError is a ValueError: the CLI prints it in one line
        attempt(backbone, heads, net="squeeze")


def test_load_reports_missing_and_unreadable_files(weights, tmp_path):
    backbone, heads = weights["alex"]
    with pytest.raises(FileNotFoundError, match="LPIPS heads file"):
        load_lpips(backbone, tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not readable") as exc:
        load_lpips(tmp_path / "junk.pth", heads)
    _one_line_error(exc)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError, match="not readable"):
        load_lpips(backbone, tmp_path / "junk.safetensors")
    torch.save([torch.zeros(3)], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="not hold a state dict"):
        load_lpips(tmp_path / "list.pth", heads)


# --- the distance ----------------------------------------------------------------------------


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_distance_properties(models, net):
    model = models[net]
    x, y = pair(net, batch=2)
    with torch.no_grad():
        d_xy, d_yx, d_xx = lpips(x, y, model), lpips(y, x, model), lpips(x, x, model)
    assert d_xy.shape == (2,) and d_xy.dtype == torch.float32
    assert torch.equal(d_xx, torch.zeros(2))
    assert torch.allclose(d_xy, d_yx, rtol=1e-6, atol=0)
    assert bool((d_xy > 0).all())
    # Closer images are closer: a slight perturbation scores below an unrelated image.
    near = (x + 0.02 * (y - x)).clamp(0, 1)
    with torch.no_grad():
        assert bool((lpips(x, near, model) < d_xy).all())


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_matches_an_independent_layer_by_layer_computation(weights, net):
    model = load_lpips(*weights[net]).double()  # float64, so that the comparison is tight
    x, y = pair(net, seed=3)
    with torch.no_grad():
        ours = lpips(x, y, model)
    ref = reference_lpips(random_backbone(net), random_heads(net), net, x, y)
    assert ours.dtype == torch.float64
    assert torch.allclose(ours, ref, rtol=1e-10, atol=0), (ours, ref)


def test_unit_range_and_grey_conventions(models):
    model = models["alex"]
    x, y = pair("alex", seed=4)
    with torch.no_grad():
        # [0, 1] images are mapped to LPIPS's [-1, 1] by 2x - 1.
        assert torch.equal(lpips(x, y, model), model(2 * x - 1, 2 * y - 1))
        # A grey image is measured as the RGB image with three equal channels.
        gx, gy = x[:, :1], y[:, :1]
        assert torch.allclose(lpips(gx, gy, model), lpips(gx.repeat(1, 3, 1, 1), gy.repeat(1, 3, 1, 1), model),
                              rtol=1e-6, atol=0)
        # Inputs are converted to the model's dtype.
        assert torch.allclose(lpips(x.double(), y.double(), model), lpips(x, y, model), rtol=1e-6)
    with pytest.raises(ValueError, match="grey"):
        lpips(torch.rand(1, 2, 64, 64), torch.rand(1, 2, 64, 64), model)
    with pytest.raises(ValueError, match="equal shape"):
        lpips(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 48), model)
    with pytest.raises(ValueError, match="at least 31x31"):
        lpips(torch.rand(1, 3, 30, 64), torch.rand(1, 3, 30, 64), model)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_a_batch_equals_its_items(models, net):
    model = models[net]
    x, y = pair(net, batch=2, seed=5)
    with torch.no_grad():
        together = lpips(x, y, model)
        apart = torch.cat([lpips(x[i:i + 1], y[i:i + 1], model) for i in range(2)])
    assert torch.allclose(together, apart, rtol=1e-5, atol=1e-7)
    assert not torch.allclose(together[0], together[1])  # distinct items, distinct values


def test_gradients_flow_to_the_input(models):
    x, y = pair("alex", seed=6)
    x.requires_grad_(True)
    lpips(x, y, models["alex"]).sum().backward()
    assert x.grad is not None and bool(x.grad.abs().sum() > 0)


# --- availability ----------------------------------------------------------------------------


def test_availability_names_what_to_set(weights, monkeypatch, tmp_path):
    monkeypatch.delenv("BLINDDPS_LPIPS_BACKBONE", raising=False)
    monkeypatch.delenv("BLINDDPS_LPIPS_HEADS", raising=False)
    backbone, heads = weights["alex"]
    none = lpips_available()
    assert not none and "--lpips-backbone" in none.reason and "BLINDDPS_LPIPS_HEADS" in none.reason
    half = lpips_available(backbone)
    assert not half and "heads" in half.reason and "--lpips-heads" in half.reason
    gone = lpips_available(backbone, tmp_path / "nope.pth")
    assert not gone and "not found" in gone.reason
    assert lpips_available(backbone, heads)
    monkeypatch.setenv("BLINDDPS_LPIPS_BACKBONE", str(backbone))
    monkeypatch.setenv("BLINDDPS_LPIPS_HEADS", str(heads))
    assert lpips_available()
    config = BenchConfig(images=".", out=str(tmp_path))
    assert config.lpips_files == (str(backbone), str(heads))
    assert config.replace(lpips_heads="other.pth").lpips_files == (str(backbone), "other.pth")


# --- the benchmark ---------------------------------------------------------------------------


@pytest.fixture()
def image_dir(tmp_path) -> Path:
    """Two 40x48 photos (RGB and grey), centre-cropped to 32 by the runs."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:48]
    smooth = (0.5 + 0.4 * np.sin(xx / 5.0) * np.cos(yy / 7.0))[..., None]
    rgb = np.clip(smooth * np.array([1.0, 0.8, 0.6]) + 0.05 * rng.standard_normal((40, 48, 3)), 0, 1)
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray((rgb * 255).astype(np.uint8)).save(folder / "a.png")
    Image.fromarray((smooth[..., 0] * 255).astype(np.uint8), mode="L").save(folder / "b.png")
    return folder


def read_csv(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_bench_reports_lpips_only_with_weights_and_reuses_the_cache(weights, image_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("BLINDDPS_LPIPS_BACKBONE", raising=False)
    monkeypatch.delenv("BLINDDPS_LPIPS_HEADS", raising=False)
    out = tmp_path / "run"
    config = BenchConfig(images=str(image_dir), out=str(out), methods=("blurry",), crop=32, kernel_size=8, seed=1)

    plain = run_benchmark(config, command="pytest lpips off")
    summary = (out / "summary.md").read_text()
    assert "Not reported: LPIPS: " in summary and "BLINDDPS_LPIPS_BACKBONE" in summary and "FID" in summary
    assert "lpips" not in read_csv(out / "per_image.csv")[0] and "lpips" not in plain.summary["blurry"]
    assert plain.computed == 2

    backbone, heads = weights["alex"]
    with_lpips = run_benchmark(config.replace(lpips_backbone=str(backbone), lpips_heads=str(heads)),
                               command="pytest lpips on")
    assert with_lpips.computed == 0 and with_lpips.cached == 2  # LPIPS is no part of the cached settings
    rows = read_csv(out / "per_image.csv")
    assert list(rows[0])[:9] == ["method", "index", "image", "psnr", "ssim", "kernel_mse", "kernel_mnc",
                                 "error_ratio", "lpips"]
    values = {r["image"]: float(r["lpips"]) for r in rows}  # 6 significant digits in the CSV
    assert all(np.isfinite(v) and v > 0 for v in values.values())
    # The value is LPIPS of the cached output image against the truth (grey "b" included).
    model, cache = load_lpips(backbone, heads), ResultCache(out / "cache")
    for case in list_cases(config):
        m = load_measurement(case, config)
        with torch.no_grad():
            direct = float(lpips(cache.image("blurry", case), m.sharp, model)[0])
        assert values[case.name] == pytest.approx(direct, rel=1e-5)
    summary = (out / "summary.md").read_text()
    assert "| LPIPS |" in summary and "Not reported: LPIPS" not in summary and "Not reported: FID" in summary
    assert "LPIPS (Zhang et al. 2018, v0.1, alex backbone" in summary
    data = json.loads((out / "summary.json").read_text())
    assert data["methods"]["blurry"]["lpips"]["mean"] == pytest.approx(np.mean(list(values.values())), rel=1e-5)
    assert data["header"]["lpips"]["net"] == "alex"
    assert json.loads((out / "bench_config.json").read_text())["lpips_heads"] == str(Path(heads).resolve())


def test_bench_from_environment_and_cli(weights, image_dir, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from blinddps.cli.main import cli

    backbone, heads = weights["vgg"]
    monkeypatch.setenv("BLINDDPS_LPIPS_BACKBONE", str(backbone))
    monkeypatch.setenv("BLINDDPS_LPIPS_HEADS", str(heads))
    config = BenchConfig(images=str(image_dir), out=str(tmp_path / "env"), methods=("blurry",), crop=32,
                         kernel_size=8)
    result = run_benchmark(config, command="pytest lpips env")
    assert "lpips" in result.summary["blurry"] and all(r["lpips"] > 0 for r in result.rows)

    monkeypatch.delenv("BLINDDPS_LPIPS_BACKBONE")
    monkeypatch.delenv("BLINDDPS_LPIPS_HEADS")
    runner = CliRunner()
    args = ["bench", "--images", str(image_dir), "--methods", "blurry", "--crop", "32", "--kernel-size", "8", "-q"]
    ok = runner.invoke(cli, [*args, "--lpips-backbone", str(backbone), "--lpips-heads", str(heads),
                             "-o", str(tmp_path / "cli")])
    assert ok.exit_code == 0, ok.output
    assert "| LPIPS |" in (tmp_path / "cli" / "summary.md").read_text()
    # Asked for but unusable: a one-line error before any method runs.
    half = runner.invoke(cli, [*args, "--lpips-backbone", str(backbone), "-o", str(tmp_path / "half")])
    assert half.exit_code == 2 and "--lpips-heads" in half.output and "Traceback" not in half.output
    assert not (tmp_path / "half").exists()
    wrong = runner.invoke(cli, [*args, "--lpips-backbone", str(backbone), "--lpips-heads", str(weights["alex"][1]),
                                "-o", str(tmp_path / "wrong")])
    assert wrong.exit_code == 2 and "does not fit" in wrong.output and "Traceback" not in wrong.output
