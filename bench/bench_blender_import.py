"""Time the Blender import of a bundle: 50k-vertex head, 60 shape keys with drivers (target < 2 s).

Runs in a Blender test environment (the bpy wheel), headless:

    bash scripts/blender_env.sh 5.0.1
    .venv-blender-5.0/bin/python bench/bench_blender_import.py             # defaults: 50k verts, 60 keys
    .venv-blender-5.0/bin/python bench/bench_blender_import.py --rings 100 --segments 80 --shapes 52 --eigen 10

The bundle is synthetic (tests/addon/bundle_fixture.py), written once to a temporary folder. Each repeat
imports it into an empty file, exactly as Import Bundle does (read and check model.npz, axis conversion,
mesh with UVs and vertex colours, material, shape keys with foreach_set, controls and drivers); the
figure is the median. "first evaluation" then sets one control and evaluates the depsgraph, i.e. the
first frame an animator sees with the drivers running. Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bpy  # noqa: E402  (the bpy wheel; imported after the path set-up like the rest)
import numpy as np  # noqa: E402

from t2bs_blender import importer  # noqa: E402
from t2bs_blender.bundle import load_bundle  # noqa: E402
from tests.addon.bundle_fixture import write_bundle  # noqa: E402


def empty_file() -> None:
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    for mesh in list(bpy.data.meshes):
        bpy.data.meshes.remove(mesh)
    for material in list(bpy.data.materials):
        bpy.data.materials.remove(material)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rings", type=int, default=200)
    parser.add_argument("--segments", type=int, default=250)
    parser.add_argument("--shapes", type=int, default=60, help="semantic blendshapes (shape keys with drivers)")
    parser.add_argument("--eigen", type=int, default=0, help="eigen-expression keys on top")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--dense",
        action="store_true",
        help="every shape moves every vertex (random offsets): the worst case for compression",
    )
    parser.add_argument(
        "--uncompressed", action="store_true", help="np.savez instead of the backend's savez_compressed"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="t2bs-bench-") as scratch:
        overrides = None
        if args.dense:
            count = args.rings * args.segments
            noise = np.random.default_rng(0).normal(scale=1e-3, size=(args.shapes, count, 3)).astype(np.float32)
            overrides = {"blendshapes": noise}
        root = write_bundle(Path(scratch) / "bench", rings=args.rings, segments=args.segments, shapes=args.shapes,
                            pca=args.eigen, compressed=not args.uncompressed, overrides=overrides)  # fmt: skip
        size_mb = (root / "model.npz").stat().st_size / 2**20
        totals, reads = [], []
        for _ in range(args.repeats):
            empty_file()
            started = time.perf_counter()
            load_bundle(root, eigen_count=args.eigen)
            reads.append(time.perf_counter() - started)
            empty_file()
            started = time.perf_counter()
            head = importer.import_bundle(root, eigen_count=args.eigen)
            totals.append(time.perf_counter() - started)
        controls = importer.controls_of(head)
        assert controls is not None
        started = time.perf_counter()
        controls[head.data.shape_keys.key_blocks[1].name] = 1.0
        controls.update_tag()
        depsgraph = bpy.context.evaluated_depsgraph_get()
        depsgraph.update()
        evaluated = head.evaluated_get(depsgraph)
        evaluated.to_mesh()
        evaluate_s = time.perf_counter() - started
        evaluated.to_mesh_clear()
        result = {
            "bench": "blender_import",
            "blender": bpy.app.version_string,
            "vertices": len(head.data.vertices),
            "triangles": len(head.data.polygons),
            "shape_keys": len(head.data.shape_keys.key_blocks) - 1,
            "drivers": len(head.data.shape_keys.animation_data.drivers),
            "model_npz_mb": round(size_mb, 1),
            "import_s_median": round(statistics.median(totals), 3),
            "import_s_all": [round(t, 3) for t in totals],
            "read_bundle_s_median": round(statistics.median(reads), 3),
            "first_evaluation_s": round(evaluate_s, 3),
            "model_npz": "dense" if args.dense else "sparse",
            "compressed": not args.uncompressed,
            "target_s": 2.0,
        }
    print(
        f"{result['vertices']} vertices, {result['shape_keys']} keys with drivers: import "
        f"{result['import_s_median']:.2f} s median of {args.repeats} (reading model.npz "
        f"{result['read_bundle_s_median']:.2f} s), first evaluation {result['first_evaluation_s']:.2f} s"
    )
    print(json.dumps(result))
    return 0 if result["import_s_median"] < result["target_s"] else 1


if __name__ == "__main__":
    sys.exit(main())
