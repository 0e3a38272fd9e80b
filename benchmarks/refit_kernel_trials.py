"""How the refit's settings change the KERNEL (its Levin error ratio): trials on TRAINING photos.

    python benchmarks/refit_kernel_trials.py --images ../shared/data/train/bsds500 --offset 274 --n 24 \
        --kernel-size 32 --noise 0 --fits 0.1:50,0.2:50,1:50 --jobs 2 --out /tmp/refit.pt
    python benchmarks/refit_kernel_trials.py --report /tmp/refit.pt

The Levin benchmark scores a blind kernel by its error ratio: the photo deconvolved with it
and with the true kernel by the same non-blind method (hyper-Laplacian), their errors
compared. That needs the kernel only, so one restoration per photo serves any number of
refits: each photo is restored blind by the product with the refit off, and its kernel is
refit to that restoration with every `SHARE:ITERS[:THRESH[:MARGIN]]` of --fits
(`solvers.kernel_search.refine_kernel`; THRESH Pan's final threshold max / THRESH, default the
search's; MARGIN: the fit only within that many pixels of the found kernel's kept values);
every kernel (the found one too) is scored by its error ratio at 1/4 px and 1 px
(the bench's padded deconvolution) and its MNC to the truth, and saved. No restoration with
the refit kernels is made: `refine_trials.py` scores those. Photos are blurred as in
`refine_trials.py` (motion kernel of --kernel-size or --blur-sizes, intensity 0.5, seed = index,
noise --noise, borders --padding; a circular blur is scored with circular deconvolutions, as
the bench scores the Levin files).
"""
from __future__ import annotations

from pathlib import Path

import torch

from blinddps.metrics import kernel_mnc
from blinddps.solvers.kernel_search import refine_kernel

from pick_trials import photo_parser, run_or_report, task
from refine_trials import error_ratio_summary, kernel_error_ratios, restored_without_refit


def run_item(job: tuple) -> dict:
    index, name, x, args = job
    run = restored_without_refit(index, x, args)
    y, truth, config, found, domain = run["y"], run["truth"], run["config"], run["found"], run["domain"]
    y_grid, mask = task._on_grid(y, domain, config), domain.mask(config.device)
    k_thresh = task.kernel_search_config(config, False).k_thresh

    def scores(kernel: torch.Tensor) -> dict:
        ratios = kernel_error_ratios(x, y, kernel, truth["kernel"], subpixels=(1, 4), circular=args.padding == "circular")
        return {"er": ratios[4], "er1": ratios[1], "mnc": kernel_mnc(kernel, truth["kernel"]).item(),
                "kernel": kernel.half()}

    out = {"image": name, "index": index, "found": scores(found.kernel), "fits": {}, "truth": truth["kernel"].half()}
    for share, iters, thresh, margin in args.fits:
        kernel = refine_kernel(run["result"].estimates["image"], y_grid, found.kernel, mask, edge_fraction=share,
                               iters=iters, k_thresh=thresh or k_thresh, margin=margin)
        out["fits"][_name(share, iters, thresh, margin)] = scores(kernel)
    print(name, round(out["found"]["er"], 2), {k: round(v["er"], 2) for k, v in out["fits"].items()}, flush=True)
    return out


def _name(share: float, iters: int, thresh: float | None, margin: int | None) -> str:
    return (f"{share:g}:{iters}" + (f":{thresh:g}" if thresh else (":" if margin is not None else ""))
            + (f":{margin}" if margin is not None else ""))


def report(path: Path) -> None:
    rows = torch.load(path, weights_only=False)

    def line(label: str, scores: list[dict], base: list[dict] | None) -> str:
        median, within3 = error_ratio_summary([s["er"] for s in scores])
        within2 = sum(s["er"] <= 2 for s in scores) / len(scores)
        median1, _ = error_ratio_summary([s["er1"] for s in scores])
        mnc = sum(s["mnc"] for s in scores) / len(scores)
        better = "" if base is None else f"{sum(s['er'] < b['er'] for s, b in zip(scores, base))} / {len(scores)}"
        return f"| {label} | {median:.2f} | {within3:.0%} | {within2:.0%} | {median1:.2f} | {mnc:.3f} | {better} |"

    base = [r["found"] for r in rows]
    print(f"{len(rows)} photos ({rows[0]['image']}...)")
    print("| kernel | median error ratio (1/4 px) | r <= 3 | r <= 2 | median (1 px) | MNC | lower r than found |")
    print("|---|---|---|---|---|---|---|")
    print(line("found (refit off)", base, None))
    for name in rows[0]["fits"]:
        print(line(f"refit {name}", [r["fits"][name] for r in rows], base))


def main() -> None:
    p = photo_parser(__doc__)
    p.add_argument("--fits", default="0.1:50", help="SHARE:ITERS[:THRESH[:MARGIN]], comma-separated "
                   "(THRESH may be empty: the search's)")
    args = p.parse_args()
    args.fits = [_fit(f) for f in args.fits.split(",") if f]
    run_or_report(args, run_item, report)


def _fit(text: str) -> tuple[float, int, float | None, int | None]:
    """'0.1:50' -> (0.1, 50, None, None); '0.1:50:40' -> (0.1, 50, 40.0, None); '0.1:50::3' ->
    (0.1, 50, None, 3): the fit only within 3 px of the found kernel's kept values."""
    parts = text.split(":") + ["", ""]
    return float(parts[0]), int(parts[1]), float(parts[2]) if parts[2] else None, int(parts[3]) if parts[3] else None


if __name__ == "__main__":
    main()
