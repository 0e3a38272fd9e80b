"""How the front ends word failures: one line per failure, exit code 2 for the user's errors."""
from __future__ import annotations

from pathlib import Path

import click

from ..io import ImageReadError
from ..solvers import SamplingDivergedError

OUT_OF_MEMORY_HINT = "out of memory: try a smaller --max-size (e.g. 256) or --device cpu"


class UserError(click.ClickException):
    """An error caused by the input: printed as one line, exit code 2."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def one_line(exc: BaseException | str, limit: int = 300) -> str:
    """An exception (or text) as one line of at most ``limit`` characters."""
    text = " ".join(str(exc).split()) or (type(exc).__name__ if isinstance(exc, BaseException) else "")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA / MPS / CPU allocation failures all say 'out of memory' in a RuntimeError."""
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        isinstance(exc, MemoryError) or "out of memory" in str(exc).lower())


def failure_reason(exc: BaseException, path: Path) -> str:
    """One line saying why a photo failed, without repeating its path."""
    if is_out_of_memory(exc):
        return OUT_OF_MEMORY_HINT
    if isinstance(exc, SamplingDivergedError):
        return f"sampling diverged ({one_line(exc)}): try a smaller --zeta or another --seed"
    text = one_line(exc)
    for tail in (f": {path}", f" {path}"):
        if text.endswith(tail) and len(text) > len(tail):
            text = text[: -len(tail)]
    if not isinstance(exc, (ImageReadError, ValueError, OSError)):
        text = f"{type(exc).__name__}: {text} (set BLINDDPS_DEBUG=1 for the traceback)"
    return text
