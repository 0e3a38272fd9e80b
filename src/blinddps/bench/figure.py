"""The benchmark's figure: rows = a few measurements, columns = blurry input / each method /
truth, every panel with its kernel in the top-left corner and its PSNR in the caption."""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from ..io import kernel_to_image, save_figure, tensor_to_pil, tile_figure
from ..physics import pad_kernel_to


def with_kernel_inset(image: torch.Tensor, kernel: torch.Tensor, support: int) -> Image.Image:
    """RGB panel of `image` (1, C, H, W) in [0, 1] with `kernel` (padded to `support`) drawn
    max-normalised, NEAREST-enlarged to about a third of the height, framed in white."""
    panel = tensor_to_pil(image).convert("RGB")
    k = pad_kernel_to(kernel.float(), support) if kernel.shape[-1] < support else kernel.float()
    scale = max(1, panel.height // (3 * k.shape[-1]))
    inset = kernel_to_image(k, upscale=scale).convert("RGB")
    if inset.width + 2 > panel.width // 2:  # tiny images: keep the image visible
        inset = inset.resize((max(1, panel.width // 3),) * 2, Image.Resampling.NEAREST)
    framed = Image.new("RGB", (inset.width + 2, inset.height + 2), (255, 255, 255))
    framed.paste(inset, (1, 1))
    panel.paste(framed, (0, 0))
    return panel


def stack_rows(rows: list[Image.Image], gap: int = 4) -> Image.Image:
    width = max(r.width for r in rows)
    canvas = Image.new("RGB", (width, sum(r.height for r in rows) + gap * (len(rows) - 1)), (255, 255, 255))
    y = 0
    for r in rows:
        canvas.paste(r, (0, y))
        y += r.height + gap
    return canvas


def benchmark_figure(rows: list[dict], path: str | Path) -> Path:
    """rows: [{'name', 'y', 'truth', 'kernel', 'support', 'methods': [(label, image, kernel)]}]."""
    images = []
    for row in rows:
        s = row["support"]
        panels = [(f"{row['name']}: input", tensor_to_pil(row["y"]).convert("RGB"))]
        panels += [(label, with_kernel_inset(img, k, s)) for label, img, k in row["methods"]]
        panels.append(("truth", with_kernel_inset(row["truth"], row["kernel"], s)))
        images.append(tile_figure(panels))
    return save_figure(stack_rows(images), path)
