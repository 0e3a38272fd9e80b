"""Refit the found kernel to its restoration: trials on TRAINING photos.

    python benchmarks/refine_trials.py --images ../shared/data/train/bsds500 --offset 234 --n 24 \
        --variants 0.05x2,0.1x2 --jobs 2 --out /tmp/refine.pt
    python benchmarks/refine_trials.py --report /tmp/refine.pt

Each photo is restored blind by the product with the refit off (`ProxSettings.search_refine`
None); that kernel's restoration is then refit and restored again for each variant
`SHAREx ROUNDS` (`search_refine`, `search_refine_rounds`; `--iters` the refit's iterations),
every round scored, so that one search serves every variant (--error-ratio: the kernels' Levin
error ratios as well). Image i is blurred as in
`sweep_settings.py` (motion kernel of --kernel-size or --blur-sizes, intensity 0.5, seed i,
noise --noise, borders --padding, default reflect; --blur turbulence: a tilt field, then a
Gaussian blur); scores are aligned PSNR (shifts up to 16 px, 16 px borders dropped), plain
PSNR, and the kernel's MNC to the truth.
"""
from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path

import torch

from blinddps import deblur
from blinddps.bench.evaluate import _padded_deconv, error_ratio_crop
from blinddps.metrics import kernel_mnc, psnr, psnr_upto_shift
from blinddps.metrics.error_ratio import error_ratios, levin_deconv

from candidate_trials import _photo
from pick_trials import paired_cells, photo_parser, run_or_report, task


def restored_without_refit(index: int, x: torch.Tensor, args) -> dict:
    """Photo `index` blurred as the trials blur it, restored blind by the product with the
    refit off; with its last restoration on the whole working grid (`deblur` returns it
    cropped to the photo, and a refit needs the grid): the restoration made once more, same
    seed, same result.  Keys: y, truth, config, prior, found (the RestoreResult), settings
    (the proximal sampler's, at the kept lambda), result, domain."""
    y, truth, config, prior = _photo(index, x, args)
    off = replace(config, prox=replace(config.prox, search_refine=None))
    found = deblur(y, off, priors={"image": prior})
    settings = replace(task.prox_config(config), lam=found.info["restore_lambda"])
    result, _, domain = task._prox_solve(y, found.kernel, settings, prior, config, None)
    return {"y": y, "truth": truth, "config": config, "prior": prior, "found": found, "settings": settings,
            "result": result, "domain": domain}


def kernel_error_ratios(x: torch.Tensor, y: torch.Tensor, kernel: torch.Tensor, truth: torch.Tensor,
                        subpixels: tuple[int, ...] = (4,), circular: bool = False) -> dict[int, float]:
    """Levin's error ratio of a kernel (K, K) against the true one, as the bench scores a
    photo task's kernels (hyper-Laplacian deconvolution with padded borders; circular ones,
    as on the Levin files, for a circular blur), at each alignment step 1/subpixel px."""
    deconv = levin_deconv if circular else _padded_deconv
    ratios = error_ratios(x.double(), y.double(), kernel.double()[None, None], truth.double()[None, None],
                          deconv, subpixels=subpixels, crop=error_ratio_crop(x.shape[-2:]))
    return {s: r.item() for s, r in ratios.items()}


def error_ratio_summary(ratios: list[float]) -> tuple[float, float]:
    """(median, share <= 3) of error ratios, the median as the bench takes it (the mean of
    the middle two for an even count)."""
    return statistics.median(ratios), sum(r <= 3 for r in ratios) / len(ratios)


