"""Coarse-to-fine kernel search (solvers.kernel_search): Pan-L0's loop with the priors plugged in."""
import pytest
import torch

from blinddps.baselines import PanL0Params, pan_l0_kernel
from blinddps.metrics import kernel_mnc
from blinddps.physics.fft import conv_circular
from blinddps.priors import ImageTransform, KernelTransform
from blinddps.physics.kernel_geometry import align_kernel, pad_kernel_to, shift_kernel
from blinddps.solvers.kernel_search import (VIEWS, KernelSearchConfig, _unview, _view, kernel_extent, merge_kernels,
                                            prior_denoised, prox_latent, refine_kernel, search_kernel, search_params,
                                            support_box)
from toy_kernels import l_shaped_kernel
from toy_priors import TinyConvNet, gaussian_prior, make_prior


def _scene(size: int = 40) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    x = torch.full((1, 1, size, size), 0.3, dtype=torch.float64)
    for _ in range(6):
        r, c = torch.randint(0, size - 10, (2,), generator=g).tolist()
        x[..., r:r + 10, c:c + 10] = float(torch.rand(1, generator=g))
    return x.expand(1, 3, size, size)


def _configured(prior, image_size: int = 16, spatial_multiple: int = 4):
    """Toy networks have no ADM config; the search reads only these two fields of it."""
    prior.network.config = type("Config", (), {"image_size": image_size, "spatial_multiple": spatial_multiple})()
    return prior


def test_l0_latent_is_pan_l0():
    y = conv_circular(_scene(), l_shaped_kernel(7))
    published = KernelSearchConfig(latent="l0", denoise=False, lambda_pixel=4e-3, k_thresh=20.0)
    ours, *_ = search_kernel(y, 7, config=published)
    assert torch.equal(ours, pan_l0_kernel(y, 7, params=PanL0Params()))
    # the default drops Pan's intensity term (lambda_pixel 0)
    ours, *_ = search_kernel(y, 7, config=KernelSearchConfig(latent="l0", denoise=False))
    assert torch.equal(ours, pan_l0_kernel(y, 7, params=PanL0Params(lambda_pixel=0.0)))


def test_the_default_search_runs_pan_on_the_prior_denoised_photo():
    """denoise=True (the default): the search is Pan's loop on prior_denoised(y), exactly."""
    x = _scene().float()
    y = (conv_circular(x, l_shaped_kernel(7).float()) + 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(3)))
    prior = _configured(gaussian_prior(ImageTransform(), 3, "", std=0.6))
    ours, *_ = search_kernel(y, 7, image_prior=prior)
    expected = pan_l0_kernel(prior_denoised(y, prior), 7, params=PanL0Params(lambda_pixel=0.0))
    assert torch.equal(ours, expected)


def test_prior_denoised_removes_noise_and_keeps_shapes():
    """One call of the prior at the estimated noise level: closer to the clean image than the
    noisy one (a Gaussian prior's exact MMSE denoiser), any size (30 x 45 is padded to the
    network's multiple and cropped back), grey in -> grey out, a noise-free image unchanged."""
    g = torch.Generator().manual_seed(2)
    clean = 0.5 + 0.1 * torch.nn.functional.avg_pool2d(torch.randn(1, 3, 38, 53, generator=g), 9, stride=1)
    noisy = clean + 0.05 * torch.randn(clean.shape, generator=g)
    prior = _configured(gaussian_prior(ImageTransform(), 3, "", std=0.05))
    out = prior_denoised(noisy, prior)
    assert out.shape == noisy.shape and bool(((out >= 0) & (out <= 1)).all())
    assert (out - clean).norm() < 0.7 * (noisy - clean).norm()
    grey = prior_denoised(noisy[:, :1], prior)
    assert grey.shape == (1, 1, 30, 45)
    flat = torch.full((1, 3, 30, 45), 0.4)
    assert torch.equal(prior_denoised(flat, prior), flat)


def test_even_size_is_rounded_up_and_the_kernel_is_on_the_simplex():
    y = conv_circular(_scene(), l_shaped_kernel(7)).float()
    prior = _configured(make_prior(TinyConvNet(3, seed=4), ImageTransform(), 3, ""))
    k, *_ = search_kernel(y, 6, image_prior=prior, config=KernelSearchConfig(latent="prox-l0", latent_steps=2))
    assert k.shape == (1, 1, 7, 7) and bool((k >= 0).all())
    assert abs(float(k.sum()) - 1) < 1e-6


