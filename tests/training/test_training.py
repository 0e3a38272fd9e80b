"""Prior training: loss, exact resume, the CLI, and data parallelism under torchrun."""
import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from blinddps.diffusion import DiffusionConfig, VPProcess
from blinddps.diffusion.losses import diffusion_loss
from blinddps.priors.bundle import load_prior
from blinddps.training import TrainConfig, Trainer

TINY = {"num_channels": 8, "channel_mult": (1, 2)}


def tiny_config(out, kind="kernel", steps=4, **kw):
    return TrainConfig(kind=kind, out=str(out), steps=steps, batch_size=2, size=16, checkpoint_every=2,
                       unet=TINY, **kw)


def test_resume_continues_exactly(tmp_path):
    straight = Trainer(tiny_config(tmp_path / "a"), progress=False)
    straight.run()
    first = Trainer(tiny_config(tmp_path / "b", steps=2), progress=False)
    first.run()
    second = Trainer(tiny_config(tmp_path / "b", steps=4), progress=False)
    second.resume()
    assert second.step == 2
    second.run()
    a, b = load_file(str(tmp_path / "a" / "ema.safetensors")), load_file(str(tmp_path / "b" / "ema.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_time_limit_checkpoints_between_checkpoints_and_resumes_exactly(tmp_path, monkeypatch):
    # A fake clock that advances 1 s per finished step: the limit of 2.5 s stops after step 3,
    # between the checkpoints at 2 and 4, whatever the machine's speed.
    import blinddps.training.trainer as trainer_module

    clock = [0.0]
    monkeypatch.setattr(trainer_module.time, "perf_counter", lambda: clock[0])
    limited = Trainer(tiny_config(tmp_path / "limited", steps=6), progress=False)
    limited.on_step = lambda step, loss: clock.__setitem__(0, clock[0] + 1.0)
    limited.run(time_limit=2.5)
    assert limited.step == 3
    resumed = Trainer(tiny_config(tmp_path / "limited", steps=6), progress=False)
    resumed.resume()
    assert resumed.step == 3
    # The folder may move before a resume (to a GPU machine and back): resume does not care.
    (tmp_path / "limited").rename(tmp_path / "moved")
    resumed = Trainer(tiny_config(tmp_path / "moved", steps=6), progress=False)
    resumed.resume()
    resumed.run()
    straight = Trainer(tiny_config(tmp_path / "straight", steps=6), progress=False)
    straight.run()
    a = load_file(str(tmp_path / "straight" / "ema.safetensors"))
    b = load_file(str(tmp_path / "moved" / "ema.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_resume_refuses_a_different_run(tmp_path):
    Trainer(tiny_config(tmp_path, steps=2), progress=False).run()
    other = Trainer(tiny_config(tmp_path, steps=4, lr=1e-3), progress=False)
    with pytest.raises(ValueError, match="differs in lr"):
        other.resume()


def test_checkpoint_is_a_loadable_prior_with_provenance(tmp_path):
    weights = Trainer(tiny_config(tmp_path, kind="tilt"), progress=False).run()
    prior = load_prior(weights)
    assert prior.transform.kind == "tilt" and prior.channels == 2
    meta = json.loads(weights.with_suffix(".json").read_text())
    assert meta["training"]["step"] == 4 and meta["training"]["config"]["kind"] == "tilt"
    assert (tmp_path / "preview_0000004.png").is_file()  # a sample grid at the end of the run


def test_loss_is_minimised_by_the_true_noise():
    """The epsilon part is zero for a perfect prediction and the VB term is a KL (>= 0)."""
    process = VPProcess(DiffusionConfig())
    x0 = torch.rand(2, 1, 8, 8) * 2 - 1
    noise = torch.randn_like(x0)
    i = torch.tensor([10, 700])
    x_t = process.q_sample(x0, i, noise)
    perfect = torch.cat([noise, torch.zeros_like(noise)], 1)
    loss, parts = diffusion_loss(process, perfect, x0, x_t, i, noise)
    assert torch.all(parts["mse"] == 0) and torch.all(parts["vb"] >= 0)
    worse, _ = diffusion_loss(process, perfect + 0.1, x0, x_t, i, noise)
    assert torch.all(worse > loss)


def _run_cli(args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "blinddps", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=300)


@pytest.mark.slow
def test_cli_train_and_resume(tmp_path):
    common = ["train", "kernel", "-o", str(tmp_path / "run"), "--size", "16", "--batch-size", "2",
              "--channels", "8", "--channel-mult", "1,2", "--checkpoint-every", "2", "--quiet", "--threads", "1"]
    first = _run_cli([*common, "--steps", "2"], tmp_path)
    assert first.returncode == 0, first.stderr
    second = _run_cli([*common, "--steps", "3", "--resume"], tmp_path)
    assert second.returncode == 0, second.stderr
    meta = json.loads((tmp_path / "run" / "ema.json").read_text())
    assert meta["training"]["step"] == 3
    missing = _run_cli(["train", "kernel", "-o", str(tmp_path / "none"), "--resume", "--quiet"], tmp_path)
    assert missing.returncode == 2 and "nothing to resume" in missing.stderr and "Traceback" not in missing.stderr


DDP_SCRIPT = """
import sys
import torch
from blinddps.training import TrainConfig, Trainer

torch.set_num_threads(1)
out = sys.argv[1]
config = TrainConfig(kind="kernel", out=out, steps=2, batch_size=4, size=16, checkpoint_every=2,
                     unet={"num_channels": 8, "channel_mult": (1, 2)})
trainer = Trainer(config, progress=False)
initial = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
trainer.run()
torch.save({"initial": initial, "final": trainer.model.state_dict(), "rank": trainer.rank,
            "world": trainer.world}, f"{out}/rank{trainer.rank}.pt")
"""


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path):
    """Data parallel training on CPU: 2 ranks, gloo.  Each rank draws different data (seeded by
    rank), so only the gradient all-reduce makes their weights agree: compare them."""
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    out = tmp_path / "ddp"
    out.mkdir()
    # --standalone: a free port of torchrun's choosing (a fixed one collides with other runs).
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(script), str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    meta = json.loads((out / "ema.json").read_text())
    assert meta["training"]["world_size"] == 2 and meta["training"]["step"] == 2
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world"] == 2 for r in ranks)
    for key, first in ranks[0]["final"].items():
        torch.testing.assert_close(ranks[1]["final"][key], first, rtol=0, atol=0, msg=key)
        torch.testing.assert_close(ranks[1]["initial"][key], ranks[0]["initial"][key], rtol=0, atol=0, msg=key)
    assert any(not torch.equal(ranks[0]["final"][k], v) for k, v in ranks[0]["initial"].items()), "no training step"


@pytest.mark.slow
def test_cli_sample_writes_natural_units(tmp_path, tiny_priors):
    out = tmp_path / "samples"
    done = _run_cli(["sample", "kernel", "--prior", tiny_priors["kernel"], "-n", "3", "--size", "16",
                     "--steps", "5", "-o", str(out), "--quiet", "--seed", "1"], tmp_path)
    assert done.returncode == 0, done.stderr
    import numpy as np

    kernels = np.load(out / "kernel_samples.npy")
    assert kernels.shape == (3, 1, 16, 16) and (kernels >= 0).all()
    np.testing.assert_allclose(kernels.sum(axis=(-2, -1)), 1.0, rtol=1e-5)
    assert (out / "kernel_samples.png").is_file() and json.loads((out / "config.json").read_text())["n"] == 3
    wrong = _run_cli(["sample", "image", "--prior", tiny_priors["kernel"], "-o", str(out), "--quiet"], tmp_path)
    assert wrong.returncode == 2 and "not an image prior" in wrong.stderr and "Traceback" not in wrong.stderr
