"""The README's Python examples run as written, with fewer steps (the only edits: the step
counts, so the test takes seconds), and return what their comments promise."""
import re
import time
from pathlib import Path

import pytest
import torch

from blinddps.tasks.config import REFINE_AUTO, ProxSettings

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _fewer_steps(code: str) -> str:
    """Swap the examples' step counts for 2; fails loudly when the README no longer has them."""
    code, n_steps = re.subn(r"\b(prox_)?steps=\d+", r"\1steps=2", code)
    code, n_respacing = re.subn(r'respacing="\d+"', 'respacing="2"', code)
    assert n_steps + n_respacing > 0, "README example has no step count to shorten"
    return code


def test_readme_has_both_examples():
    blocks = _python_blocks()
    assert len(blocks) >= 2
    assert "blinddps.deblur" in blocks[0] and "BlindDPS(" in blocks[1]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_readme_examples_run_and_keep_their_promises(network_calls):
    first, second = _python_blocks()[:2]
    scope: dict = {}
    start = time.perf_counter()
    exec(compile(_fewer_steps(first), "README.md:api", "exec"), scope)
    wall = time.perf_counter() - start
    result, blurry = scope["result"], scope["blurry"]
    assert result.image.shape == blurry.shape == (1, 3, 128, 128)
    assert result.kernel.shape == (65, 65)  # the kernel prior's 64 px, made odd by the kernel search
    assert result.kernel.min() >= 0 and torch.isclose(result.kernel.sum(), torch.tensor(1.0), atol=1e-5)
    # "network evaluations per image": the calls counted, blind: per kernel search (one per
    # lambda decay) its one denoising call and 2 proximal steps (no kernel network), then 2
    # image-network calls of the non-blind run, each on one image; the seconds are the run's.
    # When the kept kernel's views disagree the searches run a second round at Pan's floor
    # (ProxSettings.search_fallback): then every candidate of both rounds is recorded. When
    # the kept kernel agrees with its round's others (ProxSettings.search_consensus) it is
    # restored again at the consensus' lambda: 2 calls more; and each round of the kernel's
    # refit to its restoration (ProxSettings.search_refine) restores once more: 2 calls each.
    candidates = result.info["candidates"]
    runs = len(candidates)
    assert runs in (len(ProxSettings.search_decays),
                    len(ProxSettings.search_decays) + len(ProxSettings.search_fallback_decays))
    first = candidates[: len(ProxSettings.search_decays)]
    kept_first = min(first, key=lambda c: c["misfit"])
    assert (runs > len(first)) == (kept_first["search_agreement"] < ProxSettings.search_fallback)
    again = 2 * (result.info.get("search_consensus", 0.0) >= ProxSettings.search_consensus)
    refits = 0 if REFINE_AUTO[False] is None else ProxSettings.search_refine_rounds  # deblurring's refit
    assert len(result.info.get("refine_mnc", [])) == refits
    again += 2 * refits
    assert sorted(network_calls) == [(3, 1)] * (3 * runs + 2 + again)
    assert result.info["nfe_per_image"] == 3 * runs + again and scope["known"].info["nfe_per_image"] == 2
    assert result.info["method"] == "prox" and result.info["search_nfe"] == runs + 2 * (runs - 1) + again
    known, truth = scope["known"], scope["truth"]
    assert known.image.shape == blurry.shape and known.info["method"] == "prox"
    assert torch.allclose(known.kernel, truth["kernel"] / truth["kernel"].sum(), atol=1e-6)
    assert 0 < result.info["seconds"] <= wall and result.info["working_size"] == [128, 128]

    exec(compile(_fewer_steps(second), "README.md:solver", "exec"), scope)
    kernel = scope["out"].estimates["kernel"]
    assert kernel.shape == (1, 1, 64, 64)
    assert kernel.min() >= 0 and torch.allclose(kernel.sum((-2, -1)), torch.ones(1, 1), atol=1e-5)
    assert scope["out"].estimates["image"].shape == (1, 3, 128, 128)
