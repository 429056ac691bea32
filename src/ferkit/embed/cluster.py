"""Unsupervised labelling of embeddings: k-means clusters named by their majority label."""

from __future__ import annotations

import numpy as np


def majority_labelling(clusters: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Label of each of ``k`` clusters = the most frequent label among its members (-1 labels ignored;
    an empty cluster gets -1)."""
    names = np.full(k, -1, np.int64)
    for c in range(k):
        y = labels[(clusters == c) & (labels >= 0)]
        if len(y):
            names[c] = np.bincount(y).argmax()
    return names


def cluster_accuracy(z_fit: np.ndarray, y_fit: np.ndarray, z_eval: np.ndarray | None = None,
                     y_eval: np.ndarray | None = None, k: int = 8, seed: int = 0) -> dict[str, object]:
    """k-means (``k`` clusters) fitted on ``z_fit``, clusters named by the majority of ``y_fit``; accuracy of
    that labelling on ``(z_eval, y_eval)`` (default: the fit set). Labels -1 are not scored."""
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(z_fit)
    names = majority_labelling(km.labels_, y_fit, k)
    z_eval = z_fit if z_eval is None else z_eval
    y_eval = y_fit if y_eval is None else y_eval
    pred = names[km.predict(z_eval)]
    m = y_eval >= 0
    return {"accuracy": float((pred[m] == y_eval[m]).mean()), "cluster_names": names.tolist(),
            "predictions": pred, "n_distinct_names": int(len(set(names.tolist()) - {-1}))}
