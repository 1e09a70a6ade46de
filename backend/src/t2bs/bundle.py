"""The bundle directory: the output of a run (layout in DESIGN.md, "Bundle directory").

`Manifest` is the bundle's record of what was asked and what happened; `Bundle` knows the layout and
reads and writes the array files with shape checks, so no stage builds paths by hand.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from .errors import BundleError, InputError
from .fileio import atomic_open, write_json_atomic

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"

# Where each part of a bundle lives, relative to its root.
ASSET_DIR = "asset"
STATIC_MESH = "asset/static.glb"
ASSET_INFO = "asset/asset.json"
CAPTURE_DIR = "capture"
FIT_DIR = "fit"
REGISTERED_DIR = "registered"
MODEL = "model.npz"
HEAD_GLB = "head.glb"
PREVIEW_DIR = "preview"

MODEL_KEYS_REQUIRED = (
    "neutral",
    "faces",
    "blendshape_names",
    "blendshapes",
    "pca_mean",
    "pca_basis",
    "pca_stdev",
)

_VERSIONED_PACKAGES = ("t2bs", "torch", "numpy", "trimesh", "gsplat", "diffusers", "transformers")


def software_versions() -> dict[str, str]:
    """Versions of Python and the packages that shape a run's output (absent ones are left out)."""
    versions = {"python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


@dataclass
class Manifest:
    """`manifest.json`. `status` is "running", "cancelled", "failed" or "complete"; only a complete
    bundle is offered to users as a result."""

    pipeline: str
    prompt: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    seeds: dict[str, int] = field(default_factory=dict)
    software: dict[str, str] = field(default_factory=software_versions)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: str = "running"
    error: str | None = None
    created: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "pipeline": self.pipeline,
            "status": self.status,
            "error": self.error,
            "prompt": self.prompt,
            "settings": self.settings,
            "providers": self.providers,
            "seeds": self.seeds,
            "software": self.software,
            "stages": self.stages,
            "metrics": self.metrics,
            "created": self.created,
            "updated": self.updated,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise BundleError(
                f"The bundle's manifest has schema version {version!r}; this t2bs reads version {SCHEMA_VERSION}."
            )
        return cls(
            pipeline=str(data.get("pipeline", "")),
            prompt=data.get("prompt"),
            settings=dict(data.get("settings") or {}),
            providers=dict(data.get("providers") or {}),
            seeds=dict(data.get("seeds") or {}),
            software=dict(data.get("software") or {}),
            stages=dict(data.get("stages") or {}),
            metrics=dict(data.get("metrics") or {}),
            status=str(data.get("status", "running")),
            error=data.get("error"),
            created=str(data.get("created", "")),
            updated=str(data.get("updated", "")),
        )


class Bundle:
    """A bundle directory on disk."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- manifest -------------------------------------------------------------------------------

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def has_manifest(self) -> bool:
        return self.manifest_path.is_file()

    def read_manifest(self) -> Manifest:
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BundleError(f"{self.root} is not a bundle: it has no {MANIFEST}.") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise BundleError(f"{self.manifest_path} cannot be read as JSON ({exc}).") from None
        if not isinstance(data, dict):
            raise BundleError(f"{self.manifest_path} does not hold a JSON object.")
        return Manifest.from_dict(data)

    def write_manifest(self, manifest: Manifest) -> None:
        manifest.updated = _now()
        write_json_atomic(self.manifest_path, manifest.to_dict())

    @classmethod
    def open_complete(cls, root: str | Path) -> Bundle:
        """Open a finished bundle for reading; an unfinished one is refused, not half-read."""
        bundle = cls(root)
        if not bundle.root.is_dir():
            raise BundleError(f"Bundle folder {bundle.root} does not exist.")
        manifest = bundle.read_manifest()
        if manifest.status != "complete":
            raise BundleError(
                f"The bundle in {bundle.root} is not finished (status {manifest.status!r}); "
                "run the same command again with --resume to complete it."
            )
        return bundle

    # -- paths ----------------------------------------------------------------------------------

    def path(self, relative: str) -> Path:
        return self.root / relative

    def registered_path(self, sequence: str) -> Path:
        return self.root / REGISTERED_DIR / f"{sequence}.npz"

    def registered_sequences(self) -> list[str]:
        folder = self.root / REGISTERED_DIR
        return sorted(p.stem for p in folder.glob("*.npz")) if folder.is_dir() else []


# -- array files: written to any folder (the runner points stages at a staging copy) -------------


def write_registered(path: Path, vertices: np.ndarray) -> None:
    """Write `registered/<sequence>.npz`.

    Args:
        vertices: [T, V, 3] registered vertex positions in the asset file's coordinates.
    """
    vertices = np.asarray(vertices, dtype=np.float32)
    if vertices.ndim != 3 or vertices.shape[2] != 3:
        raise ValueError(f"registered vertices must be [T, V, 3], got {vertices.shape}")
    with atomic_open(path, "wb") as handle:
        np.savez(handle, vertices=vertices)


def read_registered(path: Path, vertex_count: int | None = None) -> np.ndarray:
    """Read `registered/<sequence>.npz` as [T, V, 3] float32, checking it against the asset."""
    try:
        with np.load(path) as data:
            vertices = np.asarray(data["vertices"], dtype=np.float32)
    except FileNotFoundError:
        raise InputError(f"Registered frames {path} do not exist.") from None
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"Registered frames {path} cannot be read ({exc}).") from None
    if vertices.ndim != 3 or vertices.shape[2] != 3:
        raise InputError(f"{path}: 'vertices' must be [T, V, 3], not {list(vertices.shape)}.")
    if vertex_count is not None and vertices.shape[1] != vertex_count:
        raise InputError(f"{path} has {vertices.shape[1]} vertices per frame but the asset has {vertex_count}.")
    if not np.isfinite(vertices).all():
        raise InputError(f"{path} contains NaN or infinite coordinates.")
    return vertices


def write_model(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write `model.npz` (keys in DESIGN.md); refuses a model with missing keys."""
    missing = [key for key in MODEL_KEYS_REQUIRED if key not in arrays]
    if missing:
        raise ValueError(f"model.npz is missing {missing}")
    # Compressed: cleaned blendshapes are mostly zeros (a 25k-vertex head's model shrinks ~4x).
    with atomic_open(path, "wb") as handle:
        # cast: numpy's stubs would match a key named allow_pickle against that keyword.
        np.savez_compressed(handle, **cast(dict[str, Any], arrays))


def read_model(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise InputError(f"Model file {path} does not exist.") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"Model file {path} cannot be read ({exc}).") from None
    missing = [key for key in MODEL_KEYS_REQUIRED if key not in arrays]
    if missing:
        raise InputError(f"Model file {path} lacks {', '.join(missing)}.")
    return arrays
