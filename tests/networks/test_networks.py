"""The ADM U-Net: reference outputs, published-checkpoint layouts, config and checkpoint I/O."""
import json

import numpy as np
import pytest
import torch

from blinddps.networks import (ADMUNet, CheckpointError, UNetConfig, infer_config, load_adm,
                               save_adm)

CASES = ["rgb_learned_sigma", "gray_kernel_like", "twochan_tilt_like"]
CHECKPOINTS = ["ffhq_10m", "kernel_checkpoint", "tilt_checkpoint"]


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@pytest.fixture(scope="module")
def manifest(golden_dir):
    return json.loads((golden_dir / "adm_manifest.json").read_text())


def load_case(golden_dir, case):
    config = json.loads((golden_dir / f"unet_{case}.json").read_text())
    data = np.load(golden_dir / f"unet_{case}.npz")
    params = {k[len("param/"):]: torch.from_numpy(data[k]) for k in data.files if k.startswith("param/")}
    return config, params, *(torch.from_numpy(data[k]) for k in ("x", "t", "out"))


def tiny(attention=False, **kw) -> ADMUNet:
    """A small random network whose every layer matters (no zero-initialised branches)."""
    torch.manual_seed(0)
    return ADMUNet(UNetConfig.small(3, attention=attention, **kw), zero_init=False).eval()


# ---------------------------------------------------------------- reference vectors
@pytest.mark.parametrize("case", CASES)
def test_golden_outputs(golden_dir, case):
    config, params, x, t, ref = load_case(golden_dir, case)
    model = ADMUNet(UNetConfig.from_dict(config)).eval()
    model.load_state_dict(params, strict=True)
    with torch.no_grad():
        assert rel_err(model(x, t), ref) < 1e-4


@pytest.mark.parametrize("case", CASES)
def test_golden_outputs_with_inferred_config(golden_dir, case):
    # Shapes fix everything but the head split, which is passed as the reference had it.
    config, params, x, t, ref = load_case(golden_dir, case)
    heads = ({"num_head_channels": config["num_head_channels"]} if config["num_head_channels"] > 0
             else {"num_heads": config["num_heads"]})
    model = load_adm(params, **heads)
    assert not model.training
    with torch.no_grad():
        assert rel_err(model(x, t), ref) < 1e-4


# ---------------------------------------------------------------- published layouts
@pytest.mark.parametrize("name", CHECKPOINTS)
def test_manifest_layout(manifest, name):
    entry = manifest[name]
    with torch.device("meta"):  # 93.6 M parameters: shapes only, no memory or init time
        model = ADMUNet(UNetConfig.from_dict(entry["config"]))
    shapes = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert shapes == entry["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == entry["num_params"]


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_manifest_config_inference(manifest, name):
    entry = manifest[name]
    inferred = infer_config(dict(entry["state_dict"]))
    assert inferred == UNetConfig.from_dict(entry["config"])
    with torch.device("meta"):
        model = ADMUNet(inferred)
    assert [[k, list(v.shape)] for k, v in model.state_dict().items()] == entry["state_dict"]


# ---------------------------------------------------------------- config
def test_config_yaml_forms_and_round_trip():
    cfg = UNetConfig.from_dict({"image_size": 64, "num_channels": 64, "num_res_blocks": 1,
                                "channel_mult": "", "attention_resolutions": 16,
                                "grayscale": True, "learn_sigma": True, "model_path": "x.pt"})
    assert cfg.channel_mult == (1, 2, 3, 4) and cfg.attention_ds == (4,)
    assert (cfg.in_channels, cfg.out_channels, cfg.middle_attention) == (1, 2, True)
    assert UNetConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert UNetConfig(image_size=512, num_channels=256, num_res_blocks=2).channel_mult[0] == 0.5
    assert UNetConfig(32, 32, 1, channel_mult="1,2,2", attention_resolutions="16,8").attention_ds == (2, 4)
    two = UNetConfig(32, 32, 1, channel_mult="1,2", twochan=True, learn_sigma=False)
    assert (two.in_channels, two.out_channels) == (2, 2)
    assert two.replace(learn_sigma=True).out_channels == 4
    small = UNetConfig.small(1, learn_sigma=False)
    assert (small.in_channels, small.out_channels, small.middle_attention) == (1, 1, False)


@pytest.mark.parametrize("bad, error, words", [
    ({"colour": 1}, ValueError, "colour"),
    ({"class_cond": True}, NotImplementedError, "class_cond"),
    ({"use_new_attention_order": True}, NotImplementedError, "legacy"),
    ({"attention_resolutions": "3"}, ValueError, "matches no level"),
    ({"grayscale": True, "twochan": True}, ValueError, "exclusive"),
    ({"channel_mult": "", "image_size": 48}, ValueError, "no default"),
    ({"num_head_channels": 48}, ValueError, "num_head_channels"),
])
def test_config_errors(bad, error, words):
    base = {"image_size": 32, "num_channels": 32, "num_res_blocks": 1, "channel_mult": "1,2"}
    with pytest.raises(error, match=words):
        UNetConfig.from_dict({**base, **bad})
    with pytest.raises(ValueError, match="num_res_blocks"):
        UNetConfig.from_dict({"image_size": 32, "num_channels": 32})


# ---------------------------------------------------------------- behaviour
def test_fresh_network_is_zero_and_small_random_one_is_not():
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert ADMUNet(UNetConfig.small(3))(x, 10).abs().max() == 0  # reference zero init
        assert tiny()(x, 10).abs().min() > 0


@pytest.mark.parametrize("attention", [False, True])
def test_batch_of_two_equals_two_batches_of_one(attention):
    model = tiny(attention=attention)
    x, t = torch.rand(2, 3, 16, 16) * 2 - 1, torch.tensor([3, 900])
    with torch.no_grad():
        both = model(x, t)
        single = torch.cat([model(x[:1], t[:1]), model(x[1:], t[1:])])
    assert both.shape == (2, 6, 16, 16)
    torch.testing.assert_close(both, single, rtol=1e-4, atol=1e-5)


def test_scalar_timestep_broadcasts():
    model = tiny()
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x, 250), model(x, torch.tensor([250.0, 250.0])))


