"""Inference on onnxruntime (no torch)."""

from .model import WEIGHTS_DIR, ExpressionModel, list_shipped, resolve_model

__all__ = ["WEIGHTS_DIR", "ExpressionModel", "list_shipped", "resolve_model"]
