"""Cheaper picks among the searched kernels, and posterior means: trials on TRAINING photos.

    python benchmarks/pick_trials.py --images ../shared/data/train/bsds500 --offset 120 --n 24 \
        --jobs 2 --out /tmp/pick.pt
    python benchmarks/pick_trials.py --report /tmp/pick.pt

The blind proximal sampler searches one kernel per lambda decay (`ProxSettings.search_decays`)
and keeps the one whose restoration has the least data misfit. Restoring each in full (as it
did before `ProxSettings.search_pick_steps`) made the kernels not kept half of a photo's time. This script records, per photo and
searched kernel, the misfit after a short restoration (--cheap steps, e.g. 4 and 8 of the
default 20) beside the full one's, and the full restoration's first --samples posterior
samples, so that --report can score (without the truth) the pick by a short restoration's
misfit, and the mean of 1, 2, ... samples. Image i is blurred as in `sweep_settings.py`
(motion kernel of --kernel-size, intensity 0.5, seed i, noise --noise, reflect borders).
"""
from __future__ import annotations

import argparse
import importlib
import multiprocessing as mp
import time
from dataclasses import replace
from pathlib import Path

import torch

from blinddps import RestoreConfig, simulate
from blinddps.metrics import kernel_mnc, psnr_upto_shift

from sweep_settings import load_crops

# the module, not the function `blinddps.tasks.restore` that the package exports under its name
task = importlib.import_module("blinddps.tasks.restore")


