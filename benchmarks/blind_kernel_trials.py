"""Blind kernel estimation trials on TRAINING photos: which kernel step lets the proximal sampler deblur blind?

    python benchmarks/blind_kernel_trials.py --images ../shared/data/train/bsds500 --n 4 \
        --kernel-size 32 --strategies pan,pan-prox,pan-prox-l0 --jobs 2 --out trials.md

Image i (the i-th file in name order, a centre crop of --crop pixels) is blurred by a motion
kernel of --kernel-size (intensity 0.5, seed i, reflect borders) plus noise --noise, as
`benchmarks/sweep_settings.py` does. Each strategy estimates the kernel from y alone; the
image is then restored by the proximal sampler with that kernel (non-blind, its defaults),
so every row differs only in the kernel. Strategies (`blinddps.solvers.kernel_search`):

- `delta`: no deblurring kernel (the blurry input, slightly denoised), the lower bound;
- `true`: the true kernel (the upper bound of this pipeline);
- `pan`: Pan-L0's kernel (coarse to fine, L0 latent image; published parameters);
- `pan-prox`: Pan-L0's coarse-to-fine loop with the latent image replaced by the proximal
  sampler's non-blind restoration with the current kernel (`natural-rgb` as the denoiser,
  --latent-steps steps): the diffusion prior removes the noise Pan's L0 latent keeps;
- `pan-prox-l0`: as `pan-prox`, the restoration then L0-gradient smoothed (Xu et al. 2011,
  weight Pan's current lambda): sharp edges for the kernel step, as Pan's latent has;
- `chain`: the blind proximal sampler with the kernel's own reverse diffusion
  (`ProximalConfig.kernel_chain`: the kernel prior as the kernel's denoiser, the kernel step
  pulled towards its estimate, both chains re-noised), --chain-steps from --chain-t-start;
- `pan-den`: Pan-L0 on y first denoised by one call of the image prior at y's estimated
  noise level (`estimate_noise`); the final restoration still sees the noisy y;
- `...-em`: the kernel of the strategy, then refined inside the blind proximal sampler (its
  own kernel M-step from --em-start of --em-steps on, started from that kernel); the image
  is that sampler's;
- `...-kprior`: each kernel step's estimate denoised by the kernel prior (--kernel-prior) at
  timestep --kprior-t (`solvers.proximal.denoise_kernel`) before Pan's pruning.

Reported per strategy: kernel MNC against the truth, PSNR and PSNR after the best shift.
"""
from __future__ import annotations

import argparse
import datetime
import multiprocessing as mp
import time
from pathlib import Path

import torch

from blinddps import RestoreConfig, deblur, simulate
from blinddps.tasks.config import ProxSettings
from blinddps.baselines.pan_l0 import PanL0Params
from blinddps.io import atomic_write
from blinddps.metrics import kernel_mnc, psnr, psnr_upto_shift
from blinddps.physics.kernel_geometry import delta_kernel
from blinddps.priors.bundle import load_prior
from blinddps.physics.solves import Domain
from blinddps.solvers.kernel_search import KernelSearchConfig, prior_denoised, search_kernel
from blinddps.solvers.proximal import ProximalConfig, ProximalSampler

from sweep_settings import load_crops

STRATEGIES = ("delta", "true", "chain", "pan", "pan-prox", "pan-prox-l0", "pan-kprior", "pan-prox-kprior",
              "pan-prox-l0-kprior", "pan-den", "pan-den-kprior", "pan-em", "pan-den-em", "true-em")


def chain_kernel(y: torch.Tensor, priors: dict, args, seed: int) -> torch.Tensor:
    """The blind proximal sampler with the kernel's own reverse diffusion (kernel_chain): its
    final kernel, at the kernel prior's size."""
    image_prior, kernel_prior = priors["image"], priors["kernel"]
    size = kernel_prior.network.config.image_size
    h, w = y.shape[-2:]
    domain = Domain.for_measurement((h, w), size, "valid", image_prior.network.config.spatial_multiple)
    config = ProximalConfig(steps=args.chain_steps, t_start=args.chain_t_start, lam=1.5, zeta=1.0, kernel_chain=True,
                            kernel_chain_weight=args.chain_weight, kernel_iters=20, autocast=True)
    result = ProximalSampler(image_prior, domain, config, kernel_prior=kernel_prior).solve(
        domain.embed(y.expand(1, 3, h, w) * 2 - 1), kernel_size=size, generator=torch.Generator().manual_seed(seed))
    return result.estimates["kernel"][0, 0].float()


