"""Batch augmentation on tensors (runs on the GPU when training there): flips, random affine
(rotation, scale, translation = random crop), brightness/contrast, random erasing, Gaussian noise."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class AugmentConfig:
    flip: float = 0.5
    rotate: float = 15.0  # degrees
    scale: tuple[float, float] = (0.85, 1.15)
    translate: float = 0.1  # fraction of the side
    brightness: float = 0.25
    contrast: float = 0.25
    erase: float = 0.4  # probability of one random erasing block
    erase_area: tuple[float, float] = (0.02, 0.15)
    noise: float = 0.0  # std of Gaussian noise on [0, 1] pixels
    crop: float = 1.0  # < 1: close crop, keep the central fraction (applied at train and test time)


def close_crop(x: torch.Tensor, crop: float) -> torch.Tensor:
    """Central crop of ``crop`` of the side, resized back to the input size (the seeds' 'cropped' variant)."""
    if crop >= 1.0:
        return x
    h, w = int(x.shape[-2]), int(x.shape[-1])  # (plain ints also when traced for ONNX: the size is fixed)
    ch, cw = max(1, round(h * crop)), max(1, round(w * crop))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return F.interpolate(x[..., y0:y0 + ch, x0:x0 + cw], size=(h, w), mode="bilinear", align_corners=False)


def crop_boxes(boxes: torch.Tensor, crop: float, size: int = 48) -> torch.Tensor:
    """Normalised ``(cx, cy, w, h)`` boxes ``(..., 4)`` after :func:`close_crop` of a ``size`` x ``size`` face (the
    crop's whole-pixel size and offset, as :func:`close_crop` cuts it)."""
    if crop >= 1.0:
        return boxes
    side = max(1, round(size * crop))
    off = (size - side) // 2
    c = (boxes[..., :2] * size - off) / side
    return torch.cat([c, boxes[..., 2:] * size / side], -1)


class CloseCropped(nn.Module):
    """A model trained on :func:`close_crop` inputs, with the crop built in (so exports and evaluations of the
    run see what training saw). Other attributes are the wrapped model's."""

    def __init__(self, model: nn.Module, crop: float) -> None:
        super().__init__()
        self.model = model
        self.crop = float(crop)

    def forward(self, x: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        size = int(x.shape[-1])
        x = close_crop(x, self.crop)
        return self.model(x) if boxes is None else self.model(x, crop_boxes(boxes, self.crop, size))

    def features(self, x: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        """The wrapped model's embedding of the close crop (what it saw in training)."""
        size = int(x.shape[-1])
        return self.model.features(close_crop(x, self.crop), None if boxes is None else crop_boxes(boxes, self.crop,
                                                                                                    size))

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["model"], name)


def transform_boxes(boxes: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Move per-image boxes ``(B, R, 4)`` (normalised cx, cy, w, h) with the images of an ``affine_grid``
    warp ``theta`` ``(B, 2, 3)`` (output -> input): centres through the inverse map, sizes by its scale
    (the boxes stay axis-aligned)."""
    a, t = theta[:, :, :2], theta[:, :, 2]
    inv = torch.linalg.inv(a)  # (B, 2, 2)
    ci = boxes[..., :2] * 2 - 1  # (B, R, 2) in [-1, 1]
    co = torch.einsum("bij,brj->bri", inv, ci - t[:, None, :])
    scale = torch.sqrt(torch.abs(torch.linalg.det(inv)))[:, None, None]
    return torch.cat([(co + 1) / 2, boxes[..., 2:] * scale], -1)


def augment(x: torch.Tensor, cfg: AugmentConfig, strong: torch.Tensor | None = None,
            generator: torch.Generator | None = None, boxes: torch.Tensor | None = None
            ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Augment a float batch ``(B, C, H, W)`` in [0, 1]. ``strong`` (bool ``(B,)``) marks samples that get
    extra augmentation (minority classes): doubled rotation and Gaussian noise. With per-image region
    ``boxes`` ``(B, R, 4)``, returns ``(x, boxes)`` with the boxes moved like the faces."""
    b, dev = x.shape[0], x.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, device=dev, generator=generator)

    x = close_crop(x, cfg.crop)
    rot = (rand(b) * 2 - 1) * math.radians(cfg.rotate)
    if strong is not None:
        rot = torch.where(strong, rot * 2, rot)
    scale = cfg.scale[0] + rand(b) * (cfg.scale[1] - cfg.scale[0])
    flip = torch.where(rand(b) < cfg.flip, -1.0, 1.0)
    tx, ty = (rand(b) * 2 - 1) * cfg.translate * 2, (rand(b) * 2 - 1) * cfg.translate * 2
    cos, sin = torch.cos(rot) / scale, torch.sin(rot) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if boxes is not None:
        boxes = transform_boxes(crop_boxes(boxes, cfg.crop, int(x.shape[-1])), theta)
    if cfg.brightness or cfg.contrast:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        c = 1 + (rand(b, 1, 1, 1) * 2 - 1) * cfg.contrast
        br = (rand(b, 1, 1, 1) * 2 - 1) * cfg.brightness
        x = (x - mean) * c + mean + br
    noise_std = torch.full((b, 1, 1, 1), cfg.noise, device=dev)
    if strong is not None:
        noise_std = torch.where(strong[:, None, None, None], noise_std.clamp_min(0.03), noise_std)
    if (noise_std > 0).any():
        x = x + torch.randn(x.shape, device=dev, generator=generator) * noise_std
    if cfg.erase > 0:
        h, w = x.shape[-2:]
        area = cfg.erase_area[0] + rand(b) * (cfg.erase_area[1] - cfg.erase_area[0])
        aspect = torch.exp((rand(b) * 2 - 1) * math.log(3))
        eh = (torch.sqrt(area * aspect) * h).clamp(1, h)
        ew = (torch.sqrt(area / aspect) * w).clamp(1, w)
        y0 = rand(b) * (h - eh)
        x0 = rand(b) * (w - ew)
        yy = torch.arange(h, device=dev)[None, :, None]
        xx = torch.arange(w, device=dev)[None, None, :]
        m = (yy >= y0[:, None, None]) & (yy < (y0 + eh)[:, None, None]) & (xx >= x0[:, None, None]) & (
            xx < (x0 + ew)[:, None, None])
        m = m & (rand(b) < cfg.erase)[:, None, None]
        fill = rand(b, 1, 1, 1).expand_as(x)
        x = torch.where(m[:, None], fill, x)
    x = x.clamp(0, 1)
    return x if boxes is None else (x, boxes)
