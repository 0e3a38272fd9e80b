"""The files a restoration writes for one photo, each atomically: the restored photo (its
format, bit depth and grey/colour kept), the kernel as .npy and .png, optional std map,
progress strip and tilt field, and last the JSON record of the run (`records.output_record`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..io import (LoadedImage, WRITE_FORMATS, kernel_to_image, save_figure, save_npy_atomic, tensor_to_pil,
                  tile_figure, write_image, write_json_atomic)
from ..tasks import RestoreConfig, RestoreResult


def restored_suffix(path: Path) -> str:
    """The input's suffix when we can write that format, else .png."""
    return path.suffix if path.suffix.lower() in WRITE_FORMATS else ".png"


def output_paths(path: Path, stem: str, outdir: Path, config: RestoreConfig, turbulence: bool) -> dict[str, Path]:
    names = {"restored": f"{stem}_restored{restored_suffix(path)}", "kernel_png": f"{stem}_kernel.png",
             "kernel_npy": f"{stem}_kernel.npy", "config": f"{stem}_config.json"}
    if config.samples > 1:
        names["std"] = f"{stem}_std.png"
    if config.record_every:
        names["progress"] = f"{stem}_progress.png"
    if turbulence:
        names.update(tilt_npy=f"{stem}_tilt.npy", tilt_png=f"{stem}_tilt.png")
    return {key: outdir / name for key, name in names.items()}


def save_kernel(kernel: torch.Tensor, npy: Path, png: Path) -> None:
    """(K, K) kernel -> float32 .npy (non-negative, sum 1) and a PNG scaled by its maximum."""
    k = kernel.detach().cpu().double().clamp(min=0)
    k = k / k.sum() if k.sum() > 0 else torch.full_like(k, 1 / k.numel())
    save_npy_atomic(npy, k.numpy().astype(np.float32))
    save_figure(kernel_to_image(k, upscale=1), png)


def save_scaled_map(values: torch.Tensor, path: Path) -> float:
    """Non-negative (H, W) map as a grey PNG scaled by its maximum; returns that maximum."""
    top = float(values.max())
    save_figure(tensor_to_pil((values / top if top > 0 else values).clamp(0, 1)[None]), path)
    return top


def progress_strip(result: RestoreResult, every: int, height: int = 128) -> Image.Image:
    """The recorded x0 estimates of the first sample side by side, captioned with their step
    (the solver records steps 0, every, 2 every, ... and the last one)."""
    h, w = result.info["working_size"]
    n = result.info["steps"]
    steps = [s for s in range(n) if s % every == 0 or s == n - 1]
    panels = []
    for step, frame in zip(steps, result.frames):  # frames come cropped, in [0, 1] (tasks.restore)
        panels.append((f"step {step + 1}/{n}", frame["image"][0]))
    return tile_figure(panels, height=max(96, min(h, height)))


def write_outputs(paths: dict[str, Path], loaded: LoadedImage, result: RestoreResult, record: dict) -> list[str]:
    """Write every output of one photo (config JSON last); returns notes for the user."""
    # the optional files the result has something for (turbulence by the proximal sampler has no tilt)
    produced = {"std": result.std is not None, "progress": bool(result.frames),
                "tilt_npy": result.tilt is not None, "tilt_png": result.tilt is not None}
    wanted = {key: path for key, path in paths.items() if produced.get(key, True)}
    notes = list(write_image(wanted["restored"], result.image, bit_depth=loaded.bit_depth, mode=loaded.mode).notes)
    save_kernel(result.kernel, wanted["kernel_npy"], wanted["kernel_png"])
    if "std" in wanted:
        record["info"]["std_png_max"] = save_scaled_map(result.std[0].mean(0), wanted["std"])
    if "progress" in wanted:
        save_figure(progress_strip(result, record["config"]["record_every"]), wanted["progress"])
    if "tilt_npy" in wanted:
        save_npy_atomic(wanted["tilt_npy"], result.tilt.float().numpy())
        record["info"]["tilt_png_max_px"] = save_scaled_map(result.tilt.float().norm(dim=0), wanted["tilt_png"])
    record["outputs"] = {key: path.name for key, path in wanted.items()}
    write_json_atomic(paths["config"], record)
    return notes