def pan_params(text: str) -> PanL0Params:
    """--pan "name=value,...": Pan-L0's settings with these changed (numbers, or text)."""
    changes = {}
    for item in filter(None, text.split(",")):
        name, value = item.split("=")
        default = getattr(PanL0Params(), name)
        changes[name] = type(default)(value) if not isinstance(default, str) else value
    return PanL0Params(**changes)


def em_refine(y: torch.Tensor, k: torch.Tensor, image_prior, args, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The blind proximal sampler started from kernel k (K, K): its own kernel M-step from the
    step fraction --em-start on ('valid' borders). Returns (image (1, 3, H, W) in [0, 1], kernel)."""
    h, w = y.shape[-2:]
    domain = Domain.for_measurement((h, w), k.shape[-1], "valid", image_prior.network.config.spatial_multiple)
    config = ProximalConfig(steps=args.em_steps, t_start=250, lam=args.final_lambda, zeta=1.0,
                            kernel_start=args.em_start, kernel_iters=args.em_iters, kernel_edges=args.em_edges,
                            autocast=True)
    result = ProximalSampler(image_prior, domain, config).solve(
        domain.embed(y.expand(1, 3, h, w) * 2 - 1), kernel_init=k[None, None],
        generator=torch.Generator().manual_seed(seed))
    image = ((domain.crop(result.estimates["image"]) + 1) / 2).clamp(0, 1)
    return image.float(), result.estimates["kernel"][0, 0].float()


def estimate(strategy: str, y: torch.Tensor, truth: torch.Tensor, size: int, priors: dict, args, seed: int) -> torch.Tensor:
    """The (K, K) kernel of one strategy from y (1, 3, H, W) in [0, 1]."""
    if strategy == "true":
        return truth
    if strategy == "delta":
        return delta_kernel(size)
    if strategy == "chain":
        return chain_kernel(y, priors, args, seed)
    parts = strategy.split("-")
    if parts[0] != "pan" or not set(parts[1:]) <= {"prox", "l0", "kprior", "den", "em"}:
        raise ValueError(f"unknown strategy {strategy!r}")
    if "den" in parts:
        y = prior_denoised(y, priors["search"], autocast=True, scale=args.den_scale)
    latent = ("prox-l0" if "l0" in parts else "prox") if "prox" in parts else "l0"
    # denoise=False: the "den" strategies denoise above, the others search on y itself
    config = KernelSearchConfig(latent=latent, latent_steps=args.latent_steps,
                                kernel_prior_t=args.kprior_t if "kprior" in parts else 0, autocast=True,
                                denoise=False, k_thresh=args.k_thresh, refit=args.refit, views=args.views)
    k, *_ = search_kernel(y, size, image_prior=priors["search"], kernel_prior=priors.get("kernel"), config=config,
                         generator=torch.Generator().manual_seed(seed),
                         params=None if args.pan == "product" else pan_params(args.pan))
    return k[0, 0].float()


def run_item(job: tuple) -> list[dict]:
    index, name, x, args = job
    torch.set_num_threads(1)
    priors = {"image": load_prior("natural-rgb")}
    priors["search"] = load_prior(args.search_prior) if args.search_prior else priors["image"]
    if any("kprior" in s or s == "chain" for s in args.strategies):
        priors["kernel"] = load_prior(args.kernel_prior, kind="kernel")
    y, truth = simulate(x, blur="motion", kernel_size=args.kernel_size, intensity=0.5, noise=args.noise, seed=index)
    rows = []
    for strategy in args.strategies:
        start = time.perf_counter()
        k = estimate(strategy.removesuffix("-em"), y, truth["kernel"], args.kernel_size, priors, args, index)
        if strategy.endswith("-em"):
            image, k = em_refine(y, k, priors["image"], args, index)
        seconds = time.perf_counter() - start
        if not strategy.endswith("-em"):
            config = RestoreConfig.from_options(method="prox", seed=index, max_size=0, prox_lambda=args.final_lambda)
            image = deblur(y, config, kernel=k, priors={"image": priors["image"]}).image
        rows.append({"image": name, "strategy": strategy, "mnc": kernel_mnc(k, truth["kernel"]).item(),
                     "psnr": psnr(image, x).item(),
                     "psnr_aligned": psnr_upto_shift(image, x, max_shift=16, crop=16).item(),
                     "blurry": psnr(y, x).item(), "seconds": seconds})
    return rows


def report(rows: list[dict], args, seconds: float) -> str:
    lines = [f"# Blind kernel trials ({datetime.date.today()})", "",
             f"- command: `python benchmarks/blind_kernel_trials.py {' '.join(args.argv)}`",
             f"- images: {args.n} of {args.images} from number {args.offset} ({args.crop}px centre crops); motion kernels "
             f"{args.kernel_size}px, intensity 0.5, noise {args.noise}; reflect borders; wall time {seconds:.0f} s",
             f"- blurry input: {sum(r['blurry'] for r in rows if r['strategy'] == args.strategies[0]) / args.n:.2f} dB",
             "", "| strategy | kernel MNC | PSNR (dB) | PSNR aligned (dB) | s / kernel |", "|---|---|---|---|---|"]
    for s in args.strategies:
        sel = [r for r in rows if r["strategy"] == s]
        mean = {key: sum(r[key] for r in sel) / len(sel) for key in ("mnc", "psnr", "psnr_aligned", "seconds")}
        lines.append(f"| {s} | {mean['mnc']:.3f} | {mean['psnr']:.2f} | {mean['psnr_aligned']:.2f} | {mean['seconds']:.1f} |")
    lines += ["", "Per image (MNC / aligned PSNR):", "", "| image | " + " | ".join(args.strategies) + " |",
              "|---" * (len(args.strategies) + 1) + "|"]
    for name in dict.fromkeys(r["image"] for r in rows):
        cells = [next(f"{r['mnc']:.2f} / {r['psnr_aligned']:.2f}" for r in rows if r["image"] == name and r["strategy"] == s)
                 for s in args.strategies]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    import sys
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=Path, required=True)
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--offset", type=int, default=0, help="skip the first this many photos")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--kernel-size", type=int, default=32)
    p.add_argument("--noise", type=float, default=0.01)
    p.add_argument("--strategies", default="delta,true,pan,pan-prox,pan-prox-l0")
    p.add_argument("--latent-steps", type=int, default=6)
    p.add_argument("--kernel-prior", default="kernel-64", help="kernel prior of the -kprior strategies")
    p.add_argument("--kprior-t", type=int, default=100, help="timestep at which it denoises the kernel")
    p.add_argument("--final-lambda", type=float, default=ProxSettings.lam,
                   help="lambda of the final non-blind restoration (larger: more robust to kernel errors)")
    p.add_argument("--chain-steps", type=int, default=30)
    p.add_argument("--chain-t-start", type=int, default=999)
    p.add_argument("--chain-weight", type=float, default=1.0)
    p.add_argument("--pan", default="", help='Pan-L0 settings changed from the published ones, e.g. '
                   '"lambda_pixel=0,xk_iter=10"; "product": the settings blinddps deblur uses '
                   '(kernel_search.search_params)')
    p.add_argument("--k-thresh", type=float, default=KernelSearchConfig.k_thresh,
                   help="the search's final threshold max / K (with --pan product; --pan sets its own)")
    p.add_argument("--refit", action=argparse.BooleanOptionalAction, default=KernelSearchConfig.refit,
                   help="search again at the size the found kernel fills (KernelSearchConfig.refit)")
    p.add_argument("--search-prior", default=ProxSettings.search_prior,
                   help="image prior of the search (denoising, prox latents); '': natural-rgb, the restoring one")
    p.add_argument("--views", type=int, default=KernelSearchConfig.views,
                   help="views of the photo searched, kernels merged (KernelSearchConfig.views)")
    p.add_argument("--den-scale", type=float, default=1.0, help="-den: the denoiser's noise level, x the estimated one")
    p.add_argument("--em-steps", type=int, default=20, help="-em: steps of the blind proximal refinement")
    p.add_argument("--em-start", type=float, default=0.5, help="-em: step fraction where the kernel starts to move")
    p.add_argument("--em-iters", type=int, default=20, help="-em: kernel iterations per step")
    p.add_argument("--em-edges", type=float, default=1.0, help="-em: share of the strongest gradients the kernel step uses")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    args.argv = sys.argv[1:]
    args.strategies = args.strategies.split(",")
    for s in args.strategies:
        if s not in STRATEGIES:
            raise SystemExit(f"unknown strategy {s!r}: expected some of {', '.join(STRATEGIES)}")
    crops = load_crops(args.images, args.offset + args.n, args.crop)[args.offset :]
    jobs = [(args.offset + i, name, x, args) for i, (name, x) in enumerate(crops)]
    start = time.perf_counter()
    if args.jobs > 1:
        with mp.get_context("spawn").Pool(args.jobs) as pool:
            rows = [r for part in pool.map(run_item, jobs) for r in part]
    else:
        rows = [r for job in jobs for r in run_item(job)]
    text = report(rows, args, time.perf_counter() - start)
    atomic_write(args.out, lambda tmp: tmp.write_text(text))
    print(text)


if __name__ == "__main__":
    main()
