"""Typed settings of the restoration tasks (saved as JSON beside every output)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from ..priors.bundle import kernel_prior_size
from ..solvers.kernel_search import LATENTS


@dataclass(frozen=True)
class DPSSettings:
    """BlindDPS / DPS (method "dps", Chung et al.): guidance gradients through every prior.

    steps: respaced diffusion steps ("N" or "ddimN" semantics via `sampler`, "ddpm" or "ddim").
    step_size / zeta: guidance step rule ("sqrt_abar": the released code; "constant": the paper)
        and its scale.  zeta None means `default_zeta(steps)` = 500 / steps: the released code
        runs zeta = 1 over 1000 steps, and fewer steps need proportionally larger ones (at 50
        steps zeta 10 beat 1, 3 and 20 with our priors; see docs/priors.md).
    zeta_kernel / zeta_tilt: extra factors on the operator unknowns' steps.
    kernel_sparsity: weight of the l1 prior on the unnormalised kernel (0 disables it; 1.0 by
        default: with the bundled kernel prior it raised the kernel MNC in our tests).
    kernel_centring: weight of the penalty on the kernel's centre of mass away from its
        origin (pixels^2; 0 disables it).  0.1 by default: in paired runs with the bundled
        priors it kept the kernel from drifting to the border (MNC 0.21 -> 0.69 and PSNR
        13.1 -> 17.2 dB on one crop; 19.8 -> 22.4 dB on another).
    padding: the blur's boundary ("reflect" suits photos; "circular"; "zeros" as the paper).
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

    steps, lam, t_start, renoise: network evaluations, data weight lambda, first timestep and
        share of fresh noise (see solvers.proximal.ProximalConfig).  Defaults chosen on
        training photos with the true kernel (benchmarks/results/sweep-prox-bsds500-3*.md:
        lambda 1.5 and t_start 250 beat lambda 0.5-16 and t_start 150-500 by 0.1-1.8 dB;
        renoise 1.0 beat 0.9 by 0.4 dB and 0.5 by 1.4 dB).
    border: the border model: "valid" (the blur only where the kernel fits, as a camera makes
        it: the image is estimated on a larger grid and no border is assumed) or "circular"
        (periodic photos, e.g. the Levin files).
    search, search_steps, kernel_prior_t, search_denoise: how the blind sampler finds the
        kernel (KERNEL_SEARCHES below; `solvers.kernel_search.KernelSearchConfig`'s latent,
        latent_steps, kernel_prior_t and denoise, the kernel prior being the task's
        `kernel_prior`).  Default: "l0" on the photo denoised by `search_prior` (Pan-L0's
        coarse-to-fine loop without its intensity term), then the image restored with that
        kernel (benchmarks/results/blind-kernel-trials.md).
    search_refit: search again at the size the found kernel fills, when it is much smaller
        than the kernel size asked for (`KernelSearchConfig.refit`; off by default: better
        kernels by MNC, not better photos, in the benchmarks).
    search_views: how many views of the photo the search runs on, their kernels merged by
        their geometric mean (`KernelSearchConfig.views`: 1 the photo, 2 also its transpose, 4
        also both rotated by 180 degrees). On 48 training photos with 64 px blur, 2 views
        against 1: +0.28 ± 0.13 dB aligned (33 photos up, 9 down); it doubles the search's
        time (benchmarks/results/blind-kernel-trials.md).
    search_prior: the image prior (bundled name or file) that denoises the photo for the search
        and restores its latent images; "" : the task's `image_prior`. The default is the
        third training stage of `natural-rgb`, the prior the search was tuned with: the search
        is chaotic in its input, and with the fourth stage (a better denoiser) as the search's
        denoiser the blind benchmarks fell (Kodak24 -0.4 dB, CBSD68 -0.9) while the fourth
        stage as the restoring prior gained everywhere (+0.04 to +0.12 dB blind, +0.24 with
        the true kernel), and so did the fifth, the bundled `natural-rgb` now (+0.01 to +0.04
        blind, +0.08 with the true kernel; benchmarks/results/README.md).
    search_lambda: lambda of that restoration (in place of lam): a found kernel is never
        exact, and more weight on the prior forgives its errors (on 8 training photos with
        found kernels: with 32 px blur 3-12 within 0.2 dB of each other and above 1.5; with
        64 px blur 12 and 24 within 0.1 dB, 1.5 and 6 several dB under;
        benchmarks/results/blind-kernel-trials.md).
    search_trust: None (the default) or a level in [0, 1]: with several views, a found kernel
        whose views agree at least this well (their kernels' MNC before the merge,
        `KernelSearch.agreement`, recorded as "search_agreement") is trusted like a known one:
        the image is restored at `lam`, not `search_lambda`. Chosen on 48 training photos with
        64 px blur, 0.85 gained +0.37 ± 0.10 dB aligned there (17 photos up, 10 down), but on
        the benchmarks Levin lost 0.94 dB (noise-free camera shake: its views agree while its
        kernels are not exact), Kodak24 gained +0.06, CBSD68 +0.17, turbulence +0.22; so it is
        off by default (benchmarks/results/blind-kernel-trials.md, sixth session).
    search_decays: one search per value of Pan's lambda decay (`KernelSearchConfig.lambda_decay`),
        each kernel restored (in `search_pick_steps` steps), and the kernel whose restoration
        fits the photo best kept (the least data misfit, `SolverResult.loss`). The
        coarse-to-fine search is chaotic: another decay finds another kernel, and a wrong
        kernel rarely explains the photo as well as the right one. Costs one search and one
        (short) restoration per value. Default (Pan's 1.1, 1.032 and 1.05): on 48 training photos with 64 px blur +0.67 ± 0.24 dB aligned against 1.1
        alone (22 photos up, 4 down, the worst -0.98; the rule was fixed on the first 24, +0.65,
        and held on the next 24, +0.68), kernel MNC 0.712 -> 0.742; about 3x the time
        (benchmarks/results/blind-kernel-trials.md, sixth session).
    search_lambda_min: the floor of Pan's latent weights in the search of kernels over 48 px
        (`KernelSearchConfig.large_lambda_min`; Pan's published 1e-4). Default 1e-3: the
        latent stays sharp, which stops most of the small-kernel collapse; chosen on 24
        training photos with 64 px blur (three searches, least-misfit pick: 20.41 -> 21.86 dB
        aligned against one search at 1e-4), then on 24 more through the product against the
        shipped 1e-4: +0.96 ± 0.46 dB aligned (14 photos up, 8 down), kernel MNC 0.59 -> 0.78
        (benchmarks/results/blind-kernel-trials.md, seventh session).
    search_fallback: in [0, 1]; 0 = off. When the kept kernel's two views agree less than
        this (`KernelSearch.agreement`), the kernel is searched again at Pan's floor (1e-4),
        once per value of `search_fallback_decays`, and the best-fitting of those is kept: the
        photos the higher floor fails on are the ones whose views disagree. 0.6 was read off
        24 training photos (numbers 72-95: the two photos the floor 1e-3 broke had views
        agreeing 0.30 and 0.55, all but one other 0.77 or more) and then checked on 24 more
        (96-119): 2 photos fell back, +3.83 and +0.36 dB, +0.17 ± 0.16 dB over the floor
        alone (benchmarks/results/blind-kernel-trials.md, seventh session).
    search_fallback_decays: the lambda decays of the fallback's searches (like
        `search_decays`; default the same three). Pan's 1.1 alone makes a photo that falls
        back cost 4 searches instead of 6 (one core: 40 s instead of 57-77 at 256 px). On
        training photos it measured the same (7 photos that fell back, numbers 144-233: 19.13
        against 19.19 dB on the 4 of 184-233), but on the benchmarks the photos that fell back
        lost with it (Kodak24: 3 photos, -0.34 to -1.81 dB; CBSD68: 4 of 5, up to -2.63), so
        it is not the default (benchmarks/candidate_trials.py, ninth session).
    search_pick_steps: 0 (every candidate kernel restored in full, the best-fitting
        restoration kept) or a step count under `steps`: the candidates are restored in this
        many steps only, ranked by those restorations' misfit (the fallback decided on that
        pick), and the kept kernel is restored again in full: one full restoration per photo
        instead of one per candidate. Default 4: on 24 training photos with 64 px blur
        (numbers 120-143) 44 s per photo instead of 63 (one thread), 22.55 dB aligned
        against 22.63 (-0.08), kernel MNC 0.784 against 0.792 (benchmarks/pick_trials.py,
        benchmarks/results/blind-kernel-trials.md, eighth session).
    search_consensus: None (off) or a level in [0, 1]: when the kept kernel's mean MNC to the
        other kernels searched in its round (one per decay; recorded as "search_consensus")
        is at least this, the photo is restored at `search_consensus_lambda` instead of
        `search_lambda`: searches with other decays that land on the same kernel make it
        more likely the blur, and a smaller lambda then buys sharpness (the large
        `search_lambda` buys robustness to wrong kernels). A round of one search (a fallback
        with one decay) has no consensus. Default 0.9 with lambda 3: on 24 training photos
        (numbers 144-167, 64 px blur, noise 0.01) +0.36 ± 0.10 dB aligned against lambda 12
        everywhere (11 photos up, 2 down, the worst -0.22; the consensus correlates better with
        the kernel's MNC to the truth than the views' agreement: 0.31 against 0.18), and on 16
        more without noise and with 32 px blur (numbers 168-183) +0.65 ± 0.19 (10 up, 2
        down). Chosen among 36 such rules on the first set, so the gain there is optimistic
        (benchmarks/candidate_trials.py, benchmarks/results/blind-kernel-trials.md, ninth
        session).
    search_consensus_lambda: that restoration's lambda.
    search_refine: "auto" (the default: `REFINE_AUTO` of the task, 0.1 for deblurring, off for
        turbulence), None (off) or a share in (0, 1]: the kept kernel is refit to its
        restoration (`solvers.kernel_search.refine_kernel`: `search_refine_iters` iterations of
        constrained least squares from the found kernel on that share of the restoration's
        strongest gradients, then Pan's final threshold) and the photo restored again with
        it, `search_refine_rounds` times. The search fits its kernel to Pan's L0 latent images
        of the coarse-to-fine levels; the prior's restoration is a better image of the photo.
        Default 0.1, 50 iterations, one round: on 24 training photos (numbers 144-167, 64 px
        blur, noise 0.01) +0.45 ± 0.10 dB aligned (21 photos up, 2 down, the worst -0.14), on 24
        fresh ones (234-257) +0.31 ± 0.09 (21 up, 1 down, the worst -0.11), and on 16 without
        noise with 32 px blur (168-183) +0.25 ± 0.09 (the worst -0.18). Share 0.05 was first
        adopted (+0.51, +0.37 on the first two sets), then failed the Levin benchmark (28.04 dB
        aligned, under Pan-L0's 28.18) and lost up to 1.54 dB on the noise-free set (+0.14 in
        all), where 0.1 loses at most 0.18; over the three sets the two tie on the mean. A
        second round added +0.19 and +0.06 dB for a restoration more, so one round
        (benchmarks/refine_trials.py, benchmarks/results/blind-kernel-trials.md, tenth session).
        Turbulence is off: on 16 training photos (258-273) the refit lost 0.22 ± 0.03 dB (0 of
        16 up) and on Kodak24's turbulence benchmark 0.20: the found Gaussian kernel is already
        good (MNC 0.96) and the refit fits part of the photo's displacement as blur.
    search_refine_iters: the refit's iterations (from the found kernel: 200 iterations drift
        from it, MNC to the truth 0.79 -> 0.76, as the restoration's errors enter the fit).
    search_refine_rounds: refit-and-restore rounds (each one full restoration more).
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

    def __post_init__(self) -> None:
        for name in ("search_decays", "search_fallback_decays"):  # a list from JSON
            object.__setattr__(self, name, tuple(float(d) for d in getattr(self, name)))
        _check({"prox steps must be at least 1": self.steps >= 1,
                "prox t_start must be in 0..999": 0 <= self.t_start <= 999,
                "prox lambda must be positive": self.lam > 0,
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

    kernel_size: side of the unknown kernel in pixels; None (the default): the kernel prior's
        training size (`priors.bundle.kernel_prior_size`: 32 for kernel-32, 64 for kernel-64
        and the paper's checkpoint), the size it knows best.
    max_size: photos whose long side exceeds it are processed at that resolution (Lanczos
        down-scaling) and the outputs are written at that resolution; 0 disables the bound.
    samples: posterior samples; with several the mean image and a per-pixel std are written.
    noise: measurement noise std in [0, 1] for the proximal sampler (None: estimated from the
        photo; DPS does not use it).
    autocast: bf16 autocast of the network forward passes; None: on for the proximal sampler
        where the hardware has native bf16 (the same PSNR to 0.01 dB on training photos, 1.5x
        faster on this project's CPU: benchmarks/results/sweep-prox-bsds500-3d.md), off for DPS
        (its gradients through the networks were not measured under bf16).
    method: the sampler by name (`SAMPLERS`): "dps" (BlindDPS, the paper's algorithm: a forward
        and a backward pass of every prior per step; settings `dps`), "prox" (the proximal
        sampler: the image prior as a denoiser, the data term solved in closed form, no backward
        pass; settings `prox`), or "auto": "prox", for deblurring (blind, the kernel found first
        by `prox.search`, or with a known kernel) and for turbulence (blind deblurring of the
        displaced photo; the tilt is not estimated, see `tasks.restore`).  With the bundled
        priors the proximal sampler beat BlindDPS on every benchmark we ran
        (benchmarks/results/README.md); "dps" is for the paper's checkpoints on a GPU.

    The command line's flat options (--steps, --prox-steps, ...) map onto these fields by
    `from_options`, the inverse of `options`.
    """

    image_prior: str = "natural-rgb"
    kernel_prior: str = "kernel-64"
    tilt_prior: str = "tilt"
    kernel_size: int | None = None
    max_size: int = 512
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
                "samples must be at least 1": self.samples >= 1})

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
                "prox_search_refine_rounds": "search_refine_rounds"}


# How the proximal sampler finds the kernel when it is blind: "none", its own kernel M-step from
# the delta kernel; otherwise `solvers.kernel_search` first (Pan-L0's coarse-to-fine loop with
# this latent image: "l0" Pan's own, "prox" / "prox-l0" the image prior's restoration), then the
# image restored with that kernel.
KERNEL_SEARCHES = ("none", *LATENTS)
# ProxSettings.search_refine "auto", by task (turbulence?): the refit helps deblurring and hurts
# turbulence (measurements in ProxSettings' docstring).
REFINE_AUTO: dict[bool, float | None] = {False: 0.1, True: None}

# The samplers by name: what `method` selects (the CLI's --method, the bench's rows).
SAMPLERS = {
    "dps": "BlindDPS / DPS (Chung et al.): guidance gradients through every prior (DPSSettings)",
    "prox": "proximal sampler: priors as denoisers, closed-form data steps (ProxSettings)",
}


def default_zeta(steps: int) -> float:
    """Guidance scale for a respaced sampler: 500 / steps (0.5 x the released code's total)."""
    return 500.0 / steps