def restored(y, kernel, settings, prior, config, steps: int, samples: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(samples, 3, H, W) in [0, 1] cropped to y, their misfits (samples,), seconds."""
    start = time.perf_counter()
    result, _, domain = task._prox_solve(y, kernel, replace(settings, steps=steps), prior,
                                         replace(config, samples=samples), None)
    images = ((domain.crop(result.estimates["image"]) + 1) / 2).clamp(0, 1)
    return images, result.loss.float(), time.perf_counter() - start


def run_item(job: tuple) -> dict:
    """Every searched kernel of one photo, with its short and full restorations' misfits and scores."""
    index, name, x, args = job
    torch.set_num_threads(1)
    y, truth = simulate(x, blur="motion", kernel_size=args.kernel_size, intensity=0.5, noise=args.noise, seed=index)
    config = RestoreConfig.from_options(seed=index, max_size=0).resolved()
    prior = task.load_task_prior("image", config.image_prior, "cpu", "")
    searcher = task.search_prior(config, prior, None)
    settings = replace(task.prox_config(config), lam=config.prox.search_lambda)
    out = {"image": name, "candidates": []}
    for decay in config.prox.search_decays:
        start = time.perf_counter()
        kernel, search = task._search_kernel(y, config, searcher, None, settings.autocast, decay)
        cand = {"decay": decay, "agreement": search.get("search_agreement"), "search_s": time.perf_counter() - start,
                "mnc": kernel_mnc(kernel, truth["kernel"]).item(), "cheap": {}}
        for steps in args.cheap:
            _, misfit, seconds = restored(y, kernel, settings, prior, config, steps, 1)
            cand["cheap"][steps] = (misfit.mean().item(), seconds)
        images, misfit, seconds = restored(y, kernel, settings, prior, config, config.prox.steps, args.samples)
        cand["misfit"], cand["full_s"] = misfit.tolist(), seconds
        cand["psnr_mean"] = [psnr_upto_shift(images[:n].mean(0, keepdim=True), x, max_shift=16, crop=16).item()
                             for n in range(1, args.samples + 1)]
        out["candidates"].append(cand)
    print(name, [round(c["psnr_mean"][0], 2) for c in out["candidates"]], flush=True)
    return out


def report(path: Path) -> None:
    rows = torch.load(path, weights_only=False)
    cands = rows[0]["candidates"]
    print(f"{len(rows)} photos; decays {[c['decay'] for c in cands]}")
    full = [min(r["candidates"], key=lambda c: c["misfit"][0]) for r in rows]
    mean = lambda v: sum(v) / len(v)
    print(f"full pick (sample 1): {mean([c['psnr_mean'][0] for c in full]):.2f} dB, "
          f"MNC {mean([c['mnc'] for c in full]):.3f}")
    for n in range(2, len(cands[0]["psnr_mean"]) + 1):
        gain = [c["psnr_mean"][n - 1] - c["psnr_mean"][0] for c in full]
        print(f"  mean of {n} samples: {mean([c['psnr_mean'][n - 1] for c in full]):.2f} dB "
              f"(+{mean(gain):.2f}, min {min(gain):+.2f})")
    for steps in cands[0]["cheap"]:
        pick = [min(r["candidates"], key=lambda c: c["cheap"][steps][0]) for r in rows]
        same = sum(p is f for p, f in zip(pick, full))
        diff = [p["psnr_mean"][0] - f["psnr_mean"][0] for p, f in zip(pick, full)]
        print(f"pick by {steps}-step misfit: {mean([c['psnr_mean'][0] for c in pick]):.2f} dB, same pick {same}/{len(rows)}, "
              f"change {mean(diff):+.2f} (worst {min(diff):+.2f}), {mean([c['cheap'][steps][1] for c in pick]):.1f} s each")
    print(f"times: search {mean([c['search_s'] for r in rows for c in r['candidates']]):.1f} s, "
          f"full restoration ({len(cands[0]['misfit'])} samples) "
          f"{mean([c['full_s'] for r in rows for c in r['candidates']]):.1f} s")


def main() -> None:
    p = photo_parser(__doc__)
    p.add_argument("--cheap", default="4,8", help="step counts of the short restorations")
    p.add_argument("--samples", type=int, default=2, help="posterior samples of the full restoration")
    args = p.parse_args()
    args.cheap = [int(s) for s in args.cheap.split(",") if s]
    run_or_report(args, run_item, report)


def photo_parser(doc: str) -> argparse.ArgumentParser:
    """The trial scripts' common options: which training photos (--images, --n, --offset,
    --crop), how they are blurred (--kernel-size, --blur-sizes, --padding, --noise,
    --quantize, --shake), --jobs, --out and --report."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--offset", type=int, default=0, help="skip the first this many photos")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--kernel-size", type=int, default=64, help="the kernel size the product searches at")
    p.add_argument("--blur-sizes", default="",
                   help="sizes of the true motion kernels, comma-separated, photo i taking the (i mod n)-th "
                        "(default: --kernel-size; Levin's blur is 13-27 px searched at 64)")
    p.add_argument("--padding", choices=["reflect", "circular"], default="reflect",
                   help="the blur's borders (circular: as the Levin files are made)")
    p.add_argument("--noise", type=float, default=0.01)
    p.add_argument("--quantize", action="store_true", help="round the blurred photo to 8 bits (as the Levin files are)")
    p.add_argument("--shake", action="store_true",
                   help="true kernels from shake_kernels.py (an oscillating hand) instead of the motion generator")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--out", type=Path)
    p.add_argument("--report", type=Path, help="instead: score a saved run")
    return p


def run_or_report(args, run, report) -> None:
    """The trial scripts' last step: with --report, score that saved run; else run(job) on
    every photo (`map_photos`), save to --out and score it."""
    if args.report:
        return report(args.report)
    map_photos(run, args)
    report(args.out)


def paired_cells(diff: list[float]) -> str:
    """Table cells of paired differences (dB): mean (standard error) | up / down | worst."""
    mean = sum(diff) / len(diff)
    se = (sum((d - mean) ** 2 for d in diff) / (len(diff) - 1) / len(diff)) ** 0.5
    return (f"{mean:+.2f} ({se:.2f}) | {sum(d > 0.01 for d in diff)} / {sum(d < -0.01 for d in diff)} | "
            f"{min(diff):+.2f}")


def map_photos(run, args) -> None:
    """run((index, name, crop, args)) on photos --offset .. --offset + --n of --images, in
    --jobs processes; the list of their results saved to --out."""
    crops = load_crops(args.images, args.offset + args.n, args.crop)[args.offset:]
    jobs = [(args.offset + i, name, x, args) for i, (name, x) in enumerate(crops)]
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        rows = pool.map(run, jobs, chunksize=1)
    torch.save(rows, args.out)


if __name__ == "__main__":
    main()