def test_prox_latent_restores_with_the_true_kernel():
    """The latent step is the proximal sampler's non-blind restoration: with the true kernel
    and a Gaussian prior it is closer to the sharp luma than the blurry luma is (measured:
    0.47 of the blurry error)."""
    x = _scene(32)[:, :1]
    k = l_shaped_kernel(7)
    y = conv_circular(x, k)
    prior = _configured(gaussian_prior(ImageTransform(), 3, "", std=0.6))
    latent = prox_latent(prior, KernelSearchConfig(latent="prox", latent_steps=4), torch.Generator().manual_seed(0))
    out = latent(y, k, 4e-3, 4e-3)
    assert out.shape == y.shape and out.dtype == y.dtype
    inner = (slice(None), slice(None), slice(6, -6), slice(6, -6))  # away from the 'valid' border
    assert (out - x)[inner].norm() < 0.7 * (y - x)[inner].norm()


def test_missing_priors_and_bad_settings_are_refused():
    y = torch.rand(1, 3, 24, 24)
    with pytest.raises(ValueError, match="image prior"):
        search_kernel(y, 5, config=KernelSearchConfig(latent="prox"))
    with pytest.raises(ValueError, match="kernel prior"):
        search_kernel(y, 5, config=KernelSearchConfig(latent="l0", kernel_prior_t=100, denoise=False))
    with pytest.raises(ValueError, match="denoise=True needs an image prior"):
        search_kernel(y, 5, config=KernelSearchConfig(latent="l0"))
    with pytest.raises(ValueError, match="lambda_pixel"):
        KernelSearchConfig(lambda_pixel=-1.0)
    with pytest.raises(ValueError, match="latent must be"):
        KernelSearchConfig(latent="sharp")
    with pytest.raises(ValueError):
        KernelSearchConfig(latent_steps=0)
    with pytest.raises(ValueError, match="k_thresh"):
        KernelSearchConfig(k_thresh=0.5)


def test_kernel_prior_refinement_is_called_per_kernel_step():
    y = conv_circular(_scene(), l_shaped_kernel(7))
    calls = []
    net = TinyConvNet(1, seed=5)
    forward = net.forward

    def counting(x, t):
        calls.append(tuple(x.shape[-2:]))
        return forward(x, t)
    net.forward = counting
    prior = _configured(make_prior(net, KernelTransform(), 1, ""))
    params_iters = PanL0Params().xk_iter
    k, *_ = search_kernel(y, 7, kernel_prior=prior, config=KernelSearchConfig(latent="l0", kernel_prior_t=50, denoise=False))
    assert k.shape == (1, 1, 7, 7) and abs(float(k.sum()) - 1) < 1e-6
    # one pyramid level for 7 px (the next would be under Pan's 5 px) x Pan's alternations,
    # each kernel padded to the prior's 16 px
    assert calls == [(16, 16)] * params_iters


def test_kernels_larger_than_the_kernel_prior_pass_unchanged():
    from blinddps.solvers.kernel_search import prior_refiner
    prior = _configured(make_prior(TinyConvNet(1, seed=6), KernelTransform(), 1, ""), image_size=8)
    refine = prior_refiner(prior, 50)
    big = l_shaped_kernel(9).float()
    assert refine(big) is big
    small = l_shaped_kernel(7).float()
    out = refine(small)
    assert out.shape == small.shape and not torch.equal(out, small) and abs(float(out.sum()) - 1) < 1e-6


