"""Refit the found kernel to its restoration: trials on TRAINING photos.

    python benchmarks/refine_trials.py --images ../shared/data/train/bsds500 --offset 234 --n 24 \
        --variants 0.05x2,0.1x2 --jobs 2 --out /tmp/refine.pt
    python benchmarks/refine_trials.py --report /tmp/refine.pt

Each photo is restored blind by the product with the refit off (`ProxSettings.search_refine`
None); that kernel's restoration is then refit and restored again for each variant
`SHAREx ROUNDS` (`search_refine`, `search_refine_rounds`; `--iters` the refit's iterations),
every round scored, so that one search serves every variant (--error-ratio: the kernels' Levin
error ratios as well). Image i is blurred as in
`sweep_settings.py` (motion kernel of --kernel-size, intensity 0.5, seed i, noise --noise,
reflect borders; --blur turbulence: a tilt field, then a Gaussian blur); scores are aligned
PSNR (shifts up to 16 px, 16 px borders dropped), plain PSNR, and the kernel's MNC to the truth.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from blinddps import deblur
from blinddps.bench.evaluate import _padded_deconv, error_ratio_crop
from blinddps.metrics import kernel_mnc, psnr, psnr_upto_shift
from blinddps.metrics.error_ratio import error_ratios

from candidate_trials import _photo
from pick_trials import map_photos, paired_cells, photo_parser, task


def run_item(job: tuple) -> dict:
    index, name, x, args = job
    y, truth, config, prior = _photo(index, x, args)
    off = replace(config, prox=replace(config.prox, search_refine=None))
    found = deblur(y, off, priors={"image": prior})
    lam = found.info["restore_lambda"]
    settings = replace(task.prox_config(config), lam=lam)
    # the product's last restoration once more (same seed, same result): `deblur` returns it
    # cropped to the photo, and the refit needs it on the whole working grid
    result, _, domain = task._prox_solve(y, found.kernel, settings, prior, config, None)

    def scores(res) -> dict:
        image = ((domain.crop(res.estimates["image"]) + 1) / 2).clamp(0, 1)
        kernel = res.estimates["kernel"][0, 0]
        out = {"psnr": psnr_upto_shift(image, x, max_shift=16, crop=16).item(), "plain": psnr(image, x).item(),
               "mnc": kernel_mnc(kernel, truth["kernel"]).item()}
        if args.error_ratio:  # the kernel's Levin error ratio at 1/4 px, as the bench scores it
            out["er"] = error_ratios(x.double(), y.double(), kernel.double()[None, None],
                                     truth["kernel"].double()[None, None], _padded_deconv, subpixels=(4,),
                                     crop=error_ratio_crop(x.shape[-2:]))[4].item()
        return out

    out = {"image": name, "index": index, "lambda": lam, "consensus": found.info.get("search_consensus"),
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
    ratios = torch.tensor([s["er"] for s in scores])
    return f" {ratios.median().item():.2f} (mean of middle two {ratios.sort().values[len(ratios) // 2 - 1:len(ratios) // 2 + 1].mean():.2f}) | {(ratios <= 3).float().mean().item():.0%} |"


def main() -> None:
    p = photo_parser(__doc__)
    p.add_argument("--blur", choices=["motion", "turbulence"], default="motion",
                   help="turbulence: a tilt field, then a Gaussian blur of std 3 (`blinddps.simulate`)")
    p.add_argument("--variants", default="0.05x2,0.1x2",
                   help="SHARExROUNDS or SHARExROUNDSxITERS, comma-separated")
    p.add_argument("--iters", type=int, default=50, help="the refit's iterations where a variant does not say")
    p.add_argument("--error-ratio", action="store_true",
                   help="score every kernel's Levin error ratio too (1/4 px, the bench's padded deconvolution)")
    args = p.parse_args()
    if args.report:
        return report(args.report)
    args.variants = [_variant(v, args.iters) for v in args.variants.split(",") if v]
    map_photos(run_item, args)
    report(args.out)


def _variant(text: str, iters: int) -> tuple[float, int, int]:
    """'0.1x2' -> (0.1, 2, iters); '0.1x1x100' -> (0.1, 1, 100)."""
    parts = text.split("x")
    return float(parts[0]), int(parts[1]), int(parts[2]) if len(parts) > 2 else iters


if __name__ == "__main__":
    main()
