"""File-format layer: image round trips, bad inputs, atomic writes, figures."""
from __future__ import annotations

import dataclasses
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from blinddps.io import (
    ImageReadError,
    InputOverwriteError,
    apply_exif_orientation,
    atomic_path,
    atomic_write,
    ensure_not_input,
    image_grid,
    kernel_to_image,
    list_images,
    read_image,
    save_figure,
    save_npy_atomic,
    tile_figure,
    write_image,
    write_json_atomic,
)
from blinddps.io.images import encode_png16, encode_tiff_rgb16

RNG = np.random.default_rng(0)


def _u8(h: int, w: int, c: int) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, c), dtype=np.uint8)


def _u16(h: int, w: int, c: int) -> np.ndarray:
    return RNG.integers(0, 65536, (h, w, c), dtype=np.uint16)


def _tensor(arr: np.ndarray, top: int) -> torch.Tensor:
    """(H, W, C) integer array -> (1, C, H, W) float32 in [0, 1]."""
    return torch.from_numpy(arr.transpose(2, 0, 1).astype(np.float32) / top)[None]


def _ints(tensor: torch.Tensor, top: int) -> np.ndarray:
    """(1, C, H, W) in [0, 1] -> (H, W, C) integers."""
    return np.rint(tensor[0].numpy().transpose(1, 2, 0).astype(np.float64) * top).astype(np.int64)


def _only_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
@pytest.mark.parametrize("channels", [1, 3])
def test_8bit_round_trip_is_exact(tmp_path, suffix, channels):
    arr = _u8(9, 13, channels)
    path = tmp_path / f"x{suffix}"
    info = write_image(path, _tensor(arr, 255))
    loaded = read_image(path)
    assert info.bit_depth == 8 and loaded.bit_depth == 8 and info.notes == ()
    assert loaded.tensor.shape == (1, channels, 9, 13) and loaded.tensor.dtype == torch.float32
    assert loaded.mode == ("L" if channels == 1 else "RGB")
    assert np.array_equal(_ints(loaded.tensor, 255), arr)
    pillow = np.asarray(Image.open(path)).reshape(9, 13, channels)  # independent reader agrees
    assert np.array_equal(pillow, arr)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_gray_round_trip_is_exact(tmp_path, suffix):
    arr = _u16(10, 12, 1)
    path = tmp_path / f"g16{suffix}"
    write_image(path, _tensor(arr, 65535), bit_depth=16)
    loaded = read_image(path)
    assert loaded.bit_depth == 16 and loaded.mode == "L" and loaded.source_mode.startswith("I;16")
    assert np.array_equal(_ints(loaded.tensor, 65535), arr)
    assert np.array_equal(np.asarray(Image.open(path)), arr[..., 0])


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_rgb_round_trip_is_exact_and_standard(tmp_path, suffix):
    arr = _u16(11, 9, 3)
    path = tmp_path / f"c16{suffix}"
    write_image(path, _tensor(arr, 65535), bit_depth=16)
    loaded = read_image(path)
    assert loaded.bit_depth == 16 and loaded.mode == "RGB" and loaded.notes == ()
    assert np.array_equal(_ints(loaded.tensor, 65535), arr)
    # Pillow reads our file as a valid 16-bit RGB image, keeping the high byte of each sample.
    with Image.open(path) as img:
        assert img.size == (9, 11)
        assert np.array_equal(np.asarray(img.convert("RGB")), (arr >> 8).astype(np.uint8))


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _filter_row(ftype: int, line: bytes, prev: bytes, bpp: int) -> bytes:
    """Reference PNG forward filter of one row (spec section 9), per byte."""
    out = bytearray()
    for i, x in enumerate(line):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
        pred = [0, a, b, (a + b) // 2, _paeth(a, b, c)][ftype]
        out.append((x - pred) & 0xFF)
    return bytes(out)


def _png16_all_filters(arr: np.ndarray, ctype: int) -> bytes:
    h, w, s = arr.shape
    rows = arr.astype(">u2").tobytes()
    stride = w * s * 2
    raw, prev = b"", bytes(stride)
    for y in range(h):
        line = rows[y * stride:(y + 1) * stride]
        raw += bytes([y % 5]) + _filter_row(y % 5, line, prev, s * 2)
        prev = line

    def chunk(t: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, ctype, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("ctype, samples, channels", [(6, 4, 3), (2, 3, 3), (4, 2, 1)])
def test_16bit_png_decoder_undoes_all_five_filters(tmp_path, ctype, samples, channels):
    arr = _u16(10, 8, samples)
    path = tmp_path / "filters.png"
    path.write_bytes(_png16_all_filters(arr, ctype))
    if ctype != 4:  # the reference filter is right: Pillow decodes the file to the high bytes
        assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), (arr[..., :3] >> 8).astype(np.uint8))
    loaded = read_image(path)
    assert loaded.bit_depth == 16 and loaded.had_alpha == (samples in (2, 4))
    assert np.array_equal(_ints(loaded.tensor, 65535), arr[..., :channels].astype(np.int64))


