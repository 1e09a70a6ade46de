"""Model management for the generative providers: defaults, the download gate, memory presets, progress.

* `DEFAULT_MODELS`: the real Hugging Face id each provider loads unless its spec names another id or a
  local folder (`--video wan:/models/wan21`, `--asset shap-e:openai/shap-e`).
* The download gate (`check_available`): weights are downloaded only when the `allow_download` setting
  is true (`t2bs generate --allow-download`, or Blender's online access in the add-on). Otherwise every
  id must already be in the Hugging Face cache, and the ones that are not are named in one InputError
  together with the two ways to get them.
* Loading (`load_diffusers`): always `use_safetensors=True`, never `trust_remote_code`.
* Memory presets (`choose_memory_plan`, a pure function of the free VRAM): bf16 resident, bf16 with VAE
  tiling, model CPU offload, or sequential CPU offload.
* `StepProgress`: a `callback_on_step_end` that reports every denoising step and raises `Cancelled` at
  the next step once the run is cancelled.

Nothing here imports torch or diffusers at module import time.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..stage import StageContext

GIB = 1024**3

# provider -> default model id (the weights a bare `--asset shap-e` or `--video wan` loads).
DEFAULT_MODELS: dict[str, str] = {
    "shap-e": "openai/shap-e",
    # hy3dgen's own text-to-3D demo draws the reference image with this step-distilled HunyuanDiT.
    "text-to-image": "Tencent-Hunyuan/HunyuanDiT-v1.1-Diffusers-Distilled",
    "hunyuan3d": "tencent/Hunyuan3D-2",
    "trellis": "microsoft/TRELLIS-image-large",
    "wan": "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
    "ltx": "Lightricks/LTX-Video",
    "cogvideox": "THUDM/CogVideoX-5b-I2V",
}


@dataclass(frozen=True)
class ModelSize:
    """What a model needs in GPU memory at bf16, in bytes.

    Attributes:
        total: all components' weights plus the activations of one generation (the resident preset).
        largest: the largest single component plus activations (what model CPU offload keeps on the GPU).
    """

    total: int
    largest: int


# Published parameter counts x 2 bytes (bf16), rounded up with activation headroom for the sizes the
# providers generate at. An unknown id (a user's own folder) gets `UNKNOWN_SIZE`, which errs on the
# side of offloading.
MODEL_SIZES: dict[str, ModelSize] = {
    "openai/shap-e": ModelSize(4 * GIB, 3 * GIB),
    "Tencent-Hunyuan/HunyuanDiT-v1.1-Diffusers-Distilled": ModelSize(14 * GIB, 8 * GIB),
    "tencent/Hunyuan3D-2": ModelSize(12 * GIB, 8 * GIB),
    "microsoft/TRELLIS-image-large": ModelSize(16 * GIB, 10 * GIB),
    # 14B transformer (28 GB) + UMT5-XXL (11 GB) + CLIP ViT-H + VAE, plus 480p x 49 frames of attention.
    "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers": ModelSize(48 * GIB, 34 * GIB),
    # 2B transformer + T5-XXL (9.5 GB).
    "Lightricks/LTX-Video": ModelSize(18 * GIB, 12 * GIB),
    # 5B transformer + T5-XXL.
    "THUDM/CogVideoX-5b-I2V": ModelSize(26 * GIB, 14 * GIB),
}
UNKNOWN_SIZE = ModelSize(40 * GIB, 24 * GIB)

GEN_INSTALL = "pip install 't2bs[gen]'"

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


# -- optional packages ------------------------------------------------------------------------------


def has_module(name: str) -> bool:
    """Whether `name` can be imported, without importing it (a None entry in sys.modules means no)."""
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def require_modules(provider: str, modules: Sequence[str], install: str = GEN_INSTALL) -> None:
    """Raise one InputError naming the missing packages and how to install them."""
    missing = [name for name in modules if not has_module(name)]
    if missing:
        raise InputError(
            f"The {provider} provider needs the Python package{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}, which {'are' if len(missing) > 1 else 'is'} not installed: {install}."
        )


def import_module(name: str, provider: str, install: str = GEN_INSTALL) -> Any:
    """Import an optional package; its absence (or a broken install) becomes one InputError sentence."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "not installed"
        raise InputError(f"The {provider} provider cannot import {name} ({reason}): {install}.") from None


# -- model sources and the download gate --------------------------------------------------------------


def allow_download(settings: dict[str, Any]) -> bool:
    """The `allow_download` setting (from --allow-download or Blender's online access); default off."""
    value = settings.get("allow_download", False)
    if not isinstance(value, bool):
        raise InputError(f"The setting allow_download must be true or false, not {value!r}.")
    return value


def model_source(argument: str | None, provider: str) -> str:
    """The provider spec's argument (a Hugging Face id or a local folder), else the provider's default."""
    text = (argument or "").strip()
    if not text:
        return DEFAULT_MODELS[provider]
    if is_local_path(text):
        return str(Path(text).expanduser().absolute())
    if not _REPO_ID.match(text):
        raise InputError(
            f"The model {text!r} for the {provider} provider is neither a Hugging Face id such as "
            f"{DEFAULT_MODELS[provider]} nor a path to a folder."
        )
    return text


