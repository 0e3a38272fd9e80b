"""Non-blind DPS (Chung et al., ICLR 2023): the same machinery with the image as the only unknown."""
from __future__ import annotations

from typing import Callable, Mapping

import torch

from .blinddps import BlindDPS, Generators, SolverConfig, SolverResult, StepInfo, Unknown


class DPS:
    """Diffusion posterior sampling with a KNOWN operator A(x, **known)."""

    def __init__(self, operator: Callable[..., torch.Tensor], image: Unknown, config: SolverConfig = SolverConfig()):
        self._solver = BlindDPS(operator, {"image": image}, config)

    @property
    def num_steps(self) -> int:
        return self._solver.num_steps

    def solve(self, y: torch.Tensor, *, known: Mapping[str, torch.Tensor], generator: Generators = None,
              callback: Callable[[StepInfo], None] | None = None) -> SolverResult:
        """Sample the image given y and the operator's known parameters (e.g. kernel=...)."""
        return self._solver.solve(y, generator=generator, known=known, callback=callback)