def test_jpeg_is_approximate_and_16bit_falls_back_with_a_note(tmp_path):
    yy, xx = np.mgrid[0:32, 0:40] / 40.0
    smooth = torch.from_numpy(np.stack([yy, xx, (yy + xx) / 2]).astype(np.float32))[None]
    info = write_image(tmp_path / "s.jpg", smooth, bit_depth=16)
    assert info.bit_depth == 8 and info.format == "JPEG" and "8-bit" in info.notes[0]
    loaded = read_image(tmp_path / "s.jpg")
    assert loaded.format == "JPEG" and loaded.tensor.shape == (1, 3, 32, 40)
    assert (loaded.tensor - smooth).abs().mean() < 0.01


def test_write_rounds_to_nearest_and_clips(tmp_path):
    k = np.arange(10, 20, dtype=np.float32)
    values = np.concatenate([(k + 0.4) / 255, (k + 0.6) / 255, [-0.5, 1.5]]).astype(np.float32)
    write_image(tmp_path / "r.png", torch.from_numpy(np.tile(values, (8, 1)))[None])
    row = np.asarray(Image.open(tmp_path / "r.png"))[0]
    assert row.tolist() == list(range(10, 20)) + list(range(11, 21)) + [0, 255]


def test_write_mode_conversion_and_bad_inputs(tmp_path):
    rgb = torch.rand(1, 3, 8, 8)
    assert write_image(tmp_path / "g.png", rgb, mode="L").mode == "L"
    gray_expected = (0.299 * rgb[0, 0] + 0.587 * rgb[0, 1] + 0.114 * rgb[0, 2]) * 255
    assert np.abs(np.asarray(Image.open(tmp_path / "g.png")) - gray_expected.numpy()).max() <= 0.5 + 1e-3
    write_image(tmp_path / "c.png", rgb[:, :1], mode="RGB")
    assert read_image(tmp_path / "c.png").mode == "RGB"
    with pytest.raises(ValueError, match="shape"):
        write_image(tmp_path / "b.png", torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "n.png", torch.full((1, 1, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="unsupported output format"):
        write_image(tmp_path / "x.gif", rgb)
    assert not (tmp_path / "b.png").exists() and not (tmp_path / "n.png").exists()


# --------------------------------------------------------------------------- modes and orientation


def test_exif_orientation_6_in_jpeg_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_u8(16, 32, 3)).save(tmp_path / "o.jpg", exif=exif, quality=95)
    loaded = read_image(tmp_path / "o.jpg")
    assert loaded.exif_transposed and loaded.original_hw == (16, 32)
    assert loaded.tensor.shape == (1, 3, 32, 16) and loaded.hw == (32, 16)
    with Image.open(tmp_path / "o.jpg") as img:
        expected = np.asarray(ImageOps.exif_transpose(img))
    assert np.array_equal(_ints(loaded.tensor, 255), expected)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow_exif_transpose(tmp_path, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(_u8(5, 7, 3)).save(tmp_path / "o.png", exif=exif)
    loaded = read_image(tmp_path / "o.png", min_size=1)
    with Image.open(tmp_path / "o.png") as img:
        expected = np.asarray(ImageOps.exif_transpose(img))
    assert loaded.exif_transposed == (orientation != 1)
    assert np.array_equal(_ints(loaded.tensor, 255), expected)
    assert np.array_equal(apply_exif_orientation(expected, 1), expected)


def _with_tiff_orientation(data: bytes, orientation: int) -> bytes:
    """Insert an Orientation tag into a single-IFD little-endian TIFF from ``encode_tiff_rgb16``."""
    ifd_at = struct.unpack("<I", data[4:8])[0]
    count = struct.unpack("<H", data[ifd_at:ifd_at + 2])[0]
    entries = [data[ifd_at + 2 + 12 * i: ifd_at + 14 + 12 * i] for i in range(count)]
    entries.append(struct.pack("<HHIHH", 274, 3, 1, orientation, 0))
    bits_at = ifd_at + 2 + 12 * len(entries) + 4
    entries = [struct.pack("<HHII", 258, 3, 3, bits_at) if e[:2] == struct.pack("<H", 258) else e for e in entries]
    entries.sort(key=lambda e: struct.unpack("<H", e[:2])[0])
    ifd = struct.pack("<H", len(entries)) + b"".join(entries) + struct.pack("<I", 0) + struct.pack("<HHH", 16, 16, 16)
    return data[:ifd_at] + ifd


def _png_with_exif(data: bytes, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    body = exif.tobytes()[6:]  # PNG's eXIf chunk holds the TIFF structure without "Exif\0\0"
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(">I", zlib.crc32(b"eXIf" + body))
    return data[:-12] + chunk + data[-12:]  # before IEND


@pytest.mark.parametrize("orientation", [1, 3, 6, 7])
@pytest.mark.parametrize("fmt", ["png", "tif"])
def test_orientation_in_own_16bit_codecs(tmp_path, fmt, orientation):
    arr = _u16(6, 9, 3)
    if fmt == "png":
        data = _png_with_exif(encode_png16(arr), orientation)
    else:
        data = _with_tiff_orientation(encode_tiff_rgb16(arr), orientation)
    (tmp_path / f"o.{fmt}").write_bytes(data)
    loaded = read_image(tmp_path / f"o.{fmt}", min_size=1)
    assert loaded.bit_depth == 16 and loaded.original_hw == (6, 9) and loaded.exif_transposed == (orientation != 1)
    assert np.array_equal(_ints(loaded.tensor, 65535), apply_exif_orientation(arr, orientation))
    with Image.open(tmp_path / f"o.{fmt}") as img:  # Pillow agrees on the 8-bit view
        expected8 = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    assert np.array_equal(expected8, apply_exif_orientation((arr >> 8).astype(np.uint8), orientation))


def test_rgba_drops_alpha(tmp_path):
    arr = _u8(8, 9, 4)
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    loaded = read_image(tmp_path / "a.png")
    assert loaded.had_alpha and loaded.mode == "RGB" and loaded.source_mode == "RGBA"
    assert np.array_equal(_ints(loaded.tensor, 255), arr[..., :3])


def test_palette_and_gray_alpha_and_bilevel(tmp_path):
    pal = Image.new("P", (8, 8))
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30])
    pal.putdata([i % 4 for i in range(64)])
    pal.save(tmp_path / "p.png")
    loaded = read_image(tmp_path / "p.png")
    assert loaded.mode == "RGB" and not loaded.had_alpha and loaded.source_mode == "P"
    assert _ints(loaded.tensor, 255)[0, :4].tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]
    pal.save(tmp_path / "pt.png", transparency=0)
    assert read_image(tmp_path / "pt.png").had_alpha
    Image.new("LA", (8, 8), (77, 3)).save(tmp_path / "la.png")
    la = read_image(tmp_path / "la.png")
    assert la.mode == "L" and la.had_alpha and _ints(la.tensor, 255).max() == 77
    Image.new("1", (8, 8), 1).save(tmp_path / "b.png")
    assert read_image(tmp_path / "b.png").tensor.min() == 1.0


