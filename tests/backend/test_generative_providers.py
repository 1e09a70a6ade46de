"""Every generative provider end to end on the CPU with tiny random models.

Each model is built from the real diffusers/transformers classes with tiny configs and a tokenizer
made here (a WordLevel `tokenizers.Tokenizer` wrapped in `PreTrainedTokenizerFast`), saved with
`save_pretrained`, and loaded by the provider's own loading path from that folder.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import torch

from t2bs.bundle import CAPTURE_DIR, STATIC_MESH
from t2bs.capture import read_capture
from t2bs.errors import Cancelled, InputError
from t2bs.progress import CancelToken, ProgressEvent
from t2bs.runner import Runner
from t2bs.stages.asset import AssetStage, load_asset
from t2bs.stages.capture import CaptureStage
from t2bs.stages.prompt import PromptStage

WORDS = (
    "a the of and with its to in as character head slowly opens mouth wide can closes both eyes "
    "completely static camera plain white background stays still faces test fox 3d model then holds "
    "expression front view facing centred neutral closed open soft studio light shoulders"
).split()


def tiny_tokenizer(max_length: int = 16) -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, "<s>": 3}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        bos_token="<s>",
        model_max_length=max_length,
    )


def tiny_t5() -> Any:
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    config = T5Config(
        vocab_size=96,
        d_model=32,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        decoder_start_token_id=0,
    )
    return T5EncoderModel(config)


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty Hugging Face cache in offline mode: nothing may reach the network."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(2)


@pytest.fixture
def sphere(tmp_path: Path) -> Path:
    """A small vertex-coloured sphere as the user's head (PLY)."""
    import trimesh

    mesh = trimesh.creation.icosphere(subdivisions=2, radius=3.0)
    mesh.visual.vertex_colors = np.tile(np.array([[200, 120, 80, 255]], np.uint8), (len(mesh.vertices), 1))
    path = tmp_path / "sphere.ply"
    mesh.export(path)
    return path


# -- tiny video models --------------------------------------------------------------------------------


def save_tiny_wan(folder: Path) -> Path:
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=36,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=4,
    )
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=4,
            projection_dim=4,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            intermediate_size=16,
            patch_size=1,
        )
    )
    pipe = WanImageToVideoPipeline(
        tokenizer=tiny_tokenizer(),
        text_encoder=tiny_t5(),
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        image_processor=CLIPImageProcessor(crop_size=32, size=32),
        image_encoder=image_encoder,
        transformer=transformer,
    )
    pipe.save_pretrained(folder)
    return folder


def save_tiny_ltx(folder: Path) -> Path:
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXImageToVideoPipeline,
        LTXVideoTransformer3DModel,
    )

    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=32,
    )
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4,
        upsample_factor=(1,) * 4,
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    pipe = LTXImageToVideoPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=tiny_t5(),
        tokenizer=tiny_tokenizer(),
        transformer=transformer,
    )
    pipe.save_pretrained(folder)
    return folder


def save_tiny_cogvideox(folder: Path) -> Path:
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXImageToVideoPipeline,
        CogVideoXTransformer3DModel,
    )

    torch.manual_seed(0)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=8,
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=32,
        num_layers=1,
        sample_width=6,
        sample_height=4,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=226,
        use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=True,
    )
    vae = AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    pipe = CogVideoXImageToVideoPipeline(
        tokenizer=tiny_tokenizer(),
        text_encoder=tiny_t5(),
        vae=vae,
        transformer=transformer,
        scheduler=CogVideoXDDIMScheduler(),
    )
    pipe.save_pretrained(folder)
    return folder


VIDEO_CASES = {
    # provider: (builder, generated [height, width]); cogvideox's 32 x 48 exercises the pad and crop.
    "wan": (save_tiny_wan, [32, 32]),
    "ltx": (save_tiny_ltx, [32, 32]),
    "cogvideox": (save_tiny_cogvideox, [32, 48]),
}


def video_settings(sphere: Path, spec: str, size: list[int], **extra: Any) -> dict[str, Any]:
    return {
        "asset": f"mesh:{sphere}",
        "video": spec,
        "device": "cpu",
        "seed": 3,
        "expressions": ["jawOpen", "eyeBlink"],
        "capture_views": 2,
        "capture_frames": 5,
        "capture_size": 24,
        "video_frames": 9,
        "video_size": size,
        # Guidance 1 turns classifier-free guidance off: half the work of the tiny models.
        "video_steps": 2,
        "video_guidance": 1.0,
        **extra,
    }


