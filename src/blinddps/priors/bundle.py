"""Prior files: weights as safetensors beside a JSON that says how to use them.

`<stem>.safetensors` holds the network's state dict (fp16 or fp32); `<stem>.json` holds
{"format": "blinddps-prior", "kind": "image"|"kernel"|"tilt", "channels": C,
 "unet": UNetConfig dict, "diffusion": DiffusionConfig dict, "transform": {...},
 "training": {...provenance...}}.  The paper's `.pt` checkpoints load too, with the
paper's process (1000 linear steps, learned range) and the transform of their kind.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..diffusion import DiffusionConfig, VPProcess
from ..io.atomic import atomic_path, write_json_atomic
from ..networks import ADMUNet, UNetConfig, load_adm
from .prior import DiffusionPrior
from .transforms import ImageTransform, KernelTransform, TiltTransform, transform_from_dict

BUNDLED_DIR = Path(__file__).parent / "weights"
# natural-rgb: the image prior (its fifth training stage); natural-rgb-3: its third stage, the
# blind kernel search's denoiser (ProxSettings.search_prior; docs/priors.md says why both ship).
BUNDLED = {"kernel-64": "kernel", "kernel-32": "kernel", "natural-rgb": "image", "natural-rgb-3": "image",
           "tilt": "tilt"}
_DEFAULT_TRANSFORMS = {"image": ImageTransform(), "kernel": KernelTransform(), "tilt": TiltTransform()}


class PriorNotFoundError(ValueError):
    """An unknown prior name or a missing prior file."""


def save_prior(stem: str | Path, network: ADMUNet, *, kind: str, diffusion: DiffusionConfig,
               transform=None, training: dict | None = None, half: bool = False) -> Path:
    """Write `<stem>.safetensors` and `<stem>.json` atomically; returns the weights path."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    transform = transform or _DEFAULT_TRANSFORMS[kind]
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in network.state_dict().items()}
    weights = stem.with_suffix(".safetensors")
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp))
    meta = {"format": "blinddps-prior", "kind": kind, "channels": network.config.in_channels,
            "unet": network.config.to_dict(), "diffusion": diffusion.to_dict(),
            "transform": {"kind": transform.kind, **_fields(transform)}, "training": training or {}}
    write_json_atomic(stem.with_suffix(".json"), meta)
    return weights


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _fields(transform) -> dict:
    return {k: v for k, v in vars(transform).items() if k != "kind"}


def resolve_prior_path(name_or_path: str | Path) -> Path:
    """A bundled prior name (kernel-64, kernel-32, natural-rgb, natural-rgb-3, tilt) or a file path -> weights path."""
    text = str(name_or_path)
    if text in BUNDLED:
        path = BUNDLED_DIR / f"{text}.safetensors"
        if not path.is_file():
            raise PriorNotFoundError(f"bundled prior {text!r} is missing from the installation ({path})")
        return path
    path = Path(text).expanduser()
    if not path.exists():
        known = ", ".join(sorted(BUNDLED))
        raise PriorNotFoundError(f"no prior named {text!r}: use one of {known} or a checkpoint path")
    return path


def prior_fingerprint(name_or_path: str | Path) -> str:
    """"<name>@<sha256 prefix of the weights>": tells two versions of a named prior apart."""
    if str(name_or_path) == "uniform":
        return "uniform"
    digest = hashlib.sha256(resolve_prior_path(name_or_path).read_bytes()).hexdigest()[:12]
    return f"{name_or_path}@{digest}"


def kernel_prior_size(name_or_path: str | Path, default: int = 64) -> int:
    """The kernel size a kernel prior was trained at (its JSON's network image_size): 32 for
    "kernel-32", 64 for "kernel-64", the JSON's value for one of our prior files; `default`
    for anything without one (the paper's .pt checkpoints are 64; "uniform"; a missing file,
    whose error comes when it is loaded)."""
    text = str(name_or_path)
    if text in BUNDLED:
        if BUNDLED[text] != "kernel":
            return default
        meta_path = BUNDLED_DIR / f"{text}.json"
    else:
        meta_path = Path(text).expanduser().with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return default
    if meta.get("kind") != "kernel":
        return default
    return int(meta["unet"]["image_size"])


def load_prior(name_or_path: str | Path, *, kind: str | None = None, device: torch.device | str = "cpu",
               respacing: str = "", config: UNetConfig | dict | None = None) -> DiffusionPrior:
    """Load a prior by bundled name or path (.safetensors + .json of ours, or the paper's .pt).

    kind: required for foreign checkpoints without our JSON ("image", "kernel", "tilt");
        checked against the file's kind otherwise.
    config: the network's UNetConfig (or the paper's YAML dict) for a foreign checkpoint;
        None: a ``<stem>.json`` beside it, else what :func:`load_adm` infers (the paper's
        checkpoints load as they are; other shapes that leave the attention heads open
        raise ConfigRequiredError, naming what to give).
    """
    path = resolve_prior_path(name_or_path)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    if meta is not None and meta.get("format") == "blinddps-prior":
        if kind is not None and meta["kind"] != kind:
            raise ValueError(f"{path.name} is a {meta['kind']} prior, not {_article(kind)} {kind} prior")
        if config is not None:  # two configs for one network: refuse rather than ignore one
            raise ValueError(f"{path.name} has its config in {meta_path.name}: "
                             "config= is for foreign checkpoints")
        network = load_adm({k: v.float() for k, v in load_file(str(path)).items()}, meta["unet"])
        diffusion = DiffusionConfig(**meta["diffusion"])
        transform = transform_from_dict(meta["transform"])
        kind = meta["kind"]
    else:
        if kind is None:
            raise ValueError(f"{path.name} has no blinddps JSON: say which kind of prior it is")
        network = load_adm(path, config)  # config None: the JSON beside it, else inference
        diffusion = DiffusionConfig()  # the paper's: 1000 linear steps, epsilon, learned range
        transform = _DEFAULT_TRANSFORMS[kind]
    network = network.to(device).eval().requires_grad_(False)
    process = VPProcess(diffusion.replace(respacing=respacing))
    return DiffusionPrior(network, process, transform, network.config.in_channels, name=str(name_or_path))
