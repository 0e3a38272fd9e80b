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