def test_large_kernels_get_a_finer_pyramid_and_more_alternations():
    """search_params: Pan's pyramid (ratio sqrt(0.5), 5 alternations) up to config.large_kernel
    pixels, a finer one (0.8, 10) beyond; lambda_pixel follows the config either way."""
    import math

    config = KernelSearchConfig(lambda_pixel=1e-3)
    small, large = search_params(config, 33), search_params(config, 65)
    assert (small.pyramid_ratio, small.xk_iter) == (math.sqrt(0.5), 5)
    assert (large.pyramid_ratio, large.xk_iter) == (0.8, 10)
    assert small.lambda_pixel == large.lambda_pixel == 1e-3
    assert small.k_thresh == large.k_thresh == 20.0
    assert search_params(KernelSearchConfig(k_thresh=9.0), 65).k_thresh == 9.0
    assert small.lambda_decay == large.lambda_decay == 1.1  # Pan's published decay by default
    assert search_params(KernelSearchConfig(lambda_decay=1.032), 65).lambda_decay == 1.032
    # the floor of the lambdas: config's for large kernels only, Pan's published one below
    assert small.lambda_min == PanL0Params().lambda_min == 1e-4
    assert large.lambda_min == KernelSearchConfig.large_lambda_min
    assert search_params(KernelSearchConfig(large_lambda_min=2e-3), 65).lambda_min == 2e-3
    assert search_params(KernelSearchConfig(large_lambda_min=2e-3), 33).lambda_min == 1e-4
    with pytest.raises(ValueError, match="large_lambda_min"):
        KernelSearchConfig(large_lambda_min=0.0)
    # the task's setting is the search's (and recorded with it)
    from blinddps import RestoreConfig
    from blinddps.tasks.config import ProxSettings
    from blinddps.tasks.search import kernel_search_config
    task = RestoreConfig(prox=ProxSettings(search_lambda_min=2e-3))
    assert kernel_search_config(task, False).large_lambda_min == 2e-3
    assert kernel_search_config(RestoreConfig(), False).large_lambda_min == ProxSettings.search_lambda_min
    with pytest.raises(ValueError, match="lambda_decay"):
        KernelSearchConfig(lambda_decay=0.9)
    y = conv_circular(_scene(), l_shaped_kernel(7))
    finer, *_ = search_kernel(y, 7, config=KernelSearchConfig(denoise=False, large_kernel=5))
    params = PanL0Params(lambda_pixel=0.0, pyramid_ratio=0.8, xk_iter=10, lambda_min=KernelSearchConfig.large_lambda_min)
    assert torch.equal(finer, pan_l0_kernel(y, 7, params=params))


def test_kernel_extent_is_the_centred_square_holding_every_value():
    k = torch.zeros(2, 1, 21, 21)
    k[0, 0, 10, 10] = 1.0
    assert kernel_extent(k[:1]) == 1
    k[1, 0, 13, 5] = 0.2  # 3 rows below, 5 columns left of the origin (10, 10)
    assert kernel_extent(k[1:]) == 11 and kernel_extent(k) == 11  # the batch's largest
    assert kernel_extent(torch.zeros(1, 1, 9, 9)) == 1


def test_refit_searches_again_at_the_size_the_kernel_fills():
    """refit: a 7 px blur searched in a 41 px support is searched again at its extent plus
    the margins, and the result, padded back to 41 px, is exactly that second search's; a
    support the kernel fills is left alone."""
    y = conv_circular(_scene(64), l_shaped_kernel(7))
    plain = KernelSearchConfig(denoise=False, k_thresh=5.0)
    first, *_ = search_kernel(y, 41, config=plain)
    fitted = kernel_extent(first) + 2 * plain.refit_margin
    assert fitted < 0.75 * 41
    refit, *_ = search_kernel(y, 41, config=KernelSearchConfig(denoise=False, k_thresh=5.0, refit=True))
    assert refit.shape == (1, 1, 41, 41)
    assert torch.equal(refit, pad_kernel_to(pan_l0_kernel(y, fitted, params=search_params(plain, fitted)), 41))
    small, *_ = search_kernel(y, 9, config=KernelSearchConfig(denoise=False, k_thresh=5.0, refit=True))
    assert torch.equal(small, search_kernel(y, 9, config=plain)[0])


