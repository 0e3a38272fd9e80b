"""Prior files and value transforms."""
import pytest
import torch

from blinddps.diffusion import DiffusionConfig
from blinddps.networks import ADMUNet, UNetConfig, load_adm
from blinddps.priors import ImageTransform, KernelTransform, TiltTransform
from blinddps.priors.bundle import PriorNotFoundError, load_prior, save_prior


def test_kernel_transform_round_trip_and_normalisation():
    g = torch.Generator().manual_seed(0)
    k = torch.rand(3, 1, 8, 8, generator=g) ** 4
    k = k / k.sum(dim=(-2, -1), keepdim=True)
    z = KernelTransform().to_net(k)
    assert z.amax(dim=(-2, -1)).allclose(torch.ones(3, 1)) and z.min() >= -1
    back = KernelTransform().to_operator(z)
    torch.testing.assert_close(back, k)  # max scaling is exactly undone by the sum normalisation
    # per-sample normalisation: scaling one sample's state does not touch the others
    z2 = z.clone()
    z2[0] = z2[0] * 0.5
    torch.testing.assert_close(KernelTransform().to_operator(z2)[1:], back[1:])


def test_tilt_and_image_transforms():
    tilt = torch.tensor([[-2.5, 0.0, 1.25]]).view(1, 1, 1, 3).expand(1, 2, 1, 3)
    torch.testing.assert_close(TiltTransform().to_operator(TiltTransform().to_net(tilt)), tilt)
    x = torch.rand(1, 3, 4, 4) * 2 - 1
    assert torch.equal(ImageTransform().to_operator(x), x)


def test_prior_file_round_trip(tmp_path):
    torch.manual_seed(0)
    net = ADMUNet(UNetConfig.small(1, num_channels=8), zero_init=False)
    path = save_prior(tmp_path / "k", net, kind="kernel", diffusion=DiffusionConfig(), half=False,
                      training={"step": 7})
    prior = load_prior(path, respacing="25")
    assert prior.num_steps == 25 and prior.transform == KernelTransform() and prior.channels == 1
    x, t = torch.randn(2, 1, 16, 16), torch.tensor([3, 900])
    torch.testing.assert_close(prior.network(x, t), net(x, t))
    torch.testing.assert_close(load_adm(path)(x, t), net(x, t))  # load_adm reads prior files too


def test_prior_errors(tmp_path):
    with pytest.raises(PriorNotFoundError, match="no prior named"):
        load_prior("no-such-prior")
    net = ADMUNet(UNetConfig.small(1, num_channels=8))
    path = save_prior(tmp_path / "k", net, kind="kernel", diffusion=DiffusionConfig())
    with pytest.raises(ValueError, match="is a kernel prior, not an image prior"):
        load_prior(path, kind="image")


def test_half_precision_files_load_as_float32(tmp_path):
    torch.manual_seed(0)
    net = ADMUNet(UNetConfig.small(3, num_channels=8), zero_init=False)
    path = save_prior(tmp_path / "i", net, kind="image", diffusion=DiffusionConfig(), half=True)
    prior = load_prior(path)
    assert next(prior.network.parameters()).dtype == torch.float32
    x, t = torch.randn(1, 3, 16, 16), torch.tensor([500])
    torch.testing.assert_close(prior.network(x, t), net(x, t), atol=5e-3, rtol=5e-2)
