"""Shared test fixtures: the ../shared folder (golden vectors, data) and determinism."""
from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """Path to ../shared beside the checkout; skips the test when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"../shared not found at {SHARED}: golden vectors and data unavailable")
    return SHARED


@pytest.fixture(scope="session")
def golden_dir(shared_dir: Path) -> Path:
    path = shared_dir / "golden"
    if not path.is_dir():
        pytest.skip(f"golden vectors not found at {path}")
    return path


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


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
