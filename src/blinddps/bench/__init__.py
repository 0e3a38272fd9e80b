"""Evaluation: `run_benchmark` runs BlindDPS and its baselines on a benchmark and reports
the paper's metrics (the `blinddps bench` command).  See benchmarks/README.md."""
from .config import DEFAULT_NOISE, METHODS, TASKS, BenchConfig, parse_methods
from .data import Case, Measurement, case_seed, center_crop, levin_cases, list_cases, load_measurement
from .evaluate import evaluate
from .methods import MethodOutput, dps_oracle, load_priors, run_method
from .runner import BenchResult, run_benchmark, run_benchmark_distributed
from .shard import dist_env, shard

__all__ = ["BenchConfig", "BenchResult", "Case", "DEFAULT_NOISE", "METHODS", "Measurement", "MethodOutput", "TASKS",
           "case_seed", "center_crop", "dist_env", "dps_oracle", "evaluate", "levin_cases", "list_cases",
           "load_measurement", "load_priors", "parse_methods", "run_benchmark", "run_benchmark_distributed",
           "run_method", "shard"]
