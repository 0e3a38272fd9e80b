"""The prior-training loop: epsilon + VB loss, AdamW, EMA, clipping, atomic checkpoints,
exact resume, bf16 autocast (CUDA, and CPUs with native bf16), learning-rate warm-up and
cosine decay, starting from a saved prior (init_from), and data parallelism under torchrun.

Checkpoint folder layout (`config.out`):
  ema.safetensors + ema.json   the EMA network as a prior (load_prior / load_adm read it)
  state.pt                     model, EMA and optimizer state + step, for --resume
  config.json                  the resolved TrainConfig
  preview_<step>.png           unconditional samples of the EMA network
Every step's data are drawn from a generator seeded by (seed, rank, step), so a resumed
run continues exactly as the uninterrupted one would.
"""
from __future__ import annotations

import copy
import math
import os
import platform
import time
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from tqdm import tqdm

from ..devices import native_bf16
from ..diffusion import DiffusionConfig, VPProcess
from ..diffusion.losses import diffusion_loss
from ..io.atomic import atomic_path, write_json_atomic
from ..networks import ADMUNet, UNetConfig
from ..priors import DiffusionPrior
from ..priors.bundle import save_prior
from .config import TrainConfig
from .data import ImageFolderStream, KernelStream, TiltStream
from .preview import save_preview


def make_stream(config: TrainConfig):
    if config.kind == "kernel":
        return KernelStream(config.size)
    if config.kind == "tilt":
        return TiltStream(config.size, map_size=max(128, config.size))
    return ImageFolderStream(config.data, config.size)


def make_network(config: TrainConfig, channels: int) -> ADMUNet:
    options = {"num_channels": 32, "channel_mult": (1, 2, 2), "image_size": config.size, **config.unet}
    return ADMUNet(UNetConfig.small(channels, **options))


def _step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + rank) * 10_000_019 + step)


