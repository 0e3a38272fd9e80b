"""Which searched kernels to draw, and how to pick among them: trials on TRAINING photos.

    python benchmarks/candidate_trials.py --images ../shared/data/train/bsds500 --offset 144 --n 24 \
        --searches 1.1@1e-3,1.032@1e-3,1.05@1e-3,1.1@3e-3,1.1@1e-4,1.032@1e-4,1.05@1e-4 \
        --jobs 2 --out /tmp/cand.pt
    python benchmarks/candidate_trials.py --report /tmp/cand.pt

The blind default searches one kernel per lambda decay at the latent floor 1e-3 and, when the
kept kernel's views disagree (`ProxSettings.search_fallback`), again at Pan's floor 1e-4; it
keeps the kernel whose short restoration fits the photo best. This script runs every search
of --searches (`decay@floor`) on each photo and records, per kernel, its views' agreement,
its extent, its MNC to the truth, the short (--cheap steps) and the full restoration's
misfit and normalised gradient sparsity (||grad x||_1 / ||grad x||_2 of the luma, Krishnan
et al. 2011: a blurrier restoration scores higher), and the full restoration's aligned PSNR.
--report then scores pick rules that do not look at the truth, against the shipped one and
the oracle. Image i is blurred as in `sweep_settings.py` (motion kernel of --kernel-size,
intensity 0.5, seed i, noise --noise, reflect borders).
"""
from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import replace
from pathlib import Path

import torch

from blinddps import RestoreConfig, simulate
from blinddps.baselines.pan_l0 import PanL0Params
from blinddps.metrics import kernel_mnc, psnr_upto_shift
from blinddps.physics import Blur, GaussianNoise

from pick_trials import map_photos, paired_cells, photo_parser, restored, task
from shake_kernels import shake_kernel
from sweep_settings import load_crops


def sparsity(images: torch.Tensor) -> float:
    """Normalised sparsity of the first image's luma gradients (no truth needed)."""
    luma = images[0].mean(0)
    grads = torch.cat([(luma[1:] - luma[:-1]).flatten(), (luma[:, 1:] - luma[:, :-1]).flatten()])
    return (grads.abs().sum() / grads.norm()).item()


def extent(kernel: torch.Tensor, rel: float = 0.05) -> int:
    """The longer side of the box holding the kernel's values of at least rel x its maximum."""
    mask = kernel >= rel * kernel.max()
    return int(max(mask.any(0).sum(), mask.any(1).sum()))


def _photo(index: int, x: torch.Tensor, args) -> tuple:
    """Photo `index` blurred as the trials blur it (args.blur, default motion; the true kernel
    of `blur_size(index, args)`, from `shake_kernels` with args.shake; borders args.padding,
    default reflect; rounded to 8 bits with args.quantize), with the truth, the
    product's settings at --kernel-size and the restoring image prior (one thread: the jobs
    run side by side)."""
    torch.set_num_threads(1)
    padding = getattr(args, "padding", "reflect")
    if getattr(args, "shake", False):
        g = torch.Generator().manual_seed(index)
        kernel = shake_kernel(blur_size(index, args), g).to(x.dtype)
        y, truth = Blur(padding=padding)(x, kernel=kernel[None, None]), {"kernel": kernel}
        y = (GaussianNoise(args.noise)(y, generator=g) if args.noise > 0 else y).clamp(0, 1)
    else:
        y, truth = simulate(x, blur=getattr(args, "blur", "motion"), kernel_size=blur_size(index, args),
                            intensity=0.5, noise=args.noise, padding=padding, seed=index)
    if getattr(args, "quantize", False):  # 8-bit photos, as the Levin files are
        y = (y * 255).round() / 255
    config = RestoreConfig.from_options(seed=index, max_size=0, kernel_size=args.kernel_size).resolved()
    return y, truth, config, task.load_task_prior("image", config.image_prior, "cpu", "")


def blur_size(index: int, args) -> int:
    """The true kernel's size for photo `index`: the (index mod n)-th of --blur-sizes, or the
    searched --kernel-size when none are given."""
    sizes = [int(s) for s in str(getattr(args, "blur_sizes", "") or "").split(",") if s]
    return sizes[index % len(sizes)] if sizes else args.kernel_size


