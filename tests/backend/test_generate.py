"""`t2bs generate` end to end on the offline defaults, exactly as the README runs it (preview preset).

This is the product's main job: prompt -> procedural head -> procedural performance -> fit -> register ->
blendshapes -> head.glb. It takes a few minutes on 2 cores; its time is measured in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from t2bs.procedural.regions import REGIONS_FILE, load_regions
from tests.conftest import validate_gltf

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PROMPT = "a grumpy old troll with a big nose"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generate") / "troll"
    result = subprocess.run(
        [sys.executable, "-m", "t2bs", "generate", PROMPT, "--out", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[-1] == {"event": "result", "bundle": str(out), "status": "complete"}
    stages = {event["stage"] for event in events if event["event"] == "progress"}
    assert {"prompt", "asset", "capture", "fit", "register", "model", "export"} <= stages
    return out


def test_generate_writes_a_finished_bundle(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["prompt"] == PROMPT
    assert manifest["providers"]["asset"]["name"] == "procedural"
    assert manifest["providers"]["capture"]["name"] == "procedural"
    for name in (
        "head.glb",
        "model.npz",
        "texture.png",
        "prompts.json",
        "preview/expressions.png",
        "preview/turntable.mp4",
        "fit/gaussians.ply",
    ):
        assert (bundle / name).is_file(), name
    assert validate_gltf(bundle / "head.glb")["issues"]["numErrors"] == 0
    with np.load(bundle / "model.npz") as model:
        assert list(model["blendshape_names"]) == [
            "jawOpen",
            "mouthSmileLeft",
            "mouthSmileRight",
            "eyeBlinkLeft",
            "eyeBlinkRight",
            "browInnerUp",
        ]


def test_generated_jaw_open_moves_the_jaw_more_than_the_brows(bundle: Path) -> None:
    from t2bs.stages.asset import load_asset

    regions = load_regions(bundle / REGIONS_FILE)
    mesh = load_asset(bundle)
    with np.load(bundle / "model.npz") as model:
        names = list(model["blendshape_names"])
        jaw_open = np.linalg.norm(model["blendshapes"][names.index("jawOpen")], axis=1) / mesh.source_scale
    jaw = regions.weights["jaw"] > 0.5
    brows = (regions.weights["brow_L"] > 0.5) | (regions.weights["brow_R"] > 0.5)
    assert jaw_open[jaw].mean() > 3 * jaw_open[brows].mean()
    assert jaw_open[jaw].mean() > 0.002  # in normalised units: the fit saw the mouth open
