"""The default priors ship inside the package and load by name, without any download."""
import pytest
import torch

from blinddps.priors.bundle import BUNDLED, BUNDLED_DIR, load_prior


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_prior_loads_by_name(name):
    prior = load_prior(name, respacing="10")
    assert prior.transform.kind == BUNDLED[name]
    assert prior.num_steps == 10
    channels = {"image": 3, "kernel": 1, "tilt": 2}[BUNDLED[name]]
    assert prior.channels == channels
    size = 64
    x = torch.randn(1, channels, size, size)
    out = prior.denoise(x, 5)
    assert torch.isfinite(out.x0).all() and out.x0.abs().max() <= 1


def test_bundled_priors_are_small():
    total = sum(p.stat().st_size for p in BUNDLED_DIR.glob("*.safetensors"))
    assert total < 30e6