class Trainer:
    """Trains one prior as configured; `run()` returns the path of the EMA weights."""

    def __init__(self, config: TrainConfig, device: str | torch.device = "cpu", progress: bool = True,
                 on_step: Callable[[int, float], None] | None = None):
        self.config = config
        self.device = torch.device(device)
        self.rank, self.world = _distributed_setup(self.device)
        self.progress = progress and self.rank == 0
        self.on_step = on_step
        self.out = Path(config.out)
        self.stream = make_stream(config)
        torch.manual_seed(config.seed)  # the same initial weights on every rank
        self.model = make_network(config, self.stream.channels).to(self.device)
        if config.init_from:
            self._load_initial(config.init_from)
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.diffusion = DiffusionConfig(schedule=config.schedule)
        self.process = VPProcess(self.diffusion)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.step = 0
        self.wall_seconds = 0.0  # training time summed over the first run and every resume
        self._clock = time.perf_counter()
        self.ddp = self._wrap(self.model)

    def _wrap(self, model):
        if self.world == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def _load_initial(self, name_or_path: str) -> None:
        """Start from a saved prior's (EMA) weights; its network must have this run's shape."""
        from ..priors.bundle import load_prior

        prior = load_prior(name_or_path, kind=self.config.kind)
        mine, theirs = self.model.config.to_dict(), prior.network.config.to_dict()
        diff = sorted(k for k in mine if k in theirs and mine[k] != theirs[k] and k != "image_size")
        if diff:
            raise ValueError(f"--init-from {name_or_path}: its network differs from this run's in {', '.join(diff)}")
        self.model.load_state_dict({k: v.float() for k, v in prior.network.state_dict().items()})

    def learning_rate(self, step: int) -> float:
        """Linear warm-up over `warmup` steps, then constant or cosine decay to lr * min_lr_ratio."""
        cfg = self.config
        if cfg.warmup and step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        if cfg.lr_decay == "constant":
            return cfg.lr
        span = max(cfg.steps - cfg.warmup, 1)
        progress = min(max(step - cfg.warmup, 0) / span, 1.0)
        floor = cfg.lr * cfg.min_lr_ratio
        return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    def _autocast(self):
        enabled = self.config.autocast and native_bf16(self.device)
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    # -- checkpoints ----------------------------------------------------------------------
    def resume(self) -> None:
        """Continue from `out/state.pt`; refuses a folder trained with another config."""
        path = self.out / "state.pt"
        if not path.is_file():
            raise FileNotFoundError(f"nothing to resume: {path} does not exist")
        state = torch.load(path, map_location=self.device, weights_only=True)
        saved = state["config"]
        # The target steps and the save cadence may change when a run is resumed, and the folder may
        # have moved (copied to a GPU machine and back); everything else must match.
        per_run = ("steps", "checkpoint_every", "preview_every", "out", "init_from", "autocast",
                   "warmup", "lr_decay", "min_lr_ratio")
        mine = {k: v for k, v in self.config.to_dict().items() if k not in per_run}
        theirs = {k: v for k, v in saved.items() if k in mine}
        if theirs != {k: mine[k] for k in theirs}:
            diff = sorted(k for k in theirs if theirs[k] != mine[k])
            raise ValueError(f"cannot resume {path}: its run differs in {', '.join(diff)}")
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.wall_seconds = float(state.get("wall_seconds", 0.0))

    def save(self) -> Path:
        if self.rank != 0:
            return self.out / "ema.safetensors"
        self.out.mkdir(parents=True, exist_ok=True)
        now = time.perf_counter()
        self.wall_seconds += now - self._clock
        self._clock = now
        state = {"wall_seconds": self.wall_seconds, "model": self.model.state_dict(), "ema": self.ema.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "step": self.step, "config": self.config.to_dict()}
        with atomic_path(self.out / "state.pt") as tmp:
            torch.save(state, tmp)
        write_json_atomic(self.out / "config.json", self.config.to_dict())
        training = {"config": self.config.to_dict(), "step": self.step, "world_size": self.world,
                    "wall_seconds": round(self.wall_seconds, 1), "machine": _machine(),
                    "device": str(self.device), "torch": torch.__version__}
        return save_prior(self.out / "ema", self.ema, kind=self.config.kind, diffusion=self.diffusion,
                          transform=self.stream.transform, training=training)

    # -- the loop -------------------------------------------------------------------------
    def train_step(self) -> float:
        cfg = self.config
        g = _step_generator(cfg.seed, self.rank, self.step)
        per_rank = max(1, cfg.batch_size // self.world)
        x0 = self.stream.batch(per_rank, g).to(self.device)
        i = torch.randint(self.process.num_steps, (per_rank,), generator=g).to(self.device)
        noise = torch.randn(x0.shape, generator=g).to(self.device)
        x_t = self.process.q_sample(x0, i, noise)
        with self._autocast():
            out = self.ddp(x_t, self.process.timesteps.to(self.device)[i])
        loss, _ = diffusion_loss(self.process, out.float(), x0, x_t, i, noise)
        loss = loss.mean()
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(self.step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self._update_ema()
        self.step += 1
        return float(loss.detach())

    @torch.no_grad()
    def _update_ema(self) -> None:
        # Warm-up: early on, average over the few steps seen so far.
        decay = min(self.config.ema, (1 + self.step) / (10 + self.step))
        for e, p in zip(self.ema.parameters(), self.model.parameters()):
            e.lerp_(p.detach(), 1 - decay)

    def _out_of_time(self, deadline: float | None) -> bool:
        """Whether this run's time limit has passed; every rank gets rank 0's answer, so all
        stop after the same step (a rank that stopped alone would hang the others' all-reduce)."""
        if deadline is None:
            return False
        late = time.perf_counter() >= deadline
        if self.world == 1:
            return late
        flag = torch.tensor([float(late)], device=self.device)
        dist.broadcast(flag, src=0)
        return bool(flag.item())

    def run(self, time_limit: float | None = None) -> Path:
        """Train until `config.steps`, or until `time_limit` seconds of this run have passed
        (then checkpoint and return, so that `--resume` continues exactly there)."""
        cfg = self.config
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not self.progress, desc=f"train {cfg.kind}",
                   dynamic_ncols=True)
        start, done_at_start = time.perf_counter(), self.step
        deadline = None if time_limit is None else start + time_limit
        weights = self.out / "ema.safetensors"
        while self.step < cfg.steps and not self._out_of_time(deadline):
            loss = self.train_step()
            rate = (self.step - done_at_start) * cfg.batch_size / max(time.perf_counter() - start, 1e-9)
            bar.set_postfix(loss=f"{loss:.4f}", samples_per_s=f"{rate:.1f}")
            bar.update(1)
            if self.on_step is not None:
                self.on_step(self.step, loss)
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                weights = self.save()
            if cfg.preview_every and self.rank == 0 and self.step % cfg.preview_every == 0:
                save_preview(self.ema_prior(), self.out / f"preview_{self.step:07d}.png", cfg.size, cfg.seed)
        bar.close()
        if self.step % cfg.checkpoint_every != 0 and self.step != cfg.steps:
            weights = self.save()  # stopped by the time limit between checkpoints
        if self.step == 0 or not weights.is_file():
            weights = self.save()
        if self.rank == 0 and not (cfg.preview_every and self.step % cfg.preview_every == 0):
            save_preview(self.ema_prior(), self.out / f"preview_{self.step:07d}.png", cfg.size, cfg.seed)
        return weights

    def ema_prior(self) -> DiffusionPrior:
        process = VPProcess(self.diffusion.replace(respacing=self.config.preview_steps))
        return DiffusionPrior(self.ema.eval(), process, self.stream.transform, self.stream.channels,
                              name=self.config.kind)


def _machine() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} threads"


def _distributed_setup(device: torch.device) -> tuple[int, int]:
    """(rank, world size); joins the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def train(config: TrainConfig, *, resume: bool = False, device: str = "cpu", progress: bool = True,
          time_limit: float | None = None) -> Path:
    """Train (or continue) a prior; returns the EMA weights path (a loadable prior).
    time_limit: seconds of training in this call (None: until config.steps)."""
    trainer = Trainer(config, device=device, progress=progress)
    if resume:
        trainer.resume()
    return trainer.run(time_limit=time_limit)