@pytest.mark.parametrize("attention", [False, True])
def test_other_spatial_sizes(attention):
    model = tiny(attention=attention)  # image_size 32
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 48, 40), 5).shape == (1, 6, 48, 40)
    with pytest.raises(ValueError, match="multiples of 2"):
        model(torch.zeros(1, 3, 47, 48), 5)


def test_gradient_reaches_the_input_with_and_without_checkpointing():
    model = tiny(attention=True)
    x = (torch.rand(1, 3, 16, 16) * 2 - 1).requires_grad_()
    model(x, 500).square().sum().backward()
    grad = x.grad.clone()
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    model.config.use_checkpoint = True  # same weights, recomputed activations
    x.grad = None
    model(x, 500).square().sum().backward()
    torch.testing.assert_close(x.grad, grad)


# ---------------------------------------------------------------- checkpoint I/O
def test_save_load_round_trip(tmp_path):
    model = tiny(attention=True, learn_sigma=False)
    path = save_adm(model, tmp_path / "prior.safetensors")
    assert path.with_suffix(".json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prior.json", "prior.safetensors"]
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        ref = model(x, 7)
        assert torch.equal(load_adm(path)(x, 7), ref)
        path.with_suffix(".json").unlink()  # the config also travels in the file's metadata
        again = load_adm(path)
        assert again.config == model.config and torch.equal(again(x, 7), ref)


def test_torch_checkpoint_wrappers(tmp_path):
    model = tiny()
    wrapped = {"step": 3, "ema": {f"module.{k}": v for k, v in model.state_dict().items()},
               "model": {k: torch.zeros_like(v) for k, v in model.state_dict().items()}}
    torch.save(wrapped, tmp_path / "train.pt")
    loaded = load_adm(tmp_path / "train.pt", model.config)  # EMA weights, prefix removed
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x, 1), model(x, 1))


def test_checkpoint_errors(tmp_path):
    model = tiny()
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_adm(tmp_path / "nope.pt")
    good = tmp_path / "good.pt"
    torch.save(model.state_dict(), good)
    (tmp_path / "cut.pt").write_bytes(good.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cut.pt is not a readable PyTorch checkpoint"):
        load_adm(tmp_path / "cut.pt")
    path = save_adm(model, tmp_path / "net.safetensors")
    (tmp_path / "cut.safetensors").write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_adm(tmp_path / "cut.safetensors")
    with pytest.raises(CheckpointError, match="not a state dict"):
        load_adm({"epoch": 3})
    other = UNetConfig.small(3, num_channels=8, channel_mult=(1, 2, 2))
    with pytest.raises(CheckpointError, match=r"missing keys.*input_blocks\.4.*shape mismatches"):
        load_adm(good, other)
    with pytest.raises(CheckpointError, match="cannot infer"):
        load_adm({"foo.weight": torch.zeros(3)})


def test_fp16_body_runs_close_to_fp32():
    # The reference's use_fp16: convolutions of the body in half precision, the rest float32.
    model = tiny(attention=True)
    x = (torch.rand(1, 3, 16, 16) * 2 - 1).requires_grad_()
    with torch.no_grad():
        ref = model(x, 5)
    out = model.convert_to_fp16()(x, 5)
    assert out.dtype == torch.float32 and rel_err(out.detach(), ref) < 1e-2
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
