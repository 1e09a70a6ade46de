"""Facial regions for `mesh:` heads: MediaPipe's landmarks on the real ICT-FaceKit head, the regions
they place and how `deform` acts with them, a landmarks file, and the messages when there is no face.

MediaPipe runs for real (scripts/setup.sh installs it with the backend's `landmarks` extra). The ICT
feature vertices are the head's own Multi-PIE 68-point landmarks (`landmarks_multipie68` in
ict_head.npz), checked on a render: 36/39 and 42/45 the eye corners of the character's right and left
eye, 48/54 the mouth corners, 30 the nose tip, 8 the chin.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from t2bs.bundle import CAPTURE_DIR
from t2bs.capture import read_capture
from t2bs.cli import main
from t2bs.errors import InputError
from t2bs.expressions import expression
from t2bs.mesh_io import HeadMesh, load_head_mesh
from t2bs.procedural import deform, load_regions
from t2bs.procedural.face_landmarks import (
    REQUIRED_POINTS,
    LandmarksUnavailable,
    cast_rays,
    detect_face_mesh,
    face_landmarks,
    landmarks_from_file,
    mediapipe_installed,
)
from t2bs.procedural.mesh_regions import mesh_pieces, regions_from_landmarks
from t2bs.procedural.providers import missing_regions_message
from t2bs.runner import Runner
from t2bs.stages.asset import AssetStage
from t2bs.stages.capture import CaptureStage
from t2bs.testing.ict_fixture import IctHead, ict_albedo, load_ict_head
from tests.conftest import ICT_HEAD

# Named point -> Multi-PIE 68 index of the ICT vertex that marks it (module docstring).
ICT_FEATURES = {
    "eye_outer_R": 36, "eye_inner_R": 39, "eye_inner_L": 42, "eye_outer_L": 45,
    "mouth_corner_R": 48, "mouth_corner_L": 54, "nose_tip": 30, "chin": 8,
}  # fmt: skip


@pytest.fixture(scope="module")
def ict() -> IctHead:
    return load_ict_head(ICT_HEAD)


@pytest.fixture(scope="module")
def ict_ply(ict: IctHead, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ICT neutral head as a user's vertex-coloured PLY in centimetres, as ict_fixture writes it."""
    albedo = ict_albedo(ict, ict.neutral, np.random.default_rng(0))
    path = tmp_path_factory.mktemp("ict") / "ict_head.ply"
    colours = (albedo * 255).astype(np.uint8)
    trimesh.Trimesh(ict.neutral, ict.faces, vertex_colors=colours, process=False).export(path)
    return path


@pytest.fixture(scope="module")
def ict_mesh(ict_ply: Path) -> HeadMesh:
    return load_head_mesh(ict_ply)


@pytest.fixture(scope="module")
def detected(ict_mesh: HeadMesh) -> tuple[dict[str, np.ndarray], dict]:  # type: ignore[type-arg]
    assert mediapipe_installed(), "mediapipe is missing: run scripts/setup.sh (it installs the landmarks extra)"
    return detect_face_mesh(ict_mesh)


def feature(ict: IctHead, mesh: HeadMesh, name: str) -> np.ndarray:
    """The ICT vertex that marks `name`, in the mesh's normalised frame (PLY keeps the vertex order)."""
    return mesh.vertices[ict.landmarks[ICT_FEATURES[name]]].astype(np.float64)


