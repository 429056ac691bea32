"""Label sets, FER+ column mapping and sentiment mappings.

Class order everywhere: ``angry, disgust, fear, happy, sad, surprise, neutral, contempt``.
The first seven are FER2013's codes 0..6; a 7-class model leaves contempt out.
"""

from __future__ import annotations

import numpy as np

FER2013_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FERPLUS_CLASSES: tuple[str, ...] = FER2013_CLASSES + ("contempt",)
EMOTIONS = FERPLUS_CLASSES

#: The 10 vote columns of the FER+ label files, in file order.
FERPLUS_COLUMNS: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF",
)
_COLUMN_TO_CLASS = {
    "neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
    "anger": "angry", "disgust": "disgust", "fear": "fear", "contempt": "contempt",
}
#: ``FERPLUS_VOTE_ORDER[i]`` is the FER+ vote column holding class ``FERPLUS_CLASSES[i]``.
FERPLUS_VOTE_ORDER: np.ndarray = np.array(
    [FERPLUS_COLUMNS.index(next(c for c, k in _COLUMN_TO_CLASS.items() if k == name)) for name in FERPLUS_CLASSES]
)

SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")

#: Valence-based default. Surprise is ambiguous in valence (Russell's circumplex puts it
#: near zero valence, high arousal), so it counts as neutral; contempt is negative.
SENTIMENT_MAPS: dict[str, dict[str, str]] = {
    "valence": {
        "angry": "negative", "disgust": "negative", "fear": "negative", "sad": "negative", "contempt": "negative",
        "happy": "positive", "surprise": "neutral", "neutral": "neutral",
    },
    # The mapping of the debate-video study.
    "debate": {
        "happy": "positive", "surprise": "positive",
        "neutral": "neutral", "fear": "neutral", "sad": "neutral",
        "angry": "negative", "disgust": "negative", "contempt": "negative",
    },
}


def votes_to_classes(votes: np.ndarray) -> np.ndarray:
    """Reorder FER+ vote columns ``(n, 10)`` into ``(n, 8)`` counts in :data:`FERPLUS_CLASSES` order."""
    votes = np.asarray(votes)
    if votes.ndim != 2 or votes.shape[1] < 8:
        raise ValueError(f"expected FER+ votes of shape (n, 10), got {votes.shape}")
    return votes[:, FERPLUS_VOTE_ORDER]


def sentiment_matrix(classes: tuple[str, ...] | list[str], mapping: str | dict[str, str] = "valence") -> np.ndarray:
    """Matrix ``(n_classes, 3)`` that sums class probabilities into (negative, neutral, positive)."""
    table = SENTIMENT_MAPS[mapping] if isinstance(mapping, str) else mapping
    unknown = [c for c in classes if c not in table]
    if unknown:
        raise ValueError(f"sentiment mapping has no entry for {unknown}")
    m = np.zeros((len(classes), len(SENTIMENTS)), dtype=np.float32)
    for i, c in enumerate(classes):
        m[i, SENTIMENTS.index(table[c])] = 1.0
    return m
