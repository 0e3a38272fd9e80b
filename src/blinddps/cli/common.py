"""Shared CLI plumbing: one-line errors, device choice, quiet mode, output folders."""
from __future__ import annotations

import functools
import sys
import tempfile
from pathlib import Path
from typing import Callable

import click
import torch

from ..service.failures import UserError, is_out_of_memory, one_line  # noqa: F401 (the CLI's modules import them from here)


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
