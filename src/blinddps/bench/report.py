"""Benchmark reports: per_image.csv, summary.json and summary.md (all written atomically)."""
from __future__ import annotations

import csv
import datetime
import io
import math
import os
import platform
import statistics
import subprocess
from pathlib import Path

import torch

from ..io import atomic_write, write_json_atomic
from ..metrics import fid_available, lpips_available, success_rate
from .config import BenchConfig, describe
from .evaluate import CONVENTIONS, LPIPS_CONVENTION, METRICS

CSV_COLUMNS = ("method", "index", "image", *METRICS, "seconds", "nfe", "kernel_size", "height", "width", "channels")
# Scored at report time from the cached outputs (LPIPS only with local weight files): a column
# of its own, after the fixed metrics, when every row has it.
OPTIONAL_METRICS = ("lpips", "psnr_aligned", "error_ratio_quarter")
THRESHOLDS = (2.0, 3.0)
_LABELS = {"psnr": "PSNR (dB)", "psnr_aligned": "PSNR aligned (dB)", "ssim": "SSIM", "kernel_mse": "kernel MSE",
           "kernel_mnc": "kernel MNC", "error_ratio": "error ratio", "error_ratio_quarter": "error ratio (1/4 px)",
           "lpips": "LPIPS", "seconds": "s / image",
           "nfe": "NFE / image"}


