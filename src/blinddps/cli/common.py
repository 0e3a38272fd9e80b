"""Shared CLI plumbing: one-line errors, device choice, quiet mode."""
from __future__ import annotations

import functools
import sys
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
