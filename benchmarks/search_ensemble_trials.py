"""Several blind kernel searches per photo and a rule that picks one: trials on TRAINING photos.

    python benchmarks/search_ensemble_trials.py --images ../shared/data/train/bsds500 --n 16 \
        --variants base,T,R,G,B --jobs 2 --out /tmp/ensemble.pt
    python benchmarks/search_ensemble_trials.py --restore /tmp/ensemble.pt --combos base,base+T --jobs 2
    python benchmarks/search_ensemble_trials.py --restore /tmp/ensemble.pt --combos base+T \
        --lambdas 1.5,3,12 --jobs 2 --save /tmp/lambdas.pt
    python benchmarks/search_ensemble_trials.py --rules /tmp/lambdas.pt

The coarse-to-fine search (`solvers.kernel_search`) is chaotic: a small change of its input
(another denoiser, one colour channel instead of the luma, the photo transposed) moves single
photos by several dB. This script runs the search under several such changes ("variants"),
keeps every candidate kernel with the truth, and scores selection rules that do not look at
the truth (e.g. the medoid: the candidate most similar, by MNC, to the others). --restore
then restores merges of the candidates (`kernel_search.merge_kernels`, as `views` merges
them) with the product's non-blind step and scores them, at one or several lambdas; --rules
scores rules that pick the lambda from the views' agreement (`ProxSettings.search_trust`). Image i is
blurred as in `blind_kernel_trials.py` (motion kernel, intensity 0.5, seed i, noise --noise).

Variants: `base` (the product's search), `T` (the photo transposed, the kernel transposed
back: Pan's initial kernel is horizontal, so this starts it vertical), `F` (the photo rotated
by 180 degrees, the kernel rotated back: Pan's initial kernel is not symmetric about the
origin, so it starts on the other side), `R`/`G`/`B` (one colour
channel instead of the luma), `s<f>` (the denoiser at f times the estimated noise), `d<f>`
(Pan's lambdas divided by f after each alternation instead of 1.1), `m<f>` (the floor of
Pan's lambdas f instead of the product's), `e<f>` (Cho & Lee's edge selection,
`PanL0Params.edge_keep` f), several joined by `_` (e.g. `d1.05_m1e-3`), `T`
and `F` combined with the others as a prefix (e.g. `TR`, `TF`, `FR`).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from dataclasses import replace
from pathlib import Path

import torch

from blinddps import RestoreConfig, deblur, simulate
from blinddps.metrics import kernel_mnc, psnr_upto_shift
from blinddps.physics import Blur
from blinddps.priors.bundle import load_prior
from blinddps.tasks.config import ProxSettings
from blinddps.solvers.kernel_search import (KernelSearchConfig, merge_kernels, prior_denoised, search_kernel,
                                            search_params)

from sweep_settings import load_crops

CHANNELS = {"R": 0, "G": 1, "B": 2}


def run_variant(variant: str, y: torch.Tensor, size: int, prior, seed: int) -> torch.Tensor:
    """The (K, K) kernel the search finds on y (1, 3, H, W) in [0, 1] under one variant."""
    transpose = variant.startswith("T")
    rest = variant[1:] if transpose else variant
    flip = rest.startswith("F")
    rest = rest[1:] if flip else rest
    tokens = [t for t in rest.split("_") if t not in ("", "base")]  # e.g. "d1.05_m1e-3"
    if transpose:
        y = y.transpose(-1, -2)
    if flip:
        y = y.flip(-2, -1)
    for t in tokens:
        if t in CHANNELS:
            y = y[:, CHANNELS[t] : CHANNELS[t] + 1].expand_as(y)
    scale = next((float(t[1:]) for t in tokens if t.startswith("s")), 1.0)
    y = prior_denoised(y, prior, autocast=True, scale=scale)
    config = KernelSearchConfig(autocast=True, denoise=False)
    params = search_params(config, size)
    for t in tokens:
        if t.startswith("d"):  # Pan's lambdas divided by this after each alternation (1.1 published)
            params = replace(params, lambda_decay=float(t[1:]))
        elif t.startswith("m"):  # the floor of Pan's lambdas (1e-4 published)
            params = replace(params, lambda_min=float(t[1:]))
        elif t.startswith("e"):  # the kernel step sees the latent's strongest gradients only
            params = replace(params, edge_keep=float(t[1:]))
        elif t not in CHANNELS and not t.startswith("s"):
            raise ValueError(f"unknown variant {variant!r}")
    k, *_ = search_kernel(y, size, image_prior=prior, config=config, generator=torch.Generator().manual_seed(seed),
                          params=params)
    k = k[0, 0].float()
    k = k.flip(-2, -1) if flip else k  # about the origin: K is odd
    return k.T.contiguous() if transpose else k


def run_item(job: tuple) -> dict:
    index, name, x, args = job
    torch.set_num_threads(1)
    prior = load_prior(args.search_prior)
    y, truth = simulate(x, blur="motion", kernel_size=args.kernel_size, intensity=0.5, noise=args.noise, seed=index)
    kernels, seconds = {}, {}
    for v in args.variants:
        start = time.perf_counter()
        kernels[v] = run_variant(v, y, args.kernel_size, prior, index)
        seconds[v] = time.perf_counter() - start
    return {"image": name, "index": index, "x": x, "y": y, "truth": truth["kernel"].float(), "kernels": kernels,
            "seconds": seconds}


def pairwise_mnc(kernels: list[torch.Tensor]) -> torch.Tensor:
    n = len(kernels)
    m = torch.ones(n, n)
    for i in range(n):
        for j in range(i + 1, n):
            m[i, j] = m[j, i] = float(kernel_mnc(kernels[i], kernels[j]))
    return m


def restore_item(job: tuple) -> tuple[str, dict]:
    """Each merge of candidates (e.g. ["base", "T"]) of one photo, restored at each lambda: its
    kernel MNC and the aligned PSNR of the product's restoration with it (natural-rgb, seed i).
    Keys "base+T" (at the product's search_lambda) or "base+T@3" (at another lambda)."""
    item, combos, lambdas = job
    torch.set_num_threads(1)
    out = {}
    for combo in combos:
        kernels = [item["kernels"][v][None, None] for v in combo]
        k = merge_kernels(kernels, KernelSearchConfig.k_thresh)[0, 0] if len(kernels) > 1 else kernels[0][0, 0]
        for lam in lambdas:
            config = RestoreConfig.from_options(method="prox", seed=item["index"], max_size=0, prox_lambda=lam)
            image = deblur(item["y"], config, kernel=k).image
            name = "+".join(combo) + ("" if lam == ProxSettings.search_lambda else f"@{lam:g}")
            out[name] = (float(kernel_mnc(k, item["truth"])),
                         float(psnr_upto_shift(image, item["x"], max_shift=16, crop=16)),
                         *no_truth_scores(image, item["y"], k))
    return item["image"], out


def no_truth_scores(image: torch.Tensor, y: torch.Tensor, k: torch.Tensor, crop: int = 32) -> tuple[float, float]:
    """Two scores of a restoration (1, 3, H, W) in [0, 1] that need no truth, over the image
    minus crop pixels at each side: the normalised sparsity of its luma's gradients,
    ||grad||_1 / ||grad||_2 (Krishnan et al. 2011: blur raises it, so does ringing), and the
    RMS misfit to the photo y of the image blurred by k (reflect borders, as simulated)."""
    luma = image.mean(dim=1)[0, crop:-crop, crop:-crop].double()
    grad = torch.cat([(luma[1:] - luma[:-1]).flatten(), (luma[:, 1:] - luma[:, :-1]).flatten()])
    sparsity = float(grad.abs().sum() / grad.norm())
    reblurred = Blur("reflect")(image, kernel=k[None, None].to(image.dtype))
    misfit = float((reblurred - y)[..., crop:-crop, crop:-crop].pow(2).mean().sqrt())
    return sparsity, misfit


def restore_report(path: Path, combos: list[list[str]], jobs: int, lambdas: list[float],
                   save: Path | None = None) -> None:
    """--restore: the merges of a saved run's candidates, restored and scored (the means, then
    per photo with the views' agreement, the MNC between the base and T kernels, which needs
    no truth); save: those rows as a .pt file."""
    items = torch.load(path, weights_only=False)["items"]
    work = [(item, combos, lambdas) for item in items]
    if jobs > 1:
        with mp.get_context("spawn").Pool(jobs) as pool:
            rows = pool.map(restore_item, work)
    else:
        rows = [restore_item(w) for w in work]
    for name in rows[0][1]:
        values = [r[name] for _, r in rows]
        print(f"{name}: MNC {sum(v[0] for v in values) / len(values):.4f}, "
              f"PSNR aligned {sum(v[1] for v in values) / len(values):.3f} dB")
    if len(rows[0][1]) > 1:  # pick one restoration per photo by a score that needs no truth
        for label, pick in (("least sparsity", lambda r: min(r.values(), key=lambda v: v[2])),
                            ("least misfit", lambda r: min(r.values(), key=lambda v: v[3])),
                            ("best (the truth)", lambda r: max(r.values(), key=lambda v: v[1]))):
            chosen = [pick(r) for _, r in rows]
            print(f"pick by {label}: MNC {sum(v[0] for v in chosen) / len(chosen):.4f}, "
                  f"PSNR aligned {sum(v[1] for v in chosen) / len(chosen):.3f} dB")
    agreement = {item["image"]: float(kernel_mnc(item["kernels"]["base"], item["kernels"]["T"]))
                 for item in items if {"base", "T"} <= item["kernels"].keys()}
    for image, r in rows:
        agree = f"agree {agreement[image]:.2f} " if image in agreement else ""
        print(image, agree + " ".join(f"{name} {v[0]:.2f}/{v[1]:.2f}/{v[2]:.1f}/{v[3]:.4f}" for name, v in r.items()))
    if save is not None:
        torch.save({"rows": dict(rows), "agreement": agreement}, save)


def trust_report(paths: list[Path], combo: str = "base+T") -> None:
    """--rules: lambda rules scored on saved --restore rows (several files: their photos
    together): each fixed lambda, and "agreement >= tau -> lambda_low, else the product's
    search_lambda", paired against search_lambda for every photo."""
    rows, agreement = {}, {}
    for path in paths:
        saved = torch.load(path, weights_only=False)
        rows.update(saved["rows"])
        agreement.update(saved["agreement"])
    reference = [r[combo][1] for r in rows.values()]
    lows = sorted({name.split("@")[1] for r in rows.values() for name in r if name.startswith(combo + "@")}, key=float)

    def line(label: str, values: list[float]) -> None:
        diff = torch.tensor(values) - torch.tensor(reference)
        print(f"{label:34s} {sum(values) / len(values):.3f} dB, paired {float(diff.mean()):+.3f} ± "
              f"{float(diff.std() / len(diff) ** 0.5):.3f}, up {int((diff > 0.01).sum())} down "
              f"{int((diff < -0.01).sum())} worst {float(diff.min()):+.2f}")

    print(f"{len(rows)} photos, {combo}")
    for low in [*lows, None]:
        line(f"lambda {low or ProxSettings.search_lambda}",
             [r[f"{combo}@{low}" if low else combo][1] for r in rows.values()])
    for tau in (0.8, 0.85, 0.9, 0.95):
        for low in lows:
            line(f"agreement >= {tau} -> lambda {low}",
                 [r[f"{combo}@{low}"][1] if agreement[i] >= tau else r[combo][1] for i, r in rows.items()])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=Path, help="the training photos (not with --restore)")
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--offset", type=int, default=0, help="skip the first this many photos")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--kernel-size", type=int, default=64)
    p.add_argument("--noise", type=float, default=0.01)
    p.add_argument("--variants", default="base,T,R,G,B")
    p.add_argument("--search-prior", default=ProxSettings.search_prior, help="the image prior the search denoises with")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--out", type=Path, help="a .pt file with every candidate and the truth")
    p.add_argument("--restore", type=Path, help="instead: restore the merges --combos of this saved run's candidates")
    p.add_argument("--combos", default="base,base+T", help="with --restore: merges of variants, e.g. base,base+T")
    p.add_argument("--lambdas", default=str(ProxSettings.search_lambda),
                   help="with --restore: the restoration's lambdas, e.g. 1.5,3,6,12")
    p.add_argument("--save", type=Path, help="with --restore: the scores per photo as a .pt file")
    p.add_argument("--rules", help="instead: score lambda rules on --save files, e.g. a.pt,b.pt")
    args = p.parse_args()
    if args.rules:
        trust_report([Path(f) for f in args.rules.split(",")])
        return
    if args.restore:
        restore_report(args.restore, [c.split("+") for c in args.combos.split(",")], args.jobs,
                       [float(v) for v in args.lambdas.split(",")], args.save)
        return
    if args.out is None or args.images is None:
        p.error("--images and --out are required (or --restore)")
    args.variants = args.variants.split(",")
    crops = load_crops(args.images, args.offset + args.n, args.crop)[args.offset :]
    jobs = [(args.offset + i, name, x, args) for i, (name, x) in enumerate(crops)]
    if args.jobs > 1:
        with mp.get_context("spawn").Pool(args.jobs) as pool:
            items = pool.map(run_item, jobs)
    else:
        items = [run_item(j) for j in jobs]
    torch.save({"variants": args.variants, "items": items, "args": vars(args) | {"images": str(args.images),
                                                                                 "out": str(args.out)}}, args.out)
    for it in items:
        ks = [it["kernels"][v] for v in args.variants]
        truth_mnc = [float(kernel_mnc(k, it["truth"])) for k in ks]
        m = pairwise_mnc(ks)
        medoid = int(m.sum(dim=1).argmax())
        print(it["image"], " ".join(f"{v}:{s:.2f}" for v, s in zip(args.variants, truth_mnc)),
              f"| medoid {args.variants[medoid]} {truth_mnc[medoid]:.2f}")


if __name__ == "__main__":
    main()