def is_local_path(source: str) -> bool:
    """A folder rather than a hub id: absolute, ./ ../ ~ prefixed, a backslash, or an existing folder.

    `org/name` is read as a hub id unless a folder of that name exists in the working directory.
    """
    return (
        source.startswith(("/", "./", "../", "~", ".\\", "..\\"))
        or "\\" in source
        or (len(source) > 1 and source[1] == ":")
        or Path(source).is_dir()
    )


def check_local_folder(source: str, provider: str, marker: str | None = "model_index.json") -> Path:
    """A local model folder, checked: it exists and (when `marker` is given) holds that file."""
    path = Path(source).expanduser()
    if not path.is_dir():
        raise InputError(f"The model folder {path} for the {provider} provider does not exist.")
    if marker is not None and not (path / marker).is_file():
        raise InputError(
            f"The folder {path} holds no {marker}, so it is not a saved model for the {provider} provider "
            "(save one with save_pretrained or huggingface-cli download ID --local-dir DIR)."
        )
    return path


def cached_snapshot(repo_id: str, allow_patterns: Sequence[str] | None = None) -> Path | None:
    """The cached snapshot folder of `repo_id` in the Hugging Face cache, or None; never downloads."""
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(
                repo_id, local_files_only=True, allow_patterns=None if allow_patterns is None else list(allow_patterns)
            )
        )
    except Exception:
        return None


def check_available(sources: Iterable[str], provider: str, allowed: bool) -> None:
    """The download gate: every hub id in `sources` is cached, or downloads are allowed.

    Local folders are checked by the loaders. Raises one InputError naming every missing id.
    """
    ids = [source for source in dict.fromkeys(sources) if not is_local_path(source)]
    if allowed:
        return
    missing = [repo_id for repo_id in ids if cached_snapshot(repo_id) is None]
    if missing:
        fetch = " and ".join(f"`huggingface-cli download {repo_id}`" for repo_id in missing)
        raise InputError(
            f"The {provider} provider needs the model{'s' if len(missing) > 1 else ''} {', '.join(missing)}, "
            f"which {'are' if len(missing) > 1 else 'is'} not on this machine: allow downloads with "
            f"--allow-download (or Blender's online access) or fetch {'them' if len(missing) > 1 else 'it'} "
            f"with {fetch}."
        )


def snapshot_folder(
    source: str, provider: str, allowed: bool, allow_patterns: Sequence[str] | None = None, marker: str | None = None
) -> Path:
    """A local folder holding `source`'s files: the folder itself, or the hub snapshot (downloaded only
    when `allowed`). For packages (hy3dgen, TRELLIS) that take a folder rather than a hub id."""
    if is_local_path(source):
        return check_local_folder(source, provider, marker)
    cached = cached_snapshot(source, allow_patterns)
    if cached is not None:
        return cached
    check_available([source], provider, allowed)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source, allow_patterns=None if allow_patterns is None else list(allow_patterns)))
    except Exception as exc:
        raise InputError(f"Downloading {source} for the {provider} provider failed ({_one_line(exc)}).") from None


