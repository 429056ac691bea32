"""Inference on onnxruntime (no torch)."""

from pathlib import Path
from typing import Any

from .model import WEIGHTS_DIR, ExpressionModel, list_shipped, resolve_model


def load_model(name_or_path: str | Path = "default", threads: int = 1) -> ExpressionModel:
    """A shipped expression model by name (``default``, ``fer2013``) or an ONNX file with its card."""
    return ExpressionModel.load(name_or_path, threads=threads)


def list_models() -> list[dict[str, Any]]:
    """Model cards of the shipped expression models (for architectures see ``ferkit.models.list_models``)."""
    return list_shipped()


__all__ = ["WEIGHTS_DIR", "ExpressionModel", "list_models", "list_shipped", "load_model", "resolve_model"]
