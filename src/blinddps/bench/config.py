"""Typed settings of a benchmark run (written as JSON beside its results)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from ..metrics.perceptual import lpips_paths
from ..priors.bundle import prior_fingerprint
from ..tasks.config import PROX_OPTIONS, ProxSettings, RestoreConfig, parse_decays
from ..tasks.search import kernel_search_config

TASKS = ("motion", "gaussian", "levin", "turbulence")

# Canonical method names (lower case) -> what they are; the CLI table of names.
METHODS = {
    "blinddps": "BlindDPS: image and kernel diffusion priors (tasks.deblur; turbulence: image, kernel and tilt "
                "priors, tasks.restore_turbulence)",
    "blinddps-uniform": "BlindDPS without the kernel prior (kernel_prior='uniform', the paper's ablation)",
    "dps-oracle": "non-blind DPS with the TRUE kernel (turbulence: and the TRUE tilt) and the image prior "
                  "(an upper bound)",
    "prox": "the proximal sampler, blind (image prior as a denoiser, closed-form image step; the kernel found "
            "first by RestoreConfig.prox.search, by default Pan-L0's loop on the photo and on its transpose, "
            "denoised by the search prior (--search-prior), the two kernels merged; tasks.deblur with method='prox')",
    "prox-oracle": "the proximal sampler with the TRUE kernel (non-blind: tasks.deblur(kernel=...))",
    "wiener-oracle": "Wiener filter (gradient regulariser) with the TRUE kernel and the regularisation "
                     "weight chosen per image by PSNR against the truth (an upper bound of Wiener)",
    "pan-l0": "Pan et al. 2014 L0 blind deblurring (classical baseline)",
    "blurry": "the measurement itself, kernel = delta (a lower bound)",
}
DIFFUSION_METHODS = ("blinddps", "blinddps-uniform", "dps-oracle", "prox", "prox-oracle")
PROX_METHODS = ("prox", "prox-oracle")
# "published:<folder>" (Levin only): the kernels another method published for Levin's cases, in
# <levin>/published/<folder>/k_J_im_I_*.png, restored by the same proximal sampler as the
# blind row, so that its kernels and ours are judged through one restoration
PUBLISHED = "published:"


def is_published(method: str) -> bool:
    return method.startswith(PUBLISHED)


def uses_image_prior(method: str) -> bool:
    """Whether the method needs the bench's image prior (a diffusion method or a published row)."""
    return method in DIFFUSION_METHODS or is_published(method)


def describe(method: str) -> str:
    """The report's line for a method."""
    if is_published(method):
        return (f"the kernels published by {method.removeprefix(PUBLISHED)} for these cases, restored by the proximal "
                "sampler as `prox-oracle` restores the true kernel")
    return METHODS[method]
# The option names (RestoreConfig.options) of the settings that change a proximal sampler's result.
PROX_SETTINGS = ("prox_steps", "prox_lambda", "prox_t_start", "prox_renoise", "border", "noise", "autocast")
# The option names (RestoreConfig.options) of the settings that change a blind DPS run's result (resolved).
SOLVER_SETTINGS = ("sampler", "step_size", "zeta", "zeta_kernel", "kernel_sparsity", "kernel_centring")

# Measurement noise (std in [0, 1]) when none is given: the paper's 0.01 (0.02 in [-1, 1]);
# the Levin files are noise-free and are used as they are.
DEFAULT_NOISE = {"motion": 0.01, "gaussian": 0.01, "levin": 0.0, "turbulence": 0.01}


# Proximal settings the bench fixes itself (border: 'valid' for every task) or takes by its own option.
_BENCH_OWNED = ("border", "prox_search_prior")
# The proximal settings' declared types (a field that may be None, e.g. search_trust, takes "none").
_PROX_TYPES = {f.name: f.type for f in fields(ProxSettings)}


def parse_prox_option(text: str) -> tuple[str, object]:
    """'prox_search_refit=true' -> ('prox_search_refit', True): a proximal setting by its flat
    option name (`tasks.config.PROX_OPTIONS`, dashes allowed), the value read as the type of
    its default (a setting that may be off, None, also takes "none")."""
    name, sep, value = text.partition("=")
    name = name.strip().lstrip("-").replace("-", "_")
    if not sep or name not in PROX_OPTIONS or name in _BENCH_OWNED:
        allowed = ", ".join(n for n in PROX_OPTIONS if n not in _BENCH_OWNED)
        raise ValueError(f"--prox {text!r}: expected NAME=VALUE with NAME one of {allowed}")
    default = getattr(ProxSettings(), PROX_OPTIONS[name])
    value = value.strip()
    if isinstance(default, bool):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"--prox {text!r}: {name} takes true or false")
        return name, value.lower() in ("true", "1", "yes")
    if isinstance(default, tuple):  # the tuple settings, search_decays and search_fallback_decays: "1.1,1.032"
        try:
            return name, parse_decays(value)
        except ValueError as exc:
            raise ValueError(f"--prox {text!r}: {name}: {exc}") from None
    types = str(_PROX_TYPES[PROX_OPTIONS[name]])
    optional = "None" in types  # e.g. search_trust: float | None
    if default == "auto":  # e.g. search_refine: float | str | None, "auto" chosen by the task
        if value.lower() == "auto":
            return name, "auto"
        default = None
    kind = float if default is None else type(default)
    if optional and value.lower() == "none":
        return name, None
    try:
        return name, kind(value)
    except ValueError as exc:
        raise ValueError(f"--prox {text!r}: {name} takes a {kind.__name__}") from exc


