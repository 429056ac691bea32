"""Face regions of an aligned FER-style crop, placed from the alignment template (``FER_TEMPLATE``).

FER2013 crops and ferkit's aligned faces put the eyes at about (0.309, 0.388) / (0.691, 0.388) and the mouth
centre at (0.5, 0.772) of the crop, so landmark regions (eyes, brows, mouth) sit at fixed places; boxes are
``(cx, cy, w, h)`` as fractions of the crop side. Models crop them with ``grid_sample`` and also accept
per-image boxes (e.g. from the 468-point mesh via :func:`boxes_from_mesh`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

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


def region_table(names: list[str]) -> torch.Tensor:
    """``(R, 4)`` boxes of the named regions."""
    allr = {**LANDMARK_REGIONS, **FIXED_REGIONS, **EXTRA_REGIONS}
    return torch.tensor([allr[n] for n in names], dtype=torch.float32)


def crop_regions(x: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Crop ``(B, C, H, W)`` images at ``boxes`` (``(R, 4)`` shared or ``(B, R, 4)`` per image, normalised
    cx, cy, w, h) to ``(B, R, C, size, size)`` with bilinear ``grid_sample`` (ONNX-exportable)."""
    b, c = x.shape[:2]
    if boxes.dim() == 2:
        boxes = boxes.unsqueeze(0).expand(b, -1, -1)
    r = boxes.shape[1]
    # Sampling grid built from plain ops (as F.affine_grid with align_corners=False) so it exports to ONNX.
    base = (torch.arange(size, dtype=x.dtype, device=x.device) + 0.5) * (2.0 / size) - 1.0
    cx, cy, w, h = (boxes[..., i].unsqueeze(-1).unsqueeze(-1) for i in range(4))  # (B, R, 1, 1)
    gx = (w * base.view(1, 1, 1, size) + (2 * cx - 1)).expand(b, r, size, size)
    gy = (h * base.view(1, 1, size, 1) + (2 * cy - 1)).expand(b, r, size, size)
    grid = torch.stack([gx, gy], -1).reshape(b * r, size, size, 2)
    xr = x.unsqueeze(1).expand(-1, r, -1, -1, -1).reshape(b * r, c, x.shape[2], x.shape[3])
    out = F.grid_sample(xr, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.reshape(b, r, c, size, size)


def boxes_from_mesh(points: np.ndarray, side: float, names: list[str], scale: float = 1.3) -> np.ndarray:
    """Per-image normalised boxes ``(n, R, 4)`` of landmark regions from 468-point mesh points ``(n, 468, 2+)``
    in a crop of ``side`` pixels (regions without a mesh definition keep their template box)."""
    from ..face.landmarks import region_boxes

    mesh_name = {"right_eye": "right_eye", "left_eye": "left_eye", "brows": "brows", "mouth": "lips",
                 "nose": "nose"}
    tmpl = region_table(names).numpy()
    out = np.repeat(tmpl[None], len(points), 0)
    for j, n in enumerate(names):
        if n in mesh_name:
            bx = region_boxes(points, [mesh_name[n]], scale=scale)[:, 0] / side
            out[:, j] = np.stack([bx[:, 0] + bx[:, 2] / 2, bx[:, 1] + bx[:, 3] / 2,
                                  np.maximum(bx[:, 2], tmpl[j, 2] * 0.5), np.maximum(bx[:, 3], tmpl[j, 3] * 0.5)], 1)
    return out.astype(np.float32)
