"""Benchmark measurements: which cases a run has, and each case's (sharp, blurred, kernel).

Every measurement is rebuilt the same way on every run and every process: case i draws its
kernel and noise from `torch.Generator().manual_seed(case_seed(seed, i))`, so results can be
cached per case, resumed and sharded.

Photo tasks (motion, gaussian): the image is read as stored (grey stays grey, RGB stays
RGB), centre-cropped to `crop` x `crop` (each side limited to the image's), blurred with the
true kernel under `padding` ("reflect" by default) and given Gaussian noise of std `noise`,
then clipped to [0, 1] (no 8-bit rounding).

Turbulence (`task="turbulence"`): the centre-cropped photo through the project's own
simulation, `tasks.simulate(blur="turbulence", kernel_size, std=gaussian_std, noise,
padding, seed=case_seed(seed, i))`: a random tilt field (|tilt| <= 2.5 px), then the Gaussian
blur, then the noise, clipped to [0, 1]. The true tilt (2, H, W) in pixels is kept with the
measurement (for the oracle).

Levin et al. 2009 (`task="levin"`, folder with sharp/im_I.png, blurred/im_I_ker_J.png and
kernels.npz k1..k8): 4 grey 255x255 images x 8 kernels = 32 cases, ordered im_1_ker_1,
im_1_ker_2, ...; the measurement is the provided blurred file (a circular convolution:
`Blur("circular")` reproduces it), noise-free unless `noise` > 0. Kernel sizes given to the
blind methods: BlindDPS (with and without the kernel prior) estimates a kernel of
max(kernel_size, K_true) pixels (64 by default: the kernel prior's training size, which
holds every Levin kernel; 13..27 would run the 64x64 prior out of its training scale); Pan-L0
gets the true size K_true (odd). The true kernel is zero-padded to the BlindDPS size with
`pad_kernel_to` (same blur, same origin) for the oracle and the kernel metrics. PSNR/SSIM
ignore a border of K_true // 2 pixels (Levin's circular wrap-around zone); 0 elsewhere.
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..generators import MotionKernelGenerator, gaussian_kernel
from ..io import list_images, read_image
from ..physics import Blur, GaussianNoise
from ..tasks.simulate import simulate
from .config import BenchConfig

SHARED_ENV = "BLINDDPS_SHARED"


@dataclass(frozen=True)
class Case:
    """One measurement of a benchmark: index i (its seed), a name, and its files."""

    index: int
    name: str
    sharp: Path
    blurred: Path | None = None  # Levin: the provided measurement
    kernel_key: str | None = None  # Levin: key in kernels.npz

    @property
    def key(self) -> str:
        """File-name-safe, unique id: '0003_kodim04'."""
        return f"{self.index:04d}_{re.sub(r'[^A-Za-z0-9._-]', '_', self.name)}"


@dataclass
class Measurement:
    """sharp, y: (1, C, H, W) in [0, 1]; kernel: the true (K, K) kernel, float32, sum 1;
    blind_kernel_size: kernel size for the BlindDPS methods; border: pixels ignored by
    PSNR/SSIM at each side; tilt: the true tilt field (2, H, W) in pixels (turbulence task;
    None for the others)."""

    case: Case
    sharp: torch.Tensor
    y: torch.Tensor
    kernel: torch.Tensor
    blind_kernel_size: int
    border: int
    tilt: torch.Tensor | None = None


def case_seed(seed: int, index: int) -> int:
    """Seed of case `index` (measurement draw, and the samplers run on it)."""
    return int(seed) * 1_000_003 + int(index)


def shared_dir() -> Path | None:
    """../shared: $BLINDDPS_SHARED, else beside the working directory, else beside the checkout."""
    candidates = [os.environ.get(SHARED_ENV), Path.cwd().parent / "shared", Path(__file__).resolve().parents[4] / "shared"]
    for c in candidates:
        if c and (Path(c) / "data").is_dir():
            return Path(c).resolve()
    return None


def resolve_images(images: str) -> Path:
    """A folder, or the name of a benchmark folder in ../shared/data/bench ("levin09", "kodak24")."""
    path = Path(images).expanduser()
    if path.is_dir():
        return path.resolve()
    shared = shared_dir()
    if shared is not None and re.fullmatch(r"[A-Za-z0-9_-]+", images) and (shared / "data/bench" / images).is_dir():
        return shared / "data/bench" / images
    raise FileNotFoundError(f"no image folder {images!r} (nor ../shared/data/bench/{images}; "
                            f"set ${SHARED_ENV} to the shared folder)")


def list_cases(config: BenchConfig) -> list[Case]:
    """The run's cases in order (after `limit`)."""
    root = resolve_images(config.images)
    cases = levin_cases(root) if config.task == "levin" else _photo_cases(root)
    return cases[: config.limit] if config.limit else cases


def _photo_cases(root: Path) -> list[Case]:
    files = list_images([root])
    if not files:
        raise FileNotFoundError(f"no images in {root}")
    return [Case(i, f.stem, f) for i, f in enumerate(files)]


