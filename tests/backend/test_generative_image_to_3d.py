"""The 3D halves of `hunyuan3d` and `trellis`, against stand-ins of the packages' own APIs.

hy3dgen and TRELLIS are not on any package index and need CUDA, so their real code cannot run here.
The stand-ins below copy the *calling conventions* of the real entry points, read from the projects'
sources (Tencent/Hunyuan3D-2 at 2ee4770, microsoft/TRELLIS at 6b0d647): the same parameter names and
defaults, the same way a local model folder is resolved (and the same failure when it is not), the
same return shapes. They check that our glue calls them the way the real code needs; the models'
numbers are not exercised (docs/generative.md says so).
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import trimesh
from test_generative_providers import save_tiny_stable_diffusion

from t2bs.errors import InputError
from t2bs.runner import Cancelled, CancelToken, Runner
from t2bs.stages.asset import AssetStage, load_asset

# -- hy3dgen (Tencent/Hunyuan3D-2, hy3dgen/shapegen/pipelines.py, utils.py, texgen/pipelines.py) ------


class _ShapePipeline:
    calls: ClassVar[list[dict[str, Any]]] = []

    @classmethod
    def from_pretrained(
        cls,
        model_path: str,
        device: str = "cuda",
        dtype: Any = None,
        use_safetensors: bool = True,
        variant: str = "fp16",
        subfolder: str = "hunyuan3d-dit-v2-0",
        **kwargs: Any,
    ) -> _ShapePipeline:
        # utils.smart_load_model: HY3DGEN_MODELS / model_path / subfolder, else a hub download.
        base = os.environ.get("HY3DGEN_MODELS", "~/.cache/hy3dgen")
        folder = os.path.expanduser(os.path.join(base, model_path, subfolder))
        if not os.path.exists(folder):
            raise AssertionError(f"hy3dgen would try to download {model_path!r} from the hub")
        checkpoint = os.path.join(folder, f"model.{variant}.{'safetensors' if use_safetensors else 'ckpt'}")
        for needed in (os.path.join(folder, "config.yaml"), checkpoint):
            if not os.path.exists(needed):
                raise FileNotFoundError(needed)
        pipe = cls()
        pipe.device = device
        return pipe

    def __call__(
        self,
        image: Any = None,
        num_inference_steps: int = 50,
        timesteps: Any = None,
        sigmas: Any = None,
        eta: float = 0.0,
        guidance_scale: float = 5.0,
        generator: Any = None,
        box_v: float = 1.01,
        octree_resolution: int = 384,
        mc_level: float = 0.0,
        mc_algo: Any = None,
        num_chunks: int = 8000,
        output_type: str = "trimesh",
        enable_pbar: bool = True,
        **kwargs: Any,
    ) -> list[Any]:
        callback = kwargs.pop("callback", None)
        callback_steps = kwargs.pop("callback_steps", None)
        assert not kwargs, f"unexpected arguments {sorted(kwargs)}"
        assert image is not None and image.mode == "RGBA"
        type(self).calls.append({"steps": num_inference_steps, "octree_resolution": octree_resolution})
        for index in range(num_inference_steps):
            if callback is not None and index % callback_steps == 0:
                callback(index, index, None)
        # A wide, short head in hy3dgen's axes (+Y up): the normalisation must keep it so.
        sphere = trimesh.creation.icosphere(subdivisions=3)
        sphere.apply_scale([0.8, 1.0, 0.6])
        return [sphere]


def _passthrough(mesh: Any, **kwargs: Any) -> Any:
    return mesh


class _FaceReducer:
    def __call__(self, mesh: Any, max_facenum: int = 40000) -> Any:
        return mesh


class _TexGenConfig:
    def __init__(self, light_remover_ckpt_path: str, multiview_ckpt_path: str, subfolder_name: str) -> None:
        self.light_remover_ckpt_path = light_remover_ckpt_path
        self.multiview_ckpt_path = multiview_ckpt_path
        self.subfolder_name = subfolder_name


class _PaintPipeline:
    configs: ClassVar[list[_TexGenConfig]] = []

    def __init__(self, config: _TexGenConfig) -> None:
        for path in (config.light_remover_ckpt_path, config.multiview_ckpt_path):
            assert os.path.isdir(path), path
        type(self).configs.append(config)

    @classmethod
    def from_pretrained(cls, model_path: str, subfolder: str = "hunyuan3d-paint-v2-0-turbo") -> _PaintPipeline:
        if os.path.exists(model_path):
            # What the real method does with a folder that exists (it only handles names under
            # HY3DGEN_MODELS or hub ids).
            raise FileNotFoundError(f"Model path {model_path} not found and we could not find it at huggingface")
        raise AssertionError("hy3dgen would download the paint models")

    def __call__(self, mesh: Any, image: Any) -> Any:
        painted = mesh.copy()
        painted.visual = trimesh.visual.ColorVisuals(
            painted, vertex_colors=np.tile([200, 120, 60, 255], (len(mesh.vertices), 1))
        )
        return painted


class _BackgroundRemover:
    def __call__(self, image: Any) -> Any:
        return image.convert("RGBA")


def _install_hy3dgen(monkeypatch: pytest.MonkeyPatch, *, texgen: bool = True) -> None:
    _ShapePipeline.calls = []
    _PaintPipeline.configs = []
    package = types.ModuleType("hy3dgen")
    package.__path__ = []  # a package, so that submodule imports resolve through sys.modules
    shapegen = types.ModuleType("hy3dgen.shapegen")
    shapegen.Hunyuan3DDiTFlowMatchingPipeline = _ShapePipeline  # type: ignore[attr-defined]
    shapegen.FloaterRemover = lambda: _passthrough  # type: ignore[attr-defined]
    shapegen.DegenerateFaceRemover = lambda: _passthrough  # type: ignore[attr-defined]
    shapegen.FaceReducer = _FaceReducer  # type: ignore[attr-defined]
    rembg = types.ModuleType("hy3dgen.rembg")
    rembg.BackgroundRemover = _BackgroundRemover  # type: ignore[attr-defined]
    modules: dict[str, Any] = {"hy3dgen": package, "hy3dgen.shapegen": shapegen, "hy3dgen.rembg": rembg}
    if texgen:
        texgen_module = types.ModuleType("hy3dgen.texgen")
        texgen_module.Hunyuan3DPaintPipeline = _PaintPipeline  # type: ignore[attr-defined]
        texgen_module.Hunyuan3DTexGenConfig = _TexGenConfig  # type: ignore[attr-defined]
        modules["hy3dgen.texgen"] = texgen_module
    else:
        modules["hy3dgen.texgen"] = None  # import fails, as without its compiled rasterizer
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)


def _hunyuan_folder(root: Path) -> Path:
    """The layout of the tencent/Hunyuan3D-2 snapshot that the provider downloads."""
    (root / "hunyuan3d-dit-v2-0").mkdir(parents=True)
    (root / "hunyuan3d-dit-v2-0" / "config.yaml").write_text("model: {}\n")
    (root / "hunyuan3d-dit-v2-0" / "model.fp16.safetensors").write_bytes(b"")
    (root / "hunyuan3d-paint-v2-0").mkdir()
    (root / "hunyuan3d-delight-v2-0").mkdir()
    return root


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_stable_diffusion(tmp_path_factory.mktemp("sd") / "tiny-sd")


def _settings(provider: str, folder: Path, tiny_sd: Path, **extra: Any) -> dict[str, Any]:
    return {
        "asset": f"{provider}:{folder}",
        "text_to_image_model": str(tiny_sd),
        "device": "cpu",
        "image_steps": 1,
        "image_size": 32,
        "asset_steps": 3,
        **extra,
    }


def test_hunyuan3d_calls_hy3dgen_as_its_code_expects(
    tmp_path: Path, tiny_sd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_hy3dgen(monkeypatch)
    folder = _hunyuan_folder(tmp_path / "hy3d")
    events: list[Any] = []
    bundle = Runner(
        "test",
        [AssetStage()],
        tmp_path / "bundle",
        _settings("hunyuan3d", folder, tiny_sd, octree_resolution=128),
        prompt="a fox",
        on_progress=events.append,
    ).run()
    assert _ShapePipeline.calls == [{"steps": 3, "octree_resolution": 128}]
    messages = [getattr(e, "message", "") for e in events]
    assert [m for m in messages if m.startswith("image to 3D: step")] == [f"image to 3D: step {i}/3" for i in (1, 2, 3)]
    # Painted from the downloaded (non-turbo) paint model and the delight model.
    (config,) = _PaintPipeline.configs
    assert Path(config.multiview_ckpt_path) == folder / "hunyuan3d-paint-v2-0"
    assert Path(config.light_remover_ckpt_path) == folder / "hunyuan3d-delight-v2-0"
    mesh = load_asset(bundle.root)
    assert mesh.vertex_colors is not None and tuple(mesh.vertex_colors[0][:3]) == (200, 120, 60)
    extent = np.ptp(mesh.vertices, axis=0)
    assert extent.max() == pytest.approx(1.0, abs=1e-5)
    assert extent[1] == pytest.approx(1.0, abs=1e-3) and extent[2] < extent[0] < extent[1]  # +Y up kept
    provider = bundle.read_manifest().providers["asset"]
    assert provider["textured"] is True and provider["steps"] == 3


def test_hunyuan3d_without_texgen_keeps_the_untextured_shape(
    tmp_path: Path, tiny_sd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_hy3dgen(monkeypatch, texgen=False)
    folder = _hunyuan_folder(tmp_path / "hy3d")
    bundle = Runner(
        "test", [AssetStage()], tmp_path / "b", _settings("hunyuan3d", folder, tiny_sd), prompt="a fox"
    ).run()
    assert bundle.read_manifest().providers["asset"]["textured"] is False
    assert load_asset(bundle.root).face_count == 1280


def test_hunyuan3d_cancel_between_denoising_steps(
    tmp_path: Path, tiny_sd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_hy3dgen(monkeypatch)
    folder = _hunyuan_folder(tmp_path / "hy3d")
    token = CancelToken()

    def on_progress(event: Any) -> None:
        if getattr(event, "message", "") == "image to 3D: step 1/3":
            token.cancel()

    runner = Runner(
        "test",
        [AssetStage()],
        tmp_path / "b",
        _settings("hunyuan3d", folder, tiny_sd),
        prompt="a fox",
        on_progress=on_progress,
        cancel=token,
    )
    with pytest.raises(Cancelled):
        runner.run()
    assert not (tmp_path / "b" / "asset" / "static.glb").exists()


def test_hunyuan3d_folder_without_the_shape_model(
    tmp_path: Path, tiny_sd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_hy3dgen(monkeypatch)
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "readme.txt").write_text("not a model")
    with pytest.raises(InputError, match="hunyuan3d-dit-v2-0"):
        Runner("test", [AssetStage()], tmp_path / "b", _settings("hunyuan3d", folder, tiny_sd), prompt="a fox").run()


# -- TRELLIS (microsoft/TRELLIS, trellis/pipelines/base.py, trellis_image_to_3d.py, postprocessing_utils.py)


class _TrellisPipeline:
    runs: ClassVar[list[dict[str, Any]]] = []

    @staticmethod
    def from_pretrained(path: str) -> _TrellisPipeline:
        if not os.path.exists(f"{path}/pipeline.json"):
            raise AssertionError("TRELLIS would fetch pipeline.json from the hub")
        return _TrellisPipeline()

    def to(self, device: Any) -> None:
        self.device = device

    def run(
        self,
        image: Any,
        num_samples: int = 1,
        seed: int = 42,
        sparse_structure_sampler_params: dict[str, Any] | None = None,
        slat_sampler_params: dict[str, Any] | None = None,
        formats: list[str] | None = None,
        preprocess_image: bool = True,
    ) -> dict[str, list[Any]]:
        type(self).runs.append(
            {"seed": seed, "sparse": sparse_structure_sampler_params, "slat": slat_sampler_params, "formats": formats}
        )
        return {name: [f"{name}-0"] for name in formats or ["mesh", "gaussian", "radiance_field"]}


def _to_glb(
    app_rep: Any,
    mesh: Any,
    simplify: float = 0.95,
    fill_holes: bool = True,
    fill_holes_max_size: float = 0.04,
    texture_size: int = 1024,
    debug: bool = False,
    verbose: bool = True,
) -> Any:
    assert (app_rep, mesh) == ("gaussian-0", "mesh-0")
    box = trimesh.creation.box(extents=[0.6, 1.0, 0.4])
    box.visual = trimesh.visual.ColorVisuals(box, vertex_colors=np.tile([90, 160, 90, 255], (len(box.vertices), 1)))
    return box


def test_trellis_calls_trellis_as_its_code_expects(
    tmp_path: Path, tiny_sd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _TrellisPipeline.runs = []
    package = types.ModuleType("trellis")
    package.__path__ = []
    pipelines = types.ModuleType("trellis.pipelines")
    pipelines.TrellisImageTo3DPipeline = _TrellisPipeline  # type: ignore[attr-defined]
    utils = types.ModuleType("trellis.utils")
    utils.__path__ = []
    postprocessing = types.ModuleType("trellis.utils.postprocessing_utils")
    postprocessing.to_glb = _to_glb  # type: ignore[attr-defined]
    for name, module in {
        "trellis": package,
        "trellis.pipelines": pipelines,
        "trellis.utils": utils,
        "trellis.utils.postprocessing_utils": postprocessing,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    folder = tmp_path / "trellis-image-large"
    folder.mkdir()
    (folder / "pipeline.json").write_text('{"args": {}}')
    bundle = Runner(
        "test", [AssetStage()], tmp_path / "b", _settings("trellis", folder, tiny_sd, seed=7), prompt="a fox"
    ).run()
    (run,) = _TrellisPipeline.runs
    assert run["seed"] == 7 and run["sparse"] == {"steps": 3} and run["slat"] == {"steps": 3}
    assert set(run["formats"]) == {"gaussian", "mesh"}
    mesh = load_asset(bundle.root)
    extent = np.ptp(mesh.vertices, axis=0)
    assert extent[1] == pytest.approx(1.0, abs=1e-5) and extent[2] < extent[0]
    assert tuple(mesh.vertex_colors[0][:3]) == (90, 160, 90)  # type: ignore[index]
