"""Live Link Face CSV takes (ARKit blendshape curves), parsed without bpy.

The format Epic's Live Link Face app records: a header row
`Timecode,BlendShapeCount,EyeBlinkLeft,...,TongueOut,HeadYaw,HeadPitch,...`, then one row per captured
frame: timecode `HH:MM:SS:FF.sss` (frame and sub-frame at the timecode rate), the count of shapes, and
one value 0..1 per column. Shape columns are PascalCase ARKit names; head and eye rotation columns have
no shape key and are reported as skipped.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .names import match_columns

# Timecode rates Live Link Face and other ARKit recorders use.
STANDARD_RATES: tuple[float, ...] = (24.0, 25.0, 30.0, 48.0, 50.0, 60.0, 120.0)
_TIMECODE = re.compile(r"^(\d+):(\d+):(\d+)[:;.](\d+(?:\.\d+)?)$")
_NON_SHAPE_COLUMNS = frozenset({"timecode", "blendshapecount"})


class TakeError(Exception):
    """A CSV that cannot be used; the message is one line the user can act on."""


@dataclass
class Take:
    """One recorded performance, mapped onto a character's shape names."""

    times: np.ndarray  # [N] seconds from the first row
    curves: dict[str, np.ndarray]  # shape name -> [N] values
    skipped: list[str] = field(default_factory=list)  # columns with no matching shape
    rate: float | None = None  # timecode rate used to read the frame field, None if rows were counted

    def frames(self, fps: float, start: float = 1.0) -> np.ndarray:
        """Scene frame of every row for a scene running at `fps`, the first row at `start`."""
        return start + self.times * fps


def parse_timecode(text: str, rate: float) -> float:
    """`HH:MM:SS:FF.sss` at `rate` frames per second -> seconds."""
    match = _TIMECODE.match(text.strip())
    if match is None:
        raise TakeError(f"Timecode {text!r} is not HH:MM:SS:FF.")
    hours, minutes, seconds, frame = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + int(seconds) + float(frame) / rate


def guess_rate(frame_fields: list[float]) -> float:
    """The smallest standard rate whose frame numbers cover the largest one seen (60 when unsure)."""
    if not frame_fields:
        return 60.0
    top = math.floor(max(frame_fields))
    for rate in STANDARD_RATES:
        if top < rate:
            return rate
    return STANDARD_RATES[-1]


def parse_take(text: str, shape_names: list[str], *, rate: float | None = None) -> Take:
    """Parse a Live Link Face CSV and map its columns onto `shape_names`.

    `rate` is the timecode's frame rate; None guesses it from the frame numbers. Rows whose timecode
    cannot be read make the take fall back to one row per 1/60 s.
    """
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise TakeError("The CSV is empty.")
    header = [cell.strip() for cell in rows[0]]
    lower = [cell.lower() for cell in header]
    if "timecode" not in lower:
        raise TakeError("The CSV has no 'Timecode' column; is it a Live Link Face recording?")
    time_column = lower.index("timecode")
    value_columns = [i for i, name in enumerate(lower) if name not in _NON_SHAPE_COLUMNS and header[i]]
    mapping, skipped = match_columns([header[i] for i in value_columns], shape_names)
    if not mapping:
        raise TakeError("No CSV column matches a shape key of this character (expected names like EyeBlinkLeft).")
    body = rows[1:]
    if not body:
        raise TakeError("The CSV has a header but no frames.")

    values = np.zeros((len(body), len(header)), dtype=np.float32)
    for number, row in enumerate(body, start=2):
        if len(row) < len(header):
            raise TakeError(f"CSV line {number} has {len(row)} fields, the header has {len(header)}.")
        for i in value_columns:
            if header[i] in mapping:
                try:
                    values[number - 2, i] = float(row[i])
                except ValueError:
                    raise TakeError(f"CSV line {number}: {header[i]} value {row[i]!r} is not a number.") from None

    times, used_rate = _row_times([row[time_column] for row in body], rate)
    order = np.argsort(times, kind="stable")  # recorders may write rows slightly out of order
    curves = {mapping[header[i]]: values[order, i] for i in value_columns if header[i] in mapping}
    return Take(times=times[order] - times[order][0], curves=curves, skipped=skipped, rate=used_rate)


def _row_times(stamps: list[str], rate: float | None) -> tuple[np.ndarray, float | None]:
    fields: list[float] = []
    for stamp in stamps:
        match = _TIMECODE.match(stamp.strip())
        if match is None:
            # No readable timecode: keep the rows' order at Live Link Face's capture rate.
            return np.arange(len(stamps), dtype=np.float64) / 60.0, None
        fields.append(float(match.group(4)))
    used = rate if rate else guess_rate(fields)
    times = np.array([parse_timecode(stamp, used) for stamp in stamps], dtype=np.float64)
    # A take that runs past midnight wraps the clock: unwrap it.
    day = 24 * 3600.0
    times = np.where(times < times[0] - day / 2, times + day, times)
    return times, used


def read_take(path: str | Path, shape_names: list[str], *, rate: float | None = None) -> Take:
    """`parse_take` on a file; unreadable files become a TakeError."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TakeError(f"Cannot read {path} ({exc}).") from exc
    return parse_take(text, shape_names, rate=rate)
