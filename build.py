#!/usr/bin/env python3
"""Build the Blender extension zip with Blender's own builder, then validate it.

    python build.py [--blender-ext PATH] [--out DIR]

Blender's extension tool (`bl_pkg/cli/blender_ext.py`) ships with Blender and with the `bpy` wheel; by
default this finds it in the `bpy` package of the running Python, so the usual command is

    .venv-blender-5.0/bin/python build.py        # after: bash scripts/blender_env.sh

The package folder `t2bs_blender/` and `blender_manifest.toml` (kept at the repository root, where the
release tooling expects it) are assembled in `build/extension/`, built into `dist/` as
`t2bs_blender-<version>.zip`, and the zip is validated with Blender's tag list. The zip's path is the
last line of stdout.

The backend is not on PyPI, so the zip carries it as a wheel (`backend_dist/t2bs-<version>-py3-none-any.whl`,
pure Python, about 0.2 MB): Set Up Backend pip-installs that file into its own environment. It is not
listed under the manifest's `wheels`, which Blender would install into its own Python (torch does not
belong there).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PACKAGE = ROOT / "t2bs_blender"
MANIFEST = ROOT / "blender_manifest.toml"
BUILDER = Path("scripts", "addons_core", "bl_pkg", "cli", "blender_ext.py")
TAGS = Path("scripts", "modules", "_bpy_internal", "extensions", "tags.py")


def find_blender_ext() -> Path:
    """blender_ext.py inside the installed bpy wheel (bpy/<version>/scripts/...), without importing bpy."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "build.py: no bpy here to take Blender's extension builder from; run it with the Blender test "
            "environment's Python (bash scripts/blender_env.sh) or pass --blender-ext PATH."
        )
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob(f"*/{BUILDER.as_posix()}"))
        if found:
            return found[-1]
    raise SystemExit(f"build.py: bpy at {list(spec.submodule_search_locations)} has no {BUILDER}.")


def tags_file(blender_ext: Path) -> Path | None:
    """Blender's list of valid tags, next to the builder (`blender --command extension` uses it too)."""
    scripts = blender_ext.parents[3]  # .../scripts/addons_core/bl_pkg/cli/blender_ext.py
    candidate = scripts.parent / TAGS
    return candidate if candidate.is_file() else None


def stage(build_dir: Path) -> Path:
    """Copy the package and the manifest into a clean folder: the extension's source tree."""
    source = build_dir / "extension" / "t2bs_blender"
    if source.exists():
        shutil.rmtree(source)
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"))
    shutil.copy2(MANIFEST, source / "blender_manifest.toml")
    license_file = ROOT / "LICENSE"
    if license_file.is_file():
        shutil.copy2(license_file, source / "LICENSE")
    return source


def backend_wheel(build_dir: Path, dest: Path) -> Path:
    """Build the backend's wheel into `dest` from a copy of backend/ (so no build/ is left in the tree)."""
    copy = build_dir / "backend-src"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(ROOT / "backend", copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    dest.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check",
         "--wheel-dir", str(dest), str(copy)])  # fmt: skip
    wheels = sorted(dest.glob("t2bs-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"build.py: expected one backend wheel in {dest}, found {[w.name for w in wheels]}.")
    return wheels[0]


def run(command: list[str]) -> None:
    print("+", " ".join(command), flush=True)
    result = subprocess.run(command, text=True)
    if result.returncode != 0:
        raise SystemExit(f"build.py: {' '.join(command[1:3])} failed (exit {result.returncode}).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blender-ext", type=Path, help="path to Blender's bl_pkg/cli/blender_ext.py")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="folder for the zip (default dist/)")
    parser.add_argument("--build-dir", type=Path, default=ROOT / "build", help="staging folder (default build/)")
    args = parser.parse_args(argv)

    blender_ext = args.blender_ext or find_blender_ext()
    tags = tags_file(blender_ext)
    tag_args = ["--valid-tags", str(tags)] if tags is not None else []
    source = stage(args.build_dir)
    backend_wheel(args.build_dir, source / "backend_dist")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)  # Blender 4.2's builder fails unless the folder exists
    for old in out.glob("t2bs_blender-*.zip"):
        old.unlink()  # one zip per build, so the path below is unambiguous
    python = sys.executable
    run([python, str(blender_ext), "validate", str(source), *tag_args])
    run([python, str(blender_ext), "build", "--source-dir", str(source), "--output-dir", str(out), *tag_args])
    zips = sorted(out.glob("t2bs_blender-*.zip"))
    if len(zips) != 1:
        raise SystemExit(f"build.py: expected one zip in {out}, found {[z.name for z in zips]}.")
    run([python, str(blender_ext), "validate", str(zips[0]), *tag_args])
    print(zips[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
