"""Fit benchmark on ICT ground truth: time, peak memory and registration quality of `t2bs fit`.

Generates an ICT capture (random identity, expression mixes rising from neutral, per-view colour drift),
runs `t2bs fit` on it as a user would (a subprocess), and scores the registered frames against the true
vertices. Defaults are the CPU target of issue 3: preview preset, 3 sequences x 4 views x 9 frames at
128 px. On a GPU: --preset standard --device cuda --sequences 24 --views 8 --frames 25 --size 512.
The jaw capture with profile views, which a fit that moves too slowly early on registers with the
mouth closed: --views 12 --shared-drift-views 12.

    python bench/bench_fit_ict.py [--work DIR] [--preset preview] [--device cpu] ...
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

import numpy as np

from t2bs.bundle import read_registered
from t2bs.stages.fit import resolve_device
from t2bs.testing.ict_fixture import SHARED_DRIFT_HELP, SHARED_DRIFT_VIEWS, make_ict_capture, registration_scores


def run_reporting_progress(command: list[str], every_s: float) -> None:
    """Run `t2bs ... --json` and print one line of its progress events every `every_s` seconds.

    A run stopped at a time limit (a lent GPU machine's) then still says how far it got and how fast.
    """
    started = last = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            event = json.loads(line)
            now = time.perf_counter()
            if event.get("event") == "progress" and (now - last >= every_s or event["fraction"] >= 1.0):
                last = now
                eta = "?" if event["eta_s"] is None else f"{event['eta_s']:.0f} s"
                print(
                    f"[{now - started:6.0f} s] {event['stage']} {100 * event['fraction']:5.1f}%"
                    f" (ETA {eta}): {event['message']}",
                    file=sys.stderr,
                    flush=True,
                )
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, command)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=None, help="folder for the capture and bundle (default: temp)")
    parser.add_argument("--preset", default="preview")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sequences", type=int, default=3)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fit-steps", type=int, default=None)
    parser.add_argument("--shared-drift-views", type=int, default=SHARED_DRIFT_VIEWS, help=SHARED_DRIFT_HELP)
    parser.add_argument(
        "--progress", action="store_true", help="print the fit's stage, fraction and ETA every 30 s (stderr)"
    )
    ns = parser.parse_args()

    work = ns.work or Path(tempfile.mkdtemp(prefix="t2bs-bench-"))
    fixture_dir, bundle = work / "fixture", work / "bundle"
    for folder in (fixture_dir, bundle):
        shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    fixture = make_ict_capture(
        fixture_dir,
        sequences=ns.sequences,
        views=ns.views,
        frames=ns.frames,
        size=ns.size,
        seed=ns.seed,
        device=str(resolve_device(ns.device)),  # frames are rasterized where the fit runs
        shared_drift_views=ns.shared_drift_views,
    )
    fixture_s = time.perf_counter() - started

    command = [
        sys.executable,
        "-m",
        "t2bs",
        "fit",
        "--asset",
        str(fixture.asset),
        "--capture",
        str(fixture.capture),
        "--out",
        str(bundle),
        "--preset",
        ns.preset,
        "--device",
        ns.device,
        "--json" if ns.progress else "--quiet",
    ]
    if ns.fit_steps:
        command += ["--fit-steps", str(ns.fit_steps)]
    started = time.perf_counter()
    if ns.progress:
        run_reporting_progress(command, every_s=30.0)
    else:
        subprocess.run(command, check=True)
    fit_s = time.perf_counter() - started
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    names = sorted(p.stem for p in (bundle / "registered").glob("*.npz"))
    registered = {name: read_registered(bundle / "registered" / f"{name}.npz") for name in names}
    scores = registration_scores(registered, fixture.truth)
    manifest = json.loads((bundle / "manifest.json").read_text())
    result = {
        "preset": ns.preset,
        "device": ns.device,
        "capture": f"{ns.sequences} seq x {ns.views} views x {ns.frames} frames at {ns.size} px",
        "fixture_seconds": round(fixture_s, 1),
        "fit_command_seconds": round(fit_s, 1),
        "stage_seconds": {k: v.get("seconds") for k, v in manifest["stages"].items()},
        "peak_rss_mb": round(peak_rss_mb),
        "psnr_db": {k: round(v, 2) for k, v in manifest["metrics"]["fit"]["psnr"].items()},
        "mean_error_over_diagonal": round(scores["mean_error_over_diagonal"], 6),
        "static_error_over_diagonal": round(scores["static_error_over_diagonal"], 6),
        "motion_recovered": round(scores["motion_recovered"], 4),
        "targets": {
            "motion_recovered": ">= 0.80",
            "mean_error_over_diagonal": "< 0.001",
            "fit_command_seconds (CPU preview)": "< 300",
            "peak_rss_mb": "< 4096",
        },
    }
    print(json.dumps(result, indent=2))
    if not np.isfinite(scores["mean_error_over_diagonal"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
