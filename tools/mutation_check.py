"""Mutation check: plant known small bugs in a COPY of src/ and report which tests catch each.

    python tools/mutation_check.py                 # every mutant, a table at the end
    python tools/mutation_check.py --only sqrt_abar_ignored levin_subpixel_sign
    python tools/mutation_check.py --list

Each mutant is a text substitution (exact, each old text found exactly once) in a temporary
copy of src/; the tests named for it run with PYTHONPATH pointing at that copy, so the
working tree (which others may be editing) is never touched, and the CLI subprocesses the
tests start import the mutated copy too.  A mutant is caught when at least one of its tests
fails.  The unmutated copy runs first: a test that already fails would make every mutant
look caught, so the check stops there.

The list is issue 12's review (ten planted bugs that went unnoticed), plus checks of what this
work added (NFE counting, the misfit, the gradient at a bound).  Takes a few minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOLVER_TESTS = ("tests/solvers/test_solver_arithmetic.py", "tests/solvers/test_solvers.py")


@dataclass(frozen=True)
class Mutant:
    name: str
    description: str
    file: str  # relative to src/blinddps
    edits: tuple[tuple[str, str], ...]  # (old, new), applied in order
    tests: tuple[str, ...]  # pytest arguments: files or node ids
    extra: tuple[tuple[str, str, str], ...] = ()  # (file, old, new) in other files


MUTANTS = (
    Mutant("sqrt_abar_ignored", "step size ignores sqrt(abar_t): zeta_t = zeta", "solvers/guidance.py",
           (("return float(zeta * alpha_cumprod.sqrt())", "return float(zeta)"),), SOLVER_TESTS),
    Mutant("abar_off_by_one", "step size reads abar one index off", "solvers/blinddps.py",
           (("self.schedule.alphas_cumprod[i])", "self.schedule.alphas_cumprod[i - 1])"),), SOLVER_TESTS),
    Mutant("step_scale_ignored", "per-unknown step_scale ignored", "solvers/blinddps.py",
           (("proposals[name] - zeta * self.unknowns[name].step_scale * grad", "proposals[name] - zeta * grad"),),
           SOLVER_TESTS),
    Mutant("regularisers_dropped", "regularisers left out of the loss", "solvers/blinddps.py",
           (("total = total + reg(x0[name]).sum()", "total = total + 0 * reg(x0[name]).sum()"),), SOLVER_TESTS),
    Mutant("prior_less_ignores_gradient", "a prior-less unknown ignores its gradient", "solvers/blinddps.py",
           (("else state.clamp(-1, 1)", "else proposals[name].clamp(-1, 1)"),), SOLVER_TESTS),
    # Two guards keep the last step noise-free (the solver draws none, ddpm_step adds none):
    # either one alone removed changes nothing, so the bug is both removed.
    Mutant("noise_at_last_step", "DDPM noise added at the last step (t = 0)", "diffusion/process.py",
           (("        if i == 0:\n            return mean\n", ""),), SOLVER_TESTS,
           extra=(("solvers/blinddps.py", "if i > 0 else torch.zeros_like(x_t)", "if i >= 0 else None"),)),
    Mutant("variance_not_std", "DDPM noise scaled by the variance, not the standard deviation",
           "diffusion/process.py",
           (("return mean + (0.5 * log_var).exp() * noise", "return mean + log_var.exp() * noise"),), SOLVER_TESTS),
    Mutant("ddim_eta_noise", "DDIM noise for eta > 0 scaled by sigma^2", "diffusion/process.py",
           (("out + sigma * noise", "out + sigma**2 * noise"),), SOLVER_TESTS),
    Mutant("restore_ignores_seed", "restore() ignores config.seed", "tasks/restore.py",
           (("manual_seed(config.seed * 7919 + s)", "manual_seed(s)"),), ("tests/tasks/test_restore_seed.py",)),
    Mutant("levin_subpixel_sign", "wrong sign of the Levin sub-pixel shift", "metrics/error_ratio.py",
           (("torch.exp(2j * torch.pi * (ky * fy + kx * fx))", "torch.exp(-2j * torch.pi * (ky * fy + kx * fx))"),),
           ("tests/metrics/test_metrics.py",)),
    Mutant("nfe_counts_prior_less", "reported NFE counts prior-less unknowns too", "solvers/blinddps.py",
           (("sum(u.prior is not None for u in self.unknowns.values())", "len(self.unknowns)"),),
           (*SOLVER_TESTS, "tests/cli/test_cli.py::test_reported_nfe_is_the_counted_network_calls")),
    Mutant("misfit_squared", "misfit: the squared residual norm instead of the norm", "solvers/guidance.py",
           (("return (y - prediction).flatten(1).norm(dim=1)",
             "return (y - prediction).flatten(1).pow(2).sum(dim=1)"),),
           SOLVER_TESTS),
    Mutant("bound_gradient_dropped", "no gradient at a clamp's bound (torch 2.14's convention)",
           "priors/transforms.py",
           (("inside = inside & (x >= lower)", "inside = inside & (x > lower)"),
            ("inside = inside & (x <= upper)", "inside = inside & (x < upper)")), SOLVER_TESTS),
)


def _edits(mutant: Mutant) -> dict[str, list[tuple[str, str]]]:
    """file -> its (old, new) substitutions."""
    by_file: dict[str, list[tuple[str, str]]] = {mutant.file: list(mutant.edits)}
    for file, old, new in mutant.extra:
        by_file.setdefault(file, []).append((old, new))
    return by_file


def _apply(text: str, file: str, edits: list[tuple[str, str]], name: str) -> str:
    for old, new in edits:
        count = text.count(old)
        if count != 1:
            raise LookupError(f"{name}: expected the text once in {file}, found it {count} times: {old!r}")
        text = text.replace(old, new)
    return text


def _run_tests(tests: tuple[str, ...], src: Path) -> tuple[int, list[str], float]:
    """(pytest exit code, failed test ids, seconds) with `src` first on the import path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", *tests],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", proc.stdout, flags=re.M)
    return proc.returncode, failed, time.perf_counter() - start


