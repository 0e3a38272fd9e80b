"""Shared CLI plumbing: one-line errors, device choice, quiet mode, output folders."""
from __future__ import annotations

import functools
import sys
import tempfile
from pathlib import Path
from typing import Callable

import click
import torch


class UserError(click.ClickException):
    """An error caused by the input: printed as one line, exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def friendly_errors(func: Callable) -> Callable:
    """Turn expected exceptions (bad files, bad values) into one-line messages, no traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except (ValueError, FileNotFoundError, PermissionError, OSError) as exc:
            raise UserError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when present, else CPU; otherwise the named device, checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but CUDA is not available")
    return device


device_option = click.option("--device", default="auto", show_default=True,
                             help="cpu, cuda, cuda:N, or auto (CUDA when available).")
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")


def one_line(exc: BaseException | str, limit: int = 300) -> str:
    """An exception (or text) as one line of at most ``limit`` characters."""
    text = " ".join(str(exc).split()) or (type(exc).__name__ if isinstance(exc, BaseException) else "")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA / MPS / CPU allocation failures all say 'out of memory' in a RuntimeError."""
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        isinstance(exc, MemoryError) or "out of memory" in str(exc).lower())


OUT_OF_MEMORY_HINT = "out of memory: try a smaller --max-size (e.g. 256) or --device cpu"


def ensure_writable_dir(path: str | Path) -> Path:
    """Create the output folder if needed and prove it is writable (a test file); else UserError."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"output folder {folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        reason = exc.strerror or one_line(exc)
        raise UserError(f"output folder {folder} is not writable: {reason}") from exc
    return folder


threads_option = click.option("--threads", type=click.IntRange(0), default=0, show_default=True,
                              help="CPU threads (0: torch's default; 1 is often fastest on a busy machine).")


def apply_threads(threads: int) -> None:
    if threads:
        torch.set_num_threads(threads)
