"""Gaussian rasterization for the fitting stage: one interface, a gsplat and a PyTorch backend."""

from __future__ import annotations

from .gaussians import RenderOutput, available_backends, rasterize

__all__ = ["RenderOutput", "available_backends", "rasterize"]
