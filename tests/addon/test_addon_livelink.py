"""Live Link Face CSV takes: parsing, timecodes and column mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from t2bs_blender.livelink import TakeError, guess_rate, parse_take, parse_timecode, read_take

SHAPES = ["jawOpen", "eyeBlinkLeft", "mouthSmileRight"]


def take_text(rows: int = 5, frame_step: int = 1, start: str = "10:20:30") -> str:
    lines = ["Timecode,BlendShapeCount,EyeBlinkLeft,JawOpen,MouthSmileRight,HeadYaw,LeftEyePitch"]
    for i in range(rows):
        lines.append(f"{start}:{i * frame_step:02d}.{i * 7 % 1000:03d},61,{i / 10:.2f},{1 - i / 10:.2f},0.5,0.2,0.1")
    return "\n".join(lines) + "\n"


def test_parses_columns_onto_shape_names() -> None:
    take = parse_take(take_text(5), SHAPES)
    assert set(take.curves) == set(SHAPES)
    np.testing.assert_allclose(take.curves["eyeBlinkLeft"], [0.0, 0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(take.curves["jawOpen"], [1.0, 0.9, 0.8, 0.7, 0.6])
    assert take.skipped == ["HeadYaw", "LeftEyePitch"]
    assert take.times[0] == 0.0 and np.all(np.diff(take.times) > 0)


def test_timecode_rate_is_guessed_and_can_be_given() -> None:
    assert guess_rate([0, 10, 29.5]) == 30.0 and guess_rate([0, 59]) == 60.0 and guess_rate([]) == 60.0
    assert parse_timecode("01:00:02:30.000", 60.0) == pytest.approx(3602.5)
    take = parse_take(take_text(31, 1), SHAPES)  # frame fields 0..30 need a 48 fps clock at least
    assert take.rate == 48.0
    take = parse_take(take_text(31, 1), SHAPES, rate=60.0)
    assert take.rate == 60.0 and take.times[-1] == pytest.approx(30 / 60 + 30 * 7 / 1000 / 60)
    np.testing.assert_allclose(take.frames(24.0, start=10.0)[:2], [10.0, 10.0 + 24.0 * (1 + 0.007) / 60.0])


def test_rows_without_timecode_fall_back_to_row_order() -> None:
    text = "Timecode,JawOpen\nx,0.1\ny,0.2\n"
    take = parse_take(text, SHAPES)
    assert take.rate is None
    np.testing.assert_allclose(take.times, [0.0, 1 / 60])


def test_rows_out_of_order_are_sorted_and_midnight_wraps() -> None:
    text = "Timecode,JawOpen\n23:59:59:59.000,0.1\n00:00:00:01.000,0.3\n00:00:00:00.000,0.2\n"
    take = parse_take(text, SHAPES, rate=60.0)
    np.testing.assert_allclose(take.curves["jawOpen"], [0.1, 0.2, 0.3])
    np.testing.assert_allclose(take.times, [0.0, 1 / 60, 2 / 60], atol=1e-9)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("Frame,JawOpen\n1,0.5\n", "no 'Timecode'"),
        ("Timecode,HeadYaw\n00:00:00:00.000,0.5\n", "No CSV column matches"),
        ("Timecode,JawOpen\n", "no frames"),
        ("Timecode,JawOpen\n00:00:00:00.000\n", "line 2 has 1 fields"),
        ("Timecode,JawOpen\n00:00:00:00.000,abc\n", "not a number"),
    ],
)
def test_bad_takes_are_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(TakeError, match=message):
        parse_take(text, SHAPES)


def test_read_take_from_a_file_with_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "take.csv"
    path.write_text("\ufeff" + take_text(3), encoding="utf-8")
    assert len(read_take(path, SHAPES).times) == 3
    with pytest.raises(TakeError, match="Cannot read"):
        read_take(tmp_path / "missing.csv", SHAPES)
