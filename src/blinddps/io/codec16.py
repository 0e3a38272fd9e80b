"""16-bit PNG and TIFF: the decoders and encoders Pillow lacks for 16-bit colour (it reads
and writes 16-bit grey only), so that 16-bit photos keep their depth through a restoration.

Arrays are (H, W) or (H, W, C) uint16; PNG per the PNG 1.2 specification (zlib stream,
per-row filters), TIFF as one uncompressed strip.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunks(data: bytes) -> tuple[bytes, bytes]:
    """Return (IHDR body, concatenated IDAT bodies), checking lengths and CRCs."""
    if not data.startswith(PNG_SIGNATURE):
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


def png_unfilter(raw: bytes, height: int, row_bytes: int, bpp: int) -> np.ndarray:
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


def png16_header(path: Path) -> tuple[int, int, int] | None:
    """(bit depth, colour type, interlace) of a PNG file, or None when it is not a PNG."""
    with open(path, "rb") as fh:
        head = fh.read(33)
    if len(head) < 29 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return head[24], head[25], head[28]


def decode_png16(path: Path) -> np.ndarray:
    """Decode a non-interlaced 16-bit PNG: (H, W, S) uint16, S samples per pixel."""
    ihdr, idat = png_chunks(path.read_bytes())
    width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    samples = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    if depth != 16 or interlace:
        raise ValueError("not a non-interlaced 16-bit PNG")
    rows = png_unfilter(zlib.decompress(idat), height, width * samples * 2, samples * 2)
    return np.frombuffer(rows.tobytes(), ">u2").reshape(height, width, samples)


def tiff_rgb16_plain(img: Image.Image) -> bool:
    """True for a 16-bit RGB(A) TIFF that is uncompressed, stripped and interleaved."""
    tags = img.tag_v2
    bits = tags.get(258, ())
    return (len(bits) >= 3 and all(b == 16 for b in bits) and tags.get(262) == 2
            and tags.get(259, 1) == 1 and tags.get(284, 1) == 1 and 273 in tags
            and tags.get(339, (1,))[0] == 1)


def decode_tiff16(img: Image.Image, path: Path) -> np.ndarray:
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


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def encode_png16(arr: np.ndarray) -> bytes:
    """(H, W, C) uint16, C in {1, 3} -> bytes of a 16-bit grey / RGB PNG (rows use the Up filter)."""
    height, width, channels = arr.shape
    rows = np.ascontiguousarray(arr, ">u2").view(np.uint8).reshape(height, width * channels * 2)
    up = rows - np.vstack([np.zeros((1, rows.shape[1]), np.uint8), rows[:-1]])  # uint8 wraps mod 256
    raw = np.hstack([np.full((height, 1), 2, np.uint8), up]).tobytes()
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 0 if channels == 1 else 2, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw, 6)) + png_chunk(b"IEND", b"")


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
