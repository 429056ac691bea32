"""Face alignment: similarity transform of eye centres + mouth centre onto a FER2013-style template.

The default template was measured on FER2013 itself: 1,376 images of the public validation split, upscaled,
run through BlazeFace + the face mesh; the medians of the eye centres (mean of each eyelid contour) and of the
mouth centre (mean of the outer lip contour), made left-right symmetric. So an aligned crop looks like a
FER2013 face: whole face, eyes at 0.39 of the height, mouth at 0.77, little background.

Anchor points per face, best first: the 468-point mesh (when its presence score is high enough), the detector's
key points (BlazeFace: eyes + mouth centre; MTCNN: eyes + mean of the mouth corners), the box (square crop,
slightly enlarged, placed as BlazeFace boxes sit on FER2013 faces).

Matrices are returned in ferkit's continuous pixel convention (pixel ``i`` spans ``[i, i+1)``):
``crop_xy = M[:, :2] @ image_xy + M[:, 2]``; ``cv2.invertAffineTransform(M)`` maps back.
"""

from __future__ import annotations

import cv2
import numpy as np

from ferkit.errors import InputError

from .detect import Detections, as_bgr
from .landmarks import NUM_LANDMARKS, REGIONS, Landmarks

__all__ = ["FER_BOX_TEMPLATE", "FER_TEMPLATE", "align_faces", "anchor_points", "similarity_matrices"]

#: Normalised (x, y) of the subject's right eye, left eye and mouth centre in the crop (x by width; y by width
#: around the vertical centre, so non-square crops keep face proportions).
FER_TEMPLATE = np.array([[0.309, 0.388], [0.691, 0.388], [0.500, 0.772]], np.float64)
#: Where a BlazeFace box sits in a FER2013-style crop: centre x, centre y, side (fractions of the crop width).
FER_BOX_TEMPLATE = (0.494, 0.530, 0.897)

_RIGHT_EYE = np.array(REGIONS["right_eye"])
_LEFT_EYE = np.array(REGIONS["left_eye"])
_MOUTH = np.array(REGIONS["lips_outer"])


def _mesh_anchors(points: np.ndarray) -> np.ndarray:
    xy = points[..., :2].astype(np.float64)
    return np.stack([xy[:, _RIGHT_EYE].mean(1), xy[:, _LEFT_EYE].mean(1), xy[:, _MOUTH].mean(1)], axis=1)


def _keypoint_anchors(kps: np.ndarray, names: tuple[str, ...]) -> np.ndarray | None:
    kps = kps.astype(np.float64)
    if not names:  # raw arrays: guess the layout from k
        names = {6: ("right_eye", "left_eye", "nose_tip", "mouth_center"), 5: ("right_eye", "left_eye", "nose_tip",
                 "mouth_right", "mouth_left"), 3: ("right_eye", "left_eye", "mouth_center")}.get(kps.shape[1], ())
    idx = {n: i for i, n in enumerate(names)}
    if "right_eye" not in idx or "left_eye" not in idx:
        return None
    if "mouth_center" in idx:
        mouth = kps[:, idx["mouth_center"]]
    elif "mouth_right" in idx and "mouth_left" in idx:
        mouth = (kps[:, idx["mouth_right"]] + kps[:, idx["mouth_left"]]) / 2
    else:
        return None
    return np.stack([kps[:, idx["right_eye"]], kps[:, idx["left_eye"]], mouth], axis=1)


