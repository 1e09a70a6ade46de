"""The `t2bs` command line. A thin layer: parse, call the library, turn errors into one line + exit code."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import Cancelled, T2bsError
from .progress import CancelToken, ProgressEvent

EXIT_CANCELLED = 130
LANDMARKS_HELP = (
    "JSON file of the mesh's facial landmarks in its own coordinates (docs/procedural.md), to place the facial "
    "regions the procedural video provider acts with; without it MediaPipe looks for a human face"
)

log = logging.getLogger("t2bs")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2 like every other bad input."""

    def error(self, message: str) -> Any:
        self.exit(2, f"t2bs: {message} (see {self.prog} --help)\n")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options every command that runs a pipeline shares (DESIGN.md, "CLI")."""
    parser.add_argument("--out", required=True, type=Path, help="bundle folder to write")
    parser.add_argument("--preset", choices=("preview", "standard", "high"), default="preview")
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue an unfinished bundle in --out")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quiet", action="store_true", help="print nothing but errors")
    mode.add_argument("--json", action="store_true", help="print progress events as JSON lines on stdout")


class ProgressDisplay:
    """Shows progress events: a rich progress bar on stderr, JSON lines on stdout, or nothing."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> ProgressDisplay:
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("starting", total=1.0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, event: ProgressEvent) -> None:
        if self.mode == "json":
            sys.stdout.write(json.dumps({"event": "progress", **event.to_dict()}) + "\n")
            sys.stdout.flush()
        elif self._progress is not None:
            text = f"{event.stage}: {event.message}" if event.message else event.stage
            self._progress.update(self._task, completed=event.overall, description=text)


def execute_run(pipeline: str, args: dict[str, Any], ns: argparse.Namespace) -> int:
    """Run `pipeline` into `ns.out` with a progress display; Ctrl-C cancels and keeps a resumable bundle."""
    from .pipelines import start_run

    mode = "json" if ns.json else "quiet" if ns.quiet else "bar"
    cancel = CancelToken()
    display = ProgressDisplay(mode)
    # Build the run first: bad arguments fail with one line, before a progress bar appears.
    runner = start_run(pipeline, args, out=ns.out, resume=ns.resume, on_progress=display, cancel=cancel)
    with display:
        try:
            bundle = runner.run()
        except (Cancelled, KeyboardInterrupt):
            print(f"t2bs: cancelled; run the same command with --resume to finish {ns.out}.", file=sys.stderr)
            return EXIT_CANCELLED
    if mode == "json":
        print(json.dumps({"event": "result", "bundle": str(bundle.root), "status": "complete"}))
    elif mode == "bar":
        print(f"Bundle written to {bundle.root}", file=sys.stderr)
    return 0


# -- commands ---------------------------------------------------------------------------------------


def cmd_doctor(ns: argparse.Namespace) -> int:
    from .doctor import MISSING, run_checks

    checks = run_checks(ns.out)
    if ns.json:
        print(json.dumps([check.to_dict() for check in checks], indent=2))
    else:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table("check", "status", "detail", title=f"t2bs {__version__}")
        colours = {"ok": "green", "warn": "yellow", "missing": "red"}
        for check in checks:
            table.add_row(check.name, f"[{colours[check.status]}]{check.status}[/]", escape(check.detail))
        Console().print(table)
    # torch is the one thing nothing can run without.
    return 1 if any(c.name == "torch" and c.status == MISSING for c in checks) else 0


def cmd_fit(ns: argparse.Namespace) -> int:
    args = {
        "asset": ns.asset,
        "capture": ns.capture,
        "preset": ns.preset,
        "device": ns.device,
        "seed": ns.seed,
        "up_axis": ns.up,
        "front_axis": ns.front,
        "fit_steps": ns.fit_steps,
    }
    if ns.landmarks is not None:
        args["landmarks"] = str(ns.landmarks)
    return execute_run("fit", args, ns)


def cmd_generate(ns: argparse.Namespace) -> int:
    args: dict[str, Any] = {
        "prompt": ns.prompt,
        "asset": ns.asset,
        "video": ns.video,
        "preset": ns.preset,
        "device": ns.device,
        "seed": ns.seed,
        "fit_steps": ns.fit_steps,
        "allow_download": ns.allow_download,
    }
    if ns.expressions is not None:
        args["expressions"] = [item.strip() for item in ns.expressions.split(",") if item.strip()]
    if ns.landmarks is not None:
        args["landmarks"] = str(ns.landmarks)
    return execute_run("generate", args, ns)


def cmd_blendshapes(ns: argparse.Namespace) -> int:
    args = {"asset": ns.asset, "registered": ns.registered, "up_axis": ns.up, "front_axis": ns.front}
    return execute_run("blendshapes", args, ns)


