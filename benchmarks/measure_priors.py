"""Measure what trained priors have learned (kernel, image and tilt priors).

    python benchmarks/measure_priors.py --kernel-prior P --image-prior P --tilt-prior P \
        --out docs/prior_measurements.md [--n N] [--quick]

P is a bundled prior name or a prior file (ours: .safetensors + .json; the paper's .pt).
Any of the three may be left out. What is measured:

kernel prior
  - unconditional samples (DDPM, respaced to --steps, kernels via transform.to_operator)
    against the training mix (KernelMixGenerator), motion kernels at intensity 0.5
    (MotionKernelGenerator) and the reference generator's kernels
    (../shared/golden/motion_kernels_64_i0.5_ref.npz): support, path extent, second-moment
    radius, maximum, effective pixels, mass entropy (mean +- std over kernels);
  - x0-hat denoising of held-out generated kernels (training mix, a fresh seed) at
    t in {50, 200, 500, 800}: x_t = q_sample(x0, t), one network evaluation; kernel MSE
    (sum-1 kernels) and MNC of to_operator(x0-hat) vs the truth, beside the naive estimate
    clip(x_t / sqrt(abar_t)).
image prior
  - x0-hat denoising PSNR on centre crops of ../shared/data/bench/cbsd68 at noise std
    15, 25, 50 / 255 in [0, 1]: in [-1, 1] the std is s = 2 sigma / 255; t is the timestep
    whose sqrt((1 - abar) / abar) is nearest to s, the network sees sqrt(abar) (x + s n);
  - beside a Gaussian filter with its std tuned per noise level on the same images (grid
    search, the best reported) and CBM3D (`bm3d.bm3d_rgb`) when the `bm3d` package is
    importable (`pip install -e ".[bench]"`).
tilt prior
  - unconditional samples vs generated tilt maps of the same size (the training stream's
    maps: TiltGenerator at max(128, size) with the paper's patch density, cropped):
    mean |tilt|, std, spatial correlation at lags 1, 2, 4, 8 (pixels).

Cost (1 CPU thread, the project's small priors; one network evaluation of a 64x64 sample
costs ~45 ms CPU for the kernel prior, ~27 ms for the tilt prior): about 5 min of CPU time
with the defaults, dominated by the n x steps kernel-sample evaluations (48 x 100); --quick
(8 samples, 20 steps, 64x64 crops) is a smoke test of about 30 s CPU.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from blinddps.generators import KernelMixGenerator, MotionKernelGenerator
from blinddps.metrics import kernel_mnc, kernel_mse, psnr
from blinddps.priors import DiffusionPrior
from blinddps.priors.bundle import load_prior, resolve_prior_path
from blinddps.solvers import sample_prior
from blinddps.training.data import TiltStream

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
REF_KERNELS = SHARED / "golden" / "motion_kernels_64_i0.5_ref.npz"
CBSD68 = SHARED / "data" / "bench" / "cbsd68"
SUPPORT_FRACTION = 0.01  # a kernel pixel counts as support above 1% of the kernel's maximum
DENOISE_T = (50, 200, 500, 800)
NOISE_LEVELS = (15, 25, 50)  # of 255, in [0, 1] units
TILT_LAGS = (1, 2, 4, 8)


# --------------------------------------------------------------------------- helpers

def mean_std(values: np.ndarray, digits: int = 3, sci: bool = False, decimals: int | None = None) -> str:
    """'mean ± std': `digits` significant digits, scientific notation, or fixed `decimals`."""
    v = np.asarray(values, dtype=np.float64)
    if decimals is not None:
        fmt = lambda x: f"{x:.{decimals}f}"  # noqa: E731
    elif sci:
        fmt = lambda x: f"{x:.{digits - 1}e}"  # noqa: E731
    else:
        fmt = lambda x: f"{x:.{digits}g}"  # noqa: E731
    return f"{fmt(v.mean())} ± {fmt(v.std())}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out + [""]


def network_device(prior: DiffusionPrior) -> torch.device:
    return next(prior.network.parameters()).device


def prior_info(spec: str, prior: DiffusionPrior) -> list[str]:
    """Where the prior came from and its training provenance (the JSON 'training' field)."""
    path = resolve_prior_path(spec)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    training = meta.get("training") or {}
    params = sum(p.numel() for p in prior.network.parameters())
    lines = [f"- file: `{path}` ({params / 1e6:.2f} M parameters)",
             f"- training step: {training.get('step', 'unknown (no training record)')}"]
    if training.get("config"):
        lines.append(f"- training config: `{json.dumps(training['config'], sort_keys=True)}`")
    extra = {k: v for k, v in training.items() if k not in ("step", "config")}
    if extra:
        lines.append(f"- training record: `{json.dumps(extra, sort_keys=True)}`")
    if meta.get("diffusion"):
        lines.append(f"- diffusion: `{json.dumps(meta['diffusion'], sort_keys=True)}`")
    return lines + [""]


def training_size(spec: str, default: int) -> int:
    meta_path = resolve_prior_path(spec).with_suffix(".json")
    if meta_path.is_file():
        size = (json.loads(meta_path.read_text()).get("training") or {}).get("config", {}).get("size")
        if size:
            return int(size)
    return default


def samples(prior: DiffusionPrior, n: int, shape: tuple[int, ...], steps: int, seed: int, batch: int) -> torch.Tensor:
    """n unconditional DDPM samples in network space, respaced to `steps`, in batches."""
    respaced = prior.respaced(str(steps))
    g = torch.Generator().manual_seed(seed)
    out = [sample_prior(respaced, min(batch, n - i), shape, generator=g, device=network_device(prior)).cpu()
           for i in range(0, n, batch)]
    return torch.cat(out).float()


@torch.no_grad()
def denoise_x0(prior: DiffusionPrior, x0: torch.Tensor, t: int, g: torch.Generator,
               batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x0-hat, naive clip(x_t / sqrt(abar)), x_t) after one network evaluation at ORIGINAL
    step t (on the unrespaced process)."""
    full = prior.respaced("")
    i = int(torch.nonzero(full.process.timesteps == t)[0])
    noise = torch.randn(x0.shape, generator=g)
    x_t = full.process.q_sample(x0, i, noise)
    device = network_device(prior)
    hats = [full.denoise(x_t[j:j + batch].to(device), i).x0.float().cpu() for j in range(0, len(x0), batch)]
    naive = (x_t / full.process.alphas_cumprod[i].sqrt().float()).clamp(-1, 1)
    return torch.cat(hats), naive, x_t


