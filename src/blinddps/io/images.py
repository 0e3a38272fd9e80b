"""Reading and writing image files as float tensors in [0, 1].

``read_image`` returns a (1, C, H, W) float32 tensor with C = 1 (grey) or 3 (RGB), keeps
16-bit precision, applies the EXIF orientation and turns every failure into a one-line
``ImageReadError``. ``write_image`` writes PNG / JPEG / TIFF / BMP atomically at 8 or 16 bits.

Pillow has no 16-bit multi-channel mode: it reads 16-bit RGB files at 8 bits and cannot
write them. For those we carry two tiny codecs of our own: 16-bit PNG (colour types 2, 4,
6; non-interlaced; reading undoes all five PNG row filters) and uncompressed 16-bit RGB TIFF.
Files outside that (interlaced 16-bit PNG, compressed 16-bit RGB TIFF) are read by Pillow at
8 bits, and ``LoadedImage.notes`` says so. Colour profiles (ICC, gAMA) are not applied; alpha
is dropped, not composited.
"""
from __future__ import annotations

import os
import struct
import warnings
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .atomic import PathLike, atomic_path
from .codec16 import PNG_SIGNATURE, decode_png16, decode_tiff16, encode_png16, encode_tiff_rgb16, png16_header, tiff_rgb16_plain

READ_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".ppm", ".pgm", ".pnm")
WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}
# Leading bytes of formats Pillow reads: a file that starts like an image but does not open is corrupt.
_MAGIC = (PNG_SIGNATURE, b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"BM", b"GIF8", b"RIFF")
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


class ImageReadError(ValueError):
    """An image file could not be read; the message is one human-readable line naming the file."""


@dataclass(frozen=True)
class LoadedImage:
    """An image read from disk.

    tensor: (1, C, H, W) float32 in [0, 1], C = 1 (grey) or 3 (RGB), after EXIF orientation.
    mode: 'L' or 'RGB' (matches C). bit_depth: 8 or 16, the precision the tensor carries
    (16 for 16-bit integer and float sources). format: Pillow's name ('PNG', 'JPEG', 'TIFF').
    source_mode: the file's pixel layout as Pillow names it ('P', 'RGBA', 'I;16', ...; 'RGB;16'
    style names for our own 16-bit codecs). original_hw: (height, width) as stored in the
    file, before EXIF orientation. notes: precision or content lost while reading.
    """

    tensor: torch.Tensor
    mode: str
    bit_depth: int
    format: str
    had_alpha: bool
    original_hw: tuple[int, int]
    exif_transposed: bool
    source_mode: str
    path: Path
    notes: tuple[str, ...] = ()

    @property
    def hw(self) -> tuple[int, int]:
        """(height, width) of ``tensor``."""
        return tuple(self.tensor.shape[-2:])


@dataclass(frozen=True)
class WriteInfo:
    """What ``write_image`` wrote: format, bits per sample, mode and any compromise made."""

    path: Path
    format: str
    bit_depth: int
    mode: str
    notes: tuple[str, ...] = ()


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


# --------------------------------------------------------------------------- reading: checks


def _check_path(path: Path) -> None:
    if not path.exists():
        raise ImageReadError(f"no such file: {path}")
    if path.is_dir():
        raise ImageReadError(f"is a directory, not an image file: {path}")
    if not os.access(path, os.R_OK):
        raise ImageReadError(f"permission denied: {path}")
    if path.stat().st_size == 0:
        raise ImageReadError(f"empty file (0 bytes): {path}")


