"""Blind deblurring and imaging through turbulence on photos: the public task API.

Public images are (1, C, H, W) or (C, H, W) tensors in [0, 1], C = 1 or 3.  Internally the
image is mapped to [-1, 1] (the priors' space and the paper's measurement space), grey
photos are copied to three channels for the RGB prior, and the size is padded (reflect) to
a multiple the network accepts.  Kernels come back (K, K), non-negative, summing to 1;
tilt fields (2, H, W) in pixels.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable

import torch

from ..devices import native_bf16
from ..metrics.kernel import kernel_mnc
from ..physics import Blur, Turbulence
from ..physics.solves import Domain
from ..priors import DiffusionPrior
from ..priors.prior import pad_to_multiple
from ..priors.transforms import ImageTransform
from ..solvers import BlindDPS, StepInfo, Unknown
from ..baselines.pan_l0 import PanL0Params
from ..solvers.kernel_search import refine_kernel
from ..solvers.proximal import ProximalConfig, ProximalSampler, timesteps
from .config import RestoreConfig
from .dps_setup import fit_kernel_size, kernel_regularisers, dps_unknowns, dps_config
from .kernels import check_sizes, check_kernel, fit_known_kernel
from .priors import load_priors, load_task_prior
from .progress import RunProgress, ViewThenPhoto
from .result import RestoreResult, package_result
from .carry import REFIT_BELOW, carry_kernel, rungs
from .resolution import bound_resolution, upscale_kernel
from .search import kernel_search_config, search_kernel_of, search_prior


def _as_batch(image: torch.Tensor) -> torch.Tensor:
    image = image if image.dim() == 4 else image.unsqueeze(0)
    if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] not in (1, 3):
        raise ValueError(f"expected one image (1, C, H, W) with C = 1 or 3, got shape {tuple(image.shape)}")
    if not torch.isfinite(image).all():
        raise ValueError("the image contains NaN or Inf values")
    return image.float().clamp(0, 1)


def restore(image: torch.Tensor, config: RestoreConfig = RestoreConfig(), *, turbulence: bool = False,
            callback: Callable[[StepInfo], None] | None = None,
            priors: dict[str, DiffusionPrior] | None = None, kernel: torch.Tensor | None = None) -> RestoreResult:
    """Blind deblurring (turbulence=False) or turbulence restoration of one photo.

    image: (1, C, H, W) or (C, H, W) in [0, 1].  priors: preloaded priors (else loaded by
    the names in config).  callback: receives a StepInfo after every step.  kernel: the
    known blur (K, K), non-negative (normalised to sum 1): non-blind deblurring; the sampler
    is config.method ("auto": the proximal sampler).  Turbulence with the proximal sampler is
    blind deblurring of the displaced photo: the result's tilt is None and info["tilt"] says why."""
    start = time.perf_counter()
    config = config.resolved(turbulence)
    y01 = _as_batch(image)
    channels = y01.shape[1]
    y01, scale = bound_resolution(y01, config.working_bound())
    if kernel is not None:
        if turbulence:
            raise ValueError("a known kernel is for deblurring; turbulence estimates its kernel and tilt")
        kernel = fit_known_kernel(check_kernel(kernel), scale)
        if max(kernel.shape) > min(y01.shape[-2:]):
            raise ValueError(f"the kernel {tuple(kernel.shape)} is larger than the image {tuple(y01.shape[-2:])}")
    if config.sampler_name() == "prox":
        if kernel is None:
            check_sizes(y01, config)
        if kernel is None and config.kernel_view and max(y01.shape[-2:]) > config.kernel_view:
            result = _restore_prox_from_view(y01, channels, scale, config, callback, priors, start)
        else:
            result = _restore_prox(y01, channels, scale, config, kernel, callback, priors, start)
        if turbulence:
            result.info["tilt"] = TILT_NOT_ESTIMATED
        return result
    priors = priors or load_priors(config, turbulence)
    if kernel is not None:
        return _restore_dps_known(y01, channels, scale, config, kernel, callback, priors, start)
    config = fit_kernel_size(config, priors)
    check_sizes(y01, config)
    multiple = priors["image"].network.config.spatial_multiple
    if turbulence and "tilt" in priors:
        multiple = max(multiple, priors["tilt"].network.config.spatial_multiple)
    y, (h, w) = pad_to_multiple(y01.expand(1, 3, *y01.shape[-2:]).to(config.device), multiple)
    y = y * 2 - 1
    operator = (Turbulence if turbulence else Blur)(padding=config.dps.padding)
    regs = kernel_regularisers(config)
    solver = BlindDPS(operator, dps_unknowns(priors, config, y.shape[-2:], turbulence),
                      dps_config(config), regs)
    n = config.samples
    gens = sample_generators(config)
    result = solver.solve(y.expand(n, *y.shape[1:]), generator=gens, callback=callback)
    return package_result(result, channels, (h, w), n, {
        "method": "dps", "nfe_per_image": result.nfe, "steps": solver.num_steps, "scale": scale,
        "seconds": time.perf_counter() - start, "working_size": [h, w], "kernel_size": config.kernel_size})


