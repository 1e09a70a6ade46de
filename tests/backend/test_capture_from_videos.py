"""`t2bs capture-from-videos`: start frames out, the user's videos in, a valid capture directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from t2bs.capture import read_capture, write_video
from t2bs.capture_from_videos import (
    CameraSpec,
    build_capture,
    find_videos,
    head_camera,
    parse_camera,
    parse_video,
    write_start_frames,
)
from t2bs.cli import main
from t2bs.errors import InputError
from t2bs.mesh_io import load_head_mesh

SIZE = 64


@pytest.fixture(scope="module")
def head_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A coloured ellipsoid 30 units tall in a Z-up file: the capture must use the file's coordinates."""
    mesh = trimesh.creation.icosphere(subdivisions=3)
    mesh.apply_scale([10.0, 8.0, 15.0])
    mesh.apply_translation([100.0, -20.0, 5.0])
    colours = np.zeros((len(mesh.vertices), 4), np.uint8)
    colours[:, 0] = np.interp(mesh.vertices[:, 0], [90, 110], [40, 220]).astype(np.uint8)
    colours[:, 1] = 120
    colours[:, 2] = np.interp(mesh.vertices[:, 2], [-10, 20], [200, 30]).astype(np.uint8)
    colours[:, 3] = 255
    mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=colours)
    path = tmp_path_factory.mktemp("head") / "head.ply"
    mesh.export(path)
    return path


def _user_video(start: Path, path: Path, frames: int = 7, shift_px: int = 3) -> None:
    """What a user's tool might return: a wider 16:9-ish video whose centre square is the start frame,
    with the lower half of the head sliding down over time."""
    square = np.asarray(Image.open(start).convert("RGB").resize((72, 72)))
    clip = []
    for t in range(frames):
        frame = np.full((72, 128, 3), 255, np.uint8)
        moved = square.copy()
        shift = round(shift_px * t / (frames - 1))
        if shift:
            moved[36 + shift :] = square[36:-shift]
        frame[:, 28:100] = moved
        clip.append(frame)
    write_video(path, np.stack(clip), 24.0)


def test_parse_specs() -> None:
    assert parse_camera("front=0,5") == CameraSpec("front", 0.0, 5.0)
    assert parse_camera("left=-35") == CameraSpec("left", -35.0, 0.0)
    assert parse_video("jawOpen/front=clips/a b.mp4") == ("jawOpen", "front", Path("clips/a b.mp4"))
    for bad in ("front", "front=abc", "front=0,5,7", "fr ont=0"):
        with pytest.raises(InputError, match="NAME=AZIMUTH"):
            parse_camera(bad)
    with pytest.raises(InputError, match="within"):
        parse_camera("up=0,95")
    with pytest.raises(InputError, match="SEQUENCE/CAMERA=PATH"):
        parse_video("jawOpen=clip.mp4")