def cmd_export(ns: argparse.Namespace) -> int:
    from .export import export_bundle

    path = export_bundle(ns.bundle, ns.format, ns.out, ns.names)
    if ns.json:
        print(json.dumps({"event": "result", "path": str(path), "format": ns.format}))
    else:
        print(f"Wrote {path}", file=sys.stderr)
    return 0


def cmd_capture_from_videos(ns: argparse.Namespace) -> int:
    from .capture_from_videos import (
        build_capture,
        find_videos,
        head_camera,
        parse_camera,
        parse_video,
        write_start_frames,
    )
    from .errors import InputError
    from .mesh_io import load_head_mesh

    specs = [parse_camera(text) for text in ns.camera]
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise InputError(f"--camera names repeat: {', '.join(names)}.")
    if not ns.start_frames and not ns.video and ns.videos is None:
        raise InputError("Nothing to do: give --start-frames, --video or --videos (see docs/capture-from-videos.md).")
    mesh = load_head_mesh(ns.asset, up=ns.up, front=ns.front)
    cameras = [head_camera(mesh, spec, ns.size) for spec in specs]
    if ns.start_frames:
        paths = write_start_frames(mesh, cameras, ns.out)
        shown = ", ".join(str(Path(ns.out.name) / "start" / p.name) for p in paths)
        print(
            f"Start frames written: {shown}. Make one video per expression and camera from them, then run "
            "this command again with --videos or --video.",
            file=sys.stderr,
        )
        return 0
    videos: dict[str, dict[str, Path]] = find_videos(ns.videos, names) if ns.videos is not None else {}
    for text in ns.video:
        sequence, camera, path = parse_video(text)
        videos.setdefault(sequence, {})[camera] = path
    prompts = dict(item.split("=", 1) for item in ns.prompt)
    capture = build_capture(mesh, cameras, videos, ns.out, frames=ns.frames, fps=ns.fps, prompts=prompts)
    print(
        f"Capture written to {ns.out}: {len(capture.sequences)} sequences, {len(capture.cameras)} cameras. "
        f"Fit it with: t2bs fit --asset {ns.asset} --capture {ns.out} --out BUNDLE",
        file=sys.stderr,
    )
    return 0


