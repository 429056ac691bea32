"""Classification metrics in numpy: accuracy, per-class top-1/top-2 (with mean and variance across
classes, as in the seeds' tables), macro-F1, confusion matrix, expected calibration error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _valid(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(labels) != len(probs):
        raise ValueError(f"labels {labels.shape} and probabilities {probs.shape} do not match")
    keep = labels >= 0
    return labels[keep].astype(np.int64), probs[keep]


def confusion_matrix(labels: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``cm[i, j]`` = images of true class ``i`` predicted as ``j``."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels), np.asarray(pred)), 1)
    return cm


def top_k_hits(labels: np.ndarray, probs: np.ndarray, k: int) -> np.ndarray:
    """Bool per row: is the true label among the ``k`` most probable classes (ties broken by index)."""
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return (order == labels[:, None]).any(1)


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """ECE of the top-1 confidence with equal-width bins."""
    conf = probs.max(1)
    correct = probs.argmax(1) == labels
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def nll(labels: np.ndarray, probs: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())


def classification_report(labels: np.ndarray, probs: np.ndarray, classes: tuple[str, ...] | list[str]
                          ) -> dict[str, Any]:
    """All metrics of one model on one split. Rows with label -1 are not scored."""
    n_all = len(labels)
    y, p = _valid(labels, probs)
    k = len(classes)
    if p.shape[1] != k:
        raise ValueError(f"{p.shape[1]} probability columns for {k} classes")
    pred = p.argmax(1)
    top1, top2 = pred == y, top_k_hits(y, p, 2)
    cm = confusion_matrix(y, pred, k)
    per_class = {}
    f1s = []
    for i, c in enumerate(classes):
        m = y == i
        tp = cm[i, i]
        prec = tp / cm[:, i].sum() if cm[:, i].sum() else 0.0
        rec = tp / m.sum() if m.sum() else float("nan")
        f1 = 2 * prec * rec / (prec + rec) if m.sum() and (prec + rec) > 0 else 0.0
        if m.sum():
            f1s.append(f1)
        per_class[c] = {
            "n": int(m.sum()),
            "top1": float(top1[m].mean()) if m.sum() else None,
            "top2": float(top2[m].mean()) if m.sum() else None,
            "precision": float(prec),
            "f1": float(f1),
        }
    t1 = np.array([v["top1"] for v in per_class.values() if v["top1"] is not None])
    t2 = np.array([v["top2"] for v in per_class.values() if v["top2"] is not None])
    return {
        "n": int(len(y)),
        "n_excluded": int(n_all - len(y)),
        "accuracy": float(top1.mean()),
        "top2_accuracy": float(top2.mean()),
        "mean_class_top1": float(t1.mean()),
        "var_class_top1": float(t1.var()),
        "mean_class_top2": float(t2.mean()),
        "var_class_top2": float(t2.var()),
        "macro_f1": float(np.mean(f1s)),
        "ece": expected_calibration_error(y, p),
        "nll": nll(y, p),
        "per_class": per_class,
        "confusion": cm.tolist(),
        "classes": list(classes),
    }


def class_accuracy_weights(top1: list[Mapping[str, float | None]], classes: Sequence[str]) -> np.ndarray:
    """``(M, K)`` ensemble weights from each member's per-class validation top-1 (``{class: top1}``; a class
    without validation faces counts 0), plus 1e-3 so that no class is left without weight."""
    return np.array([[t.get(c) or 0.0 for c in classes] for t in top1], np.float64) + 1e-3


def class_weighted_average(probs: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """Ensemble of member probabilities ``(n, K)`` weighted per class: ``weights`` ``(M, K)`` (e.g. each member's
    validation accuracy on each class) are normalised over the members of each class; rows sum to 1."""
    w = np.asarray(weights, np.float64)
    w = w / w.sum(0, keepdims=True)
    p = sum(pm * w[i] for i, pm in enumerate(probs))
    return p / p.sum(1, keepdims=True)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising the validation NLL (golden-section search on log T)."""
    y, z = _valid(labels, logits)
    lo, hi = np.log(0.05), np.log(20.0)
    g = (np.sqrt(5) - 1) / 2

    def f(logt: float) -> float:
        return nll(y, softmax(z, float(np.exp(logt))))

    a, b = lo + (1 - g) * (hi - lo), lo + g * (hi - lo)
    fa, fb = f(a), f(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = lo + (1 - g) * (hi - lo)
            fa = f(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = f(b)
    t = float(np.exp((lo + hi) / 2))
    if not 0.051 < t < 19.8:
        import warnings

        warnings.warn(f"temperature fit stopped at the edge of its range ({t:.3g}; searched 0.05-20): the validation "
                      "outputs are degenerate (e.g. an untrained or collapsed model), so the calibration is not "
                      "meaningful", RuntimeWarning, stacklevel=2)
    return t
