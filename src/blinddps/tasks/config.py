"""Typed settings of the restoration tasks (saved as JSON beside every output)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from ..priors.bundle import kernel_prior_size
from ..solvers.kernel_search import LATENTS


@dataclass(frozen=True)
class DPSSettings:
    """BlindDPS / DPS (method "dps", Chung et al.): guidance gradients through every prior.

    steps: respaced diffusion steps, at least 1 (default 100).
    sampler: "ddpm" (default) or "ddim"; the priors are respaced to "N" or "ddimN" (`respacing`).
    step_size: the guidance step rule: "sqrt_abar" (default, the released code) or "constant"
        (the paper).
    zeta: the guidance scale, > 0; None (default): `default_zeta(steps)` = 500 / steps (at 50
        steps zeta 10 beat the other scales tried on training photos: EXPERIMENTS.md section 1).
    zeta_kernel / zeta_tilt: factors on the kernel's and the tilt's steps (default 1).
    kernel_sparsity: weight of the l1 prior on the unnormalised kernel, >= 0 (0: off; default
        1.0, which raised the kernel MNC with the bundled kernel prior).
    kernel_centring: weight of the penalty on the kernel's centre of mass away from its origin
        (pixels^2), >= 0 (0: off; default 0.1, which keeps the kernel off the border: MNC 0.21
        -> 0.69 and 13.1 -> 17.2 dB on one crop with the bundled priors).
    padding: the blur's boundary: "reflect" (default, photos), "circular" or "zeros" (the paper).
    """

    steps: int = 100
    sampler: str = "ddpm"
    step_size: str = "sqrt_abar"
    zeta: float | None = None
    zeta_kernel: float = 1.0
    zeta_tilt: float = 1.0
    kernel_sparsity: float = 1.0
    kernel_centring: float = 0.1
    padding: str = "reflect"

    def __post_init__(self) -> None:
        _check({"dps steps must be at least 1": self.steps >= 1,
                "dps sampler must be 'ddpm' or 'ddim'": self.sampler in ("ddpm", "ddim"),
                "zeta must be positive": self.zeta is None or self.zeta > 0})

    @property
    def respacing(self) -> str:
        """The priors' respacing for this sampler: "N" (DDPM) or "ddimN"."""
        return f"ddim{self.steps}" if self.sampler == "ddim" else str(self.steps)


