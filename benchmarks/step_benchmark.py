"""Time per BlindDPS step, split into network forward+backward and everything else.

One step of BlindDPS (BLINDDPS.md section 2) evaluates every prior network once (forward),
maps x0 to the operator's domain, blurs, and backpropagates the misfit through every
network (backward).  This script times whole steps of the real ``BlindDPS.solve`` (a
callback stamps the end of every step) while a timing wrapper around each network
records its forward time and, with identity autograd markers at its input and output, its
backward time.  "Non-network" = step - network: the blur (FFT or direct), the x0 / posterior
formulas, the noise draws, the transforms, the regulariser and the bookkeeping.

Configurations (256x256 RGB image, 64x64 kernel, padding as the task API's default):
  published: the paper's checkpoint architectures (ffhq_10m image prior, kernel_checkpoint
      kernel prior) built from ../shared/golden/adm_manifest.json with random weights;
  small: the project's small priors (bundled natural-rgb / kernel-64 when installed, else
      random networks of the same configuration as their training runs).
Each run (configuration x blur method) runs in its own subprocess, so that its peak memory
(CPU: ru_maxrss, CUDA: max_memory_allocated) is its own.

    python benchmarks/step_benchmark.py                       # CPU, 1 thread
    python benchmarks/step_benchmark.py --device cuda --autocast
    python benchmarks/step_benchmark.py --runs small:fft --steps 3 --out /tmp/x.md

Writes a markdown table (plus the machine and its load) to --out.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from blinddps.diffusion import DiffusionConfig, VPProcess
from blinddps.generators import MotionKernelGenerator
from blinddps.networks import ADMUNet, UNetConfig
from blinddps.physics import Blur
from blinddps.priors import DiffusionPrior, ImageTransform, KernelTransform
from blinddps.priors.bundle import BUNDLED_DIR, load_prior
from blinddps.solvers import BlindDPS, KernelSparsity, SolverConfig, StepInfo, Unknown

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
MANIFEST = SHARED / "golden" / "adm_manifest.json"
PHOTO = SHARED / "data" / "bench" / "cbsd68" / "101085.png"
IMAGE_SIZE, KERNEL_SIZE = 256, 64
PROJECTED_STEPS = (1000, 200, 100)
NON_NETWORK_TARGET = 0.10


# ------------------------------------------------------------------------ timing wrapper

class Clock:
    """Wall-clock stamps (after a CUDA synchronise) of the networks' forward and backward.

    Backward intervals run from the gradient reaching a network's output to it reaching the
    network's input; their union is taken (two networks' backward could interleave).
    """

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.forward = 0.0
        self.intervals: list[tuple[float, float]] = []
        self._open: dict[str, float] = {}

    def now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def mark(self, key: tuple[str, str]) -> None:
        name, event = key
        if event == "bwd_start":
            self._open[name] = self.now()
        else:
            self.intervals.append((self._open.pop(name), self.now()))

    def take(self) -> tuple[float, float]:
        """(forward seconds, backward seconds) since the last call; resets."""
        backward, end = 0.0, float("-inf")
        for a, b in sorted(self.intervals):
            a = max(a, end)
            backward += max(0.0, b - a)
            end = max(end, b)
        out = (self.forward, backward)
        self.forward, self.intervals = 0.0, []
        return out


class _Mark(torch.autograd.Function):
    """Identity whose backward stamps the clock (graph position marks a network's edge)."""

    @staticmethod
    def forward(ctx, x, clock: Clock, key: tuple[str, str]):
        ctx.clock, ctx.key = clock, key
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        ctx.clock.mark(ctx.key)
        return grad, None, None


class TimedNetwork(nn.Module):
    """Wraps a score network: same call, same output; forward/backward time to `clock`."""

    def __init__(self, network: nn.Module, clock: Clock, name: str):
        super().__init__()
        self.network, self.clock, self.name = network, clock, name
        self.config = network.config

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x = _Mark.apply(x, self.clock, (self.name, "bwd_end"))  # reached last in backward
        start = self.clock.now()
        out = self.network(x, t)
        self.clock.forward += self.clock.now() - start
        return _Mark.apply(out, self.clock, (self.name, "bwd_start"))


class NullNetwork(nn.Module):
    """A 1x1 convolution with the network's channel counts: the step without its networks
    (used to profile the non-network part alone)."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        self.conv = nn.Conv2d(config.in_channels, config.out_channels, 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


# ------------------------------------------------------------------------ configurations

def small_configs() -> dict[str, UNetConfig]:
    """The project's small priors (same configurations as their training runs)."""
    return {"image": UNetConfig.small(3, num_channels=24, channel_mult=(1, 2, 2), image_size=64),
            "kernel": UNetConfig.small(1, num_channels=24, channel_mult=(1, 2, 2, 2), image_size=64)}


def published_configs() -> dict[str, UNetConfig]:
    manifest = json.loads(MANIFEST.read_text())
    return {"image": UNetConfig.from_dict(manifest["ffhq_10m"]["config"]),
            "kernel": UNetConfig.from_dict(manifest["kernel_checkpoint"]["config"])}


def build_priors(arch: str, steps: int, device: torch.device, seed: int = 0) -> tuple[dict[str, DiffusionPrior], str]:
    """(priors respaced to `steps`, a line saying where the weights came from)."""
    respacing = str(steps)
    bundled = {"image": "natural-rgb", "kernel": "kernel-64"}
    if arch == "small" and all((BUNDLED_DIR / f"{n}.safetensors").is_file() for n in bundled.values()):
        priors = {k: load_prior(n, kind=k, device=device, respacing=respacing) for k, n in bundled.items()}
        return priors, "bundled natural-rgb + kernel-64 weights"
    configs = small_configs() if arch == "small" else published_configs()
    transforms = {"image": ImageTransform(), "kernel": KernelTransform()}
    process = VPProcess(DiffusionConfig(respacing=respacing))
    torch.manual_seed(seed)
    priors = {}
    for kind, cfg in configs.items():
        net = ADMUNet(cfg, zero_init=False).to(device).eval().requires_grad_(False)
        priors[kind] = DiffusionPrior(net, process, transforms[kind], cfg.in_channels, name=f"{arch}-{kind}")
    source = "random weights (zero_init=False)" + (", bundled priors not installed" if arch == "small" else "")
    return priors, source


def measurement(device: torch.device, padding: str) -> tuple[torch.Tensor, torch.Tensor]:
    """y (1, 3, 256, 256) in [-1, 1]: a photo crop blurred by a 64x64 motion kernel (I = 0.5)
    plus noise sigma 0.02; a smooth random image when ../shared is absent."""
    g = torch.Generator().manual_seed(0)
    if PHOTO.is_file():
        from blinddps.io.images import read_image
        photo = read_image(PHOTO).tensor
        h, w = photo.shape[-2:]
        top, left = (h - IMAGE_SIZE) // 2, (w - IMAGE_SIZE) // 2
        x = photo[..., top:top + IMAGE_SIZE, left:left + IMAGE_SIZE] * 2 - 1
    else:
        x = torch.nn.functional.avg_pool2d(torch.rand(1, 3, IMAGE_SIZE + 7, IMAGE_SIZE + 7, generator=g), 8, 1) * 2 - 1
    kernel = MotionKernelGenerator(KERNEL_SIZE, 0.5).sample(1, generator=0)["kernel"]
    y = Blur(padding)(x, kernel=kernel) + 0.02 * torch.randn(x.shape, generator=g)
    return y.to(device), kernel


# ------------------------------------------------------------------------------- worker

def _peak_memory(device: torch.device) -> float:
    """MiB: CUDA max_memory_allocated, or the process's peak resident set size on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_worker(arch: str, method: str, args) -> dict:
    """Time `args.steps` steps (+1 warm-up) of BlindDPS.solve; a dict of measurements."""
    device = torch.device(args.device)
    steps = args.steps + 1
    priors, source = build_priors(arch, steps, device)
    clock = Clock(device)
    for kind, prior in priors.items():
        prior.network = TimedNetwork(prior.network, clock, kind)
    y, _ = measurement(device, args.padding)
    unknowns = {"image": Unknown((3, IMAGE_SIZE, IMAGE_SIZE), ImageTransform(), priors["image"]),
                "kernel": Unknown((1, KERNEL_SIZE, KERNEL_SIZE), KernelTransform(), priors["kernel"])}
    solver = BlindDPS(Blur(args.padding, method), unknowns, SolverConfig(autocast=args.autocast),
                      {"kernel": KernelSparsity(1.0)})
    records: list[dict] = []
    last = [0.0, 0.0]

    def callback(info: StepInfo) -> None:
        now = clock.now()
        cpu = time.process_time()
        fwd, bwd = clock.take()
        records.append({"step": now - last[0], "forward": fwd, "backward": bwd, "cpu": cpu - last[1]})
        last[0], last[1] = clock.now(), time.process_time()  # the callback itself is not counted

    rss_before = _peak_memory(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    gen = torch.Generator(device=device).manual_seed(0)
    last[0], last[1] = clock.now(), time.process_time()
    result = solver.solve(y, generator=gen, callback=callback)
    measured = records[1:]  # step 0 is the warm-up
    mean = lambda key: sum(r[key] for r in measured) / len(measured)  # noqa: E731
    return {
        "arch": arch, "method": method, "weights": source, "steps_timed": len(measured),
        "params": {k: sum(p.numel() for p in pr.network.parameters()) for k, pr in priors.items()},
        "step_s": mean("step"), "forward_s": mean("forward"), "backward_s": mean("backward"),
        "cpu_per_wall": mean("cpu") / mean("step"), "cpu_step_s": mean("cpu"), "per_step_s": [r["step"] for r in measured],
        "warmup_s": records[0]["step"], "nfe_solver": result.nfe, "num_priors": len(priors),
        "peak_mib": _peak_memory(device), "before_mib": rss_before,
    }


def run_profile(method: str, args, rows: int = 15) -> str:
    """torch.profiler table of the step with the networks replaced by 1x1 convolutions:
    everything it shows is the non-network part."""
    from torch.profiler import ProfilerActivity, profile
    device = torch.device(args.device)
    process = VPProcess(DiffusionConfig(respacing="4"))
    priors = {}
    for kind, cfg in small_configs().items():
        net = NullNetwork(cfg).to(device).requires_grad_(False)
        priors[kind] = DiffusionPrior(net, process, ImageTransform() if kind == "image" else KernelTransform(),
                                      cfg.in_channels)
    y, _ = measurement(device, args.padding)
    unknowns = {"image": Unknown((3, IMAGE_SIZE, IMAGE_SIZE), ImageTransform(), priors["image"]),
                "kernel": Unknown((1, KERNEL_SIZE, KERNEL_SIZE), KernelTransform(), priors["kernel"])}
    solver = BlindDPS(Blur(args.padding, method), unknowns, SolverConfig(autocast=args.autocast),
                      {"kernel": KernelSparsity(1.0)})
    gen = torch.Generator(device=device).manual_seed(0)
    clock = Clock(device)
    solver.solve(y, generator=gen)  # warm-up
    walls = []
    for _ in range(3):
        start = clock.now()
        solver.solve(y, generator=gen)
        walls.append((clock.now() - start) / solver.num_steps)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        solver.solve(y, generator=gen)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=rows)
    return (f"Step with the networks replaced by 1x1 convolutions (so all of it is non-network): "
            f"{min(walls) * 1e3:.1f} ms/step (best of 3 solves of {solver.num_steps} steps, no profiler; "
            f"all: {', '.join(f'{w * 1e3:.1f}' for w in walls)}). Profile of one solve of "
            f"{solver.num_steps} steps, by self time:\n{table}")


# ------------------------------------------------------------------------------- driver

def machine_info(args) -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu": model,
            "cores": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)), "torch": torch.__version__,
            "threads": args.threads, "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "device": args.device, "autocast": args.autocast}
    if args.device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def load_report() -> dict:
    """The machine's load average and the other heavy processes (e.g. training runs)."""
    out = {"loadavg": Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []}
    try:
        ps = subprocess.run(["ps", "-eo", "pid,pcpu,rss,args", "--sort=-pcpu"], capture_output=True,
                            text=True, timeout=10).stdout.splitlines()[1:]
        me = os.getpid()
        out["busy"] = [l.strip()[:150] for l in ps if float(l.split()[1]) >= 10.0 and int(l.split()[0]) != me]
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        out["busy"] = []
    return out


def spawn(run: str, args) -> dict:
    """Run one configuration in a fresh interpreter (own peak memory); its result dict."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, __file__, "--worker", run, "--json", str(out), "--device", args.device,
               "--threads", str(args.threads), "--steps", str(args.steps_for(run)), "--padding", args.padding]
        cmd += ["--autocast"] if args.autocast else []
        subprocess.run(cmd, check=True)
        return json.loads(out.read_text())


def _fmt_mem(mib: float) -> str:
    return f"{mib / 1024:.2f} GiB" if mib >= 1024 else f"{mib:.0f} MiB"


def markdown(results: list[dict], profiles: dict[str, str], info: dict, loads: tuple[dict, dict], argv: str) -> str:
    mem_kind = "CUDA max_memory_allocated" if info["device"] == "cuda" else "peak RSS of the process (ru_maxrss)"
    lines = [
        "# BlindDPS step benchmark", "",
        f"Command: `{argv}`", "",
        "One BlindDPS step on a 256x256 RGB measurement with a 64x64 unknown kernel, both priors "
        "active (DDPM sampler, sqrt_abar step size, kernel l1 regulariser, reflect padding unless stated). "
        "Times are means over the timed steps of a real `BlindDPS.solve` after one warm-up step; "
        "network = forward + backward of both prior networks (timing wrapper with autograd "
        "markers); non-network = step - network (blur, x0/posterior formulas, noise, "
        "transforms, regulariser, bookkeeping). Weights are random: the speed of a network does not "
        "depend on its values.", "",
        "## Machine", "",
        f"- platform: {info['platform']}, Python {info['python']}, torch {info['torch']}",
        f"- CPU: {info['cpu']}, {info['cores']} logical cores ({info['affinity']} usable); torch threads: {info['threads']}",
    ]
    if "gpu" in info:
        lines.append(f"- GPU: {info['gpu']}")
    lines += [
        f"- device: {info['device']}, autocast (bf16): {info['autocast']}; date: {info['date']}",
        f"- load average (1, 5, 15 min) before: {' '.join(loads[0]['loadavg'])}; after: {' '.join(loads[1]['loadavg'])}",
        "- other busy processes at the start (pid, %cpu averaged over the process's lifetime as ps reports it, rss KiB, command):",
        *([f"  - `{p}`" for p in loads[0].get("busy", [])] or ["  - none above 10% CPU"]),
        "- `cpu/wall` below is the benchmark process's CPU time per wall second over the timed "
        "steps: with 1 thread, 1.0 means it had a core to itself; less means it waited for the CPU "
        "(the other processes above), so the wall times here are inflated by about 1 / (cpu/wall); "
        "`CPU s/step` (process CPU time per step) approximates the step time on an idle core.",
        "", "## Per step", "",
        "| configuration | blur | params (image + kernel) | s/step | network fwd | network bwd | network share "
        "| non-network s | non-network share | cpu/wall | CPU s/step | peak memory |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        net = r["forward_s"] + r["backward_s"]
        non = r["step_s"] - net
        flag = "" if non / r["step_s"] < NON_NETWORK_TARGET else " (over 10%)"
        params = " + ".join(f"{v / 1e6:.2f}M" for v in r["params"].values())
        lines.append(
            f"| {r['arch']} | {r['method']} | {params} | {r['step_s']:.3f} | {r['forward_s']:.3f} | "
            f"{r['backward_s']:.3f} | {net / r['step_s']:.1%} | {non:.3f} | {non / r['step_s']:.1%}{flag} | "
            f"{r['cpu_per_wall']:.2f} | {r['cpu_step_s']:.3f} | {_fmt_mem(r['peak_mib'])} |")
    lines += ["", f"Peak memory: {mem_kind}; on CPU it includes Python, torch and the weights "
              "(RSS after building the priors, before solving: "
              + ", ".join(f"{r['arch']}/{r['method']} {_fmt_mem(r['before_mib'])}" for r in results) + ").",
              "Timed steps per run and their individual times (s): "
              + "; ".join(f"{r['arch']}/{r['method']}: " + ", ".join(f"{s:.3f}" for s in r["per_step_s"])
                          for r in results) + ".",
              "Weights: " + "; ".join(f"{a}: {w}" for a, w in dict((r["arch"], r["weights"]) for r in results).items()) + ".",
              "", "## Per image (projected: s/step x steps)", "",
              "| configuration | blur | " + " | ".join(f"{n} steps: NFE, time" for n in PROJECTED_STEPS) + " |",
              "| --- | --- | " + " | ".join("---" for _ in PROJECTED_STEPS) + " |"]
    for r in results:
        cells = [f"{n * r['num_priors']}, {_duration(n * r['step_s'])}" for n in PROJECTED_STEPS]
        lines.append(f"| {r['arch']} | {r['method']} | " + " | ".join(cells) + " |")
    lines += ["", "NFE = network evaluations per image = steps x priors (each one forward and one backward "
              "pass), as `SolverResult.nfe` counts them. The projection assumes every step costs the same "
              "(true here: the step does the same work at every t)."]
    if profiles:
        lines += ["", "## Profile of the non-network part", ""]
        for method, text in profiles.items():
            lines += [f"Blur method {method}:", "", "```", text.strip(), "```", ""]
    return "\n".join(lines) + "\n"


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--autocast", action="store_true", help="bf16 autocast of the networks (SolverConfig.autocast)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: the machine is shared)")
    p.add_argument("--runs", default=None,
                   help="comma list of arch:method (arch small|published, method fft|direct); default: "
                        "small:fft,small:direct,published:fft on CPU, all four on CUDA")
    p.add_argument("--steps", type=int, default=None, help="timed steps (after 1 warm-up); default: "
                   "small 4, published 2 on CPU, 10 on CUDA")
    p.add_argument("--padding", default="reflect", help="blur padding (the task API's default: reflect)")
    p.add_argument("--profile", choices=["auto", "always", "never"], default="auto",
                   help="profile the non-network part (auto: when it exceeds 10%% of a step)")
    p.add_argument("--out", default=None, help="markdown output (default benchmarks/results/step_benchmark.md "
                   "on CPU, step_benchmark_cuda.md on CUDA)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--profile-worker", help=argparse.SUPPRESS)
    p.add_argument("--json", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    cuda = args.device.startswith("cuda")
    if args.runs is None:
        args.runs = ("small:fft,small:direct,published:fft,published:direct" if cuda
                     else "small:fft,small:direct,published:fft")
    fixed = args.steps
    args.steps_for = lambda run: fixed if fixed else (10 if cuda else 4 if run.startswith("small") else 2)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.worker or args.profile_worker:
        if args.worker:
            arch, method = args.worker.split(":")
            result = run_worker(arch, method, args)
        else:
            result = {"profile": run_profile(args.profile_worker, args)}
        Path(args.json).write_text(json.dumps(result))
        return
    info, before = machine_info(args), load_report()
    results = []
    for run in args.runs.split(","):
        print(f"running {run} ...", flush=True)
        results.append(spawn(run, args))
        r = results[-1]
        net = r["forward_s"] + r["backward_s"]
        print(f"  {r['step_s']:.3f} s/step, network {net / r['step_s']:.1%}, peak {_fmt_mem(r['peak_mib'])}", flush=True)
    profiles = {}
    for method in dict.fromkeys(r["method"] for r in results):
        over = any(r["method"] == method and 1 - (r["forward_s"] + r["backward_s"]) / r["step_s"] > NON_NETWORK_TARGET
                   for r in results)
        if args.profile == "always" or (args.profile == "auto" and over):
            print(f"profiling the non-network part ({method}) ...", flush=True)
            profiles[method] = _spawn_profile(method, args)
    after = load_report()
    out = Path(args.out or ROOT / "benchmarks" / "results"
               / ("step_benchmark.md" if args.device == "cpu" else f"step_benchmark_{args.device.split(':')[0]}.md"))
    out.parent.mkdir(parents=True, exist_ok=True)
    argv_text = "python benchmarks/step_benchmark.py " + " ".join(sys.argv[1:] if argv is None else argv)
    out.write_text(markdown(results, profiles, info, (before, after), argv_text.strip()))
    print(f"wrote {out}")


def _spawn_profile(method: str, args) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.json"
        cmd = [sys.executable, __file__, "--profile-worker", method, "--json", str(out), "--device", args.device,
               "--threads", str(args.threads), "--padding", args.padding] + (["--autocast"] if args.autocast else [])
        subprocess.run(cmd, check=True)
        return json.loads(out.read_text())["profile"]


if __name__ == "__main__":
    main()
