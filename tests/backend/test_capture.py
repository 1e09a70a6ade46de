"""The capture directory: writing, reading, camera maths and every validation error."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from t2bs.capture import (
    CAPTURE_JSON,
    Camera,
    CaptureWriter,
    camera_problem,
    copy_capture,
    is_safe_name,
    look_at_camera,
    orbit_cameras,
    read_capture,
    write_video,
)
from t2bs.errors import InputError

SIZE = 32
FRAMES = 5


def synthetic_frames(view: int, alpha: bool, count: int = FRAMES, size: int = SIZE) -> np.ndarray:
    """[T, size, size, 3 or 4] uint8: smooth gradients that move with t (mp4-friendly), and a disc
    mask as alpha."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    frames = []
    for t in range(count):
        red = 40 + 150 * xx + 10 * t
        green = 30 + 160 * yy + 20 * view
        blue = 90 + 60 * np.sin(2 * np.pi * (xx + yy + 0.1 * t))
        channels = [red, green, blue]
        if alpha:
            channels.append(255.0 * (((xx - 0.5) ** 2 + (yy - 0.5) ** 2) < 0.16))
        frames.append(np.stack(channels, axis=-1))
    return np.clip(np.round(np.stack(frames)), 0, 255).astype(np.uint8)


def cameras() -> list[Camera]:
    return orbit_cameras(2, 3.0, 10.0, SIZE, SIZE, 30.0)


SOURCE_FRAMES: dict[str, dict[str, np.ndarray]] = {
    "jawOpen": {f"view{v:02d}": synthetic_frames(v, alpha=True) for v in range(2)},
    "smile": {f"view{v:02d}": synthetic_frames(v, alpha=False) for v in range(2)},
    "blink": {"view00": synthetic_frames(0, alpha=False)},
}


def write_base(root: Path) -> None:
    writer = CaptureWriter(root)
    for camera in cameras():
        writer.add_camera(camera)
    writer.write_sequence("jawOpen", "It opens its jaw.", 24, SOURCE_FRAMES["jawOpen"], fmt="png")
    writer.write_sequence("smile", "It smiles.", 24, SOURCE_FRAMES["smile"], fmt="mp4")
    writer.write_sequence("blink", "It blinks.", 12.5, SOURCE_FRAMES["blink"], fmt="png")
    writer.close()


@pytest.fixture(scope="module")
def base_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("base") / "capture"
    write_base(root)
    return root


@pytest.fixture
def capture_dir(base_capture: Path, tmp_path: Path) -> Path:
    """A fresh, valid copy of the base capture that a test may break."""
    root = tmp_path / "capture"
    shutil.copytree(base_capture, root)
    return root


