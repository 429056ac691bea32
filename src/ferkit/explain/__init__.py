"""Explanations of ferkit models as heat maps over the aligned 48 px face: attention rollout for the
transformers, region weights for RAN, Grad-CAM for CNNs (these need torch), and occlusion sensitivity for any
model, shipped ONNX files included (numpy only)."""

from __future__ import annotations

from typing import Any

from .occlusion import occlusion_map
from .render import render

__all__ = ["explain", "gradcam", "occlusion_map", "paint_boxes", "ran_heatmap", "render", "rollout",
           "transformer_heatmap"]


def __getattr__(name: str) -> Any:  # the torch-based explainers load torch only when asked for
    if name in __all__:  # (explain, gradcam, paint_boxes, ran_heatmap, rollout, transformer_heatmap)
        from . import heatmaps

        return getattr(heatmaps, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
