"""Uploaded files in, one-line messages out: the web app's checks on photos and kernel files.

Gradio hands the app a file payload (a dict with "path", the copy in its cache, and
"orig_name", the name on the user's machine); the tests and the Python API pass plain paths.
Every failure is an UploadError whose message names the file as the user knows it and says
why, never the cache path and never a traceback.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from ..service import UserError, one_line
from ..service.kernels import read_kernel_file
from ..io import ImageReadError, LoadedImage, read_image

MAX_UPLOAD_MB = 50  # a 24-megapixel JPEG is about 10 MB; larger files are mostly mistakes
MAX_PIXELS = 100_000_000  # decoded at float32 RGB that is 1.2 GB: more belongs to the CLI


class JobError(ValueError):
    """A job that cannot run or failed; the message is one line meant for the page."""


class UploadError(JobError):
    """A bad upload (not an image, too large, a corrupt kernel file)."""


def upload_path(value) -> tuple[Path, str] | None:
    """Gradio's file payload (dict or object with .path / .orig_name), a path, or None ->
    (path on this machine, the name to show the user), or None when nothing was uploaded."""
    if value is None or value == "":
        return None
    if isinstance(value, (str, Path)):
        return Path(value), Path(value).name
    path = value.get("path") if isinstance(value, dict) else getattr(value, "path", None)
    name = value.get("orig_name") if isinstance(value, dict) else getattr(value, "orig_name", None)
    if not path:
        raise UploadError("the upload did not arrive: try again")
    return Path(path), Path(name or path).name


def safe_stem(name: str) -> str:
    """A file stem for the outputs from a user's file name (letters, digits, . _ - only)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._")
    return stem[:64] or "photo"


def _without_path(text: str, path: Path) -> str:
    """The reader's messages end with the file's path (the cache copy here): drop it."""
    for tail in (f": {path}", f" {path}"):
        if text.endswith(tail) and len(text) > len(tail):
            return text[: -len(tail)]
    return text


def check_file_size(path: Path, name: str, max_mb: float = MAX_UPLOAD_MB) -> None:
    """UploadError when the file is missing or larger than max_mb megabytes."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UploadError(f"{name}: the upload cannot be read ({one_line(exc.strerror or exc)})") from exc
    if size > max_mb * 1e6:
        raise UploadError(f"{name}: the file is {size / 1e6:.1f} MB; the app takes files up to {max_mb:g} MB")


def _checked_upload(value, missing: str, max_mb: float) -> tuple[Path, str]:
    """(path, name) of an upload within the size limit; UploadError(missing) when there is none."""
    found = upload_path(value)
    if found is None:
        raise UploadError(missing)
    path, name = found
    check_file_size(path, name, max_mb)
    return path, name


def read_photo(value, max_mb: float = MAX_UPLOAD_MB, max_pixels: int = MAX_PIXELS) -> tuple[LoadedImage, str]:
    """An uploaded photo -> (LoadedImage with tensor (1, C, H, W) in [0, 1], its name);
    UploadError saying what is wrong (no photo, too large, not an image, corrupt)."""
    path, name = _checked_upload(value, "no photo: upload or paste one, or pick an example", max_mb)
    try:
        return read_image(path, max_pixels=max_pixels), name
    except ImageReadError as exc:
        raise UploadError(f"{name}: {_without_path(one_line(exc), path)}") from exc


def read_kernel(value, max_mb: float = MAX_UPLOAD_MB) -> tuple[torch.Tensor, str]:
    """An uploaded kernel file (.npy array, or a grey image) -> ((K, K) float32 summing to 1,
    its name); UploadError with the reason for a missing, corrupt or invalid kernel."""
    path, name = _checked_upload(value, "non-blind deblurring needs the blur kernel: upload a .npy array or a grey "
                                        "image", max_mb)
    try:
        kernel = read_kernel_file(str(path))
    except UserError as exc:  # "--kernel PATH: reason", the CLI's wording: say it the page's way
        reason = exc.format_message().removeprefix(f"--kernel {path}: ")
        raise UploadError(f"kernel file {name}: {_without_path(reason, path)}") from exc
    except Exception as exc:  # numpy's readers raise more than OSError / ValueError (EOFError, ...)
        raise UploadError(f"kernel file {name}: cannot read it ({one_line(exc)})") from exc
    return kernel, name