def parse_methods(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """'blindDPS,pan-l0' -> ('blinddps', 'pan-l0'): case-insensitive, order kept, checked."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names = tuple(dict.fromkeys(s.strip().lower() for s in items if s.strip()))
    unknown = [n for n in names if n not in METHODS and not (is_published(n) and len(n) > len(PUBLISHED))]
    if unknown or not names:
        raise ValueError(f"unknown method(s) {', '.join(unknown) or '(none given)'}: "
                         f"choose from {', '.join(METHODS)} or {PUBLISHED}<folder> (Levin)")
    return names


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark: which measurements, which methods, where the results go.

    images: a folder of images (motion / gaussian tasks), or the Levin folder (sharp/,
        blurred/, kernels.npz); "levin09" means ../shared/data/bench/levin09.
    task: "motion" (random trajectory kernels, size kernel_size, `intensity`), "gaussian"
        (std `gaussian_std` at size kernel_size), "levin" (the 32 files as provided) or
        "turbulence" (`tasks.simulate(blur="turbulence")`: a random tilt field, then the
        Gaussian blur of std `gaussian_std` at size kernel_size).
    crop: centre crop side in pixels (0: whole image; ignored by the Levin task).
    kernel_size: size of the simulated kernels and of the blind estimate (BlindDPS methods);
        Pan-L0 gets it rounded up to odd. Levin: see `bench.data`.
    noise: Gaussian noise std in [0, 1]; None: DEFAULT_NOISE of the task.
    kernels: optional .npz ("kernels" (N, K, K)): kernel j blurs image j instead of a draw.
    limit: first N measurements only (0: all).
    search_prior: the image prior of the prox row's kernel search (the product's default;
        "": image_prior; see `ProxSettings.search_prior`).
    prox_options: the proximal rows' settings changed from the product's defaults, as
        (flat option name, value) pairs (`parse_prox_option`); part of their cache key.
    tilt_prior: the tilt prior of the blind methods on the turbulence task (name or file;
        "uniform": none, the tilt then follows the guidance gradient alone).
    padding: border model of the simulated blur and of the diffusion solvers (the Levin
        task always uses "circular", the convention of its files).
    seed: measurement i is drawn with seed `seed * 1_000_003 + i`, and so are the
        diffusion samplers on it (the same for every method: paired comparisons).
    figure_rows: how many measurements the figure shows.
    lpips_backbone, lpips_heads: local LPIPS weight files (torchvision AlexNet/VGG16 and the
        LPIPS v0.1 heads); None: $BLINDDPS_LPIPS_BACKBONE / $BLINDDPS_LPIPS_HEADS, else no
        LPIPS. LPIPS is scored from the cached output images when reporting, so these are no
        part of the cached items' settings: turning LPIPS on later reruns no method.
    """

    images: str
    out: str
    task: str = "motion"
    methods: tuple[str, ...] = tuple(METHODS)
    steps: int = 100
    crop: int = 256
    kernel_size: int = 64
    intensity: float = 0.5
    gaussian_std: float = 3.0
    noise: float | None = None
    kernels: str | None = None
    limit: int = 0
    image_prior: str = "natural-rgb"
    search_prior: str = ProxSettings.search_prior
    prox_options: tuple[tuple[str, object], ...] = ()
    kernel_prior: str = "kernel-64"
    tilt_prior: str = "tilt"
    padding: str = "reflect"
    seed: int = 0
    device: str = "cpu"
    figure_rows: int = 4
    lpips_backbone: str | None = None
    lpips_heads: str | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}: expected one of {', '.join(TASKS)}")
        object.__setattr__(self, "methods", parse_methods(self.methods))
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.kernel_size < 3:
            raise ValueError(f"kernel size must be at least 3, got {self.kernel_size}")
        if self.crop < 0 or self.limit < 0:
            raise ValueError("crop and limit must be >= 0")
        if self.noise is not None and self.noise < 0:
            raise ValueError(f"noise must be >= 0, got {self.noise}")
        object.__setattr__(self, "prox_options", tuple(
            parse_prox_option(o) if isinstance(o, str) else tuple(o) for o in self.prox_options))
        self.restore_config()  # a bad proximal setting fails here, not after the first rows
        if self.task != "levin" and any(map(is_published, self.methods)):
            raise ValueError(f"{PUBLISHED}<folder> rows are Levin's (task 'levin'), not {self.task!r}'s")
        if self.task == "turbulence" and self.kernels:
            raise ValueError("the turbulence task draws its own Gaussian kernels: a kernels file is not used")

    @property
    def noise_std(self) -> float:
        return DEFAULT_NOISE[self.task] if self.noise is None else float(self.noise)

    @property
    def solver_padding(self) -> str:
        return "circular" if self.task == "levin" else self.padding

    @property
    def lpips_files(self) -> tuple[str | None, str | None]:
        """(backbone, heads): the fields, else the environment variables, else None."""
        return lpips_paths(self.lpips_backbone, self.lpips_heads)

    def measurement_settings(self) -> dict:
        """Everything that changes the measurements (a cached result must match it)."""
        keys = ("task", "images", "crop", "kernel_size", "noise_std", "kernels", "padding", "seed")
        out = {k: getattr(self, k) for k in keys}
        if self.task == "motion" and not self.kernels:
            out["intensity"] = self.intensity
        if self.task in ("gaussian", "turbulence"):
            out["gaussian_std"] = self.gaussian_std
        return out

    def method_settings(self, method: str) -> dict:
        """Everything that changes one method's result besides the measurement: the steps,
        the priors' CONTENT (a name like "natural-rgb" stays when its weights are retrained)
        and the solver's defaults (a new default guidance rule must not reuse old results)."""
        if is_published(method):  # the published kernels restored as the true ones are
            return {**self.method_settings("prox-oracle"), "published": method.removeprefix(PUBLISHED)}
        if method not in DIFFUSION_METHODS:
            return {}
        priors = {"image_prior": self.image_prior}
        if method == "blinddps":
            priors["kernel_prior"] = self.kernel_prior
        blind_turbulence = self.task == "turbulence" and method != "dps-oracle"
        if blind_turbulence:
            priors["tilt_prior"] = self.tilt_prior
        if method in PROX_METHODS:
            rc = self.restore_config().resolved(self.task == "turbulence")  # e.g. the refit by task
            options = rc.options()  # the keys are the command line's option names
            out = {"image_prior": prior_fingerprint(self.image_prior), "solver": {k: options[k] for k in PROX_SETTINGS},
                   "sampler": "prox-v1"}
            if method == "prox" and rc.prox.search != "none":  # the blind row's kernel search
                # every KernelSearchConfig field, so that a new search default is a new cache key
                out["search"] = {**kernel_search_config(rc, bool(rc.autocast)).to_dict(), "lambda": rc.prox.search_lambda}
                if rc.prox.search_views > 1 and rc.prox.search_trust is not None:  # else always search_lambda
                    out["search"]["trust"] = rc.prox.search_trust
                if rc.prox.search_views > 1 and rc.prox.search_fallback > 0:  # a second round at Pan's floor
                    out["search"]["fallback"] = rc.prox.search_fallback
                    out["search"]["fallback_decays"] = list(rc.prox.search_fallback_decays)
                if rc.prox.search_consensus is not None and len(rc.prox.search_decays) > 1:  # lambda by consensus
                    out["search"]["consensus"] = [rc.prox.search_consensus, rc.prox.search_consensus_lambda]
                if rc.prox.search_refine is not None:  # the kernel refit to its restoration
                    out["search"]["refine"] = [rc.prox.search_refine, rc.prox.search_refine_iters,
                                               rc.prox.search_refine_rounds]
                if rc.prox.search_pick_steps:  # candidates ranked by short restorations
                    out["search"]["pick_steps"] = rc.prox.search_pick_steps
                if len(rc.prox.search_decays) > 1:  # several searches, the best-fitting restoration kept
                    out["search"]["decays"] = list(rc.prox.search_decays)
                if self.search_prior:  # "": the image prior, already in the key
                    out["search"]["prior"] = prior_fingerprint(self.search_prior)
                if rc.prox.kernel_prior_t > 0:
                    out["kernel_prior"] = prior_fingerprint(self.kernel_prior)
            return out
        out = {"steps": self.steps, **{k: prior_fingerprint(v) for k, v in priors.items()}}
        if method != "dps-oracle":
            options = RestoreConfig.from_options(steps=self.steps).resolved().options()
            keys = (*SOLVER_SETTINGS, "zeta_tilt") if blind_turbulence else SOLVER_SETTINGS
            out["solver"] = {k: options[k] for k in keys}
        return out

    def restore_config(self, **changes) -> RestoreConfig:
        """The task settings of the proximal rows: 'valid' borders for every task (no border
        model assumed, so also right for Levin's circular files, whose 255 px sides no network
        grid divides), the noise level as simulated."""
        return RestoreConfig.from_options(image_prior=self.image_prior, prox_search_prior=self.search_prior,
                                          kernel_prior=self.kernel_prior, border="valid", **dict(self.prox_options),
                                          noise=self.noise_std, max_size=0, device=str(self.device), **changes)

    def replace(self, **changes) -> "BenchConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["noise_std"] = self.noise_std
        return d