def test_start_frames_then_videos_make_a_valid_capture(head_file: Path, tmp_path: Path) -> None:
    mesh = load_head_mesh(head_file)
    specs = [CameraSpec("front", 0.0, 5.0), CameraSpec("left", 35.0, 8.0)]
    cameras = [head_camera(mesh, spec, SIZE) for spec in specs]
    out = tmp_path / "capture"
    starts = write_start_frames(mesh, cameras, out)
    assert [p.name for p in starts] == ["front.png", "left.png"]
    front = np.asarray(Image.open(starts[0]))
    assert front.shape == (SIZE, SIZE, 3)
    centre = front[SIZE // 2 - 4 : SIZE // 2 + 4, SIZE // 2 - 4 : SIZE // 2 + 4]
    assert (centre < 240).any(axis=-1).all(), "the head is not in the middle of the start frame"
    assert (front[0, 0] == 255).all(), "the background is white"

    videos = tmp_path / "videos"
    for sequence in ("jawOpen", "eyeBlink"):
        (videos / sequence).mkdir(parents=True)
        for camera, start in zip(("front", "left"), starts, strict=True):
            _user_video(start, videos / sequence / f"{camera}.mp4", frames=7 if sequence == "jawOpen" else 5)
    found = find_videos(videos, ["front", "left"])
    assert sorted(found) == ["eyeBlink", "jawOpen"] and sorted(found["jawOpen"]) == ["front", "left"]

    capture = build_capture(mesh, cameras, found, out, frames=None, prompts={"jawOpen": "opens the jaw"})
    reread = read_capture(out)
    assert [s.name for s in reread.sequences] == ["eyeBlink", "jawOpen"]
    assert reread.frame_count("jawOpen") == 7 and reread.frame_count("eyeBlink") == 5
    assert next(s for s in reread.sequences if s.name == "jawOpen").prompt == "opens the jaw"
    for camera in cameras:
        stored = capture.cameras[camera.name]
        assert np.allclose(stored.K, camera.K) and np.allclose(stored.world_to_camera, camera.world_to_camera)
        # The cameras see the asset in its own file's coordinates: it projects inside each image.
        cam = mesh.to_source_points(mesh.vertices) @ stored.world_to_camera[:3, :3].T + stored.world_to_camera[:3, 3]
        uv = cam[:, :2] / cam[:, 2:] * np.diag(stored.K)[:2] + stored.K[:2, 2]
        assert cam[:, 2].min() > 0 and uv.min() > 0 and uv.max() < SIZE
    # Frame 0 of each view is the start frame again (centre-cropped from the wide video and resized).
    first = reread.read_frames("jawOpen", "front")[0, ..., :3].astype(np.float32)
    assert np.abs(first - front.astype(np.float32)).mean() < 12.0
    last = reread.read_frames("jawOpen", "front")[-1, ..., :3].astype(np.float32)
    assert np.abs(last - first).mean() > 0.5, "the motion of the video is kept"


def test_build_capture_resamples_to_frames_and_refuses_bad_input(head_file: Path, tmp_path: Path) -> None:
    mesh = load_head_mesh(head_file)
    cameras = [head_camera(mesh, CameraSpec("front", 0.0, 0.0), SIZE)]
    (start,) = write_start_frames(mesh, cameras, tmp_path / "cap")
    clip = tmp_path / "clip.mp4"
    _user_video(start, clip, frames=9)
    capture = build_capture(mesh, cameras, {"smile": {"front": clip}}, tmp_path / "cap", frames=4)
    assert capture.frame_count("smile") == 4
    with pytest.raises(InputError, match="no --camera defines"):
        build_capture(mesh, cameras, {"smile": {"side": clip}}, tmp_path / "cap2")
    with pytest.raises(InputError, match="at least 2"):
        build_capture(mesh, cameras, {"smile": {"front": clip}}, tmp_path / "cap3", frames=1)
    with pytest.raises(InputError, match="does not exist"):
        build_capture(mesh, cameras, {"smile": {"front": tmp_path / "missing.mp4"}}, tmp_path / "cap4")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    with pytest.raises(InputError, match=r"broken\.mp4"):
        build_capture(mesh, cameras, {"smile": {"front": broken}}, tmp_path / "cap5")


def test_cli_recipe_end_to_end(head_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "capture"
    cameras = ["--camera", "front=0,5", "--camera", "left=35,8"]
    common = ["capture-from-videos", "--asset", str(head_file), "--out", str(out), "--size", str(SIZE), *cameras]
    assert main([*common, "--start-frames"]) == 0
    assert "start/front.png" in capsys.readouterr().err
    _user_video(out / "start" / "front.png", tmp_path / "jaw_front.mp4")
    _user_video(out / "start" / "left.png", tmp_path / "jaw_left.mp4")
    videos = [
        "--video",
        f"jawOpen/front={tmp_path / 'jaw_front.mp4'}",
        "--video",
        f"jawOpen/left={tmp_path / 'jaw_left.mp4'}",
    ]
    assert main([*common, *videos, "--frames", "5"]) == 0
    assert "t2bs fit --asset" in capsys.readouterr().err
    capture = read_capture(out)
    assert capture.frame_count("jawOpen") == 5 and sorted(capture.cameras) == ["front", "left"]

    # Bad input: one sentence, exit 2, no traceback.
    for argv, expected in (
        ([*common[:-4], "--camera", "front"], "NAME=AZIMUTH"),
        ([*common, "--video", f"jawOpen/back={tmp_path / 'jaw_front.mp4'}"], "no --camera defines"),
        ([*common], "--start-frames, --video or --videos"),
        ([*common, "--videos", str(tmp_path / "nowhere")], "is not a folder"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
