"""bench/gpu_day.sh: the prepared command for a lent GPU machine, run here at toy sizes on the CPU.

A lent machine gives one short try, so the script's plumbing (the package from backend/src, each
stage's command line, the files each stage leaves in OUT) is checked where it costs nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BENCH, ICT_HEAD

SCRIPT = BENCH / "gpu_day.sh"


def run_script(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable, "T2BS_GPU_DAY_DEVICE": "cpu", "TMPDIR": str(tmp_path)}
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=600)


def test_stages_leave_their_results_in_out(tmp_path: Path) -> None:
    if not ICT_HEAD.is_file():
        pytest.skip(f"the ICT head fixture {ICT_HEAD} is not on this machine")
    out = tmp_path / "out"
    result = run_script("run", str(out), "env", "rasterizer", "ict", tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "torch" in (out / "env.txt").read_text()
    assert "fwd+bwd ms" in (out / "rasterizer.txt").read_text()
    ict = (out / "ict.txt").read_text()
    assert "fit 100.0%" in ict  # the progress lines a run cut at its time limit would still return
    scores = json.loads(ict[ict.index("{") :])
    assert 0.0 <= scores["mean_error_over_diagonal"] < 1.0
    diagnosis = json.loads((out / "ict_diagnosis.txt").read_text().split("error map:")[0])
    assert {"fit", "last_frame_against_ceiling"} <= set(diagnosis)
    assert (out / "ict_errors.png").stat().st_size > 0


def test_an_unknown_stage_is_one_sentence_and_exit_2(tmp_path: Path) -> None:
    result = run_script("run", str(tmp_path / "out"), "bogus", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "Unknown stage 'bogus'" in result.stderr
    assert run_script("nonsense", tmp_path=tmp_path).returncode == 2
