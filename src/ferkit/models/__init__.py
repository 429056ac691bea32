"""Torch architectures (the ``[train]`` extra) and their registry."""

from . import autoencoder, cnn, efficientnet, ran, transformers  # noqa: F401  (registers the models)
from .base import FERNet
from .registry import check_model_arguments, create_model, list_models, model_arguments, register_model

__all__ = ["FERNet", "check_model_arguments", "create_model", "list_models", "model_arguments", "register_model"]