@pytest.mark.parametrize("provider", sorted(VIDEO_CASES))
def test_video_provider_end_to_end(provider: str, sphere: Path, tmp_path: Path) -> None:
    build, size = VIDEO_CASES[provider]
    folder = build(tmp_path / f"tiny-{provider}")
    events: list[ProgressEvent] = []
    bundle = Runner(
        "test",
        [PromptStage(), AssetStage(), CaptureStage()],
        tmp_path / "bundle",
        video_settings(sphere, f"{provider}:{folder}", size),
        prompt="a test fox",
        on_progress=events.append,
    ).run()
    capture = read_capture(bundle.path(CAPTURE_DIR))
    assert capture.sequence_names == ["jawOpen", "eyeBlink"]
    assert list(capture.cameras) == ["front", "view01"]  # the frontal view first
    for camera in capture.cameras.values():
        assert (camera.width, camera.height) == (24, 24)
    mesh = load_asset(bundle.root)
    from t2bs.generative.video_common import render_neutral

    for sequence in capture.sequences:
        assert capture.frame_count(sequence.name) == 5
        assert "a test fox" in sequence.prompt.lower()
        # 5 capture frames stretched over 9 generated frames at the model's fps.
        assert sequence.fps == pytest.approx(VIDEO_FPS[provider] * 4 / 8)
        for view, camera in capture.cameras.items():
            frames = capture.read_frames(sequence.name, view)
            assert frames.shape == (5, 24, 24, 4)
            # Frame 0 is the neutral render of the static head from that camera.
            assert np.array_equal(frames[0, ..., :3], render_neutral(mesh, camera))
    steps = [e for e in events if e.stage == "capture" and ": step " in e.message]
    assert len(steps) == 2 * 2 * 2  # 2 expressions x 2 views x 2 denoising steps
    info = bundle.read_manifest().providers["capture"]
    assert info["name"] == provider and info["generated_frames"] == 9 and info["memory_plan"] == "cpu"


VIDEO_FPS = {"wan": 16.0, "ltx": 24.0, "cogvideox": 8.0}


def test_video_cancel_mid_denoising_then_resume(sphere: Path, tmp_path: Path) -> None:
    folder = save_tiny_wan(tmp_path / "tiny-wan")
    token = CancelToken()
    seen: list[str] = []

    def cancel_at_first_step(event: ProgressEvent) -> None:
        seen.append(event.message)
        if event.message.endswith("step 1/3") and "eyeBlink" in event.message:
            token.cancel()

    settings = video_settings(sphere, f"wan:{folder}", [32, 32], video_steps=3)
    out = tmp_path / "bundle"
    stages = [PromptStage(), AssetStage(), CaptureStage()]
    with pytest.raises(Cancelled):
        Runner("test", stages, out, settings, prompt="a test fox", on_progress=cancel_at_first_step, cancel=token).run()
    # Stopped within the denoising loop: no step 2 of that video was reported.
    assert not any("eyeBlink" in message and "step 2/3" in message for message in seen)
    assert not (out / CAPTURE_DIR).exists()
    # The jawOpen videos were kept as checkpoints: the resumed run does not make them again.
    events: list[ProgressEvent] = []
    bundle = Runner("test", stages, out, settings, prompt="a test fox", resume=True, on_progress=events.append).run()
    assert not any("jawOpen" in e.message and ": step " in e.message for e in events)
    assert read_capture(bundle.path(CAPTURE_DIR)).frame_count("eyeBlink") == 5


def test_video_download_gate_in_a_run(sphere: Path, tmp_path: Path) -> None:
    settings = video_settings(sphere, "wan:some-org/not-cached-model", [32, 32])
    with pytest.raises(InputError, match=r"some-org/not-cached-model.*--allow-download"):
        Runner("test", [PromptStage(), AssetStage(), CaptureStage()], tmp_path / "b", settings, prompt="a fox").run()


def test_video_wrong_kind_of_model_folder(sphere: Path, tmp_path: Path) -> None:
    folder = save_tiny_ltx(tmp_path / "tiny-ltx")
    settings = video_settings(sphere, f"wan:{folder}", [32, 32])
    with pytest.raises(InputError, match="cannot load"):
        Runner("test", [PromptStage(), AssetStage(), CaptureStage()], tmp_path / "b", settings, prompt="a fox").run()


# -- Shap-E -------------------------------------------------------------------------------------------


