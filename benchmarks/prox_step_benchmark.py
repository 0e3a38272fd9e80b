"""Seconds per step of the proximal sampler, beside BlindDPS's (benchmarks/step_benchmark.py).

One proximal step evaluates the image network once (forward only, no backward pass) on the
'valid' working grid (a 256x256 photo with a 64x64 kernel: a 320x320 grid), then solves the
image's data term (an FFT-preconditioned CG solve) and, blind, the kernel's (projected
gradient in the gradient domain). Timed: whole steps of a real `ProximalSampler.solve` (the
callback stamps the end of every step), after one warm-up step, for the project's small
image prior (bundled natural-rgb) and the paper's image-network size (ffhq_10m from
../shared/golden/adm_manifest.json with random weights: speed does not depend on values),
float32 and bf16 autocast, non-blind and blind.

    python benchmarks/prox_step_benchmark.py --out benchmarks/results/prox_step_benchmark.md

The per-image time is projected at the sampler's default step count (20) and compared with
BlindDPS's per-step time read from benchmarks/results/step_benchmark.md when given
(--blinddps-small / --blinddps-published, seconds per step on the same machine).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_benchmark import build_priors, measurement  # noqa: E402  (the same measurement and networks)

from blinddps.io import atomic_write  # noqa: E402
from blinddps.physics.solves import Domain  # noqa: E402
from blinddps.solvers import StepInfo  # noqa: E402
from blinddps.solvers.proximal import ProximalConfig, ProximalSampler  # noqa: E402

DEFAULT_STEPS = 20


def time_run(arch: str, autocast: bool, blind: bool, steps: int) -> dict:
    """Mean seconds per step over steps 2..N of one solve (step 1 is the warm-up)."""
    priors, source = build_priors(arch, 1000, torch.device("cpu"))
    y, kernel = measurement(torch.device("cpu"), "reflect")
    domain = Domain.for_measurement(y.shape[-2:], kernel.shape[-1], "valid",
                                     priors["image"].network.config.spatial_multiple)
    sampler = ProximalSampler(priors["image"], domain,
                              ProximalConfig(steps=steps, t_start=400, noise=0.02, autocast=autocast))
    stamps = []
    known = {} if blind else {"kernel": kernel}
    start = time.perf_counter()
    sampler.solve(domain.embed(y), known=known, kernel_size=kernel.shape[-1],
                  generator=torch.Generator().manual_seed(0),
                  callback=lambda info: stamps.append(time.perf_counter()))
    times = [b - a for a, b in zip([start] + stamps[:-1], stamps)]
    timed = times[1:]
    return {"arch": arch, "autocast": autocast, "blind": blind, "source": source,
            "s_per_step": sum(timed) / len(timed), "steps_timed": len(timed),
            "params": sum(p.numel() for p in priors["image"].network.parameters()) / 1e6,
            "grid": domain.grid}


def markdown(rows: list[dict], args) -> str:
    lines = ["# Proximal sampler step benchmark", "",
             f"Command: `python benchmarks/prox_step_benchmark.py {' '.join(sys.argv[1:])}`", "",
             (f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
              f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
              f"date {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}"),
             f"- load average before: {args.load_before}", "",
             f"A 256x256 RGB photo, a 64x64 kernel, 'valid' borders ({rows[0]['grid'][0]}x{rows[0]['grid'][1]} "
             f"grid), t_start 400; {args.steps} steps per run, the first one not timed.", "",
             "| image network | params | autocast | task | s/step | per image at 20 steps | weights |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['arch']} | {r['params']:.2f}M | {'bf16' if r['autocast'] else 'float32'} | "
                     f"{'blind' if r['blind'] else 'non-blind'} | {r['s_per_step']:.3f} | "
                     f"{r['s_per_step'] * DEFAULT_STEPS:.1f} s | {r['source']} |")
    reference = {"small": args.blinddps_small, "published": args.blinddps_published}
    if any(reference.values()):
        lines += ["", "Against BlindDPS (seconds per step from benchmarks/results/step_benchmark.md, the same "
                  "machine, float32: forward and backward of the image AND kernel networks at 256x256):", "",
                  "| image network | BlindDPS s/step | x 100 steps (its default) | proximal s/step (float32, blind) "
                  "| x 20 steps | speed-up per image |", "| --- | --- | --- | --- | --- | --- |"]
        for arch, ref in reference.items():
            mine = [r for r in rows if r["arch"] == arch and not r["autocast"] and r["blind"]]
            if ref and mine:
                p = mine[0]["s_per_step"]
                lines.append(f"| {arch} | {ref:.2f} | {ref * 100:.0f} s | {p:.3f} | {p * DEFAULT_STEPS:.1f} s | "
                             f"{ref * 100 / (p * DEFAULT_STEPS):.0f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4, help="steps per timed run (the first is a warm-up)")
    parser.add_argument("--archs", default="small,published")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--blinddps-small", type=float, default=None, help="BlindDPS s/step, small priors")
    parser.add_argument("--blinddps-published", type=float, default=None, help="BlindDPS s/step, paper's sizes")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    rows = [time_run(arch, autocast, blind, args.steps)
            for arch in args.archs.split(",") for autocast in (False, True) for blind in (False, True)]
    text = markdown(rows, args)
    atomic_write(args.out, lambda tmp: tmp.write_text(text))
    print(text)


if __name__ == "__main__":
    main()