def motion(mesh: HeadMesh, regions, name: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    """[V] how far each vertex moves at the act's peak, over the bounding-box diagonal."""
    moved = deform(mesh.vertices, regions, expression(name), 1.0)
    return np.linalg.norm(moved - mesh.vertices, axis=1) / mesh.diagonal


def test_mediapipe_finds_the_ict_features(ict: IctHead, ict_mesh: HeadMesh, detected) -> None:  # type: ignore[no-untyped-def]
    points, seen = detected
    assert seen["image"].shape == (512, 512, 3) and seen["hit"].all()
    errors = {name: float(np.linalg.norm(points[name] - feature(ict, ict_mesh, name))) / ict_mesh.diagonal
              for name in ICT_FEATURES}  # fmt: skip
    # Measured: at most 0.010 of the diagonal (the chin; the others 0.002 to 0.007).
    assert max(errors.values()) < 0.015, errors
    # The lifted points lie on the surface, not in front of it or inside.
    distance, _ = trimesh.proximity.ProximityQuery(trimesh.Trimesh(ict_mesh.vertices, ict_mesh.faces)).vertex(
        np.stack(list(points.values()))
    )
    assert distance.max() < 0.01 * ict_mesh.diagonal


def test_ray_casting_returns_the_visible_surface() -> None:
    from t2bs.capture import look_at_camera

    # Two squares, one behind the other: the ray through the middle meets the front one.
    square = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], dtype=float)
    vertices = np.concatenate([square + np.array([0.0, 0.0, 0.5]), square])
    faces = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    camera = look_at_camera("c", (0, 0, 5), (0, 0, 0), (0, 1, 0), 100, 100, 40)
    points, hit = cast_rays(np.array([[50.0, 50.0], [0.2, 0.2]]), vertices, faces, camera.K, camera.world_to_camera)
    np.testing.assert_allclose(points[0], [0, 0, 0.5], atol=1e-9)
    assert hit.tolist() == [True, False] and np.isnan(points[1]).all()


def test_detected_regions_act_in_the_right_places(ict: IctHead, ict_mesh: HeadMesh, detected) -> None:  # type: ignore[no-untyped-def]
    regions = regions_from_landmarks(ict_mesh.vertices, ict_mesh.faces, detected[0])
    chin = ict.landmarks[ICT_FEATURES["chin"]]
    weights = regions.weights

    blink = motion(ict_mesh, regions, "eyeBlink")
    for lid in ("lid_upper_L", "lid_upper_R"):
        assert blink[weights[lid] > 0.5].max() > 0.01, lid
    jaw = weights["jaw"] > 0.01
    assert jaw[chin] and blink[jaw].max() < 1e-4  # the jaw and chin stay put
    assert blink[weights["eyeball_L"] > 0.5].max() == 0.0  # the lids slide over the eyeballs
    # The eyeballs are the ICT's own eyeball pieces.
    start, end = ict.parts["eyeball_left"]
    assert weights["eyeball_L"][start:end].min() == 1.0 and weights["eyeball_L"].sum() == end - start

    jaw_open = motion(ict_mesh, regions, "jawOpen")
    assert jaw_open[chin] > 0.03
    moved = deform(ict_mesh.vertices, regions, expression("jawOpen"), 1.0)
    assert moved[chin, 1] < ict_mesh.vertices[chin, 1] - 0.02  # the chin goes down
    assert jaw_open[(weights["brow_L"] > 0.01) | (weights["brow_R"] > 0.01)].max() < 1e-4
    assert jaw_open[(weights["eyeball_L"] > 0) | (weights["eyeball_R"] > 0)].max() < 1e-4
    # A lower tooth turns with the jaw whole (its shape kept); the upper teeth stay.
    teeth = np.arange(*ict.parts["teeth"])
    labels, _ = mesh_pieces(ict_mesh.vertices, ict_mesh.faces)
    lowest = labels[teeth[np.argmin(ict_mesh.vertices[teeth, 1])]]
    tooth = np.nonzero(labels == lowest)[0]
    before = np.linalg.norm(ict_mesh.vertices[tooth, None] - ict_mesh.vertices[None, tooth], axis=-1)
    after = np.linalg.norm(moved[tooth, None] - moved[None, tooth], axis=-1)
    assert jaw_open[tooth].min() > 0.01 and np.abs(after - before).max() < 1e-5
    highest = labels[teeth[np.argmax(ict_mesh.vertices[teeth, 1])]]
    assert jaw_open[labels == highest].max() < 1e-4

    smile = motion(ict_mesh, regions, "mouthSmile")
    corner = ict.landmarks[ICT_FEATURES["mouth_corner_L"]]
    assert smile[corner] > 0.01 and smile[weights["lid_upper_L"] > 0.5].max() < 1e-4


