"""The page's example photos, made on the first start (nothing ships or downloads): the demo's
sample photo blurred by a camera-shake kernel (also offered with that kernel, for non-blind
deblurring) and by simulated turbulence.  Deterministic: the same files every time.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..demo_scene import sample_photo
from ..io import save_npy_atomic, write_image
from ..tasks import simulate

SIZE = 256  # restored at full size within the default --max-size; a few minutes on 2 CPU cores
SHAKE = {"blur": "motion", "kernel_size": 25, "intensity": 0.5, "noise": 0.01, "seed": 2}  # a 23x12 px streak
TURBULENCE = {"blur": "turbulence", "kernel_size": 15, "std": 1.5, "noise": 0.01, "seed": 1}


@dataclass(frozen=True)
class Example:
    """One example row: the photo, the task (a key of jobs.TASKS), the kernel file or None."""

    label: str
    photo: Path
    task: str
    kernel: Path | None = None


def make_examples(folder: Path) -> list[Example]:
    """Write the example files into folder (kept when already there) and list the rows."""
    folder = Path(folder)
    shake, kernel, turbulent = folder / "camera-shake.png", folder / "camera-shake-kernel.npy", folder / "turbulence.png"
    if not (shake.is_file() and kernel.is_file() and turbulent.is_file()):
        folder.mkdir(parents=True, exist_ok=True)
        sharp, _ = sample_photo(SIZE)
        blurry, params = simulate(sharp, **SHAKE)
        write_image(shake, blurry)
        save_npy_atomic(kernel, params["kernel"].float().numpy())
        write_image(turbulent, simulate(sharp, **TURBULENCE)[0])
    return [Example("camera shake", shake, "blind"), Example("turbulence", turbulent, "turbulence"),
            Example("camera shake, kernel known", shake, "known", kernel)]
