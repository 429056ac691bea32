"""The picture of an explanation: the face, its heat map and a text panel (numpy and OpenCV only)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["render"]


def render(face: np.ndarray, heat: np.ndarray, probs: np.ndarray, classes: list[str] | tuple[str, ...],
           title: str = "", info: dict[str, Any] | None = None, scale: int = 4) -> np.ndarray:
    """BGR image: the face, the heat map over it, and a text panel (top classes, region weights)."""
    import cv2

    s = face.shape[0] * scale
    f = cv2.resize(face, (s, s), interpolation=cv2.INTER_CUBIC)
    f3 = cv2.cvtColor(f, cv2.COLOR_GRAY2BGR)
    hm = cv2.applyColorMap((cv2.resize(heat, (s, s)) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    over = cv2.addWeighted(f3, 0.55, hm, 0.45, 0)
    panel = np.full((s, 2 * s), 255, np.uint8)
    lines = [title, (info or {}).get("method", "")]
    for i in np.argsort(probs)[::-1][:3]:
        lines.append(f"{classes[i]}: {probs[i]:.2f}")
    weights = (info or {}).get("weights") or (info or {}).get("tokens")
    if weights:
        lines += [f"{k}: {v:.3f}" for k, v in sorted(weights.items(), key=lambda kv: -kv[1])[:6]]
    for j, t in enumerate(lines):
        cv2.putText(panel, t[:40], (6, 16 + 15 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.42, 0, 1, cv2.LINE_AA)
    return np.hstack([f3, over, cv2.cvtColor(panel, cv2.COLOR_GRAY2BGR)])
