"""Region crops for the research models: template / mesh boxes (from :mod:`ferkit.face.regions`, numpy only)
and the ``grid_sample`` crop layer (ONNX-exportable) that takes shared ``(R, 4)`` or per-image ``(B, R, 4)`` boxes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..face.regions import (
    EXTRA_REGIONS,
    FIXED_REGIONS,
    LANDMARK_REGIONS,
    boxes_from_mesh,
    mesh_cache_dir,
    mesh_region_boxes,
    region_array,
)

__all__ = ["EXTRA_REGIONS", "FIXED_REGIONS", "LANDMARK_REGIONS", "boxes_from_mesh", "crop_regions",
           "mesh_cache_dir", "mesh_region_boxes", "region_table"]


def region_table(names: list[str]) -> torch.Tensor:
    """``(R, 4)`` template boxes of the named regions."""
    return torch.from_numpy(region_array(names))


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