def git_commit(folder: str | Path | None = None) -> str:
    """`git rev-parse HEAD` of the code's checkout (+ '-dirty' with uncommitted changes), or 'unknown'."""
    cwd = Path(folder or Path(__file__).parent)
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", ":/src"], cwd=cwd, timeout=30).returncode
        return head.stdout.strip() + ("-dirty" if dirty == 1 else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_header(config: BenchConfig, command: str, world_size: int) -> dict:
    """Provenance of a run: command line, code version, machine, date."""
    device = torch.device(config.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" and torch.cuda.is_available() else "CPU"
    return {
        "command": command,
        "git_commit": git_commit(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                    "device": str(device), "device_name": name, "processes": world_size},
        "steps": config.steps,
    }


def records_to_rows(records: list[dict]) -> list[dict]:
    return [{"method": r["method"], "index": r["index"], "image": r["case"], **r["metrics"],
             "seconds": r["seconds"], "nfe": r["nfe"], "kernel_size": r["kernel_size"],
             "height": r["shape"][-2], "width": r["shape"][-1], "channels": r["shape"][1]} for r in records]


def metric_keys(rows: list[dict]) -> tuple[str, ...]:
    """METRICS, plus each optional metric that every row has (e.g. lpips)."""
    return (*METRICS, *(k for k in OPTIONAL_METRICS if rows and all(r.get(k) is not None for r in rows)))


def write_per_image_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    extra = metric_keys(rows)[len(METRICS):]
    columns = (*CSV_COLUMNS[: 3 + len(METRICS)], *extra, *CSV_COLUMNS[3 + len(METRICS):])
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    text = buf.getvalue()
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def mean_se(values: list[float]) -> dict:
    """Mean and standard error of the mean (sample std / sqrt(n)); se is None for n < 2."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"mean": mean, "se": None}
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return {"mean": mean, "se": math.sqrt(var / n) if math.isfinite(var) else float("nan")}


def summarise(rows: list[dict], methods: tuple[str, ...], levin: bool) -> dict[str, dict]:
    """Per method: n, mean +- s.e. of every metric, seconds and nfe; Levin success rates."""
    out = {}
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        if not mine:
            continue
        stats: dict = {"n": len(mine)}
        for key in (*metric_keys(mine), "seconds", "nfe"):
            stats[key] = mean_se([float(r[key]) for r in mine])
        if levin:
            # One failed kernel gives a ratio in the thousands, so the mean says little; the
            # median is the typical case.
            for key, suffix in (("error_ratio", ""), ("error_ratio_quarter", "_quarter")):
                if key not in mine[0]:
                    continue
                ratios = [float(r[key]) for r in mine]
                rates = success_rate(ratios, THRESHOLDS)
                stats["success" + suffix] = {f"<={t:g}": rates[t] for t in THRESHOLDS}
                stats["error_ratio_median" + suffix] = statistics.median(ratios)
        out[method] = stats
    return out


def _fmt(stat: dict, digits: int) -> str:
    mean, se = stat["mean"], stat["se"]
    text = f"{mean:.{digits}g}" if abs(mean) < 1e-3 and mean != 0 else f"{mean:.{digits}f}"
    if se is None:
        return text
    return text + (f" ± {se:.2g}" if abs(se) < 1e-3 and se != 0 else f" ± {se:.{digits}f}")


_DIGITS = {"psnr": 2, "psnr_aligned": 2, "ssim": 3, "kernel_mse": 3, "kernel_mnc": 3, "error_ratio": 2,
           "error_ratio_quarter": 2, "lpips": 3,
           "seconds": 1, "nfe": 0}


def summary_markdown(summary: dict, header: dict, config: BenchConfig) -> str:
    levin = config.task == "levin"
    lpips_net = (header.get("lpips") or {}).get("net")
    computed = metric_keys(list(summary.values()))
    keys = (*computed, "seconds", "nfe")
    # Levin: success rates and median error ratio, by integer and (when scored) 1/4-px alignment
    suffixes = ("",) if levin else ()
    if levin and all("success_quarter" in s for s in summary.values()):
        suffixes = ("", "_quarter")
    levin_cols = [f"{label}{' (1/4 px)' if suffix else ''}" for suffix in suffixes
                  for label in (*(f"success r<={t:g}" for t in THRESHOLDS), "median error ratio")]
    cols = ["method", "n", *(_LABELS[k] for k in keys), *levin_cols]
    lines = [f"# Benchmark: {config.task} ({Path(config.images).name})", "",
             f"- command: `{header['command']}`", f"- git commit: {header['git_commit']}",
             f"- date: {header['date']}", f"- steps: {header['steps']}",
             "- machine: " + ", ".join(f"{k} {v}" for k, v in header["machine"].items()),
             f"- measurements: {_measurement_text(config)}", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for method, s in summary.items():
        cells = [method, str(s["n"]), *(_fmt(s[k], _DIGITS[k]) for k in keys)]
        for suffix in suffixes:
            cells += [f"{100 * s['success' + suffix][f'<={t:g}']:.0f}%" for t in THRESHOLDS]
            cells.append(f"{s['error_ratio_median' + suffix]:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Values: mean ± standard error over the images. Methods:", ""]
    lines += [f"- `{m}`: {describe(m)}" for m in summary]
    checks = [("FID", fid_available())]
    if "lpips" not in computed:  # the reason names the options / variables that would enable it
        checks.insert(0, ("LPIPS", lpips_available(*config.lpips_files)))
    missing = [f"{name}: {a.reason}" for name, a in checks if not a]
    lines += ["", "Not reported: " + "; ".join(missing) + "." if missing else ""]
    conventions = CONVENTIONS + (LPIPS_CONVENTION.format(net=lpips_net or "?") if "lpips" in computed else "")
    lines += ["", "Conventions:", "", conventions]
    return "\n".join(lines).rstrip() + "\n"


def _measurement_text(config: BenchConfig) -> str:
    if config.task == "levin":
        return (f"Levin 2009 files (circular blur), noise std {config.noise_std:g}; BlindDPS kernel size "
                f"max({config.kernel_size}, K_true), Pan-L0 K_true")
    blur = (f"turbulence simulation (tasks.simulate): random tilt field, then Gaussian kernel size "
            f"{config.kernel_size}, std {config.gaussian_std:g}" if config.task == "turbulence" else
            f"kernels from {Path(config.kernels).name}" if config.kernels else
            f"motion kernels size {config.kernel_size}, intensity {config.intensity:g}" if config.task == "motion"
            else f"Gaussian kernel size {config.kernel_size}, std {config.gaussian_std:g}")
    return (f"centre crop {config.crop or 'none'}, {blur}, padding {config.padding}, "
            f"noise std {config.noise_std:g} (in [0, 1]), seed {config.seed}")


def write_reports(out: Path, records: list[dict], config: BenchConfig, header: dict) -> dict:
    """per_image.csv, summary.json, summary.md in `out`; returns the summary."""
    rows = records_to_rows(records)
    summary = summarise(rows, config.methods, config.task == "levin")
    write_per_image_csv(out / "per_image.csv", rows)
    write_json_atomic(out / "summary.json", {"header": header, "config": config.to_dict(), "methods": summary})
    text = summary_markdown(summary, header, config)
    atomic_write(out / "summary.md", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return summary
