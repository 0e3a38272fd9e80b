"""Photos come back at their own size: a blind photo larger than kernel_view gets its kernel on
a view and is restored at its size; a carried kernel is the view's blur scaled up."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from blinddps import RestoreConfig, deblur
from blinddps.metrics import kernel_mnc
from blinddps.priors.bundle import load_prior
from blinddps.tasks.resolution import upscale_kernel
from blinddps.tasks.config import ProxSettings


def test_upscale_kernel_brings_back_the_blur_a_view_sees():
    """A smooth camera shake (a bent path through a lens of 1.5 px) at full size, seen on a
    view down-scaled by 17/33 (area resampling, as a photo's view sees it), carried back by
    `upscale_kernel` with that scale: the same blur (MNC > 0.9), odd, non-negative, summing to 1."""
    k = torch.zeros(1, 1, 33, 33)
    for i in range(21):
        k[..., 16 + (i // 7) - 1, 6 + i] = 1.0
    r = torch.arange(-4, 5, dtype=torch.float32)
    lens = torch.exp(-r**2 / (2 * 1.5**2))
    k = F.conv2d(F.conv2d(k, (lens / lens.sum()).view(1, 1, 1, -1), padding=(0, 4)),
                 (lens / lens.sum()).view(1, 1, -1, 1), padding=(4, 0))
    k = (k / k.sum())[0, 0]
    seen = F.interpolate(k[None, None], size=(17, 17), mode="area")[0, 0]
    back = upscale_kernel(seen / seen.sum(), 17 / 33)
    assert back.shape[0] == back.shape[1] and back.shape[0] % 2 == 1
    assert float(back.min()) >= 0 and float(back.sum()) == pytest.approx(1, abs=1e-6)
    assert float(kernel_mnc(back[None, None].double(), k[None, None].double())) > 0.9


@pytest.mark.parametrize("channels", [1, 3])
def test_a_photo_larger_than_the_kernel_view_comes_back_at_its_size(channels):
    natural = load_prior("natural-rgb", kind="image")
    g = torch.Generator().manual_seed(0)
    photo = torch.rand(1, channels, 90, 132, generator=g)
    config = RestoreConfig(kernel_view=64, kernel_size=9, seed=0,
                           prox=ProxSettings(steps=2, search_decays=(1.1,), search_refine=None, search_consensus=None))
    seen = []
    result = deblur(photo, config, priors={"image": natural}, callback=lambda info: seen.append((info.step, info.num_steps)))
    assert result.image.shape == photo.shape and float(result.image.min()) >= 0 and float(result.image.max()) <= 1
    # one count over both runs: the photo's 2 steps weigh round(90 * 132 / (44 * 64)) = 4 view steps
    # each and are in the total from the first step on; the count only grows, and ends at its total
    view_steps = len(seen) - 2
    assert [total for _, total in seen] == [view_steps + 2 * 4] * len(seen)
    assert [step for step, _ in seen] == list(range(view_steps)) + [view_steps + 3, view_steps + 7]
    k = result.kernel
    assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1 and float(k.sum()) == pytest.approx(1, abs=1e-5)
    info = result.info
    assert info["kernel_view"] == [44, 64] and info["view_kernel_size"] == 9 and info["working_size"] == [90, 132]
    assert info["scale"] == 1.0 and info["kernel_size"] == k.shape[0]  # the photo's run, not the view's
    # a photo within the view runs once, at its size, as before
    small = deblur(photo[..., :60, :64], config, priors={"image": natural})
    assert small.image.shape[-2:] == (60, 64) and "kernel_view" not in small.info