@dataclass(frozen=True)
class ProxSettings:
    """The proximal sampler (method "prox"): priors as denoisers, closed-form data steps.

    steps, lam, t_start, renoise: network evaluations (>= 1, default 20), data weight lambda
        (> 0, default 1.5), first timestep (0..999, default 250) and share of fresh noise per
        step ([0, 1], default 1.0); see `solvers.proximal.ProximalConfig`. The defaults measured
        best on training photos with the true kernel (EXPERIMENTS.md section 2).
    border: "valid" (default: the blur only where the kernel fits, as a camera makes it; the
        image is estimated on a larger grid) or "circular" (periodic photos, e.g. Levin's files).
    search: how the blind sampler finds the kernel (`KERNEL_SEARCHES`): "l0" (default: Pan-L0's
        coarse-to-fine loop on the photo denoised by `search_prior`, without its intensity
        term), "prox", "prox-l0" (`KernelSearchConfig.latent`) or "none"; the image is then
        restored with that kernel (EXPERIMENTS.md section 3).
    search_steps, kernel_prior_t, search_denoise: `KernelSearchConfig`'s latent_steps (>= 1,
        default 6), kernel_prior_t (0..999, default 0: the kernel prior unused; the kernel prior
        is the task's `kernel_prior`) and denoise (default True).
    search_refit: search again at the size the found kernel fills when it is much smaller than
        `kernel_size` (`KernelSearchConfig.refit`); off by default: it raised the kernels' MNC,
        not the photos' PSNR, on the benchmarks (EXPERIMENTS.md section 3).
    search_views: 1-4 views of the photo searched, their kernels merged by geometric mean
        (`KernelSearchConfig.views`). Default 2 (the photo and its transpose): +0.28 ± 0.13 dB
        aligned over 1 view on 48 training photos, twice the search time (EXPERIMENTS.md
        section 4).
    search_prior: the image prior (bundled name or file) that denoises the photo for the search
        and restores its latent images; "": the task's `image_prior`. Default `natural-rgb-3`:
        the search is chaotic in its input, and a better-denoising `natural-rgb` as its denoiser
        lowered the blind benchmarks (Kodak24 -0.4 dB, CBSD68 -0.9; EXPERIMENTS.md section 5).
    search_lambda: lambda of the restoration with a found kernel (in place of `lam`), > 0.
        Default 12: a found kernel is never exact, and more weight on the prior forgives its
        errors (EXPERIMENTS.md section 3).
    search_trust: None (default, off) or a level in [0, 1]: a kernel whose views agree at least
        this well (`KernelSearch.agreement`, recorded as "search_agreement") is restored at
        `lam`. Off: 0.85 gained on training photos but cost Levin 0.94 dB (EXPERIMENTS.md
        section 4).
    search_decays: Pan's lambda decays (`KernelSearchConfig.lambda_decay`, each >= 1), one search
        per value; each kernel is restored and the one whose restoration fits the photo best
        (`SolverResult.loss`) kept. Default (1.1, 1.032, 1.05): +0.67 ± 0.24 dB aligned over 1.1
        alone on 48 training photos, about 3x the time (EXPERIMENTS.md section 4).
    search_lambda_min: the floor of Pan's latent weights for kernels over 48 px
        (`KernelSearchConfig.large_lambda_min`), > 0. Default 1e-3 (Pan's 1e-4): the sharper
        latent stops most small-kernel collapses, +0.96 ± 0.46 dB aligned on 24 held-out
        training photos (EXPERIMENTS.md section 4).
    search_fallback: in [0, 1], 0: off. When the kept kernel's views agree less than this, the
        kernel is searched again at Pan's floor 1e-4, once per `search_fallback_decays`, and the
        best-fitting kept. Default 0.6 (EXPERIMENTS.md section 4).
    search_fallback_decays: the fallback's decays, as `search_decays` (default the same three;
        1.1 alone is cheaper but lost on 7 of 8 benchmark photos that fell back: EXPERIMENTS.md
        section 4).
    search_pick_steps: >= 0. 0: every candidate kernel restored in full, the best-fitting kept;
        N: candidates ranked by N-step restorations, the kept one restored in full. Default 4:
        44 s per photo instead of 63 for -0.08 dB on training photos (EXPERIMENTS.md section 4).
    search_consensus: None (off) or a level in [0, 1] (default 0.9): when the kept kernel's mean
        MNC to the other kernels of its round (recorded as "search_consensus") reaches it, the
        photo is restored at `search_consensus_lambda` instead of `search_lambda`; a round of
        one search has no consensus. +0.36 ± 0.10 dB aligned on training photos (EXPERIMENTS.md
        section 4).
    search_consensus_lambda: that restoration's lambda, > 0 (default 3).
    search_refine: "auto" (default: `REFINE_AUTO`, 0.1 for deblurring, off for turbulence), None
        (off) or a share in (0, 1]: the kept kernel is refit to its restoration on that share of
        its strongest gradients (`solvers.kernel_search.refine_kernel`) and the photo restored
        again, `search_refine_rounds` times. Deblurring +0.45 ± 0.10 dB aligned on training
        photos; turbulence -0.22 (EXPERIMENTS.md section 4).
    search_refine_iters: the refit's iterations from the found kernel, >= 1 (default 50; more
        drift from it as the restoration's errors enter the fit).
    search_refine_rounds: refit-and-restore rounds, >= 1 (default 1; each one full restoration).
    tile, tile_overlap: on a grid larger than `tile` pixels the image prior runs on tiles of
        that side overlapping by `tile_overlap` pixels (`solvers.tiling`; bounded memory on large
        photos); 0: always on the whole grid. Default 768 / 32: photos up to about 700 px run whole;
        on a 4000x3000 photo 768 px tiles ran faster than 1024 (11 min 44 s against 12 min 10 s)
        with less memory (6.00 against 6.16 GB); an overlap of 32 instead of 64 sends about 8 %
        fewer pixels through the network, and on 512 px photos cut into 256 px tiles it gave the
        same PSNR as 64 (+0.078 / +0.083 dB over the whole grid against +0.077 / +0.088) with
        no seam in the difference (EXPERIMENTS.md section 6).
    carry_refit: a blind photo more than twice `RestoreConfig.kernel_view`: its kernel, found
        on the view, refit on the photo's most textured region at each scale up to the photo's
        own (`tasks.carry`; default True, with search_refine's settings) instead of only
        resampled (False).
    """

    steps: int = 20
    lam: float = 1.5
    t_start: int = 250
    renoise: float = 1.0
    border: str = "valid"
    search: str = "l0"
    search_steps: int = 6
    kernel_prior_t: int = 0
    search_denoise: bool = True
    search_refit: bool = False
    search_lambda: float = 12.0
    search_views: int = 2
    search_prior: str = "natural-rgb-3"
    search_trust: float | None = None
    search_decays: tuple[float, ...] = (1.1, 1.032, 1.05)
    search_lambda_min: float = 1e-3
    search_fallback: float = 0.6
    search_pick_steps: int = 4
    search_fallback_decays: tuple[float, ...] = (1.1, 1.032, 1.05)
    search_consensus: float | None = 0.9
    search_consensus_lambda: float = 3.0
    search_refine: float | str | None = "auto"
    search_refine_iters: int = 50
    search_refine_rounds: int = 1
    tile: int = 768
    tile_overlap: int = 32
    carry_refit: bool = True

    def __post_init__(self) -> None:
        for name in ("search_decays", "search_fallback_decays"):  # a list from JSON
            object.__setattr__(self, name, tuple(float(d) for d in getattr(self, name)))
        _check({"prox steps must be at least 1": self.steps >= 1,
                "prox t_start must be in 0..999": 0 <= self.t_start <= 999,
                "prox lambda must be positive": self.lam > 0,
                "prox tile must be 0 or at least 64, tile_overlap in [0, tile / 2)": (
                    (self.tile == 0 or self.tile >= 64) and self.tile_overlap >= 0
                    and (self.tile == 0 or self.tile_overlap < self.tile / 2)),
                "prox renoise must be in [0, 1]": 0 <= self.renoise <= 1,
                f"prox border must be 'valid' or 'circular', got {self.border!r}": self.border in ("valid", "circular"),
                f"prox search must be one of {', '.join(KERNEL_SEARCHES)}": self.search in KERNEL_SEARCHES,
                "prox search_steps must be at least 1": self.search_steps >= 1,
                "prox search_trust must be in [0, 1]": self.search_trust is None or 0 <= self.search_trust <= 1,
                "prox search_decays must be one or more values >= 1": (
                    len(self.search_decays) >= 1 and all(d >= 1 for d in self.search_decays)),
                "prox search_fallback_decays must be one or more values >= 1": (
                    len(self.search_fallback_decays) >= 1 and all(d >= 1 for d in self.search_fallback_decays)),
                "prox search_lambda must be positive": self.search_lambda > 0,
                "prox search_consensus must be in [0, 1]": (
                    self.search_consensus is None or 0 <= self.search_consensus <= 1),
                "prox search_consensus_lambda must be positive": self.search_consensus_lambda > 0,
                "prox search_refine must be 'auto', None or in (0, 1]": (
                    self.search_refine in (None, "auto") or (not isinstance(self.search_refine, str)
                                                             and 0 < self.search_refine <= 1)),
                "prox search_refine_iters must be at least 1": self.search_refine_iters >= 1,
                "prox search_refine_rounds must be at least 1": self.search_refine_rounds >= 1,
                "prox search_lambda_min must be positive": self.search_lambda_min > 0,
                "prox search_fallback must be in [0, 1]": 0 <= self.search_fallback <= 1,
                "prox search_pick_steps must be 0 or more": self.search_pick_steps >= 0,
                "prox search_views must be 1, 2, 3 or 4": self.search_views in (1, 2, 3, 4),
                "prox kernel_prior_t must be in 0..999": 0 <= self.kernel_prior_t <= 999})


