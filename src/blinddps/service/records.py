"""The JSON record written beside every output (<stem>_config.json): what ran, on what, with
which settings (the "config" loads back with `RestoreConfig.from_dict`, so a run can be
repeated from its record), and what it measured."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import torch

from ..io import LoadedImage
from ..tasks import RestoreConfig, RestoreResult


def package_version() -> str:
    """The installed blinddps version ("unknown" when run from a source tree)."""
    try:
        return version("blinddps")
    except PackageNotFoundError:
        return "unknown"


def output_record(*, turbulence: bool, input_name: str, config: RestoreConfig, loaded: LoadedImage,
                  result: RestoreResult, notes: list[str], known_kernel: bool, **extra) -> dict:
    """The record of one restored photo: the command, its input's name, the settings as they
    ran (the kernel size and the sampler the run resolved), the input's format, the run's info
    (with the package and torch versions and threads) and the notes; `extra` fields are added
    as they are (e.g. the app's name for the kernel file)."""
    resolved = {**config.to_dict(), "kernel_size": result.info["kernel_size"], "method": result.info["method"]}
    return {"command": "turbulence" if turbulence else "deblur", "input": input_name, **extra,
            "known_kernel": known_kernel, "config": resolved,
            "input_image": {"width": loaded.hw[1], "height": loaded.hw[0], "mode": loaded.mode,
                            "bit_depth": loaded.bit_depth, "format": loaded.format},
            "info": {**result.info, "version": package_version(), "torch": torch.__version__,
                     "threads": torch.get_num_threads()},
            "notes": notes}
