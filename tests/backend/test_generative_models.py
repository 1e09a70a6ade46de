"""Model management of the generative providers: memory presets, the download gate, missing packages,
model sources and the CLI flag. Pure or near-pure: no model is built here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from t2bs.errors import InputError
from t2bs.generative import models
from t2bs.generative.models import GIB, ModelSize, choose_memory_plan
from t2bs.stages.asset import ASSET_PROVIDERS
from t2bs.stages.capture import VIDEO_PROVIDERS, make_video_provider


@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache and offline mode: nothing may reach the network."""
    cache = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


# -- memory presets ----------------------------------------------------------------------------------

WAN = ModelSize(48 * GIB, 34 * GIB)


@pytest.mark.parametrize(
    ("free_gib", "name", "offload", "tiling"),
    [
        (80, "resident", "none", False),  # H100 80 GB: 80 >= 1.5 * 48
        (60, "resident-tiled", "none", True),  # 60 >= 1.15 * 48 but < 72
        (45, "model-offload", "model", True),  # 45 >= 1.2 * 34
        (24, "sequential-offload", "sequential", True),  # a 24 GB card
        (0, "sequential-offload", "sequential", True),
    ],
)
def test_memory_plan_follows_free_vram(free_gib: int, name: str, offload: str, tiling: bool) -> None:
    plan = choose_memory_plan("cuda", free_gib * GIB, WAN)
    assert (plan.name, plan.device, plan.offload, plan.vae_tiling, plan.dtype) == (
        name,
        "cuda",
        offload,
        tiling,
        "bfloat16",
    )


def test_memory_plan_cpu_and_fp16() -> None:
    assert choose_memory_plan("cpu", None, WAN) == models.MemoryPlan("cpu", "cpu", "float32", "none", True)
    assert choose_memory_plan("cuda", 80 * GIB, WAN, bf16_supported=False).dtype == "float16"
    # No measurement (None) is treated as no free memory: the safest plan.
    assert choose_memory_plan("cuda", None, WAN).name == "sequential-offload"


def test_every_default_model_has_a_size() -> None:
    for provider, repo_id in models.DEFAULT_MODELS.items():
        assert repo_id in models.MODEL_SIZES, provider


# -- download gate -----------------------------------------------------------------------------------


def test_gate_names_every_missing_id(empty_hub: Path) -> None:
    with pytest.raises(InputError) as info:
        models.check_available(["org-a/model-one", "org-b/model-two"], "hunyuan3d", allowed=False)
    message = str(info.value)
    assert "org-a/model-one" in message and "org-b/model-two" in message
    assert "--allow-download" in message and "huggingface-cli download org-a/model-one" in message
    assert message.count(".") >= 1 and "\n" not in message
    # Allowed: the gate lets the loader download.
    models.check_available(["org-a/model-one"], "wan", allowed=True)


def test_gate_accepts_a_cached_snapshot(empty_hub: Path) -> None:
    snapshot = empty_hub / "hub" / "models--org--cached" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "model_index.json").write_text("{}")
    refs = empty_hub / "hub" / "models--org--cached" / "refs"
    refs.mkdir()
    (refs / "main").write_text("a" * 40)
    models.check_available(["org/cached"], "wan", allowed=False)


def test_video_provider_gate_through_the_loader(empty_hub: Path) -> None:
    with pytest.raises(InputError, match=r"Wan-AI/Wan2.1-I2V-14B-480P-Diffusers"):
        models.load_diffusers("WanImageToVideoPipeline", models.DEFAULT_MODELS["wan"], "wan", False, None)


def test_allow_download_setting() -> None:
    assert models.allow_download({}) is False
    assert models.allow_download({"allow_download": True}) is True
    with pytest.raises(InputError, match="allow_download"):
        models.allow_download({"allow_download": "yes"})


# -- model sources -----------------------------------------------------------------------------------


def test_model_source_defaults_ids_and_paths(tmp_path: Path) -> None:
    assert models.model_source(None, "wan") == models.DEFAULT_MODELS["wan"]
    assert models.model_source("", "ltx") == models.DEFAULT_MODELS["ltx"]
    assert models.model_source("Wan-AI/Wan2.2-I2V-A14B-Diffusers", "wan") == "Wan-AI/Wan2.2-I2V-A14B-Diffusers"
    assert models.model_source(str(tmp_path), "wan") == str(tmp_path)
    with pytest.raises(InputError, match="neither a Hugging Face id"):
        models.model_source("not a valid id!", "wan")


def test_wrong_local_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(InputError, match="does not exist"):
        models.load_diffusers("WanImageToVideoPipeline", str(missing), "wan", False, None)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"holds no model_index.json"):
        models.load_diffusers("WanImageToVideoPipeline", str(empty), "wan", False, None)


def test_registered_providers() -> None:
    for name in ("shap-e", "hunyuan3d", "trellis"):
        assert name in ASSET_PROVIDERS
    for name in ("wan", "ltx", "cogvideox"):
        assert name in VIDEO_PROVIDERS
    assert make_video_provider("wan:org/other").source == "org/other"  # type: ignore[attr-defined]


# -- missing packages --------------------------------------------------------------------------------


def test_missing_diffusers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "diffusers", None)
    for spec in ("wan", "ltx", "cogvideox"):
        with pytest.raises(InputError, match=r"needs the Python package diffusers.*pip install 't2bs\[gen\]'"):
            make_video_provider(spec)
    with pytest.raises(InputError, match="diffusers"):
        ASSET_PROVIDERS.get("shap-e")(None)
    with pytest.raises(InputError, match="cannot import diffusers"):
        models.import_module("diffusers", "wan")


def test_missing_3d_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hy3dgen", None)
    monkeypatch.setitem(sys.modules, "trellis", None)
    with pytest.raises(InputError) as info:
        ASSET_PROVIDERS.get("hunyuan3d")(None)
    assert "hy3dgen" in str(info.value) and "github.com/Tencent-Hunyuan/Hunyuan3D-2" in str(info.value)
    with pytest.raises(InputError) as info:
        ASSET_PROVIDERS.get("trellis")(None)
    assert "trellis" in str(info.value) and "github.com/microsoft/TRELLIS" in str(info.value)


def test_generate_rejects_missing_packages_before_any_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    from t2bs.pipelines import build_generate

    monkeypatch.setitem(sys.modules, "hy3dgen", None)
    with pytest.raises(InputError, match="hy3dgen"):
        build_generate({"prompt": "a fox", "asset": "hunyuan3d"})


def test_cli_passes_allow_download(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from t2bs import cli

    seen: dict[str, object] = {}

    def fake_execute(pipeline: str, args: dict[str, object], ns: object) -> int:
        seen.update(args)
        return 0

    monkeypatch.setattr(cli, "execute_run", fake_execute)
    assert cli.main(["generate", "a fox", "--out", str(tmp_path / "b"), "--allow-download"]) == 0
    assert seen["allow_download"] is True
    assert cli.main(["generate", "a fox", "--out", str(tmp_path / "b")]) == 0
    assert seen["allow_download"] is False
    from t2bs.pipelines import build_generate

    assert build_generate({"prompt": "a fox", "allow_download": True}).settings["allow_download"] is True
    assert build_generate({"prompt": "a fox"}).settings["allow_download"] is False
