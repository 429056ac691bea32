"""Robustness subsets of a split of 48 px FER faces, built reproducibly.

* Occlusion: synthetic occluders drawn over copies of every face: a bar over both eyes, a block over the mouth
  (placed at the alignment template's eye / mouth positions with a small seeded jitter), or two random blocks.
  Occluder grey level and jitter come from ``numpy.random.default_rng(seed)``, so a seed gives the same images.
* Pose: a proxy from the 468-point mesh geometry (``face.regions.cached_mesh``): yaw proxy =
  horizontal offset of the nose tip from the eye midpoint over the inter-ocular distance; roll = angle of the
  eye line. Subsets: ``pose_frontal`` (|yaw| < 0.06 and |roll| < 5 deg), ``pose_yaw`` (|yaw| >= 0.15),
  ``pose_roll`` (|roll| >= 10 deg).
"""

from __future__ import annotations

import numpy as np

from .face.align import FER_TEMPLATE

EYE_Y, EYE_X = FER_TEMPLATE[0, 1], (FER_TEMPLATE[0, 0], FER_TEMPLATE[1, 0])
MOUTH_X, MOUTH_Y = FER_TEMPLATE[2, 0], FER_TEMPLATE[2, 1]
POSE_THRESHOLDS = {"frontal_yaw": 0.06, "frontal_roll": 5.0, "yaw": 0.15, "roll": 10.0}


def _fill(img: np.ndarray, x0: float, y0: float, x1: float, y1: float, value: int) -> None:
    h, w = img.shape
    xa, ya = int(np.clip(round(x0), 0, w)), int(np.clip(round(y0), 0, h))
    xb, yb = int(np.clip(round(x1), 0, w)), int(np.clip(round(y1), 0, h))
    img[ya:yb, xa:xb] = value


def occlude(images: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """Copies of uint8 faces ``(n, h, w)`` with an occluder: ``eyes``, ``mouth`` or ``random`` (two blocks)."""
    kinds = {"eyes": 1, "mouth": 2, "random": 3}
    if kind not in kinds:
        raise ValueError(f"unknown occlusion {kind!r}; use eyes, mouth or random")
    rng = np.random.default_rng(kinds[kind] * 1000 + seed)
    out = images.copy()
    n, h, w = images.shape
    grey = rng.integers(0, 256, n)
    jit = rng.uniform(-0.04, 0.04, (n, 2))
    blocks = rng.uniform(0, 1, (n, 2, 2))
    for i in range(n):
        dx, dy = jit[i] * w
        if kind == "eyes":
            _fill(out[i], (EYE_X[0] - 0.2) * w + dx, (EYE_Y - 0.1) * h + dy, (EYE_X[1] + 0.2) * w + dx,
                  (EYE_Y + 0.1) * h + dy, grey[i])
        elif kind == "mouth":
            _fill(out[i], (MOUTH_X - 0.25) * w + dx, (MOUTH_Y - 0.13) * h + dy, (MOUTH_X + 0.25) * w + dx,
                  (MOUTH_Y + 0.13) * h + dy, grey[i])
        else:
            side = 0.33 * w
            for bx, by in blocks[i]:
                x0, y0 = bx * (w - side), by * (h - side)
                _fill(out[i], x0, y0, x0 + side, y0 + side, grey[i])
    return out


def pose_proxy(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(yaw proxy, roll in degrees)`` per face from mesh points ``(n, 468, 2+)``."""
    from .face.landmarks import KEYPOINT_INDEX, REGIONS

    xy = np.asarray(points, np.float64)[..., :2]
    re = xy[:, list(REGIONS["right_eye"])].mean(1)
    le = xy[:, list(REGIONS["left_eye"])].mean(1)
    nose = xy[:, KEYPOINT_INDEX["nose_tip"]]
    d = le - re
    iod = np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-6)
    mid = (re + le) / 2
    # offset of the nose tip from the eye midpoint, measured along the eye line
    yaw = ((nose - mid) * d).sum(1) / iod**2
    roll = np.degrees(np.arctan2(d[:, 1], d[:, 0]))
    return yaw, roll


def pose_subsets(points: np.ndarray, presence: np.ndarray | None = None, min_presence: float = 0.5
                 ) -> dict[str, np.ndarray]:
    """Indices of the pose subsets (faces whose mesh presence is below ``min_presence`` are left out)."""
    yaw, roll = pose_proxy(points)
    ok = np.ones(len(yaw), bool) if presence is None else np.asarray(presence) >= min_presence
    t = POSE_THRESHOLDS
    return {
        "pose_frontal": np.flatnonzero(ok & (np.abs(yaw) < t["frontal_yaw"]) & (np.abs(roll) < t["frontal_roll"])),
        "pose_yaw": np.flatnonzero(ok & (np.abs(yaw) >= t["yaw"])),
        "pose_roll": np.flatnonzero(ok & (np.abs(roll) >= t["roll"])),
    }


def build_subsets(images: np.ndarray, points: np.ndarray | None = None, presence: np.ndarray | None = None,
                  seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """All subsets as ``name -> (indices into the split, images)``; pose subsets only when ``points`` is given."""
    idx = np.arange(len(images))
    out = {f"occ_{k}": (idx, occlude(images, k, seed)) for k in ("eyes", "mouth", "random")}
    if points is not None:
        for name, sel in pose_subsets(points, presence).items():
            out[name] = (sel, images[sel])
    return out