def load_diffusers(
    pipeline_class: str, source: str, provider: str, allowed: bool, torch_dtype: Any, **kwargs: Any
) -> Any:
    """Load a diffusers pipeline from a hub id or a local folder: safetensors only, no remote code.

    `pipeline_class` names a class in `diffusers` ("WanImageToVideoPipeline", "AutoPipelineForText2Image").
    The gate has run (`check_available`) when `source` is an id; a local folder is checked here.
    Loading failures of the user's model (incomplete cache, no safetensors, not that kind of model)
    become one InputError; programming errors propagate.
    """
    diffusers = import_module("diffusers", provider)
    if is_local_path(source):
        check_local_folder(source, provider)
    check_available([source], provider, allowed)
    cls = getattr(diffusers, pipeline_class)
    try:
        pipe = cls.from_pretrained(
            source,
            torch_dtype=torch_dtype,
            use_safetensors=True,
            local_files_only=not allowed,
            trust_remote_code=False,
            **kwargs,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        hint = "" if allowed else "; if the cached copy is incomplete, run again with --allow-download"
        raise InputError(
            f"The {provider} provider cannot load {source} as a {pipeline_class} ({_one_line(exc)}){hint}."
        ) from None
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 200 else line[:197] + "..."


# -- devices and memory presets ---------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryPlan:
    """How a pipeline is placed in memory.

    Attributes:
        name: "cpu", "resident", "resident-tiled", "model-offload" or "sequential-offload".
        device: "cpu" or "cuda".
        dtype: "float32", "bfloat16" or "float16" (a torch dtype name).
        offload: "none", "model" (whole components move to the GPU in turn) or "sequential" (layer by
            layer: slowest, smallest).
        vae_tiling: decode (and encode) the VAE in overlapping tiles to bound its activation memory.
    """

    name: str
    device: str
    dtype: str
    offload: str
    vae_tiling: bool


def choose_memory_plan(
    device: str, free_bytes: int | None, size: ModelSize, *, bf16_supported: bool = True
) -> MemoryPlan:
    """Pick the fastest placement that fits `free_bytes` of free GPU memory (pure; no torch).

    Rules (bf16 where the GPU supports it, else fp16):
    * CPU: float32 (bf16 matmuls are slow or missing on many CPUs), VAE tiling to bound RAM.
    * free >= 1.5 x total: everything resident, no tiling (fastest).
    * free >= 1.15 x total: resident with VAE tiling (the VAE decode of a whole video is the peak).
    * free >= 1.2 x largest component: model CPU offload with VAE tiling.
    * otherwise: sequential CPU offload with VAE tiling (slow, fits small GPUs).
    """
    if device == "cpu":
        return MemoryPlan("cpu", "cpu", "float32", "none", True)
    dtype = "bfloat16" if bf16_supported else "float16"
    free = max(int(free_bytes or 0), 0)
    if free >= 1.5 * size.total:
        return MemoryPlan("resident", "cuda", dtype, "none", False)
    if free >= 1.15 * size.total:
        return MemoryPlan("resident-tiled", "cuda", dtype, "none", True)
    if free >= 1.2 * size.largest:
        return MemoryPlan("model-offload", "cuda", dtype, "model", True)
    return MemoryPlan("sequential-offload", "cuda", dtype, "sequential", True)


def pick_device(settings: dict[str, Any]) -> str:
    """The `device` setting (auto | cuda | cpu) resolved against this machine."""
    import torch

    wanted = str(settings.get("device") or "auto")
    if wanted not in ("auto", "cuda", "cpu"):
        raise InputError(f"The device must be auto, cuda or cpu, not {wanted!r}.")
    if wanted == "cuda" and not torch.cuda.is_available():
        raise InputError("The device cuda was asked for but torch sees no CUDA GPU; use --device auto or cpu.")
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return wanted


def plan_for(settings: dict[str, Any], source: str) -> MemoryPlan:
    """The memory plan for loading `source` on this machine (free VRAM measured now)."""
    import torch

    device = pick_device(settings)
    free = None
    bf16 = True
    if device == "cuda":
        free, _total = torch.cuda.mem_get_info()
        bf16 = bool(torch.cuda.is_bf16_supported())
    return choose_memory_plan(device, free, MODEL_SIZES.get(source, UNKNOWN_SIZE), bf16_supported=bf16)


def torch_dtype(plan: MemoryPlan) -> Any:
    import torch

    return getattr(torch, plan.dtype)


def apply_memory_plan(pipe: Any, plan: MemoryPlan) -> Any:
    """Place a loaded diffusers pipeline as `plan` says; returns it."""
    if plan.offload == "model":
        pipe.enable_model_cpu_offload()
    elif plan.offload == "sequential":
        pipe.enable_sequential_cpu_offload()
    else:
        pipe.to(plan.device)
    vae = getattr(pipe, "vae", None)
    if vae is not None and hasattr(vae, "enable_tiling"):
        if plan.vae_tiling:
            vae.enable_tiling()
        elif hasattr(vae, "disable_tiling"):
            vae.disable_tiling()
    return pipe


def free_accelerator_memory() -> None:
    """Give cached GPU memory back between two models (text-to-image, then image-to-3D)."""
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def generator(device: str, seed: int) -> Any:
    """A torch.Generator with `seed` (on the CPU: the same noise on every machine)."""
    import torch

    return torch.Generator(device="cpu").manual_seed(int(seed))


# -- progress and cancellation ------------------------------------------------------------------------


class StepProgress:
    """`callback_on_step_end` for diffusers pipelines: progress per denoising step and cancellation.

    Maps step i of `total` to the stage fraction start + (end - start) * (i + 1) / total and calls
    `ctx.step`, which raises `t2bs.errors.Cancelled` once the run is cancelled, so a cancel stops the
    denoising loop within one step. Pipelines without the callback (Shap-E) use `wrap_progress_bar`.
    """

    def __init__(self, ctx: StageContext, start: float, end: float, total: int, message: str) -> None:
        self.ctx = ctx
        self.start = start
        self.end = end
        self.total = max(int(total), 1)
        self.message = message
        self.steps = 0

    def report(self, done: int) -> None:
        self.steps = done
        fraction = self.start + (self.end - self.start) * min(done, self.total) / self.total
        self.ctx.step(fraction, f"{self.message}: step {min(done, self.total)}/{self.total}")

    def __call__(self, pipe: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        self.report(step + 1)
        return callback_kwargs

    def wrap_progress_bar(self, pipe: Any) -> None:
        """Report through the pipeline's `progress_bar` (the loop's iterator) for pipelines that have
        no `callback_on_step_end`: the report after each item is the end of that denoising step."""

        def progress_bar(iterable: Iterable[Any] | None = None, total: int | None = None) -> Iterator[Any]:
            if iterable is None:
                raise ValueError("this pipeline's progress bar needs an iterable")
            items = list(iterable)
            self.total = max(len(items), 1)
            for index, item in enumerate(items):
                yield item
                self.report(index + 1)

        pipe.progress_bar = progress_bar