def _check_import_path(src: Path) -> None:
    """The copy, not the editable install, must be what `import blinddps` finds."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    found = subprocess.run([sys.executable, "-c", "import blinddps; print(blinddps.__file__)"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    if not Path(found).resolve().is_relative_to(src.resolve()):
        raise SystemExit(f"import blinddps finds {found}, not the mutated copy under {src}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args()
    mutants = [m for m in MUTANTS if not args.only or m.name in args.only]
    if args.only and len(mutants) != len(set(args.only)):
        parser.error(f"unknown mutant(s): {sorted(set(args.only) - {m.name for m in MUTANTS})}")
    if args.list:
        for m in mutants:
            print(f"{m.name:28s} {m.file:24s} {m.description}")
        return 0

    with tempfile.TemporaryDirectory(prefix="blinddps-mutants-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        _check_import_path(src)
        files = {f for m in mutants for f in _edits(m)}
        originals = {f: (src / "blinddps" / f).read_text() for f in files}
        for m in mutants:  # every substitution must apply before anything runs
            for f, edits in _edits(m).items():
                _apply(originals[f], f, edits, m.name)
        all_tests = tuple(dict.fromkeys(t for m in mutants for t in m.tests))
        code, failed, seconds = _run_tests(all_tests, src)
        print(f"baseline (no mutant): exit {code}, {len(failed)} failed, {seconds:.0f} s", flush=True)
        if code != 0:
            print("the tests fail without any mutant:", *failed, sep="\n  ")
            return 2
        rows = []
        for m in mutants:
            edits = _edits(m)
            try:
                for f, file_edits in edits.items():
                    (src / "blinddps" / f).write_text(_apply(originals[f], f, file_edits, m.name))
                code, failed, seconds = _run_tests(m.tests, src)
            finally:
                for f in edits:
                    (src / "blinddps" / f).write_text(originals[f])
            caught = code == 1 and bool(failed)
            status = "caught" if caught else ("NOT caught" if code == 0 else f"error (exit {code})")
            rows.append((m, status, failed))
            print(f"{m.name}: {status} ({len(failed)} failed, {seconds:.0f} s)", flush=True)

    print("\n| mutant | planted bug | file | result | tests that fail |")
    print("|---|---|---|---|---|")
    for m, status, failed in rows:
        names = ", ".join(f.split("::", 1)[-1] for f in failed[:3])
        names += f" (+{len(failed) - 3})" if len(failed) > 3 else ""
        print(f"| {m.name} | {m.description} | {m.file} | {status} | {names or '-'} |")
    missed = [m.name for m, status, _ in rows if status != "caught"]
    summary = f"\n{len(rows) - len(missed)} of {len(rows)} mutants caught"
    print(summary + (f"; not caught: {', '.join(missed)}" if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