@torch.no_grad()
def empirical_posterior_mean(x_t: torch.Tensor, abar: float, refs: torch.Tensor,
                             chunk: int = 16384) -> tuple[torch.Tensor, torch.Tensor]:
    """E[x0 | x_t] under the empirical distribution of `refs` (N, C, S, S) in network space:
    the weights of x_t = sqrt(abar) r + sqrt(1 - abar) n are softmax(-|x_t - sqrt(abar) r|^2
    / (2 (1 - abar))) over the N references. The MMSE denoiser of the training generator,
    estimated with N samples: a reference for what a perfect prior could reach.
    Returns (x0 (n, C, S, S), effective number of references per x_t (n,))."""
    x = x_t.flatten(1).double()
    logits = []
    for j in range(0, len(refs), chunk):
        r = refs[j:j + chunk].flatten(1).double()
        d2 = (x * x).sum(1, keepdim=True) - 2 * abar**0.5 * x @ r.T + abar * (r * r).sum(1)
        logits.append(-d2 / (2 * (1 - abar)))
    w = torch.softmax(torch.cat(logits, dim=1), dim=1)
    mean = sum(w[:, j:j + chunk] @ refs[j:j + chunk].flatten(1).double() for j in range(0, len(refs), chunk))
    return mean.view(x_t.shape).float(), 1 / (w * w).sum(1)


# ------------------------------------------------------------------------------ kernels