def test_cmyk_and_float_tiff(tmp_path):
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.tif")
    cmyk = read_image(tmp_path / "c.tif")
    assert cmyk.mode == "RGB" and _ints(cmyk.tensor, 255)[0, 0].tolist() == [255, 0, 0]
    Image.fromarray(np.linspace(-0.5, 2.0, 64, dtype=np.float32).reshape(8, 8), "F").save(tmp_path / "f.tif")
    flt = read_image(tmp_path / "f.tif")
    assert flt.bit_depth == 16 and flt.tensor.min() == 0 and flt.tensor.max() == 1 and "clipped" in flt.notes[0]


# --------------------------------------------------------------------------- bad inputs


def _good_png(path: Path) -> Path:
    Image.fromarray(_u8(32, 32, 3)).save(path)
    return path


def _bad_inputs(tmp: Path) -> dict[str, tuple[Path, str]]:
    (tmp / "text.png").write_text("hello, not an image\n")
    (tmp / "dir.png").mkdir()
    data = _good_png(tmp / "good.png").read_bytes()
    (tmp / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp / "header.png").write_bytes(data[:20])
    (tmp / "empty.png").write_bytes(b"")
    Image.new("L", (1, 1)).save(tmp / "tiny.png")
    rgb16 = _u16(16, 16, 3)
    write_image(tmp / "rgb16.png", _tensor(rgb16, 65535), bit_depth=16)
    data16 = (tmp / "rgb16.png").read_bytes()
    (tmp / "cut16.png").write_bytes(data16[: len(data16) - 200])
    return {
        "missing": (tmp / "missing.png", "no such file"),
        "directory": (tmp / "dir.png", "is a directory"),
        "text": (tmp / "text.png", "not an image file"),
        "truncated": (tmp / "cut.png", "truncated or corrupt image"),
        "header only": (tmp / "header.png", "truncated or corrupt image"),
        "truncated 16-bit": (tmp / "cut16.png", "truncated or corrupt image"),
        "empty": (tmp / "empty.png", "empty file"),
        "1x1": (tmp / "tiny.png", "image too small (1x1"),
    }


