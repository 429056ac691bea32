"""The allowed values of the training settings that take a name (no torch: the CLI reads them for ``--help``).

:meth:`ferkit.training.TrainConfig.check` and ``ferkit train``'s argument choices both read this table.
"""

from __future__ import annotations

#: TrainConfig key -> allowed values.
CHOICES: dict[str, tuple[str, ...]] = {
    "scheme": ("mv", "ml", "pld", "cel"),
    "optimizer": ("adamw", "sgd"),
    "schedule": ("cosine", "step", "constant"),
    "balance": ("none", "undersample", "oversample"),
}

#: Allowed ``channels`` (1 = grey, 3 = RGB).
CHANNELS: tuple[int, ...] = (1, 3)

#: Label sets of the FER2013 ``.npz`` files (``TrainConfig.labels``; also the names of the two datasets).
LABEL_SETS: tuple[str, ...] = ("ferplus", "fer2013")
