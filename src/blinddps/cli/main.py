"""The `blinddps` command: one group, subcommands imported explicitly (no registry)."""
from __future__ import annotations

import click

from .app import app_command
from .bench import bench_command
from .demo import demo_command
from ..devices import keep_freed_memory
from .restore import deblur_command, turbulence_command
from .simulate import simulate_command
from .train import sample_command, train_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="blinddps")
def cli() -> None:
    """Blind deblurring and imaging through turbulence with parallel diffusion priors (BlindDPS)."""


cli.add_command(deblur_command)
cli.add_command(turbulence_command)
cli.add_command(simulate_command)
cli.add_command(demo_command)
cli.add_command(train_command)
cli.add_command(sample_command)
cli.add_command(bench_command)
cli.add_command(app_command)  # the web app (issue 10); Gradio is imported when it starts


def main() -> None:
    keep_freed_memory()  # full-size photos reallocate large buffers at every step
    cli(prog_name="blinddps")