def _restore_dps_known(y01, channels, scale, config: RestoreConfig, kernel, callback, priors, start) -> RestoreResult:
    """Non-blind DPS (Chung et al., ICLR 2023): the image the only unknown, the kernel known."""
    y, (h, w) = pad_to_multiple(y01.expand(1, 3, *y01.shape[-2:]).to(config.device),
                                priors["image"].network.config.spatial_multiple)
    solver = BlindDPS(Blur(padding=config.dps.padding),
                      {"image": Unknown((3, *y.shape[-2:]), ImageTransform(), priors["image"])},
                      dps_config(config))
    n = config.samples
    gens = sample_generators(config)
    known = {"kernel": kernel.to(config.device)[None, None]}
    result = solver.solve((y * 2 - 1).expand(n, *y.shape[1:]), generator=gens, known=known, callback=callback)
    result.estimates["kernel"] = known["kernel"].expand(n, 1, *kernel.shape).cpu()
    return package_result(result, channels, (h, w), n, {
        "method": "dps", "nfe_per_image": result.nfe, "steps": solver.num_steps, "scale": scale,
        "seconds": time.perf_counter() - start, "working_size": [h, w], "kernel_size": kernel.shape[-1]})


# Why the proximal sampler's turbulence result has no tilt field.  y = k * warp(x, tilt): the
# displaced photo u = warp(x, tilt) is itself a natural photo, and the turbulence's tilts (about
# half a pixel, smooth over tens of pixels) leave no trace an image prior could tell from the
# scene, so one frame fixes k and u, not the tilt.  The sampler restores u: the blur removed, the
# displacement left in place (as Pan-L0 and the bench's oracles with a known kernel do).
TILT_NOT_ESTIMATED = ("not estimated: the proximal sampler removes the blur and leaves the turbulence's "
                      "displacement in place (one frame does not fix it); method 'dps' estimates a tilt field")


def prox_config(config: RestoreConfig) -> ProximalConfig:
    """The proximal sampler's settings from the task's (noise: [0, 1] -> [-1, 1] units)."""
    return ProximalConfig(steps=config.prox.steps, t_start=config.prox.t_start, lam=config.prox.lam,
                          zeta=config.prox.renoise, noise=None if config.noise is None else 2 * config.noise,
                          autocast=native_bf16(config.device) if config.autocast is None else config.autocast,
                          record_every=config.record_every, tile=config.prox.tile,
                          tile_overlap=config.prox.tile_overlap)


def _restore_prox_from_view(y01, channels, scale, config: RestoreConfig, callback, priors, start) -> RestoreResult:
    """Blind deblurring of a photo larger than config.kernel_view: the kernel found (searched,
    restored, refit) on a view whose long side is kernel_view, carried to the photo's
    resolution (`tasks.carry`: refit on a region at each scale on the way up from a view
    under `REFIT_BELOW`; else, with config.prox.carry_refit off or without a refit, only
    resampled), and the photo restored with it at its own size (non-blind, at the lambda the
    view's restoration used: a carried kernel is not exact). The progress counts the view's
    steps, the regions' and the photo's, each of these weighted by its cost (`ViewThenPhoto`)."""
    priors = {**(priors or {}), "image": _image_prior(config, priors)}  # loaded once for every run here
    view, view_scale = bound_resolution(y01, config.kernel_view)
    weight = round(y01.shape[-2] * y01.shape[-1] / (view.shape[-2] * view.shape[-1]))
    steps = len(timesteps(config.prox.steps, config.prox.t_start))
    refit = config.prox.carry_refit and config.prox.search_refine is not None and view_scale < REFIT_BELOW
    progress = ViewThenPhoto(callback, weight, steps, steps * len(rungs(view_scale)) if refit else 0)
    on_view, on_rung, on_photo = ((progress.view, progress.middle, progress.photo) if callback is not None
                                  else (None, None, None))
    found = _restore_prox(view, channels, scale * view_scale, config, None, on_view, priors, start)
    full = replace(config, prox=replace(config.prox, lam=found.info.get("restore_lambda", config.prox.lam)))
    ladder, rung_nfe = [], []
    if refit:
        kernel, ladder = carry_kernel(y01, view, found.kernel, view_scale,
                                      region_refit(full, priors, on_rung, rung_nfe))
    else:
        kernel = upscale_kernel(found.kernel, view_scale)
    result = _restore_prox(y01, channels, scale, full, kernel, on_photo, priors, start)
    # the view's search record, under the photo's own run record (its scale, size, steps, time)
    result.info = {**found.info, **result.info, "kernel_view": list(view.shape[-2:]), "view_scale": view_scale,
                   "view_kernel_size": found.kernel.shape[-1], "carry": ladder,
                   "nfe_per_image": found.info["nfe_per_image"] + sum(rung_nfe) + result.info["nfe_per_image"],
                   "seconds": time.perf_counter() - start}
    return result


