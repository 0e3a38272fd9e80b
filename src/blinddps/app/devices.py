"""The app's shared resources: one job at a time per device (`DeviceQueue`), priors loaded
once per settings (`PriorCache`), and the devices a job may run on."""
from __future__ import annotations

import threading
from collections import deque
from typing import Callable

import torch

from ..priors import DiffusionPrior
from ..service import load_priors
from ..tasks import RestoreConfig


class DeviceQueue:
    """One job at a time per device, first come first served.  A job joins the line of its
    device, runs when it is first in line, and leaves when it ends (which lets the next in)."""

    def __init__(self) -> None:
        self._lines: dict[str, deque] = {}
        self._changed = threading.Condition()

    def join(self, device: str, ticket: object) -> None:
        with self._changed:
            self._lines.setdefault(device, deque()).append(ticket)

    def wait(self, device: str, ticket: object, timeout: float) -> bool:
        """True once `ticket` is first in line (its turn); False after timeout seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self._lines[device][0] is ticket, timeout)

    def ahead(self, device: str, ticket: object) -> int:
        """Jobs in front of `ticket` (0: it runs now)."""
        with self._changed:
            return list(self._lines.get(device, ())).index(ticket)

    def leave(self, device: str, ticket: object) -> None:
        with self._changed:
            line = self._lines.get(device, deque())
            if ticket in line:
                line.remove(ticket)
            self._changed.notify_all()

    def busy(self, device: str) -> bool:
        """Whether a job holds or waits for the device."""
        with self._changed:
            return bool(self._lines.get(device))


class PriorCache:
    """Loaded priors kept per (names, device, task, sampler): a job after the first starts at
    once.  DPS priors are respaced for each job's steps (same networks, a new schedule)."""

    def __init__(self, loader: Callable[..., dict[str, DiffusionPrior]] = load_priors):
        self._loader = loader  # (config, turbulence, blind=) -> priors, as the CLI loads them
        self._priors: dict[tuple, dict[str, DiffusionPrior]] = {}
        self._lock = threading.Lock()

    def get(self, config: RestoreConfig, turbulence: bool, blind: bool) -> dict[str, DiffusionPrior]:
        method = config.sampler_name()
        key = (config.image_prior, config.kernel_prior, config.tilt_prior if turbulence else None,
               config.device, turbulence, blind, method)
        with self._lock:  # one load at a time: two jobs asking at once load once
            if key not in self._priors:
                self._priors[key] = self._loader(config, turbulence, blind=blind)
            priors = self._priors[key]
        if method == "prox":  # the proximal sampler picks its own timesteps
            return priors
        return {kind: prior.respaced(config.dps.respacing) for kind, prior in priors.items()}


def available_devices() -> list[str]:
    """Devices a job may run on: cpu, every CUDA device (cuda:0, ...), and mps when present."""
    devices = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    return devices + (["mps"] if mps is not None and mps.is_available() else [])
