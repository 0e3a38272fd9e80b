"""A synthetic, natural-looking test photo for `blinddps demo`, drawn with Pillow and numpy.

The scene is SYNTHETIC (no photograph and no third-party image ships with the package):
a smooth sky gradient with a sun, two ranges of rolling hills with a little texture, a
house with a roof, a door and lit windows, a picket fence, and a line of text.  It has the
things a deblurring demo needs to show: smooth regions, sharp straight edges in several
orientations, fine periodic detail (the fence) and text.  It is fully deterministic (fixed
noise seed, no randomness elsewhere); only the glyphs depend on Pillow's bundled font.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFilter, ImageFont

_BASE = 256  # the scene is drawn on this grid, then resized


def _sky(size: int) -> np.ndarray:
    """(S, S, 3) float: deep blue at the top fading to a warm haze at the horizon."""
    t = np.linspace(0.0, 1.0, size)[:, None, None]
    top, horizon = np.array([70, 120, 200.0]), np.array([235, 205, 170.0])
    return np.broadcast_to(top * (1 - t) + horizon * t, (size, size, 3)).copy()


def _hill(size: int, base: float, amplitude: float, periods: tuple[float, ...], phase: float) -> np.ndarray:
    """Ridge height (in rows) for every column: a sum of slow sines."""
    x = np.linspace(0.0, 2 * np.pi, size)
    ridge = sum(np.sin(p * x + phase * (i + 1)) / (i + 1) for i, p in enumerate(periods))
    return base - amplitude * ridge


def _landscape(size: int) -> np.ndarray:
    """Sky, sun and two hill ranges with a mild texture, as (S, S, 3) float in [0, 255]."""
    img = _sky(size)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    sun = np.exp(-(((xx - 0.78 * size) ** 2 + (yy - 0.2 * size) ** 2) / (2 * (0.06 * size) ** 2)))
    img = img * (1 - sun[..., None]) + np.array([255, 240, 190.0]) * sun[..., None]
    rng = np.random.default_rng(2023)  # fixed: the scene is deterministic
    texture = rng.normal(0.0, 1.0, (size, size))
    texture = (texture + np.roll(texture, 1, 0) + np.roll(texture, 1, 1)) / 3
    for base, amp, periods, phase, colour in ((0.55, 0.06, (1.0, 2.3), 0.4, (95, 135, 110)),
                                              (0.70, 0.05, (1.6, 3.1), 1.3, (70, 130, 60))):
        ridge = _hill(size, base * size, amp * size, periods, phase)
        land = yy >= ridge[None, :]
        shade = 1.0 - 0.25 * (yy - ridge[None, :]).clip(0) / size + 0.04 * texture
        img[land] = (np.array(colour, np.float64)[None, :] * shade[land][:, None])
    return img.clip(0, 255)


def _house(draw: ImageDraw.ImageDraw, s: float) -> None:
    """A house on the near hill: wall, roof, door, four lit windows with crossbars."""
    def box(x0, y0, x1, y1):
        return [round(x0 * s), round(y0 * s), round(x1 * s), round(y1 * s)]

    draw.rectangle(box(40, 150, 120, 210), fill=(225, 215, 190), outline=(60, 50, 40), width=max(1, round(s)))
    draw.polygon([(round(32 * s), round(152 * s)), (round(80 * s), round(112 * s)), (round(128 * s), round(152 * s))],
                 fill=(150, 55, 45), outline=(70, 30, 25))
    draw.rectangle(box(72, 176, 88, 210), fill=(100, 65, 40))
    for x0, y0 in ((48, 160), (98, 160), (48, 184), (98, 184)):
        draw.rectangle(box(x0, y0, x0 + 14, y0 + 14), fill=(250, 225, 120), outline=(60, 50, 40))
        draw.line(box(x0 + 7, y0, x0 + 7, y0 + 14), fill=(60, 50, 40))
        draw.line(box(x0, y0 + 7, x0 + 14, y0 + 7), fill=(60, 50, 40))
    draw.rectangle(box(100, 118, 110, 140), fill=(120, 60, 50))  # chimney


def _fence(draw: ImageDraw.ImageDraw, s: float) -> None:
    """A white picket fence across the foreground: fine, periodic vertical detail."""
    top, bottom = 214, 240
    draw.rectangle([0, round(220 * s), round(_BASE * s), round(223 * s)], fill=(245, 245, 240))
    draw.rectangle([0, round(232 * s), round(_BASE * s), round(235 * s)], fill=(245, 245, 240))
    for x in range(4, _BASE, 9):
        draw.polygon([(round(x * s), round((top + 3) * s)), (round((x + 2.5) * s), round(top * s)),
                      (round((x + 5) * s), round((top + 3) * s)), (round((x + 5) * s), round(bottom * s)),
                      (round(x * s), round(bottom * s))], fill=(250, 250, 245), outline=(120, 120, 115))


def _text(draw: ImageDraw.ImageDraw, s: float) -> None:
    try:
        font = ImageFont.load_default(size=max(8, round(14 * s)))
    except (ImportError, OSError, TypeError):  # Pillow without FreeType: the bitmap font
        font = ImageFont.load_default()
    draw.text((round(140 * s), round(40 * s)), "BlindDPS", fill=(255, 255, 255), font=font)
    draw.text((round(140 * s), round(58 * s)), "deblur me!", fill=(30, 40, 70), font=font)


def demo_scene_pil(size: int = 256) -> Image.Image:
    """The synthetic scene as a size x size RGB Pillow image (drawn at 2x, then downsampled)."""
    if size < 16:
        raise ValueError(f"the demo scene needs at least 16 px, got {size}")
    hi = 2 * _BASE  # supersampled: antialiased edges, as a camera would record them
    img = Image.fromarray(np.rint(_landscape(hi)).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    s = hi / _BASE
    _house(draw, s)
    _fence(draw, s)
    _text(draw, s)
    img = img.filter(ImageFilter.GaussianBlur(0.5))  # a slight optical softness, like a real lens
    return img.resize((size, size), Image.Resampling.LANCZOS)


def demo_scene(size: int = 256) -> torch.Tensor:
    """The synthetic scene as a (1, 3, size, size) float32 tensor in [0, 1]."""
    arr = np.asarray(demo_scene_pil(size), np.float32) / 255
    return torch.from_numpy(arr.transpose(2, 0, 1).copy()).unsqueeze(0)


def sample_photo(size: int) -> tuple[torch.Tensor, str]:
    """(1, 3, size, size) in [0, 1]: scikit-image's astronaut (public domain) when installed,
    else the synthetic scene of blinddps.demo_scene."""
    try:
        from skimage import data  # optional: not a dependency
    except ImportError:
        return demo_scene(size), "synthetic scene (blinddps.demo_scene)"
    photo = torch.from_numpy(np.ascontiguousarray(data.astronaut())).permute(2, 0, 1)[None].float() / 255
    return square(photo, size), "skimage.data.astronaut() (public domain, NASA)"


def square(image: torch.Tensor, size: int) -> torch.Tensor:
    """Centre crop to a square, resize (antialiased bicubic) to size x size, RGB."""
    h, w = image.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    image = image[..., top:top + side, left:left + side].expand(1, 3, side, side)
    if side != size:
        image = F.interpolate(image, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return image.clamp(0, 1).contiguous()
