"""Exports of a finished bundle's blendshape model, chosen by format name (`t2bs export --format`).

Every format gets the same `ExportSource`: the model (in the asset file's coordinates), the texture,
and the rotation that turns the file's axes into +Y up / +Z front, the frame glTF and USD expect.
Shape names can be written in another casing (`expressions.NAME_STYLES`: arkit, pascal, ict), for
tools that expect Live Link Face's `EyeBlinkLeft` or a rig's `eyeBlink_L`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..blendshape_model import BlendshapeModel
from ..bundle import MODEL, Bundle, read_model, write_model
from ..errors import InputError
from ..expressions import NAME_STYLES
from ..registry import Registry

TEXTURE_PNG = "texture.png"


@dataclass
class ExportSource:
    """What every exporter writes from.

    Attributes:
        model: the blendshape model, in the asset file's coordinates.
        rotation: [3, 3] from the file's axes to +Y up, +Z front (a signed permutation).
        to_normalised: [4, 4] from the file's coordinates to the normalised frame (previews).
        texture: [H, W, 3] uint8 base colour, or None.
        prompt: the run's prompt, or None.
        bundle: the bundle's root folder.
    """

    model: BlendshapeModel
    rotation: np.ndarray
    to_normalised: np.ndarray
    texture: np.ndarray | None
    prompt: str | None
    bundle: Path

    def names(self, style: str) -> list[str]:
        if style not in NAME_STYLES:
            raise InputError(f"Unknown name style {style!r}; use one of {', '.join(NAME_STYLES)}.")
        convert = NAME_STYLES[style]
        return [convert(name) for name in self.model.names]

    def gltf_extras(self) -> dict[str, Any]:
        return {"t2bs": {"prompt": self.prompt, "bundle": str(self.bundle)}}


Exporter = Callable[[ExportSource, Path, str], None]
EXPORT_FORMATS: Registry[Exporter] = Registry("export format")
DEFAULT_FILENAMES = {"glb": "head.glb", "npz": "blendshapes.npz", "usd": "head.usd"}


@EXPORT_FORMATS.register("glb")
def export_glb(source: ExportSource, path: Path, style: str) -> None:
    from .gltf import write_head_glb

    write_head_glb(
        path,
        source.model,
        source.rotation,
        names=source.names(style),
        texture=source.texture,
        extras=source.gltf_extras(),
    )


@EXPORT_FORMATS.register("npz")
def export_npz(source: ExportSource, path: Path, style: str) -> None:
    arrays = source.model.to_arrays()
    arrays["blendshape_names"] = np.array(source.names(style), dtype=np.str_)
    write_model(path, arrays)


@EXPORT_FORMATS.register("usd")
def export_usd(source: ExportSource, path: Path, style: str) -> None:
    from .usd import write_head_usd

    if path.suffix not in (".usd", ".usda", ".usdc"):
        raise InputError(f"A USD file must end in .usd, .usda or .usdc, not {path.name!r}.")
    write_head_usd(path, source.model, source.rotation, names=source.names(style), texture=source.texture)


def load_export_source(bundle_root: str | Path, *, require_complete: bool = True) -> ExportSource:
    """Everything an exporter needs from a bundle (the model stage must have run).

    Raises InputError (one sentence) when the bundle is not finished or lacks its model.
    """
    from ..mesh_io import invert_similarity
    from ..stages.asset import load_asset

    bundle = Bundle.open_complete(bundle_root) if require_complete else Bundle(bundle_root)
    manifest = bundle.read_manifest()
    model_path = bundle.path(MODEL)
    if not model_path.is_file():
        raise InputError(f"The bundle in {bundle.root} has no {MODEL}; run the model stage first.")
    model = BlendshapeModel.from_arrays(read_model(model_path))
    mesh = load_asset(bundle.root)
    if mesh.vertex_count != model.vertex_count:
        raise InputError(
            f"{model_path} has {model.vertex_count} vertices but the bundle's head has {mesh.vertex_count}."
        )
    rotation = mesh.to_source[:3, :3].T / mesh.source_scale
    return ExportSource(
        model=model,
        rotation=rotation,
        to_normalised=invert_similarity(mesh.to_source),
        texture=mesh.texture if mesh.uv is not None else None,
        prompt=manifest.prompt,
        bundle=bundle.root,
    )


def export_bundle(bundle_root: str | Path, fmt: str, out: str | Path | None = None, style: str = "arkit") -> Path:
    """Write the bundle's model as `fmt` to `out` (default: the format's file name in the bundle)."""
    exporter = EXPORT_FORMATS.get(fmt)
    source = load_export_source(bundle_root)
    default = Path(DEFAULT_FILENAMES[fmt])
    if style != "arkit":
        default = default.with_stem(f"{default.stem}_{style}")
    path = Path(out) if out is not None else source.bundle / default
    if path.is_dir():
        path = path / default
    if not path.parent.is_dir():
        raise InputError(f"The folder {path.parent} does not exist.")
    source.names(style)  # refuse an unknown style before writing anything
    exporter(source, path, style)
    return path
