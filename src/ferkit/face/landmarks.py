"""MediaPipe face mesh: 468 3-D landmarks per face, named regions and region boxes.

The mesh model sees a 192x192 RGB crop of a rotated, square region of interest (ROI) around the face. As in
MediaPipe, the ROI comes from a detection (box centre, 1.5x the box's longer side, rotated so that the eyes are
level) or, when tracking a face from frame to frame, from the previous frame's landmarks
(:func:`rois_from_landmarks`), so the detector need not run on every frame.

Left/right in region names are the subject's own (MediaPipe's convention): ``left_eye`` is the person's left
eye, on the *right* of an unmirrored photo. The 468-point model has **no iris points** (MediaPipe's 478-point
variant adds 10 with a separate iris model); ``left_eye``/``right_eye`` are the eyelid contours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ferkit.errors import InputError

from ._ort import load_session
from .detect import Detections, as_bgr

__all__ = [
    "CONNECTIONS",
    "KEYPOINT_INDEX",
    "MESH_SIZE",
    "NUM_LANDMARKS",
    "REGIONS",
    "FaceMesh",
    "Landmarks",
    "detect_landmarks",
    "region_boxes",
    "roi_matrices",
    "rois_from_detections",
    "rois_from_landmarks",
]

NUM_LANDMARKS = 468
MESH_SIZE = 192
ROI_SCALE = 1.5

# Mesh edges per feature, from MediaPipe's face_mesh_connections.py (Apache-2.0).
CONNECTIONS: dict[str, tuple[tuple[int, int], ...]] = {
    "lips": (
        (61, 146), (146, 91), (91, 181), (181, 84), (84, 17), (17, 314), (314, 405), (405, 321), (321, 375),
        (375, 291), (61, 185), (185, 40), (40, 39), (39, 37), (37, 0), (0, 267), (267, 269), (269, 270),
        (270, 409), (409, 291), (78, 95), (95, 88), (88, 178), (178, 87), (87, 14), (14, 317), (317, 402),
        (402, 318), (318, 324), (324, 308), (78, 191), (191, 80), (80, 81), (81, 82), (82, 13), (13, 312),
        (312, 311), (311, 310), (310, 415), (415, 308),
    ),
    "left_eye": (
        (263, 249), (249, 390), (390, 373), (373, 374), (374, 380), (380, 381), (381, 382), (382, 362),
        (263, 466), (466, 388), (388, 387), (387, 386), (386, 385), (385, 384), (384, 398), (398, 362),
    ),
    "left_brow": ((276, 283), (283, 282), (282, 295), (295, 285), (300, 293), (293, 334), (334, 296), (296, 336)),
    "right_eye": (
        (33, 7), (7, 163), (163, 144), (144, 145), (145, 153), (153, 154), (154, 155), (155, 133),
        (33, 246), (246, 161), (161, 160), (160, 159), (159, 158), (158, 157), (157, 173), (173, 133),
    ),
    "right_brow": ((46, 53), (53, 52), (52, 65), (65, 55), (70, 63), (63, 105), (105, 66), (66, 107)),
    "nose": (
        (168, 6), (6, 197), (197, 195), (195, 5), (5, 4), (4, 1), (1, 19), (19, 94), (94, 2), (98, 97),
        (97, 2), (2, 326), (326, 327), (327, 294), (294, 278), (278, 344), (344, 440), (440, 275), (275, 4),
        (4, 45), (45, 220), (220, 115), (115, 48), (48, 64), (64, 98),
    ),
    "face_oval": (
        (10, 338), (338, 297), (297, 332), (332, 284), (284, 251), (251, 389), (389, 356), (356, 454),
        (454, 323), (323, 361), (361, 288), (288, 397), (397, 365), (365, 379), (379, 378), (378, 400),
        (400, 377), (377, 152), (152, 148), (148, 176), (176, 149), (149, 150), (150, 136), (136, 172),
        (172, 58), (58, 132), (132, 93), (93, 234), (234, 127), (127, 162), (162, 21), (21, 54), (54, 103),
        (103, 67), (67, 109), (109, 10),
    ),
}


def _points(edges: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    return tuple(sorted({i for e in edges for i in e}))


_LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409)
_LIPS_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415)

#: Mesh point indices of named face regions (subject's left/right). ``mouth`` = ``lips`` (outer + inner contour).
REGIONS: dict[str, tuple[int, ...]] = {
    "left_eye": _points(CONNECTIONS["left_eye"]),
    "right_eye": _points(CONNECTIONS["right_eye"]),
    "left_brow": _points(CONNECTIONS["left_brow"]),
    "right_brow": _points(CONNECTIONS["right_brow"]),
    "lips": _points(CONNECTIONS["lips"]),
    "mouth": _points(CONNECTIONS["lips"]),
    "lips_outer": tuple(sorted(_LIPS_OUTER)),
    "lips_inner": tuple(sorted(_LIPS_INNER)),
    "nose": _points(CONNECTIONS["nose"]),
    "face_oval": _points(CONNECTIONS["face_oval"]),
}
REGIONS["eyes"] = tuple(sorted(REGIONS["left_eye"] + REGIONS["right_eye"]))
REGIONS["brows"] = tuple(sorted(REGIONS["left_brow"] + REGIONS["right_brow"]))
REGIONS["eyes_and_brows"] = tuple(sorted(REGIONS["eyes"] + REGIONS["brows"]))

#: Single mesh points often used as key points.
KEYPOINT_INDEX: dict[str, int] = {
    "right_eye_outer": 33, "right_eye_inner": 133, "left_eye_outer": 263, "left_eye_inner": 362,
    "nose_tip": 1, "mouth_right": 61, "mouth_left": 291, "upper_lip": 13, "lower_lip": 14, "chin": 152,
    "forehead": 10,
}


# ============================================================================================ result container


@dataclass(eq=False)
class Landmarks:
    """Face meshes for the faces of one image.

    ``points``: float32 (n, 468, 3), x and y in image pixels, z in the same scale, relative to the face (smaller
    is nearer the camera); ``presence``: float32 (n,), the mesh model's face-presence probability (low means the
    ROI holds no face); ``rois``: float32 (n, 4) the crops used, as centre x, centre y, side, angle (radians).
    """

    points: np.ndarray
    presence: np.ndarray
    rois: np.ndarray

    def __post_init__(self) -> None:
        pts = np.ascontiguousarray(self.points, dtype=np.float32)
        if pts.size == 0:
            pts = pts.reshape(0, NUM_LANDMARKS, 3)
        if pts.ndim != 3 or pts.shape[2] not in (2, 3):
            raise InputError(f"Landmarks.points must have shape (n, k, 3), got {pts.shape}")
        n = pts.shape[0]
        pres = np.ascontiguousarray(self.presence, dtype=np.float32).reshape(-1)
        rois = np.ascontiguousarray(self.rois, dtype=np.float32).reshape(-1, 4)
        if pres.shape != (n,) or rois.shape != (n, 4):
            raise InputError(f"Landmarks: {n} faces but presence {pres.shape}, rois {rois.shape}")
        self.points, self.presence, self.rois = pts, pres, rois

    @classmethod
    def empty(cls) -> Landmarks:
        """No face."""
        return cls(np.zeros((0, NUM_LANDMARKS, 3), np.float32), np.zeros(0, np.float32), np.zeros((0, 4), np.float32))

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def __getitem__(self, index: Any) -> Landmarks:
        """Subset by int, slice, index array or mask."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Landmarks(self.points[index], self.presence[index], self.rois[index])

    def __repr__(self) -> str:
        return f"Landmarks(n={len(self)})"

    def region(self, name: str) -> np.ndarray:
        """(n, k, 3) points of a named region (see :data:`REGIONS`)."""
        return self.points[:, _region(name)]

    def boxes(self) -> np.ndarray:
        """(n, 4) x, y, w, h tight boxes around all mesh points."""
        xy = self.points[..., :2]
        lo, hi = xy.min(axis=1), xy.max(axis=1)
        return np.concatenate([lo, hi - lo], axis=1) if len(self) else np.zeros((0, 4), np.float32)