@pytest.mark.parametrize("view", VIEWS)
def test_a_view_of_a_blurred_photo_is_the_view_blurred_by_the_viewed_kernel(view):
    """The search's views map the blur with the photo: view(x * k) = view(x) * view(k) (circular,
    odd K, origin at the centre), and _unview maps the viewed kernel back to k exactly."""
    x = torch.rand(1, 3, 24, 20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    k = l_shaped_kernel(7).double()
    torch.testing.assert_close(_view(conv_circular(x, k), *view), conv_circular(_view(x, *view), _view(k, *view)))
    assert torch.equal(_unview(_view(k, *view), *view), k)


def test_align_kernel_undoes_whole_pixel_shifts_per_sample():
    k = torch.cat([l_shaped_kernel(9), l_shaped_kernel(9).transpose(-2, -1)])  # (2, 1, 9, 9)
    moved = shift_kernel(k, torch.tensor([[2, -1], [-1, 3]]))  # nothing leaves the support
    assert torch.equal(align_kernel(moved, k), k)
    assert torch.equal(align_kernel(k, k), k)
    assert torch.equal(align_kernel(moved, k[:1])[0], k[0])  # one reference for the batch


def test_merged_kernels_are_the_geometric_mean_of_the_aligned_estimates():
    """merge_kernels: each estimate aligned to the first, their geometric mean (what only one
    estimate has is dropped), re-thresholded, on the simplex."""
    k = l_shaped_kernel(9)
    other = k.clone()
    other[..., 4, 4] += 0.2
    other = other / other.sum()
    merged = merge_kernels([k, shift_kernel(other, (2, 1))], k_thresh=20.0)
    expected = (k * other).sqrt()
    torch.testing.assert_close(merged, expected / expected.sum())
    haze = torch.full_like(k, 1.0 / 81)  # one estimate spread over the whole support
    halo = merge_kernels([k, haze], k_thresh=20.0)
    assert merged.min() >= 0 and abs(float(halo.sum()) - 1) < 1e-6
    assert torch.equal(halo > 0, k > 0)  # only the shared support survives
    torch.testing.assert_close(halo, k.sqrt() / k.sqrt().sum())  # sqrt(k / 81), normalised


def test_views_search_each_view_and_merge_their_kernels():
    """views=2: the kernel is the merge of the search on the photo and the search on its
    transpose (mapped back); views=1 is the plain search."""
    y = conv_circular(_scene(48), l_shaped_kernel(7))
    plain = KernelSearchConfig(denoise=False)
    one, *_ = search_kernel(y, 7, config=plain)
    flipped, *_ = search_kernel(y.transpose(-2, -1), 7, config=plain)
    two, _, agreement = search_kernel(y, 7, config=KernelSearchConfig(denoise=False, views=2))
    assert torch.equal(two, merge_kernels([one, flipped.transpose(-2, -1)], plain.k_thresh))
    # the views' agreement: the MNC of the two kernels before the merge; none with one view
    torch.testing.assert_close(agreement, kernel_mnc(flipped.transpose(-2, -1), one))
    assert agreement.shape == (1,) and search_kernel(y, 7, config=plain).agreement is None
    assert two.shape == (1, 1, 7, 7) and two.min() >= 0 and abs(float(two.sum()) - 1) < 1e-6
    with pytest.raises(ValueError, match="views"):
        KernelSearchConfig(views=5)
    # the record (and the bench's cache key) says how several views were merged
    assert KernelSearchConfig(views=2).to_dict()["merge"] == "geometric-mean"
    assert "merge" not in plain.to_dict()


def test_views_side_by_side_on_two_threads_find_the_kernels_of_one_thread():
    """With two CPU threads the views of Pan's latent are searched one per thread
    (`_map_views`): the same kernels and agreement, bit for bit, as one after the other, and
    torch's thread count is restored after."""
    y = conv_circular(_scene(48), l_shaped_kernel(7))
    config = KernelSearchConfig(denoise=False, views=4)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = search_kernel(y, 7, config=config)
        torch.set_num_threads(2)
        threaded = search_kernel(y, 7, config=config)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert torch.equal(single.kernel, threaded.kernel) and torch.equal(single.agreement, threaded.agreement)


def _refine_problem(kernel: torch.Tensor, shape=(40, 40), seed: int = 5):
    """A random image on a valid grid, its valid blur by `kernel` (K, K) embedded on the grid,
    and the grid's mask: the model `refine_kernel` fits."""
    from blinddps.physics.solves import Domain
    d = Domain.for_measurement(shape, kernel.shape[-1], "valid")
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, *d.grid, generator=g, dtype=torch.float64)
    y = d.embed(d.crop(conv_circular(x, kernel.double()[None, None])))
    return d, x, y, d.mask(dtype=torch.float64)


