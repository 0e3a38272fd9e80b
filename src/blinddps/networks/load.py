"""Reading and writing ADM U-Net weights: published ``.pt`` pickles and our safetensors + JSON.

Formats read by :func:`load_adm`:

- ``.safetensors`` (what :func:`save_adm` writes): weights, and the config in the metadata.
- anything else (``.pt``, ``.pth``, ...): ``torch.load(weights_only=True)`` (no arbitrary
  code runs), e.g. the paper's ``ffhq_10m.pt``, ``kernel_checkpoint.pt``,
  ``tilt_checkpoint.pt``. A bare state dict, or one wrapped in a training checkpoint
  under ``ema`` / ``state_dict`` / ``model`` / ... (EMA weights preferred, being the ones
  to sample with), with any ``module.``-like key prefix removed.
- an in-memory state dict (or wrapper) in place of a path.

The config comes from the argument, else the JSON beside the weights (``<stem>.json``, for
any file type: a UNetConfig dict with the paper's YAML keys, or a blinddps prior file), else
the safetensors metadata, else :func:`~blinddps.networks.infer.infer_config`, which reads
what the shapes fix and refuses (:class:`ConfigRequiredError`) where they leave a choice
that changes the outputs, unless the shapes are those of a published checkpoint.
"""
from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from .config import UNetConfig
from .infer import AmbiguousConfigError, infer_config
from .unet import ADMUNet

# Where training checkpoints keep the network's weights, most wanted first.
_WRAPPER_KEYS = ("ema", "ema_model", "model_ema", "state_dict", "model_state_dict", "model",
                 "net", "network", "params")
_ANCHOR = "input_blocks.0.0.weight"
_META_CONFIG = "blinddps.unet_config"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or whose weights do not fit the network."""


class ConfigRequiredError(CheckpointError):
    """Weights without a config whose shapes leave part of it open (see ``infer``).

    The message is one line naming what is missing and the ways to give it. Attributes:
    ``reason`` (what the shapes leave open), ``missing`` (config keys that would settle it,
    any one suffices), ``sidecar`` (the ``<stem>.json`` beside the weights that
    :func:`load_adm` reads a config from; None for in-memory weights).
    """

    def __init__(self, reason: str, missing: tuple[str, ...], path: Path | None = None):
        self.reason, self.missing = reason, missing
        self.sidecar = path.with_suffix(".json") if path else None
        where = f"{path.name}: " if path else ""
        beside = f", or a JSON of it beside the weights ({self.sidecar.name})" if path else ""
        keys = " / ".join(f"{k}=" for k in missing)
        super().__init__(f"{where}{reason}: give the config: config= (a dict of the paper's YAML "
                         f"keys) or {keys}{beside}")


def _read_torch(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt / foreign files
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (with weights_only=True): "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from err


def _read_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, Any] | None]:
    """Tensors and the config stored in the file's metadata (None if absent)."""
    try:
        with safe_open(path, framework="pt", device="cpu") as handle:
            meta = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    except Exception as err:  # safetensors reports truncation / bad headers variously
        raise CheckpointError(f"{path} is not a readable safetensors file: "
                              f"{type(err).__name__}: {err}") from err
    return tensors, json.loads(meta[_META_CONFIG]) if _META_CONFIG in meta else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"config {path} is not readable JSON: {err}") from err


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())


def unwrap_state_dict(obj: Any) -> dict[str, Tensor]:
    """The U-Net state dict inside a checkpoint object (see the module docstring)."""
    for _ in range(4):  # wrappers nest at most a few levels deep
        if _is_state_dict(obj) or not isinstance(obj, Mapping):
            break
        inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not _is_state_dict(obj):
        kind = f"a dict with keys {sorted(map(str, obj))[:6]}" if isinstance(obj, Mapping) \
            else f"a {type(obj).__name__}"
        raise CheckpointError(f"checkpoint holds {kind}, not a state dict of tensors")
    # DataParallel / torch.compile / LDM-style wrappers prefix every key of the network.
    anchor = next((k for k in obj if k.endswith(_ANCHOR)), None)
    prefix = anchor[: -len(_ANCHOR)] if anchor else ""
    if prefix:
        obj = {k[len(prefix):]: v for k, v in obj.items() if k.startswith(prefix)}
    return dict(obj)


