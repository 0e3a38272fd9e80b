"""Time the blind product on named cases of a benchmark run, one photo at a time on N threads.

    python benchmarks/time_cases.py benchmarks/results/kodak24-blind/bench_config.json \
        kodim19,kodim01 --threads 2

The bench runs two photos side by side on one core each (a throughput setting); a user runs
`blinddps deblur` on one photo with both cores. This rebuilds the bench's measurement of each
named case (same seed, kernel and noise; `bench_config.json` of that run) and times
`blinddps.deblur` on it as the bench's `prox` row configures it, the priors loaded inside.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch

from blinddps import deblur
from blinddps.bench.config import BenchConfig
from blinddps.bench.data import list_cases, load_measurement
from blinddps.bench.methods import pan_l0_size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="a benchmark run's bench_config.json")
    p.add_argument("cases", help="case names, comma-separated")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    fields = {f.name for f in dataclasses.fields(BenchConfig)}
    saved = json.load(open(args.config))
    config = BenchConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in fields})
    names = args.cases.split(",")
    for case in list_cases(config):
        if case.name in names:
            m = load_measurement(case, config)
            rc = config.restore_config(method="prox", seed=config.seed, kernel_size=pan_l0_size(m, config))
            start = time.perf_counter()
            result = deblur(m.y, rc)
            print(f"{case.name}: {time.perf_counter() - start:.1f} s on {args.threads} threads, "
                  f"{len(result.info.get('candidates', []))} candidates", flush=True)


if __name__ == "__main__":
    main()
