"""A view's kernel carried up to the photo: the ladder of scales, the textured region, the
regions cut at each rung, and the kernel handed from rung to rung."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from blinddps import RestoreConfig, deblur
from blinddps.priors.bundle import load_prior
from blinddps.tasks.carry import carry_kernel, region, rungs, textured_centre
from blinddps.tasks.config import ProxSettings
from blinddps.tasks.resolution import bound_resolution, upscale_kernel
from blinddps.physics.kernel_geometry import pad_kernel_to


def test_rungs_double_up_to_the_photos_scale():
    assert rungs(0.128) == pytest.approx([0.128**(2 / 3), 0.128**(1 / 3), 1.0])  # 0.254, 0.504, 1
    assert rungs(0.48) == rungs(0.6) == [1.0] and rungs(1.0) == []
    for view in (0.01, 0.05, 0.128, 0.3):
        steps = [view, *rungs(view)]
        ratios = [b / a for a, b in zip(steps, steps[1:])]
        assert steps[-1] == 1.0 and max(ratios) <= 2.4 and max(ratios) - min(ratios) < 1e-9


def test_the_most_textured_window_is_found():
    """A flat photo with one patch of noise: the centre found lies in that patch, at any size."""
    g = torch.Generator().manual_seed(0)
    photo = torch.full((1, 3, 120, 200), 0.5)
    photo[..., 70:110, 20:60] += 0.2 * torch.randn(1, 3, 40, 40, generator=g)
    fy, fx = textured_centre(photo, 32)
    assert 70 <= fy * 120 <= 110 and 20 <= fx * 200 <= 60
    fy, fx = textured_centre(F.interpolate(photo, scale_factor=0.5, mode="area"), 16)
    assert 70 <= fy * 120 <= 110 and 20 <= fx * 200 <= 60


def test_regions_are_the_same_place_at_every_scale_and_stay_inside():
    g = torch.Generator().manual_seed(1)
    photo = torch.rand(1, 3, 300, 400, generator=g)
    full = region(photo, (0.5, 0.25), 1.0, 64)
    assert torch.equal(full, photo[..., 118:182, 68:132])  # about row 150, column 100
    half = region(photo, (0.5, 0.25), 0.5, 64)
    assert half.shape[-2:] == (64, 64)  # 128 px of the photo, halved
    expect = F.interpolate(photo[..., 86:214, 36:164], size=(64, 64), mode="bicubic", antialias=True).clamp(0, 1)
    assert torch.allclose(half, expect)
    corner = region(photo, (0.0, 1.0), 1.0, 64)
    assert torch.equal(corner, photo[..., :64, -64:])
    assert region(photo, (0.5, 0.5), 0.1, 64).shape[-2:] == (30, 40)  # larger than the photo: all of it


def test_the_kernel_climbs_rung_by_rung_resampled_and_widened():
    """With a refit that keeps what it gets, the ladder is resampling and padding only: each
    rung gets the region at its scale and the kernel carried from the rung below."""
    g = torch.Generator().manual_seed(2)
    photo = torch.rand(1, 1, 400, 600, generator=g)
    view, scale = bound_resolution(photo, 75)  # scale 0.125: rungs 0.25, 0.5, 1 (exactly: 0.125 = 1 / 8)
    k = torch.zeros(9, 9)
    k[4, 2:7] = 0.2
    seen = []

    def keep(part, kernel):
        seen.append((tuple(part.shape[-2:]), kernel.clone()))
        return kernel

    out, record = carry_kernel(photo, view, k, scale, keep, side=64, margin=0.25)
    assert [r["scale"] for r in record] == pytest.approx([0.25, 0.5, 1.0])
    assert [s for s, _ in seen] == [(64, 64)] * 3
    expect = k
    for (_, got), (low, high) in zip(seen, [(0.125, 0.25), (0.25, 0.5), (0.5, 1.0)]):
        up = upscale_kernel(expect, low / high, 50.0)
        expect = pad_kernel_to(up, up.shape[-1] + 2 * max(2, round(0.25 * up.shape[-1])))
        assert torch.equal(got, expect)
    assert torch.equal(out, expect) and float(out.sum()) == pytest.approx(1, abs=1e-5)
    assert out.shape[-1] > 8 * 5  # a 5 px streak on the view is a 40 px one on the photo


def test_a_blind_photo_larger_than_the_view_gets_its_kernel_refit_on_the_way_up():
    natural = load_prior("natural-rgb", kind="image")
    photo = torch.rand(1, 3, 90, 132, generator=torch.Generator().manual_seed(0))
    settings = dict(steps=2, search_decays=(1.1,), search_consensus=None, search_refine_iters=3)
    seen = []
    refit = deblur(photo, RestoreConfig(kernel_view=64, kernel_size=9, seed=0, prox=ProxSettings(**settings)),
                   priors={"image": natural}, callback=lambda info: seen.append((info.step, info.num_steps)))
    assert refit.info["carry"] == [{"scale": 1.0, "kernel_size": refit.kernel.shape[-1]}]
    # one count: the view's steps, the region's 2, the photo's 2 (each 4 view steps), the total known throughout
    total = seen[0][1]
    assert all(n == total for _, n in seen) and seen[-1][0] == total - 1
    steps = [s for s, _ in seen]
    view_steps = len(seen) - 4
    assert steps == list(range(view_steps + 2)) + [view_steps + 2 + 3, view_steps + 2 + 7]
    plain = deblur(photo, RestoreConfig(kernel_view=64, kernel_size=9, seed=0,
                                        prox=ProxSettings(**settings, carry_refit=False)), priors={"image": natural})
    assert plain.info["carry"] == [] and plain.image.shape == refit.image.shape == photo.shape
    assert refit.info["nfe_per_image"] == plain.info["nfe_per_image"] + 2  # the region's 2 steps
    assert float(refit.kernel.sum()) == pytest.approx(1, abs=1e-5) and float(refit.kernel.min()) >= 0


def test_a_view_at_half_the_photos_size_or_more_only_resamples():
    """Resampling from a view at scale >= REFIT_BELOW keeps the kernel: no rung is run."""
    natural = load_prior("natural-rgb", kind="image")
    photo = torch.rand(1, 3, 90, 120, generator=torch.Generator().manual_seed(0))  # view 48x64: 0.533
    settings = dict(steps=2, search_decays=(1.1,), search_consensus=None, search_refine_iters=3)
    result = deblur(photo, RestoreConfig(kernel_view=64, kernel_size=9, seed=0, prox=ProxSettings(**settings)),
                    priors={"image": natural})
    assert result.info["carry"] == [] and result.image.shape == photo.shape
