"""bench/bench_fit_step.py: the fit step against a bare rasterizer pass of the same batch, proved small on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ICT_HEAD, load_bench

pytestmark = pytest.mark.skipif(not ICT_HEAD.exists(), reason=f"ICT head model not found at {ICT_HEAD}")


@pytest.mark.slow
def test_step_costs_more_than_its_own_render_and_the_ratio_is_reported(tmp_path: Path) -> None:
    bench = load_bench("bench_fit_step")
    result = bench.measure(tmp_path, views=2, size=32, sequences=2, frames=2, warmup=1, runs=2)
    assert result["backend"] == "torch"
    assert result["step_ms"] > result["bare_rasterize_fwd_bwd_ms"] > 0
    assert result["ratio"] == pytest.approx(result["step_ms"] / result["bare_rasterize_fwd_bwd_ms"], rel=0.02)
    # the caught batch is what the step rendered: back-facing Gaussians already dropped
    assert 0 < result["gaussians_rendered_per_image"] < result["gaussians"]


def test_cuda_request_without_cuda_is_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert load_bench("bench_fit_step").main(["--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