def edit_json(root: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = root / CAPTURE_JSON
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def expect_error(root: Path, *fragments: str, check_media: bool = True) -> str:
    with pytest.raises(InputError) as info:
        read_capture(root, check_media=check_media)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.endswith("."), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# -- round trip ----------------------------------------------------------------------------------


def test_round_trip_png_exact_mp4_close(capture_dir: Path) -> None:
    capture = read_capture(capture_dir)
    assert capture.sequence_names == ["jawOpen", "smile", "blink"]
    assert set(capture.cameras) == {"view00", "view01"}
    for original in cameras():
        read = capture.cameras[original.name]
        assert (read.width, read.height) == (SIZE, SIZE)
        np.testing.assert_allclose(read.K, original.K)
        np.testing.assert_allclose(read.world_to_camera, original.world_to_camera)

    jaw = capture.sequence("jawOpen")
    assert jaw.prompt == "It opens its jaw." and jaw.fps == 24
    assert capture.sequence("blink").fps == 12.5
    assert capture.frame_count("jawOpen") == FRAMES
    assert capture.frame_count("smile") == FRAMES
    assert capture.view_frame_count("smile", "view01") == FRAMES

    for view, source in SOURCE_FRAMES["jawOpen"].items():
        frames = capture.read_frames("jawOpen", view)
        assert frames.dtype == np.uint8 and frames.shape == (FRAMES, SIZE, SIZE, 4)
        np.testing.assert_array_equal(frames, source)  # PNG is exact, alpha included
        assert capture.has_alpha("jawOpen", view)
        assert not capture.is_video("jawOpen", view)

    for view, source in SOURCE_FRAMES["smile"].items():
        frames = capture.read_frames("smile", view)
        assert frames.shape == (FRAMES, SIZE, SIZE, 4)
        assert (frames[..., 3] == 255).all()
        error = np.abs(frames[..., :3].astype(np.int32) - source)
        # yuv420p halves chroma resolution; decoding must not be biased (ffmpeg's default is ~-1).
        assert error.mean() < 2.0 and error.max() < 32, (error.mean(), error.max())
        assert abs((frames[..., :3].astype(np.float64) - source).mean()) < 0.4
        assert not capture.has_alpha("smile", view)
        assert capture.is_video("smile", view)
        assert capture.media_path("smile", view) == capture_dir / "smile" / f"{view}.mp4"

    blink = capture.read_frames("blink", "view00")
    np.testing.assert_array_equal(blink[..., :3], SOURCE_FRAMES["blink"]["view00"])
    assert (blink[..., 3] == 255).all() and not capture.has_alpha("blink", "view00")


def test_capture_json_is_readable_and_stable(capture_dir: Path) -> None:
    text = (capture_dir / CAPTURE_JSON).read_text(encoding="utf-8")
    assert '"K": [\n        [' in text  # one matrix row per line
    data = json.loads(text)
    assert data["version"] == 1
    assert data["sequences"][0]["views"] == {"view00": "jawOpen/view00", "view01": "jawOpen/view01"}
    assert data["sequences"][1]["views"]["view00"] == "smile/view00.mp4"
    assert read_capture(capture_dir, check_media=False).to_dict() == data


def test_unknown_sequence_and_view_are_input_errors(capture_dir: Path) -> None:
    capture = read_capture(capture_dir, check_media=False)
    with pytest.raises(InputError, match="no sequence 'frown'"):
        capture.sequence("frown")
    with pytest.raises(InputError, match="no view 'view01'"):
        capture.read_frames("blink", "view01")


def test_check_media_false_reads_only_the_json(capture_dir: Path) -> None:
    shutil.rmtree(capture_dir / "jawOpen")
    capture = read_capture(capture_dir, check_media=False)
    assert capture.sequence_names == ["jawOpen", "smile", "blink"]
    with pytest.raises(InputError, match="does not exist"):
        capture.read_frames("jawOpen", "view00")
    expect_error(capture_dir, "jawOpen", "view00", "does not exist")


def test_writer_writes_capture_json_last(tmp_path: Path) -> None:
    root = tmp_path / "capture"
    writer = CaptureWriter(root)
    for camera in cameras():
        writer.add_camera(camera)
    writer.write_sequence("jawOpen", "", 24, SOURCE_FRAMES["jawOpen"])
    assert not (root / CAPTURE_JSON).exists()
    expect_error(root, str(root), "has no capture.json")
    capture = writer.close()
    assert capture.frame_count("jawOpen") == FRAMES
    assert writer.close() is capture


def test_writer_context_manager_leaves_no_json_after_an_error(tmp_path: Path) -> None:
    root = tmp_path / "capture"
    with pytest.raises(RuntimeError), CaptureWriter(root) as writer:
        writer.add_camera(cameras()[0])
        writer.write_sequence("jawOpen", "", 24, {"view00": SOURCE_FRAMES["jawOpen"]["view00"]})
        raise RuntimeError("renderer crashed")
    assert not (root / CAPTURE_JSON).exists()


def test_writer_refuses_bad_input(tmp_path: Path) -> None:
    writer = CaptureWriter(tmp_path / "capture")
    for camera in cameras():
        writer.add_camera(camera)
    with pytest.raises(ValueError, match="added twice"):
        writer.add_camera(cameras()[0])
    scaled = cameras()[0]
    scaled.name = "scaled"
    scaled.world_to_camera[:3, :3] *= 2.0
    with pytest.raises(ValueError, match="not rigid"):
        writer.add_camera(scaled)
    frames = SOURCE_FRAMES["smile"]
    with pytest.raises(ValueError, match="unknown camera 'side'"):
        writer.write_sequence("a", "", 24, {"side": frames["view00"]})
    with pytest.raises(ValueError, match="different frame counts"):
        writer.write_sequence("a", "", 24, {"view00": frames["view00"], "view01": frames["view01"][:3]})
    with pytest.raises(ValueError, match="camera is 32x32"):
        writer.write_sequence("a", "", 24, {"view00": frames["view00"][:, :16]})
    with pytest.raises(ValueError, match="uint8"):
        writer.write_sequence("a", "", 24, {"view00": frames["view00"].astype(np.float32)})
    with pytest.raises(ValueError, match="not a safe file name"):
        writer.write_sequence("../a", "", 24, {"view00": frames["view00"]})
    with pytest.raises(ValueError, match="no alpha"):
        writer.write_sequence("a", "", 24, {"view00": SOURCE_FRAMES["jawOpen"]["view00"]}, fmt="mp4")
    with pytest.raises(ValueError, match="fps"):
        writer.write_sequence("a", "", 0, {"view00": frames["view00"]})
    with pytest.raises(ValueError, match="no sequence"):
        writer.close()
    with pytest.raises(ValueError, match="not empty"):
        CaptureWriter(tmp_path)


def test_write_video_refuses_odd_sizes_and_keeps_opaque_rgba(tmp_path: Path) -> None:
    odd = np.zeros((2, 31, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="even width and height, got 32x31"):
        write_video(tmp_path / "odd.mp4", odd, 24)
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind
    opaque = np.full((3, 16, 16, 4), 255, np.uint8)
    write_video(tmp_path / "opaque.mp4", opaque, 30)
    assert (tmp_path / "opaque.mp4").stat().st_size > 0


def test_writer_overwrite_replaces_an_old_capture(capture_dir: Path) -> None:
    writer = CaptureWriter(capture_dir, overwrite=True)
    assert list(capture_dir.iterdir()) == []
    writer.add_camera(cameras()[0])
    writer.write_sequence("blink", "", 24, SOURCE_FRAMES["blink"])
    assert writer.close().sequence_names == ["blink"]


def test_copy_capture_copies_only_referenced_files(capture_dir: Path, tmp_path: Path) -> None:
    (capture_dir / "notes.txt").write_text("not part of the capture")
    (capture_dir / "jawOpen" / "view00" / "thumbnail.png").write_bytes(b"x")
    source = read_capture(capture_dir)
    seen: list[tuple[int, int, str]] = []
    copied = copy_capture(source, tmp_path / "copy", on_sequence=lambda i, n, name: seen.append((i, n, name)))
    assert seen == [(0, 3, "jawOpen"), (1, 3, "smile"), (2, 3, "blink")]
    assert copied.root == tmp_path / "copy"
    assert not (tmp_path / "copy" / "notes.txt").exists()
    assert not (tmp_path / "copy" / "jawOpen" / "view00" / "thumbnail.png").exists()
    reread = read_capture(tmp_path / "copy")
    assert reread.to_dict() == source.to_dict()
    np.testing.assert_array_equal(reread.read_frames("jawOpen", "view01"), source.read_frames("jawOpen", "view01"))
    np.testing.assert_array_equal(reread.read_frames("smile", "view00"), source.read_frames("smile", "view00"))
    with pytest.raises(ValueError, match="not an empty folder"):
        copy_capture(source, tmp_path / "copy")


# -- camera maths --------------------------------------------------------------------------------


def test_look_at_is_rigid_and_projects_the_target_to_the_principal_point() -> None:
    eye, target = np.array([0.4, 0.3, 2.5]), np.array([0.05, 0.1, -0.2])
    camera = look_at_camera("cam", eye, target, (0, 1, 0), 64, 48, 40.0)
    R = camera.rotation
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
    assert math.isclose(np.linalg.det(R), 1.0, abs_tol=1e-12)
    assert camera_problem(camera) is None
    np.testing.assert_allclose(camera.center, eye, atol=1e-12)
    np.testing.assert_allclose(camera.camera_to_world @ camera.world_to_camera, np.eye(4), atol=1e-12)
    assert math.isclose(camera.fov_y_deg, 40.0)

    uv, depth = camera.project(target[None])
    np.testing.assert_allclose(uv[0], (camera.cx, camera.cy), atol=1e-9)
    np.testing.assert_allclose(uv[0], (32.0, 24.0), atol=1e-9)
    assert math.isclose(depth[0], np.linalg.norm(target - eye))

    forward = camera.forward
    _, depth = camera.project(np.stack([eye + forward, eye - forward]))
    assert depth[0] > 0 > depth[1]


def test_frontal_orbit_camera_sees_the_plus_z_side_upright() -> None:
    front, left, back, right = orbit_cameras(4, 2.0, 0.0, 64, 64, 30.0)
    assert front.name == "view00"
    np.testing.assert_allclose(front.center, (0, 0, 2), atol=1e-12)
    np.testing.assert_allclose(front.forward, (0, 0, -1), atol=1e-12)
    points = np.array([[0, 0, 0.5], [0, 0, -0.5], [0.5, 0, 0], [0, 0.5, 0]], dtype=np.float64)
    uv, depth = front.project(points)
    assert depth[0] < depth[1]  # the face (+Z) is nearer than the back of the head
    assert uv[2, 0] > front.cx  # +X lands right of centre: OpenCV x right
    assert uv[3, 1] < front.cy  # +Y (up) lands above centre: OpenCV y down
    np.testing.assert_allclose(left.center, (2, 0, 0), atol=1e-12)  # azimuth grows toward +X
    for index, camera in enumerate((front, left, back, right)):
        azimuth, elevation, distance = camera.view_angles()
        assert math.isclose((azimuth - 90.0 * index + 180.0) % 360.0 - 180.0, 0.0, abs_tol=1e-9)
        assert math.isclose(elevation, 0.0, abs_tol=1e-9) and math.isclose(distance, 2.0)
    raised = orbit_cameras(3, 2.0, 25.0, 64, 64, 30.0, target=(0.0, 0.1, 0.0))
    assert math.isclose(raised[1].view_angles((0.0, 0.1, 0.0))[1], 25.0)
    uv, _ = raised[2].project(np.array([[0.0, 0.1, 0.0]]))
    np.testing.assert_allclose(uv[0], (32.0, 32.0), atol=1e-9)


def test_look_at_refuses_degenerate_input() -> None:
    with pytest.raises(ValueError, match="coincide"):
        look_at_camera("c", (0, 0, 1), (0, 0, 1), (0, 1, 0), 8, 8, 30)
    with pytest.raises(ValueError, match="parallel"):
        look_at_camera("c", (0, 2, 0), (0, 0, 0), (0, 1, 0), 8, 8, 30)
    with pytest.raises(ValueError, match="fov_deg"):
        look_at_camera("c", (0, 0, 2), (0, 0, 0), (0, 1, 0), 8, 8, 180)


@pytest.mark.parametrize(
    ("name", "safe"),
    [("jawOpen", True), ("mouthSmile_L", True), ("take-2.v1", True), ("view00", True),
     ("", False), ("../x", False), ("a/b", False), ("a\\b", False), (".hidden", False),
     ("dot.", False), ("CON", False), ("nul.txt", False), ("a b", False), ("x" * 129, False)],
)  # fmt: skip
def test_safe_names(name: str, safe: bool) -> None:
    assert is_safe_name(name) is safe


# -- validation: capture.json --------------------------------------------------------------------


def _set_camera(key: str, value: Any, camera: str = "view01") -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["cameras"][camera][key] = value

    return change


def _set_w2c(row: int, col: int, value: float) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["cameras"]["view01"]["world_to_camera"][row][col] = value

    return change


def _scale_rotation(factors: tuple[float, float, float]) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        matrix = np.array(data["cameras"]["view01"]["world_to_camera"])
        matrix[:3, :3] = matrix[:3, :3] * np.array(factors)[:, None]
        data["cameras"]["view01"]["world_to_camera"] = matrix.tolist()

    return change


def _shear(data: dict[str, Any]) -> None:
    matrix = np.array(data["cameras"]["view01"]["world_to_camera"])
    matrix[:3, :3] = np.array([[1, 0.2, 0], [0, 1, 0], [0, 0, 1]]) @ matrix[:3, :3]
    data["cameras"]["view01"]["world_to_camera"] = matrix.tolist()


def _set_sequence(key: str, value: Any, index: int = 1) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["sequences"][index][key] = value

    return change


def _rename_camera(data: dict[str, Any]) -> None:
    data["cameras"]["a/b"] = data["cameras"].pop("view01")


JSON_ERRORS: list[tuple[str, Callable[[dict[str, Any]], None], tuple[str, ...]]] = [
    ("no version", lambda d: d.pop("version"), ('"version" is missing',)),
    ("version 2", lambda d: d.update(version=2), ("version 2 is not supported",)),
    ("version true", lambda d: d.update(version=True), ("version True is not supported",)),
    ("no cameras", lambda d: d.pop("cameras"), ('"cameras"', "at least one camera")),
    ("empty cameras", lambda d: d.update(cameras={}), ('"cameras"', "at least one camera")),
    ("no sequences", lambda d: d.update(sequences=[]), ('"sequences"', "at least one sequence")),
    ("sequences not list", lambda d: d.update(sequences={}), ('"sequences"',)),
    ("duplicate", lambda d: d["sequences"].append(dict(d["sequences"][0])), ("'jawOpen' appears twice",)),
    ("case duplicate", _set_sequence("name", "JAWOPEN"), ("'jawOpen' and 'JAWOPEN' differ only in case",)),
    ("unknown camera", lambda d: d["sequences"][1]["views"].update(side="smile/side.mp4"),
     ("sequence 'smile'", "camera 'side'", "not among the cameras (view00, view01)")),
    ("no views", _set_sequence("views", {}), ("sequence 'smile'", "views")),
    ("unsafe sequence", _set_sequence("name", "../smile"), ("sequence '../smile'", "not a safe file name")),
    ("slash in sequence", _set_sequence("name", "a/b"), ("sequence 'a/b'", "not a safe file name")),
    ("reserved sequence", _set_sequence("name", "con"), ("sequence 'con'", "not a safe file name")),
    ("unnamed sequence", _set_sequence("name", ""), ("sequence #1 has no name",)),
    ("unsafe camera", _rename_camera, ("camera 'a/b'", "not a safe file name")),
    ("fps zero", _set_sequence("fps", 0), ("sequence 'smile'", "fps must be a positive number, not 0")),
    ("fps negative", _set_sequence("fps", -24), ("sequence 'smile'", "fps must be a positive number")),
    ("fps text", _set_sequence("fps", "24"), ("sequence 'smile'", "fps must be a positive number, not '24'")),
    ("fps missing", lambda d: d["sequences"][1].pop("fps"), ("sequence 'smile'", "fps is missing")),
    ("prompt not text", _set_sequence("prompt", 3), ("sequence 'smile'", "prompt must be text")),
    ("escaping path", lambda d: d["sequences"][1]["views"].update(view00="../smile/view00.mp4"),
     ("sequence 'smile', view 'view00'", "relative path inside the capture folder")),
    ("absolute path", lambda d: d["sequences"][1]["views"].update(view00="/tmp/view00.mp4"),
     ("sequence 'smile', view 'view00'", "relative path")),
    ("width zero", _set_camera("width", 0), ("camera 'view01'", "width must be a positive whole number")),
    ("height float", _set_camera("height", 32.5), ("camera 'view01'", "height must be a positive whole number")),
    ("K 2x3", _set_camera("K", [[60, 0, 16], [0, 60, 16]]), ("camera 'view01'", "K must be a 3x3 list")),
    ("K text", _set_camera("K", "identity"), ("camera 'view01'", "K must be a 3x3 list")),
    ("K bottom row", _set_camera("K", [[60, 0, 16], [0, 60, 16], [0, 1, 1]]),
     ("camera 'view01'", "K's bottom row is [0, 1, 1], not [0, 0, 1]")),
    ("K fx zero", _set_camera("K", [[0, 0, 16], [0, 60, 16], [0, 0, 1]]),
     ("camera 'view01'", "focal lengths", "must be positive")),
    ("K fy negative", _set_camera("K", [[60, 0, 16], [0, -60, 16], [0, 0, 1]]),
     ("camera 'view01'", "fy=-60")),
    ("K skew", _set_camera("K", [[60, 2, 16], [0, 60, 16], [0, 0, 1]]), ("camera 'view01'", "skew")),
    ("K principal point outside", _set_camera("K", [[60, 0, 256], [0, 60, 256], [0, 0, 1]]),
     ("camera 'view01'", "K does not match the image size", "(256, 256)", "32x32")),
    ("K principal point negative", _set_camera("K", [[60, 0, -1], [0, 60, 16], [0, 0, 1]]),
     ("camera 'view01'", "K does not match the image size")),
    ("w2c 3x4", _set_camera("world_to_camera", [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 3]]),
     ("camera 'view01'", "world_to_camera must be a 4x4 list")),
    ("w2c NaN", _set_w2c(0, 3, float("nan")), ("camera 'view01'", "world_to_camera contains NaN or infinite")),
    ("w2c inf", _set_w2c(1, 1, float("inf")), ("camera 'view01'", "NaN or infinite")),
    ("w2c bottom row", _set_w2c(3, 2, 0.5), ("camera 'view01'", "bottom row is [0, 0, 0.5, 1], not [0, 0, 0, 1]")),
    ("w2c singular", _scale_rotation((1.0, 1.0, 0.0)), ("camera 'view01'", "world_to_camera is singular")),
    ("w2c scaled", _scale_rotation((2.0, 2.0, 2.0)), ("camera 'view01'", "is not rigid (it scales or shears)")),
    ("w2c slightly scaled", _scale_rotation((1.0, 1.0, 1.001)),
     ("camera 'view01'", "is not rigid (it scales or shears)")),
    ("w2c sheared", _shear, ("camera 'view01'", "is not rigid (it scales or shears)")),
    ("w2c mirrored", _scale_rotation((1.0, 1.0, -1.0)), ("camera 'view01'", "is not rigid (it mirrors the scene)")),
    ("K missing", _set_camera("K", None, camera="view00"), ("camera 'view00'", "K must be")),
    ("camera not object", lambda d: d["cameras"].update(view00="front"), ("camera 'view00' must be an object",)),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "fragments"), JSON_ERRORS, ids=[case for case, _, _ in JSON_ERRORS])