def run_item(job: tuple) -> dict:
    """Every search of one photo, with its restorations' misfits, sparsity and scores."""
    index, name, x, args = job
    y, truth, base, prior = _photo(index, x, args)
    searcher = task.search_prior(base, prior, None)
    settings = replace(task.prox_config(base), lam=base.prox.search_lambda)
    out = {"image": name, "index": index, "candidates": []}
    for decay, floor in args.searches:
        config = replace(base, prox=replace(base.prox, search_lambda_min=floor))
        start = time.perf_counter()
        kernel, search = task._search_kernel(y, config, searcher, None, settings.autocast, decay)
        cand = {"decay": decay, "floor": floor, "agreement": search.get("search_agreement"),
                "search_s": time.perf_counter() - start, "mnc": kernel_mnc(kernel, truth["kernel"]).item(),
                "extent": extent(kernel), "kernel": kernel.half()}
        images, misfit, cand["cheap_s"] = restored(y, kernel, settings, prior, config, args.cheap, 1)
        cand["cheap_misfit"], cand["cheap_sparsity"] = misfit.mean().item(), sparsity(images)
        images, misfit, cand["full_s"] = restored(y, kernel, settings, prior, config, base.prox.steps, 1)
        cand["misfit"], cand["sparsity"] = misfit.mean().item(), sparsity(images)
        cand["psnr"] = psnr_upto_shift(images, x, max_shift=16, crop=16).item()
        out["candidates"].append(cand)
    print(name, [round(c["psnr"], 2) for c in out["candidates"]], flush=True)
    return out


def fallback_item(job: tuple) -> dict:
    """The first round only (--searches at floor 1e-3, short restorations); when its pick's
    views disagree (the product's fallback), the fallback searches at Pan's floor for each
    decay of --fallback-decays too, and the full restorations of the kernels that
    --fallback-rules (one decay subset per rule) keep. Photos that do not fall back cost the
    first round only."""
    index, name, x, args = job
    y, truth, base, prior = _photo(index, x, args)
    searcher = task.search_prior(base, prior, None)
    settings = replace(task.prox_config(base), lam=base.prox.search_lambda)

    def candidate(decay: float, floor: float) -> dict:
        config = replace(base, prox=replace(base.prox, search_lambda_min=floor))
        kernel, search = task._search_kernel(y, config, searcher, None, settings.autocast, decay)
        _, misfit, _ = restored(y, kernel, settings, prior, config, args.cheap, 1)
        return {"decay": decay, "floor": floor, "agreement": search.get("search_agreement"), "kernel": kernel,
                "mnc": kernel_mnc(kernel, truth["kernel"]).item(), "cheap_misfit": misfit.mean().item()}

    first = [candidate(d, f) for d, f in args.searches]
    out = {"image": name, "index": index, "falls_back": _pick(first, "cheap_misfit")["agreement"] < 0.6}
    if out["falls_back"]:
        second = [candidate(d, PanL0Params.lambda_min) for d in args.fallback_decays]
        out["rules"] = {}
        for rule in args.fallback_rules:
            kept = _pick([c for c in second if c["decay"] in rule], "cheap_misfit")
            images, _, _ = restored(y, kept["kernel"], settings, prior, base, base.prox.steps, 1)
            out["rules"][rule] = {"decay": kept["decay"], "mnc": kept["mnc"],
                                  "psnr": psnr_upto_shift(images, x, max_shift=16, crop=16).item()}
    print(name, out["falls_back"], {str(r): round(v["psnr"], 2) for r, v in out.get("rules", {}).items()}, flush=True)
    return out


def report_fallback(path: Path) -> None:
    rows = torch.load(path, weights_only=False)
    falls = [r for r in rows if r["falls_back"]]
    print(f"{len(rows)} photos, {len(falls)} fall back")
    if not falls:
        return
    rules = list(falls[0]["rules"])
    for r in falls:
        print(r["image"], " ".join(f"{rule}: {v['psnr']:.2f} (decay {v['decay']}, MNC {v['mnc']:.2f})"
                                   for rule, v in r["rules"].items()))
    for rule in rules:
        print(f"{rule}: mean {sum(r['rules'][rule]['psnr'] for r in falls) / len(falls):.2f} dB over the photos that fall back")


def _pick(cands: list[dict], key: str) -> dict:
    return min(cands, key=lambda c: c[key])


def shipped(row: dict, first: list, second: list, fallback: float = 0.6) -> dict:
    """The shipped rule: least short misfit among `first`; if its views agree less than
    `fallback`, least short misfit among `second` instead (empty: no fallback)."""
    pick = _pick(first, "cheap_misfit")
    if second and pick["agreement"] < fallback:
        pick = _pick(second, "cheap_misfit")
    return pick


