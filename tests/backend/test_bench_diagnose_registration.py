"""bench/diagnose_registration.py: a fit's registration against the truth and its skinning's ceiling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from t2bs.fit.presets import PRESETS
from t2bs.fit.scaffold import build_scaffold
from t2bs.mesh_io import load_head_mesh
from t2bs.testing.ict_fixture import make_ict_capture
from tests.conftest import ICT_HEAD, load_bench

pytestmark = pytest.mark.skipif(not ICT_HEAD.exists(), reason=f"ICT head model not found at {ICT_HEAD}")


def test_gain_and_rest_separate_size_from_pattern() -> None:
    bench = load_bench("diagnose_registration")
    reference = np.random.default_rng(0).normal(size=(500, 3))
    half = bench.gain_and_rest(0.5 * reference, reference)
    assert half["gain"] == pytest.approx(0.5) and half["rest"] == pytest.approx(0.0, abs=1e-9)
    assert half["gain_per_axis"] == pytest.approx([0.5, 0.5, 0.5])
    # A field at the right size but another pattern: gain near 0, and all of it rest.
    other = bench.gain_and_rest(np.random.default_rng(1).normal(size=(500, 3)), reference)
    assert abs(other["gain"]) < 0.15 and other["rest"] > 0.9


@pytest.mark.slow
def test_diagnosis_of_a_fit_that_reaches_half_of_the_representable_motion(tmp_path: Path) -> None:
    bench = load_bench("diagnose_registration")
    fixture = make_ict_capture(tmp_path / "fixture", sequences=2, frames=3, views=4, size=16, seed=0)
    mesh = load_head_mesh(fixture.asset)
    preset = PRESETS["preview"]
    scaffold = build_scaffold(mesh, surface_samples=preset.surface_samples, control_count=preset.control_count, seed=0)
    with np.load(fixture.truth) as data:
        truth = {name: data[name] for name in data.files}
    ceiling = bench.least_squares_frames(mesh, scaffold, truth)
    half = {name: truth[name][:1] + 0.5 * (frames - truth[name][:1]) for name, frames in ceiling.items()}
    report = bench.diagnose(truth, half, ceiling)

    for name in ("seq00", "seq01"):
        against = report["last_frame_against_ceiling"][name]
        assert against["gain"] == pytest.approx(0.5, abs=1e-3) and against["rest"] < 1e-3, against
    fit_bands, ceiling_bands = report["fit"], report["ceiling"]
    assert [b["band"] for b in fit_bands] == [b["band"] for b in ceiling_bands] and len(fit_bands) >= 3
    assert sum(b["share_of_motion"] for b in fit_bands) == pytest.approx(1.0, abs=0.01)
    for fit, best in zip(fit_bands, ceiling_bands, strict=True):
        assert fit["recovered"] < best["recovered"] - 0.2, (fit, best)
        assert fit["vertices"] == best["vertices"]
    # The ceiling holds large motions better than small ones (docs/benchmarks.md, session 12).
    assert ceiling_bands[-1]["recovered"] > ceiling_bands[0]["recovered"]

    image = bench.error_map(mesh, truth, half, ceiling, size=64)
    assert image.shape == (2 * 64, 3 * 64, 3) and image.dtype == np.uint8
    # Red marks motion and error: the half-way fit's error tile is redder than the ceiling's.
    motion, ceiling_error, fit_error = (image[:, i * 64 : (i + 1) * 64, 0].astype(float).mean() for i in range(3))
    assert motion > fit_error > ceiling_error + 1.0, (motion, fit_error, ceiling_error)
