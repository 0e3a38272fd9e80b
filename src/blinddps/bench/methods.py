"""The benchmarked methods, one call each: measurement in, (image, kernel, cost) out.

All take the measurement y (1, C, H, W) in [0, 1] and return the image (1, C, H, W) in
[0, 1] and the kernel (K, K), non-negative, summing to 1, origin K // 2 (the project's
convention: the blur is the true convolution). Seconds are wall time of the call; nfe counts
network evaluations per image (forward + backward of one network = 1, as the solver does).

Turbulence task: the BlindDPS methods run `tasks.restore_turbulence` (image, kernel and tilt
unknowns; the tilt prior kept by blinddps-uniform); dps-oracle knows the true kernel AND the
true tilt (operator `physics.Turbulence`); Pan-L0 and blurry ignore the tilt.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..baselines.deconv import deconv_wiener
from ..baselines.pan_l0 import PanL0Params, pan_l0_deblur
from ..io import read_image
from ..metrics import psnr
from ..physics import Blur, Turbulence, pad_kernel_to
from ..physics.kernel_geometry import delta_kernel
from ..priors import DiffusionPrior, ImageTransform
from ..solvers import DPS, SolverConfig, Unknown
from ..tasks import RestoreConfig, deblur, load_task_prior, restore_turbulence
from ..tasks.config import default_zeta
from ..priors.prior import pad_to_multiple
from .config import PUBLISHED, BenchConfig, is_published, uses_image_prior
from .data import Case, Measurement, case_seed


@dataclass
class MethodOutput:
    image: torch.Tensor
    kernel: torch.Tensor
    nfe: int = 0
    seconds: float = 0.0
    info: dict = field(default_factory=dict)


def load_priors(config: BenchConfig) -> dict[str, DiffusionPrior]:
    """The priors the configured methods need, respaced to `config.steps`, loaded once."""
    needed = set(config.methods)
    priors = {}
    if any(map(uses_image_prior, needed)):
        priors["image"] = load_task_prior("image", config.image_prior, config.device, str(config.steps))
    if "prox" in needed and config.search_prior:
        priors["search"] = load_task_prior("image", config.search_prior, config.device, "")
    if "blinddps" in needed:
        priors["kernel"] = load_task_prior("kernel", config.kernel_prior, config.device, str(config.steps))
    blind = needed & {"blinddps", "blinddps-uniform"}
    if config.task == "turbulence" and blind and config.tilt_prior != "uniform":
        priors["tilt"] = load_task_prior("tilt", config.tilt_prior, config.device, str(config.steps))
    return priors


def dps_oracle(y: torch.Tensor, kernel: torch.Tensor, image_prior: DiffusionPrior, *, padding: str = "reflect",
               seed: int = 0, config: SolverConfig | None = None, device: str | torch.device = "cpu",
               tilt: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
    """Non-blind DPS (Chung et al., ICLR 2023) with the TRUE kernel: the image prior alone.

    y (1, C, H, W) in [0, 1], C = 1 or 3 (grey is run through the RGB prior as three equal
    channels and averaged back, as tasks.deblur does); kernel (K, K) summing to 1.
    tilt: the TRUE tilt field (2, H, W) in pixels (turbulence: the operator is then
    `Turbulence(padding)` with the kernel and the tilt known, as tasks.restore_turbulence's
    operator; the tilt is extended by replication over the padding to the network's multiple).
    Returns (image (1, C, H, W) in [0, 1] on the CPU, nfe per image).
    """
    h, w = y.shape[-2:]
    config = config or SolverConfig(zeta=default_zeta(image_prior.num_steps))  # the same rule as blind runs
    y3, _ = pad_to_multiple(y.float().expand(1, 3, h, w).to(device), image_prior.network.config.spatial_multiple)
    known = {"kernel": kernel.float().to(device)[None, None]}
    operator = Blur(padding)
    if tilt is not None:
        if tuple(tilt.shape) != (2, h, w):
            raise ValueError(f"tilt must be (2, {h}, {w}) pixels, got {tuple(tilt.shape)}")
        ph, pw = y3.shape[-2] - h, y3.shape[-1] - w
        t = tilt.float().to(device)[None]
        known["tilt"] = F.pad(t, (0, pw, 0, ph), mode="replicate") if ph or pw else t
        operator = Turbulence(padding)
    solver = DPS(operator, Unknown((3, *y3.shape[-2:]), ImageTransform(), image_prior), config)
    result = solver.solve(y3 * 2 - 1, known=known, generator=[torch.Generator().manual_seed(seed * 7919)])
    image = ((result.estimates["image"][..., :h, :w] + 1) / 2).clamp(0, 1).cpu()
    return (image.mean(dim=1, keepdim=True) if y.shape[1] == 1 else image), result.nfe


WIENER_GRID = tuple(10 ** (-4 + 0.25 * i) for i in range(15))  # 1e-4 .. 3e-1


def wiener_oracle(y: torch.Tensor, kernel: torch.Tensor, sharp: torch.Tensor, boundary: str) -> tuple[torch.Tensor, float]:
    """The best Wiener deconvolution of y (1, C, H, W) in [0, 1] with the true kernel over
    WIENER_GRID, judged by PSNR against the sharp image: (image in [0, 1], the weight chosen)."""
    best = None
    for reg in WIENER_GRID:
        x = deconv_wiener(y.double(), kernel.double(), reg, boundary=boundary).clamp(0, 1).float()
        score = float(psnr(x, sharp))
        if best is None or score > best[0]:
            best = (score, x, reg)
    return best[1], best[2]


def pan_l0_size(m: Measurement, config: BenchConfig) -> int:
    """Pan-L0's kernel size: the true size on Levin (odd), else kernel_size rounded up to odd."""
    size = m.kernel.shape[-1] if config.task == "levin" else config.kernel_size
    return size + (size % 2 == 0)


def published_kernel(case: Case, folder: str) -> torch.Tensor:
    """The kernel (K, K) that the method of `folder` published for a Levin case: the grey
    image <levin>/published/<folder>/k_J_im_I_*.png (J, I: the case's kernel and image),
    non-negative, summing to 1, origin K // 2 (the files are odd-sized, in the true
    convolution's orientation like Levin's own kernels)."""
    root = case.sharp.parent.parent / "published" / folder
    image, kernel = case.sharp.stem.split("_")[-1], (case.kernel_key or "").lstrip("k")
    files = sorted(root.glob(f"k_{kernel}_im_{image}_*.png"))
    if len(files) != 1:
        raise FileNotFoundError(f"expected one kernel k_{kernel}_im_{image}_*.png in {root}, found {len(files)}")
    k = read_image(files[0]).tensor[0].mean(dim=0).clamp_min(0)
    if k.shape[-1] % 2 == 0 or k.shape[-1] != k.shape[-2] or float(k.sum()) <= 0:
        raise ValueError(f"{files[0]}: a kernel must be square, odd-sized and not all zero")
    return k / k.sum()


def run_method(method: str, m: Measurement, config: BenchConfig, priors: dict[str, DiffusionPrior]) -> MethodOutput:
    """Run one method on one measurement (see the module docstring for the outputs)."""
    seed = case_seed(config.seed, m.case.index)
    start = time.perf_counter()
    if method in ("blinddps", "blinddps-uniform"):
        uniform = method == "blinddps-uniform"
        turbulence = config.task == "turbulence"
        rc = RestoreConfig.from_options(method="dps", image_prior=config.image_prior,
                                        kernel_prior="uniform" if uniform else config.kernel_prior,
                                        tilt_prior=config.tilt_prior, kernel_size=m.blind_kernel_size, steps=config.steps,
                                        padding=config.solver_padding, max_size=0, seed=seed, device=str(config.device))
        use = {"image": priors["image"]} if uniform else {"image": priors["image"], "kernel": priors["kernel"]}
        if turbulence and "tilt" in priors:
            use["tilt"] = priors["tilt"]
        r = (restore_turbulence if turbulence else deblur)(m.y, rc, priors=use)
        out = MethodOutput(r.image, r.kernel, int(r.info["nfe_per_image"]),
                           info={"final_misfit": r.info["final_misfit"][0], "kernel_size": r.info["kernel_size"]})
    elif method == "dps-oracle":
        kernel = pad_kernel_to(m.kernel, max(m.kernel.shape[-1], m.blind_kernel_size))
        image, nfe = dps_oracle(m.y, kernel, priors["image"], padding=config.solver_padding, seed=seed,
                                device=config.device, tilt=m.tilt)
        out = MethodOutput(image, kernel, nfe)
    elif method in ("prox", "prox-oracle"):
        known = pad_kernel_to(m.kernel, max(m.kernel.shape[-1], m.blind_kernel_size)) if method == "prox-oracle" else None
        # the kernel search is Pan-L0's loop: it gets Pan-L0's size (the same information as that row)
        search = known is None and config.restore_config().prox.search != "none"
        # resolved for the task: turbulence is deblurred here, with turbulence's own defaults
        rc = config.restore_config(method="prox", seed=seed,
                                   kernel_size=pan_l0_size(m, config) if search else m.blind_kernel_size
                                   ).resolved(config.task == "turbulence")
        r = deblur(m.y, rc, priors={k: priors[k] for k in ("image", "search") if k in priors}, kernel=known)
        # with a search: how well its views agreed, which lambda restored, the candidates' misfits
        found = {k: r.info[k] for k in ("search_agreement", "search_consensus", "restore_lambda", "candidates",
                                        "pick_steps", "refine_mnc") if k in r.info}
        out = MethodOutput(r.image, r.kernel, int(r.info["nfe_per_image"]),
                           info={"final_misfit": r.info["final_misfit"][0], "kernel_size": r.info["kernel_size"],
                                 **found})
    elif is_published(method):
        kernel = published_kernel(m.case, method.removeprefix(PUBLISHED))
        rc = config.restore_config(method="prox", seed=seed, kernel_size=kernel.shape[-1]).resolved()
        r = deblur(m.y, rc, priors={"image": priors["image"]}, kernel=kernel)
        out = MethodOutput(r.image, kernel, int(r.info["nfe_per_image"]),
                           info={"final_misfit": r.info["final_misfit"][0], "kernel_size": kernel.shape[-1]})
    elif method == "wiener-oracle":
        image, reg = wiener_oracle(m.y, m.kernel, m.sharp, "circular" if config.task == "levin" else "pad")
        out = MethodOutput(image, m.kernel.float(), info={"reg": reg})
    elif method == "pan-l0":
        boundary = "circular" if config.task == "levin" else "pad"
        image, kernel = pan_l0_deblur(m.y, pan_l0_size(m, config), params=PanL0Params(boundary=boundary))
        out = MethodOutput(image.float(), kernel[0, 0].float())
    elif method == "blurry":
        out = MethodOutput(m.y.clone(), delta_kernel(m.kernel.shape[-1]))
    else:
        raise ValueError(f"unknown method {method!r}")
    out.seconds = time.perf_counter() - start
    return out
