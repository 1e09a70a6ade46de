"""Time one denoising step of each video provider's transformer at its real size, with random weights.

For `wan`, `ltx` and `cogvideox` (the image-to-video providers), the denoiser (diffusers'
`WanTransformer3DModel`, `LTXVideoTransformer3DModel`, `CogVideoXTransformer3DModel`) is built from the
published config of the provider's default model id (the dicts below, each with the file it was read
from), so nothing is downloaded. Weights are random (small normal values, norms at one, biases at zero),
placed as diffusers' `from_pretrained` places them (the `--dtype`, with the class's `_keep_in_fp32_modules`
kept in float32), and built on the meta device first so a 14B model never passes through host RAM.

One step is what the diffusers image-to-video pipeline runs per sampler step at our provider's defaults
(frames, size, frame rate and guidance read from `t2bs.generative.{wan,ltx,cogvideox}`), with
classifier-free guidance on:

* wan: two forward passes of batch 1 (`WanImageToVideoPipeline` runs the conditional and the
  unconditional pass one after the other): latents [1, 16 + 20, (F-1)/4+1, H/8, W/8] (the 20 channels
  are the first-frame condition: 4 mask + 16 latent), UMT5 text states [1, 512, 4096], CLIP image
  states [1, 257, 1280];
* ltx: one pass of batch 2 (negative and positive prompt concatenated): packed latents
  [2, ((F-1)/8+1) (H/32) (W/32), 128], per-token timesteps (0 on the conditioning first frame), T5
  text states [2, 128, 4096] with their mask, rope interpolation (8 / fps, 32, 32);
* cogvideox: one pass of batch 2: latents [2, (F-1)/4+1, 16 + 16, H/8, W/8] (noise + image latents),
  T5 text states [2, 226, 4096], the pipeline's own 3D rotary embeddings.

Text and image encoder states are random tensors of the right shape: only the denoiser is timed (no
text encoder, no VAE, no scheduler update). The full-size parameter count is always taken on the meta
device (no memory) and checked against the published size.

    python bench/bench_video_step.py --device cuda                        # all three, bf16, real size
    python bench/bench_video_step.py --device cuda --provider wan --steps 5
    python bench/bench_video_step.py --params-only                        # meta-device parameter counts
    python bench/bench_video_step.py --device cpu --dtype float32 --scale 0.05 --frames 9 --size 256

`--scale` (< 1) shrinks the layer count and the attention heads (so the width) for a CPU smoke run;
the input widths (text 4096, image 1280, latent channels) stay real. `--frames` and `--size` override the
provider's generated frame count and size (snapped as the provider snaps them).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

try:
    from t2bs.generative.cogvideox import CogVideoXProvider
    from t2bs.generative.ltx import LTXProvider
    from t2bs.generative.models import DEFAULT_MODELS
    from t2bs.generative.video_common import snap_frames, snap_size
    from t2bs.generative.wan import WanProvider
except ImportError:  # running from a source checkout without an installed backend
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backend" / "src"))
    from t2bs.generative.cogvideox import CogVideoXProvider
    from t2bs.generative.ltx import LTXProvider
    from t2bs.generative.models import DEFAULT_MODELS
    from t2bs.generative.video_common import snap_frames, snap_size
    from t2bs.generative.wan import WanProvider

# -- published configs ---------------------------------------------------------------------------------

# Wan-AI/Wan2.1-I2V-14B-480P-Diffusers, transformer/config.json. Read from huggingface/diffusers,
# scripts/convert_wan_to_diffusers.py, get_transformer_config("Wan-I2V-14B-480p") (the script that made
# the Diffusers repo; commit 58eb52c0803ea9af3abec60841c2a093bdf1f951). Keys the script leaves out
# (rope_max_seq_len 1024, pos_embed_seq_len None) are WanTransformer3DModel's defaults.
WAN_CONFIG: dict[str, Any] = {
    "image_dim": 1280,
    "added_kv_proj_dim": 5120,
    "attention_head_dim": 128,
    "cross_attn_norm": True,
    "eps": 1e-06,
    "ffn_dim": 13824,
    "freq_dim": 256,
    "in_channels": 36,
    "num_attention_heads": 40,
    "num_layers": 40,
    "out_channels": 16,
    "patch_size": [1, 2, 2],
    "qk_norm": "rms_norm_across_heads",
    "text_dim": 4096,
}

# Lightricks/LTX-Video (0.9.x, 2B), transformer/config.json. Read from huggingface/diffusers,
# scripts/convert_ltx_to_diffusers.py, get_transformer_config (the branch for versions other than 0.9.7;
# commit 58eb52c0...), and the same values as the Diffusers repo's config.json (_diffusers_version
# 0.32.0.dev0) in AI-Hypercomputer/maxdiffusion,
# src/maxdiffusion/models/ltx_video/utils/diffusers_config_mapping.py (DIFFUSERS_TRANSFORMER_CONFIG).
LTX_CONFIG: dict[str, Any] = {
    "in_channels": 128,
    "out_channels": 128,
    "patch_size": 1,
    "patch_size_t": 1,
    "num_attention_heads": 32,
    "attention_head_dim": 64,
    "cross_attention_dim": 2048,
    "num_layers": 28,
    "activation_fn": "gelu-approximate",
    "qk_norm": "rms_norm_across_heads",
    "norm_elementwise_affine": False,
    "norm_eps": 1e-06,
    "caption_channels": 4096,
    "attention_bias": True,
    "attention_out_bias": True,
}

# THUDM/CogVideoX-5b-I2V, transformer/config.json. Read from huggingface/diffusers,
# scripts/convert_cogvideox_to_diffusers.py (commit 58eb52c0...): for the 5B model num_layers 42,
# num_attention_heads 48 and rotary embeddings (its argument comments); --i2v gives in_channels 32 and
# learned positional embeddings; get_transformer_init_kwargs("1.0") gives patch 2, no temporal patch,
# patch bias, sample 60 x 90 x 49; the rest are CogVideoXTransformer3DModel's defaults
# (src/diffusers/models/transformers/cogvideox_transformer_3d.py). The whole dict matches the
# "CogVideoX-5B-I2V" entry of a-r-r-o-w/finetrainers, tests/_benchmark/cogvideox.py
# (commit f05bc4e0f3bc8d0e691b760991aa053103e307ae).
COGVIDEOX_CONFIG: dict[str, Any] = {
    "activation_fn": "gelu-approximate",
    "attention_bias": True,
    "attention_head_dim": 64,
    "dropout": 0.0,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 32,
    "max_text_seq_length": 226,
    "norm_elementwise_affine": True,
    "norm_eps": 1e-05,
    "num_attention_heads": 48,
    "num_layers": 42,
    "out_channels": 16,
    "patch_size": 2,
    "patch_size_t": None,
    "patch_bias": True,
    "sample_frames": 49,
    "sample_height": 60,
    "sample_width": 90,
    "spatial_interpolation_scale": 1.875,
    "temporal_compression_ratio": 4,
    "temporal_interpolation_scale": 1.0,
    "text_embed_dim": 4096,
    "time_embed_dim": 512,
    "timestep_activation_fn": "silu",
    "use_learned_positional_embeddings": True,
    "use_rotary_positional_embeddings": True,
}

GIB = 1024**3


@dataclass(frozen=True)
class Spec:
    """One provider's denoiser and what its pipeline feeds it per step.

    Attributes:
        cls: the diffusers class name.
        config: the published config (above).
        source: where the config was read (repository and path).
        provider: our provider class (defaults: frames, size, fps, guidance).
        temporal, spatial: the VAE's compression (frames per latent frame, pixels per latent pixel).
        multiple: what the generated height and width must be multiples of (as the provider snaps).
        latent_channels: the VAE's latent channels.
        text_tokens: the pipeline's default max_sequence_length (the text states' length).
        published: the published size in parameters, and what it counts.
        reference: the figure the count is checked against (+-10%), and why.
    """

    cls: str
    config: dict[str, Any]
    source: str
    provider: type
    temporal: int
    spatial: int
    multiple: int
    latent_channels: int
    text_tokens: int
    published: tuple[float, str]
    reference: tuple[float, str]


SPECS: dict[str, Spec] = {
    "wan": Spec(
        "WanTransformer3DModel",
        WAN_CONFIG,
        "huggingface/diffusers scripts/convert_wan_to_diffusers.py (Wan-I2V-14B-480p)",
        WanProvider,
        temporal=4,
        spatial=8,
        multiple=16,  # VAE 8 x patch 2 (WanProvider.spatial_multiple)
        latent_channels=16,
        text_tokens=512,  # WanImageToVideoPipeline max_sequence_length
        published=(14e9, "the model name's 14B"),
        # The name's 14B is the Wan2.1 14B backbone (the T2V-14B config); the I2V transformer adds the
        # image cross-attention (per-block K/V projections of the CLIP states), the image projection and
        # 20 condition input channels. So the backbone is checked against 14B and the full count reported.
        reference=(14e9, "backbone without the image conditioning (= Wan-T2V-14B config) vs the name's 14B"),
    ),
    "ltx": Spec(
        "LTXVideoTransformer3DModel",
        LTX_CONFIG,
        "huggingface/diffusers scripts/convert_ltx_to_diffusers.py (get_transformer_config, 0.9.0-0.9.5)",
        LTXProvider,
        temporal=8,
        spatial=32,
        multiple=32,
        latent_channels=128,
        text_tokens=128,  # LTXImageToVideoPipeline max_sequence_length
        published=(2e9, "2B (checkpoint names ltx-video-2b-v0.9*.safetensors)"),
        reference=(2e9, "full count vs the published 2B"),
    ),
    "cogvideox": Spec(
        "CogVideoXTransformer3DModel",
        COGVIDEOX_CONFIG,
        "huggingface/diffusers scripts/convert_cogvideox_to_diffusers.py (5B, --i2v, version 1.0)",
        CogVideoXProvider,
        temporal=4,
        spatial=8,
        multiple=16,  # VAE 8 x patch 2 (CogVideoXProvider.spatial_multiple)
        latent_channels=16,
        text_tokens=226,  # CogVideoXImageToVideoPipeline max_sequence_length
        published=(5e9, "the model name's 5B"),
        # The model page lists transformer shards of 4.6 + 4.6 + 1.2 GB in bf16 (THUDM/CogVideoX-5b-I2V's
        # file list as mirrored in ZHUI/paddlenlp_model_readme, THUDM/CogVideoX-5b-I2V/index.md):
        # 10.4 GiB / 2 bytes = 5.58e9 parameters (5.2e9 if those are decimal GB). "5B" is rounded down.
        reference=(10.4 * GIB / 2, "full count vs the published bf16 shard sizes (10.4 GB / 2 bytes)"),
    ),
}


# -- building -------------------------------------------------------------------------------------------


def scaled_config(provider: str, scale: float) -> dict[str, Any]:
    """The published config with layers and attention heads (so the width) multiplied by `scale`.

    Head size, input widths (text, image, latent channels) and everything else stay as published; the
    widths tied to the model width (Wan's FFN and image K/V projection, LTX's cross-attention) follow it.
    """
    config = dict(SPECS[provider].config)
    if scale >= 1.0:
        return config
    heads = max(1, round(config["num_attention_heads"] * scale))
    ratio = heads / config["num_attention_heads"]
    config["num_layers"] = max(1, round(config["num_layers"] * scale))
    config["num_attention_heads"] = heads
    inner = heads * config["attention_head_dim"]
    if provider == "wan":
        config["ffn_dim"] = max(8, round(config["ffn_dim"] * ratio))
        config["added_kv_proj_dim"] = inner
    elif provider == "ltx":
        config["cross_attention_dim"] = inner
    return config


def model_class(spec: Spec) -> type:
    import diffusers

    return getattr(diffusers, spec.cls)


def count_on_meta(spec: Spec, config: dict[str, Any]) -> int:
    """Parameters of the model `config` describes, built on the meta device (no memory)."""
    with torch.device("meta"):
        model = model_class(spec)(**config)
    return sum(p.numel() for p in model.parameters())


def parameter_counts(provider: str) -> dict[str, Any]:
    """Full-size counts on the meta device and the check against the published size."""
    spec = SPECS[provider]
    full = count_on_meta(spec, spec.config)
    checked = full
    out: dict[str, Any] = {"params_full": full}
    if provider == "wan":
        backbone = dict(spec.config, in_channels=16, image_dim=None, added_kv_proj_dim=None)
        checked = count_on_meta(spec, backbone)
        out["params_backbone"] = checked
        out["params_image_conditioning"] = full - checked
    published, what = spec.published
    reference, how = spec.reference
    out.update(
        published=published,
        published_is=what,
        full_vs_published=round(full / published, 3),
        check=how,
        check_reference=reference,
        check_ratio=round(checked / reference, 3),
        check_within_10pct=abs(checked / reference - 1.0) <= 0.10,
    )
    return out


def materialise(model: torch.nn.Module, device: torch.device, dtype: torch.dtype, seed: int) -> None:
    """Give a model built under `init_empty_weights` random weights on `device`, placed as diffusers'
    `from_pretrained(torch_dtype=dtype)` places real ones: `dtype`, except parameters under the class's
    `_keep_in_fp32_modules` (float32); buffers (rope tables, positional embeddings, computed at
    construction) are moved, and cast to `dtype` only for classes without such modules.

    Values: biases 0, one-dimensional weights (norm scales) 1, `scale_shift_table` N(0, 1/width) as the
    classes initialise it, every other weight N(0, 0.02^2): small enough that activations stay finite.
    """
    keep = list(getattr(model, "_keep_in_fp32_modules", None) or [])
    generator = torch.Generator(device=device).manual_seed(seed)
    for module_name, module in model.named_modules():
        for name, param in list(module.named_parameters(recurse=False)):
            full = f"{module_name}.{name}" if module_name else name
            target = torch.float32 if any(k in full.split(".") for k in keep) else dtype
            data = torch.empty(param.shape, device=device, dtype=target)
            if name == "bias":
                data.zero_()
            elif name == "scale_shift_table":
                data.normal_(0.0, 1.0 / math.sqrt(param.shape[-1]), generator=generator)
            elif data.ndim == 1:
                data.fill_(1.0)
            else:
                data.normal_(0.0, 0.02, generator=generator)
            module._parameters[name] = torch.nn.Parameter(data, requires_grad=False)
        for name, buffer in list(module.named_buffers(recurse=False)):
            cast = dtype if (not keep and buffer.is_floating_point()) else buffer.dtype
            module._buffers[name] = buffer.to(device=device, dtype=cast)


def build(provider: str, config: dict[str, Any], device: torch.device, dtype: torch.dtype, seed: int) -> Any:
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=False):
        model = model_class(SPECS[provider])(**config)
    materialise(model, device, dtype, seed)
    return model.eval()


# -- inputs ---------------------------------------------------------------------------------------------


@dataclass
class Shape:
    frames: int
    height: int
    width: int
    latent_frames: int
    latent_height: int
    latent_width: int
    tokens: int


def working_shape(provider: str, frames: int | None, size: tuple[int, int] | None) -> Shape:
    """The generated frames and size (the provider's defaults unless given, snapped as it snaps them)
    and the latent grid and video token count that follow."""
    spec = SPECS[provider]
    frames = snap_frames(frames or spec.provider.frames, spec.temporal)
    height, width = size or spec.provider.size
    height, width = snap_size(height, spec.multiple), snap_size(width, spec.multiple)
    lf, lh, lw = (frames - 1) // spec.temporal + 1, height // spec.spatial, width // spec.spatial
    patch = spec.config["patch_size"]
    ph, pw = (patch[1], patch[2]) if isinstance(patch, list) else (patch, patch)
    return Shape(frames, height, width, lf, lh, lw, lf * (lh // ph) * (lw // pw))


def make_step(
    provider: str, model: Any, shape: Shape, device: torch.device, dtype: torch.dtype, seed: int
) -> tuple[Callable[[], torch.Tensor], int, int]:
    """A callable running one sampler step's transformer forward passes; returns (step, passes, batch)."""
    spec = SPECS[provider]
    config = model.config
    gen = torch.Generator(device=device).manual_seed(seed + 1)

    def randn(*dims: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(dims, generator=gen, device=device, dtype=torch.float32) * scale).to(dtype)

    t = 500.0  # a mid-schedule timestep (the value does not change the cost)
    lf, lh, lw = shape.latent_frames, shape.latent_height, shape.latent_width
    c = spec.latent_channels
    if provider == "wan":
        # WanImageToVideoPipeline: cat([latents, condition], dim=1), condition = 4 mask + 16 latent channels.
        hidden = randn(1, config.in_channels, lf, lh, lw)
        timestep = torch.full((1,), t, device=device)
        text = randn(1, spec.text_tokens, config.text_dim, scale=0.1)
        negative = randn(1, spec.text_tokens, config.text_dim, scale=0.1)
        image = randn(1, 257, config.image_dim)  # CLIP ViT-H/14 penultimate states: 1 + 16 x 16 tokens

        def step() -> torch.Tensor:
            model(hidden, timestep, text, encoder_hidden_states_image=image, return_dict=False)
            return model(hidden, timestep, negative, encoder_hidden_states_image=image, return_dict=False)[0]

        return step, 2, 1
    if provider == "ltx":
        batch = 2
        hidden = randn(batch, lf * lh * lw, c)  # LTX _pack_latents with patch 1: [B, F*H*W, C]
        first = torch.zeros(1, lf, lh * lw, device=device)
        first[:, 0] = 1.0  # the conditioning first frame gets timestep 0
        timestep = (t * (1.0 - first.flatten(1))).expand(batch, -1)
        text = randn(batch, spec.text_tokens, config.caption_channels, scale=0.1)
        mask = torch.ones(batch, spec.text_tokens, device=device, dtype=dtype)
        fps = float(int(spec.provider.fps))  # LTXProvider passes frame_rate=int(fps)
        rope_scale = (spec.temporal / fps, spec.spatial, spec.spatial)

        def step() -> torch.Tensor:
            return model(
                hidden, text, timestep, mask, num_frames=lf, height=lh, width=lw,
                rope_interpolation_scale=rope_scale, return_dict=False,
            )[0]  # fmt: skip

        return step, 1, batch
    # cogvideox: latents [B, F, C, H, W], noise and image latents concatenated on the channels.
    from diffusers import CogVideoXImageToVideoPipeline

    batch = 2
    hidden = randn(batch, lf, 2 * c, lh, lw)
    timestep = torch.full((batch,), t, device=device)
    text = randn(batch, spec.text_tokens, config.text_embed_dim, scale=0.1)
    # The pipeline's own rotary tables (it needs only these two attributes of the pipeline).
    host = SimpleNamespace(vae_scale_factor_spatial=spec.spatial, transformer=model)
    rotary = (
        CogVideoXImageToVideoPipeline._prepare_rotary_positional_embeddings(host, shape.height, shape.width, lf, device)
        if config.use_rotary_positional_embeddings
        else None
    )

    def step() -> torch.Tensor:
        return model(hidden, text, timestep, image_rotary_emb=rotary, return_dict=False)[0]

    return step, 1, batch


# -- measuring ------------------------------------------------------------------------------------------


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_provider(provider: str, args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> dict:
    spec = SPECS[provider]
    shape = working_shape(provider, args.frames, args.size)
    row: dict[str, Any] = {
        "provider": provider,
        "model": DEFAULT_MODELS[provider],
        "class": spec.cls,
        "config_source": spec.source,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" and not args.params_only else "meta",
        "dtype": str(dtype).removeprefix("torch."),
        "scale": args.scale,
        "frames": shape.frames,
        "size": [shape.height, shape.width],
        "latent": [shape.latent_frames, shape.latent_height, shape.latent_width],
        "video_tokens": shape.tokens,
        "text_tokens": spec.text_tokens,
        **parameter_counts(provider),
    }
    if args.params_only:
        return row
    if device.type == "cpu":
        row["device"] = "cpu"
    config = scaled_config(provider, args.scale)
    if config.get("use_learned_positional_embeddings") and (
        (config["sample_height"], config["sample_width"]) != (shape.latent_height, shape.latent_width)
    ):
        # CogVideoX-5b-I2V's learned positional table fixes the size at 480 x 720 (diffusers refuses
        # others); a smoke run at another size gets a table of its own size.
        config.update(sample_height=shape.latent_height, sample_width=shape.latent_width)
        row["note"] = "positional table resized to the smoke size (the real model takes 480x720 only)"
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    model = build(provider, config, device, dtype, args.seed)
    synchronise(device)
    row["build_s"] = round(time.perf_counter() - started, 2)
    row["params_built"] = sum(p.numel() for p in model.parameters())
    row["layers"] = config["num_layers"]
    row["heads"] = config["num_attention_heads"]
    if device.type == "cuda":
        row["weights_gib"] = round(torch.cuda.memory_allocated(device) / GIB, 2)
    step, passes, batch = make_step(provider, model, shape, device, dtype, args.seed)
    row["cfg"] = f"{passes} pass{'es' if passes > 1 else ''} of batch {batch}"
    times = []
    with torch.inference_mode():
        for _ in range(args.warmup):
            out = step()
        synchronise(device)
        for _ in range(args.steps):
            synchronise(device)
            start = time.perf_counter()
            out = step()
            synchronise(device)
            times.append(time.perf_counter() - start)
        row["output"] = list(out.shape)
        row["finite"] = bool(torch.isfinite(out).all())
    row["ms_per_step"] = round(1000 * statistics.median(times), 2)
    row["ms_per_step_min"] = round(1000 * min(times), 2)
    row["steps_timed"] = args.steps
    row["warmup"] = args.warmup
    if device.type == "cuda":
        row["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated(device) / GIB, 2)
    row["peak_rss_mib"] = round(peak_rss_mib())
    del model, step, out
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def human(row: dict[str, Any]) -> str:
    counts = f"{row['params_full'] / 1e9:.2f}B params full size ({row['full_vs_published']:.2f} x published " + (
        f"{row['published'] / 1e9:.0f}B)"
    )
    if "params_backbone" in row:
        counts += f", backbone {row['params_backbone'] / 1e9:.2f}B"
    check = "ok" if row["check_within_10pct"] else "OUTSIDE 10%"
    counts += f"; check {row['check_ratio']:.3f} ({check})"
    if "ms_per_step" not in row:
        return f"{row['provider']}: {counts}"
    memory = f"peak GPU {row['peak_gpu_gib']} GiB" if "peak_gpu_gib" in row else f"peak RSS {row['peak_rss_mib']} MiB"
    return (
        f"{row['provider']} on {row['device']} {row['dtype']}, scale {row['scale']} ({row['layers']} layers, "
        f"{row['heads']} heads, {row['params_built'] / 1e6:.1f}M params): {row['frames']} frames "
        f"{row['size'][0]}x{row['size'][1]} -> latent {'x'.join(map(str, row['latent']))}, "
        f"{row['video_tokens']} video tokens, {row['cfg']}: {row['ms_per_step']:.1f} ms/step "
        f"(median of {row['steps_timed']}, min {row['ms_per_step_min']:.1f}), {memory}, "
        f"finite {row['finite']}; {counts}"
    )


def parse_size(text: str) -> tuple[int, int]:
    parts = text.lower().replace("*", "x").split("x")
    if len(parts) == 1:
        return int(parts[0]), int(parts[0])
    if len(parts) == 2:
        return int(parts[0]), int(parts[1])
    raise argparse.ArgumentTypeError(f"size must be N or HxW, not {text!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--provider", choices=[*SPECS, "all"], default="all")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    parser.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], default="bfloat16")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--frames", type=int, default=None, help="generated frames (default: the provider's)")
    parser.add_argument("--size", type=parse_size, default=None, help="N or HxW pixels (default: the provider's)")
    parser.add_argument("--scale", type=float, default=1.0, help="< 1 shrinks layers and heads (smoke runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--params-only", action="store_true", help="only the meta-device parameter counts")
    args = parser.parse_args(argv)
    if not 0.0 < args.scale <= 1.0:
        parser.error("--scale must be in (0, 1]")
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not args.params_only and not torch.cuda.is_available():
        print("CUDA is not available on this machine (use --device cpu --scale 0.05 for a smoke run)", file=sys.stderr)
        return 2
    dtype = getattr(torch, args.dtype)
    providers = list(SPECS) if args.provider == "all" else [args.provider]
    print(f"torch {torch.__version__}; {'parameter counts only' if args.params_only else 'denoiser step only'}")
    for provider in providers:
        row = bench_provider(provider, args, device, dtype)
        print(json.dumps(row))
        print(human(row))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
