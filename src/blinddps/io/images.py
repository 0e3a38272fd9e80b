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

READ_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".ppm", ".pgm", ".pnm")
WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}
_PNG_SIG = b"\x89PNG\r\n\x1a\n"
# Leading bytes of formats Pillow reads: a file that starts like an image but does not open is corrupt.
_MAGIC = (_PNG_SIG, b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"BM", b"GIF8", b"RIFF")
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


def _png_chunks(data: bytes) -> tuple[bytes, bytes]:
    """Return (IHDR body, concatenated IDAT bodies), checking lengths and CRCs."""
    if not data.startswith(_PNG_SIG):
        raise ValueError("missing PNG signature")
    pos, ihdr, idat = 8, b"", []
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body, crc = data[pos + 8:pos + 8 + length], data[pos + 8 + length:pos + 12 + length]
        if len(crc) < 4 or struct.unpack(">I", crc)[0] != zlib.crc32(ctype + body):
            raise ValueError(f"bad or truncated {ctype!r} chunk")
        ihdr = body if ctype == b"IHDR" else ihdr
        if ctype == b"IDAT":
            idat.append(body)
        if ctype == b"IEND":
            break
        pos += 12 + length
    return ihdr, b"".join(idat)


def _unfilter_avg_paeth(line: bytes, prev: bytes, bpp: int, paeth: bool) -> bytes:
    # Each byte depends on the reconstructed byte to its left: inherently sequential.
    cur = bytearray(line)
    for i in range(len(cur)):
        a = cur[i - bpp] if i >= bpp else 0
        b = prev[i]
        if not paeth:
            cur[i] = (cur[i] + ((a + b) >> 1)) & 0xFF
            continue
        c = prev[i - bpp] if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        cur[i] = (cur[i] + pred) & 0xFF
    return bytes(cur)


def _png_unfilter(raw: bytes, height: int, row_bytes: int, bpp: int) -> np.ndarray:
    """Undo the PNG row filters (None, Sub, Up, Average, Paeth): (height, row_bytes) uint8."""
    buf = np.frombuffer(raw, np.uint8)
    if buf.size < height * (row_bytes + 1):
        raise ValueError("image data is truncated")
    rows = buf[: height * (row_bytes + 1)].reshape(height, row_bytes + 1)
    out = np.empty((height, row_bytes), np.uint8)
    prev = np.zeros(row_bytes, np.uint8)
    for y in range(height):
        ftype, line = rows[y, 0], rows[y, 1:]
        if ftype == 0:
            cur = line
        elif ftype == 1:
            cur = np.cumsum(line.reshape(-1, bpp), axis=0, dtype=np.uint8).reshape(-1)
        elif ftype == 2:
            cur = line + prev
        elif ftype in (3, 4):
            cur = np.frombuffer(_unfilter_avg_paeth(line.tobytes(), prev.tobytes(), bpp, ftype == 4), np.uint8)
        else:
            raise ValueError(f"bad PNG filter type {ftype}")
        out[y] = cur
        prev = out[y]
    return out


def _png16_header(path: Path) -> tuple[int, int, int] | None:
    """(bit depth, colour type, interlace) of a PNG file, or None when it is not a PNG."""
    with open(path, "rb") as fh:
        head = fh.read(33)
    if len(head) < 29 or not head.startswith(_PNG_SIG) or head[12:16] != b"IHDR":
        return None
    return head[24], head[25], head[28]


def _decode_png16(path: Path) -> np.ndarray:
    """Decode a non-interlaced 16-bit PNG: (H, W, S) uint16, S samples per pixel."""
    ihdr, idat = _png_chunks(path.read_bytes())
    width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    samples = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    if depth != 16 or interlace:
        raise ValueError("not a non-interlaced 16-bit PNG")
    rows = _png_unfilter(zlib.decompress(idat), height, width * samples * 2, samples * 2)
    return np.frombuffer(rows.tobytes(), ">u2").reshape(height, width, samples)