def anchor_points(
    faces: Detections | Landmarks | np.ndarray,
    landmarks: Landmarks | None = None,
    min_presence: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per face: (n, 3, 2) right eye, left eye, mouth centre; (n,) method codes (0 mesh, 1 key points, 2 box,
    NaN anchors); and (n, 4) boxes or None. Meshes given with detections are used where their presence is at
    least ``min_presence``; meshes given alone are always used."""
    boxes = None
    if isinstance(faces, Landmarks):  # meshes alone: use them whatever their presence score
        return _mesh_anchors(faces.points), np.zeros(len(faces), np.int8), None
    if isinstance(faces, Detections):
        n = len(faces)
        boxes = faces.boxes.astype(np.float64)
        anchors = np.full((n, 3, 2), np.nan)
        method = np.full(n, 2, np.int8)
        if faces.keypoints is not None:
            kp = _keypoint_anchors(faces.keypoints, faces.keypoint_names)
            if kp is not None:
                anchors, method = kp, np.ones(n, np.int8)
    else:
        arr = np.asarray(faces, np.float64)
        if arr.ndim != 3 or arr.shape[2] not in (2, 3):
            raise InputError(f"faces must be Detections, Landmarks or (n, k, 2|3) points, got shape {arr.shape}")
        if arr.shape[1] == NUM_LANDMARKS:
            return _mesh_anchors(arr), np.zeros(len(arr), np.int8), None
        kp = _keypoint_anchors(arr[..., :2], ())
        if kp is None:
            raise InputError(f"cannot tell eyes and mouth in {arr.shape[1]} key points (need 3, 5, 6 or 468)")
        return kp, np.ones(len(arr), np.int8), None
    if landmarks is not None:
        if len(landmarks) != n:
            raise InputError(f"{len(landmarks)} landmark sets for {n} faces")
        ok = landmarks.presence >= min_presence
        if ok.any():
            anchors = anchors.copy()
            anchors[ok] = _mesh_anchors(landmarks.points[ok])
            method = method.copy()
            method[ok] = 0
    return anchors, method, boxes


def _template_px(template: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    t = np.asarray(template, np.float64)
    return np.stack([t[:, 0] * w, (t[:, 1] - 0.5) * w + h / 2], axis=1)


def similarity_matrices(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transforms (rotation, uniform scale, translation; no reflection), vectorised:
    src (n, k, 2) -> dst (k, 2) or (n, k, 2). Returns (n, 2, 3)."""
    p = src[..., 0] + 1j * src[..., 1]
    q = dst[..., 0] + 1j * dst[..., 1]
    q = np.broadcast_to(q, p.shape)
    pm, qm = p.mean(axis=-1, keepdims=True), q.mean(axis=-1, keepdims=True)
    pc, qc = p - pm, q - qm
    den = (np.abs(pc) ** 2).sum(-1)
    a = (qc * np.conj(pc)).sum(-1) / np.where(den > 0, den, 1)
    b = qm[..., 0] - a * pm[..., 0]
    m = np.empty((len(p), 2, 3))
    m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = a.real, -a.imag, b.real
    m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = a.imag, a.real, b.imag
    return m


def align_faces(
    image: np.ndarray,
    faces: Detections | Landmarks | np.ndarray,
    size: tuple[int, int] = (112, 112),
    *,
    landmarks: Landmarks | None = None,
    template: np.ndarray = FER_TEMPLATE,
    box_template: tuple[float, float, float] = FER_BOX_TEMPLATE,
    min_presence: float = 0.5,
    border_mode: int = cv2.BORDER_REPLICATE,
    interpolation: int = cv2.INTER_LINEAR,
) -> tuple[np.ndarray, np.ndarray]:
    """Aligned face crops of one BGR image: returns ``(crops (n, H, W, 3) uint8, matrices (n, 2, 3))``.

    ``faces``: :class:`Detections` (key points, else boxes), :class:`Landmarks`, or an array of points
    (n, 468, 2|3) mesh, (n, 6|5|3, 2) key points. With ``landmarks`` given alongside detections, each face uses
    its mesh when ``presence >= min_presence`` and falls back to key points, then to the box.
    ``size`` is (W, H). Downscaling by more than 2x is done with area averaging (less aliasing).
    """
    img = as_bgr(image)
    w, h = int(size[0]), int(size[1])
    if w < 1 or h < 1:
        raise InputError(f"size must be positive (W, H), got {size}")
    anchors, method, boxes = anchor_points(faces, landmarks, min_presence)
    n = len(anchors)
    if n == 0:
        return np.zeros((0, h, w, 3), np.uint8), np.zeros((0, 2, 3), np.float64)
    mats = similarity_matrices(np.nan_to_num(anchors), _template_px(template, (w, h)))
    use_box = method == 2
    if use_box.any():
        if boxes is None:
            raise InputError("faces without key points need boxes")
        bx, by, side = box_template
        b = boxes[use_box]
        s = w * side / np.maximum(np.maximum(b[:, 2], b[:, 3]), 1e-6)
        cx, cy = b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2
        m = np.zeros((len(b), 2, 3))
        m[:, 0, 0] = m[:, 1, 1] = s
        m[:, 0, 2] = bx * w - s * cx
        m[:, 1, 2] = (by - 0.5) * w + h / 2 - s * cy
        mats[use_box] = m
    crops = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        m = mats[i]
        scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
        src, mm = img, m.copy()
        if scale < 0.5:  # pre-shrink with INTER_AREA around the face to avoid aliasing
            src, mm = _preshrink(img, m, (w, h), scale)
        # continuous -> index convention for cv2: t' = t + A @ (0.5, 0.5) - 0.5
        mm[:, 2] += mm[:, :2].sum(axis=1) * 0.5 - 0.5
        cv2.warpAffine(src, mm, (w, h), dst=crops[i], flags=interpolation, borderMode=border_mode)
    return crops, mats


def _preshrink(img: np.ndarray, m: np.ndarray, size: tuple[int, int], scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Crop the image region the output needs (with margin), shrink it with an area filter so that the warp
    left is about 1:1, and return the region and the adjusted continuous matrix."""
    w, h = size
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64) @ inv.T
    lo = np.floor(corners.min(0)).astype(int) - 2
    hi = np.ceil(corners.max(0)).astype(int) + 2
    ih, iw = img.shape[:2]
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], iw), min(hi[1], ih)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return img, m
    f = min(1.0, scale)  # shrink so that the warp left is about 1:1 (rotation only)
    region = img[y0:y1, x0:x1]
    nw, nh = max(1, round(region.shape[1] * f)), max(1, round(region.shape[0] * f))
    small = cv2.resize(region, (nw, nh), interpolation=cv2.INTER_AREA)
    fx, fy = region.shape[1] / nw, region.shape[0] / nh
    # image continuous = (small continuous * (fx, fy)) + (x0, y0)
    to_img = np.array([[fx, 0, x0], [0, fy, y0], [0, 0, 1]], np.float64)
    return small, m @ to_img
