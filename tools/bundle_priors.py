"""Copy trained priors from their run folders into the package as fp16 safetensors.

    python tools/bundle_priors.py --kernel runs/kernel-64 --image runs/natural-rgb --tilt runs/tilt
    python tools/bundle_priors.py --kernel runs/kernel-32 --kernel-name kernel-32
    python tools/bundle_priors.py --image runs/natural-rgb-f --image-name natural-rgb-6 --dest priors

Each run folder holds `ema.safetensors` + `ema.json` written by `blinddps train`; the
bundled copy keeps the JSON's training provenance (config, step, wall time, machine).
--dest writes the files elsewhere under any name: a candidate waits in `priors/` until the
benchmarks have been rerun with it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from blinddps.priors.bundle import BUNDLED, BUNDLED_DIR, load_prior, save_prior

NAMES = {"kernel": "kernel-64", "image": "natural-rgb", "tilt": "tilt"}


def bundle(kind: str, run: Path, name: str, dest: Path = BUNDLED_DIR) -> Path:
    import json

    if dest == BUNDLED_DIR and BUNDLED.get(name) != kind:
        raise SystemExit(f"{name!r} is not a bundled {kind} prior name (blinddps.priors.bundle.BUNDLED)")
    meta = json.loads((run / "ema.json").read_text())
    prior = load_prior(run / "ema.safetensors", kind=kind)
    return save_prior(dest / name, prior.network, kind=kind, diffusion=prior.process.config,
                      transform=prior.transform, training=meta.get("training", {}), half=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for kind in NAMES:
        parser.add_argument(f"--{kind}", type=Path, help=f"run folder of the {kind} prior")
        parser.add_argument(f"--{kind}-name", default=NAMES[kind], help=f"bundled name (default {NAMES[kind]})")
    parser.add_argument("--dest", type=Path, default=BUNDLED_DIR,
                        help="where the files go (default: the package's bundled priors)")
    args = parser.parse_args()
    for kind in NAMES:
        run = getattr(args, kind)
        if run is not None:
            path = bundle(kind, run, getattr(args, f"{kind}_name"), args.dest)
            print(f"{kind}: {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