def test_capture_json_errors(
    capture_dir: Path, case: str, change: Callable[[dict[str, Any]], None], fragments: tuple[str, ...]
) -> None:
    edit_json(capture_dir, change)
    # The JSON checks need no media, and with media checks the same error comes first.
    message = expect_error(capture_dir, str(capture_dir / CAPTURE_JSON), *fragments, check_media=False)
    assert expect_error(capture_dir) == message


def test_rigid_within_tolerance_is_accepted(capture_dir: Path) -> None:
    edit_json(capture_dir, _scale_rotation((1.0, 1.0, 1.00002)))
    assert read_capture(capture_dir, check_media=False).cameras["view01"].world_to_camera[2, 2] != 0


def test_folder_and_file_errors(tmp_path: Path, capture_dir: Path) -> None:
    expect_error(tmp_path / "nowhere", f"Capture folder {tmp_path / 'nowhere'} does not exist")
    (tmp_path / "file").write_text("x")
    expect_error(tmp_path / "file", "is a file, not a folder")
    (capture_dir / CAPTURE_JSON).unlink()
    expect_error(capture_dir, f"Capture folder {capture_dir} has no capture.json")
    (capture_dir / CAPTURE_JSON).write_text('{"version": 1,\n "cameras": {', encoding="utf-8")
    expect_error(capture_dir, str(capture_dir / CAPTURE_JSON), "is not valid JSON", "line 2")
    (capture_dir / CAPTURE_JSON).write_text("[1, 2]", encoding="utf-8")
    expect_error(capture_dir, "must hold a JSON object")
    (capture_dir / CAPTURE_JSON).write_bytes(b"\xff\xfe\x00garbage")
    expect_error(capture_dir, str(capture_dir / CAPTURE_JSON), "cannot be read")