def save_tiny_shap_e(folder: Path) -> Path:
    from diffusers import HeunDiscreteScheduler, PriorTransformer, ShapEPipeline
    from diffusers.pipelines.shap_e import ShapERenderer
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    torch.manual_seed(0)
    text_encoder = CLIPTextModelWithProjection(
        CLIPTextConfig(
            bos_token_id=3,
            eos_token_id=1,
            pad_token_id=0,
            hidden_size=16,
            projection_dim=16,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=96,
            max_position_embeddings=16,
        )
    )
    prior = PriorTransformer(
        num_attention_heads=2,
        attention_head_dim=16,
        embedding_dim=16,
        num_embeddings=32,
        embedding_proj_dim=16,
        time_embed_dim=64,
        num_layers=1,
        clip_embed_dim=32,
        additional_embeddings=0,
        time_embed_act_fn="gelu",
        norm_in_type="layer",
        encoder_hid_proj_type=None,
        added_emb_type=None,
    )
    renderer = ShapERenderer(
        param_shapes=((8, 93), (8, 8), (8, 8), (8, 8)), d_latent=16, d_hidden=8, n_output=12, background=(0.1, 0.1, 0.1)
    )
    scheduler = HeunDiscreteScheduler(
        beta_schedule="exp",
        num_train_timesteps=1024,
        prediction_type="sample",
        use_karras_sigmas=True,
        clip_sample=True,
        clip_sample_range=1.0,
    )
    pipe = ShapEPipeline(
        prior=prior,
        text_encoder=text_encoder,
        tokenizer=tiny_tokenizer(),
        scheduler=scheduler,
        shap_e_renderer=renderer,
    )
    pipe.save_pretrained(folder)
    return folder


def test_shap_e_real_decode_of_a_tiny_model(tmp_path: Path) -> None:
    """The whole real path, decode included. A fresh ShapERenderer's marching-cubes lookup table
    (`mesh_decoder.cases`/`masks`, buffers filled only by the real checkpoint) is all zeros, so the
    tiny model finds no triangles: the provider must say so in one sentence."""
    from t2bs.errors import StageError

    folder = save_tiny_shap_e(tmp_path / "tiny-shap-e")
    events: list[ProgressEvent] = []
    settings = {"asset": f"shap-e:{folder}", "device": "cpu", "asset_steps": 2, "mesh_grid_size": 16, "seed": 1}
    with pytest.raises(StageError, match="empty surface"):
        Runner("test", [AssetStage()], tmp_path / "b", settings, prompt="a test fox", on_progress=events.append).run()
    assert any(": step 2/" in e.message for e in events) and any("marching cubes" in e.message for e in events)


def test_shap_e_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading, the prior and the mesh conversion are real; only the renderer's decode is replaced by
    one returning a known coloured sphere in diffusers' own `MeshDecoderOutput`."""
    import trimesh
    from diffusers.pipelines.shap_e.renderer import MeshDecoderOutput, ShapERenderer

    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.4)
    calls: list[int] = []

    def decode(self: Any, latents: torch.Tensor, device: Any, grid_size: int = 128, **kwargs: Any) -> Any:
        calls.append(grid_size)
        assert latents.shape == (1, 32, 16)
        verts = torch.tensor(sphere.vertices, dtype=torch.float32) + torch.tensor([0.0, 0.0, 0.3])
        channels = {
            key: torch.full((len(sphere.vertices),), value) for key, value in zip("RGB", (0.8, 0.4, 0.2), strict=True)
        }
        return MeshDecoderOutput(verts=verts, faces=torch.tensor(sphere.faces), vertex_channels=channels)

    monkeypatch.setattr(ShapERenderer, "decode_to_mesh", decode)
    folder = save_tiny_shap_e(tmp_path / "tiny-shap-e")
    events: list[ProgressEvent] = []
    settings = {"asset": f"shap-e:{folder}", "device": "cpu", "asset_steps": 2, "mesh_grid_size": 24, "seed": 1}
    bundle = Runner(
        "test", [AssetStage()], tmp_path / "bundle", settings, prompt="a test fox", on_progress=events.append
    ).run()
    assert calls == [24]
    mesh = load_asset(bundle.root)
    assert mesh.face_count == len(sphere.faces) and mesh.vertex_colors is not None
    assert np.allclose(mesh.vertex_colors[0], [231, 170, 124], atol=1)  # linear (0.8, 0.4, 0.2) written as sRGB
    extent = mesh.vertices.max(axis=0) - mesh.vertices.min(axis=0)
    assert extent.max() == pytest.approx(1.0, abs=1e-5)  # the `mesh:` normalisation: largest side 1
    assert np.allclose((mesh.vertices.max(axis=0) + mesh.vertices.min(axis=0)) / 2, 0.0, atol=1e-5)
    # Shap-E's +Z up becomes +Y: the sphere's offset along source +Z is undone by centring, and
    # to_source maps normalised +Y back to source +Z.
    assert np.allclose(mesh.to_source[:3, :3] @ [0, 1, 0] / mesh.source_scale, [0, 0, 1], atol=1e-6)
    assert (bundle.root / "asset" / "generated.ply").is_file() and (bundle.root / STATIC_MESH).is_file()
    assert mesh.source == str(bundle.root / "asset" / "generated.ply")
    # Heun's 2 steps are 3 scheduler timesteps (2 * steps - 1), each one model call: one report each.
    assert [e.message for e in events if ": step " in e.message] == [f"Shap-E prior: step {i}/3" for i in (1, 2, 3)]
    assert bundle.read_manifest().providers["asset"]["model"] == str(folder)


