"""bench/bench_video_step.py: the real-size video denoiser step, proved on the CPU at a tiny scale.

Runs the bench's `main` for each provider with a shrunken model (`--scale`) on small inputs, and checks
that it times finite steps with finite outputs and that the full-size parameter count (taken on the meta
device) is within 10% of the published size. No GPU and no download needed.
"""

from __future__ import annotations

import json
import math

import pytest

from tests.conftest import load_bench

pytest.importorskip("diffusers")
pytest.importorskip("accelerate")


@pytest.fixture(scope="module")
def bench():
    return load_bench("bench_video_step")


def rows(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("provider", ["wan", "ltx", "cogvideox"])
def test_smoke_step_and_full_size_count(bench, capsys, provider):
    argv = [
        "--provider", provider, "--device", "cpu", "--dtype", "float32", "--scale", "0.02",
        "--frames", "9", "--size", "128", "--steps", "1", "--warmup", "1",
    ]  # fmt: skip
    assert bench.main(argv) == 0
    (row,) = rows(capsys.readouterr().out)
    assert row["provider"] == provider
    assert row["model"] == bench.DEFAULT_MODELS[provider]
    # The smoke run: a shrunken model that ran, with finite times and outputs.
    assert row["params_built"] < row["params_full"] / 100
    assert row["finite"] is True
    assert math.isfinite(row["ms_per_step"]) and row["ms_per_step"] > 0
    assert math.isfinite(row["ms_per_step_min"]) and 0 < row["ms_per_step_min"] <= row["ms_per_step"]
    assert row["frames"] == 9 and row["size"] == [128, 128]
    # The full-size count, on the meta device, within 10% of the published size.
    assert row["check_within_10pct"] is True
    assert abs(row["check_ratio"] - 1.0) <= 0.10
    published = {"wan": 14e9, "ltx": 2e9, "cogvideox": 5e9}[provider]
    assert row["published"] == published
    checked = row.get("params_backbone", row["params_full"])
    assert abs(checked / row["check_reference"] - 1.0) <= 0.10


def test_scale_one_is_the_published_config(bench):
    for provider, spec in bench.SPECS.items():
        assert bench.scaled_config(provider, 1.0) == spec.config


def test_real_working_shapes(bench):
    """The provider defaults give the latent grids the pipelines build (VAE compression and patching)."""
    wan = bench.working_shape("wan", None, None)
    assert (wan.frames, wan.height, wan.width) == (49, 624, 624)
    assert (wan.latent_frames, wan.latent_height, wan.latent_width, wan.tokens) == (13, 78, 78, 13 * 39 * 39)
    ltx = bench.working_shape("ltx", None, None)
    assert (ltx.frames, ltx.latent_frames, ltx.latent_height, ltx.tokens) == (97, 13, 16, 13 * 16 * 16)
    cog = bench.working_shape("cogvideox", None, None)
    assert (cog.latent_frames, cog.latent_height, cog.latent_width, cog.tokens) == (13, 60, 90, 13 * 30 * 45)
