"""ferkit: facial expression recognition, offline and fast on a plain CPU.

>>> import ferkit
>>> res = ferkit.analyze("talk.mp4")          # doctest: +SKIP
>>> res.to_pandas().head()                     # doctest: +SKIP

The inference path needs numpy, OpenCV, onnxruntime, Pillow and PyAV only (no torch).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())  # a library: silent unless the app configures logging

__all__ = [
    "AnalysisResults",
    "Analyzer",
    "FaceRow",
    "SourceStatus",
    "__version__",
    "analyze",
    "list_models",
    "load_model",
]

if TYPE_CHECKING:  # pragma: no cover
    from ferkit.pipeline import Analyzer, analyze
    from ferkit.results import AnalysisResults, FaceRow, SourceStatus

_LAZY = {
    "Analyzer": "ferkit.pipeline",
    "analyze": "ferkit.pipeline",
    "AnalysisResults": "ferkit.results",
    "FaceRow": "ferkit.results",
    "SourceStatus": "ferkit.results",
    "load_model": "ferkit.inference",
    "list_models": "ferkit.inference",
}


_SUBMODULES = frozenset({"annotate", "batch", "compare", "embed", "errors", "evaluation", "explain", "face",
                         "inference", "io", "labels", "models", "pipeline", "results", "robustness", "search",
                         "training", "video"})


def __getattr__(name: str) -> Any:
    """Import the heavy modules (OpenCV, onnxruntime) only when they are used."""
    import importlib

    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'ferkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
