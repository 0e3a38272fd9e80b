"""A user's known blur kernel from a file, for the front ends."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import tasks
from ..io import read_image
from .failures import UserError, one_line


def read_kernel_file(path: str) -> torch.Tensor:
    """A known blur kernel from a .npy array (K, K) or a grey image (colour is averaged);
    normalised to sum 1.  UserError (exit code 2) with the reason for a bad file."""
    p = Path(path)
    try:
        if p.suffix.lower() == ".npy":
            array = np.load(p, allow_pickle=False)
            if array.dtype.kind not in "fiub":
                raise ValueError(f"expected a numeric array, got dtype {array.dtype}")
            k = torch.from_numpy(np.asarray(array, dtype=np.float64))
        else:
            k = read_image(p, min_size=1).tensor[0].mean(dim=0).double()
        return tasks.check_kernel(k)
    except (OSError, ValueError) as exc:
        raise UserError(f"--kernel {path}: {one_line(exc)}") from exc
