"""The main job's benchmark: `t2bs generate` on the offline defaults, timed, with quality on truth.

Runs the README's command (`t2bs generate PROMPT --preset preview`) as a subprocess, then reports wall
time, per-stage seconds, peak RSS, and per act the motion the blendshapes recovered from the procedural
performance (`t2bs.testing.procedural_scores`). Target (DESIGN.md): a finished bundle in <= 5 min with
peak RAM <= 4 GB on 2 CPU cores.

    python bench/bench_generate.py ["a grumpy old troll with a big nose"] [--out DIR] [extra t2bs args]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from t2bs.testing.procedural_scores import act_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prompt", nargs="?", default="a grumpy old troll with a big nose")
    parser.add_argument("--out", type=Path, default=None)
    ns, extra = parser.parse_known_args()
    out = ns.out or Path(tempfile.mkdtemp(prefix="t2bs-generate-")) / "bundle"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "t2bs",
            "generate",
            ns.prompt,
            "--out",
            str(out),
            "--preset",
            "preview",
            "--quiet",
            *extra,
        ],
        check=True,
    )
    seconds = time.perf_counter() - started
    manifest = json.loads((out / "manifest.json").read_text())
    scores = act_scores(out)
    print(json.dumps({
        "prompt": ns.prompt,
        "bundle": str(out),
        "wall_seconds": round(seconds, 1),
        "stage_seconds": {name: stage.get("seconds") for name, stage in manifest["stages"].items()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "fit_psnr_db": {k: round(v, 2) for k, v in manifest["metrics"]["fit"]["psnr"].items()},
        "motion_recovered": {act: round(score["recovered"], 3) for act, score in scores.items()},
        "targets": {"wall_seconds": "<= 300", "peak_rss_mb": "<= 4096"},
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