def run_item(job: tuple) -> dict:
    index, name, x, args = job
    run = restored_without_refit(index, x, args)
    y, truth, config, prior, settings = run["y"], run["truth"], run["config"], run["prior"], run["settings"]
    result, domain, found = run["result"], run["domain"], run["found"]

    def scores(res) -> dict:
        image = ((domain.crop(res.estimates["image"]) + 1) / 2).clamp(0, 1)
        kernel = res.estimates["kernel"][0, 0]
        out = {"psnr": psnr_upto_shift(image, x, max_shift=16, crop=16).item(), "plain": psnr(image, x).item(),
               "mnc": kernel_mnc(kernel, truth["kernel"]).item()}
        if args.error_ratio:  # the kernel's Levin error ratio at 1/4 px, as the bench scores it
            out["er"] = kernel_error_ratios(x, y, kernel, truth["kernel"], circular=args.padding == "circular")[4]
        return out

    out = {"image": name, "index": index, "lambda": settings.lam, "consensus": found.info.get("search_consensus"),
           "agreement": found.info.get("search_agreement"), "base": scores(result), "variants": {}}
    for share, rounds, iters in args.variants:
        refit = replace(config, prox=replace(config.prox, search_refine=share, search_refine_iters=iters))
        res, rows = result, []
        for _ in range(rounds):
            kernel = task._refined(res, domain, y, refit)
            res, _, _ = task._prox_solve(y, kernel, settings, prior, config, None)
            rows.append(scores(res))
        out["variants"][f"{share:g}x{rounds}" + (f"x{iters}" if iters != args.iters else "")] = rows
    print(name, round(out["base"]["psnr"], 2),
          {k: [round(r["psnr"], 2) for r in v] for k, v in out["variants"].items()}, flush=True)
    return out


def report(path: Path) -> None:
    rows = torch.load(path, weights_only=False)
    mean = lambda v: sum(v) / len(v)
    print(f"{len(rows)} photos ({rows[0]['image']}...): refit off {mean([r['base']['psnr'] for r in rows]):.2f} dB, "
          f"MNC {mean([r['base']['mnc'] for r in rows]):.3f}")
    er = "er" in rows[0]["base"]
    if er:
        print(f"refit off: error ratio (1/4 px) {_error_ratio_cells([r['base'] for r in rows])}")
    print("| variant | round | aligned PSNR | paired vs off (s.e.) | up / down | worst | MNC |"
          + (" median error ratio | r <= 3 |" if er else ""))
    print("|---|---|---|---|---|---|---|" + ("---|---|" if er else ""))
    for name, first in rows[0]["variants"].items():
        for k in range(len(first)):
            diff = [r["variants"][name][k]["psnr"] - r["base"]["psnr"] for r in rows]
            plain = [r["variants"][name][k]["plain"] - r["base"]["plain"] for r in rows if "plain" in r["base"]]
            if plain:
                print(f"  ({name}, round {k + 1}: plain PSNR {mean(plain):+.2f} dB paired, "
                      f"{sum(d > 0.01 for d in plain)} up / {sum(d < -0.01 for d in plain)} down)")
            print(f"| {name} | {k + 1} | {mean([r['variants'][name][k]['psnr'] for r in rows]):.2f} | "
                  f"{paired_cells(diff)} | {mean([r['variants'][name][k]['mnc'] for r in rows]):.3f} |"
                  + _error_ratio_cells([r["variants"][name][k] for r in rows]))


def _error_ratio_cells(scores: list[dict]) -> str:
    """' median ER | share <= 3 |' of the kernels' error ratios when they were scored."""
    if "er" not in scores[0]:
        return ""
    median, share = error_ratio_summary([s["er"] for s in scores])
    return f" {median:.2f} | {share:.0%} |"


def main() -> None:
    p = photo_parser(__doc__)
    p.add_argument("--blur", choices=["motion", "turbulence"], default="motion",
                   help="turbulence: a tilt field, then a Gaussian blur of std 3 (`blinddps.simulate`)")
    p.add_argument("--variants", default="0.05x2,0.1x2",
                   help="SHARExROUNDS or SHARExROUNDSxITERS, comma-separated")
    p.add_argument("--iters", type=int, default=50, help="the refit's iterations where a variant does not say")
    p.add_argument("--error-ratio", action="store_true",
                   help="score every kernel's Levin error ratio too (1/4 px, the bench's deconvolution: "
                        "padded, circular with --padding circular)")
    args = p.parse_args()
    args.variants = [_variant(v, args.iters) for v in args.variants.split(",") if v]
    run_or_report(args, run_item, report)


def _variant(text: str, iters: int) -> tuple[float, int, int]:
    """'0.1x2' -> (0.1, 2, iters); '0.1x1x100' -> (0.1, 1, 100)."""
    parts = text.split("x")
    return float(parts[0]), int(parts[1]), int(parts[2]) if len(parts) > 2 else iters


if __name__ == "__main__":
    main()