def _tiff_rgb16_plain(img: Image.Image) -> bool:
    """True for a 16-bit RGB(A) TIFF that is uncompressed, stripped and interleaved."""
    tags = img.tag_v2
    bits = tags.get(258, ())
    return (len(bits) >= 3 and all(b == 16 for b in bits) and tags.get(262) == 2
            and tags.get(259, 1) == 1 and tags.get(284, 1) == 1 and 273 in tags
            and tags.get(339, (1,))[0] == 1)


def _decode_tiff16(img: Image.Image, path: Path) -> np.ndarray:
    """Read the strips of an uncompressed 16-bit RGB(A) TIFF: (H, W, S) uint16."""
    tags = img.tag_v2
    width, height = tags[256], tags[257]  # as stored: img.size already has the orientation applied
    samples = len(tags[258])
    with open(path, "rb") as fh:
        order = "<" if fh.read(2) == b"II" else ">"
        chunks = []
        for offset, count in zip(tags[273], tags[279]):
            fh.seek(offset)
            chunks.append(fh.read(count))
    data, need = b"".join(chunks), height * width * samples * 2
    if len(data) < need:
        raise ValueError("image data is truncated")
    return np.frombuffer(data[:need], order + "u2").reshape(height, width, samples)


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
        header = _png16_header(path)
        if header is None or header[0] != 16 or header[1] == 0:
            return None
        if header[2]:
            return None  # interlaced: Pillow at 8 bits, see _pillow_pixels notes
        return _from_uint16(_decode_png16(path), f"{img.mode};16")
    if img.format == "TIFF" and _tiff_rgb16_plain(img):
        return _from_uint16(_decode_tiff16(img, path), f"{img.mode};16")
    return None


def _is_truncated16(img: Image.Image, path: Path) -> bool:
    """A 16-bit multi-channel file that Pillow decodes at only 8 bits per sample."""
    if img.format == "PNG":
        header = _png16_header(path)
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


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def encode_png16(arr: np.ndarray) -> bytes:
    """(H, W, C) uint16, C in {1, 3} -> bytes of a 16-bit grey / RGB PNG (rows use the Up filter)."""
    height, width, channels = arr.shape
    rows = np.ascontiguousarray(arr, ">u2").view(np.uint8).reshape(height, width * channels * 2)
    up = rows - np.vstack([np.zeros((1, rows.shape[1]), np.uint8), rows[:-1]])  # uint8 wraps mod 256
    raw = np.hstack([np.full((height, 1), 2, np.uint8), up]).tobytes()
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 0 if channels == 1 else 2, 0, 0, 0)
    return _PNG_SIG + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(raw, 6)) + _png_chunk(b"IEND", b"")


def encode_tiff_rgb16(arr: np.ndarray) -> bytes:
    """(H, W, 3) uint16 -> bytes of a little-endian, uncompressed, single-strip 16-bit RGB TIFF."""
    height, width, _ = arr.shape
    data = np.ascontiguousarray(arr, "<u2").tobytes()
    ifd_at = 8 + len(data) + len(data) % 2
    bits_at = ifd_at + 2 + 10 * 12 + 4
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 3, bits_at), (259, 3, 1, 1), (262, 3, 1, 2),
               (273, 4, 1, 8), (277, 3, 1, 3), (278, 4, 1, height), (279, 4, 1, len(data)), (284, 3, 1, 1)]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        # type 3 = SHORT (a single one sits left-justified in the 4-byte field), 4 = LONG / offset
        field = struct.pack("<HH", value, 0) if kind == 3 and count == 1 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + field
    ifd += struct.pack("<I", 0) + struct.pack("<HHH", 16, 16, 16)
    return b"II*\x00" + struct.pack("<I", ifd_at) + data + b"\x00" * (len(data) % 2) + ifd


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