def _looks_like_image(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(8)
    return any(head.startswith(m) for m in _MAGIC)


def _open(path: Path, max_pixels: int | None) -> Image.Image:
    """Open lazily (header only), mapping every failure to ImageReadError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(f"image too large ({_one_line(exc)}): {path}") from exc
    except PermissionError as exc:
        raise ImageReadError(f"permission denied: {path}") from exc
    except UnidentifiedImageError as exc:
        kind = "truncated or corrupt image" if _looks_like_image(path) else "not an image file"
        raise ImageReadError(f"{kind}: {path}") from exc
    except _DECODE_ERRORS as exc:
        raise ImageReadError(f"truncated or corrupt image ({_one_line(exc)}): {path}") from exc
    width, height = img.size
    if max_pixels is not None and width * height > max_pixels:
        img.close()
        raise ImageReadError(f"image too large ({width}x{height} = {width * height} pixels > {max_pixels}): {path}")
    return img


def _check_size(img: Image.Image, path: Path, min_size: int) -> None:
    width, height = img.size
    if min(width, height) < min_size:
        raise ImageReadError(f"image too small ({width}x{height}, minimum {min_size} px per side): {path}")


def _load(img: Image.Image, path: Path) -> None:
    """Force the full decode so that truncated data fails here, not later."""
    try:
        img.load()
    except _DECODE_ERRORS as exc:
        raise ImageReadError(f"truncated or corrupt image ({_one_line(exc)}): {path}") from exc


# --------------------------------------------------------------------------- reading: our 16-bit codecs


# --------------------------------------------------------------------------- reading: to array


@dataclass
class _Pixels:
    array: np.ndarray  # (H, W, C) float32 in [0, 1], C in {1, 3}
    bit_depth: int
    had_alpha: bool
    source_mode: str
    notes: tuple[str, ...] = ()


def _from_uint16(raw: np.ndarray, source_mode: str) -> _Pixels:
    """(H, W, S) uint16 with S in {1, 2, 3, 4} (grey, grey+alpha, RGB, RGBA) -> _Pixels."""
    colour = raw.shape[2] >= 3
    array = raw[..., :3] if colour else raw[..., :1]
    return _Pixels(array.astype(np.float32) / np.float32(65535), 16, raw.shape[2] in (2, 4), source_mode)


def _own_codec(img: Image.Image, path: Path) -> _Pixels | None:
    """Decode 16-bit multi-channel files Pillow would truncate; None when Pillow is exact."""
    if img.format == "PNG":
        header = png16_header(path)
        if header is None or header[0] != 16 or header[1] == 0:
            return None
        if header[2]:
            return None  # interlaced: Pillow at 8 bits, see _pillow_pixels notes
        return _from_uint16(decode_png16(path), f"{img.mode};16")
    if img.format == "TIFF" and tiff_rgb16_plain(img):
        return _from_uint16(decode_tiff16(img, path), f"{img.mode};16")
    return None


def _is_truncated16(img: Image.Image, path: Path) -> bool:
    """A 16-bit multi-channel file that Pillow decodes at only 8 bits per sample."""
    if img.format == "PNG":
        header = png16_header(path)
        return header is not None and header[0] == 16 and header[1] != 0
    if img.format == "TIFF":
        bits = img.tag_v2.get(258, ())
        return len(bits) >= 2 and max(bits) > 8
    return False


def _pillow_pixels(img: Image.Image, path: Path) -> _Pixels:
    """Convert a loaded Pillow image of any common mode to _Pixels."""
    mode = img.mode
    notes = ("16-bit colour file read at 8 bits per sample (Pillow limitation)",) if _is_truncated16(img, path) else ()
    if mode.startswith("I;16") or mode == "I":
        raw = np.asarray(img).astype(np.int64)
        return _Pixels((np.clip(raw, 0, 65535) / 65535).astype(np.float32)[..., None], 16, False, mode, notes)
    if mode == "F":
        raw = np.asarray(img, np.float32)
        if raw.min() < 0 or raw.max() > 1:
            notes += ("float image values outside [0, 1] were clipped",)
        return _Pixels(np.clip(raw, 0, 1)[..., None], 16, False, mode, notes)
    had_alpha = mode in ("LA", "La", "PA", "RGBA", "RGBa") or (mode == "P" and "transparency" in img.info)
    if mode in ("1", "L", "LA", "La"):
        array = np.asarray(img.convert("L"))[..., None]
    else:
        array = np.asarray(img.convert("RGBA" if had_alpha else "RGB"))[..., :3]
    return _Pixels(array.astype(np.float32) / np.float32(255), 8, had_alpha, mode, notes)


_ORIENT = {  # EXIF Orientation -> numpy op on (H, W, C), matching PIL.ImageOps.exif_transpose
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


def _orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(0x0112, 1)
    except _DECODE_ERRORS:  # a broken EXIF block must not make a good image unreadable
        return 1
    return value if value in _ORIENT else 1


def apply_exif_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF Orientation 1..8 to an (H, W, C) array (values 1 or unknown: unchanged)."""
    op = _ORIENT.get(orientation)
    return np.ascontiguousarray(op(array) if op else array)


def _stored_geometry(img: Image.Image) -> tuple[tuple[int, int], int | None]:
    """((height, width) as stored, TIFF orientation or None), read before ``load()``: Pillow's
    TIFF loader rotates the pixels itself and then deletes the orientation tag."""
    if img.format != "TIFF":
        return (img.height, img.width), None
    tags = img.tag_v2
    orientation = tags.get(0x0112, 1)
    return (tags.get(257, img.height), tags.get(256, img.width)), orientation if orientation in _ORIENT else 1


def _decode(img: Image.Image, path: Path, tiff_orientation: int | None) -> tuple[_Pixels, int]:
    """Loaded image -> (pixels oriented for display, EXIF orientation of the file)."""
    own = _own_codec(img, path)
    pixels = own or _pillow_pixels(img, path)
    if tiff_orientation is None:
        orientation = _orientation(img)
        done_by_pillow = False
    else:
        orientation = tiff_orientation
        done_by_pillow = own is None and 0x0112 not in img.tag_v2
    if not done_by_pillow:
        pixels.array = apply_exif_orientation(pixels.array, orientation)
    return pixels, orientation


def read_image(path: PathLike, *, min_size: int = 8, max_pixels: int | None = None) -> LoadedImage:
    """Read an image file as a (1, C, H, W) float32 tensor in [0, 1] (see LoadedImage).

    ``min_size``: smallest accepted height/width in pixels. ``max_pixels``: largest accepted
    width*height (None: only Pillow's decompression-bomb limit, ``Image.MAX_IMAGE_PIXELS``).
    Raises ImageReadError (one line naming the file) for anything that is not a usable image.
    """
    path = Path(path)
    _check_path(path)
    with _open(path, max_pixels) as img:
        _check_size(img, path, min_size)
        stored_hw, tiff_orientation = _stored_geometry(img)
        _load(img, path)
        try:
            pixels, orientation = _decode(img, path, tiff_orientation)
        except (KeyError, *_DECODE_ERRORS) as exc:
            raise ImageReadError(f"truncated or corrupt image ({_one_line(exc)}): {path}") from exc
        fmt = img.format or "unknown"
    array = pixels.array
    tensor = torch.from_numpy(array.transpose(2, 0, 1).copy()).unsqueeze(0)
    return LoadedImage(tensor, "L" if array.shape[2] == 1 else "RGB", pixels.bit_depth, fmt, pixels.had_alpha,
                       stored_hw, orientation != 1, pixels.source_mode, path, pixels.notes)


def list_images(paths: Iterable[PathLike], *, recursive: bool = False) -> list[Path]:
    """Expand directories to the image files in them (READ_SUFFIXES, sorted, hidden files
    skipped; sub-directories too when ``recursive``). Other paths are kept as given, in order,
    even when missing: ``read_image`` reports those."""
    out: list[Path] = []
    for item in map(Path, paths):
        if not item.is_dir():
            out.append(item)
            continue
        found = item.rglob("*") if recursive else item.iterdir()
        out.extend(sorted(p for p in found if p.is_file() and p.suffix.lower() in READ_SUFFIXES
                          and not p.name.startswith(".")))
    return out


# --------------------------------------------------------------------------- writing


def _as_hwc(image: torch.Tensor | np.ndarray, mode: str | None) -> tuple[np.ndarray, str]:
    """(1, C, H, W) or (C, H, W) in [0, 1] -> ((H, W, C') float64 clipped, mode), C' = 1 or 3."""
    arr = image.detach().cpu().double().numpy() if isinstance(image, torch.Tensor) else np.asarray(image, np.float64)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3 or arr.shape[0] not in (1, 3):
        raise ValueError(f"expected an image of shape (1, C, H, W) or (C, H, W) with C in (1, 3), got {tuple(arr.shape)}")
    if not np.isfinite(arr).all():
        raise ValueError("image contains NaN or infinite values")
    arr = np.clip(arr.transpose(1, 2, 0), 0.0, 1.0)
    mode = mode or ("L" if arr.shape[2] == 1 else "RGB")
    if mode == "L" and arr.shape[2] == 3:
        arr = arr @ np.array([[0.299], [0.587], [0.114]])  # ITU-R BT.601 luma, as Pillow's convert('L')
    elif mode == "RGB" and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif mode not in ("L", "RGB"):
        raise ValueError(f"mode must be 'L' or 'RGB', got {mode!r}")
    return arr, mode


def quantize(arr: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float array in [0, 1] -> uint8 / uint16, round to nearest (clipping first)."""
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    top = 255 if bit_depth == 8 else 65535
    return np.rint(np.clip(arr, 0.0, 1.0) * top).astype(np.uint8 if bit_depth == 8 else np.uint16)


def _encode(arr: np.ndarray, fmt: str, tmp: Path, quality: int) -> None:
    """Write (H, W, C) uint8/uint16 with C in {1, 3} to ``tmp`` in ``fmt``."""
    if arr.dtype == np.uint16 and arr.shape[2] == 3:
        tmp.write_bytes(encode_png16(arr) if fmt == "PNG" else encode_tiff_rgb16(arr))
        return
    img = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)  # uint16 grey -> mode 'I;16'
    options = {"quality": quality, "subsampling": 0} if fmt == "JPEG" else {}
    img.save(tmp, format=fmt, **options)


def write_image(path: PathLike, image: torch.Tensor | np.ndarray, *, bit_depth: int = 8,
                mode: str | None = None, quality: int = 95) -> WriteInfo:
    """Write a (1, C, H, W) or (C, H, W) image in [0, 1] (C = 1 or 3) atomically.

    Format from the suffix: .png, .tif/.tiff (8 or 16 bits), .jpg/.jpeg (8 bits, ``quality``,
    no chroma subsampling), .bmp (8 bits). Asking JPEG/BMP for 16 bits writes 8 and says so in
    ``WriteInfo.notes``. ``mode`` 'L' or 'RGB' converts (BT.601 luma / grey replicated);
    None keeps the channel count. Values are clipped to [0, 1] and rounded to nearest.
    """
    path = Path(path)
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"unsupported output format {path.suffix!r}: use one of {', '.join(WRITE_FORMATS)}")
    arr, mode = _as_hwc(image, mode)
    notes: tuple[str, ...] = ()
    if bit_depth == 16 and fmt in ("JPEG", "BMP"):
        notes, bit_depth = (f"{fmt} stores 8 bits per sample: wrote 8-bit instead of 16-bit",), 8
    pixels = quantize(arr, bit_depth)
    with atomic_path(path) as tmp:
        _encode(pixels, fmt, tmp, quality)
    return WriteInfo(path, fmt, bit_depth, mode, notes)


def tensor_to_pil(image: torch.Tensor | np.ndarray) -> Image.Image:
    """(1, C, H, W) or (C, H, W) in [0, 1], C = 1 or 3 -> 8-bit Pillow image ('L' or 'RGB')."""
    arr, _ = _as_hwc(image, None)
    pixels = quantize(arr, 8)
    return Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
