"""Training (the ``[train]`` extra, torch): datasets, configs and runs, export to ONNX with a model card.

>>> from ferkit.training import TrainConfig, train, load_dataset, export_runs   # doctest: +SKIP
>>> train(TrainConfig(model="resnet_fast", data="ferplus", epochs=30), "runs/rf")   # doctest: +SKIP
>>> export_runs(["runs/rf"], "mine", "weights/")                               # doctest: +SKIP

The names load on first use: the dataset loaders (``load_dataset``, ``load_npz``, ``FaceSet``) need no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "FaceSet": "data", "load_dataset": "data", "load_npz": "data",
    "TrainConfig": "trainer", "Trainer": "trainer", "train": "trainer",
    "export_runs": "export", "load_run_model": "export", "to_onnx": "export",
    "AugmentConfig": "augment",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
