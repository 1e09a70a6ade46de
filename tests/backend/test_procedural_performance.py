"""The procedural performance: each act moves its regions and leaves the others, frame 0 is the static
head, and the capture stage writes a valid capture through the real Runner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from t2bs.bundle import CAPTURE_DIR
from t2bs.capture import read_capture
from t2bs.errors import InputError
from t2bs.expressions import LIBRARY, custom_expression, expression, select_expressions
from t2bs.procedural import ARCHETYPES, build_head, deform, ease
from t2bs.procedural.providers import write_performance
from t2bs.runner import Runner
from t2bs.stages.asset import AssetStage
from t2bs.stages.capture import CaptureStage


@pytest.fixture(scope="module")
def head():
    return build_head(ARCHETYPES["dog"], seed=1, texture_size=128)


def motion(head, name: str, weight: float = 1.0) -> np.ndarray:
    """[V] distance each vertex moves at `weight`, over the bounding-box diagonal."""
    moved = deform(head.mesh.vertices, head.regions, expression(name), weight)
    return np.linalg.norm(moved - head.mesh.vertices, axis=1) / head.mesh.diagonal


def mask(head, name: str, threshold: float = 0.5) -> np.ndarray:
    return head.regions.weights[name] >= threshold


def test_blink_moves_lids_not_jaw(head) -> None:
    moved = motion(head, "eyeBlink")
    for lid in ("lid_upper_L", "lid_upper_R", "lid_lower_L", "lid_lower_R"):
        assert moved[mask(head, lid)].max() > 0.01, lid
    jaw = mask(head, "jaw") & ~mask(head, "lid_upper_L", 0.01) & ~mask(head, "lid_upper_R", 0.01)
    assert moved[jaw].max() < 1e-4
    assert moved[mask(head, "eyeball_L")].max() == 0.0  # lids slide over the eyeballs
    # The lids rotate about the eye centre: they keep their distance from it, so they cannot cut in.
    centre = head.regions.landmarks["eye_center_L"]
    lid = mask(head, "lid_upper_L", 0.9)
    before = np.linalg.norm(head.mesh.vertices[lid] - centre, axis=1)
    after = np.linalg.norm(deform(head.mesh.vertices, head.regions, expression("eyeBlink"), 1.0)[lid] - centre, axis=1)
    np.testing.assert_allclose(after, before, atol=1e-5)


def test_jaw_open_moves_jaw_not_brows(head) -> None:
    moved = motion(head, "jawOpen")
    assert moved[mask(head, "jaw", 0.9)].max() > 0.05
    assert moved[mask(head, "brow_L", 0.3) | mask(head, "brow_R", 0.3)].max() < 1e-4
    assert moved[mask(head, "eyeball_L") | mask(head, "eyeball_R")].max() < 1e-4
    # The chin goes down, not up.
    chin = mask(head, "lip_lower", 0.5) & (head.mesh.vertices[:, 2] > head.regions.landmarks["mouth_center"][2] - 0.05)
    moved_vertices = deform(head.mesh.vertices, head.regions, expression("jawOpen"), 1.0)
    assert (moved_vertices[chin, 1] - head.mesh.vertices[chin, 1]).mean() < -0.01


def test_split_acts_move_both_sides(head) -> None:
    moved = motion(head, "mouthSmile")
    assert moved[mask(head, "mouth_corner_L")].max() > 0.01
    assert moved[mask(head, "mouth_corner_R")].max() > 0.01
    brows = motion(head, "browInnerUp")
    assert brows[mask(head, "brow_L", 0.3)].max() > 0.005 and brows[mask(head, "brow_R", 0.3)].max() > 0.005
    assert brows[mask(head, "jaw", 0.9)].max() < 1e-4


def test_every_library_act_moves_something_and_stays_bounded(head) -> None:
    for entry in LIBRARY:
        moved = motion(head, entry.name)
        assert moved.max() > 0.003, entry.name
        assert moved.max() < 0.35, entry.name
        assert np.isfinite(moved).all()


def test_eye_look_turns_eyeballs_rigidly(head) -> None:
    ball = mask(head, "eyeball_L")
    moved = deform(head.mesh.vertices, head.regions, expression("eyeLookLeft"), 1.0)
    centre = head.regions.landmarks["eye_center_L"]
    radii_before = np.linalg.norm(head.mesh.vertices[ball] - centre, axis=1)
    radii_after = np.linalg.norm(moved[ball] - centre, axis=1)
    np.testing.assert_allclose(radii_after, radii_before, atol=1e-5)
    assert np.abs(moved[ball] - head.mesh.vertices[ball]).max() > 1e-3


def test_weight_zero_is_exactly_neutral_and_ramp(head) -> None:
    for name in ("jawOpen", "eyeBlink", "mouthSmile", "earsBack"):
        neutral = deform(head.mesh.vertices, head.regions, expression(name), 0.0)
        np.testing.assert_array_equal(neutral, head.mesh.vertices)
    weights = ease(9)
    assert weights[0] == 0.0 and weights[-1] == 1.0 and (np.diff(weights) > 0).all()
    half = motion(head, "jawOpen", 0.5).max()
    assert 0.3 < half / motion(head, "jawOpen", 1.0).max() < 0.7


def test_custom_expressions_act_by_region(head) -> None:
    custom = custom_expression("tongueCurl", "curls its tongue", region="mouth")
    moved = deform(head.mesh.vertices, head.regions, custom, 1.0)
    assert np.abs(moved - head.mesh.vertices).max() > 0.01
    chosen = select_expressions(["jawOpen", "tongueCurl=curls its tongue"])
    assert [e.name for e in chosen] == ["jawOpen", "tongueCurl"]


def test_capture_frames_are_valid_and_start_neutral(head, tmp_path: Path) -> None:
    expressions = select_expressions(["jawOpen", "eyeBlink"])
    capture = write_performance(
        head.mesh,
        head.regions,
        expressions,
        tmp_path / "cap",
        views=2,
        frames=4,
        size=48,
        color_drift=0.0,
        geometry_jitter=0.0,
    )
    checked = read_capture(tmp_path / "cap")
    assert checked.sequence_names == ["jawOpen", "eyeBlink"]
    assert list(checked.cameras) == ["front", "view01"]
    front = checked.cameras["front"]
    azimuth, _, _ = front.view_angles()
    assert abs(azimuth) < 1e-6
    jaw = capture.read_frames("jawOpen", "front")
    blink = capture.read_frames("eyeBlink", "front")
    assert jaw.shape == (4, 48, 48, 4)
    np.testing.assert_array_equal(jaw[0], blink[0])  # frame 0 is the same neutral head
    assert (jaw[0, ..., 3] > 0).mean() > 0.1  # the head fills part of the frame
    assert np.abs(jaw[-1].astype(int) - jaw[0].astype(int)).max() > 40  # and then it moves


def test_colour_drift_changes_side_views_only(head, tmp_path: Path) -> None:
    expressions = select_expressions(["jawOpen"])
    plain = write_performance(
        head.mesh,
        head.regions,
        expressions,
        tmp_path / "a",
        views=2,
        frames=2,
        size=32,
        color_drift=0.0,
        geometry_jitter=0.0,
    )
    drift = write_performance(
        head.mesh,
        head.regions,
        expressions,
        tmp_path / "b",
        views=2,
        frames=2,
        size=32,
        color_drift=0.1,
        geometry_jitter=0.0,
        seed=5,
    )
    np.testing.assert_array_equal(plain.read_frames("jawOpen", "front"), drift.read_frames("jawOpen", "front"))
    side_plain = plain.read_frames("jawOpen", "view01").astype(int)
    side_drift = drift.read_frames("jawOpen", "view01").astype(int)
    assert np.abs(side_plain[..., :3] - side_drift[..., :3]).max() > 3


def test_asset_and_capture_stages_through_the_runner(tmp_path: Path) -> None:
    settings = {
        "asset": "procedural",
        "video": "procedural",
        "embedding": False,
        "expressions": ["jawOpen", "eyeBlink"],
        "capture_views": 2,
        "capture_frames": 3,
        "capture_size": 32,
    }
    bundle = Runner("test", [AssetStage(), CaptureStage()], tmp_path / "b", settings, prompt="a grizzly bear").run()
    manifest = bundle.read_manifest()
    assert manifest.status == "complete"
    assert manifest.providers["capture"]["name"] == "procedural"
    capture = read_capture(bundle.path(CAPTURE_DIR))
    assert capture.sequence_names == ["jawOpen", "eyeBlink"]
    assert manifest.metrics["capture"]["images"] == 2 * 3 * 2
    assert "grizzly bear" in capture.sequences[0].prompt.lower()


def test_capture_needs_regions(tmp_path: Path) -> None:
    import trimesh

    sphere = trimesh.creation.icosphere(2)
    path = tmp_path / "ball.ply"
    sphere.export(path)
    settings = {"asset": f"mesh:{path}", "video": "procedural"}
    with pytest.raises(InputError, match="needs facial regions"):
        Runner("test", [AssetStage(), CaptureStage()], tmp_path / "b", settings).run()


def test_bad_capture_settings(tmp_path: Path) -> None:
    from t2bs.procedural.providers import capture_options

    assert (
        capture_options({})["views"] == 4 and capture_options({})["frames"] == 9 and capture_options({})["size"] == 128
    )
    assert capture_options({"preset": "high"})["size"] == 512
    with pytest.raises(InputError, match="preset"):
        capture_options({"preset": "huge"})
    with pytest.raises(InputError, match="capture_views"):
        capture_options({"capture_views": 99})