def test_refine_kernel_moves_a_wrong_kernel_towards_the_blur_of_the_image():
    """Given the sharp image, the refit of a wrong kernel (the true one shifted by a pixel and
    spread) is closer to the truth, on the simplex, and with all its iterations and
    every gradient (share 1) the truth itself; from the truth (share 1) it stays: the fit is 0."""
    truth = l_shaped_kernel(7)[0, 0].double()
    d, x, y, mask = _refine_problem(truth)
    wrong = (0.5 * shift_kernel(truth[None, None], (1, 0))[0, 0] + 0.5 * torch.full_like(truth, 1 / 49))
    few = refine_kernel(x, y, wrong, mask, edge_fraction=0.5, iters=30, k_thresh=20)
    assert (few >= 0).all() and abs(float(few.sum()) - 1) < 1e-9 and few.dtype == truth.dtype
    assert (few - truth).norm() < 0.5 * (wrong - truth).norm()
    many = refine_kernel(x, y, wrong, mask, edge_fraction=1.0, iters=600, k_thresh=20)
    assert (many - truth).abs().max() < 1e-4
    torch.testing.assert_close(refine_kernel(x, y, truth, mask, edge_fraction=1.0, iters=50, k_thresh=20), truth,
                               atol=1e-8, rtol=0)


def test_refine_kernel_with_a_margin_fits_only_near_the_found_kernel():
    """margin: the refit is zero outside the square about the origin that holds the found
    kernel's kept values and `margin` pixels more (support_box), on the simplex, and reaches
    the blur when the blur lies inside that square; a square as large as the support is the
    whole-support fit, bit for bit; a blur reaching outside the square is not followed there."""
    truth = pad_kernel_to(l_shaped_kernel(7), 15)[0, 0]  # its values 3 px about the origin 7
    d, x, y, mask = _refine_problem(truth, shape=(48, 48))
    start = 0.5 * truth + 0.5 * pad_kernel_to(torch.full((1, 1, 3, 3), 1 / 9, dtype=torch.float64), 15)[0, 0]
    box = support_box(start, 20, 1)
    assert box == slice(3, 12)
    fit = refine_kernel(x, y, start, mask, edge_fraction=1.0, iters=600, k_thresh=20, margin=1)
    outside = torch.ones_like(fit, dtype=torch.bool)
    outside[box, box] = False
    assert (fit[outside] == 0).all() and (fit >= 0).all() and abs(float(fit.sum()) - 1) < 1e-9
    assert (fit - truth).abs().max() < 1e-4
    whole = refine_kernel(x, y, start, mask, edge_fraction=0.5, iters=30, k_thresh=20)
    torch.testing.assert_close(refine_kernel(x, y, start, mask, edge_fraction=0.5, iters=30, k_thresh=20, margin=7),
                               whole, atol=0, rtol=0)
    small = pad_kernel_to(torch.full((1, 1, 3, 3), 1 / 9, dtype=torch.float64), 15)[0, 0]
    assert support_box(small, 20, 0) == slice(6, 9)
    near = refine_kernel(x, y, small, mask, edge_fraction=1.0, iters=200, k_thresh=20, margin=0)
    free = refine_kernel(x, y, small, mask, edge_fraction=1.0, iters=200, k_thresh=20)
    assert near[6:9, 6:9].sum() > 1 - 1e-9 and free.sum() - free[6:9, 6:9].sum() > 0.3


def test_refine_kernel_reads_only_the_observed_pixels_and_averages_the_samples():
    """The photo's grid outside its mask (where nothing was observed) does not change the refit,
    and a batch of restorations is refit as their mean."""
    truth = l_shaped_kernel(7)[0, 0].double()
    d, x, y, mask = _refine_problem(truth)
    start = torch.full_like(truth, 1 / 49)
    refit = refine_kernel(x, y, start, mask, edge_fraction=0.3, iters=20, k_thresh=20)
    garbage = y + (1 - mask) * torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=y.dtype)
    torch.testing.assert_close(refine_kernel(x, garbage, start, mask, edge_fraction=0.3, iters=20, k_thresh=20), refit,
                               atol=1e-12, rtol=0)
    noise = 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=x.dtype)
    pair = torch.cat([x + noise, x - noise])
    torch.testing.assert_close(refine_kernel(pair, y, start, mask, edge_fraction=0.3, iters=20, k_thresh=20), refit,
                               atol=1e-12, rtol=0)
