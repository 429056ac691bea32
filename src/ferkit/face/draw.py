"""Annotate images with detections, key points, meshes and labels (for visual checks and ``--annotate``)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .detect import Detections, as_bgr
from .landmarks import CONNECTIONS, Landmarks

__all__ = ["draw_detections"]

# BGR colours
_BOX = (0, 200, 0)
_TEXT_BG = (0, 120, 0)
_KEYPOINT_COLOURS = ((255, 128, 0), (0, 128, 255), (0, 255, 255), (255, 0, 255), (255, 255, 0), (128, 0, 255))
_MESH = (230, 230, 230)
_CONTOUR = (0, 220, 255)


def draw_detections(
    image: np.ndarray,
    detections: Detections,
    landmarks: Landmarks | None = None,
    labels: Sequence[str] | None = None,
    *,
    draw_scores: bool = True,
    mesh_contours: bool = True,
) -> np.ndarray:
    """Copy of ``image`` (BGR) with boxes, key points, mesh points (and feature contours) and one label per face.

    Line widths scale with the image size. ``labels[i]`` is written above face ``i`` (after the score when
    ``draw_scores``).
    """
    out = as_bgr(image).copy()
    h, w = out.shape[:2]
    t = max(1, round(max(h, w) / 400))
    font = max(0.4, max(h, w) / 1400)
    if landmarks is not None and len(landmarks):
        pts = landmarks.points[..., :2]
        if mesh_contours:
            for edges in CONNECTIONS.values():
                e = np.asarray(edges)
                lines = np.round((pts[:, e] - 0.5) * 16).astype(np.int32)  # (n, m, 2, 2), 4 fractional bits
                cv2.polylines(out, list(lines.reshape(-1, 2, 2)), False, _CONTOUR, max(1, t // 2), cv2.LINE_AA, 4)
        ij = np.round(pts.reshape(-1, 2) - 0.5).astype(np.int64)
        ok = (ij[:, 0] >= 0) & (ij[:, 0] < w) & (ij[:, 1] >= 0) & (ij[:, 1] < h)
        ij = ij[ok]
        out[ij[:, 1], ij[:, 0]] = _MESH
        if t > 1:
            for dx, dy in ((1, 0), (0, 1), (1, 1)):
                jj = ij + (dx, dy)
                ok = (jj[:, 0] < w) & (jj[:, 1] < h)
                out[jj[ok, 1], jj[ok, 0]] = _MESH
    for i, det in enumerate(detections):
        x, y, bw, bh = det.box
        # a box (x, y, w, h) covers pixels x .. x + w - 1: draw on its first and last pixels
        p1 = (int(np.rint(x)), int(np.rint(y)))
        p2 = (max(p1[0], int(np.rint(x + bw)) - 1), max(p1[1], int(np.rint(y + bh)) - 1))
        cv2.rectangle(out, p1, p2, _BOX, t, cv2.LINE_AA)
        if det.keypoints is not None:
            for k, (kx, ky) in enumerate(det.keypoints):
                colour = _KEYPOINT_COLOURS[k % len(_KEYPOINT_COLOURS)]
                cv2.circle(out, (int(np.floor(kx)), int(np.floor(ky))), 2 * t, colour, -1, cv2.LINE_AA)  # its pixel
        text = []
        if draw_scores:
            text.append(f"{det.score:.2f}")
        if labels is not None and i < len(labels) and labels[i]:
            text.append(str(labels[i]))
        if text:
            s = " ".join(text)
            (tw, th), base = cv2.getTextSize(s, cv2.FONT_HERSHEY_SIMPLEX, font, max(1, t // 2))
            ty = p1[1] - 4 if p1[1] - th - base - 4 >= 0 else p2[1] + th + 4
            cv2.rectangle(out, (p1[0], ty - th - base), (p1[0] + tw + 4, ty + base), _TEXT_BG, -1)
            cv2.putText(out, s, (p1[0] + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255), max(1, t // 2),
                        cv2.LINE_AA)
    return out