def test_shap_e_cancel_mid_denoising(tmp_path: Path) -> None:
    folder = save_tiny_shap_e(tmp_path / "tiny-shap-e")
    token = CancelToken()
    seen: list[str] = []

    def cancel(event: ProgressEvent) -> None:
        seen.append(event.message)
        if ": step 1/" in event.message:
            token.cancel()

    settings = {"asset": f"shap-e:{folder}", "device": "cpu", "asset_steps": 4, "mesh_grid_size": 24}
    with pytest.raises(Cancelled):
        Runner("test", [AssetStage()], tmp_path / "b", settings, prompt="a fox", on_progress=cancel, cancel=token).run()
    assert not any(": step 2/" in message for message in seen)
    assert not any("marching cubes" in message for message in seen)


# -- the text-to-image half of hunyuan3d and trellis ---------------------------------------------------


def save_tiny_stable_diffusion(folder: Path) -> Path:
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        norm_num_groups=4,
        attention_head_dim=4,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        norm_num_groups=4,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=3,
            eos_token_id=1,
            pad_token_id=0,
            hidden_size=16,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=96,
            max_position_embeddings=16,
        )
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tiny_tokenizer(),
        unet=unet,
        scheduler=DDIMScheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return folder


class _FakeContext:
    """The parts of StageContext that `reference_image` touches."""

    def __init__(self, settings: dict[str, Any], cancel: CancelToken | None = None) -> None:
        self.settings = settings
        self.messages: list[tuple[float, str]] = []
        self.metrics: dict[str, Any] = {}
        self.cancel = cancel or CancelToken()

    def step(self, fraction: float, message: str = "") -> None:
        self.cancel.raise_if_cancelled()
        self.messages.append((fraction, message))

    def record_metrics(self, **metrics: Any) -> None:
        self.metrics.update(metrics)


def test_reference_image_with_a_tiny_text_to_image_model(tmp_path: Path) -> None:
    from t2bs.generative.text_to_image import image_model, reference_image

    folder = save_tiny_stable_diffusion(tmp_path / "tiny-sd")
    settings = {"text_to_image_model": str(folder), "device": "cpu", "image_steps": 2, "image_size": 32}
    ctx = _FakeContext(settings)
    source = image_model(settings, "hunyuan3d")
    image = reference_image(ctx, "a test fox", source, "hunyuan3d", start=0.0, end=0.3)  # type: ignore[arg-type]
    assert image.size == (32, 32) and image.mode == "RGB"
    steps = [m for _, m in ctx.messages if ": step " in m]
    assert steps == ["drawing the reference image: step 1/2", "drawing the reference image: step 2/2"]
    assert max(f for f, _ in ctx.messages) <= 0.3
    assert ctx.metrics["reference_image"]["model"] == str(folder)


def test_reference_image_cancel_mid_denoising(tmp_path: Path) -> None:
    from t2bs.generative.text_to_image import reference_image

    folder = save_tiny_stable_diffusion(tmp_path / "tiny-sd")
    token = CancelToken()

    class Cancelling(_FakeContext):
        def step(self, fraction: float, message: str = "") -> None:
            super().step(fraction, message)
            if message.endswith("step 1/5"):
                token.cancel()

    ctx = Cancelling({"device": "cpu", "image_steps": 5, "image_size": 32}, token)
    with pytest.raises(Cancelled):
        reference_image(ctx, "a fox", str(folder), "trellis", start=0.0, end=0.3)  # type: ignore[arg-type]
    assert [m for _, m in ctx.messages if ": step " in m] == ["drawing the reference image: step 1/5"]


def test_image_to_3d_gate_names_both_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With hy3dgen importable (a stub module), a run without cached models names both ids."""
    import types

    monkeypatch.setitem(sys.modules, "hy3dgen", types.ModuleType("hy3dgen"))
    settings = {"asset": "hunyuan3d", "device": "cpu"}
    with pytest.raises(InputError) as info:
        Runner("test", [AssetStage()], tmp_path / "b", settings, prompt="a fox").run()
    message = str(info.value)
    assert "tencent/Hunyuan3D-2" in message and "Tencent-Hunyuan/HunyuanDiT-v1.1-Diffusers-Distilled" in message