def region_refit(config: RestoreConfig, priors, callback=None,
                 tally: list[int] | None = None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """refit(region, kernel) for `carry_kernel`: the region (1, C, h, w) in [0, 1] restored
    with the kernel (K, K) (one sample, config's settings; its steps reported to callback,
    its network evaluations appended to tally), and the kernel refit to that restoration
    (`_refined`)."""
    image_prior = _image_prior(config, priors)
    one = replace(config, samples=1)

    def refit(region: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        result, _, domain = _prox_solve(region, kernel, prox_config(one), image_prior, one, callback)
        if tally is not None:
            tally.append(result.nfe)
        return _refined(result, domain, region, one).cpu()
    return refit


def _image_prior(config: RestoreConfig, priors) -> DiffusionPrior:
    """The restoring image prior: priors["image"] when given, else loaded by config's name."""
    return (priors or {}).get("image") or load_task_prior("image", config.image_prior, config.device, "")


def _restore_prox(y01, channels, scale, config: RestoreConfig, kernel, callback, priors, start) -> RestoreResult:
    """Deblurring with the proximal sampler on the working grid of config.prox.border. Blind
    with a search: one kernel per value of config.prox.search_decays, each restored, the
    restoration with the least data misfit kept; when its kernel's views disagree
    (config.prox.search_fallback), searches again at Pan's floor of the latent weights (one
    per value of config.prox.search_fallback_decays), and the best-fitting of those kept
    instead. With config.prox.search_pick_steps the candidates are restored in that many
    steps only, and the kept kernel again in full; with config.prox.search_consensus, at
    search_consensus_lambda when the other searches of its round found the same kernel; with
    config.prox.search_refine, the kernel refit to that restoration and the photo restored
    again (search_refine_rounds times)."""
    image_prior = _image_prior(config, priors)
    settings = prox_config(config)
    if kernel is not None or config.prox.search == "none":
        result, sampler, domain = _prox_solve(y01, kernel, settings, image_prior, config, callback)
        return _package_prox(result, sampler, domain, y01, channels, scale, config, start, result.nfe, {})
    searcher = search_prior(config, image_prior, priors)
    pick = _pick_steps(config)
    trial = replace(settings, steps=pick or settings.steps)  # the candidates' restorations
    refits = config.prox.search_refine_rounds if config.prox.search_refine is not None else 0
    finals = int(bool(pick)) + refits  # full restorations after the candidates', known now
    progress = RunProgress(callback, trial, settings if finals else None, finals)
    runs = _search_runs(y01, config, searcher, image_prior, priors, trial, progress)
    best = _least_misfit(runs)
    first = len(runs)  # where a fallback's runs start
    if _falls_back(runs[best], config):
        # the views disagree: this photo is one the higher floor fails on; Pan's floor instead
        pan = replace(config, prox=replace(config.prox, search_lambda_min=PanL0Params.lambda_min,
                                           search_decays=config.prox.search_fallback_decays))
        runs += _search_runs(y01, pan, searcher, image_prior, priors, trial, progress)
        best = first + _least_misfit(runs[first:])
    result, sampler, domain, search = runs[best]
    search = dict(search)
    # finding the kernel cost every search and every restoration but the one kept
    search["search_nfe"] = sum(run[3]["search_nfe"] for run in runs) + sum(
        run[0].nfe for i, run in enumerate(runs) if i != best)
    lam = search["restore_lambda"]
    _agreed_lambda(search, runs, best, range(first, len(runs)) if best >= first else range(first), config)
    final = replace(settings, lam=search["restore_lambda"])
    if pick or search["restore_lambda"] != lam:
        search["search_nfe"] += result.nfe  # the kept kernel's first restoration too
        result, sampler, domain = _prox_solve(y01, result.estimates["kernel"][0, 0], final, image_prior, config,
                                              progress.final(final, announced=bool(pick)))
    for _ in range(refits):  # the kernel refit to the restoration, the photo restored again
        search["search_nfe"] += result.nfe
        found = result.estimates["kernel"][0, 0]
        kernel = _refined(result, domain, y01, config)
        search.setdefault("refine_mnc", []).append(float(kernel_mnc(found, kernel)))
        result, sampler, domain = _prox_solve(y01, kernel, final, image_prior, config, progress.final(final))
    if len(runs) > 1:
        search["candidates"] = [{"lambda_decay": run[3]["kernel_search"]["lambda_decay"],
                                 "lambda_min": run[3]["kernel_search"]["large_lambda_min"],
                                 "misfit": float(run[0].loss.mean()), "search_agreement": run[3].get("search_agreement")}
                                for run in runs]
        search["pick_steps"] = pick
    return _package_prox(result, sampler, domain, y01, channels, scale, config, start, result.nfe, search)


def _search_runs(y01, config: RestoreConfig, searcher, image_prior, priors, trial: ProximalConfig,
                 progress: "RunProgress") -> list[tuple]:
    """One kernel search and restoration per value of config.prox.search_decays: (result,
    sampler, domain, record) each; the restorations run with `trial`'s steps (short ones
    with config.prox.search_pick_steps), their steps reported through `progress`."""
    decays = config.prox.search_decays
    progress.add(len(decays))
    runs = []
    for decay in decays:
        found, search = search_kernel_of(y01, config, searcher, priors, trial.autocast, decay)
        lam = config.prox.lam if _trusted(search, config.prox.search_trust) else config.prox.search_lambda
        result, sampler, domain = _prox_solve(y01, found, replace(trial, lam=lam), image_prior, config,
                                              progress.next())
        runs.append((result, sampler, domain, {**search, "restore_lambda": lam}))
    return runs


def _agreed_lambda(search: dict, runs: list[tuple], best: int, round_: range, config: RestoreConfig) -> None:
    """Records in `search` the consensus of the kept run's kernel with the others searched in
    its round (runs[i] for i in round_: the mean kernel MNC, in [0, 1]; none with no other),
    and, when it reaches config.prox.search_consensus and the kernel is not already trusted,
    sets its "restore_lambda" to config.prox.search_consensus_lambda. No truth needed:
    searches with other decays that land on the kept kernel make it more likely the blur."""
    kept = runs[best][0].estimates["kernel"][0, 0]
    others = [runs[i][0].estimates["kernel"][0, 0] for i in round_ if i != best]
    if not others:
        return
    search["search_consensus"] = consensus = sum(float(kernel_mnc(kept, k)) for k in others) / len(others)
    level = config.prox.search_consensus
    if level is not None and consensus >= level and not _trusted(search, config.prox.search_trust):
        search["restore_lambda"] = config.prox.search_consensus_lambda


def _refined(result, domain: Domain, y01, config: RestoreConfig) -> torch.Tensor:
    """The kernel (K, K) of a restoration `result` on `domain` refit to its image
    (`solvers.kernel_search.refine_kernel` with config.prox.search_refine's settings)."""
    y = _on_grid(y01, domain, config)
    return refine_kernel(result.estimates["image"], y, result.estimates["kernel"][0, 0], domain.mask(config.device),
                         edge_fraction=config.prox.search_refine, iters=config.prox.search_refine_iters,
                         k_thresh=kernel_search_config(config, False).k_thresh)


def _pick_steps(config: RestoreConfig) -> int:
    """The candidates' short restorations' steps; 0: restored in full (so also when the
    full restoration is no longer than the short one)."""
    pick = config.prox.search_pick_steps
    return pick if pick < config.prox.steps else 0


def _least_misfit(runs: list[tuple]) -> int:
    """The index of the run whose restoration fits the photo best (`SolverResult.loss`)."""
    misfits = [float(run[0].loss.mean()) for run in runs]
    return min(range(len(runs)), key=misfits.__getitem__)


def _falls_back(run: tuple, config: RestoreConfig) -> bool:
    """The kept run's kernel views agree less than config.prox.search_fallback, and its search
    ran at a floor other than Pan's (only kernels over `KernelSearchConfig.large_kernel` get
    config.prox.search_lambda_min; else there is nothing else to run)."""
    result, search = run[0], run[3]
    agreement = search.get("search_agreement")
    large = result.estimates["kernel"].shape[-1] > search["kernel_search"]["large_kernel"]
    return (agreement is not None and agreement < config.prox.search_fallback and large
            and config.prox.search_lambda_min != PanL0Params.lambda_min)


def _trusted(search: dict, trust: float | None) -> bool:
    """Views that found one blur: the kernel is trusted like a known one (one view: never)."""
    return trust is not None and search.get("search_agreement", -1.0) >= trust


def _prox_solve(y01, kernel, settings: ProximalConfig, image_prior: DiffusionPrior, config: RestoreConfig, callback):
    """One run of the proximal sampler: config.samples restorations of y01 (1, C, H, W) in
    [0, 1] with this kernel (K, K) (None: blind from the delta kernel)."""
    size = kernel.shape[-1] if kernel is not None else config.kernel_size
    domain = Domain.for_measurement(y01.shape[-2:], size, config.prox.border,
                                    image_prior.network.config.spatial_multiple)
    y = _on_grid(y01, domain, config)
    sampler = ProximalSampler(image_prior, domain, settings)
    n = config.samples
    known = {} if kernel is None else {"kernel": kernel.to(config.device)[None, None]}
    result = sampler.solve(y.expand(n, *y.shape[1:]), known=known, kernel_size=size,
                           generator=sample_generators(config), callback=callback)
    return result, sampler, domain


def _on_grid(y01, domain: Domain, config: RestoreConfig) -> torch.Tensor:
    """The photo (1, C, H, W) in [0, 1] as the proximal sampler sees it: three channels in
    [-1, 1] (the network's range) on the domain's grid, zeros outside the observed window."""
    h, w = y01.shape[-2:]
    return domain.embed(y01.expand(1, 3, h, w).to(config.device) * 2 - 1)


def _package_prox(result, sampler, domain, y01, channels, scale, config: RestoreConfig, start, nfe: int,
                  search: dict) -> RestoreResult:
    """The run's estimates cropped to the photo, and its record."""
    h, w = y01.shape[-2:]
    result.estimates["image"] = domain.crop(result.estimates["image"])
    result.frames = [{**f, "image": domain.crop(f["image"])} for f in result.frames]
    return package_result(result, channels, (h, w), config.samples, {
        # the searches run once per photo; their network calls count for every sample's image
        "method": "prox", "nfe_per_image": nfe + search.get("search_nfe", 0), "steps": sampler.num_steps,
        "scale": scale, "seconds": time.perf_counter() - start, "working_size": [h, w],
        "kernel_size": result.estimates["kernel"].shape[-1], "border": config.prox.border, "grid": list(domain.grid),
        "autocast": sampler.config.autocast, "cg_iters": sampler.cg_iters, **search})


def sample_generators(config: RestoreConfig) -> list[torch.Generator]:
    """One generator per posterior sample, seeded from config.seed (sample s depends only on
    its own generator, so a batch of samples equals them run one by one)."""
    return [torch.Generator().manual_seed(config.seed * 7919 + s) for s in range(config.samples)]


def deblur(image: torch.Tensor, config: RestoreConfig = RestoreConfig(), **kwargs) -> RestoreResult:
    """Deblurring of one photo in [0, 1]: returns the sharp image and the kernel; blind, or
    non-blind with kernel=(K, K) (then the kernel returned is the given one, normalised)."""
    return restore(image, config, turbulence=False, **kwargs)


def restore_turbulence(image: torch.Tensor, config: RestoreConfig = RestoreConfig(), **kwargs) -> RestoreResult:
    """Imaging through turbulence: the photo and its blur kernel (the proximal sampler, the
    default: the displacement left in place, no tilt, and the kernel not refit unless
    config.prox.search_refine is set), or with method "dps" image, kernel and tilt field
    estimated jointly (BlindDPS)."""
    return restore(image, config, turbulence=True, **kwargs)