def rules(row: dict, groups: dict) -> dict[str, dict]:
    """Pick rules by name -> the kept candidate of one photo."""
    c = row["candidates"]
    first, third, pan = groups["1e-3"](c), groups["3e-3"](c), groups["1e-4"](c)
    pan11 = [k for k in pan if k["decay"] == 1.1]
    out = {"shipped": shipped(row, first, pan),
           "no fallback": shipped(row, first, []),
           "fallback 1.1 only": shipped(row, first, pan11),
           "+3e-3 in first": shipped(row, first + third, pan),
           "+3e-3, fallback 1.1": shipped(row, first + third, pan11),
           "all, least misfit": _pick(c, "cheap_misfit"),
           "oracle (shipped set)": max(first + pan, key=lambda k: k["psnr"]),
           "oracle (all)": max(c, key=lambda k: k["psnr"])}
    for margin in (0.01, 0.02, 0.04):
        def sparse_within(cands, m=margin):
            best = _pick(cands, "cheap_misfit")["cheap_misfit"]
            return _pick([k for k in cands if k["cheap_misfit"] <= best * (1 + m)], "cheap_sparsity")
        pick = sparse_within(first)
        if pick["agreement"] < 0.6 and pan:
            pick = sparse_within(pan)
        out[f"sparsest within {margin:.0%}"] = pick
        out[f"longest within {margin:.0%}"] = max(
            [k for k in first if k["cheap_misfit"] <= _pick(first, "cheap_misfit")["cheap_misfit"] * (1 + margin)],
            key=lambda k: k["extent"])
    return out


def report(path: Path) -> None:
    rows = torch.load(path, weights_only=False)
    groups = _groups()
    table = [rules(r, groups) for r in rows]
    mean = lambda v: sum(v) / len(v)
    base = [t["shipped"]["psnr"] for t in table]
    print(f"{len(rows)} photos ({rows[0]['image']}...); searches "
          f"{[(k['decay'], k['floor']) for k in rows[0]['candidates']]}")
    print("| rule | aligned PSNR | paired vs shipped (s.e.) | up / down | worst | MNC | searches / photo |")
    print("|---|---|---|---|---|---|---|")
    for name in table[0]:
        picks = [t[name] for t in table]
        diff = [p["psnr"] - b for p, b in zip(picks, base)]
        print(f"| {name} | {mean([p['psnr'] for p in picks]):.2f} | {paired_cells(diff)} | "
              f"{mean([p['mnc'] for p in picks]):.3f} | |")
    falls = sum(shipped(r, groups["1e-3"](r["candidates"]), [])["agreement"] < 0.6 for r in rows)
    print(f"photos that fall back: {falls}; times: search "
          f"{mean([c['search_s'] for r in rows for c in r['candidates']]):.1f} s, short "
          f"{mean([c['cheap_s'] for r in rows for c in r['candidates']]):.1f} s, full "
          f"{mean([c['full_s'] for r in rows for c in r['candidates']]):.1f} s")


def consensus(cands: list[dict], kept: dict) -> float:
    """Mean MNC between the kept kernel and the other kernels searched in its round (no truth
    needed): searches with other decays that land on the same kernel."""
    others = [k for k in cands if k is not kept and k["floor"] == kept["floor"]]
    if not others:
        return 0.0
    return sum(kernel_mnc(kept["kernel"].float(), k["kernel"].float()).item() for k in others) / len(others)


def relambda_item(job: tuple) -> dict:
    """The shipped pick's kernel of one photo restored at each of --lambdas."""
    row, x, args = job
    y, _, config, prior = _photo(row["index"], x, args)
    groups = _groups()
    kept = shipped(row, groups["1e-3"](row["candidates"]), groups["1e-4"](row["candidates"]))
    psnr = {}
    for lam in args.lambdas:
        settings = replace(task.prox_config(config), lam=lam)
        images, _, _ = restored(y, kept["kernel"].float(), settings, prior, config, config.prox.steps, 1)
        psnr[lam] = psnr_upto_shift(images, x, max_shift=16, crop=16).item()
    cands = row["candidates"]
    return {"image": row["image"], "psnr": {**psnr, 12.0: kept["psnr"]}, "mnc": kept["mnc"],
            "agreement": kept["agreement"], "consensus": consensus(cands, kept)}


