"""The `capture` stage through the real runner, with the `capture:DIR` video provider."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from t2bs.bundle import CAPTURE_DIR, Bundle
from t2bs.capture import CAPTURE_JSON, CaptureWriter, orbit_cameras, read_capture
from t2bs.errors import Cancelled, InputError
from t2bs.progress import CancelToken, ProgressEvent
from t2bs.runner import STAGING_DIR, Runner
from t2bs.stages.capture import (
    VIDEO_PROVIDERS,
    CaptureDirProvider,
    CaptureStage,
    VideoProvider,
    make_video_provider,
)

MISSING_FOLDER = "The capture video provider needs a folder: --video capture:DIR."


def frames(view: int, alpha: bool, count: int = 4, size: int = 32) -> np.ndarray:
    """[count, size, size, 3 or 4] uint8 smooth test frames."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for t in range(count):
        channels = [60 + 120 * xx + 10 * t, 50 + 100 * yy + 30 * view, np.full_like(xx, 128.0)]
        if alpha:
            channels.append(255.0 * (xx > 0.25))
        out.append(np.stack(channels, axis=-1))
    return np.round(np.stack(out)).astype(np.uint8)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A user's capture folder: a PNG sequence with masks, an mp4 sequence, and an unrelated file."""
    root = tmp_path / "takes"
    writer = CaptureWriter(root)
    for camera in orbit_cameras(2, 2.5, 5.0, 32, 32, 35.0):
        writer.add_camera(camera)
    writer.write_sequence("jawOpen", "It opens its jaw.", 24, {"view00": frames(0, True), "view01": frames(1, True)})
    writer.write_sequence(
        "smile", "It smiles.", 24, {"view00": frames(0, False), "view01": frames(1, False)}, fmt="mp4"
    )
    writer.close()
    (root / "notes.txt").write_text("shot on Tuesday")
    return root


def run_capture(out: Path, video: str, **kwargs: Any) -> Bundle:
    return Runner("test", [CaptureStage()], out, {"video": video}, **kwargs).run()


def test_capture_dir_is_validated_and_copied_into_the_bundle(source: Path, tmp_path: Path) -> None:
    events: list[ProgressEvent] = []
    bundle = run_capture(tmp_path / "b", f"capture:{source}", on_progress=events.append)

    capture = read_capture(bundle.path(CAPTURE_DIR))
    original = read_capture(source)
    assert capture.to_dict() == original.to_dict()
    assert not (bundle.path(CAPTURE_DIR) / "notes.txt").exists()
    np.testing.assert_array_equal(capture.read_frames("jawOpen", "view01"), frames(1, True))
    np.testing.assert_array_equal(capture.read_frames("smile", "view00"), original.read_frames("smile", "view00"))
    assert not (tmp_path / "b" / STAGING_DIR).exists()

    manifest = bundle.read_manifest()
    assert manifest.status == "complete"
    assert manifest.stages["capture"]["status"] == "done"
    assert manifest.providers["capture"] == {"name": "capture", "argument": str(source), "source": str(source)}
    assert manifest.metrics["capture"] == {"sequences": 2, "cameras": 2, "views": 4, "frames": 8, "images": 16}
    json.dumps(manifest.to_dict())  # the manifest stays JSON

    messages = [event.message for event in events if event.stage == "capture"]
    for expected in ("checking jawOpen", "checking smile", "copying jawOpen", "copying smile"):
        assert expected in messages
    fractions = [event.fraction for event in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_relative_folder_is_resolved(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(source.parent)
    bundle = run_capture(tmp_path / "b", "capture:takes")
    assert Path(bundle.read_manifest().providers["capture"]["source"]).resolve() == source.resolve()
    assert read_capture(bundle.path(CAPTURE_DIR), check_media=False).sequence_names == ["jawOpen", "smile"]


@pytest.mark.parametrize("spec", ["capture", "capture:", "capture:  "])
def test_missing_folder_argument(spec: str, tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        run_capture(tmp_path / "b", spec)
    assert str(info.value) == MISSING_FOLDER
    manifest = Bundle(tmp_path / "b").read_manifest()
    assert manifest.status == "failed" and manifest.error == MISSING_FOLDER
    assert not (tmp_path / "b" / CAPTURE_DIR).exists()


def test_unknown_provider(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"Unknown video provider 'nope'; choose one of: .*capture"):
        run_capture(tmp_path / "b", "nope:whatever")
    assert not (tmp_path / "b" / CAPTURE_DIR).exists()


def test_missing_capture_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"Capture folder .*nowhere does not exist\."):
        run_capture(tmp_path / "b", f"capture:{tmp_path / 'nowhere'}")
    assert Bundle(tmp_path / "b").read_manifest().status == "failed"


def test_corrupt_video_fails_before_anything_reaches_the_bundle(source: Path, tmp_path: Path) -> None:
    (source / "smile" / "view01.mp4").write_bytes(b"\x00" * 3000)
    with pytest.raises(InputError) as info:
        run_capture(tmp_path / "b", f"capture:{source}")
    message = str(info.value)
    assert "\n" not in message
    assert "smile/view01.mp4 (sequence 'smile', view 'view01') is not a readable video" in message
    assert not (tmp_path / "b" / CAPTURE_DIR).exists()


def test_cancel_then_resume(source: Path, tmp_path: Path) -> None:
    token = CancelToken()

    def cancel_while_copying(event: ProgressEvent) -> None:
        if event.message.startswith("copying smile"):
            token.cancel()

    out = tmp_path / "b"
    with pytest.raises(Cancelled):
        run_capture(out, f"capture:{source}", on_progress=cancel_while_copying, cancel=token)
    assert Bundle(out).read_manifest().status == "cancelled"
    assert not (out / CAPTURE_DIR).exists()  # the half copy stayed in staging

    bundle = run_capture(out, f"capture:{source}", resume=True)
    assert bundle.read_manifest().status == "complete"
    assert read_capture(bundle.path(CAPTURE_DIR)).frame_count("smile") == 4
    assert (bundle.path(CAPTURE_DIR) / CAPTURE_JSON).is_file()


def test_make_video_provider() -> None:
    provider = make_video_provider("capture:/data/takes:v2")
    assert isinstance(provider, CaptureDirProvider) and isinstance(provider, VideoProvider)
    assert provider.source == Path("/data/takes:v2")  # only the first colon separates the name
    assert "capture" in VIDEO_PROVIDERS
    assert VIDEO_PROVIDERS.get("capture") is CaptureDirProvider
