"""Typed configuration of the ADM U-Net (the architecture of the paper's published priors).

The field names are those of the paper's model YAML files (the keyword arguments of the
reference ``create_model``), so a YAML or JSON config of the released code can be read
with :meth:`UNetConfig.from_dict`. Missing optional keys take the reference factory's
defaults; ``image_size``, ``num_channels`` and ``num_res_blocks`` are required.

Fields beyond the reference keys (all serialised by :meth:`UNetConfig.to_dict`):

- ``in_channels`` / ``out_channels``: derived from ``grayscale`` / ``twochan`` /
  ``learn_sigma`` when left ``None`` (3 in by default, 1 for grayscale, 2 for twochan;
  out = in, doubled with ``learn_sigma``: epsilon then the variance values).
- ``middle_attention``: whether the middle block has an attention layer. ``None`` means
  "when ``attention_resolutions`` is non-empty", so an empty list gives a network without
  any attention (fully convolutional). The reference always has it: set ``True`` to read
  a reference checkpoint trained with empty ``attention_resolutions``.
- ``norm_groups``: GroupNorm groups, 32 in the reference; smaller for tiny test networks.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

# Defaults of the reference factory when ``channel_mult`` is "" (keyed by image size).
DEFAULT_CHANNEL_MULT: dict[int, tuple[float, ...]] = {
    512: (0.5, 1, 1, 2, 2, 4, 4),
    256: (1, 1, 2, 2, 4, 4),
    128: (1, 1, 2, 3, 4),
    64: (1, 2, 3, 4),
    32: (1, 2, 2, 2),
}

# Keys of the paper's YAML files that describe where the weights live, not the network.
IGNORED_KEYS = frozenset({"model_path"})
_REQUIRED = ("image_size", "num_channels", "num_res_blocks")
# Fields derived from others when None: re-derived by ``replace`` when a source changes.
_DERIVED = {
    "in_channels": ("grayscale", "twochan"),
    "out_channels": ("grayscale", "twochan", "learn_sigma", "in_channels"),
    "middle_attention": ("attention_resolutions",),
}


def _as_number(value: float | int | str) -> float | int:
    """A channel multiplier as int when integral (0.5 stays a float)."""
    number = float(value)
    return int(number) if number.is_integer() else number


def parse_channel_mult(value: Any, image_size: int) -> tuple[float, ...]:
    """Channel multipliers from a comma string, a sequence, or "" / None (the default)."""
    if isinstance(value, str):
        value = value.strip()
    if value is None or len(value) == 0:
        if image_size not in DEFAULT_CHANNEL_MULT:
            raise ValueError(
                f"channel_mult is empty and image_size {image_size} has no default; "
                f"defaults exist for {sorted(DEFAULT_CHANNEL_MULT)}: give channel_mult explicitly")
        return DEFAULT_CHANNEL_MULT[image_size]
    items = value.split(",") if isinstance(value, str) else list(value)
    mult = tuple(_as_number(v) for v in items)
    if any(m <= 0 for m in mult):
        raise ValueError(f"channel_mult must be positive, got {mult}")
    return mult


def parse_resolutions(value: Any) -> tuple[int, ...]:
    """Attention resolutions from a comma string, an int or a sequence ("" -> none)."""
    if value is None:
        return ()
    if isinstance(value, (int, float)):
        return (int(value),)
    items = [v for v in value.split(",") if v.strip()] if isinstance(value, str) else list(value)
    return tuple(int(v) for v in items)


@dataclass
class UNetConfig:
    """Architecture of an :class:`~blinddps.networks.unet.ADMUNet`.

    ``channel_mult`` and ``attention_resolutions`` accept the YAML forms (comma strings,
    an int, "") and are normalised to tuples. ``attention_resolutions`` are feature-map
    resolutions relative to ``image_size``: attention sits at the levels whose
    downsampling factor is ``image_size // res`` (see :attr:`attention_ds`), which stays
    meaningful when the network runs on inputs of another size.
    """

    image_size: int
    num_channels: int
    num_res_blocks: int
    channel_mult: tuple[float, ...] = ()
    learn_sigma: bool = False
    attention_resolutions: tuple[int, ...] = (16,)
    num_heads: int = 1
    num_head_channels: int = -1
    num_heads_upsample: int = -1
    use_scale_shift_norm: bool = False
    dropout: float = 0.0
    resblock_updown: bool = False
    use_new_attention_order: bool = False
    use_fp16: bool = False
    use_checkpoint: bool = False
    class_cond: bool = False
    grayscale: bool = False
    twochan: bool = False
    in_channels: int | None = None
    out_channels: int | None = None
    middle_attention: bool | None = None
    norm_groups: int = 32

    def __post_init__(self) -> None:
        self.image_size = int(self.image_size)
        self.channel_mult = parse_channel_mult(self.channel_mult, self.image_size)
        self.attention_resolutions = parse_resolutions(self.attention_resolutions)
        if self.middle_attention is None:
            self.middle_attention = bool(self.attention_resolutions)
        self._check_supported()
        self._resolve_channels()
        self._check_attention()

    # ----------------------------------------------------------------- validation
    def _check_supported(self) -> None:
        if self.class_cond:
            raise NotImplementedError("class_cond=True (class-conditional ADM) is not supported")
        if self.use_new_attention_order:
            raise NotImplementedError(
                "use_new_attention_order=True is not supported: only the legacy QKV order "
                "used by the paper's checkpoints is implemented")
        if self.num_channels <= 0 or self.num_res_blocks < 1 or self.image_size <= 0:
            raise ValueError("image_size, num_channels and num_res_blocks must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.norm_groups <= 0:
            raise ValueError(f"norm_groups must be positive, got {self.norm_groups}")

    def _resolve_channels(self) -> None:
        if self.grayscale and self.twochan:
            raise ValueError("grayscale and twochan are exclusive")
        implied = 1 if self.grayscale else 2 if self.twochan else None
        if self.in_channels is None:
            self.in_channels = implied or 3
        elif implied is not None and self.in_channels != implied:
            raise ValueError(f"in_channels={self.in_channels} contradicts "
                             f"{'grayscale' if self.grayscale else 'twochan'} ({implied} channels)")
        if self.out_channels is None:
            self.out_channels = self.in_channels * (2 if self.learn_sigma else 1)
        elif self.learn_sigma and self.out_channels % 2:
            raise ValueError(f"learn_sigma needs an even out_channels (epsilon then variance), "
                             f"got {self.out_channels}")

    def _check_attention(self) -> None:
        levels = set(self.level_ds)
        for res, ds in zip(self.attention_resolutions, self.attention_ds):
            if res <= 0 or self.image_size % res or ds not in levels:
                raise ValueError(
                    f"attention resolution {res} matches no level of the network "
                    f"(image_size {self.image_size}, level resolutions "
                    f"{[self.image_size // d for d in self.level_ds]})")
        if self.num_head_channels != -1 and self.num_head_channels <= 0:
            raise ValueError("num_head_channels must be positive or -1 (use num_heads)")
        for level, ch in enumerate(self.level_channels):
            has_attn = self.level_ds[level] in self.attention_ds
            if has_attn or (self.middle_attention and level == self.num_levels - 1):
                for upsample in (False, True):
                    self.heads_for(ch, upsample=upsample)

    # ---------------------------------------------------------- derived quantities
    @property
    def num_levels(self) -> int:
        return len(self.channel_mult)

    @property
    def level_ds(self) -> tuple[int, ...]:
        """Downsampling factor of each level: 1, 2, 4, ..."""
        return tuple(2 ** level for level in range(self.num_levels))

    @property
    def level_channels(self) -> tuple[int, ...]:
        """Feature channels of each level: ``int(mult * num_channels)``."""
        return tuple(int(m * self.num_channels) for m in self.channel_mult)

    @property
    def attention_ds(self) -> tuple[int, ...]:
        """Downsampling factors of the attention levels: ``image_size // res``."""
        return tuple(self.image_size // res for res in self.attention_resolutions if res > 0)

    @property
    def spatial_multiple(self) -> int:
        """Input height and width must be multiples of this (one halving per level)."""
        return 2 ** (self.num_levels - 1)

    def heads_for(self, channels: int, *, upsample: bool = False) -> int:
        """Number of attention heads for a layer of ``channels`` channels.

        ``num_head_channels`` wins when set (heads = channels // it); otherwise
        ``num_heads`` (``num_heads_upsample`` in the decoder, -1 meaning ``num_heads``).
        """
        if self.num_head_channels != -1:
            heads = channels // self.num_head_channels
            if channels % self.num_head_channels:
                raise ValueError(f"{channels} attention channels are not divisible by "
                                 f"num_head_channels={self.num_head_channels}")
            return heads
        heads = self.num_heads_upsample if upsample and self.num_heads_upsample != -1 \
            else self.num_heads
        if heads <= 0 or channels % heads:
            raise ValueError(f"{channels} attention channels cannot be split into {heads} heads")
        return heads

    # ------------------------------------------------------------- serialisation
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UNetConfig:
        """Build from a paper YAML / JSON dict; unknown keys raise a ValueError naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names - IGNORED_KEYS)
        if unknown:
            raise ValueError(f"unknown U-Net config keys {unknown}; known keys: {sorted(names)}")
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise ValueError(f"U-Net config is missing required keys {missing}")
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of every field (resolved); ``from_dict`` reads it back."""
        out = dataclasses.asdict(self)
        out["channel_mult"] = list(self.channel_mult)
        out["attention_resolutions"] = list(self.attention_resolutions)
        return out

    def replace(self, **changes: Any) -> UNetConfig:
        """A copy with some fields changed; derived fields follow their sources unless given."""
        data = self.to_dict()
        for name, sources in _DERIVED.items():
            if name not in changes and any(s in changes for s in sources):
                data[name] = None
        data.update(changes)
        return UNetConfig.from_dict(data)

    @classmethod
    def small(cls, in_channels: int = 3, out_channels: int | None = None, *,
              learn_sigma: bool = True, num_channels: int = 16,
              channel_mult: Sequence[float] = (1, 2), num_res_blocks: int = 1,
              attention: bool = False, image_size: int = 32, **overrides: Any) -> UNetConfig:
        """A tiny configuration for tests and the project's small CPU priors.

        ``attention=False`` gives a fully convolutional network (no attention anywhere);
        ``attention=True`` puts attention (2 heads) at the lowest resolution and in the
        middle block. GroupNorm groups shrink to ``gcd(32, num_channels)`` so narrow
        networks are valid.
        """
        levels = len(tuple(channel_mult))
        fields: dict[str, Any] = dict(
            image_size=image_size, num_channels=num_channels, num_res_blocks=num_res_blocks,
            channel_mult=tuple(channel_mult), learn_sigma=learn_sigma,
            attention_resolutions=(image_size // 2 ** (levels - 1),) if attention else (),
            num_heads=2, num_head_channels=-1, use_scale_shift_norm=True,
            resblock_updown=True, in_channels=in_channels, out_channels=out_channels,
            norm_groups=math.gcd(32, num_channels))
        fields.update(overrides)
        return cls(**fields)
