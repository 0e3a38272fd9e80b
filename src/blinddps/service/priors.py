"""Every prior a restoration needs, loaded once per batch (or per app), with one-line
errors that name the option to change."""
from __future__ import annotations

from .. import tasks
from ..networks.load import ConfigRequiredError
from ..priors import DiffusionPrior
from ..priors.bundle import BUNDLED, PriorNotFoundError
from ..tasks import RestoreConfig
from .failures import OUT_OF_MEMORY_HINT, UserError, is_out_of_memory, one_line


def load_priors(config: RestoreConfig, turbulence: bool, blind: bool = True) -> dict[str, DiffusionPrior]:
    """Load every prior the task needs once, respaced for its sampler; UserError if one fails."""
    if config.sampler_name() == "prox":
        priors = {"image": _load_prior("image", config.image_prior, config.device, "")}
        if blind and config.prox.search != "none":  # the kernel search's own priors
            if config.prox.kernel_prior_t > 0:
                priors["kernel"] = _load_prior("kernel", config.kernel_prior, config.device, "")
            if config.prox.search_prior:
                priors["search"] = _load_prior("image", config.prox.search_prior, config.device, "",
                                               option="--prox-search-prior")
        return priors
    priors = tasks.load_priors(config, turbulence, loader=_load_prior)
    return priors if blind else {"image": priors["image"]}


def _load_prior(kind: str, name: str, device: str, respacing: str, option: str = "") -> DiffusionPrior:
    option = option or f"--{kind}-prior"
    try:
        return tasks.load_task_prior(kind, name, device, respacing)
    except PriorNotFoundError as exc:
        hint = f" (pass a checkpoint path with {option})" if name in BUNDLED else ""
        raise UserError(f"{option}: {one_line(exc)}{hint}") from exc
    except ConfigRequiredError as exc:  # the CLI's way to give a config is the JSON beside the weights
        keys = " or ".join(exc.missing)
        raise UserError(f"{option} {name}: {exc.reason}: write the network's config (the paper's YAML "
                        f"keys, with {keys}) as JSON in {exc.sidecar}") from exc
    except Exception as exc:  # corrupt files and foreign weights raise many exception types
        if is_out_of_memory(exc):
            raise UserError(f"{option} {name}: {OUT_OF_MEMORY_HINT}") from exc
        raise UserError(f"{option} {name}: cannot load it as the {kind} prior: {one_line(exc)}") from exc