def cmd_serve(ns: argparse.Namespace) -> int:
    from .serve import main as serve_main

    return serve_main()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="t2bs", description="Text to an animatable character head with named blendshapes.")
    parser.add_argument("--version", action="version", version=f"t2bs {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details on stderr")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    doctor = commands.add_parser("doctor", help="check torch, CUDA, gsplat, diffusers, models and disk")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.add_argument("--out", type=Path, default=None, help="folder whose free disk space to report")
    doctor.set_defaults(handler=cmd_doctor)

    generate = commands.add_parser(
        "generate",
        help="text to an animatable head: static head, expression videos, fit, blendshapes",
        description="Generate a character head with named blendshapes from a text prompt. Without model "
        "weights the offline procedural providers run on the CPU.",
    )
    generate.add_argument("prompt", help='the character, e.g. "a grumpy old troll with a big nose"')
    generate.add_argument("--asset", default=None, help="static-head provider: procedural (default), mesh:PATH, ...")
    generate.add_argument(
        "--video", default=None, help="expression-video provider: procedural (default), capture:DIR, ..."
    )
    generate.add_argument(
        "--expressions",
        default=None,
        help="comma-separated acts (default: the preset's); your own as name=action, "
        "e.g. jawOpen,eyeBlink,tongueCurl=curls its tongue up",
    )
    generate.add_argument("--landmarks", type=Path, default=None, help="with --asset mesh:PATH: " + LANDMARKS_HELP)
    generate.add_argument("--fit-steps", type=int, default=None, help="optimisation steps (default: the preset's)")
    generate.add_argument(
        "--allow-download",
        action="store_true",
        help="let the generative providers download model weights from Hugging Face",
    )
    add_run_options(generate)
    generate.set_defaults(handler=cmd_generate)

    fit = commands.add_parser(
        "fit",
        help="fit a mesh to a capture directory and register it to every frame",
        description="Fit deformable Gaussians to multi-view expression videos and write the registered meshes.",
    )
    fit.add_argument("--asset", required=True, help="the static head: OBJ, GLB/glTF or PLY")
    fit.add_argument("--capture", required=True, help="capture directory (capture.json and videos or frames)")
    fit.add_argument("--up", default="+y", help="the asset's up axis (default +y)")
    fit.add_argument("--front", default="+z", help="the axis the asset's face looks along (default +z)")
    fit.add_argument("--landmarks", type=Path, default=None, help=LANDMARKS_HELP)
    fit.add_argument("--fit-steps", type=int, default=None, help="optimisation steps (default: the preset's)")
    add_run_options(fit)
    fit.set_defaults(handler=cmd_fit)

    blend = commands.add_parser(
        "blendshapes",
        help="build the blendshape model from registered frames made elsewhere",
        description="Build named blendshapes, eigen-expressions and head.glb from a mesh and registered frames "
        "(a folder of <sequence>.npz, each with 'vertices' [T, V, 3], frame 0 neutral).",
    )
    blend.add_argument("--asset", required=True, help="the static head: OBJ, GLB/glTF or PLY")
    blend.add_argument("--registered", required=True, help="folder of <sequence>.npz registered frames")
    blend.add_argument("--up", default="+y", help="the asset's up axis (default +y)")
    blend.add_argument("--front", default="+z", help="the axis the asset's face looks along (default +z)")
    add_run_options(blend)
    blend.set_defaults(handler=cmd_blendshapes)

    export = commands.add_parser(
        "export",
        help="write a finished bundle's blendshape model as glb, npz or usd",
        description="Write the head with its blendshapes in another format or name casing.",
    )
    export.add_argument("bundle", type=Path, help="a finished bundle folder")
    export.add_argument("--format", choices=("glb", "npz", "usd"), default="glb")
    export.add_argument("--out", type=Path, default=None, help="file or folder to write (default: in the bundle)")
    export.add_argument(
        "--names",
        choices=("arkit", "pascal", "ict"),
        default="arkit",
        help="shape name casing: jawOpen/eyeBlinkLeft (arkit), EyeBlinkLeft (pascal: Live Link "
        "Face, Unreal), eyeBlink_L (ict)",
    )
    export.add_argument("--json", action="store_true", help="print the result as JSON")
    export.set_defaults(handler=cmd_export)

    from_videos = commands.add_parser(
        "capture-from-videos",
        help="turn expression videos made with any other tool into a capture directory",
        description="Step 1: --start-frames renders the static head from each --camera into OUT/start/. "
        "Step 2: make one video per expression and camera from those frames with any image-to-video tool. "
        "Step 3: run again with --videos FOLDER (FOLDER/<expression>/<camera>.mp4) or --video EXPR/CAMERA=FILE "
        "to write OUT/capture.json, ready for t2bs fit (docs/capture-from-videos.md).",
    )
    from_videos.add_argument("--asset", required=True, help="the static head the videos show: OBJ, GLB/glTF or PLY")
    from_videos.add_argument("--out", required=True, type=Path, help="capture folder to write")
    from_videos.add_argument(
        "--camera",
        action="append",
        default=[],
        required=True,
        help="NAME=AZIMUTH[,ELEVATION] in degrees around the head (0 = facing it, + toward its left); repeat "
        "per view, frontal first",
    )
    from_videos.add_argument("--start-frames", action="store_true", help="write OUT/start/<camera>.png and stop")
    from_videos.add_argument("--videos", type=Path, default=None, help="folder of <expression>/<camera>.mp4")
    from_videos.add_argument(
        "--video", action="append", default=[], help="EXPRESSION/CAMERA=FILE (a video or a PNG folder); repeatable"
    )
    from_videos.add_argument(
        "--prompt", action="append", default=[], help="EXPRESSION=TEXT: what the video shows (kept in capture.json)"
    )
    from_videos.add_argument("--size", type=int, default=512, help="side of the square capture images (default 512)")
    from_videos.add_argument("--frames", type=int, default=None, help="resample every video to this many frames")
    from_videos.add_argument("--fps", type=float, default=24.0)
    from_videos.add_argument("--up", default="+y", help="the asset's up axis (default +y)")
    from_videos.add_argument("--front", default="+z", help="the axis the asset's face looks along (default +z)")
    from_videos.set_defaults(handler=cmd_capture_from_videos)

    serve = commands.add_parser("serve", help="JSON-lines protocol on stdin/stdout (used by the Blender add-on)")
    serve.set_defaults(handler=cmd_serve)
    return parser


_AXIS_OPTIONS = ("--up", "--front")
_SIGNED_AXES = {f"{sign}{axis}" for sign in "+-" for axis in "xyzXYZ"}


def join_axis_values(argv: Sequence[str]) -> list[str]:
    """`--front -y` -> `--front=-y`: argparse would take `-y` for an option and refuse it."""
    joined: list[str] = []
    items = list(argv)
    index = 0
    while index < len(items):
        item = items[index]
        if item in _AXIS_OPTIONS and index + 1 < len(items) and items[index + 1] in _SIGNED_AXES:
            joined.append(f"{item}={items[index + 1]}")
            index += 2
            continue
        joined.append(item)
        index += 1
    return joined


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(join_axis_values(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(
        level=logging.INFO if ns.verbose or ns.command == "serve" else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Callable[[argparse.Namespace], int] = ns.handler
    try:
        return handler(ns)
    except T2bsError as exc:
        print(f"t2bs: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_CANCELLED
    except Exception as exc:  # a bug or an environment fault: one line, the traceback only on request
        if ns.verbose:
            raise
        print(f"t2bs: internal error: {type(exc).__name__}: {exc} (run with -v for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
