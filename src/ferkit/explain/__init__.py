"""Explanations of ferkit models as heat maps over the aligned 48 px face: attention rollout for the
transformers, region weights for RAN, Grad-CAM for CNNs."""

from .heatmaps import explain, gradcam, paint_boxes, ran_heatmap, render, rollout, transformer_heatmap

__all__ = ["explain", "gradcam", "paint_boxes", "ran_heatmap", "render", "rollout", "transformer_heatmap"]