@dataclass(frozen=True)
class RestoreConfig:
    """The task's settings (priors, kernel size, resolution, samples, device) and one
    settings block per sampler; `method` says which sampler runs.

    image_prior, kernel_prior, tilt_prior: bundled prior names or prior files (defaults
        "natural-rgb", "kernel-64", "tilt").
    kernel_size: side of the unknown kernel in pixels; None (default): the kernel prior's
        training size (`priors.bundle.kernel_prior_size`: 32 for kernel-32, 64 for kernel-64
        and the paper's checkpoint).
    max_size: 0 (default): photos are restored and written at their own size; N: a preview,
        photos whose long side exceeds N processed and written at that size (down-scaled).
    kernel_view: a blind photo whose long side exceeds it gets its kernel found on a view
        down-scaled to this long side (`kernel_size` is the kernel's side on that view), the
        kernel then carried to the photo's size and the photo restored there (default 512;
        0: searched at full size). `method` "dps" works at most at this size.
    samples: posterior samples, >= 1 (default 1); with several the mean image and a per-pixel
        std are written.
    seed: the random seed (default 0). record_every: keep the x0 estimates every this many
        steps (default 0: none). device: the torch device (default "cpu").
    autocast: bf16 autocast of the network forward passes; None (default): on for the proximal
        sampler where the hardware has native bf16 (on training photos the same PSNR in 13 s
        instead of 20 on a 2-core CPU: EXPERIMENTS.md section 2), off for DPS (not measured).
    noise: measurement noise std in [0, 1] for the proximal sampler; None (default): estimated
        from the photo. DPS does not use it.
    method: the sampler (`SAMPLERS`): "dps" (BlindDPS, the paper's algorithm: a forward and a
        backward pass of every prior per step; settings `dps`), "prox" (the proximal sampler:
        the image prior as a denoiser, the data term solved in closed form; settings `prox`) or
        "auto" (default): "prox" for every task, blind or with a known kernel (turbulence as
        blind deblurring of the displaced photo; the tilt is not estimated, see
        `tasks.restore`). With the bundled priors the proximal sampler beat BlindDPS on every
        benchmark (EXPERIMENTS.md sections 1-2, benchmarks/results/RESULTS.md); "dps" is for
        the paper's checkpoints on a GPU.

    The command line's flat options (--steps, --prox-steps, ...) map onto these fields by
    `from_options`, the inverse of `options`.
    """

    image_prior: str = "natural-rgb"
    kernel_prior: str = "kernel-64"
    tilt_prior: str = "tilt"
    kernel_size: int | None = None
    max_size: int = 0
    kernel_view: int = 512
    samples: int = 1
    seed: int = 0
    record_every: int = 0
    device: str = "cpu"
    autocast: bool | None = None
    noise: float | None = None
    method: str = "auto"
    dps: DPSSettings = field(default_factory=DPSSettings)
    prox: ProxSettings = field(default_factory=ProxSettings)

    def __post_init__(self) -> None:
        _check({f"unknown method {self.method!r}: expected auto or one of {', '.join(SAMPLERS)}":
                self.method in ("auto", *SAMPLERS),
                "noise must be >= 0": self.noise is None or self.noise >= 0,
                "samples must be at least 1": self.samples >= 1,
                "max_size and kernel_view must be 0 or positive": self.max_size >= 0 and self.kernel_view >= 0})

    def working_bound(self) -> int:
        """The long side a photo is down-scaled to before anything runs (0: none): max_size,
        and for the DPS sampler, which works at one size throughout, kernel_view too."""
        if self.sampler_name() == "prox":
            return self.max_size
        bounds = [b for b in (self.max_size, self.kernel_view) if b]
        return min(bounds) if bounds else 0

    def sampler_name(self) -> str:
        """The sampler that runs: `method`, with "auto" resolved to "prox" (every task)."""
        return "prox" if self.method == "auto" else self.method

    @property
    def steps(self) -> int:
        """The steps of the sampler that runs (network evaluations per prior for prox)."""
        return self.prox.steps if self.sampler_name() == "prox" else self.dps.steps

    def replace(self, **changes) -> "RestoreConfig":
        """A copy with these fields changed (flat option names too: see `from_options`)."""
        return RestoreConfig.from_options(**{**self.options(), **changes})

    def to_dict(self) -> dict:
        """The fields as JSON has them (tuples as lists), nested per sampler."""
        return _json_ready(asdict(self))

    @classmethod
    def from_dict(cls, data: dict) -> "RestoreConfig":
        """The inverse of `to_dict` (a saved config's "config" record)."""
        data = dict(data)
        dps, prox = DPSSettings(**data.pop("dps", {})), ProxSettings(**data.pop("prox", {}))
        return cls(**data, dps=dps, prox=prox)

    def options(self) -> dict:
        """The flat option names of the command line -> values (the inverse of `from_options`)."""
        task = {k: v for k, v in asdict(self).items() if k not in ("dps", "prox")}
        dps = {name: getattr(self.dps, attr) for name, attr in DPS_OPTIONS.items()}
        prox = {name: getattr(self.prox, attr) for name, attr in PROX_OPTIONS.items()}
        return {**task, **dps, **prox}

    @classmethod
    def from_options(cls, **options) -> "RestoreConfig":
        """A config from the command line's flat names: the task's fields as they are, DPS's
        as `DPS_OPTIONS` (--steps, --sampler, --zeta, ...), the proximal sampler's as
        `PROX_OPTIONS` (--prox-steps, --prox-lambda, --border, ...); a misspelt name is a
        TypeError, as for the dataclass itself."""
        dps = {attr: options.pop(name) for name, attr in DPS_OPTIONS.items() if name in options}
        prox = {attr: options.pop(name) for name, attr in PROX_OPTIONS.items() if name in options}
        return cls(**options, dps=DPSSettings(**dps), prox=ProxSettings(**prox))

    def resolved(self, turbulence: bool = False) -> "RestoreConfig":
        """A copy with every automatic value filled in (what the outputs' JSON records), for
        deblurring or for turbulence (`REFINE_AUTO`)."""
        zeta = default_zeta(self.dps.steps) if self.dps.zeta is None else self.dps.zeta
        size = kernel_prior_size(self.kernel_prior) if self.kernel_size is None else self.kernel_size
        refine = REFINE_AUTO[turbulence] if self.prox.search_refine == "auto" else self.prox.search_refine
        return replace(self, kernel_size=size, dps=replace(self.dps, zeta=zeta),
                       prox=replace(self.prox, search_refine=refine))