def _region(name: str) -> tuple[int, ...]:
    try:
        return REGIONS[name]
    except KeyError:
        raise InputError(f"unknown face region {name!r}; known regions: {', '.join(sorted(REGIONS))}") from None


def region_boxes(points: np.ndarray | Landmarks, names: Sequence[str], scale: float = 1.2,
                 square: bool = False) -> np.ndarray:
    """Boxes (n, len(names), 4) as x, y, w, h around named mesh regions, enlarged ``scale`` times around their
    centre (``square=True``: both sides equal to the longer one). For region crops (eyes, mouth...)."""
    pts = points.points if isinstance(points, Landmarks) else np.asarray(points, np.float32)
    if pts.ndim != 3 or pts.shape[1] != NUM_LANDMARKS:
        raise InputError(f"points must have shape (n, {NUM_LANDMARKS}, 2|3), got {pts.shape}")
    out = np.zeros((pts.shape[0], len(names), 4), np.float32)
    for j, name in enumerate(names):
        xy = pts[:, _region(name), :2]
        lo, hi = xy.min(axis=1), xy.max(axis=1)
        centre, size = (lo + hi) / 2, (hi - lo) * scale
        if square:
            size = np.repeat(size.max(axis=1, keepdims=True), 2, axis=1)
        out[:, j, :2] = centre - size / 2
        out[:, j, 2:] = size
    return out


