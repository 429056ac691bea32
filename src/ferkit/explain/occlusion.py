"""Occlusion sensitivity (Zeiler & Fergus 2014): how much the predicted class loses when a patch of the face is
covered. It needs only the model's outputs, so it explains any model, shipped ONNX files included (no torch)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["occlusion_map"]


def occlusion_map(predict: Callable[[np.ndarray], np.ndarray], face: np.ndarray, patch: int = 8, stride: int = 2,
                  target: int | None = None, batch: int = 256) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Heat map ``(H, W)`` in [0, 1], the class probabilities of the intact face and details.

    ``predict``: uint8 faces ``(n, H, W)`` -> probabilities ``(n, k)``. Every ``patch`` x ``patch`` square (moved
    by ``stride``) is filled with the face's mean grey level; a pixel's heat is the mean drop of the ``target``
    class probability (default: the predicted class) over the squares that cover it, clipped at 0.
    """
    if face.ndim != 2 or face.dtype != np.uint8:
        raise ValueError(f"face must be a grey uint8 (H, W) array, got {face.shape} {face.dtype}")
    h, w = face.shape
    if not 1 <= patch <= min(h, w) or stride < 1:
        raise ValueError(f"patch must be in 1..{min(h, w)} and stride >= 1")
    probs = np.asarray(predict(face[None]), np.float64)[0]
    cls = int(probs.argmax()) if target is None else int(target)
    fill = np.uint8(round(float(face.mean())))
    ys = list(range(0, h - patch + 1, stride))
    xs = list(range(0, w - patch + 1, stride))
    if ys[-1] != h - patch:
        ys.append(h - patch)
    if xs[-1] != w - patch:
        xs.append(w - patch)
    spots = [(y, x) for y in ys for x in xs]
    drops = np.empty(len(spots))
    for i in range(0, len(spots), batch):
        chunk = spots[i:i + batch]
        views = np.repeat(face[None], len(chunk), 0)
        for j, (y, x) in enumerate(chunk):
            views[j, y:y + patch, x:x + patch] = fill
        drops[i:i + len(chunk)] = probs[cls] - np.asarray(predict(views), np.float64)[:, cls]
    heat, cover = np.zeros((h, w)), np.zeros((h, w))
    for (y, x), d in zip(spots, drops):
        heat[y:y + patch, x:x + patch] += d
        cover[y:y + patch, x:x + patch] += 1
    heat = np.clip(heat / np.maximum(cover, 1), 0, None)
    top = heat.max()
    info = {"method": f"occlusion ({patch} px patches, stride {stride})", "class": cls,
            "max_drop": float(drops.max()), "evaluations": len(spots) + 1}
    return (heat / top if top > 0 else heat).astype(np.float32), probs.astype(np.float32), info
