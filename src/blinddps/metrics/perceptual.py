"""Whether LPIPS and FID can be computed here, and why not.

Both need pretrained networks that this project neither ships nor downloads.

- LPIPS (:mod:`blinddps.metrics.lpips`) is computed when the user points to two local weight
  files: the torchvision backbone (``alexnet-owt-7be5be79.pth`` or ``vgg16-397923af.pth``) and
  the LPIPS v0.1 heads (``alex.pth`` or ``vgg.pth``), as arguments / ``blinddps bench
  --lpips-backbone PATH --lpips-heads PATH``, or the environment variables
  ``BLINDDPS_LPIPS_BACKBONE`` and ``BLINDDPS_LPIPS_HEADS``.
- FID is not implemented (see :func:`fid_available`).

These functions let evaluation code report an absence instead of failing or silently skipping.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Availability", "LPIPS_ENV", "lpips_available", "lpips_paths", "fid_available"]

# Environment variables read when no LPIPS weight path is given explicitly.
LPIPS_ENV = {"backbone": "BLINDDPS_LPIPS_BACKBONE", "heads": "BLINDDPS_LPIPS_HEADS"}
_OPTION = {"backbone": "--lpips-backbone", "heads": "--lpips-heads"}
_EXAMPLE = {"backbone": "torchvision's alexnet-owt-7be5be79.pth or vgg16-397923af.pth",
            "heads": "the LPIPS v0.1 alex.pth or vgg.pth"}


@dataclass(frozen=True)
class Availability:
    """Whether a metric can be computed, and why not. Falsy when unavailable."""

    available: bool
    reason: str

    def __bool__(self) -> bool:
        return self.available


def lpips_paths(backbone: str | os.PathLike | None = None,
                heads: str | os.PathLike | None = None) -> tuple[str | None, str | None]:
    """(backbone, heads) weight paths: the given ones, else $BLINDDPS_LPIPS_BACKBONE /
    $BLINDDPS_LPIPS_HEADS, else None (an empty variable counts as unset)."""
    given = {"backbone": backbone, "heads": heads}
    out = [str(given[k]) if given[k] else (os.environ.get(LPIPS_ENV[k]) or None) for k in ("backbone", "heads")]
    return out[0], out[1]


def lpips_available(backbone: str | os.PathLike | None = None,
                    heads: str | os.PathLike | None = None) -> Availability:
    """LPIPS (Zhang et al. 2018): available when both weight files are given (or set in the
    environment, see :func:`lpips_paths`) and exist. Whether their content fits is only
    known on loading (:func:`blinddps.metrics.lpips.load_lpips` raises a clear error)."""
    paths = dict(zip(("backbone", "heads"), lpips_paths(backbone, heads)))
    unset = [k for k, p in paths.items() if p is None]
    if len(unset) == 2:
        return Availability(False, "LPIPS needs local weight files, none given (nothing is downloaded): set "
                                   "--lpips-backbone and --lpips-heads (or BLINDDPS_LPIPS_BACKBONE and "
                                   f"BLINDDPS_LPIPS_HEADS) to {_EXAMPLE['backbone']} and {_EXAMPLE['heads']}")
    if unset:
        k = unset[0]
        return Availability(False, f"LPIPS {k} weights not given: set {_OPTION[k]} (or {LPIPS_ENV[k]}) "
                                   f"to {_EXAMPLE[k]}")
    for k, p in paths.items():
        if not Path(p).expanduser().is_file():
            return Availability(False, f"LPIPS {k} file {p} not found")
    return Availability(True, f"LPIPS weights: backbone {paths['backbone']}, heads {paths['heads']}")


def fid_available() -> Availability:
    """FID (Heusel et al. 2017): not implemented, always unavailable.

    FID compares the Gaussian statistics of Inception-v3 pool features of two image sets;
    the reference values use the TensorFlow-ported pt_inception-2015-12-05 network, whose
    weights are not available locally (and are never downloaded). Its estimate also needs
    thousands of images to be stable: the benchmark sets here have 8-32 images, so an FID on
    them would be meaningless anyway.
    """
    return Availability(
        False, "FID needs the pretrained Inception-v3 (pt_inception-2015-12-05) network, not available locally, "
               "and thousands of images (these benchmarks have 8-32)"
    )
