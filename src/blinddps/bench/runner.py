"""run_benchmark: every method on every measurement, cached per item, sharded, then reported.

Outputs in config.out: bench_config.json (the resolved config), cache/ (per item results,
see bench.cache), per_image.csv, summary.json, summary.md and figure.png. With LPIPS weight
files (config.lpips_backbone / lpips_heads), rank 0 adds an `lpips` metric to every item,
scored from the cached output images.
"""
from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..io import write_json_atomic
from ..metrics import LPIPS
from ..priors import DiffusionPrior
from .cache import ResultCache
from .config import BenchConfig, uses_image_prior
from .data import Case, list_cases, load_measurement, resolve_images
from .evaluate import aligned_psnr, evaluate, evaluate_lpips, kernel_error_ratios, lpips_model
from .figure import benchmark_figure
from .methods import MethodOutput, load_priors, run_method
from .report import run_header, write_reports
from .shard import dist_env, process_group, shard


@dataclass
class BenchResult:
    """summary: method -> statistics (None on ranks other than 0); rows: per (method, image);
    computed / cached: items run by this process / found finished in the cache."""

    out: Path
    summary: dict | None = None
    rows: list[dict] = field(default_factory=list)
    computed: int = 0
    cached: int = 0


def _record(method: str, case: Case, settings: dict, out: MethodOutput, metrics: dict) -> dict:
    return {"method": method, "case": case.name, "index": case.index, "settings": settings, "metrics": metrics,
            "seconds": out.seconds, "nfe": out.nfe, "kernel_size": int(out.kernel.shape[-1]),
            "shape": list(out.image.shape), "info": out.info}


class _Runner:
    def __init__(self, config: BenchConfig, log: Callable[[str], None], tag: str):
        self.config, self.log, self.tag = config, log, tag
        self.cache = ResultCache(Path(config.out) / "cache")
        self.priors: dict[str, DiffusionPrior] | None = None
        self.computed = self.cached = 0
        # Once per run: the method settings hash the priors' weight files, which every cache
        # lookup of every case would otherwise read again.
        self.method_settings = {m: config.method_settings(m) for m in config.methods}
        self.measurement_settings = config.measurement_settings()

    def settings(self, method: str, case: Case) -> dict:
        return {"case": case.name, **self.measurement_settings, "method": method, **self.method_settings[method]}

    def run_case(self, case: Case, position: str) -> None:
        todo = [m for m in self.config.methods if self.cache.load(m, case, self.settings(m, case)) is None]
        self.cached += len(self.config.methods) - len(todo)
        if not todo:
            return
        measurement = load_measurement(case, self.config)
        for method in todo:
            if uses_image_prior(method) and self.priors is None:
                self.priors = load_priors(self.config)
            out = run_method(method, measurement, self.config, self.priors or {})
            metrics = evaluate(measurement, out, self.config)
            self.cache.save(method, case, out, _record(method, case, self.settings(method, case), out, metrics))
            self.computed += 1
            self.log(f"{self.tag}[{position}] {method} {case.name}: PSNR {metrics['psnr']:.2f} dB, "
                     f"SSIM {metrics['ssim']:.3f}, MNC {metrics['kernel_mnc']:.3f}, {out.seconds:.1f} s")

    def collect(self, cases: list[Case]) -> list[dict]:
        records, missing = [], []
        for method in self.config.methods:
            for case in cases:
                record = self.cache.load(method, case, self.settings(method, case))
                (records.append(record) if record is not None else missing.append(f"{method}/{case.name}"))
        if missing:
            raise RuntimeError(f"{len(missing)} results missing from {self.cache.root} (e.g. {missing[0]}): "
                               "a shard did not finish; run the same command again to complete them")
        return records

    def add_report_metrics(self, cases: list[Case], records: list[dict], lpips_net: LPIPS | None) -> None:
        """metrics['psnr_aligned'] (and 'lpips' with a model) of every record, scored from its
        cached output image and never stored in the cache, so that metrics added later need no
        rerun of the methods; 'error_ratio_quarter' from the cached kernel where the record
        predates it."""
        by_item = {(r["method"], r["index"]): r for r in records}
        for case in cases:
            m = load_measurement(case, self.config)
            for method in self.config.methods:
                image = self.cache.image(method, case)
                metrics = by_item[method, case.index]["metrics"]
                metrics["psnr_aligned"] = aligned_psnr(m, image)
                if "error_ratio_quarter" not in metrics:  # records cached before it was scored with the run
                    metrics.update(kernel_error_ratios(m, self.cache.kernel(method, case), self.config))
                if lpips_net is not None:
                    metrics["lpips"] = evaluate_lpips(m, image, lpips_net)

    def figure(self, cases: list[Case], records: list[dict]) -> None:
        psnr = {(r["method"], r["index"]): r["metrics"]["psnr"] for r in records}
        rows = []
        for case in cases[: self.config.figure_rows]:
            m = load_measurement(case, self.config)
            methods = [(f"{name} {psnr[name, case.index]:.2f} dB", self.cache.image(name, case),
                        self.cache.kernel(name, case)) for name in self.config.methods if name != "blurry"]
            support = max([m.blind_kernel_size, m.kernel.shape[-1], *(k.shape[-1] for _, _, k in methods)])
            rows.append({"name": case.name, "y": m.y, "truth": m.sharp, "kernel": m.kernel, "support": support,
                         "methods": methods})
        if rows:
            benchmark_figure(rows, Path(self.config.out) / "figure.png")