def test_bad_inputs_raise_one_line_errors(tmp_path):
    for name, (path, fragment) in _bad_inputs(tmp_path).items():
        with pytest.raises(ImageReadError) as err:
            read_image(path)
        message = str(err.value)
        assert fragment in message, (name, message)
        assert str(path) in message and "\n" not in message, name


def test_too_large_by_limit_and_by_pillow_bomb_check(tmp_path, monkeypatch):
    path = _good_png(tmp_path / "big.png")
    with pytest.raises(ImageReadError, match="image too large"):
        read_image(path, max_pixels=1000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 600)  # 1024 px: warning level
    with pytest.raises(ImageReadError, match="image too large"):
        read_image(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # > 2x limit: Pillow's error
    with pytest.raises(ImageReadError, match="image too large"):
        read_image(path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read anything")
def test_unreadable_file(tmp_path):
    path = _good_png(tmp_path / "locked.png")
    path.chmod(0)
    try:
        with pytest.raises(ImageReadError, match="permission denied"):
            read_image(path)
    finally:
        path.chmod(0o644)


def test_list_images(tmp_path):
    for name in ["b.JPG", "a.png", "notes.txt", ".hidden.png"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.tif").write_bytes(b"x")
    explicit = tmp_path / "notes.txt"
    assert list_images([tmp_path]) == [tmp_path / "a.png", tmp_path / "b.JPG"]
    assert list_images([tmp_path], recursive=True)[-1] == tmp_path / "sub" / "c.tif"
    assert list_images([explicit, tmp_path / "gone.png", tmp_path / "sub"]) == [
        explicit, tmp_path / "gone.png", tmp_path / "sub" / "c.tif"]


# --------------------------------------------------------------------------- atomic writes


def test_atomic_write_success_leaves_no_temp(tmp_path):
    seen = []

    def writer(tmp: Path) -> None:
        seen.append(tmp)
        tmp.write_text("new")

    out = atomic_write(tmp_path / "out.txt", writer)
    assert out.read_text() == "new" and _only_files(tmp_path) == ["out.txt"]
    assert seen[0].parent == tmp_path and seen[0].suffix == ".txt" and seen[0] != out


def test_atomic_write_failure_keeps_target_and_cleans_up(tmp_path):
    target = tmp_path / "out.png"
    target.write_text("old")

    def writer(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, writer)
    assert target.read_text() == "old" and _only_files(tmp_path) == ["out.png"]
    with pytest.raises(KeyError):
        with atomic_path(tmp_path / "other.npy"):
            raise KeyError("boom")
    assert _only_files(tmp_path) == ["out.png"]


def test_json_and_npy_atomic(tmp_path):
    @dataclasses.dataclass
    class Cfg:
        steps: int = 3
        out: Path = Path("a/b.png")

    write_json_atomic(tmp_path / "sub" / "cfg.json", {"cfg": Cfg(), "k": torch.tensor([0.5]), "n": np.int64(2)})
    assert json.loads((tmp_path / "sub" / "cfg.json").read_text()) == {
        "cfg": {"steps": 3, "out": "a/b.png"}, "k": [0.5], "n": 2}
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "bad.json", {"x": object()})
    assert not (tmp_path / "bad.json").exists()
    kernel = torch.rand(2, 1, 5, 5)
    save_npy_atomic(tmp_path / "kernel.bin", kernel)
    assert _only_files(tmp_path) == ["kernel.bin", "sub"]
    assert np.array_equal(np.load(tmp_path / "kernel.bin"), kernel.numpy())


def test_ensure_not_input(tmp_path):
    src = _good_png(tmp_path / "in.png")
    (tmp_path / "d").mkdir()
    with pytest.raises(InputOverwriteError, match="refusing to overwrite input"):
        ensure_not_input(src, [tmp_path / "other.png", src])
    with pytest.raises(InputOverwriteError):
        ensure_not_input(tmp_path / "d" / ".." / "in.png", [str(src)])
    os.link(src, tmp_path / "hard.png")
    with pytest.raises(InputOverwriteError):
        ensure_not_input(tmp_path / "hard.png", [src])
    ensure_not_input(tmp_path / "out.png", [src])  # a new file is fine
    ensure_not_input(tmp_path / "in.png.out.png", [src])


# --------------------------------------------------------------------------- figures


def test_kernel_to_image_normalisation():
    k = torch.zeros(5, 5)
    k[2, 2], k[2, 3] = 0.02, 0.01
    img = kernel_to_image(k, upscale=3)
    arr = np.asarray(img)
    assert img.mode == "L" and img.size == (15, 15)
    assert arr.max() == 255 and arr[6:9, 9:12].tolist() == [[128] * 3] * 3 and arr[:6].max() == 0
    raw = np.asarray(kernel_to_image(k, scale_to_max=False, upscale=1))
    assert raw[2, 2] == 5 and raw.max() == 5  # 0.02 * 255, not stretched
    assert kernel_to_image(k[None, None]).size == (20, 20)


def test_tile_figure_sizes_and_nearest_upscale():
    panels = [("blurred", torch.rand(1, 3, 64, 64)), ("restored", torch.rand(3, 64, 64)),
              ("a caption much too long to fit under a small panel", Image.new("RGB", (64, 64), "red"))]
    fig = tile_figure(panels, gap=4)
    assert fig.mode == "RGB" and fig.width == 3 * 64 + 4 * 4 and fig.height > 64 + 8
    kernel = torch.zeros(4, 4)
    kernel[1, 2] = 1.0
    fig = tile_figure([("image", torch.rand(1, 64, 128)), ("kernel", kernel)], gap=0)
    assert fig.width == 128 + 64
    block = np.asarray(fig)[16:32, 128 + 32:128 + 48]  # the kernel's single white entry, 16x16 px
    assert block.min() == 255 and np.asarray(fig)[0:16, 128:].max() == 0


def test_image_grid_layout():
    images = torch.zeros(5, 3, 8, 10)
    images[4] = 1.0
    grid = image_grid(images, nrow=3, padding=2, pad_value=0.5)
    assert grid.size == (3 * 12 + 2, 2 * 10 + 2) and grid.mode == "RGB"
    arr = np.asarray(grid)
    assert arr[0, 0, 0] == 128 and arr[2, 2, 0] == 0
    assert arr[12:20, 14:24].min() == 255  # fifth image: second row, second column
    assert image_grid(torch.rand(2, 1, 8, 8)).mode == "L"


def test_save_figure_atomic(tmp_path):
    fig = tile_figure([("x", torch.rand(1, 3, 16, 16))])
    out = save_figure(fig, tmp_path / "fig.png")
    assert _only_files(tmp_path) == ["fig.png"] and Image.open(out).size == fig.size
    with pytest.raises(ValueError, match="suffix"):
        save_figure(fig, tmp_path / "fig.unknown")
