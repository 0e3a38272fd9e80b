"""Typed configuration of a prior-training run (saved as JSON beside every checkpoint)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class TrainConfig:
    """kind: "kernel", "tilt" or "image".  size: training crop / kernel size in pixels.
    unet: keyword overrides of UNetConfig.small (num_channels, channel_mult, ...).
    data: image folders (kind "image" only).  lr, weight_decay: AdamW.  ema: EMA decay.
    checkpoint_every / preview_every: in steps.  seed: fixes init and the data stream.
    warmup: steps of linear learning-rate warm-up.  lr_decay: "cosine" (to lr * min_lr_ratio at
    `steps`) or "constant".  autocast: bf16 autocast for the forward pass (CUDA, and CPUs with
    native bf16; the loss and the optimiser stay float32).  init_from: a prior name or file whose
    weights start both the network and its EMA (a fresh optimiser; ignored on --resume)."""

    kind: str
    out: str
    steps: int = 10000
    batch_size: int = 16
    size: int = 64
    lr: float = 2e-4
    weight_decay: float = 0.0
    ema: float = 0.999
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 500
    preview_every: int = 0
    preview_steps: str = "ddim25"
    data: list[str] = field(default_factory=list)
    unet: dict = field(default_factory=dict)
    schedule: str = "linear"
    warmup: int = 0
    lr_decay: str = "constant"
    min_lr_ratio: float = 0.1
    autocast: bool = True
    init_from: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("kernel", "tilt", "image"):
            raise ValueError(f"kind must be kernel, tilt or image, got {self.kind!r}")
        if self.lr_decay not in ("constant", "cosine"):
            raise ValueError(f"lr_decay must be constant or cosine, got {self.lr_decay!r}")
        if self.kind == "image" and not self.data:
            raise ValueError("training an image prior needs at least one image folder (--data)")

    def to_dict(self) -> dict:
        return asdict(self)
