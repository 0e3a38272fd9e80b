"""Atomic file writes: write to a temporary file beside the target, then rename it into place.

A reader never sees a half-written output, and a failed write leaves an existing target
untouched. The temporary file lives in the target's directory so that ``os.replace`` is a
same-filesystem rename (atomic on POSIX and Windows).
"""
from __future__ import annotations

import dataclasses
import json
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

PathLike = str | os.PathLike


class InputOverwriteError(ValueError):
    """Raised when an output path would overwrite one of the input files."""


def ensure_not_input(out_path: PathLike, inputs: Iterable[PathLike]) -> None:
    """Raise InputOverwriteError when ``out_path`` names the same file as one of ``inputs``.

    Paths are compared after resolving symlinks and ``..``; when both files exist they are
    also compared with ``os.path.samefile`` (catches hard links and case-insensitive
    filesystems).
    """
    out = Path(out_path)
    for item in inputs:
        if _same_file(out, Path(item)):
            raise InputOverwriteError(f"refusing to overwrite input file: {out} (input {item})")


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist: they cannot be the same file
        return False


def _temp_name(path: Path) -> Path:
    # Keep the real suffix last so writers that infer a format from the name still work.
    return path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")


def _create_exclusive(tmp: Path) -> None:
    # 0o666 filtered by the umask, like an ordinary open(); O_EXCL avoids clobbering a stranger.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    os.close(fd)


def _ordinary_mode(path: Path) -> None:
    # Some writers (safetensors) recreate the file as 0o600; give it the mode open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


@contextmanager
def atomic_path(path: PathLike, *, make_parents: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    The temporary file exists (empty) when the block starts and keeps ``path``'s suffix. If
    the block raises, the temporary file is removed, ``path`` is left as it was and the
    exception propagates. ``make_parents`` creates missing parent directories first.
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"output path is a directory: {target}")
    if make_parents:
        target.parent.mkdir(parents=True, exist_ok=True)
    elif not target.parent.is_dir():
        raise FileNotFoundError(f"output directory does not exist: {target.parent}")
    tmp = _temp_name(target)
    _create_exclusive(tmp)
    try:
        yield tmp
        _fsync(tmp)
        _ordinary_mode(tmp)
        os.replace(tmp, target)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def atomic_write(path: PathLike, writer: Callable[[Path], None], *, make_parents: bool = True) -> Path:
    """Call ``writer(tmp_path)`` and move the result onto ``path`` only if it returns normally.

    Returns ``path`` as a Path.
    """
    with atomic_path(path, make_parents=make_parents) as tmp:
        writer(tmp)
    return Path(path)


def _json_default(obj: Any) -> Any:
    """Serialise the values our configs and reports hold: dataclasses, paths, arrays, tensors."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (np.ndarray, np.generic)):
        return obj.tolist()
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().tolist()
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def write_json_atomic(path: PathLike, obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` as UTF-8 JSON (trailing newline) atomically; returns the path.

    Dataclasses, paths, numpy arrays/scalars and tensors are converted; anything else that
    ``json`` cannot encode raises TypeError before the target is touched.
    """
    text = json.dumps(obj, indent=indent, default=_json_default, ensure_ascii=False) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def save_npy_atomic(path: PathLike, array: np.ndarray | torch.Tensor) -> Path:
    """Save ``array`` (numpy or tensor, any shape/dtype) as ``.npy`` atomically; returns the path.

    The file is written exactly at ``path`` (no ``.npy`` is appended); pickling is refused.
    """
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    array = np.asarray(array)

    def _write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)

    return atomic_write(path, _write)