def parse_decays(text: str) -> tuple[float, ...]:
    """'1.1,1.032' -> (1.1, 1.032): `ProxSettings.search_decays` written as text (the command
    line's and the bench's form); ValueError unless numbers >= 1 separated by commas."""
    try:
        decays = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"expected numbers separated by commas, got {text!r}") from None
    if not all(d >= 1 for d in decays):
        raise ValueError(f"each decay must be >= 1, got {text!r}")
    return decays


def _json_ready(value):
    """Tuples -> lists, inside dicts and lists too (what json.loads gives back)."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return value


def _check(rules: dict[str, bool]) -> None:
    """ValueError with the message of the first rule that fails."""
    for message, ok in rules.items():
        if not ok:
            raise ValueError(message)


# The command line's flat option names of each sampler's settings -> the settings' fields.
DPS_OPTIONS = {"steps": "steps", "sampler": "sampler", "step_size": "step_size", "zeta": "zeta",
               "zeta_kernel": "zeta_kernel", "zeta_tilt": "zeta_tilt", "kernel_sparsity": "kernel_sparsity",
               "kernel_centring": "kernel_centring", "padding": "padding"}
PROX_OPTIONS = {"prox_steps": "steps", "prox_lambda": "lam", "prox_t_start": "t_start", "prox_renoise": "renoise",
                "border": "border", "prox_search": "search", "prox_search_steps": "search_steps",
                "prox_kernel_prior_t": "kernel_prior_t", "prox_search_denoise": "search_denoise",
                "prox_search_refit": "search_refit", "prox_search_lambda": "search_lambda",
                "prox_search_views": "search_views", "prox_search_prior": "search_prior",
                "prox_search_trust": "search_trust", "prox_search_decays": "search_decays",
                "prox_search_lambda_min": "search_lambda_min", "prox_search_fallback": "search_fallback",
                "prox_search_pick_steps": "search_pick_steps", "prox_search_fallback_decays": "search_fallback_decays",
                "prox_search_consensus": "search_consensus", "prox_search_consensus_lambda": "search_consensus_lambda",
                "prox_search_refine": "search_refine", "prox_search_refine_iters": "search_refine_iters",
                "prox_search_refine_rounds": "search_refine_rounds", "prox_carry_refit": "carry_refit"}


# How the proximal sampler finds the kernel when it is blind: "none", its own kernel M-step from
# the delta kernel; otherwise `solvers.kernel_search` first (Pan-L0's coarse-to-fine loop with
# this latent image: "l0" Pan's own, "prox" / "prox-l0" the image prior's restoration), then the
# image restored with that kernel.
KERNEL_SEARCHES = ("none", *LATENTS)
# ProxSettings.search_refine "auto", by task (turbulence?): the refit helps deblurring and hurts
# turbulence (EXPERIMENTS.md section 4).
REFINE_AUTO: dict[bool, float | None] = {False: 0.1, True: None}

# The samplers by name: what `method` selects (the CLI's --method, the bench's rows).
SAMPLERS = {
    "dps": "BlindDPS / DPS (Chung et al.): guidance gradients through every prior (DPSSettings)",
    "prox": "proximal sampler: priors as denoisers, closed-form data steps (ProxSettings)",
}


def default_zeta(steps: int) -> float:
    """Guidance scale for a respaced sampler: 500 / steps (0.5 x the released code's total)."""
    return 500.0 / steps
