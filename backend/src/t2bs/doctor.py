"""`t2bs doctor`: what this machine can run, in one table.

Nothing here may be slow or change the machine: gsplat's CUDA code is looked for, never compiled, and
model caches are listed, never downloaded.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

OK, WARN, MISSING = "ok", "warn", "missing"

# Free space a preview run needs comfortably (bundle, capture frames, checkpoints).
MIN_FREE_DISK_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok", "warn" or "missing"
    detail: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_torch() -> list[Check]:
    version = _version("torch")
    if version is None:
        return [Check("torch", MISSING, "not installed: pip install torch==2.13.0 (CPU) or a CUDA build")]
    import torch

    checks = [Check("torch", OK, version)]
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        checks.append(
            Check("cuda", OK, f"{props.name}, {props.total_memory / 1024**3:.0f} GiB, CUDA {torch.version.cuda}")
        )
    else:
        checks.append(Check("cuda", WARN, "no CUDA device: fits run on the CPU rasterizer (preview speed)"))
    return checks


def gsplat_compiled_module() -> Path | None:
    """Where gsplat's compiled CUDA module is, if it has been built (prebuilt wheel or JIT cache)."""
    if importlib.util.find_spec("gsplat") is None:
        return None
    prebuilt = importlib.util.find_spec("gsplat.csrc")
    if prebuilt is not None and prebuilt.origin:
        return Path(prebuilt.origin)
    # gsplat JIT-compiles into torch's extension cache on first use (~90 s on an H100).
    root = os.environ.get("TORCH_EXTENSIONS_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "torch_extensions")
    for candidate in Path(root).glob("*/gsplat_cuda/gsplat_cuda.so"):
        return candidate
    return None


def check_gsplat() -> Check:
    version = _version("gsplat")
    if version is None:
        return Check("gsplat", MISSING, "not installed: pip install 't2bs[cuda]' on a CUDA machine")
    compiled = gsplat_compiled_module()
    if compiled is None:
        return Check("gsplat", WARN, f"{version}, CUDA code not compiled yet (first fit compiles it, ~90 s)")
    return Check("gsplat", OK, f"{version}, CUDA code compiled ({compiled})")


def check_generative() -> list[Check]:
    checks = []
    for package in ("diffusers", "transformers"):
        version = _version(package)
        checks.append(
            Check(package, OK, version)
            if version
            else Check(package, MISSING, "not installed: pip install 't2bs[gen]' for the generative providers")
        )
    return checks


def check_mediapipe() -> Check:
    """MediaPipe's face mesh places the facial regions of `--asset mesh:` heads (procedural/face_landmarks.py)."""
    version = _version("mediapipe")
    if version is None:
        from .procedural.face_landmarks import INSTALL_HINT

        detail = f"not installed: mesh: heads need --landmarks FILE.json for the procedural video ({INSTALL_HINT})"
        return Check("mediapipe", WARN, detail)
    return Check("mediapipe", OK, f"{version} (finds the face of mesh: heads)")


def huggingface_hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(home) / "hub"


def cached_model_ids(cache: Path) -> list[str]:
    """Hugging Face ids with a snapshot in the hub cache (`models--org--name` folders)."""
    if not cache.is_dir():
        return []
    return sorted(
        entry.name[len("models--") :].replace("--", "/")
        for entry in cache.iterdir()
        if entry.name.startswith("models--") and (entry / "snapshots").is_dir()
    )


def check_models() -> Check:
    cache = huggingface_hub_cache()
    ids = cached_model_ids(cache)
    if not ids:
        return Check("models", WARN, f"no models in {cache}; offline defaults only")
    return Check("models", OK, f"{len(ids)} in {cache}: {', '.join(ids)}")


def check_disk(folder: Path) -> Check:
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    status = OK if free >= MIN_FREE_DISK_BYTES else WARN
    return Check("disk", status, f"{free / 1024**3:.1f} GiB free at {probe}")


def run_checks(output_folder: Path | None = None) -> list[Check]:
    from . import __version__

    checks = [Check("python", OK, platform.python_version()), Check("t2bs", OK, __version__)]
    checks += check_torch()
    checks.append(check_gsplat())
    checks += check_generative()
    checks.append(check_mediapipe())
    checks.append(check_models())
    checks.append(check_disk(output_folder or Path.cwd()))
    return checks