def test_regions_of_a_one_piece_head_and_of_a_mesh_split_at_seams(ict: IctHead, ict_mesh: HeadMesh) -> None:
    """Without eyeball pieces the eyes are estimated from the lids; seams do not split the skin."""
    skin_end = ict.parts["mouth_socket"][1]  # face, neck and sockets: one piece, no eyeballs or teeth
    vertices = ict_mesh.vertices[:skin_end]
    faces = ict_mesh.faces[(ict_mesh.faces < skin_end).all(axis=1)]
    points = {name: feature(ict, ict_mesh, name) for name in ICT_FEATURES}
    regions = regions_from_landmarks(vertices, faces, points)
    skin = HeadMesh(vertices, faces)
    blink = motion(skin, regions, "eyeBlink")
    assert blink[regions.weights["lid_upper_L"] > 0.5].max() > 0.01
    assert blink[regions.weights["jaw"] > 0.01].max() < 1e-4
    assert regions.weights["eyeball_L"].max() == 0.0
    # The eye's centre, estimated from its corners, lies within a third of a radius of the ICT eyeball's.
    start, end = ict.parts["eyeball_left"]
    ball = ict_mesh.vertices[start:end].astype(np.float64)
    system = np.concatenate([2.0 * ball, np.ones((len(ball), 1))], axis=1)
    sphere, *_ = np.linalg.lstsq(system, (ball**2).sum(axis=1), rcond=None)
    radius = float(np.sqrt(sphere[3] + sphere[:3] @ sphere[:3]))
    assert np.linalg.norm(regions.landmarks["eye_center_L"] - sphere[:3]) < 0.35 * radius

    # A copy of every vertex right of the middle (a UV seam down the face) leaves one skin piece.
    right = np.nonzero(vertices[:, 0] > 0.0)[0]
    split_vertices = np.concatenate([vertices, vertices[right]])
    remap = np.arange(len(vertices))
    remap[right] = len(vertices) + np.arange(len(right))
    split_faces = faces.copy()
    on_right = (vertices[faces][:, :, 0] > 0.0).all(axis=1)
    split_faces[on_right] = remap[faces[on_right]]
    _, skin_mask = mesh_pieces(split_vertices, split_faces)
    assert skin_mask.all()


def write_landmarks(path: Path, points: dict[str, list[float]], **extra: object) -> Path:
    path.write_text(json.dumps({"version": 1, "points": points, **extra}), encoding="utf-8")
    return path


def ict_points_cm(ict: IctHead) -> dict[str, list[float]]:
    """The required points at the ICT feature vertices, in the PLY's own units (centimetres)."""
    return {name: ict.neutral[ict.landmarks[ICT_FEATURES[name]]].tolist() for name in REQUIRED_POINTS}


