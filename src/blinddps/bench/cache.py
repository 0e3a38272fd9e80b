"""Per (method, case) result files, so an interrupted or sharded run resumes where it stopped.

Layout: OUTDIR/cache/<method>/<case key>.png (the restored image, 16-bit PNG),
<case key>.kernel.npy (float32 (K, K)) and <case key>.json (the record: settings, metrics,
seconds, nfe). Each file is written atomically and the record last, so a record on disk
means a finished item. A record counts only if its settings equal the current run's (a
changed --steps or prior recomputes that method, the others are kept).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..io import read_image, save_npy_atomic, write_image, write_json_atomic
from .data import Case
from .methods import MethodOutput


class ResultCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _stem(self, method: str, case: Case) -> Path:
        return self.root / method / case.key

    def record_path(self, method: str, case: Case) -> Path:
        return self._stem(method, case).with_suffix(".json")

    def image_path(self, method: str, case: Case) -> Path:
        return self._stem(method, case).with_suffix(".png")

    def kernel_path(self, method: str, case: Case) -> Path:
        return self._stem(method, case).with_suffix(".kernel.npy")

    def load(self, method: str, case: Case, settings: dict) -> dict | None:
        """The finished record of (method, case) under these settings, else None."""
        path = self.record_path(method, case)
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if record.get("settings") != json.loads(json.dumps(settings)):
            return None
        if not (self.image_path(method, case).is_file() and self.kernel_path(method, case).is_file()):
            return None
        return record

    def save(self, method: str, case: Case, output: MethodOutput, record: dict) -> None:
        write_image(self.image_path(method, case), output.image, bit_depth=16)
        save_npy_atomic(self.kernel_path(method, case), output.kernel.detach().cpu().float().numpy())
        write_json_atomic(self.record_path(method, case), record)

    def image(self, method: str, case: Case) -> torch.Tensor:
        """(1, C, H, W) in [0, 1] (16-bit precision)."""
        return read_image(self.image_path(method, case)).tensor

    def kernel(self, method: str, case: Case) -> torch.Tensor:
        return torch.from_numpy(np.load(self.kernel_path(method, case), allow_pickle=False))
