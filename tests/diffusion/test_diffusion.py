"""The VP process against the paper code's golden vectors, and its internal identities."""
import json

import numpy as np
import pytest
import torch

from blinddps.diffusion import DiffusionConfig, VPProcess, respaced_timesteps


@pytest.fixture(scope="module")
def golden(golden_dir):
    return json.loads((golden_dir / "diffusion_linear_learned_range.json").read_text())


@pytest.mark.parametrize("spec", ["1000", "100", "ddim50"])
def test_respacing_and_schedule_match_reference(golden, spec):
    ref = golden["respacings"][spec]
    process = VPProcess(DiffusionConfig(respacing=spec))
    assert process.timesteps.tolist() == ref["use_timesteps"]
    np.testing.assert_allclose(process.alphas_cumprod.numpy(), ref["alphas_cumprod"], rtol=1e-10)
    np.testing.assert_allclose(
        process.posterior_log_variance_clipped.numpy(), ref["posterior_log_variance_clipped"], rtol=1e-9
    )


@pytest.mark.parametrize("spec", ["1000", "100", "ddim50"])
def test_posterior_cases_match_reference(golden, spec):
    ref = golden["respacings"][spec]
    shape = golden["shape"]
    process = VPProcess(DiffusionConfig(respacing=spec))
    for case in ref["cases"]:
        x = torch.tensor(case["x"], dtype=torch.float32).reshape(shape)
        out = torch.tensor(case["model_output"], dtype=torch.float32).reshape(shape[0], 2 * shape[1], *shape[2:])
        i = case["t_index"]
        eps, var = process.split_output(out, shape[1])
        x0, _ = process.predict_x0_eps(x, i, eps)
        mean = process.posterior_mean(x0, x, i)
        log_var = process.model_log_variance(i, var, x)
        for name, got in [("pred_xstart", x0), ("mean", mean), ("log_variance", log_var)]:
            want = torch.tensor(case[name], dtype=torch.float32).reshape(shape)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5, msg=f"{spec} i={i} {name}")


def test_respacing_semantics():
    assert respaced_timesteps("", 1000) == list(range(1000))
    kept = respaced_timesteps("10,10", 100)
    assert len(kept) == 20 and kept[0] == 0 and kept[9] == 49 and kept[10] == 50 and kept[-1] == 99
    with pytest.raises(ValueError):
        respaced_timesteps("ddim999", 1000)


@pytest.mark.parametrize("prediction", ["epsilon", "x0", "v"])
def test_parametrisations_recover_x0(prediction):
    torch.manual_seed(0)
    process = VPProcess(DiffusionConfig(prediction=prediction, variance="fixed_small", clip_x0=False, respacing="50"))
    x0 = torch.rand(2, 3, 4, 4) * 2 - 1
    noise = torch.randn_like(x0)
    i = torch.tensor([3, 40])
    x_t = process.q_sample(x0, i, noise)
    abar = process.alphas_cumprod[i].float().view(-1, 1, 1, 1)
    target = {"epsilon": noise, "x0": x0, "v": abar.sqrt() * noise - (1 - abar).sqrt() * x0}[prediction]
    got_x0, got_eps = process.predict_x0_eps(x_t, i, target)
    torch.testing.assert_close(got_x0, x0, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got_eps, noise, atol=1e-3, rtol=1e-3)


def test_ddim_eta0_with_true_x0_is_exact_marginal():
    """With the true x0 and eps, a deterministic DDIM step lands on the forward marginal."""
    process = VPProcess(DiffusionConfig(respacing="ddim50", variance="fixed_small"))
    x0 = torch.rand(1, 1, 4, 4) * 2 - 1
    eps = torch.randn_like(x0)
    i = 30
    x_t = process.q_sample(x0, i, eps)
    prev = process.ddim_step(x_t, i, x0, eps, torch.zeros_like(x0), eta=0.0)
    torch.testing.assert_close(prev, process.q_sample(x0, i - 1, eps), atol=1e-5, rtol=1e-5)


def test_cosine_schedule_is_monotone():
    process = VPProcess(DiffusionConfig(schedule="cosine", steps=100))
    abar = process.alphas_cumprod
    assert torch.all(abar[1:] < abar[:-1]) and abar[0] < 1 and abar[-1] > 0


def test_schedule_tables_move_once_per_device_and_dtype():
    process = VPProcess(DiffusionConfig(steps=1000, respacing="50"))
    for dtype in (torch.float32, torch.float64):
        like = torch.zeros(3, 2, 4, 4, dtype=dtype)
        first = process.at("alphas_cumprod", 7, like)
        assert first.shape == (1, 1, 1, 1) and first.dtype == dtype
        assert first.item() == pytest.approx(process.alphas_cumprod[7].item(), rel=1e-7)
        # The same converted table serves every later step (no per-call host-to-device copy).
        assert process.at("alphas_cumprod", 9, like).data_ptr() == first.data_ptr() + 2 * first.element_size()
        batch = process.at("betas", torch.tensor([0, 5, 49]), like)
        assert batch.shape == (3, 1, 1, 1)
        assert torch.allclose(batch.flatten().double(), process.betas[[0, 5, 49]], rtol=1e-6)