def _check_fits(model: ADMUNet, state: Mapping[str, Tensor], limit: int = 5) -> None:
    """Raise CheckpointError naming the first missing / unexpected / mis-shaped keys."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k}: checkpoint {tuple(state[k].shape)} vs network {expected[k]}"
             for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    problems = [f"{len(items)} {what} {items[:limit]}" for what, items in
                (("missing keys", missing), ("unexpected keys", unexpected),
                 ("shape mismatches", wrong)) if items]
    if problems:
        raise CheckpointError("checkpoint does not fit the configured ADM U-Net: "
                              + "; ".join(problems))


def _resolve_config(config: UNetConfig | Mapping[str, Any] | None, state: Mapping[str, Tensor],
                    infer_kwargs: dict[str, Any], path: Path | None) -> UNetConfig:
    """The config given or found, else inferred; ``path``: the weights' file, for messages."""
    if isinstance(config, UNetConfig):
        return config
    try:
        if config is not None:
            return UNetConfig.from_dict(config)
        return infer_config(state, **infer_kwargs)
    except CheckpointError:
        raise
    except AmbiguousConfigError as err:
        raise ConfigRequiredError(str(err), err.missing, path) from err
    except ValueError as err:  # a config stored beside the weights can be broken too
        what = "invalid U-Net config" if config is not None else \
            "cannot infer the U-Net config from the checkpoint"
        raise CheckpointError(f"{what}: {err}") from err


def _read(checkpoint: str | os.PathLike | Mapping[str, Any],
          config: UNetConfig | Mapping[str, Any] | None,
          ) -> tuple[dict[str, Tensor], UNetConfig | Mapping[str, Any] | None]:
    """(state dict, config or None) from a path or an in-memory checkpoint."""
    if isinstance(checkpoint, Mapping):
        state = unwrap_state_dict(checkpoint)
        # Never alias the caller's tensors: the network's weights are its own.
        return {k: v.clone() for k, v in state.items()}, config
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "checkpoint not found", str(path))
    if path.suffix == ".safetensors":
        state, meta_config = _read_safetensors(path)
    else:
        state, meta_config = _read_torch(path), None
    sidecar = path.with_suffix(".json")
    if config is None:
        # The JSON beside any checkpoint is how a config travels with foreign weights too.
        config = _read_json(sidecar) if sidecar.is_file() else meta_config
        if isinstance(config, dict) and config.get("format") == "blinddps-prior":
            config = config["unet"]  # a prior file: the network config is one of its sections
    return unwrap_state_dict(state), config


def load_adm(checkpoint: str | os.PathLike | Mapping[str, Any],
             config: UNetConfig | Mapping[str, Any] | None = None, *,
             device: torch.device | str = "cpu", dtype: torch.dtype | None = None,
             image_size: int | None = None, num_heads: int | None = None,
             num_head_channels: int | None = None) -> ADMUNet:
    """An ADMUNet with the checkpoint's weights, in eval mode.

    Args:
        checkpoint: a file path (see the module docstring) or a state dict / wrapper.
        config: the paper's YAML keyword dict or a UNetConfig; None to read it beside the
            weights (``<stem>.json``) or infer it from the state-dict shapes.
        device, dtype: where and in which precision to put the weights (float32 when
            None; with ``config.use_fp16`` on CUDA the body then runs in float16).
        image_size, num_heads, num_head_channels: what shape inference cannot read (see
            :mod:`blinddps.networks.infer`); only allowed when the config is inferred.
    Raises:
        FileNotFoundError: no such file. CheckpointError: unreadable file, or weights that
        do not fit the configuration (naming the first offending keys).
        ConfigRequiredError (a CheckpointError): no config given or found, and the shapes
        leave the attention heads open without being a published checkpoint's.
    """
    infer_kwargs = {k: v for k, v in dict(image_size=image_size, num_heads=num_heads,
                                          num_head_channels=num_head_channels).items() if v is not None}
    state, config = _read(checkpoint, config)
    if infer_kwargs and config is not None:
        raise ValueError(f"{sorted(infer_kwargs)} only apply when the config is inferred, "
                         "but a config was given or found beside the weights")
    path = None if isinstance(checkpoint, Mapping) else Path(checkpoint)
    cfg = _resolve_config(config, state, infer_kwargs, path)
    with torch.device("meta"):  # no throw-away random initialisation of ~100M weights
        model = ADMUNet(cfg)
    _check_fits(model, state)
    model.load_state_dict(state, strict=True, assign=True)
    model = model.to(device=device, dtype=dtype or torch.float32).eval()
    if cfg.use_fp16 and dtype is None and torch.device(device).type == "cuda":
        model.convert_to_fp16()
    return model


def _atomic_write(path: Path, write: Callable[[str], Any]) -> None:
    """Write via a temporary file in the same folder, then rename: never a half file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_adm(model: ADMUNet, path: str | os.PathLike) -> Path:
    """Write ``path`` (.safetensors, weights + config in metadata) and ``<stem>.json``.

    Returns the weights path. :func:`load_adm` reads the pair back identically.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"save_adm writes .safetensors files, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    config = model.config.to_dict()
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": "pt", _META_CONFIG: json.dumps(config)}
    _atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    _atomic_write(path.with_suffix(".json"),
                  lambda tmp: Path(tmp).write_text(json.dumps(config, indent=1) + "\n"))
    return path
