"""Loading a network never guesses silently (issue 9).

Without a config, `load_adm` / `load_prior` / the CLI read what the weights fix; where the
shapes leave the attention heads open they use the paper's config for the paper's shapes and
otherwise refuse, in one line naming what is missing and how to give it.
"""
import json

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from blinddps.cli.common import friendly_errors
from blinddps.cli.main import cli
from blinddps.networks import ADMUNet, UNetConfig, infer_config, load_adm
from blinddps.networks.infer import PUBLISHED, AmbiguousConfigError, published_name
from blinddps.networks.load import ConfigRequiredError
from blinddps.priors.bundle import load_prior

CASES = {"rgb_learned_sigma": "image", "gray_kernel_like": "kernel", "twochan_tilt_like": "tilt"}
MANIFEST_NAMES = {"ffhq_10m": "ffhq_10m.pt", "kernel_checkpoint": "kernel_checkpoint.pt",
                  "tilt_checkpoint": "tilt_checkpoint.pt"}


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def golden(golden_dir, case):
    """(reference config dict, params, x, t, out) of a golden network."""
    config = json.loads((golden_dir / f"unet_{case}.json").read_text())
    data = np.load(golden_dir / f"unet_{case}.npz")
    params = {k[len("param/"):]: torch.from_numpy(data[k]) for k in data.files if k.startswith("param/")}
    return config, params, *(torch.from_numpy(data[k]) for k in ("x", "t", "out"))


@pytest.fixture(scope="module")
def manifest(golden_dir):
    return json.loads((golden_dir / "adm_manifest.json").read_text())


def tiny(attention: bool) -> ADMUNet:
    torch.manual_seed(0)
    return ADMUNet(UNetConfig.small(3, attention=attention), zero_init=False).eval()


# ---------------------------------------------------------------- golden networks, no config
@pytest.mark.parametrize("case", CASES)
def test_golden_network_without_config_matches_exactly_or_is_refused(golden_dir, case):
    _, params, x, t, ref = golden(golden_dir, case)
    try:
        model = load_adm(params)
    except ConfigRequiredError as err:
        assert err.missing == ("num_heads", "num_head_channels") and "\n" not in str(err)
        assert "num_heads=" in str(err) and "config=" in str(err)
        return
    with torch.no_grad():  # loaded: then it must be the reference network, not a near miss
        assert rel_err(model(x, t), ref) < 1e-4


@pytest.mark.parametrize("case", CASES)
def test_golden_checkpoint_file_refused_then_loaded_with_json_beside_it(golden_dir, tmp_path, case):
    config, params, x, t, ref = golden(golden_dir, case)
    path = tmp_path / f"{case}.pt"
    torch.save(params, path)
    refusal = rf"^{case}\.pt: .*attention heads.*\({case}\.json\)$"
    with pytest.raises(ConfigRequiredError, match=refusal) as info:
        load_adm(path)
    assert info.value.sidecar == tmp_path / f"{case}.json"
    with pytest.raises(ConfigRequiredError, match=refusal):
        load_prior(path, kind=CASES[case])
    with torch.no_grad():
        assert rel_err(load_prior(path, kind=CASES[case], config=config).network(x, t), ref) < 1e-4
    (tmp_path / f"{case}.json").write_text(json.dumps(config))  # the paper's YAML keys, as JSON
    with torch.no_grad():
        assert rel_err(load_adm(path)(x, t), ref) < 1e-4
        assert rel_err(load_prior(path, kind=CASES[case]).network(x, t), ref) < 1e-4


def test_heads_given_in_python_settle_it(golden_dir):
    config, params, x, t, ref = golden(golden_dir, "twochan_tilt_like")
    with torch.no_grad():
        assert rel_err(load_adm(params, num_heads=config["num_heads"])(x, t), ref) < 1e-4
        assert rel_err(load_adm(params, config)(x, t), ref) < 1e-4
    with pytest.raises(AmbiguousConfigError):
        infer_config(params)


# ---------------------------------------------------------------- the paper's shapes
@pytest.mark.parametrize("name", MANIFEST_NAMES)
def test_published_shapes_get_the_published_config(manifest, name):
    shapes = dict(manifest[name]["state_dict"])
    inferred = infer_config(shapes)
    assert published_name(inferred) == MANIFEST_NAMES[name]
    assert inferred == UNetConfig.from_dict(manifest[name]["config"])
    assert inferred == UNetConfig.from_dict(PUBLISHED[MANIFEST_NAMES[name]])
    assert (inferred.num_heads, inferred.num_head_channels) == (4, 64)


def test_published_shape_network_loads_with_the_published_config(manifest):
    # kernel_checkpoint.pt's keys and shapes (17 M parameters, zeros: only the shapes matter).
    entry = manifest["kernel_checkpoint"]
    state = {k: torch.zeros(shape) for k, shape in entry["state_dict"]}
    model = load_adm(state)
    assert model.config == UNetConfig.from_dict(entry["config"])
    assert sum(p.numel() for p in model.parameters()) == entry["num_params"]


def test_near_published_shapes_are_refused(manifest):
    shapes = dict(manifest["kernel_checkpoint"]["state_dict"])
    shapes["out.2.weight"], shapes["out.2.bias"] = [1, *shapes["out.2.weight"][1:]], [1]  # no learn_sigma
    with pytest.raises(AmbiguousConfigError, match="attention heads"):
        infer_config(shapes)
    assert infer_config(shapes, num_head_channels=64).out_channels == 1


# ---------------------------------------------------------------- what is not ambiguous
def test_network_without_attention_loads_without_config(tmp_path):
    model = tiny(attention=False)
    path = tmp_path / "conv.pt"
    torch.save(model.state_dict(), path)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        loaded = load_adm(path)
        assert torch.equal(loaded(x, 7), model(x, 7))
    # image_size is nominal (not in the weights) and heads are unused: the rest is read
    assert loaded.config.replace(image_size=32) == model.config.replace(num_heads=1)


def test_small_attention_network_needs_its_config(tmp_path):
    model = tiny(attention=True)
    path = tmp_path / "attn.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(ConfigRequiredError, match=r"attention widths \[32\]"):
        load_adm(path)
    path.with_suffix(".json").write_text(json.dumps(model.config.to_dict()))
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(load_adm(path)(x, 3), model(x, 3))


# ---------------------------------------------------------------- the CLI's one-line refusal
def _one_error(result, *fragments: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def test_cli_prior_path_refused_in_one_line_naming_the_json(golden_dir, tmp_path):
    _, params, *_ = golden(golden_dir, "gray_kernel_like")
    weights = tmp_path / "kernel.pt"
    torch.save(params, weights)
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(photo)
    result = CliRunner().invoke(cli, ["deblur", str(photo), "-o", str(tmp_path / "out"), "--method", "dps",
                                      "--kernel-prior", str(weights), "--steps", "2", "--device", "cpu"])
    _one_error(result, "--kernel-prior", "num_heads or num_head_channels", str(tmp_path / "kernel.json"))
    assert not (tmp_path / "out" / "photo_restored.png").exists()


def test_friendly_errors_makes_the_refusal_one_line_exit_2(golden_dir, tmp_path):
    _, params, *_ = golden(golden_dir, "rgb_learned_sigma")
    torch.save(params, tmp_path / "net.pt")

    @click.command()
    @friendly_errors
    def command():
        load_adm(tmp_path / "net.pt")

    _one_error(CliRunner().invoke(command, []), "net.pt:", "num_heads=", "(net.json)")
