"""Face regions of an aligned FER-style crop (numpy only, no torch): template boxes and boxes placed by the
468-point mesh.

FER2013 crops and ferkit's aligned faces put the eyes at about (0.309, 0.388) / (0.691, 0.388) and the mouth
centre at (0.5, 0.772) of the crop (``FER_TEMPLATE``), so landmark regions (eyes, brows, mouth) have template
places; the mesh places them per face. Boxes are ``(cx, cy, w, h)`` as fractions of the crop side.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

#: Landmark regions (slightly enlarged around the template eyes / brows / mouth).
LANDMARK_REGIONS: dict[str, tuple[float, float, float, float]] = {
    "right_eye": (0.309, 0.388, 0.36, 0.28),
    "left_eye": (0.691, 0.388, 0.36, 0.28),
    "brows": (0.500, 0.250, 0.84, 0.24),
    "mouth": (0.500, 0.772, 0.54, 0.34),
}
#: Fixed crops of the RAN paper: four corners and the centre at 0.75 of the side.
FIXED_REGIONS: dict[str, tuple[float, float, float, float]] = {
    "top_left": (0.375, 0.375, 0.75, 0.75),
    "top_right": (0.625, 0.375, 0.75, 0.75),
    "bottom_left": (0.375, 0.625, 0.75, 0.75),
    "bottom_right": (0.625, 0.625, 0.75, 0.75),
    "centre": (0.500, 0.500, 0.75, 0.75),
}
#: Extra landmark regions for the patch transformer.
EXTRA_REGIONS: dict[str, tuple[float, float, float, float]] = {
    "nose": (0.500, 0.560, 0.34, 0.30),
    "right_cheek": (0.260, 0.620, 0.30, 0.30),
    "left_cheek": (0.740, 0.620, 0.30, 0.30),
    "forehead": (0.500, 0.110, 0.70, 0.22),
}
#: Regions the mesh can place (ferkit region name -> mesh feature of ``face.landmarks``).
MESH_FEATURE = {"right_eye": "right_eye", "left_eye": "left_eye", "brows": "brows", "mouth": "lips",
                "nose": "nose"}


def region_array(names: list[str]) -> np.ndarray:
    """``(R, 4)`` template boxes of the named regions."""
    allr = {**LANDMARK_REGIONS, **FIXED_REGIONS, **EXTRA_REGIONS}
    unknown = [n for n in names if n not in allr]
    if unknown:
        raise ValueError(f"unknown regions {unknown}; known: {sorted(allr)}")
    return np.array([allr[n] for n in names], np.float32)


def boxes_from_mesh(points: np.ndarray, side: float, names: list[str], scale: float = 1.3,
                    presence: np.ndarray | None = None, min_presence: float = 0.5) -> np.ndarray:
    """Per-image normalised boxes ``(n, R, 4)`` of regions from 468-point mesh points ``(n, 468, 2+)`` in a
    crop of ``side`` pixels. Regions the mesh does not define (fixed crops) keep their template box, as do
    faces whose mesh is missing (NaN points) or whose ``presence`` is below ``min_presence``."""
    from .landmarks import region_boxes

    points = np.asarray(points, np.float32)
    tmpl = region_array(names)
    out = np.repeat(tmpl[None], len(points), 0)
    if len(points) == 0:
        return out
    for j, n in enumerate(names):
        if n in MESH_FEATURE:
            bx = region_boxes(np.nan_to_num(points), [MESH_FEATURE[n]], scale=scale)[:, 0] / side
            out[:, j] = np.stack([bx[:, 0] + bx[:, 2] / 2, bx[:, 1] + bx[:, 3] / 2,
                                  np.maximum(bx[:, 2], tmpl[j, 2] * 0.5), np.maximum(bx[:, 3], tmpl[j, 3] * 0.5)], 1)
    bad = ~np.isfinite(points[..., :2]).all(axis=(1, 2))
    if presence is not None:
        bad |= np.asarray(presence) < min_presence
    out[bad] = tmpl
    return out.astype(np.float32)


def mesh_points(images: np.ndarray, upscale: int = 4, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """468-point meshes of FER crops ``(n, h, w)`` (in crop pixels) and their presence scores."""
    import cv2

    from .align import FER_BOX_TEMPLATE
    from .landmarks import ROI_SCALE, FaceMesh

    mesh = FaceMesh(threads=1)
    n, h, w = images.shape
    s = w * upscale
    cx, cy, side = FER_BOX_TEMPLATE
    roi = np.array([[cx * s, cy * s, side * s * ROI_SCALE, 0.0]], np.float32)
    pts = np.zeros((n, 468, 3), np.float32)
    pres = np.zeros(n, np.float32)
    for i in range(0, n, batch):
        imgs = [cv2.cvtColor(cv2.resize(im, (s, s), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)
                for im in images[i:i + batch]]
        for j, lm in enumerate(mesh.run_batch(imgs, [roi] * len(imgs))):
            pts[i + j] = lm.points[0] / upscale
            pres[i + j] = lm.presence[0]
    return pts, pres


def cached_mesh(images: np.ndarray, cache: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """:func:`mesh_points` cached in an ``.npz`` keyed by the image checksum; ``cache`` is that file, or a
    folder in which the file is named by the checksum."""
    key = hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:16]
    cache = Path(cache)
    if cache.suffix != ".npz":
        cache = cache / f"{key}.npz"
    if cache.exists():
        z = np.load(cache)
        if str(z["key"]) == key:
            return z["points"], z["presence"]
    pts, pres = mesh_points(images)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, points=pts, presence=pres, key=key)
    return pts, pres


def mesh_cache_dir() -> Path:
    """Where mesh points of datasets are cached: ``$FERKIT_CACHE/mesh`` (default ``~/.cache/ferkit/mesh``)."""
    return Path(os.environ.get("FERKIT_CACHE", Path.home() / ".cache" / "ferkit")) / "mesh"


def mesh_region_boxes(images: np.ndarray, names: list[str], min_presence: float = 0.5,
                      cache: bool = True) -> np.ndarray:
    """Per-image boxes ``(n, R, 4)`` of ``names`` placed by the 468-point mesh run on FER-style crops
    ``(n, h, w)`` uint8 (cached by image checksum under :func:`mesh_cache_dir`); faces whose mesh presence is
    below ``min_presence`` keep the template boxes."""
    if len(images) == 0:
        return np.zeros((0, len(names), 4), np.float32)
    pts, pres = cached_mesh(images, mesh_cache_dir()) if cache else mesh_points(images)
    return boxes_from_mesh(pts, images.shape[-1], names, presence=pres, min_presence=min_presence)
