"""Generative providers (optional extra `gen`): real diffusion models for the `asset` and `capture` stages.

One module per provider, as in diffusers:

* `shap_e` (`--asset shap-e`), `hunyuan3d` (`--asset hunyuan3d`), `trellis` (`--asset trellis`):
  static heads; `text_to_image` is the first step the last two share.
* `wan`, `ltx`, `cogvideox` (`--video wan|ltx|cogvideox`): expression videos, through the shared
  per-expression, per-view loop of `video_common`.
* `models`: the registry of default model ids, the download gate, memory presets and the
  per-denoising-step progress/cancellation callback.

Importing a provider module registers it but imports no heavy library: torch, diffusers, transformers,
hy3dgen and trellis are imported inside the providers when they run, so `t2bs --help` stays fast and a
machine without the `gen` extra still runs the offline providers.
"""