# -- validation: media ---------------------------------------------------------------------------


def test_missing_video_and_png_folder(capture_dir: Path) -> None:
    (capture_dir / "smile" / "view01.mp4").unlink()
    expect_error(
        capture_dir, str(capture_dir / "smile" / "view01.mp4"), "(sequence 'smile', view 'view01')", "does not exist"
    )
    shutil.copytree(capture_dir / "jawOpen", capture_dir / "spare")
    shutil.rmtree(capture_dir / "jawOpen" / "view00")
    read_capture(capture_dir, check_media=False)
    expect_error(capture_dir, "jawOpen/view00 (sequence 'jawOpen', view 'view00') does not exist")


def test_random_bytes_named_mp4(capture_dir: Path) -> None:
    (capture_dir / "smile" / "view00.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    message = expect_error(
        capture_dir, str(capture_dir / "smile" / "view00.mp4"), "view 'view00'", "is not a readable video"
    )
    assert "moov atom not found" in message or "Invalid data" in message


def test_truncated_mp4(capture_dir: Path) -> None:
    video = capture_dir / "smile" / "view01.mp4"
    video.write_bytes(video.read_bytes()[: video.stat().st_size * 2 // 3])
    expect_error(capture_dir, str(video), "is not a readable video")


def test_empty_png_folder(capture_dir: Path) -> None:
    for frame in (capture_dir / "jawOpen" / "view01").iterdir():
        frame.unlink()
    expect_error(
        capture_dir,
        "jawOpen/view01 (sequence 'jawOpen', view 'view01')",
        "holds no PNG frames (named 0000.png, 0001.png and so on)",
    )


def test_gap_in_png_frames(capture_dir: Path) -> None:
    (capture_dir / "jawOpen" / "view00" / "0002.png").unlink()
    expect_error(capture_dir, "view 'view00'", "lacks frame 0002.png")


def test_corrupt_png_frame(capture_dir: Path) -> None:
    (capture_dir / "blink" / "view00" / "0003.png").write_bytes(b"not a png at all")
    expect_error(capture_dir, "sequence 'blink'", "holds 0003.png, which is not a readable PNG")


def test_jpeg_named_png(capture_dir: Path) -> None:
    Image.new("RGB", (SIZE, SIZE)).save(capture_dir / "blink" / "view00" / "0001.png", format="JPEG")
    expect_error(capture_dir, "sequence 'blink'", "0001.png, which is a JPEG file, not a PNG")


def test_views_with_different_frame_counts(capture_dir: Path) -> None:
    (capture_dir / "jawOpen" / "view01" / "0004.png").unlink()
    expect_error(
        capture_dir,
        "Sequence 'jawOpen'",
        "has 5 frames in view 'view00' but 4 in view 'view01'",
        "same count",
    )


def test_video_frame_count_differs_from_png_view(capture_dir: Path) -> None:
    write_video(capture_dir / "smile" / "view01.mp4", synthetic_frames(1, False, count=3), 24)
    expect_error(capture_dir, "Sequence 'smile'", "5 frames in view 'view00' but 3 in view 'view01'")


def test_frame_size_differs_from_camera(capture_dir: Path) -> None:
    edit_json(capture_dir, _set_camera("width", 48, camera="view00"))
    expect_error(capture_dir, "(sequence 'jawOpen', view 'view00') has 32x32 frames but camera 'view00' is 48x32")


def test_video_size_differs_from_camera(capture_dir: Path) -> None:
    write_video(capture_dir / "smile" / "view01.mp4", synthetic_frames(1, False, size=16), 24)
    expect_error(
        capture_dir, "smile/view01.mp4 (sequence 'smile', view 'view01') has 16x16 frames but camera 'view01' is 32x32"
    )


def test_png_frames_of_mixed_sizes(capture_dir: Path) -> None:
    Image.new("RGB", (SIZE, SIZE + 2)).save(capture_dir / "blink" / "view00" / "0004.png")
    expect_error(capture_dir, "sequence 'blink'", "holds frames of different sizes", "0004.png")


def test_media_that_is_neither_video_nor_folder(capture_dir: Path) -> None:
    (capture_dir / "smile" / "view00.txt").write_text("hello")
    edit_json(capture_dir, lambda d: d["sequences"][1]["views"].update(view00="smile/view00.txt"))
    expect_error(capture_dir, "smile/view00.txt", "is neither a folder of PNG frames nor a video")


def test_png_modes_rgb_palette_and_grey(capture_dir: Path) -> None:
    folder = capture_dir / "blink" / "view00"
    rgba = Image.new("RGBA", (SIZE, SIZE), (10, 20, 30, 0))
    rgba.save(folder / "0000.png")
    Image.new("L", (SIZE, SIZE), 77).save(folder / "0001.png")
    Image.fromarray(np.full((SIZE, SIZE), 40000, np.uint16)).save(folder / "0002.png")
    capture = read_capture(capture_dir)
    assert capture.has_alpha("blink", "view00")  # one RGBA frame makes the view masked
    frames = capture.read_frames("blink", "view00")
    np.testing.assert_array_equal(frames[0, 0, 0], (10, 20, 30, 0))
    np.testing.assert_array_equal(frames[1, 0, 0], (77, 77, 77, 255))
    np.testing.assert_array_equal(frames[2, 0, 0], (156, 156, 156, 255))


def test_truncated_png_fails_when_read(capture_dir: Path) -> None:
    frame = capture_dir / "jawOpen" / "view00" / "0001.png"
    frame.write_bytes(frame.read_bytes()[:-200])
    # Validation reads headers only; the damage shows when the frames are decoded, as an InputError.
    capture = read_capture(capture_dir)
    with pytest.raises(
        InputError, match=r"\(sequence 'jawOpen', view 'view00'\) holds 0001.png, which cannot be decoded"
    ):
        capture.read_frames("jawOpen", "view00")


def test_video_without_video_stream(capture_dir: Path) -> None:
    import subprocess

    import imageio_ffmpeg

    audio = capture_dir / "smile" / "view00.mp4"
    audio.unlink()
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono",
         "-t", "0.2", "-c:a", "aac", str(audio)],
        check=True,
    )  # fmt: skip
    expect_error(capture_dir, "view 'view00'", "is not a readable video (it has no video stream)")
