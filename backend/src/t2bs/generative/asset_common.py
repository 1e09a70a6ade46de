"""What the generative asset providers share: the prompt they use and the way their mesh enters the bundle.

A generated mesh is written as it came out of the model (`asset/generated.glb` or `.ply`, kept in the
bundle for provenance) and read back with `mesh_io.load_head_mesh`, the loader of `mesh:PATH`, so it
gets exactly the same normalisation (+Y up, face toward +Z, unit box, `to_source` kept). The model's
own axes are given per provider and can be overridden with the `up_axis` / `front_axis` settings.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..bundle import ASSET_DIR
from ..errors import InputError, StageError
from ..mesh_io import HeadMesh, load_head_mesh
from ..stage import StageContext

GENERATED_STEM = f"{ASSET_DIR}/generated"


def identity_prompt(ctx: StageContext, provider: str) -> str:
    """The run's identity prompt (`settings["prompt"]`, else the manifest's)."""
    prompt = ctx.settings.get("prompt") or ctx.manifest.prompt
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError(f'The {provider} provider needs a prompt, e.g. t2bs generate "a cute orange fox".')
    return prompt.strip()


def int_setting(settings: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    """A whole-number setting in [low, high], else one InputError sentence."""
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"The setting {key} must be a whole number from {low} to {high}, not {value!r}.")
    return value


def float_setting(settings: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InputError(f"The setting {key} must be a number from {low:g} to {high:g}, not {value!r}.")
    return float(value)


def normalised_mesh(ctx: StageContext, mesh: Any, provider: str, up: str, front: str) -> HeadMesh:
    """Write the trimesh `mesh` (the model's output, its own axes) and load it like `mesh:PATH`.

    Args:
        mesh: a `trimesh.Trimesh` (vertex colours or a texture) or `trimesh.Scene`.
        up, front: the model's up and front axes (signed axis names); the settings `up_axis` and
            `front_axis` override them.
    Raises:
        StageError: the model produced no triangles (try another seed or prompt).
    """
    import trimesh

    faces = len(mesh.faces) if isinstance(mesh, trimesh.Trimesh) else sum(len(g.faces) for g in mesh.geometry.values())
    if faces == 0:
        raise StageError(f"The {provider} model produced an empty surface; try another --seed or prompt.")
    textured = isinstance(mesh, trimesh.Scene) or isinstance(
        getattr(mesh, "visual", None), trimesh.visual.TextureVisuals
    )
    # PLY keeps per-vertex colours exactly; GLB keeps a texture and its UVs.
    suffix = ".glb" if textured else ".ply"
    path = ctx.output(GENERATED_STEM + suffix)
    mesh.export(path)
    up = str(ctx.settings.get("up_axis", up))
    front = str(ctx.settings.get("front_axis", front))
    head = load_head_mesh(path, up=up, front=front)
    # Where the raw file lives once the runner has moved the staging folder into the bundle.
    head.source = str(ctx.bundle.root / (GENERATED_STEM + suffix))
    return head


def vertex_colour_mesh(vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray | None) -> Any:
    """A trimesh from [V, 3] float vertices, [F, 3] int faces and optional [V, 3] colours in 0..1."""
    import trimesh

    kwargs: dict[str, Any] = {}
    if colours is not None:
        kwargs["vertex_colors"] = (np.clip(colours, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return trimesh.Trimesh(
        vertices=np.asarray(vertices, np.float64), faces=np.asarray(faces, np.int64), process=False, **kwargs
    )
