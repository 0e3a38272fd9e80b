"""Shared test fixtures: the ../shared folder (golden vectors, data), a clean environment,
network-call counting, and determinism.

../shared is REQUIRED: about 40 tests compare with its golden vectors and the Levin data,
and a run without them must not pass quietly.  Without it the session stops before the
first test with a usage error; `--without-shared` (explicit, local use only) runs the rest
and skips those tests instead.

Tests marked slow (over about 5 s) run by default, as CI's `python -m pytest` runs everything;
`python -m pytest -m "not slow"` is the quick loop.
"""
import os
from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[2] / "shared"
# What the tests read from ../shared (checked up front, so a partial copy fails as loudly).
REQUIRED_SHARED = ("golden/blinddps_trajectory_r10.npz", "golden/operators.npz", "golden/adm_manifest.json",
                   "data/bench/levin09/kernels.npz")

# The tests must not see the user's settings: BLINDDPS_* variables select LPIPS weights, the
# shared folder, debugging output...  Removed at import, before any test module copies
# os.environ for its subprocesses.
for _name in [k for k in os.environ if k.startswith("BLINDDPS_")]:
    del os.environ[_name]


def pytest_addoption(parser):
    # Tests marked slow run by default (`python -m pytest` runs everything; `-m "not slow"` is the
    # quick loop).  --runslow is kept, doing nothing, so that older commands still work.
    parser.addoption("--runslow", action="store_true", default=False,
                     help="no effect (slow tests always run; deselect them with -m 'not slow')")
    parser.addoption("--without-shared", action="store_true", default=False,
                     help="run without ../shared, skipping the golden and Levin tests (local use only: "
                          "CI must fail when ../shared is missing)")


def pytest_configure(config):
    missing = [p for p in REQUIRED_SHARED if not (SHARED / p).is_file()]
    if missing and not config.getoption("--without-shared"):
        raise pytest.UsageError(
            f"../shared is missing or incomplete at {SHARED} (no {', '.join(missing)}): the golden and Levin "
            "tests need it. Put the shared folder beside the checkout, or pass --without-shared to skip "
            "those tests knowingly (never in CI).")


def _require(path: Path, what: str) -> Path:
    """path if it exists; else a skip (only reachable with --without-shared: see pytest_configure)."""
    if not path.exists():
        pytest.skip(f"{what} not found at {path} (--without-shared)")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """Path to ../shared beside the checkout."""
    return _require(SHARED, "../shared")


@pytest.fixture(scope="session")
def golden_dir(shared_dir: Path) -> Path:
    return _require(shared_dir / "golden", "golden vectors")


@pytest.fixture(scope="session")
def levin_dir(shared_dir: Path) -> Path:
    """The Levin et al. 2009 benchmark: sharp/, blurred/, kernels.npz."""
    return _require(shared_dir / "data" / "bench" / "levin09", "Levin 2009 data")


@pytest.fixture
def network_calls(monkeypatch) -> list[tuple[int, int]]:
    """Every ADMUNet forward call made while the test runs, as (input channels, batch size)."""
    from toy_priors import count_adm_calls

    return count_adm_calls(monkeypatch)


@pytest.fixture(autouse=True)
def _few_threads():
    # Tests run on a 2-core machine beside other jobs: keep them single-threaded and reproducible.
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def tiny_priors(tmp_path_factory) -> dict:
    """Paths of tiny random priors (image RGB, kernel, tilt) in our file format, so that the
    task API and the CLI run end to end in seconds.  Random weights: outputs are valid in
    shape and range, not meaningful restorations."""
    from blinddps.diffusion import DiffusionConfig
    from blinddps.networks import ADMUNet, UNetConfig
    from blinddps.priors.bundle import save_prior

    folder = tmp_path_factory.mktemp("priors")
    torch.manual_seed(0)
    paths = {}
    for kind, channels in (("image", 3), ("kernel", 1), ("tilt", 2)):
        net = ADMUNet(UNetConfig.small(channels, num_channels=8, channel_mult=(1, 2)), zero_init=False)
        with torch.no_grad():  # small outputs keep the random sampler well behaved
            for p in net.out.parameters():
                p.mul_(0.05)
        paths[kind] = str(save_prior(folder / f"tiny-{kind}", net, kind=kind, diffusion=DiffusionConfig()))
    return paths