def test_landmarks_file_places_the_regions(ict: IctHead, ict_ply: Path, ict_mesh: HeadMesh, tmp_path: Path) -> None:
    path = write_landmarks(tmp_path / "face.json", ict_points_cm(ict))
    points, origin = face_landmarks(ict_mesh, path)
    assert origin == f"file {path}"
    np.testing.assert_allclose(points["nose_tip"], feature(ict, ict_mesh, "nose_tip"), atol=1e-5)
    # Through the asset stage: regions and the landmarks used, in the file's coordinates.
    settings = {"asset": f"mesh:{ict_ply}", "landmarks": str(path)}
    bundle = Runner("test", [AssetStage()], tmp_path / "b", settings).run()
    regions = load_regions(bundle.path("asset/regions.npz"), ict_mesh.vertex_count)
    assert motion(ict_mesh, regions, "jawOpen")[ict.landmarks[ICT_FEATURES["chin"]]] > 0.03
    written = json.loads(bundle.path("asset/landmarks.json").read_text())
    np.testing.assert_allclose(written["points"]["chin"], ict_points_cm(ict)["chin"], atol=1e-4)
    assert bundle.read_manifest().providers["asset"]["regions"] == f"file {path}"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('{"points": [1, 2, 3]}', "must hold an object like"),
        ('{"version": 2, "points": {}}', "has version 2"),
        ('{"points": {"nose_tip": [0, 0, 1]}}', "lacks the points eye_outer_L"),
        ('{"points": {"nose": [0, 0, 1]}}', "names unknown points (nose)"),
    ],
)
def test_malformed_landmarks_files(ict_mesh: HeadMesh, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        landmarks_from_file(path, ict_mesh)


def test_landmarks_that_do_not_fit_the_mesh(ict: IctHead, ict_mesh: HeadMesh, tmp_path: Path) -> None:
    points = ict_points_cm(ict)
    with pytest.raises(InputError, match=r"gives chin as \['a', 1, 2\]; write three numbers"):
        landmarks_from_file(write_landmarks(tmp_path / "a.json", {**points, "chin": ["a", 1, 2]}), ict_mesh)
    in_metres = {name: [v / 100.0 for v in value] for name, value in points.items()}
    with pytest.raises(InputError, match=r"lies .* units from the mesh ict_head\.ply; give points on its surface"):
        landmarks_from_file(write_landmarks(tmp_path / "m.json", in_metres), ict_mesh)
    swapped = {**points, "eye_outer_L": points["eye_outer_R"], "eye_outer_R": points["eye_outer_L"]}
    with pytest.raises(InputError, match="do not make a face: the eye corners are not in the order"):
        landmarks_from_file(write_landmarks(tmp_path / "s.json", swapped), ict_mesh)
    with pytest.raises(InputError, match="does not exist"):
        landmarks_from_file(tmp_path / "missing.json", ict_mesh)


def test_bad_landmarks_on_the_command_line(ict_ply: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"points": {"nose_tip": [0, 0]}}', encoding="utf-8")
    args = ["generate", "a man", "--asset", f"mesh:{ict_ply}", "--landmarks", str(bad), "--out", str(tmp_path / "b")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("t2bs: The landmarks file") and "lacks the points" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "b").exists()  # it failed before any stage ran
    assert main(["generate", "a man", "--landmarks", str(bad), "--out", str(tmp_path / "c")]) == 2
    assert "use it with --asset mesh:PATH" in capsys.readouterr().err


def test_a_head_without_a_face_gets_one_clear_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sphere = tmp_path / "ball.ply"
    trimesh.creation.icosphere(3).export(sphere)
    out = tmp_path / "b"
    args = ["generate", "a ball", "--asset", f"mesh:{sphere}", "--video", "procedural", "--expressions", "jawOpen"]
    assert main([*args, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "needs facial regions and this head has none (MediaPipe found no human face in a frontal render)" in err
    assert "--landmarks FILE.json" in err and "--video capture:DIR" in err
    assert not (out / "asset" / "regions.npz").exists()


def test_without_mediapipe_the_message_says_how_to_get_it(ict_mesh: HeadMesh, monkeypatch: pytest.MonkeyPatch) -> None:
    from t2bs.procedural import face_landmarks as module, providers

    monkeypatch.setattr(module, "mediapipe_installed", lambda: False)
    monkeypatch.setattr(providers, "mediapipe_installed", lambda: False)
    with pytest.raises(LandmarksUnavailable, match="MediaPipe is not installed") as caught:
        face_landmarks(ict_mesh, None)
    message = missing_regions_message({"regions_missing": caught.value.reason})
    assert "(MediaPipe is not installed)" in message
    assert 'pip install "t2bs[landmarks]", then pip install --no-deps mediapipe==0.10.21' in message


def test_asset_and_capture_stages_act_the_ict_mesh(ict: IctHead, ict_ply: Path, tmp_path: Path) -> None:
    settings = {
        "asset": f"mesh:{ict_ply}",
        "video": "procedural",
        "expressions": ["jawOpen", "eyeBlink"],
        "capture_views": 2,
        "capture_frames": 3,
        "capture_size": 64,
    }
    bundle = Runner("test", [AssetStage(), CaptureStage()], tmp_path / "b", settings).run()
    manifest = bundle.read_manifest()
    assert manifest.status == "complete" and manifest.providers["asset"]["regions"] == "mediapipe"
    capture = read_capture(bundle.path(CAPTURE_DIR))  # validates the capture directory
    assert capture.sequence_names == ["jawOpen", "eyeBlink"]
    frames = capture.read_frames("jawOpen", "front").astype(int)
    assert frames.shape == (3, 64, 64, 4)
    # The mouth opens: the lower half of the face changes, the top of the head does not.
    change = np.abs(frames[-1, ..., :3] - frames[0, ..., :3]).sum(axis=-1)
    assert change[30:46, 24:40].max() > 40 and change[:16].max() == 0
    assert json.loads(bundle.path("asset/landmarks.json").read_text())["version"] == 1