def run_benchmark(config: BenchConfig, *, rank: int = 0, world_size: int = 1,
                  barrier: Callable[[], None] | None = None, command: str | None = None,
                  log: Callable[[str], None] | None = None) -> BenchResult:
    """Run the benchmark share of process `rank` of `world_size` (cases rank, rank + W, ...).

    Finished (method, case) items are read from the cache instead of being run again. After
    its share every process calls `barrier` (if given); rank 0 then merges all processes'
    results into the reports (it fails, naming the first, if any item is still missing).
    log: receives one line per computed item.
    """
    lpips_files = [str(Path(p).expanduser().resolve()) if p else None for p in config.lpips_files]
    config = config.replace(images=str(resolve_images(config.images)),
                            kernels=str(Path(config.kernels).expanduser().resolve()) if config.kernels else None,
                            lpips_backbone=lpips_files[0], lpips_heads=lpips_files[1])
    # Loaded before any method runs, so that an unusable weight file fails in seconds, not
    # after the benchmark; only rank 0 scores LPIPS (when it writes the reports).
    lpips_net = lpips_model(config) if rank == 0 else None
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    cases = list_cases(config)
    if rank == 0:
        write_json_atomic(out / "bench_config.json", config.to_dict())
    runner = _Runner(config, log or (lambda _: None), f"rank {rank}: " if world_size > 1 else "")
    mine = shard(cases, rank, world_size)
    for i, case in enumerate(mine):
        runner.run_case(case, f"{i + 1}/{len(mine)}")
    if barrier is not None:
        barrier()
    result = BenchResult(out, computed=runner.computed, cached=runner.cached)
    if rank != 0:
        return result
    records = runner.collect(cases)
    header = run_header(config, command or shlex.join(sys.argv), world_size)
    runner.add_report_metrics(cases, records, lpips_net)
    if lpips_net is not None:
        header["lpips"] = {"net": lpips_net.net, "backbone": config.lpips_backbone, "heads": config.lpips_heads}
    result.summary = write_reports(out, records, config, header)
    runner.figure(cases, records)
    result.rows = [{"method": r["method"], "image": r["case"], **r["metrics"]} for r in records]
    return result


def run_benchmark_distributed(config: BenchConfig, **kwargs) -> BenchResult:
    """run_benchmark sharded over the processes torchrun started (RANK / WORLD_SIZE), with a
    gloo barrier before rank 0 merges; a plain single run without torchrun."""
    rank, world = dist_env()
    with process_group(world) as barrier:
        return run_benchmark(config, rank=rank, world_size=world, barrier=barrier, **kwargs)