def levin_cases(root: Path) -> list[Case]:
    """The 32 Levin cases (4 images x 8 kernels) of a levin09 folder."""
    kernels_file = root / "kernels.npz"
    sharp = sorted((root / "sharp").glob("im_*.png"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    if not kernels_file.is_file() or not sharp:
        raise FileNotFoundError(f"{root} is not a Levin folder (needs sharp/im_I.png and kernels.npz)")
    keys = sorted(_npz(str(kernels_file)), key=lambda k: int(re.sub(r"\D", "", k) or 0))
    cases = []
    for s in sharp:
        image = s.stem.split("_")[-1]
        for key in keys:
            blurred = root / "blurred" / f"im_{image}_ker_{key.lstrip('k')}.png"
            if not blurred.is_file():
                raise FileNotFoundError(f"missing Levin measurement {blurred}")
            cases.append(Case(len(cases), blurred.stem, s, blurred, key))
    return cases


@functools.lru_cache(maxsize=4)
def _npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def load_kernels_file(path: str | Path) -> np.ndarray:
    """(N, K, K) float32 kernels from an .npz (array "kernels", or its only array)."""
    data = _npz(str(Path(path).expanduser().resolve()))
    arr = data.get("kernels", next(iter(data.values())) if len(data) == 1 else None)
    if arr is None:
        raise ValueError(f"{path}: expected an array named 'kernels' (N, K, K)")
    arr = np.asarray(arr, np.float32)
    arr = arr[:, 0] if arr.ndim == 4 and arr.shape[1] == 1 else arr
    if arr.ndim != 3 or (arr < 0).any():
        raise ValueError(f"{path}: kernels must be non-negative (N, K, K), got shape {arr.shape}")
    return arr


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centre crop (..., H, W) to (min(size, H), min(size, W)); size 0 keeps everything."""
    if not size:
        return x
    h, w = x.shape[-2:]
    ch, cw = min(size, h), min(size, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[..., top:top + ch, left:left + cw]


def load_measurement(case: Case, config: BenchConfig) -> Measurement:
    """Build (deterministically) the measurement of one case."""
    g = torch.Generator().manual_seed(case_seed(config.seed, case.index))
    if config.task == "levin":
        return _levin_measurement(case, config, g)
    x = center_crop(read_image(case.sharp).tensor, config.crop)
    if config.task == "turbulence":
        return _turbulence_measurement(case, config, x)
    kernel = _true_kernel(case, config, g)
    if max(kernel.shape) > min(x.shape[-2:]):
        raise ValueError(f"kernel {tuple(kernel.shape)} larger than the image {tuple(x.shape[-2:])} ({case.name})")
    y = Blur(config.padding)(x, kernel=kernel)
    y = _add_noise(y, config.noise_std, g)
    return Measurement(case, x, y, kernel, config.kernel_size, 0)


def _turbulence_measurement(case: Case, config: BenchConfig, x: torch.Tensor) -> Measurement:
    if config.kernel_size > min(x.shape[-2:]):
        raise ValueError(f"kernel size {config.kernel_size} larger than the image {tuple(x.shape[-2:])} "
                         f"({case.name})")
    y, params = simulate(x, blur="turbulence", kernel_size=config.kernel_size, std=config.gaussian_std,
                         noise=config.noise_std, padding=config.padding, seed=case_seed(config.seed, case.index))
    # The kernel as simulated (float32, sum 1): the oracle gets exactly the blur of y.
    return Measurement(case, x, y, params["kernel"].float(), config.kernel_size, 0, tilt=params["tilt"].float())


def _true_kernel(case: Case, config: BenchConfig, g: torch.Generator) -> torch.Tensor:
    if config.kernels:
        kernels = load_kernels_file(config.kernels)
        if case.index >= len(kernels):
            raise ValueError(f"{config.kernels} holds {len(kernels)} kernels: none for image {case.index}")
        k = torch.from_numpy(kernels[case.index].copy())
    elif config.task == "motion":
        k = MotionKernelGenerator(size=config.kernel_size, intensity=config.intensity).sample(1, generator=g)["kernel"][0, 0]
    else:
        k = gaussian_kernel(config.kernel_size, config.gaussian_std)
    return (k / k.sum()).float()


def _add_noise(y: torch.Tensor, std: float, g: torch.Generator) -> torch.Tensor:
    return (GaussianNoise(std)(y, generator=g) if std > 0 else y).clamp(0, 1)


def _levin_measurement(case: Case, config: BenchConfig, g: torch.Generator) -> Measurement:
    root = case.sharp.parent.parent
    kernel = torch.from_numpy(_npz(str(root / "kernels.npz"))[case.kernel_key].astype(np.float32))
    kernel = kernel / kernel.sum()
    x = read_image(case.sharp).tensor
    y = _add_noise(read_image(case.blurred).tensor, config.noise_std, g)
    if x.shape != y.shape:
        raise ValueError(f"{case.blurred} and {case.sharp} differ in shape")
    k = kernel.shape[-1]
    return Measurement(case, x, y, kernel, max(config.kernel_size, k), k // 2)
