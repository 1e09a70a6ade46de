"""Stage 2, `asset`: the static head (DESIGN.md, "Pipeline stages").

A provider makes a `HeadMesh` in the normalised frame (`t2bs.mesh_io`); the stage writes it to the
bundle as `asset/static.glb` with `asset/asset.json` beside it:

```json
{"version": 1, "source": "/abs/head.obj", "to_source": [[...4x4...]],
 "vertex_count": 24591, "face_count": 48836, "has_uv": true, "has_texture": true,
 "has_vertex_colors": false, "diagonal_source_units": 37.9}
```
`to_source` maps the normalised frame to the original file's coordinates (column vectors), so later
stages can hand results back in the user's units. Providers are chosen with a spec string such as
`mesh:/path/head.glb` and register themselves in `ASSET_PROVIDERS` when their module is imported.
When the run needs facial regions and the provider made none, the stage adds `asset/regions.npz` and
`asset/landmarks.json` (`write_facial_regions`).
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..bundle import ASSET_DIR, ASSET_INFO, STATIC_MESH
from ..errors import BundleError, InputError
from ..fileio import write_json_atomic
from ..mesh_io import HeadMesh, load_head_mesh, load_static_glb, save_static_glb
from ..procedural.regions import REGIONS_FILE
from ..registry import Registry, split_spec
from ..stage import Stage, StageContext

ASSET_INFO_VERSION = 1
DEFAULT_ASSET_PROVIDER = "procedural"
# The facial landmarks behind asset/regions.npz, in the asset file's coordinates (a --landmarks file).
LANDMARKS_FILE = "asset/landmarks.json"


class AssetProvider(ABC):
    """Makes the static head. `argument` is the part of the spec after the first colon, or None."""

    name: ClassVar[str]

    def __init__(self, argument: str | None) -> None:
        self.argument = argument

    @abstractmethod
    def make(self, ctx: StageContext) -> HeadMesh:
        """Return the head in the normalised frame; report progress in 0..0.8 with `ctx.step`."""


ASSET_PROVIDERS: Registry[type[AssetProvider]] = Registry("asset provider")


@ASSET_PROVIDERS.register("mesh")
class MeshFileProvider(AssetProvider):
    """`mesh:PATH`: the user's own OBJ, GLB/glTF or PLY file (or a Blender object exported to one).

    Settings `up_axis` and `front_axis` (signed axes, default "+y" and "+z") say how the file is
    oriented.
    """

    name = "mesh"

    def __init__(self, argument: str | None) -> None:
        if argument is None or not argument.strip():
            raise InputError("The mesh asset provider needs a path: --asset mesh:PATH.")
        super().__init__(argument.strip())

    def make(self, ctx: StageContext) -> HeadMesh:
        assert self.argument is not None
        path = Path(self.argument).expanduser()
        up = str(ctx.settings.get("up_axis", "+y"))
        front = str(ctx.settings.get("front_axis", "+z"))
        ctx.step(0.05, f"loading {path.name}")
        mesh = load_head_mesh(path, up=up, front=front)
        ctx.record_provider(name=self.name, path=mesh.source, up_axis=up, front_axis=front)
        return mesh


class AssetStage(Stage):
    """Runs the provider named in `settings["asset"]` and writes `asset/` into the bundle."""

    name = "asset"
    outputs = (ASSET_DIR,)

    def run(self, ctx: StageContext) -> None:
        spec = str(ctx.settings.get("asset") or DEFAULT_ASSET_PROVIDER)
        provider_name, argument = split_spec(spec)
        provider_class = ASSET_PROVIDERS.get(provider_name)
        # A provider that forgets to record itself is still traceable in the manifest.
        ctx.record_provider(name=provider_name, spec=spec)
        ctx.step(0.0, f"making the static head with the {provider_name} provider")
        provider = provider_class(argument)
        mesh = provider.make(ctx)
        if needs_facial_regions(ctx.settings) and not (ctx.staging / REGIONS_FILE).is_file():
            write_facial_regions(ctx, mesh)
        ctx.step(0.8, f"writing {STATIC_MESH} ({mesh.vertex_count} vertices)")
        save_static_glb(mesh, ctx.output(STATIC_MESH))
        write_json_atomic(ctx.output(ASSET_INFO), asset_info(mesh))
        ctx.record_metrics(vertex_count=mesh.vertex_count, face_count=mesh.face_count)
        ctx.step(1.0, "static head written")


def needs_facial_regions(settings: dict[str, Any]) -> bool:
    """Whether the run wants `asset/regions.npz`: the `procedural` video provider acts with them, and a
    `landmarks` file asks for them outright."""
    video = settings.get("video")
    return settings.get("landmarks") is not None or (isinstance(video, str) and split_spec(video)[0] == "procedural")


def write_facial_regions(ctx: StageContext, mesh: HeadMesh) -> None:
    """Facial regions for a head whose provider made none (a `mesh:` file, a generated head).

    Here in the asset stage, not in the video provider, because they describe the static head: they
    belong beside it in `asset/`, which only this stage writes (so a resumed run never mixes a head
    with another head's regions), and a landmarks file speaks the coordinates of the asset file, which
    only this stage reads. The points come from `settings["landmarks"]` (a file; bad input is an
    InputError), else from MediaPipe. When neither gives a face, no regions are written and the reason
    goes into the manifest for the video provider's message (logged at INFO level only: the user gets
    one line). `asset/landmarks.json` keeps the points used, in the asset file's coordinates.
    """
    from ..procedural.face_landmarks import LandmarksUnavailable, face_landmarks, landmarks_document
    from ..procedural.mesh_regions import regions_from_landmarks
    from ..procedural.regions import save_regions

    landmarks_file = ctx.settings.get("landmarks")
    record = dict(ctx.manifest.providers.get(ctx.progress.stage, {}))
    ctx.step(0.6, "finding the face's landmarks" if landmarks_file is None else "reading the face's landmarks")
    try:
        points, origin = face_landmarks(mesh, None if landmarks_file is None else str(landmarks_file))
    except LandmarksUnavailable as exc:
        ctx.log.info("no facial regions for this head: %s", exc.reason)
        ctx.record_provider(**record, regions=None, regions_missing=exc.reason)
        return
    ctx.step(0.7, "placing the facial regions")
    save_regions(regions_from_landmarks(mesh.vertices, mesh.faces, points), ctx.output(REGIONS_FILE))
    write_json_atomic(ctx.output(LANDMARKS_FILE), landmarks_document(points, mesh))
    ctx.record_provider(**record, regions=origin)


def asset_info(mesh: HeadMesh) -> dict[str, Any]:
    """The content of asset.json for `mesh` (format in the module docstring)."""
    return {
        "version": ASSET_INFO_VERSION,
        "source": mesh.source,
        "to_source": [[float(value) for value in row] for row in mesh.to_source],
        "vertex_count": mesh.vertex_count,
        "face_count": mesh.face_count,
        "has_uv": mesh.uv is not None,
        "has_texture": mesh.texture is not None,
        "has_vertex_colors": mesh.vertex_colors is not None,
        "diagonal_source_units": mesh.diagonal * mesh.source_scale,
    }


def load_asset(bundle_root: str | Path) -> HeadMesh:
    """Read the static head of a bundle (asset/static.glb and asset/asset.json) as a `HeadMesh`.

    Raises BundleError (an InputError) if the files are missing, unreadable or disagree.
    """
    root = Path(bundle_root)
    info_path = root / ASSET_INFO
    glb_path = root / STATIC_MESH
    if not info_path.is_file() or not glb_path.is_file():
        raise BundleError(f"The bundle in {root} has no {STATIC_MESH} and {ASSET_INFO}; run the asset stage first.")
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{info_path} cannot be read as JSON ({exc}).") from None
    if not isinstance(info, dict) or info.get("version") != ASSET_INFO_VERSION:
        version = info.get("version") if isinstance(info, dict) else None
        raise BundleError(f"{info_path} has version {version!r}; this t2bs reads version {ASSET_INFO_VERSION}.")
    try:
        to_source = np.asarray(info["to_source"], dtype=np.float64)
        vertex_count = int(info["vertex_count"])
        face_count = int(info["face_count"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{info_path} lacks a valid entry ({exc}).") from None
    if to_source.shape != (4, 4) or not np.isfinite(to_source).all() or not _is_similarity(to_source):
        raise BundleError(f"{info_path} holds no valid 4x4 similarity transform in to_source.")
    mesh = load_static_glb(glb_path, to_source, source=str(info.get("source", "")))
    if mesh.vertex_count != vertex_count or mesh.face_count != face_count:
        raise BundleError(
            f"{glb_path} has {mesh.vertex_count} vertices and {mesh.face_count} faces but {info_path} "
            f"says {vertex_count} and {face_count}; run the asset stage again."
        )
    return mesh


def _is_similarity(matrix: np.ndarray) -> bool:
    linear = matrix[:3, :3]
    scale = float(np.linalg.norm(linear[:, 0]))
    if not scale > 0.0 or not math.isfinite(scale):
        return False
    gram = linear.T @ linear / (scale * scale)
    return bool(np.allclose(gram, np.eye(3), atol=1e-6)) and bool(np.allclose(matrix[3], (0, 0, 0, 1)))


# isort: off
# The offline default `procedural` asset provider registers itself on import (it needs this module's
# registry, hence the import at the end).
from ..procedural import providers as _procedural_providers  # noqa: E402, F401

# The generative asset providers (extra `gen`) register the same way; their modules import diffusers
# and the 3D packages only when a provider runs, so this import stays cheap.
from ..generative import hunyuan3d as _hunyuan3d, shap_e as _shap_e, trellis as _trellis  # noqa: E402, F401
# isort: on
