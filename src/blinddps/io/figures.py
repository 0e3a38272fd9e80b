"""Result figures with Pillow only: kernels as images, captioned side-by-side panels, sample grids.

Enlarging always uses NEAREST so that every displayed pixel is a real pixel (no detail is
invented in a deblurring comparison); shrinking uses LANCZOS.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .atomic import PathLike, atomic_write
from .images import tensor_to_pil

Panel = tuple[str, "Image.Image | torch.Tensor"]


def kernel_to_image(kernel: torch.Tensor, scale_to_max: bool = True, upscale: int = 4) -> Image.Image:
    """A blur kernel (K, K) (leading singleton dims allowed), non-negative -> grey 'L' image.

    With ``scale_to_max`` the kernel is divided by its maximum so its peak is white (a kernel
    summing to 1 is otherwise nearly black); without it values are shown as-is, clipped to
    [0, 1]. Negative values show as black. Each kernel entry becomes an ``upscale`` x
    ``upscale`` block (NEAREST). Output size (K * upscale, K * upscale).
    """
    k = kernel.detach().cpu().double()
    while k.ndim > 2 and k.shape[0] == 1:
        k = k[0]
    if k.ndim != 2:
        raise ValueError(f"expected a kernel of shape (K, K), got {tuple(kernel.shape)}")
    k = k.clamp(min=0)
    if scale_to_max and k.max() > 0:
        k = k / k.max()
    img = tensor_to_pil(k[None])
    return img.resize((img.width * upscale, img.height * upscale), Image.Resampling.NEAREST)


def _to_rgb(item: Image.Image | torch.Tensor) -> Image.Image:
    """PIL image, kernel tensor (K, K) or image tensor (C, H, W) / (1, C, H, W) in [0, 1] -> RGB."""
    if isinstance(item, Image.Image):
        return item.convert("RGB")
    if item.ndim == 2:
        return kernel_to_image(item, upscale=1).convert("RGB")
    return tensor_to_pil(item).convert("RGB")


def _resize_to_height(img: Image.Image, height: int) -> Image.Image:
    if img.height == height:
        return img
    width = max(1, round(img.width * height / img.height))
    method = Image.Resampling.NEAREST if height > img.height else Image.Resampling.LANCZOS
    return img.resize((width, height), method)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled font, needs FreeType
    except (ImportError, OSError):
        return ImageFont.load_default()  # the old bitmap font


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """Shorten ``text`` with '...' until it fits in ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def tile_figure(panels: Sequence[Panel], *, height: int | None = None, gap: int = 4,
                font_size: int = 12, background: int = 255) -> Image.Image:
    """Side-by-side RGB figure of ``(caption, image)`` panels with the caption under each.

    Images: PIL images, image tensors (C, H, W) / (1, C, H, W) in [0, 1], or 2-D kernel
    tensors (K, K) shown max-normalised (pass (1, 1, K, K) kernels as ``k[0, 0]``). Panels are
    resized to a common ``height`` (default: the tallest panel), keeping aspect ratio.
    Width = sum of panel widths + gap * (len(panels) + 1).
    """
    if not panels:
        raise ValueError("tile_figure needs at least one panel")
    images = [_to_rgb(img) for _, img in panels]
    height = height or max(img.height for img in images)
    images = [_resize_to_height(img, height) for img in images]
    font = _font(font_size)
    caption_h = font.getbbox("Ag")[3] + 2 * gap
    width = sum(img.width for img in images) + gap * (len(images) + 1)
    canvas = Image.new("RGB", (width, gap + height + caption_h), (background,) * 3)
    draw = ImageDraw.Draw(canvas)
    x = gap
    for (caption, _), img in zip(panels, images):
        canvas.paste(img, (x, gap))
        text = _fit_text(draw, str(caption), font, img.width)
        tx = x + (img.width - draw.textlength(text, font=font)) / 2
        draw.text((tx, gap + height + gap), text, fill=(0, 0, 0) if background > 127 else (255, 255, 255), font=font)
        x += img.width + gap
    return canvas


def image_grid(images: torch.Tensor, nrow: int = 8, *, padding: int = 2, pad_value: float = 1.0) -> Image.Image:
    """Grid of N images (N, C, H, W) in [0, 1], C = 1 or 3, ``nrow`` per row -> 'L' / 'RGB' image.

    Size: (nrow' * (W + padding) + padding) x (rows * (H + padding) + padding) with
    nrow' = min(nrow, N); padding filled with ``pad_value``.
    """
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"expected images of shape (N, C, H, W) with N >= 1, got {tuple(images.shape)}")
    n, c, h, w = images.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = np.full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), pad_value, np.float64)
    data = images.detach().cpu().double().numpy()
    for i in range(n):
        y, x = padding + (i // cols) * (h + padding), padding + (i % cols) * (w + padding)
        grid[:, y:y + h, x:x + w] = data[i]
    return tensor_to_pil(grid)


def save_figure(img: Image.Image, path: PathLike) -> Path:
    """Save a Pillow figure atomically; format from the suffix (.png, .jpg, .pdf, ...)."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot tell an image format from the suffix {path.suffix!r}: {path}")
    if fmt == "JPEG" and img.mode not in ("L", "RGB"):
        img = img.convert("RGB")
    return atomic_write(path, lambda tmp: img.save(tmp, format=fmt))
