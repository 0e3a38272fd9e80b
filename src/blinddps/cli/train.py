"""`blinddps train kernel|tilt|image` and `blinddps sample kernel|tilt|image`."""
from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import torch

from ..io.atomic import save_npy_atomic, write_json_atomic
from ..io.figures import image_grid, save_figure
from ..priors.bundle import BUNDLED, load_prior
from ..solvers import sample_prior
from ..training import TrainConfig, train
from ..training.preview import samples_for_display
from .common import device_option, friendly_errors, quiet_option, resolve_device, seed_option

DEFAULT_PRIOR = {"kernel": "kernel-64", "image": "natural-rgb", "tilt": "tilt"}


@click.command("train")
@click.argument("kind", type=click.Choice(["kernel", "tilt", "image"]))
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False), help="Run folder.")
@click.option("--steps", type=int, default=10000, show_default=True, help="Total optimisation steps.")
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--size", type=int, default=64, show_default=True, help="Crop / kernel size in pixels.")
@click.option("--lr", type=float, default=2e-4, show_default=True)
@click.option("--ema", type=float, default=0.999, show_default=True, help="EMA decay.")
@click.option("--channels", type=int, default=32, show_default=True, help="Base width of the U-Net.")
@click.option("--channel-mult", default="1,2,2", show_default=True, help="Width multipliers per level.")
@click.option("--res-blocks", type=int, default=1, show_default=True)
@click.option("--data", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Image folder (kind image; repeatable).")
@click.option("--checkpoint-every", type=int, default=500, show_default=True)
@click.option("--preview-every", type=int, default=0, show_default=True, help="0: previews only at the end.")
@click.option("--resume", is_flag=True, help="Continue the run in OUTPUT exactly where it stopped.")
@click.option("--threads", type=int, default=0, help="CPU threads (0: torch default).")
@click.option("--warmup", type=int, default=0, show_default=True, help="Steps of linear learning-rate warm-up.")
@click.option("--lr-decay", type=click.Choice(["constant", "cosine"]), default="constant", show_default=True,
              help="cosine: decay to lr * --min-lr-ratio at --steps.")
@click.option("--min-lr-ratio", type=float, default=0.1, show_default=True)
@click.option("--autocast/--no-autocast", default=True, show_default=True,
              help="bf16 autocast where the hardware has native bf16 (CUDA; CPUs with AVX-512 BF16 / AMX).")
@click.option("--init-from", default="", help="Start from a bundled prior name or prior file (weights and EMA; "
              "a fresh optimiser).")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Minutes to train in this run; then checkpoint and stop (continue with --resume).")
@seed_option
@device_option
@quiet_option
@friendly_errors
def train_command(kind, out, steps, batch_size, size, lr, ema, channels, channel_mult, res_blocks, data,
                  checkpoint_every, preview_every, resume, threads, warmup, lr_decay, min_lr_ratio, autocast, init_from,
                  time_limit, seed, device, quiet):
    """Train a diffusion prior of blur kernels, tilt fields or images.

    \b
    Examples:
      blinddps train kernel -o runs/kernel --steps 20000
      blinddps train image -o runs/img --data ../shared/data/train/bsds500 --size 64
      blinddps train kernel -o runs/kernel --steps 40000 --resume --time-limit 30
      blinddps train kernel -o runs/k2 --init-from kernel-64 --channels 24 --channel-mult 1,2,2,2
      torchrun --nproc-per-node 2 -m blinddps train kernel -o runs/k   (data parallel)
    """
    if threads:
        torch.set_num_threads(threads)
    mult = tuple(int(m) for m in channel_mult.split(","))
    config = TrainConfig(kind=kind, out=out, steps=steps, batch_size=batch_size, size=size, lr=lr, ema=ema,
                         seed=seed, checkpoint_every=checkpoint_every, preview_every=preview_every,
                         data=list(data), warmup=warmup, lr_decay=lr_decay, min_lr_ratio=min_lr_ratio,
                         autocast=autocast, init_from=init_from, unet={"num_channels": channels, "channel_mult": mult,
                                                "num_res_blocks": res_blocks})
    weights = train(config, resume=resume, device=str(resolve_device(device)), progress=not quiet,
                    time_limit=None if time_limit is None else 60 * time_limit)
    if not quiet:
        click.echo(f"prior written to {weights}")


@click.command("sample")
@click.argument("kind", type=click.Choice(["kernel", "tilt", "image"]))
@click.option("--prior", default=None, help=f"Bundled name ({', '.join(BUNDLED)}) or checkpoint path.")
@click.option("-n", "count", type=int, default=16, show_default=True)
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False))
@click.option("--size", type=int, default=None, help="Spatial size (default: the prior's training size).")
@click.option("--steps", default="100", show_default=True, help="Respacing: N or ddimN.")
@seed_option
@device_option
@quiet_option
@friendly_errors
def sample_command(kind, prior, count, out, size, steps, seed, device, quiet):
    """Unconditional samples of a prior: a PNG grid and an .npy in natural units
    (kernels non-negative summing to 1, tilts in pixels, images in [0, 1])."""
    dev = resolve_device(device)
    p = load_prior(prior or DEFAULT_PRIOR[kind], kind=kind, device=dev, respacing=steps)
    size = size or p.network.config.image_size
    g = torch.Generator().manual_seed(seed)
    z = sample_prior(p, count, (p.channels, size, size), generator=g, device=dev,
                     sampler="ddim" if steps.startswith("ddim") else "ddpm").float().cpu()
    values = (z + 1) / 2 if kind == "image" else p.transform.to_operator(z)
    out_dir = Path(out)
    save_npy_atomic(out_dir / f"{kind}_samples.npy", values.numpy().astype(np.float32))
    save_figure(image_grid(samples_for_display(p, z), nrow=int(np.ceil(np.sqrt(count)))), out_dir / f"{kind}_samples.png")
    write_json_atomic(out_dir / "config.json", {"kind": kind, "prior": prior or DEFAULT_PRIOR[kind], "n": count,
                                                "size": size, "steps": steps, "seed": seed})
    if not quiet:
        click.echo(f"wrote {count} samples to {out_dir}")