def kernel_stats(k: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-kernel statistics of (N, 1, S, S) non-negative kernels summing to 1."""
    k = k[:, 0].double().numpy()
    k = k / np.clip(k.sum((1, 2), keepdims=True), 1e-12, None)
    s = k.shape[-1]
    yy, xx = np.mgrid[:s, :s]
    cy, cx = (k * yy).sum((1, 2)), (k * xx).sum((1, 2))
    dy, dx = yy - cy[:, None, None], xx - cx[:, None, None]
    cyy, cxx, cxy = (k * dy * dy).sum((1, 2)), (k * dx * dx).sum((1, 2)), (k * dx * dy).sum((1, 2))
    lam = (cyy + cxx) / 2 + np.sqrt(((cyy - cxx) / 2) ** 2 + cxy ** 2)  # largest eigenvalue
    return {
        "support": (k > SUPPORT_FRACTION * k.max((1, 2), keepdims=True)).sum((1, 2)).astype(float),
        "extent": np.sqrt(12 * lam),          # length of a straight line with that 2nd moment
        "radius": np.sqrt(cyy + cxx),         # mass spread (second-moment radius)
        "max": k.max((1, 2)),
        "eff_pixels": 1 / (k ** 2).sum((1, 2)),  # participation ratio
        # Shannon entropy of the mass (nats): log of the area it is spread over, the bar of issue 11
        "entropy": -(k * np.log(np.clip(k, 1e-300, None))).sum((1, 2)),
    }


KERNEL_COLUMNS = [("support", f"support (px > {SUPPORT_FRACTION:.0%} of max)", False),
                  ("extent", "path extent sqrt(12 λmax) (px)", False),
                  ("radius", "2nd-moment radius (px)", False),
                  ("max", "max value", True),
                  ("eff_pixels", "effective pixels 1/Σk²", False),
                  ("entropy", "mass entropy -Σk log k (nats)", False)]


def measure_kernel(spec: str, args, device) -> list[str]:
    prior = load_prior(spec, kind="kernel", device=device)
    size = training_size(spec, prior.network.config.image_size)
    lines = ["## Kernel prior", ""] + prior_info(spec, prior)
    t0 = time.perf_counter()
    z = samples(prior, args.n, (1, size, size), args.steps, args.seed, args.batch)
    sampled = prior.transform.to_operator(z)
    t_sample = time.perf_counter() - t0
    sets = {f"prior samples ({args.steps} DDPM steps)": sampled,
            "generator: training mix (KernelMixGenerator)": KernelMixGenerator(size).sample(args.n_ref, args.seed + 1)["kernel"],
            "generator: motion, intensity 0.5": MotionKernelGenerator(size, 0.5).sample(args.n_ref, args.seed + 2)["kernel"]}
    if REF_KERNELS.is_file():
        ref = torch.from_numpy(np.load(REF_KERNELS)["kernels"][:, None]).float()
        note = "" if size == 64 else " (64x64, not the prior's size)"
        sets[f"reference generator, I = 0.5 ({len(ref)} kernels){note}"] = ref
    else:
        lines.append(f"(reference kernels {REF_KERNELS} absent: skipped)\n")
    rows = []
    for name, k in sets.items():
        st = kernel_stats(k)
        rows.append([name, str(len(k))] + [mean_std(st[key], sci=sci) for key, _, sci in KERNEL_COLUMNS])
    lines += [f"Unconditional samples vs generated kernels ({size}x{size}; mean ± std over kernels; "
              f"sampling took {t_sample:.0f} s). Support: pixels above {SUPPORT_FRACTION:.0%} of the kernel's "
              "maximum; path extent: the length of a straight line with the kernel's largest second "
              "moment (a proxy for the trajectory's length, exact for a straight thin line, short for a curled one).", ""]
    lines += table(["kernels", "n"] + [c for _, c, _ in KERNEL_COLUMNS], rows)
    lines += kernel_denoising(prior, size, args)
    return lines


def kernel_denoising(prior: DiffusionPrior, size: int, args) -> list[str]:
    truth = KernelMixGenerator(size).sample(args.n_denoise, args.seed + 1000)["kernel"]  # held out
    x0 = prior.transform.to_net(truth)
    refs = prior.transform.to_net(KernelMixGenerator(size).sample(args.n_mmse, args.seed + 3000)["kernel"]) \
        if args.n_mmse else None
    abars = prior.respaced("").process.alphas_cumprod
    g = torch.Generator().manual_seed(args.seed + 2000)
    rows = []
    for t in DENOISE_T:
        hat, naive, x_t = denoise_x0(prior, x0, t, g, args.batch)
        row = [str(t)]
        estimates = [hat, naive]
        if refs is not None:
            mmse, n_eff = empirical_posterior_mean(x_t, float(abars[t]), refs)
            estimates.append(mmse)
        for est in estimates:
            k = prior.transform.to_operator(est)
            row += [mean_std(kernel_mse(k, truth).numpy(), sci=True), mean_std(kernel_mnc(k, truth).numpy())]
        if refs is not None:
            row.append(f"{n_eff.median():.1f}")
        rows.append(row)
    lines = [f"x0-hat denoising of {args.n_denoise} held-out kernels of the training mix (fresh seed): "
             "x_t = q_sample(x0, t), one network evaluation, to_operator(x0-hat) vs the true kernel "
             "(MSE of sum-1 kernels, per pixel; MNC). Naive: to_operator(clip(x_t / sqrt(abar_t))).", ""]
    header = ["t", "network MSE", "network MNC", "naive MSE", "naive MNC"]
    if refs is not None:
        lines[0] += (f" Empirical MMSE: the posterior mean of the same x_t under {args.n_mmse} generated kernels "
                     "(another fresh seed), the denoiser a perfect prior would approach as that set grows; "
                     "n_eff: the median effective number of kernels in its average (1/Σw²; near 1, the set "
                     "is too small to stand for the generator at that t, and the column understates it).")
        header += ["empirical MMSE MSE", "empirical MMSE MNC", "n_eff"]
    return lines + table(header, rows)


# ------------------------------------------------------------------------------- images

def load_crops(size: int, count: int) -> torch.Tensor:
    """(count, 3, size, size) centre crops in [0, 1] of the first `count` CBSD68 photos."""
    from blinddps.io.images import read_image
    files = sorted(p for p in CBSD68.iterdir() if p.suffix.lower() in (".png", ".jpg", ".bmp", ".tif"))[:count]
    crops = []
    for path in files:
        x = read_image(path).tensor
        x = x.expand(1, 3, *x.shape[-2:]) if x.shape[1] == 1 else x
        h, w = x.shape[-2:]
        top, left = (h - size) // 2, (w - size) // 2
        crops.append(x[0, :, top:top + size, left:left + size])
    return torch.stack(crops)


def gaussian_filter(x: torch.Tensor, std: float) -> torch.Tensor:
    """Separable Gaussian blur (reflect borders), radius ceil(3 std)."""
    r = max(1, math.ceil(3 * std))
    taps = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=x.dtype) / std) ** 2)
    taps = taps / taps.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), taps.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), taps.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def matched_step(prior: DiffusionPrior, s: float) -> int:
    """Original timestep t whose noise-to-signal ratio sqrt((1 - abar) / abar) is nearest s."""
    abar = prior.respaced("").process.alphas_cumprod
    return int(torch.argmin((((1 - abar) / abar).sqrt() - s).abs()))


def bm3d_denoiser():
    try:
        import bm3d  # noqa: F401
    except ImportError:
        return None
    return bm3d


def measure_image(spec: str, args, device) -> list[str]:
    prior = load_prior(spec, kind="image", device=device)
    full = prior.respaced("")
    lines = ["## Image prior", ""] + prior_info(spec, prior)
    if not CBSD68.is_dir():
        return lines + [f"CBSD68 ({CBSD68}) absent: the image prior was not measured.", ""]
    clean = load_crops(args.crop, args.images)
    g = torch.Generator().manual_seed(args.seed + 3000)
    stds = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.5, 3.0]
    bm3d = bm3d_denoiser()
    rows = []
    for sigma in NOISE_LEVELS:
        noisy = clean + sigma / 255 * torch.randn(clean.shape, generator=g)
        s = 2 * sigma / 255
        t = matched_step(prior, s)
        abar = float(full.process.alphas_cumprod[t])
        x_t = math.sqrt(abar) * (noisy * 2 - 1)
        with torch.no_grad():
            hat = torch.cat([full.denoise(x_t[j:j + args.batch].to(device), t).x0.float().cpu()
                             for j in range(0, len(x_t), args.batch)])
        net = psnr(((hat + 1) / 2).clamp(0, 1), clean)
        gauss = {sd: psnr(gaussian_filter(noisy, sd).clamp(0, 1), clean).mean().item() for sd in stds}
        best = max(gauss, key=gauss.get)
        row = [str(sigma), f"{t} ({math.sqrt((1 - abar) / abar) * 255 / 2:.1f})",
               mean_std(psnr(noisy.clamp(0, 1), clean).numpy(), decimals=2), mean_std(net.numpy(), decimals=2),
               f"{gauss[best]:.2f} (std {best:g} px)"]
        if bm3d is not None:
            # CBM3D (bm3d_rgb: block matching on luminance, opponent colour space), the colour
            # reference; bm3d.bm3d on an RGB array would denoise it as one 3-channel signal.
            den = torch.stack([torch.from_numpy(np.asarray(bm3d.bm3d_rgb(im.permute(1, 2, 0).numpy().astype(np.float64),
                                                                         sigma / 255), dtype=np.float32)).permute(2, 0, 1)
                               for im in noisy])
            row.append(mean_std(psnr(den.clamp(0, 1), clean).numpy(), decimals=2))
        rows.append(row)
    header = ["σ (/255)", "t (its σ /255)", "noisy PSNR", "network x0-hat PSNR", "best Gaussian filter PSNR"]
    header += ["CBM3D PSNR"] if bm3d is not None else []
    lines += [f"x0-hat denoising of {len(clean)} centre crops {args.crop}x{args.crop} of CBSD68 (held out from "
              "training), Gaussian noise in [0, 1] units, one network evaluation at the matched timestep "
              "(PSNR in dB over [0, 1], mean ± std over images; noisy input unclipped for the denoisers, clipped "
              f"for its own PSNR). Gaussian filter: std grid {stds[0]}..{stds[-1]} px, the best mean PSNR per "
              "noise level on the same images (an oracle choice)."
              + ("" if bm3d is not None else " BM3D: no `bm3d` package importable, skipped."), ""]
    return lines + table(header, rows)


# -------------------------------------------------------------------------------- tilts

def tilt_stats(t: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-map statistics of (N, 2, H, W) tilt maps in pixels."""
    t = t.double().numpy()
    c = t - t.mean((2, 3), keepdims=True)
    var = np.clip(c.var((1, 2, 3)), 1e-12, None)
    out = {"abs_mean": np.abs(t).mean((1, 2, 3)), "std": t.std((1, 2, 3))}
    for lag in TILT_LAGS:
        rows = (c[:, :, lag:] * c[:, :, :-lag]).mean((1, 2, 3))
        cols = (c[..., lag:] * c[..., :-lag]).mean((1, 2, 3))
        out[f"corr{lag}"] = (rows + cols) / (2 * var)
    return out


def measure_tilt(spec: str, args, device) -> list[str]:
    prior = load_prior(spec, kind="tilt", device=device)
    size = args.tilt_size or training_size(spec, prior.network.config.image_size)
    lines = ["## Tilt prior", ""] + prior_info(spec, prior)
    t0 = time.perf_counter()
    z = samples(prior, args.n_tilt, (2, size, size), args.steps, args.seed + 4000, args.batch)
    sampled = prior.transform.to_operator(z)
    t_sample = time.perf_counter() - t0
    stream = TiltStream(size, map_size=max(128, size))
    g = torch.Generator().manual_seed(args.seed + 5000)
    generated = prior.transform.to_operator(stream.batch(args.n_ref_tilt, g))
    cols = ["abs_mean", "std"] + [f"corr{lag}" for lag in TILT_LAGS]
    rows = [[name, str(len(t))] + [mean_std(tilt_stats(t)[c]) for c in cols]
            for name, t in ((f"prior samples ({args.steps} DDPM steps)", sampled), ("generated (training stream)", generated))]
    lines += [f"Unconditional samples vs generated tilt maps, {size}x{size} px, in pixels (mean ± std over maps; "
              f"sampling took {t_sample:.0f} s). Generated: TiltGenerator maps of {max(128, size)}x{max(128, size)} "
              f"with the paper's patch density ({stream.generator.num_patches} patches), cropped to {size}x{size} "
              "(the tilt training stream). Correlation: per map, mean-removed, averaged over both axes and channels.", ""]
    return lines + table(["maps", "n", "mean abs tilt", "std", *[f"corr lag {lag}" for lag in TILT_LAGS]], rows)


# --------------------------------------------------------------------------------- main

def machine_lines(args, seconds: float) -> list[str]:
    model = "unknown"
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "n/a"
    return ["## Machine and command", "",
            f"- command: `python benchmarks/measure_priors.py {' '.join(args.argv)}`",
            f"- {platform.platform()}, Python {platform.python_version()}, torch {torch.__version__}, "
            f"device {args.device}, {args.threads} thread(s); CPU {model}, {os.cpu_count()} cores",
            f"- date {datetime.datetime.now().isoformat(timespec='seconds')}; load average at the end {load} "
            f"(other processes share the CPU: wall times are inflated by them, CPU times less so); "
            f"total {seconds:.0f} s wall, {time.process_time():.0f} s CPU", ""]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kernel-prior")
    p.add_argument("--image-prior")
    p.add_argument("--tilt-prior")
    p.add_argument("--out", default="docs/prior_measurements.md")
    p.add_argument("--n", type=int, default=None, help="prior samples (kernel; tilt gets n / 2); default 48, quick 8")
    p.add_argument("--steps", type=int, default=None, help="DDPM steps of the samples (default 100, quick 20)")
    p.add_argument("--quick", action="store_true", help="smoke test: few samples, 64x64 crops, 20 steps")
    p.add_argument("--tilt-size", type=int, default=None, help="tilt sample size (default: the training size)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=16, help="network batch size")
    p.add_argument("--n-mmse", type=int, default=None,
                   help="generated kernels of the empirical-MMSE reference column (0: none; default 20000, quick 0)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    q = args.quick
    args.n = args.n or (8 if q else 48)
    args.steps = args.steps or (20 if q else 100)
    args.n_tilt = max(2, args.n // 2)
    args.n_ref = 32 if q else 256
    args.n_ref_tilt = 8 if q else 64
    args.n_denoise = 16 if q else 128
    args.n_mmse = (0 if q else 20000) if args.n_mmse is None else args.n_mmse
    args.images, args.crop = (8, 64) if q else (24, 128)
    if not (args.kernel_prior or args.image_prior or args.tilt_prior):
        p.error("give at least one of --kernel-prior, --image-prior, --tilt-prior")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    start = time.perf_counter()
    lines = ["# Prior measurements", "",
             "What the priors have learned, measured by `benchmarks/measure_priors.py` (see its docstring "
             "for the definitions)." + (" **Quick mode** (--quick): few samples, small crops, 20 steps: "
                                        "a smoke test, not a measurement." if args.quick else ""), ""]
    for spec, measure in ((args.kernel_prior, measure_kernel), (args.image_prior, measure_image),
                          (args.tilt_prior, measure_tilt)):
        if spec:
            print(f"measuring {measure.__name__.split('_')[1]} prior {spec} ...", flush=True)
            wall, cpu = time.perf_counter(), time.process_time()
            lines += measure(spec, args, device)
            lines += [f"(this section: {time.perf_counter() - wall:.0f} s wall, "
                      f"{time.process_time() - cpu:.0f} s CPU)", ""]
    lines += machine_lines(args, time.perf_counter() - start)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