def report_lambdas(path: Path) -> None:
    """Rules 'confidence >= tau -> lambda_low, else 12' by the views' agreement and by the consensus."""
    rows = torch.load(path, weights_only=False)
    mean = lambda v: sum(v) / len(v)
    lambdas = sorted(rows[0]["psnr"])
    print(f"{len(rows)} photos; fixed lambdas: " + ", ".join(
        f"{lam:g}: {mean([r['psnr'][lam] for r in rows]):.2f}" for lam in lambdas))
    print("| confidence | tau | lambda_low | aligned PSNR | paired vs 12 (s.e.) | up / down | worst |")
    print("|---|---|---|---|---|---|---|")
    for key in ("agreement", "consensus", "both"):
        for tau in (0.8, 0.85, 0.9, 0.95):
            for low in [lam for lam in lambdas if lam < 12]:
                conf = lambda r: min(r["agreement"], r["consensus"]) if key == "both" else r[key]
                diff = [(r["psnr"][low] if conf(r) >= tau else r["psnr"][12.0]) - r["psnr"][12.0] for r in rows]
                print(f"| {key} | {tau} | {low:g} | {mean([r['psnr'][12.0] for r in rows]) + mean(diff):.2f} | "
                      f"{paired_cells(diff)} |")
    high = [lam for lam in lambdas if lam > 12]
    if high:
        print("\n| agreement under | lambda_high | aligned PSNR | paired vs 12 (s.e.) | up / down | worst |")
        print("|---|---|---|---|---|---|")
        for tau in (0.4, 0.5, 0.6, 0.7):
            for hi in high:
                diff = [(r["psnr"][hi] if r["agreement"] < tau else r["psnr"][12.0]) - r["psnr"][12.0] for r in rows]
                print(f"| {tau} | {hi:g} | {mean([r['psnr'][12.0] for r in rows]) + mean(diff):.2f} | "
                      f"{paired_cells(diff)} |")
    corr = lambda a, b: torch.corrcoef(torch.tensor([a, b]))[0, 1].item()
    print(f"correlation with the kept kernel's MNC: agreement {corr([r['agreement'] for r in rows], [r['mnc'] for r in rows]):.2f}, "
          f"consensus {corr([r['consensus'] for r in rows], [r['mnc'] for r in rows]):.2f}")


def _groups() -> dict:
    return {f: (lambda cands, f=float(f): [k for k in cands if k["floor"] == f]) for f in ("1e-3", "3e-3", "1e-4")}


def main() -> None:
    p = photo_parser(__doc__)
    p.add_argument("--cheap", type=int, default=4, help="steps of the short restorations")
    p.add_argument("--searches", default="1.1@1e-3,1.032@1e-3,1.05@1e-3,1.1@1e-4,1.032@1e-4,1.05@1e-4",
                   help="decay@floor of each search")
    p.add_argument("--relambda", type=Path, help="instead: restore a saved run's shipped picks at --lambdas")
    p.add_argument("--lambdas", default="1.5,3,6")
    p.add_argument("--report-lambdas", type=Path, help="instead: score a saved --relambda run")
    p.add_argument("--fallback-only", action="store_true",
                   help="instead: the first round (--searches) on every photo, and on those that fall back the "
                        "fallback rounds of --fallback-rules")
    p.add_argument("--fallback-rules", default="1.1;1.1,1.032,1.05",
                   help="the fallback round's decays of each rule, rules separated by ';'")
    p.add_argument("--report-fallback", type=Path, help="instead: score a saved --fallback-only run")
    args = p.parse_args()
    if args.report:
        return report(args.report)
    if args.report_lambdas:
        return report_lambdas(args.report_lambdas)
    if args.report_fallback:
        return report_fallback(args.report_fallback)
    args.searches = [tuple(float(v) for v in s.split("@")) for s in args.searches.split(",") if s]
    if args.fallback_only:
        args.fallback_decays = sorted({float(d) for rule in args.fallback_rules.split(";") for d in rule.split(",")})
        args.fallback_rules = [tuple(float(d) for d in rule.split(",")) for rule in args.fallback_rules.split(";")]
        map_photos(fallback_item, args)
        return report_fallback(args.out)
    if args.relambda:
        rows = torch.load(args.relambda, weights_only=False)
        args.lambdas = [float(v) for v in args.lambdas.split(",")]
        crops = dict(load_crops(args.images, rows[-1]["index"] + 1, args.crop))
        with mp.get_context("spawn").Pool(args.jobs) as pool:
            out = pool.map(relambda_item, [(r, crops[r["image"]], args) for r in rows], chunksize=1)
        torch.save(out, args.out)
        return report_lambdas(args.out)
    map_photos(run_item, args)
    report(args.out)


if __name__ == "__main__":
    main()