# ============================================================================================ ROIs


def _rotation(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """MediaPipe's ROI angle from a start -> end key point vector (target angle 0), normalised to [-pi, pi)."""
    angle = -np.arctan2(-(end[:, 1] - start[:, 1]), end[:, 0] - start[:, 0])
    return angle - 2 * np.pi * np.floor((angle + np.pi) / (2 * np.pi))


def rois_from_detections(dets: Detections, scale: float = ROI_SCALE) -> np.ndarray:
    """Mesh ROIs (n, 4: cx, cy, side, angle) from detections: box centre, ``scale`` x the longer box side,
    rotated so that the line right eye -> left eye is horizontal (no rotation without eye key points)."""
    b = dets.boxes.astype(np.float64)
    cx, cy = b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2
    side = np.maximum(b[:, 2], b[:, 3]) * scale
    if dets.keypoints is not None and {"right_eye", "left_eye"} <= set(dets.keypoint_names):
        angle = _rotation(dets.keypoint("right_eye").astype(np.float64), dets.keypoint("left_eye").astype(np.float64))
    else:
        angle = np.zeros(len(dets))
    return np.stack([cx, cy, side, angle], axis=1).astype(np.float32)


def rois_from_landmarks(points: np.ndarray | Landmarks, scale: float = ROI_SCALE) -> np.ndarray:
    """ROIs for the next frame from this frame's meshes (MediaPipe's tracking): rotation from the outer eye
    corners, box around all points in the rotated frame, ``scale`` x its longer side."""
    pts = points.points if isinstance(points, Landmarks) else np.asarray(points, np.float32)
    xy = pts[..., :2].astype(np.float64)
    if len(xy) == 0:
        return np.zeros((0, 4), np.float32)
    angle = _rotation(xy[:, KEYPOINT_INDEX["right_eye_outer"]], xy[:, KEYPOINT_INDEX["left_eye_outer"]])
    c, s = np.cos(angle), np.sin(angle)
    # rotate points into the ROI frame (inverse rotation), take the box there, rotate its centre back
    rx = xy[..., 0] * c[:, None] + xy[..., 1] * s[:, None]
    ry = -xy[..., 0] * s[:, None] + xy[..., 1] * c[:, None]
    mx, my = (rx.min(1) + rx.max(1)) / 2, (ry.min(1) + ry.max(1)) / 2
    side = np.maximum(rx.max(1) - rx.min(1), ry.max(1) - ry.min(1)) * scale
    cx, cy = mx * c - my * s, mx * s + my * c
    return np.stack([cx, cy, side, angle], axis=1).astype(np.float32)


def roi_matrices(rois: np.ndarray, size: int = MESH_SIZE) -> np.ndarray:
    """(n, 2, 3) affine maps from crop coordinates (0..size, continuous) to image coordinates for ROIs."""
    rois = np.asarray(rois, np.float64).reshape(-1, 4)
    k = rois[:, 2] / size
    c, s = np.cos(rois[:, 3]) * k, np.sin(rois[:, 3]) * k
    m = np.empty((len(rois), 2, 3))
    m[:, 0, 0], m[:, 0, 1] = c, -s
    m[:, 1, 0], m[:, 1, 1] = s, c
    half = size / 2
    m[:, 0, 2] = rois[:, 0] - (c - s) * half
    m[:, 1, 2] = rois[:, 1] - (s + c) * half
    return m


# ============================================================================================ model


class FaceMesh:
    """468-point face mesh (MediaPipe ``face_landmark``), all faces of a call in one onnxruntime batch.

    The onnxruntime session is shared; an instance reuses its input buffers, so use one instance per thread.
    """

    model_file = "face_mesh_468.onnx"

    def __init__(self, threads: int = 1, roi_scale: float = ROI_SCALE):
        self.session = load_session(self.model_file, threads)
        self.roi_scale = float(roi_scale)
        self._u8 = np.zeros((0, MESH_SIZE, MESH_SIZE, 3), np.uint8)
        self._f32 = np.zeros((0, MESH_SIZE, MESH_SIZE, 3), np.float32)

    def __repr__(self) -> str:
        return f"FaceMesh(roi_scale={self.roi_scale})"

    def run(self, image: np.ndarray, faces: Detections | np.ndarray) -> Landmarks:
        """Meshes for the faces of one BGR image; ``faces`` is a :class:`Detections` or an (n, 4) ROI array."""
        return self.run_batch([image], [faces])[0]

    __call__ = run

    def run_batch(self, images: Sequence[np.ndarray], faces: Sequence[Detections | np.ndarray]) -> list[Landmarks]:
        """Meshes for many images (e.g. video frames) in one onnxruntime call."""
        if len(images) != len(faces):
            raise InputError(f"{len(images)} images but {len(faces)} face lists")
        rois = [
            rois_from_detections(f, self.roi_scale) if isinstance(f, Detections)
            else np.asarray(f, np.float32).reshape(-1, 4)
            for f in faces
        ]
        counts = [len(r) for r in rois]
        total = sum(counts)
        if total == 0:
            return [Landmarks.empty() for _ in images]
        all_rois = np.concatenate(rois)
        mats = roi_matrices(all_rois)
        if self._u8.shape[0] < total:
            n = max(total, 2 * self._u8.shape[0])
            self._u8 = np.zeros((n, MESH_SIZE, MESH_SIZE, 3), np.uint8)
            self._f32 = np.zeros((n, MESH_SIZE, MESH_SIZE, 3), np.float32)
        u8, f32 = self._u8[:total], self._f32[:total]
        # crop pixel index u (centre u + 0.5) -> image index: shift half a pixel on both sides
        inv = mats.copy()
        inv[:, :, 2] += inv[:, :, :2].sum(axis=2) * 0.5 - 0.5
        j = 0
        for img, n in zip(images, counts):
            if n == 0:
                continue
            img = as_bgr(img)
            for m in inv[j:j + n]:
                # zero border (replicate is 2.5x slower in OpenCV; the ROI rarely leaves the image by much)
                cv2.warpAffine(img, m, (MESH_SIZE, MESH_SIZE), dst=u8[j],
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
                j += 1
        flat = u8.reshape(total * MESH_SIZE, MESH_SIZE, 3)
        cv2.cvtColor(flat, cv2.COLOR_BGR2RGB, dst=flat)  # in place, all faces at once
        np.multiply(u8, np.float32(1.0 / 255.0), out=f32)  # [0, 1]
        raw, flag = self.session.run(None, {"image": f32})
        pts = raw.reshape(total, NUM_LANDMARKS, 3).astype(np.float64)
        xy = np.einsum("nij,nkj->nki", mats[:, :, :2], pts[..., :2]) + mats[:, None, :, 2]
        z = pts[..., 2:] * (all_rois[:, 2:3, None] / MESH_SIZE)
        points = np.concatenate([xy, z], axis=2).astype(np.float32)
        presence = (1.0 / (1.0 + np.exp(-np.clip(flag.reshape(-1), -80, 80)))).astype(np.float32)
        out, j = [], 0
        for n in counts:
            out.append(Landmarks(points[j:j + n], presence[j:j + n], all_rois[j:j + n]))
            j += n
        return out


_DEFAULT_MESH: FaceMesh | None = None


def detect_landmarks(image: np.ndarray, faces: Detections | np.ndarray) -> Landmarks:
    """Meshes for the faces of one image with a shared default :class:`FaceMesh`."""
    global _DEFAULT_MESH
    if _DEFAULT_MESH is None:
        _DEFAULT_MESH = FaceMesh()
    return _DEFAULT_MESH.run(image, faces)
